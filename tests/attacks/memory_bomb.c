/* A memory bomb: a child allocates and touches memory 1 MiB at a time,
 * toward 8 times the container's limit. Then hold, so the host can read
 * the OOM event. */
#include "attack.h"

int main(void) {
    protocol_init("memory_bomb");
    long limit_mb = atol(param("ATTACK_LIMIT_MB"));
    wait_go(20);
    int pfd[2];
    pipe(pfd);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        for (long mb = 1; mb <= 8 * limit_mb; mb++) {
            char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) { dprintf(pfd[1], "enomem %ld\n", mb); _exit(3); }
            memset(p, 0x5a, 1 << 20);
            dprintf(pfd[1], "mb %ld\n", mb);
        }
        _exit(0);
    }
    close(pfd[1]);
    char buf[4096];
    long last = 0, enomem = 0;
    FILE *f = fdopen(pfd[0], "r");
    while (fgets(buf, sizeof buf, f)) {
        sscanf(buf, "mb %ld", &last);
        sscanf(buf, "enomem %ld", &enomem);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    info("child reached %ld MiB (limit %ld MiB), status %#x", last, limit_mb, st);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        verdict("BLOCKED", "the allocating process was OOM-killed at the limit");
    else if (enomem)
        verdict("BLOCKED", "allocation failed with ENOMEM at the limit");
    else if (last >= 8 * limit_mb)
        verdict("ESCAPED", "allocated 8 times the memory limit");
    else
        verdict("BLOCKED", "the allocating process died (status %#x)", st);
    hold(20);
    return 0;
}
