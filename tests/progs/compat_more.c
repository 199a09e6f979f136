// Signal-driven I/O, O_PATH, process and newer-syscall behaviours of
// gVisor's syscall suite and issue 13 that the userspace level lacked
// (issue 19 item 3). One line per behaviour; compared with the host kernel
// by crates/atoll/tests/userspace_compat.rs (run with CAP_SYS_ADMIN so the
// native level's seccomp profile lets clone3 through).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *err(long r) {
    static char b[64];
    if (r >= 0) snprintf(b, sizeof b, "ok(%ld)", r);
    else snprintf(b, sizeof b, "%s", strerrorname_np(errno));
    return b;
}

// ---- fcntl owners, F_SETSIG and SIGIO ----

static volatile sig_atomic_t got_sig, got_fd, got_code, got_band;
static void on_io(int s, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = s;
    got_fd = si->si_fd;
    got_code = si->si_code;
    got_band = (int)si->si_band;
}

static void wait_for_signal(void) {
    for (int i = 0; i < 200 && !got_sig; i++) usleep(5000);
}

static void async_io(void) {
    int p[2];
    pipe(p);
    printf("F_GETOWN of a new pipe: %s\n", err(fcntl(p[0], F_GETOWN)));
    fcntl(p[0], F_SETOWN, getpid());
    printf("F_GETOWN after F_SETOWN self: %s\n",
           fcntl(p[0], F_GETOWN) == getpid() ? "self" : "other");
    struct f_owner_ex ex = {F_OWNER_PGRP, getpgrp()};
    printf("F_SETOWN_EX pgrp: %s\n", err(fcntl(p[0], F_SETOWN_EX, &ex)));
    memset(&ex, 0, sizeof ex);
    fcntl(p[0], F_GETOWN_EX, &ex);
    printf("F_GETOWN_EX: type %d, pid is pgrp %d\n", ex.type, ex.pid == getpgrp());
    printf("F_GETOWN of a process group: %s\n",
           fcntl(p[0], F_GETOWN) == -getpgrp() ? "-pgrp" : "other");
    ex.type = 7;
    printf("F_SETOWN_EX bad type: %s\n", err(fcntl(p[0], F_SETOWN_EX, &ex)));
    ex.type = F_OWNER_PID;
    ex.pid = 0x3fffffff;
    printf("F_SETOWN_EX missing pid: %s\n", err(fcntl(p[0], F_SETOWN_EX, &ex)));
    printf("F_GETSIG of a new pipe: %s\n", err(fcntl(p[0], F_GETSIG)));
    printf("F_SETSIG 65: %s\n", err(fcntl(p[0], F_SETSIG, 65)));

    struct sigaction sa = {0};
    sa.sa_sigaction = on_io;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigaction(SIGIO, &sa, NULL);

    // F_SETSIG to a real-time signal: siginfo says which fd and why.
    fcntl(p[0], F_SETOWN, getpid());
    printf("F_SETSIG SIGRTMIN+1: %s\n", err(fcntl(p[0], F_SETSIG, SIGRTMIN + 1)));
    printf("F_GETSIG: %s\n", fcntl(p[0], F_GETSIG) == SIGRTMIN + 1 ? "SIGRTMIN+1" : "other");
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC);
    printf("F_GETFL has O_ASYNC: %d\n", !!(fcntl(p[0], F_GETFL) & O_ASYNC));
    got_sig = 0;
    write(p[1], "x", 1);
    wait_for_signal();
    printf("pipe write signals the reader: sig %s fd %d code %s band POLLIN %d\n",
           got_sig == SIGRTMIN + 1 ? "SIGRTMIN+1" : "none", got_fd == p[0],
           got_code == POLL_IN ? "POLL_IN" : "other", !!(got_band & POLLIN));
    // No owner: no signal.
    char c;
    read(p[0], &c, 1);
    fcntl(p[0], F_SETOWN, 0);
    got_sig = 0;
    write(p[1], "x", 1);
    usleep(100000);
    printf("no owner, no signal: %d\n", (int)got_sig);
    close(p[0]);
    close(p[1]);

    // Plain SIGIO for a unix socket, switched on with FIOASYNC.
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fcntl(sv[0], F_SETOWN, getpid());
    int on = 1;
    printf("FIOASYNC: %s\n", err(ioctl(sv[0], FIOASYNC, &on)));
    got_sig = 0;
    write(sv[1], "y", 1);
    wait_for_signal();
    printf("socket write signals the reader: %s\n", got_sig == SIGIO ? "SIGIO" : "none");
    close(sv[0]);
    close(sv[1]);
    signal(SIGIO, SIG_DFL);
}

