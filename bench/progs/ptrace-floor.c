/*
 * The platform floor of the userspace level, measured on the host: the cost
 * of one PTRACE_SYSEMU stop with nothing served. A forked child loops on a
 * raw getppid syscall; the tracer PTRACE_SEIZEs it and, for every syscall
 * stop, only resumes it with PTRACE_SYSEMU (the syscall is never executed,
 * nothing is decoded). Any syscall served by atoll's kernel costs at least
 * this round trip: the tracee's entry into the host kernel, the switch to
 * the tracer, its waitpid returning, its ptrace(PTRACE_SYSEMU) and the
 * switch back.
 *
 * Neither process is pinned to a CPU (atoll's kernel is not either).
 *
 * usage: ptrace-floor SECONDS SAMPLES
 * prints, per sample:
 *   floor_ns       ns per stop: PTRACE_SYSEMU + waitpid only
 *   floor_regs_ns  ns per stop adding PTRACE_GETREGS + PTRACE_SETREGS (the
 *                  least a tracer that answers the syscall must do)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "ptrace-floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static pid_t child;

/* One stop: resume with SYSEMU, wait for the next syscall-entry stop. */
static void stop_once(int regs) {
    if (regs) {
        struct user_regs_struct r;
        if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("PTRACE_GETREGS");
        r.rax = getpid(); /* a served getppid would answer something */
        if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("PTRACE_SETREGS");
    }
    if (ptrace(PTRACE_SYSEMU, child, 0, 0) < 0) die("PTRACE_SYSEMU");
    int st;
    if (waitpid(child, &st, __WALL) != child) die("waitpid");
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != (SIGTRAP | 0x80)) {
        fprintf(stderr, "ptrace-floor: unexpected stop %#x\n", st);
        exit(1);
    }
}

static double measure(double seconds, int regs) {
    long stops = 0;
    double t0 = now(), t1;
    do {
        for (int i = 0; i < 1000; i++) stop_once(regs);
        stops += 1000;
        t1 = now();
    } while (t1 - t0 < seconds);
    return (t1 - t0) * 1e9 / stops;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: ptrace-floor SECONDS SAMPLES\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    int samples = atoi(argv[2]);
    /* The child makes its last real syscall (the write) before the tracer
     * seizes it: from then on SYSEMU skips every syscall it makes, so it
     * must be in the raw loop already, not in libc code that would
     * misbehave when its syscalls do nothing. */
    int ready[2];
    if (pipe(ready) < 0) die("pipe");
    child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        if (write(ready[1], "r", 1) != 1) _exit(1);
        for (;;) {
            long r;
            __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
        }
    }
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1) die("child not ready");
    close(ready[0]);
    if (ptrace(PTRACE_SEIZE, child, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD) < 0)
        die("PTRACE_SEIZE");
    if (ptrace(PTRACE_INTERRUPT, child, 0, 0) < 0) die("PTRACE_INTERRUPT");
    int st;
    if (waitpid(child, &st, __WALL) != child) die("waitpid");
    /* Now in a PTRACE_EVENT_STOP; the first SYSEMU runs to the next syscall. */
    for (int i = 0; i < 10000; i++) stop_once(0);
    for (int s = 0; s < samples; s++) {
        printf("floor_ns %.3f\n", measure(seconds, 0));
        printf("floor_regs_ns %.3f\n", measure(seconds, 1));
        fflush(stdout);
    }
    kill(child, SIGKILL);
    waitpid(child, &st, __WALL);
    return 0;
}
