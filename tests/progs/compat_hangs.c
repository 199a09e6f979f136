// Behaviours whose absence crashed or hung gVisor's syscall tests at the
// userspace level (issue 19). Each check prints one line; a check that
// would hang is cut off by an alarm and prints TIMEOUT instead.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIPEFS_MAGIC 0x50495045

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

static void fifo_pipe_size(void) {
    const char *p = "/tmp/compat-fifo";
    unlink(p);
    if (mkfifo(p, 0600)) { printf("fifo: mkfifo %s\n", strerror(errno)); return; }
    int fd = open(p, O_RDWR | O_NONBLOCK);
    printf("fifo F_GETPIPE_SZ: %s\n", err(fcntl(fd, F_GETPIPE_SZ)));
    printf("fifo F_SETPIPE_SZ 4097: %s\n", err(fcntl(fd, F_SETPIPE_SZ, 4097)));
    printf("fifo F_GETPIPE_SZ after: %s\n", err(fcntl(fd, F_GETPIPE_SZ)));
    printf("fifo F_SETPIPE_SZ 1<<31+1: %s\n", err(fcntl(fd, F_SETPIPE_SZ, (1u << 31) + 1)));
    printf("fifo F_GETFL: %#o\n", fcntl(fd, F_GETFL));
    int n = -1;
    write(fd, "abc", 3);
    ioctl(fd, FIONREAD, &n);
    printf("fifo FIONREAD: %d\n", n);
    close(fd);
    unlink(p);
    int pfd[2];
    pipe(pfd);
    printf("pipe F_GETFL: %#o\n", fcntl(pfd[0], F_GETFL));
    struct statfs sf;
    fstatfs(pfd[0], &sf);
    printf("pipe fstatfs: pipefs=%d bsize=%ld namelen=%ld\n", sf.f_type == PIPEFS_MAGIC,
           (long)sf.f_bsize, (long)sf.f_namelen);
    close(pfd[0]);
    close(pfd[1]);
}

static void waitid_no_wexited(void) {
    pid_t c = fork();
    if (c == 0) _exit(0);
    siginfo_t si;
    // Until the child is a zombie (WNOWAIT leaves it).
    waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    GUARDED("waitid WSTOPPED of a zombie", 5,
            printf("waitid WSTOPPED of a zombie: %s\n", err(waitid(P_ALL, 0, &si, WSTOPPED))));
    printf("waitid WEXITED: %s\n", err(waitid(P_ALL, 0, &si, WEXITED)));
    printf("waitid with no children: %s\n", err(waitid(P_ALL, 0, &si, WEXITED | WSTOPPED)));
}

static pthread_mutex_t robust;
static void *lock_and_die(void *a) {
    (void)a;
    pthread_mutex_lock(&robust);
    return NULL;
}

static void robust_mutex(void) {
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &at);
    pthread_t t;
    pthread_create(&t, NULL, lock_and_die, NULL);
    pthread_join(t, NULL);
    GUARDED("robust mutex after owner exit", 5, {
        int r = pthread_mutex_lock(&robust);
        printf("robust mutex after owner exit: %s\n", r ? strerrorname_np(r) : "ok");
        if (r == EOWNERDEAD) {
            pthread_mutex_consistent(&robust);
            pthread_mutex_unlock(&robust);
        }
    });
    // The same across processes, in shared memory, with a waiter asleep.
    pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutex_init(m, &at);
    int go[2];
    pipe(go);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(m);
        write(go[1], "x", 1);
        usleep(100000);
        _exit(0);
    }
    char x;
    read(go[0], &x, 1);
    GUARDED("robust shared mutex after owner process exit", 5, {
        int r = pthread_mutex_lock(m);
        printf("robust shared mutex after owner process exit: %s\n", r ? strerrorname_np(r) : "ok");
    });
    waitpid(c, NULL, 0);
}

static void poll_norm_bits(void) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    struct pollfd f[2] = {{p[0], POLLRDNORM, 0}, {p[1], POLLWRNORM | POLLOUT, 0}};
    int r = poll(f, 2, 0);
    printf("poll pipe: %d rd=%#x wr=%#x\n", r, f[0].revents, f[1].revents);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    send(s[1], "x", 1, 0);
    struct pollfd g = {s[0], POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLWRBAND, 0};
    poll(&g, 1, 0);
    printf("poll unix: %#x\n", g.revents);
    int e = eventfd(1, 0);
    struct pollfd h = {e, POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM, 0};
    poll(&h, 1, 0);
    printf("poll eventfd: %#x\n", h.revents);
    close(p[0]); close(p[1]); close(s[0]); close(s[1]); close(e);
}