// ---- O_PATH descriptors, open and lseek corners ----

static void paths(void) {
    int fd = open("/tmp", O_PATH);
    printf("O_PATH F_GETFL has O_PATH: %d\n", !!(fcntl(fd, F_GETFL) & O_PATH));
    char b[8];
    printf("read of O_PATH: %s\n", err(read(fd, b, 1)));
    struct stat st;
    printf("fstat of O_PATH: %s\n", err(fstat(fd, &st)));
    printf("fchmod of O_PATH: %s\n", err(fchmod(fd, 0755)));
    printf("fchdir to O_PATH: %s\n", err(fchdir(fd)));
    chdir("/");
    int n;
    printf("ioctl of O_PATH: %s\n", err(ioctl(fd, FIONREAD, &n)));
    printf("flock of O_PATH: %s\n", err(flock(fd, LOCK_SH)));
    printf("F_SETOWN of O_PATH: %s\n", err(fcntl(fd, F_SETOWN, getpid())));
    close(fd);
    fd = open("/tmp/plain", O_CREAT | O_WRONLY, 0644);
    write(fd, "hello", 5);
    close(fd);
    fd = open("/tmp/plain", O_PATH);
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    printf("F_SETLK of O_PATH: %s\n", err(fcntl(fd, F_SETLK, &fl)));
    printf("mmap of O_PATH: %s\n",
           mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? strerrorname_np(errno) : "mapped");
    close(fd);
    printf("O_PATH|O_DIRECTORY of a file: %s\n", err(open("/tmp/plain", O_PATH | O_DIRECTORY)));
    printf("O_DIRECT on a directory: %s\n", err(open("/tmp", O_RDONLY | O_DIRECT)));

    // Lock a pipe: any file with an inode takes POSIX locks.
    int p[2];
    pipe(p);
    fl.l_type = F_WRLCK;
    printf("F_SETLK of a pipe: %s\n", err(fcntl(p[1], F_SETLK, &fl)));
    close(p[0]);
    close(p[1]);

    // O_RDONLY|O_TRUNC truncates (Linux does, whatever POSIX says).
    fd = open("/tmp/trunc", O_CREAT | O_WRONLY, 0644);
    write(fd, "hello", 5);
    close(fd);
    close(open("/tmp/trunc", O_RDONLY | O_TRUNC));
    stat("/tmp/trunc", &st);
    printf("O_RDONLY|O_TRUNC size: %ld\n", (long)st.st_size);

    // O_CREAT through a dangling symlink creates its target.
    symlink("/tmp/target", "/tmp/dangling");
    fd = open("/tmp/dangling", O_CREAT | O_WRONLY, 0644);
    printf("O_CREAT through a dangling symlink: %s, target %s\n", fd >= 0 ? "ok" : strerrorname_np(errno),
           access("/tmp/target", F_OK) == 0 ? "exists" : "missing");
    close(fd);
    unlink("/tmp/target");
    printf("O_CREAT|O_EXCL through a dangling symlink: %s\n",
           err(open("/tmp/dangling", O_CREAT | O_EXCL | O_WRONLY, 0644)));

    fd = open("/tmp/plain", O_RDONLY);
    printf("lseek SEEK_END LLONG_MAX: %s\n", err(lseek(fd, LLONG_MAX, SEEK_END)));
    close(fd);
    fd = open("/proc/meminfo", O_RDONLY);
    printf("lseek SEEK_END of /proc/meminfo: %s\n", err(lseek(fd, 0, SEEK_END)));
    close(fd);
    fd = open("/proc/self", O_RDONLY | O_DIRECTORY);
    printf("lseek SEEK_END of /proc/self: %s\n", lseek(fd, 0, SEEK_END) >= 0 ? "ok" : strerrorname_np(errno));
    close(fd);
    fd = open("/tmp", O_RDONLY | O_DIRECTORY);
    printf("lseek SEEK_END of a tmpfs directory: %s\n", err(lseek(fd, 0, SEEK_END)));
    close(fd);

    struct statx sx;
    printf("statx unknown flag: %s\n", err(statx(AT_FDCWD, "/tmp", 0x40000000, STATX_BASIC_STATS, &sx)));
    printf("statx FORCE_SYNC|DONT_SYNC: %s\n",
           err(statx(AT_FDCWD, "/tmp", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx)));
    printf("statx reserved mask bit: %s\n", err(statx(AT_FDCWD, "/tmp", 0, 0x80000000u, &sx)));
    memset(&sx, 0, sizeof sx);
    statx(AT_FDCWD, "/tmp", 0, STATX_BASIC_STATS | STATX_MNT_ID, &sx);
    printf("statx gives the mount id: %d\n", !!(sx.stx_mask & STATX_MNT_ID) && sx.stx_mnt_id != 0);
}

