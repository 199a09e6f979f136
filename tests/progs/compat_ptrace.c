// ptrace between processes of one container, as a debugger or strace uses
// it: TRACEME and ATTACH, signal-delivery stops, syscall stops (seeing and
// changing the syscall number and its result), PEEKDATA/POKEDATA,
// GETREGS/SETREGS, GETSIGINFO, signal injection, fork events, KILL, and
// the permission checks. One line per behaviour, no pids printed; compared
// with the host kernel by crates/atoll/tests/userspace_compat.rs.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long word = 1234;

static const char *en(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    default: return strerror(e);
    }
}

static const char *st(int s) {
    static char buf[64];
    if (WIFEXITED(s))
        snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(s));
    else if (WIFSIGNALED(s))
        snprintf(buf, sizeof buf, "killed by %d", WTERMSIG(s));
    else if (WIFSTOPPED(s))
        snprintf(buf, sizeof buf, "stopped by %d event %d", WSTOPSIG(s), s >> 16);
    else
        snprintf(buf, sizeof buf, "status %#x", s);
    return buf;
}

// A child that asks to be traced and stops itself.
static pid_t traced_child(void (*body)(void)) {
    pid_t p = fork();
    if (p == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(100);
        raise(SIGSTOP);
        body();
        _exit(0);
    }
    int s;
    waitpid(p, &s, 0);
    printf("traceme child: %s\n", st(s));
    return p;
}

static void peek_body(void) { _exit((int)(word & 0xff)); }

static void syscall_body(void) {
    long r = syscall(SYS_getppid);
    long skipped = syscall(SYS_getpid);
    _exit(r == 4242 && skipped == 77 ? 0 : 1);
}

static volatile int got;
static void on_usr2(int s) { got = s; }
static void signal_body(void) {
    signal(SIGUSR2, on_usr2);
    raise(SIGUSR1);
    _exit(got);
}

static void fork_body(void) {
    pid_t g = fork();
    if (g == 0) _exit(7);
    int s;
    waitpid(g, &s, 0);
    _exit(WIFEXITED(s) ? WEXITSTATUS(s) : 99);
}

// Signals left pending (blocked) before a stop: three for the thread (an
// RT signal queued twice, a standard one sent twice is queued once) and
// one for the process.
static void queued_body(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, 40);
    sigprocmask(SIG_BLOCK, &m, 0);
    pid_t me = getpid(), tid = (pid_t)syscall(SYS_gettid);
    syscall(SYS_tgkill, me, tid, 40);
    syscall(SYS_tgkill, me, tid, SIGUSR2);
    syscall(SYS_tgkill, me, tid, 40);
    syscall(SYS_tgkill, me, tid, SIGUSR2);
    kill(me, SIGUSR1);
    raise(SIGSTOP);
    _exit(0);
}

struct peek_args {
    unsigned long long off;
    unsigned int flags;
    int nr;
};

static void peek_siginfo(pid_t c, const char *what, unsigned long long off, unsigned flags, int nr) {
    struct peek_args a = {off, flags, nr};
    siginfo_t q[8];
    memset(q, 0, sizeof q);
    long n = ptrace(0x4209 /* PTRACE_PEEKSIGINFO */, c, &a, q);
    if (n < 0) {
        printf("peeksiginfo %s: %s\n", what, en(errno));
        return;
    }
    printf("peeksiginfo %s: %ld:", what, n);
    for (long i = 0; i < n && i < 8; i++)
        printf(" %d/%d%s", q[i].si_signo, q[i].si_code, q[i].si_pid == c ? " from itself" : "");
    printf("\n");
}

static volatile pid_t thread_tid;
static void exit3_body(void) { _exit(3); }