static int shut_fd;
static void *shut_later(void *a) {
    (void)a;
    usleep(100000);
    shutdown(shut_fd, SHUT_RDWR);
    return NULL;
}

static void unix_peer_shutdown(void) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    shut_fd = s[1];
    pthread_t t;
    pthread_create(&t, NULL, shut_later, NULL);
    GUARDED("unix peer shutdown wakes a hangup poller", 5, {
        struct pollfd f = {s[0], 0, 0};
        int r = poll(&f, 1, -1);
        printf("unix peer shutdown wakes a hangup poller: %d %#x\n", r, f.revents);
    });
    pthread_join(t, NULL);
    struct pollfd f = {s[1], POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&f, 1, 0);
    printf("unix after own shutdown: %#x\n", f.revents);
    close(s[0]);
    close(s[1]);
}

static int ep, evfd;
static void *add_later(void *a) {
    (void)a;
    usleep(100000);
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.u64 = 0xdeadbeef};
    epoll_ctl(ep, EPOLL_CTL_ADD, evfd, &e);
    return NULL;
}

static void epoll_new_fd(void) {
    ep = epoll_create1(0);
    evfd = eventfd(0, 0);
    pthread_t t;
    pthread_create(&t, NULL, add_later, NULL);
    GUARDED("epoll woken by a new ready fd", 5, {
        struct epoll_event out[4];
        int r = epoll_wait(ep, out, 4, -1);
        printf("epoll woken by a new ready fd: %d %#llx\n", r, r > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
    });
    pthread_join(t, NULL);
    close(ep);
    close(evfd);
}

static int64_t ns(clockid_t c) {
    struct timespec ts;
    if (clock_gettime(c, &ts)) return -errno;
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *spin(void *a) {
    int64_t end = ns(CLOCK_THREAD_CPUTIME_ID) + 50000000;
    while (ns(CLOCK_THREAD_CPUTIME_ID) < end) {
        for (volatile int i = 0; i < 100000; i++) {}
    }
    clockid_t *c = a;
    pthread_getcpuclockid(pthread_self(), c);
    return NULL;
}

static void cpu_clocks(void) {
    if (ns(CLOCK_THREAD_CPUTIME_ID) < 0 || ns(CLOCK_PROCESS_CPUTIME_ID) < 0) {
        printf("cpu clocks: %s\n", strerrorname_np((int)-ns(CLOCK_THREAD_CPUTIME_ID)));
    } else {
        int64_t p0 = ns(CLOCK_PROCESS_CPUTIME_ID);
        clockid_t tc;
        pthread_t t;
        pthread_create(&t, NULL, spin, &tc);
        pthread_join(t, NULL);
        spin(&tc);
        int64_t th = ns(CLOCK_THREAD_CPUTIME_ID), p1 = ns(CLOCK_PROCESS_CPUTIME_ID);
        printf("thread cpu clock: %s\n", th >= 50000000 ? "ok" : "bad");
        printf("process cpu clock covers both threads: %s\n", p1 - p0 >= 100000000 ? "ok" : "bad");
    }
    clockid_t mine, proc;
    pthread_getcpuclockid(pthread_self(), &mine);
    struct timespec ts;
    printf("pthread_getcpuclockid self: gettime %s", err(clock_gettime(mine, &ts)));
    printf(" getres %s\n", err(clock_getres(mine, &ts)));
    printf("clock_getcpuclockid self: %d", clock_getcpuclockid(getpid(), &proc));
    printf(" gettime %s\n", err(clock_gettime(proc, &ts)));
    pid_t c = fork();
    if (c == 0) { pause(); _exit(0); }
    clock_getcpuclockid(c, &proc);
    printf("process clock of a child: %s\n", err(clock_gettime(proc, &ts)));
    // A thread clock of another process's thread is not readable.
    clockid_t other = (~(clockid_t)c << 3) | 6;
    printf("thread clock of another process: %s\n", err(clock_gettime(other, &ts)));
    printf("clock id with CPUCLOCK_MAX: %s\n", err(clock_gettime((~(clockid_t)0 << 3) | 3, &ts)));
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("getrusage self user time: %s\n", ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec > 0 ? "ok" : "zero");
    printf("getrusage bad who: %s\n", err(getrusage(5, &ru)));
}

int main(void) {
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    fifo_pipe_size();
    waitid_no_wexited();
    robust_mutex();
    poll_norm_bits();
    unix_peer_shutdown();
    epoll_new_fd();
    cpu_clocks();
    return 0;
}
