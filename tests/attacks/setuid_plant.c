/* Code planted in a set-user-ID-root program that an image left
 * world-writable (mode 4757). The test installs this program twice:
 * /attack (the attacker, uid 65534 without capabilities, no
 * no_new_privs) and /attack-plant (owned by root, mode 4757). Linux takes
 * the set-user-ID bit away on the first write by anyone without
 * CAP_FSETID, so what the attacker writes into it never runs as root. As
 * the helper it reports its effective uid; the attacker runs it once
 * before its write (proof that the bit works here at all) and once
 * after. */
#include "attack.h"

static int helper_euid(void) {
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    int pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        execl("/attack-plant", "/attack-plant", "helper", (char *)NULL);
        printf("exec failed: %s\n", ename(errno));
        _exit(1);
    }
    close(pfd[1]);
    char buf[256] = {0};
    read(pfd[0], buf, sizeof buf - 1);
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    buf[strcspn(buf, "\n")] = 0;
    info("helper: %s", buf);
    int euid = -1;
    sscanf(buf, "euid=%d", &euid);
    return euid;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "helper")) {
        printf("euid=%d\n", (int)geteuid());
        return 0;
    }
    protocol_init("setuid_plant");
    info("uid %d euid %d", (int)getuid(), (int)geteuid());
    if (helper_euid() != 0) {
        verdict("HARMLESS", "the set-user-ID program did not run as root even before the write");
        return 0;
    }
    /* The plant: its first byte written back in place (an attacker's
     * code, in a real attack). */
    char b = 0;
    int rd = open("/attack-plant", O_RDONLY);
    int wr = open("/attack-plant", O_WRONLY);
    if (rd < 0 || wr < 0 || pread(rd, &b, 1, 0) != 1 || pwrite(wr, &b, 1, 0) != 1) {
        verdict("BLOCKED", "the program could not be written (%s)", ename(errno));
        return 0;
    }
    close(rd);
    close(wr);
    struct stat st;
    stat("/attack-plant", &st);
    info("mode after the write: %o", (unsigned)(st.st_mode & 07777));
    int euid = helper_euid();
    if (euid == 0)
        verdict("ESCAPED", "the rewritten set-user-ID program ran as root");
    else
        verdict("BLOCKED", "the write took the set-user-ID bit away: the rewritten program ran as the user");
    return 0;
}
