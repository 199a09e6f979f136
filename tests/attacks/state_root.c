/* Reach the runtime's state of another container: its state.json,
 * effective spec and control socket under the state root (the attacker
 * is told the paths), the default /run/atoll, and the same paths through
 * /proc/1/root. */
#include "attack.h"

static int reached;
static char errs[256];

static void note(const char *what, int e) {
    info("%s: %s", what, ename(e));
    if (!e) reached++;
    if (!strstr(errs, ename(e)) && strlen(errs) < 200) { if (*errs) strcat(errs, "/"); strcat(errs, ename(e)); }
}

static void try_paths(const char *prefix, const char *root, const char *victim) {
    char p[4096];
    snprintf(p, sizeof p, "%s%s/%s/state.json", prefix, root, victim);
    int fd = open(p, O_RDONLY);
    note(p, fd < 0 ? errno : 0);
    snprintf(p, sizeof p, "%s%s/.atoll/%s/config.json", prefix, root, victim);
    fd = open(p, O_RDONLY);
    note(p, fd < 0 ? errno : 0);
    snprintf(p, sizeof p, "%s%s/.atoll/%s/control.sock", prefix, root, victim);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, p, strnlen(p, sizeof a.sun_path - 1));
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    note(p, r < 0 ? errno : 0);
    close(s);
}

int main(void) {
    protocol_init("state_root");
    const char *root = param("ATTACK_STATE_ROOT"), *victim = param("ATTACK_VICTIM");
    wait_go(20);
    try_paths("", root, victim);
    try_paths("/proc/1/root", root, victim);
    try_paths("", "/run/atoll", victim);
    DIR *d = opendir("/run/atoll");
    note("list /run/atoll", d ? 0 : errno);
    if (d) closedir(d);
    /* Is the state root visible in the mount table at all? */
    static char mi[1 << 16];
    long n = read_file("/proc/self/mountinfo", mi, sizeof mi);
    info("state root in mountinfo: %s", n > 0 && strstr(mi, root) ? "yes" : "no");
    if (reached)
        verdict("ESCAPED", "reached another container's state (%d paths)", reached);
    else
        verdict("BLOCKED", "the state root is not reachable (%s)", errs);
    return 0;
}
