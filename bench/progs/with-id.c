/*
 * with-id CMD [ARGS...]: runs CMD with a fresh container id appended as its
 * last argument, so every hyperfine invocation of the lifecycle benchmark
 * creates a new container. The same wrapper runs every runtime, so its own
 * cost (one exec) is the same on every side of the comparison.
 *
 * It execs CMD with SIGCHLD blocked. youki 0.7's foreground `run` blocks
 * signals only after it has started the container, and then waits for
 * SIGCHLD with sigwait: a /bin/true that exits before that is never
 * noticed (its SIGCHLD was discarded, default disposition), and youki waits
 * forever. Blocked, the signal stays pending until youki waits for it.
 * atoll blocks SIGCHLD itself before it starts the container; runc's Go
 * runtime unblocks it at start-up; neither behaves differently.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: with-id CMD [ARGS...]\n");
        return 2;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char id[64];
    snprintf(id, sizeof id, "bench-%d-%ld", (int)getpid(), (long)(ts.tv_nsec % 1000000));
    char **args = calloc(argc + 1, sizeof *args);
    if (!args) return 1;
    for (int i = 1; i < argc; i++) args[i - 1] = argv[i];
    args[argc - 1] = id;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    execvp(args[0], args);
    perror(args[0]);
    return 127;
}