// ---- threads, affinity and kill ----

static volatile sig_atomic_t usr1;
static void on_usr1(int s) { (void)s; usr1 = 1; }
static atomic_int thread_tid;
static atomic_int thread_go;
static void *sleeper(void *arg) {
    (void)arg;
    thread_tid = gettid();
    while (!thread_go) usleep(1000);
    return NULL;
}

static void processes(void) {
    signal(SIGUSR1, on_usr1);
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    while (!thread_tid) usleep(1000);
    printf("kill 0 of a thread id: %s\n", err(kill(thread_tid, 0)));
    printf("kill of a thread id: %s\n", err(kill(thread_tid, SIGUSR1)));
    for (int i = 0; i < 200 && !usr1; i++) usleep(5000);
    printf("signal to a thread id reaches the process: %d\n", (int)usr1);
    thread_go = 1;
    pthread_join(t, NULL);

    cpu_set_t all, one;
    sched_getaffinity(0, sizeof all, &all);
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    printf("sched_setaffinity cpu 0: %s\n", err(sched_setaffinity(0, sizeof one, &one)));
    pid_t c = fork();
    if (c == 0) {
        cpu_set_t s;
        sched_getaffinity(0, sizeof s, &s);
        _exit(CPU_COUNT(&s) == 1 && CPU_ISSET(0, &s) ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    printf("affinity inherited by fork: %s\n", WEXITSTATUS(st) == 0 ? "cpu 0 only" : "other");
    sched_setaffinity(0, sizeof all, &all);
    cpu_set_t none;
    CPU_ZERO(&none);
    printf("sched_setaffinity of no cpu: %s\n", err(sched_setaffinity(0, sizeof none, &none)));
}

// ---- clone3, pidfds and waitid(P_PIDFD) ----

static long clone3_raw(struct clone_args *a, size_t size) { return syscall(SYS_clone3, a, size); }

static void pidfds(void) {
    struct clone_args a;
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    printf("clone3 size 32: %s\n", err(clone3_raw(&a, 32)));
    a.exit_signal = 65;
    printf("clone3 exit_signal 65: %s\n", err(clone3_raw(&a, sizeof a)));
    a.exit_signal = SIGCHLD;
    a.flags = CLONE_INTO_CGROUP;
    a.cgroup = 1000;
    printf("clone3 CLONE_INTO_CGROUP of a closed fd: %s\n", err(clone3_raw(&a, sizeof a)));
    a.flags = CLONE_SIGHAND | CLONE_CLEAR_SIGHAND | CLONE_VM;
    a.cgroup = 0;
    printf("clone3 CLONE_SIGHAND|CLONE_CLEAR_SIGHAND: %s\n", err(clone3_raw(&a, sizeof a)));

    int pidfd = -1;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_PIDFD;
    a.pidfd = (uint64_t)(uintptr_t)&pidfd;
    a.exit_signal = SIGCHLD;
    long pid = clone3_raw(&a, sizeof a);
    if (pid == 0) {
        usleep(200000);
        _exit(7);
    }
    printf("clone3 CLONE_PIDFD: %s\n", pid > 0 && pidfd >= 0 ? "pid and pidfd" : strerrorname_np(errno));
    printf("pidfd is close-on-exec: %d\n", fcntl(pidfd, F_GETFD) == FD_CLOEXEC);
    struct pollfd pf = {pidfd, POLLIN, 0};
    printf("poll of a running child's pidfd: %d\n", poll(&pf, 1, 0));
    pf.revents = 0;
    printf("poll once it exits: %d", poll(&pf, 1, 5000));
    printf(" revents %#x\n", pf.revents);
    siginfo_t si = {0};
    printf("waitid P_PIDFD: %s", err(waitid(P_PIDFD, pidfd, &si, WEXITED)));
    printf(" pid ok %d status %d\n", si.si_pid == pid, si.si_status);
    printf("waitid P_PIDFD once reaped: %s\n", err(waitid(P_PIDFD, pidfd, &si, WEXITED | WNOHANG)));
    close(pidfd);
    printf("waitid P_PIDFD of a closed fd: %s\n", err(waitid(P_PIDFD, pidfd, &si, WEXITED)));

    // Legacy clone with CLONE_PIDFD puts the pidfd at the parent_tid slot.
    pidfd = -1;
    pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, 0, 0);
    if (pid == 0) _exit(3);
    int st;
    waitpid(pid, &st, 0);
    printf("clone CLONE_PIDFD: %s exit %d\n", pidfd >= 0 ? "pidfd" : "none", WEXITSTATUS(st));
    printf("clone CLONE_PIDFD|CLONE_PARENT_SETTID: %s\n",
           err(syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &pidfd, 0, 0)));
    close(pidfd);

    pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    pidfd = syscall(SYS_pidfd_open, pid, 0);
    printf("pidfd_open of a child: %s\n", pidfd >= 0 ? "ok" : strerrorname_np(errno));
    printf("pidfd_open bad flags: %s\n", err(syscall(SYS_pidfd_open, pid, 1)));
    printf("pidfd_open of no process: %s\n", err(syscall(SYS_pidfd_open, 0x3fffffff, 0)));
    printf("pidfd_open of pid 0: %s\n", err(syscall(SYS_pidfd_open, 0, 0)));
    printf("pidfd_send_signal two scopes: %s\n", err(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 3)));
    printf("pidfd_send_signal unknown flag: %s\n", err(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 8)));
    printf("pidfd_send_signal 0 to the thread: %s\n", err(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 1)));
    printf("pidfd_send_signal 0 to the group it does not lead: %s\n",
           err(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 4)));
    setpgid(pid, pid);
    printf("pidfd_send_signal 0 to the group it leads: %s\n", err(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 4)));
    printf("pidfd_send_signal of stdin: %s\n", err(syscall(SYS_pidfd_send_signal, 0, SIGKILL, NULL, 0)));
    printf("pidfd_send_signal SIGKILL: %s\n", err(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0)));
    memset(&si, 0, sizeof si);
    waitid(P_PIDFD, pidfd, &si, WEXITED);
    printf("killed through the pidfd: code %s sig %d\n", si.si_code == CLD_KILLED ? "CLD_KILLED" : "other",
           si.si_status);
    printf("pidfd_send_signal after the reap: %s\n", err(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0)));
    close(pidfd);

    pthread_t t;
    thread_tid = 0;
    thread_go = 0;
    pthread_create(&t, NULL, sleeper, NULL);
    while (!thread_tid) usleep(1000);
    printf("pidfd_open of a thread: %s\n", err(syscall(SYS_pidfd_open, thread_tid, 0)));
    thread_go = 1;
    pthread_join(t, NULL);
}

