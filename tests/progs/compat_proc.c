// Process, futex and argument-edge behaviours of gVisor's syscall suite
// that the userspace level got wrong (issue 19). One line per behaviour;
// compared with the host kernel by crates/atoll/tests/userspace_compat.rs.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf jb;
static void on_alarm(int s) { (void)s; siglongjmp(jb, 1); }
#define GUARDED(name, secs, ...)                                \
    do {                                                        \
        if (sigsetjmp(jb, 1) == 0) {                            \
            alarm(secs);                                        \
            __VA_ARGS__;                                        \
            alarm(0);                                           \
        } else {                                                \
            printf("%s: TIMEOUT\n", name);                      \
        }                                                       \
        fflush(stdout);                                         \
    } while (0)

static const char *err(long r) {
    static char b[64];
    if (r >= 0) snprintf(b, sizeof b, "ok(%ld)", r);
    else snprintf(b, sizeof b, "%s", strerrorname_np(errno));
    return b;
}

static long futex(atomic_int *a, int op, int v, void *t, atomic_int *a2, int v3) {
    return syscall(SYS_futex, a, op, v, t, a2, v3);
}

static atomic_int word;
static void *waiter(void *priv) {
    struct timespec ts = {1, 0};
    long r = futex(&word, FUTEX_WAIT | (priv ? FUTEX_PRIVATE_FLAG : 0), 0, &ts, NULL, 0);
    return (void *)(r == 0 ? 1L : 0L);
}

static void futexes(void) {
    pthread_t t;
    void *woke;
    // FUTEX_WAKE of zero waiters wakes one, as Linux does.
    pthread_create(&t, NULL, waiter, (void *)1);
    usleep(200000);
    printf("futex wake 0: %s\n", err(futex(&word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0)));
    pthread_join(t, &woke);
    printf("futex waiter woken by wake 0: %ld\n", (long)woke);
    // A shared wake does not wake a private waiter.
    pthread_create(&t, NULL, waiter, (void *)1);
    usleep(200000);
    printf("shared wake of a private waiter: %s\n", err(futex(&word, FUTEX_WAKE, 1, NULL, NULL, 0)));
    pthread_join(t, &woke);
    printf("private waiter woken by the shared wake: %ld\n", (long)woke);
    printf("private wake of an unmapped word: %s\n",
           err(futex((atomic_int *)0x1000, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0)));
    printf("private wake_op with a null first word: %s\n",
           err(futex(NULL, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 0, NULL, &word,
                     FUTEX_OP(FUTEX_OP_SET, 2, 0, 0))));
    printf("word after wake_op: %d\n", atomic_load(&word));
    printf("misaligned futex: %s\n", err(futex((atomic_int *)((char *)&word + 1), FUTEX_WAKE, 1, NULL, NULL, 0)));
}

static int exec_true(void *a) {
    (void)a;
    char *argv[] = {"/bin/true", NULL};
    execve("/bin/true", argv, NULL);
    return 99;
}

static void exec_from_thread(void) {
    pid_t c = fork();
    if (c == 0) {
        char *stack = malloc(1 << 16);
        clone(exec_true, stack + (1 << 16), CLONE_VFORK | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, NULL);
        _exit(42);
    }
    GUARDED("exec from a non-leader thread", 10, {
        int st = -1;
        pid_t r = waitpid(c, &st, 0);
        printf("exec from a non-leader thread: %s, status %d\n", r == c ? "reaped" : err(r), st);
    });
}

static void rusages(void) {
    pid_t c = fork();
    if (c == 0) {
        struct timespec ts;
        do clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        while (ts.tv_sec * 1000000000LL + ts.tv_nsec < 100000000);
        _exit(0);
    }
    siginfo_t si;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    long r = syscall(SYS_waitid, P_PID, c, &si, WEXITED, &ru);
    long us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    printf("waitid rusage: %s, cpu %s\n", err(r), us >= 100000 ? ">= 100ms" : "too small");
    getrusage(RUSAGE_CHILDREN, &ru);
    us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    printf("RUSAGE_CHILDREN: %s\n", us >= 100000 ? ">= 100ms" : "too small");
}

static void edges(void) {
    printf("kill INT_MIN: %s\n", err(kill(INT_MIN, 0)));
    printf("wait4 INT_MIN: %s\n", err(wait4(INT_MIN, NULL, WNOHANG, NULL)));
    struct timeval tv[2] = {{0, 2000000}, {0, 0}};
    printf("utimes with microseconds out of range: %s\n", err(utimes("/tmp", tv)));
    int fd = open("/tmp/compat-lock", O_RDWR | O_CREAT, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = -20};
    printf("lock reaching below zero: %s\n", err(fcntl(fd, F_SETLK, &fl)));
    fl.l_len = LLONG_MIN;
    printf("lock of length LLONG_MIN: %s\n", err(fcntl(fd, F_SETLK, &fl)));
    close(fd);
    unlink("/tmp/compat-lock");
    printf("alarm of UINT_MAX seconds: %s\n", err(alarm(UINT_MAX)));
    alarm(0);
    struct timespec forever = {LLONG_MAX, 0};
    printf("nanosleep of LLONG_MAX, interrupted: ");
    signal(SIGUSR1, SIG_IGN);
    struct itimerval it = {{0, 0}, {0, 100000}};
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    if (sigsetjmp(jb, 1) == 0) {
        setitimer(ITIMER_REAL, &it, NULL);
        nanosleep(&forever, NULL);
        printf("returned\n");
    } else {
        printf("interrupted\n");
    }
}

int main(void) {
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    futexes();
    exec_from_thread();
    rusages();
    edges();
    return 0;
}
