/* A setuid-root binary run by an unprivileged user under no_new_privs.
 * The test installs this program twice: /attack (the attacker, run as
 * uid 65534) and /attack-suid (owned by root, mode 4755). As the helper,
 * it reports its effective uid and tries to write into a root-only
 * directory the host checks afterwards. */
#include "attack.h"

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "helper")) {
        int fd = open("/rootonly/pwned", O_WRONLY | O_CREAT, 0644);
        printf("euid=%d write=%s\n", (int)geteuid(), fd >= 0 ? "OK" : ename(errno));
        return 0;
    }
    protocol_init("setuid_nnp");
    char st[4096] = "";
    read_file("/proc/self/status", st, sizeof st);
    char *nnp = strstr(st, "NoNewPrivs:");
    info("uid %d euid %d, %.14s", (int)getuid(), (int)geteuid(), nnp ? nnp : "NoNewPrivs: ?");
    int pfd[2];
    pipe(pfd);
    int pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        execl("/attack-suid", "/attack-suid", "helper", (char *)NULL);
        printf("exec failed: %s\n", ename(errno));
        _exit(1);
    }
    close(pfd[1]);
    char buf[256] = {0};
    read(pfd[0], buf, sizeof buf - 1);
    waitpid(pid, NULL, 0);
    buf[strcspn(buf, "\n")] = 0;
    info("helper: %s", buf);
    int euid = -1;
    sscanf(buf, "euid=%d", &euid);
    if (euid == 0)
        verdict("ESCAPED", "the setuid binary ran with euid 0");
    else if (euid > 0)
        verdict("BLOCKED", "no_new_privs: the setuid binary kept euid %d", euid);
    else
        verdict("BLOCKED", "the setuid binary did not run (%s)", buf);
    return 0;
}