// ---- membarrier and futex_waitv ----

static long membarrier(int cmd, unsigned flags) { return syscall(SYS_membarrier, cmd, flags, 0); }

#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE FUTEX_PRIVATE_FLAG
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
struct waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t __reserved;
};
static atomic_int w1, w2;
static void *waker(void *arg) {
    (void)arg;
    usleep(200000);
    atomic_store(&w2, 1);
    syscall(SYS_futex, &w2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return NULL;
}

static void barriers_and_futexes(void) {
    long q = membarrier(MEMBARRIER_CMD_QUERY, 0);
    printf("membarrier query has GLOBAL and PRIVATE_EXPEDITED: %d\n",
           q > 0 && (q & MEMBARRIER_CMD_GLOBAL) && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED));
    printf("membarrier GLOBAL: %s\n", err(membarrier(MEMBARRIER_CMD_GLOBAL, 0)));
    printf("membarrier PRIVATE_EXPEDITED unregistered: %s\n", err(membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0)));
    printf("membarrier REGISTER_PRIVATE_EXPEDITED: %s\n",
           err(membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0)));
    printf("membarrier PRIVATE_EXPEDITED: %s\n", err(membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0)));
    printf("membarrier bad flags: %s\n", err(membarrier(MEMBARRIER_CMD_GLOBAL, 4)));
    printf("membarrier unknown command: %s\n", err(membarrier(1 << 20, 0)));

    struct waitv v[2] = {
        {0, (uint64_t)(uintptr_t)&w1, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, 0},
        {0, (uint64_t)(uintptr_t)&w2, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, 0},
    };
    printf("futex_waitv of none: %s\n", err(syscall(SYS_futex_waitv, v, 0, 0, NULL, CLOCK_MONOTONIC)));
    printf("futex_waitv flags: %s\n", err(syscall(SYS_futex_waitv, v, 2, 1, NULL, CLOCK_MONOTONIC)));
    v[0].val = 5;
    printf("futex_waitv of a changed word: %s\n", err(syscall(SYS_futex_waitv, v, 2, 0, NULL, CLOCK_MONOTONIC)));
    v[0].val = 0;
    struct timespec past;
    clock_gettime(CLOCK_MONOTONIC, &past);
    printf("futex_waitv past deadline: %s\n", err(syscall(SYS_futex_waitv, v, 2, 0, &past, CLOCK_MONOTONIC)));
    v[1].flags = 0;
    printf("futex_waitv without a size: %s\n", err(syscall(SYS_futex_waitv, v, 2, 0, NULL, CLOCK_MONOTONIC)));
    v[1].flags = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
    pthread_t t;
    pthread_create(&t, NULL, waker, NULL);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 5;
    printf("futex_waitv woken on the second word: %s\n",
           err(syscall(SYS_futex_waitv, v, 2, 0, &dl, CLOCK_MONOTONIC)));
    pthread_join(t, NULL);
}

