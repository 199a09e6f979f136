// Parents and children as gVisor's wait_test and prctl_test see them:
// waitid's option check, an auto-reaped child's times (never counted as
// the parent's children's), __WNOTHREAD (only the calling thread's
// children), and PR_SET_PDEATHSIG (sent when the thread that created the
// process exits, be it the process's last thread or not), and a SIGSTOP
// that arrives as a new child makes its first syscalls. One line per
// behaviour, no pids printed; compared with the host kernel by
// crates/atoll/tests/userspace_compat.rs.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *en(int r) {
    if (r >= 0) return "ok";
    switch (errno) {
    case EINVAL: return "EINVAL";
    case ECHILD: return "ECHILD";
    default: return strerror(errno);
    }
}

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    _exit(1);
}

static void spin_ms(long ms) {
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    do {
        for (volatile int i = 0; i < 100000; i++) {
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

static void ignored_child_rusage(void) {
    struct rusage before, after;
    signal(SIGCHLD, SIG_IGN);
    getrusage(RUSAGE_CHILDREN, &before);
    pid_t c = fork();
    if (c == 0) {
        spin_ms(300);
        _exit(0);
    }
    int s;
    printf("wait with SIGCHLD ignored: %s\n", en(waitpid(-1, &s, 0)));
    getrusage(RUSAGE_CHILDREN, &after);
    printf("auto-reaped child's time counted: %s\n",
           after.ru_utime.tv_sec == before.ru_utime.tv_sec &&
                   after.ru_utime.tv_usec == before.ru_utime.tv_usec
               ? "no"
               : "yes");
    signal(SIGCHLD, SIG_DFL);
}

static volatile pid_t thread_child;
static int hold[2];
static void *forker(void *a) {
    (void)a;
    thread_child = fork();
    if (thread_child == 0) _exit(0);
    char b;
    read(hold[0], &b, 1);  // alive while the main thread waits
    return 0;
}

static void wnothread(void) {
    pipe(hold);
    pthread_t t;
    pthread_create(&t, 0, forker, 0);
    while (!thread_child) usleep(1000);
    usleep(100000);
    int s;
    printf("__WNOTHREAD wait for a live thread's child: %s\n",
           en(wait4(thread_child, &s, __WNOTHREAD, 0)));
    printf("plain wait for it: %s\n", en(wait4(thread_child, &s, 0, 0)));
    write(hold[1], "x", 1);
    pthread_join(t, 0);
    // Once the creating thread is gone, its children are the process's
    // other threads' (here: this one's).
    pthread_create(&t, 0, forker, 0);
    write(hold[1], "x", 1);
    pthread_join(t, 0);
    usleep(100000);
    printf("__WNOTHREAD wait once the creating thread exited: %s\n",
           en(wait4(thread_child, &s, __WNOTHREAD, 0)));
}

static volatile sig_atomic_t got;
static void on_sig(int s) { got = s; }

// A child of the calling thread that asks for SIGUSR1 when its parent
// goes, tells `ready` it did, then reports what it got to `out`.
static pid_t pdeath_child(int ready, int out) {
    pid_t c = fork();
    if (c == 0) {
        signal(SIGUSR1, on_sig);
        prctl(PR_SET_PDEATHSIG, SIGUSR1);
        write(ready, "r", 1);
        for (int i = 0; i < 500 && !got; i++) usleep(10000);
        int g = got;
        write(out, &g, sizeof g);
        _exit(0);
    }
    return c;
}

static int out_pipe[2];

static void *pdeath_thread(void *a) {
    int *ready = a;
    pdeath_child(ready[1], out_pipe[1]);
    char b;
    read(ready[0], &b, 1);
    return 0;  // the creating thread exits; the process lives on
}

static void *nothing(void *a) { return a; }

static void pdeathsig(void) {
    printf("PR_SET_PDEATHSIG 65: %s\n", en(prctl(PR_SET_PDEATHSIG, 65)));
    prctl(PR_SET_PDEATHSIG, SIGUSR2);
    int v = -1;
    prctl(PR_GET_PDEATHSIG, &v);
    printf("PR_GET_PDEATHSIG: %d\n", v);
    pid_t c = fork();
    if (c == 0) {
        int w = -1;
        prctl(PR_GET_PDEATHSIG, &w);
        _exit(w);
    }
    int s;
    waitpid(c, &s, 0);
    printf("a fork child's: %d\n", WEXITSTATUS(s));
    prctl(PR_SET_PDEATHSIG, 0);

    pipe(out_pipe);
    // The parent process exits.
    int ready[2];
    pipe(ready);
    pid_t p = fork();
    if (p == 0) {
        pdeath_child(ready[1], out_pipe[1]);
        char b;
        read(ready[0], &b, 1);
        _exit(0);
    }
    int g = 0;
    read(out_pipe[0], &g, sizeof g);
    printf("parent process exited: got %d\n", g);
    waitpid(p, &s, 0);

    // The creating thread exits, its process stays.
    pthread_t t;
    pthread_create(&t, 0, pdeath_thread, ready);
    pthread_join(t, 0);
    g = 0;
    read(out_pipe[0], &g, sizeof g);
    printf("creating thread exited: got %d\n", g);

    // A sibling thread exits: nothing.
    pid_t c2 = pdeath_child(ready[1], out_pipe[1]);
    char b;
    read(ready[0], &b, 1);
    pthread_create(&t, 0, nothing, 0);
    pthread_join(t, 0);
    usleep(200000);
    kill(c2, SIGTERM);
    waitpid(c2, &s, 0);
    printf("a sibling thread exited: child %s\n",
           WIFSIGNALED(s) && WTERMSIG(s) == SIGTERM ? "still waiting" : "woken");
}

// A stop signal sent the moment a child starts (its first syscalls may
// be on their way into the kernel): the child stops, every time.
static void stop_at_start(void) {
    int stopped = 0;
    for (int i = 0; i < 30; i++) {
        pid_t c = fork();
        if (c == 0)
            for (;;) pause();
        kill(c, SIGSTOP);
        int s;
        if (waitpid(c, &s, WUNTRACED) == c && WIFSTOPPED(s)) stopped++;
        kill(c, SIGKILL);
        waitpid(c, &s, 0);
    }
    printf("SIGSTOP right after fork: stopped %d of 30\n", stopped);
}

// PR_SET_PDEATHSIG and credentials (Linux's commit_creds): a change of
// effective id drops it, setting the same id does not; exec keeps it for
// a plain program and drops it for a set-user-ID one (installed by the
// test as /compat_children_suid, owned by 65534, mode 4755).
static void pdeath_creds(void) {
    int s;
    pid_t c = fork();
    if (c == 0) {
        prctl(PR_SET_PDEATHSIG, SIGUSR2);
        int v = -1;
        setresuid(-1, geteuid(), -1);
        prctl(PR_GET_PDEATHSIG, &v);
        printf("pdeath after setting the same euid: %d\n", v);
        setresuid(-1, 65534, -1);
        prctl(PR_GET_PDEATHSIG, &v);
        printf("pdeath after seteuid(65534): %d, dumpable %d\n", v, prctl(PR_GET_DUMPABLE));
        _exit(0);
    }
    waitpid(c, &s, 0);
    const char *progs[] = {"/compat_children", "/compat_children_suid"};
    for (int i = 0; i < 2; i++) {
        if (access(progs[i], X_OK) != 0) {
            printf("%s: missing\n", progs[i]);
            continue;
        }
        c = fork();
        if (c == 0) {
            prctl(PR_SET_PDEATHSIG, SIGUSR2);
            prctl(PR_SET_DUMPABLE, 0);  // an exec makes it dumpable again
            execl(progs[i], progs[i], "report", (char *)0);
            _exit(127);
        }
        waitpid(c, &s, 0);
    }
}

// Run as `report` by pdeath_creds's exec.
static int report(const char *prog) {
    int v = -1;
    prctl(PR_GET_PDEATHSIG, &v);
    printf("exec of %s: pdeath %d, uid %d, euid %d, AT_SECURE %lu, dumpable %d\n", prog, v,
           (int)getuid(), (int)geteuid(), getauxval(AT_SECURE), prctl(PR_GET_DUMPABLE));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "report") == 0) return report(argv[0]);
    signal(SIGALRM, on_alarm);
    alarm(20);
    siginfo_t si;
    printf("waitid unknown option: %s\n", en(waitid(P_ALL, 0, &si, WEXITED | 0x40)));
    ignored_child_rusage();
    wnothread();
    pdeathsig();
    pdeath_creds();
    stop_at_start();
    // Orphans that came to us (the container's init).
    while (waitpid(-1, 0, 0) > 0) {
    }
    return 0;
}