static void *spin(void *a) {
    (void)a;
    thread_tid = (pid_t)syscall(SYS_gettid);
    for (;;) pause();
    return 0;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    int s;

    // PEEKDATA / POKEDATA: read the child's word, write another.
    pid_t c = traced_child(peek_body);
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, c, &word, 0);
    printf("peekdata: %ld (%s)\n", v, en(errno));
    printf("pokedata: %s\n", ptrace(PTRACE_POKEDATA, c, &word, 42L) == 0 ? "ok" : en(errno));
    errno = 0;
    ptrace(PTRACE_PEEKDATA, c, (void *)8, 0);
    printf("peekdata of an unmapped address: %s\n", en(errno));
    errno = 0;
    ptrace(PTRACE_POKETEXT, c, (void *)main, 0xccL);
    printf("poketext into the program's code: %s\n", en(errno));
    errno = 0;
    v = ptrace(PTRACE_PEEKTEXT, c, (void *)main, 0);
    printf("peektext reads it back: %s\n", (v & 0xff) == 0xcc ? "0xcc" : "other");
    ptrace(PTRACE_POKETEXT, c, (void *)main, *(long *)(void *)main);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("child after pokedata: %s\n", st(s));
    // The parent's own code is untouched by the child's copy-on-write.
    printf("tracer's code unchanged: %s\n", (*(unsigned char *)(void *)main) != 0xcc ? "yes" : "no");

    // Syscall stops: see getppid enter and exit, change its result; skip
    // getpid by setting the number to -1.
    c = traced_child(syscall_body);
    ptrace(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
    int stops = 0, changed = 0, skipped = 0;
    for (;;) {
        ptrace(PTRACE_SYSCALL, c, 0, 0);
        waitpid(c, &s, 0);
        if (!WIFSTOPPED(s)) break;
        if (WSTOPSIG(s) != (SIGTRAP | 0x80)) continue;
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, c, 0, &r);
        if (r.orig_rax == SYS_getppid) {
            stops++;
            if (stops == 1) printf("getppid enter: rax %lld\n", (long long)r.rax);
            if (stops == 2) {
                printf("getppid exit: result is the tracer %s\n", (pid_t)r.rax == getpid() ? "yes" : "no");
                r.rax = 4242;
                ptrace(PTRACE_SETREGS, c, 0, &r);
                changed = 1;
            }
        } else if (r.orig_rax == SYS_getpid && !skipped) {
            r.orig_rax = -1;
            ptrace(PTRACE_SETREGS, c, 0, &r);
            skipped = 1;
        } else if (r.orig_rax == (unsigned long long)-1 && skipped == 1) {
            // The skipped call's exit stop: its result is the tracer's.
            // (Set here, not at entry: a seccomp profile on the host
            // answers syscall -1 itself.)
            r.rax = 77;
            ptrace(PTRACE_SETREGS, c, 0, &r);
            skipped = 2;
        }
    }
    printf("syscall stops seen for getppid: %d, changed %d, skipped getpid %d\n", stops, changed, skipped == 2);
    printf("child after syscall tracing: %s\n", st(s));

    // Signal-delivery stop, GETSIGINFO, injecting another signal.
    c = traced_child(signal_body);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("signal stop: %s\n", st(s));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    ptrace(PTRACE_GETSIGINFO, c, 0, &si);
    printf("siginfo: signo %d code %d\n", si.si_signo, si.si_code);
    ptrace(PTRACE_CONT, c, 0, SIGUSR2);
    waitpid(c, &s, 0);
    printf("child after injection: %s\n", st(s));

    // Fork events: the grandchild is traced from its start.
    c = traced_child(fork_body);
    ptrace(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEFORK);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("fork event: %s\n", st(s));
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, c, 0, &msg);
    pid_t g = (pid_t)msg;
    printf("grandchild wait: %s\n", waitpid(g, &s, __WALL) == g ? st(s) : en(errno));
    ptrace(PTRACE_CONT, g, 0, 0);
    waitpid(g, &s, __WALL);
    printf("grandchild: %s\n", st(s));
    // Its SIGCHLD for the grandchild's exit stops it too: let it through.
    int sigstops = 0;
    int sig = 0;
    for (;;) {
        ptrace(PTRACE_CONT, c, 0, sig);
        waitpid(c, &s, 0);
        if (!WIFSTOPPED(s)) break;
        sig = WSTOPSIG(s);
        sigstops += sig == SIGCHLD;
    }
    printf("child after fork event: %s, SIGCHLD stops %d\n", st(s), sigstops);

    // PTRACE_O_TRACEEXIT: a stop before the exit, with the status.
    c = traced_child(exit3_body);
    ptrace(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("exit event: %s\n", st(s));
    msg = 0;
    ptrace(PTRACE_GETEVENTMSG, c, 0, &msg);
    printf("exit event message: %s\n", st((int)msg));
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("after the exit stop: %s\n", st(s));

    // PEEKSIGINFO: the queued siginfos, in the order they were queued.
    c = traced_child(queued_body);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("stop with signals pending: %s\n", st(s));
    peek_siginfo(c, "thread", 0, 0, 8);
    peek_siginfo(c, "process", 0, 1, 8);
    peek_siginfo(c, "thread from 1, one", 1, 0, 1);
    peek_siginfo(c, "past the end", 5, 0, 8);
    peek_siginfo(c, "none asked", 0, 0, 0);
    peek_siginfo(c, "unknown flag", 0, 2, 8);
    peek_siginfo(c, "negative count", 0, 0, -1);
    {
        struct peek_args a = {0, 0, 8};
        printf("peeksiginfo into an unmapped buffer: %s\n",
               ptrace(0x4209, c, &a, (void *)8) < 0 ? en(errno) : "ok");
    }
    ptrace(PTRACE_KILL, c, 0, 0);
    waitpid(c, &s, 0);
    printf("after peeksiginfo: %s\n", st(s));

    // Permissions and misuse.
    printf("attach to self: %s\n", ptrace(PTRACE_ATTACH, getpid(), 0, 0) == 0 ? "ok" : en(errno));
    pthread_t th;
    pthread_create(&th, 0, spin, 0);
    while (!thread_tid) usleep(1000);
    printf("attach to own thread: %s\n", ptrace(PTRACE_ATTACH, thread_tid, 0, 0) == 0 ? "ok" : en(errno));
    printf("request on a non-tracee: %s\n", ptrace(PTRACE_CONT, getpid(), 0, 0) == 0 ? "ok" : en(errno));
    c = fork();
    if (c == 0) {
        for (;;) pause();
    }
    printf("attach: %s\n", ptrace(PTRACE_ATTACH, c, 0, 0) == 0 ? "ok" : en(errno));
    waitpid(c, &s, 0);
    printf("attached child: %s\n", st(s));
    pid_t other = fork();
    if (other == 0) {
        _exit(ptrace(PTRACE_ATTACH, c, 0, 0) == 0 ? 0 : errno);
    }
    waitpid(other, &s, 0);
    printf("second tracer: %s\n", WEXITSTATUS(s) == EPERM ? "EPERM" : st(s));
    printf("bad option: %s\n", ptrace(PTRACE_SETOPTIONS, c, 0, 0x40000000L) == 0 ? "ok" : en(errno));
    printf("kill: %s\n", ptrace(PTRACE_KILL, c, 0, 0) == 0 ? "ok" : en(errno));
    waitpid(c, &s, 0);
    printf("killed child: %s\n", st(s));
    return 0;
}
