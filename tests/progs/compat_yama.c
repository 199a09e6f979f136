/* Yama's ptrace scope 1, which the userspace level's kernel keeps as
 * gVisor's does: a process attaches only to its descendants, unless the
 * tracee named a process (whose descendants may then attach) or any
 * process with prctl(PR_SET_PTRACER), or the tracer has CAP_SYS_PTRACE.
 * The exception is the tracee's process's, not inherited by fork, and
 * ends with the tracer thread it names. /proc/PID/mem opens under the
 * same rule. PTRACE_TRACEME is unaffected. Prints one line per behaviour
 * (the lines of a sibling's attempts say ok when run with CAP_SYS_PTRACE). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long marker = 0x5a5a1234UL;

static const char *err(int e) { return e ? strerrorname_np(e) : "ok"; }

/* Attaches to pid, waits for its stop and detaches: 0 or the errno. */
static int attach(pid_t pid) {
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0) return errno;
    int st;
    if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st)) return -1;
    ptrace(PTRACE_DETACH, pid, 0, 0);
    return 0;
}

/* A child that sleeps until killed. */
static pid_t sleeper(void) {
    pid_t p = fork();
    if (p == 0) for (;;) pause();
    return p;
}

static void reap(pid_t p) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
}

/* Runs attach(pid) (or opens /proc/pid/mem) in a new child, a sibling of
 * pid's; returns its result. */
static int from_sibling(pid_t pid, int mem) {
    pid_t c = fork();
    if (c == 0) {
        if (!mem) _exit(attach(pid));
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0) _exit(errno);
        unsigned long v = 0;
        if (pread(fd, &v, sizeof v, (off_t)(unsigned long)&marker) != sizeof v) _exit(errno);
        _exit(v == marker ? 0 : 100);
    }
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

/* A tracee that runs prctl(PR_SET_PTRACER, arg) for each arg it reads. */
static int cmd_in[2], cmd_out[2];
static pid_t tracee(void) {
    pipe(cmd_in);
    pipe(cmd_out);
    pid_t p = fork();
    if (p == 0) {
        long arg;
        while (read(cmd_in[0], &arg, sizeof arg) == sizeof arg) {
            int e = prctl(PR_SET_PTRACER, arg, 0, 0, 0) < 0 ? errno : 0;
            write(cmd_out[1], &e, sizeof e);
        }
        _exit(0);
    }
    return p;
}
static int set_ptracer(long arg) {
    int e;
    write(cmd_in[1], &arg, sizeof arg);
    read(cmd_out[0], &e, sizeof e);
    return e;
}

static pid_t thread_tid;
static int thread_go[2];
static void *thread_main(void *a) {
    (void)a;
    thread_tid = syscall(SYS_gettid);
    char c;
    read(thread_go[0], &c, 1);
    return NULL;
}

int main(void) {
    char scope[16] = "";
    int sfd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY);
    if (sfd >= 0) {
        ssize_t n = read(sfd, scope, sizeof scope - 1);
        scope[n > 0 ? n : 0] = 0;
        scope[strcspn(scope, "\n")] = 0;
    }
    printf("ptrace_scope: %s\n", sfd >= 0 ? scope : err(errno));

    pid_t c = sleeper();
    printf("parent attaches to its child: %s\n", err(attach(c)));
    reap(c);

    pid_t k = fork();
    if (k == 0) _exit(attach(getppid()));
    int st;
    waitpid(k, &st, 0);
    printf("child attaches to its parent: %s\n", err(WEXITSTATUS(st)));

    pid_t a = sleeper();
    printf("sibling attaches: %s\n", err(from_sibling(a, 0)));
    printf("sibling opens /proc/PID/mem: %s\n", err(from_sibling(a, 1)));
    reap(a);

    printf("PR_SET_PTRACER of a missing pid: %s\n",
           err(prctl(PR_SET_PTRACER, 999999, 0, 0, 0) < 0 ? errno : 0));

    pid_t t = tracee();
    printf("tracee names its parent: %s\n", err(set_ptracer(getpid())));
    printf("  parent's other child attaches: %s\n", err(from_sibling(t, 0)));
    pid_t other = sleeper();
    printf("tracee names an unrelated process: %s\n", err(set_ptracer(other)));
    printf("  sibling attaches: %s\n", err(from_sibling(t, 0)));
    printf("tracee names any process: %s\n", err(set_ptracer(-1)));
    printf("  sibling attaches: %s\n", err(from_sibling(t, 0)));
    printf("  sibling opens /proc/PID/mem and reads it: %s\n", err(from_sibling(t, 1)));
    printf("tracee clears it: %s\n", err(set_ptracer(0)));
    printf("  sibling attaches: %s\n", err(from_sibling(t, 0)));

    /* The exception names a thread: it ends when that thread does. */
    pipe(thread_go);
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    while (__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST) == 0) usleep(1000);
    printf("tracee names a thread of its parent: %s\n", err(set_ptracer(thread_tid)));
    printf("  sibling attaches: %s\n", err(from_sibling(t, 0)));
    write(thread_go[1], "x", 1);
    pthread_join(th, NULL);
    usleep(100000);
    printf("  sibling attaches after that thread exited: %s\n", err(from_sibling(t, 0)));
    reap(t);
    reap(other);

    printf("PR_SET_PTRACER_ANY: %s\n",
           err(prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0) < 0 ? errno : 0));
    pid_t n = sleeper();
    printf("  not inherited: sibling attaches to a new child: %s\n", err(from_sibling(n, 0)));
    reap(n);
    prctl(PR_SET_PTRACER, 0, 0, 0, 0);

    int fd = open("/proc/self/mem", O_RDONLY);
    unsigned long v = 0;
    int ok = fd >= 0 && pread(fd, &v, sizeof v, (off_t)(unsigned long)&marker) == sizeof v &&
             v == marker;
    printf("own /proc/self/mem reads: %s\n", ok ? "ok" : err(errno));
    printf("  at an unmapped address: %s\n",
           err(pread(fd, &v, sizeof v, 8) < 0 ? errno : 0));

    pid_t tm = fork();
    if (tm == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) _exit(1);
        raise(SIGSTOP);
        _exit(0);
    }
    waitpid(tm, &st, 0);
    printf("PTRACE_TRACEME: %s\n", WIFSTOPPED(st) ? "stopped" : "not stopped");
    reap(tm);
    return 0;
}