// ---- poll results, timeouts, epoll nesting, init's blocked signals, altstack overflow ----

static char *volatile *shared_low;
static void deeper(int s) {
    char here;
    if (&here < *shared_low) *shared_low = &here;
    raise(s);
}

static void events_and_stacks(void) {
    int p[2];
    pipe(p);
    close(p[0]);
    struct pollfd pf = {p[1], POLLOUT, 0};
    printf("poll of a pipe without readers: %d", poll(&pf, 1, 0));
    printf(" POLLOUT %d POLLERR %d\n", !!(pf.revents & POLLOUT), !!(pf.revents & POLLERR));
    close(p[1]);

    struct timespec ts = {0, 10000000};
    printf("ppoll of nothing: %s", err(syscall(SYS_ppoll, NULL, 0, &ts, NULL, 8)));
    printf(" time left %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
    struct timeval tv = {0, 10000};
    printf("select of nothing: %s", err(select(0, NULL, NULL, NULL, &tv)));
    printf(" time left %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);

    int e[3];
    for (int i = 0; i < 3; i++) e[i] = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {0}};
    epoll_ctl(e[0], EPOLL_CTL_ADD, e[1], &ev);
    epoll_ctl(e[1], EPOLL_CTL_ADD, e[2], &ev);
    printf("epoll cycle of three: %s\n", err(epoll_ctl(e[2], EPOLL_CTL_ADD, e[0], &ev)));
    for (int i = 0; i < 3; i++) close(e[i]);

    // The program is the container's init: a signal it blocks is queued
    // even with the default action (a signalfd or sigwait takes it).
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR2);
    sigpending(&pending);
    printf("init's blocked SIGUSR2 is pending: %d\n", sigismember(&pending, SIGUSR2));
    struct timespec zero = {0, 0};
    printf("sigtimedwait takes it: %s\n", sigtimedwait(&set, NULL, &zero) == SIGUSR2 ? "SIGUSR2" : "none");
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    // Nested handlers on an alternate stack that overflow it: the thread
    // dies of SIGSEGV before a frame is written below the stack.
    shared_low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *area = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *alt = area + (1 << 20) - 65536;
    *shared_low = alt + 65536;
    pid_t c = fork();
    if (c == 0) {
        stack_t st = {.ss_sp = alt, .ss_size = 65536, .ss_flags = 0};
        sigaltstack(&st, NULL);
        struct sigaction sa = {0};
        sa.sa_handler = deeper;
        sa.sa_flags = SA_ONSTACK | SA_NODEFER;
        sigaction(SIGUSR2, &sa, NULL);
        raise(SIGUSR2);
        _exit(0);
    }
    int status = 0;
    int i = 0;
    for (; i < 1000 && waitpid(c, &status, WNOHANG) == 0; i++) usleep(10000);
    if (i == 1000) {
        kill(c, SIGKILL);
        waitpid(c, &status, 0);
        printf("altstack overflow: TIMEOUT\n");
        return;
    }
    printf("altstack overflow: killed by %s, frames stayed on it %d\n",
           WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "nothing", *shared_low >= alt);
}

// ---- mremap of shared memory: its pages stay the object's, wherever mapped ----

static char shown(const char *p, long at) {
    return p == MAP_FAILED ? '-' : p[at];
}

static void shared_remaps(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *a = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    a[0] = 'x';
    char *b = mremap(a, 0, 2 * pg, MREMAP_MAYMOVE);
    if (b != MAP_FAILED) b[1] = 'y';
    printf("mremap old_len 0 of shared memory: %s, sees %c, shares %c\n",
           b == MAP_FAILED ? strerrorname_np(errno) : "ok", shown(b, 0), a[1]);
    char *c = mremap(a, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    if (c != MAP_FAILED) c[2] = 'z';
    printf("mremap DONTUNMAP of shared memory: %s, old range shares %c\n",
           c == MAP_FAILED ? strerrorname_np(errno) : "ok", a[2]);
    char *d = mremap(b, 2 * pg, 4 * pg, MREMAP_MAYMOVE);
    if (d != MAP_FAILED) d[3 * pg] = 'v';
    printf("mremap growth of shared memory: %s, data %c%c%c, grown part %c\n",
           d == MAP_FAILED ? strerrorname_np(errno) : "ok", shown(d, 0), shown(d, 1), shown(d, 2), a[3 * pg]);
    char *big = mremap(d, 4 * pg, 6 * pg, MREMAP_MAYMOVE);
    int status = 0;
    if (big != MAP_FAILED) {
        pid_t c = fork();
        if (c == 0) {
            big[5 * pg] = 'u';
            _exit(0);
        }
        waitpid(c, &status, 0);
    }
    printf("mremap growth past the shared object: %s, a touch there is %s\n",
           big == MAP_FAILED ? strerrorname_np(errno) : "ok",
           WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "allowed");
    printf("mremap of an unmapped address, same size: %s\n",
           mremap((void *)0x10000, pg, pg, 0) == MAP_FAILED ? strerrorname_np(errno) : "ok");

    int fd = memfd_create("remap", 0);
    ftruncate(fd, 4 * pg);
    char *m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *g = mremap(m, pg, 3 * pg, MREMAP_MAYMOVE);
    char seen = '-';
    if (g != MAP_FAILED) {
        g[2 * pg] = 'w';
        pread(fd, &seen, 1, 2 * pg);
    }
    printf("mremap growth of a shared file mapping: %s, the file sees %c\n",
           g == MAP_FAILED ? strerrorname_np(errno) : "ok", seen);
    pwrite(fd, "f", 1, 0);
    pwrite(fd, "n", 1, 2 * pg);
    char *pv = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *pg3 = mremap(pv, pg, 3 * pg, MREMAP_MAYMOVE);
    printf("mremap growth of a private file mapping: %s, shows the file's %c\n",
           pg3 == MAP_FAILED ? strerrorname_np(errno) : "ok", shown(pg3, 2 * pg));
    char *q = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    q[0] = 'p';
    char *r = mremap(q, pg, pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    printf("mremap DONTUNMAP of a private file mapping: %s, moved %c, old range reads %c\n",
           r == MAP_FAILED ? strerrorname_np(errno) : "ok", shown(r, 0), q[0]);
    close(fd);
}

/* fallocate on a shmem file reserves its pages: st_blocks counts them
 * (they are memory of the container), KEEP_SIZE too, a punched hole
 * gives them back. */
static void allocations(void) {
    int fd = memfd_create("alloc", 0);
    struct stat st;
    printf("fallocate 1 MiB: %s", err(fallocate(fd, 0, 0, 1 << 20)));
    fstat(fd, &st);
    printf(", size %lld, blocks %lld\n", (long long)st.st_size, (long long)st.st_blocks);
    printf("fallocate keep size 64 KiB past the end: %s",
           err(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 64 << 10)));
    fstat(fd, &st);
    printf(", size %lld, blocks %lld\n", (long long)st.st_size, (long long)st.st_blocks);
    printf("punch 64 KiB: %s", err(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 64 << 10)));
    fstat(fd, &st);
    printf(", size %lld, blocks %lld\n", (long long)st.st_size, (long long)st.st_blocks);
    close(fd);
}

/* Access times under relatime: following a symlink and reading a file
 * move an atime that is not after the last change, a second read right
 * after does not. */
static void access_times(void) {
    const char *f = "/dev/shm/at-file", *l = "/dev/shm/at-link";
    int fd = open(f, O_CREAT | O_RDWR, 0644);
    write(fd, "x", 1);
    symlink(f, l);
    struct timespec old[2] = {{1, 0}, {1, 0}};
    utimensat(AT_FDCWD, l, old, AT_SYMLINK_NOFOLLOW);
    utimensat(AT_FDCWD, f, old, 0);
    struct stat st, ls;
    stat(l, &st);
    lstat(l, &ls);
    printf("following a link moves its atime: %s\n", ls.st_atime > 1 ? "yes" : "no");
    char b;
    pread(fd, &b, 1, 0);
    fstat(fd, &st);
    printf("a read moves the atime: %s\n", st.st_atime > 1 ? "yes" : "no");
    struct timespec t1 = st.st_atim;
    pread(fd, &b, 1, 0);
    fstat(fd, &st);
    printf("a second read leaves it: %s\n",
           st.st_atim.tv_sec == t1.tv_sec && st.st_atim.tv_nsec == t1.tv_nsec ? "yes" : "no");
    unlink(l);
    unlink(f);
    close(fd);
}

/* PROT_NONE reservations (as Go's arenas): a touch is SIGSEGV with
 * SEGV_ACCERR, mprotect opens a part (zero-filled), a PROT_NONE mapping
 * over written memory hides it and mprotect then shows zeros. */
static sigjmp_buf touch_jb;
static volatile int touch_code;
static void on_touch(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    touch_code = si->si_code;
    siglongjmp(touch_jb, 1);
}
static const char *touch(volatile char *p) {
    touch_code = 0;
    if (sigsetjmp(touch_jb, 1)) return touch_code == SEGV_ACCERR ? "SEGV_ACCERR" : "SEGV other";
    *p = 1;
    return "ok";
}
static void reservations(void) {
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = on_touch;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &old);
    size_t len = 64 << 20;
    char *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("reservation touch: %s\n", touch(r + (8 << 20)));
    mprotect(r + (8 << 20), 1 << 20, PROT_READ | PROT_WRITE);
    printf("opened part: %s, reads %d\n", touch(r + (8 << 20) + 4096), r[(8 << 20) + 8192]);
    printf("beside it: %s\n", touch(r + (9 << 20)));
    char *w = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(w, 7, 1 << 20);
    mmap(w, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("none over written memory: %s\n", touch(w + 100));
    mprotect(w, 1 << 20, PROT_READ);
    printf("reopened reads %d\n", w[100]);
    munmap(r, len);
    munmap(w, 1 << 20);
    sigaction(SIGSEGV, &old, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    allocations();
    reservations();
    access_times();
    async_io();
    paths();
    processes();
    pidfds();
    barriers_and_futexes();
    events_and_stacks();
    shared_remaps();
    return 0;
}
