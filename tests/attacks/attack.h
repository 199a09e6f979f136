/* Shared by the attack programs of tests/attacks (compiled statically at
 * test time by crates/atoll/tests/attacks.rs, which pastes this header in
 * place of its #include line).
 *
 * Protocol with the test, on standard output:
 *   INFO <text>                 details, not part of the verdict
 *   WAIT                        the program waits for SIGUSR1 ("go") while
 *                               the host gets ready (e.g. starts a watcher)
 *   READY                       the program holds until SIGTERM while the
 *                               host looks at it from outside
 *   ATTACK <name> <VERDICT> <how>   exactly once; VERDICT is BLOCKED,
 *                               HARMLESS or ESCAPED; <how> is stable text
 *                               (it goes into docs/security.md), anything
 *                               that varies from run to run is an INFO.
 * Parameters come from the environment (ATTACK_MARKER, ATTACK_SECRET, ...):
 * the attacker is assumed to know every host path the test uses. */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *attack_name = "unnamed";
static int verdict_given;

static __attribute__((unused)) const char *ename(int e) {
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case ESRCH: return "ESRCH";
    case EINTR: return "EINTR"; case EIO: return "EIO"; case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG"; case ENOEXEC: return "ENOEXEC"; case EBADF: return "EBADF";
    case ECHILD: return "ECHILD"; case EAGAIN: return "EAGAIN"; case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES"; case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST"; case EXDEV: return "EXDEV"; case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR"; case EISDIR: return "EISDIR"; case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE"; case EMFILE: return "EMFILE"; case ETXTBSY: return "ETXTBSY";
    case ENOSPC: return "ENOSPC"; case EROFS: return "EROFS"; case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP"; case ENOKEY: return "ENOKEY"; case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT"; case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ECONNREFUSED: return "ECONNREFUSED"; case ENETUNREACH: return "ENETUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT"; case EHOSTUNREACH: return "EHOSTUNREACH";
    case ESTALE: return "ESTALE"; case EDQUOT: return "EDQUOT"; case ENOTSOCK: return "ENOTSOCK";
    case ENOTCONN: return "ENOTCONN"; case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    default: { static char b[4][16]; static int i; i = (i + 1) % 4; snprintf(b[i], sizeof b[i], "E%d", e); return b[i]; }
    }
}

static __attribute__((unused)) void info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("INFO ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static __attribute__((unused)) void verdict(const char *kind, const char *fmt, ...) {
    if (verdict_given++) return;
    va_list ap;
    va_start(ap, fmt);
    printf("ATTACK %s %s ", attack_name, kind);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static __attribute__((unused)) const char *param(const char *name) {
    const char *v = getenv(name);
    if (!v) {
        printf("INFO missing parameter %s\n", name);
        fflush(stdout);
        exit(2);
    }
    return v;
}

static volatile sig_atomic_t got_go, got_term;
static void on_go(int s) { (void)s; got_go = 1; }
static void on_term(int s) { (void)s; got_term = 1; }

/* Installs the handlers for WAIT and READY; call first thing in main
 * (the container's init has no default action for these signals). */
static __attribute__((unused)) void protocol_init(const char *name) {
    attack_name = name;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_go;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
}

static __attribute__((unused)) void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !got_term) {}
}

/* Waits for the host's "go" (SIGUSR1), at most `secs` seconds. */
static __attribute__((unused)) void wait_go(int secs) {
    puts("WAIT");
    fflush(stdout);
    for (int i = 0; i < secs * 100 && !got_go && !got_term; i++) sleep_ms(10);
}

/* Lets the host look from outside until it sends SIGTERM (at most `secs`). */
static __attribute__((unused)) void hold(int secs) {
    puts("READY");
    fflush(stdout);
    for (int i = 0; i < secs * 100 && !got_term; i++) sleep_ms(10);
}

/* Reads a whole small file; returns bytes read or -errno. */
static __attribute__((unused)) long read_file(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    long n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0) return -e;
    buf[n] = 0;
    return n;
}

/* Writes a string to a file; returns 0 or errno. */
static __attribute__((unused)) int write_file(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int r = write(fd, s, strlen(s)) < 0 ? errno : 0;
    close(fd);
    return r;
}

/* 0 if `path` (opened relative to dirfd) holds `secret`, else an errno
 * (EACCES if it opened a file that does not hold the secret). */
static __attribute__((unused)) int try_secret_at(int dirfd, const char *path, const char *secret) {
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char buf[512] = {0};
    long n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0 && strstr(buf, secret)) return 0;
    return EACCES;
}

/* ---- The systrap platform's stub (userspace level). The attacker knows
 * the design: the stub's code sits at STUB_BASE in every stub process,
 * each thread's slot is its GS base. */
#define STUB_BASE 0x7ff000000000UL
#define STUB_CODE_SIZE 0x4000UL

static sigjmp_buf probe_jmp;
static void probe_fault(int s) { (void)s; siglongjmp(probe_jmp, 1); }

/* Whether `addr` can be read (a fault is caught, not fatal). */
static __attribute__((unused)) int readable(const void *addr) {
    struct sigaction sa, old_segv, old_bus;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = probe_fault;
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    int ok = 0;
    if (!sigsetjmp(probe_jmp, 1)) {
        volatile unsigned char c = *(volatile const unsigned char *)addr;
        (void)c;
        ok = 1;
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    return ok;
}

/* Address of `pat` in the stub's code, or 0 (no systrap stub here). */
static __attribute__((unused)) unsigned long stub_find(const unsigned char *pat, size_t n) {
    if (!readable((void *)STUB_BASE)) return 0;
    const unsigned char *c = (const unsigned char *)STUB_BASE;
    for (size_t i = 0; i + n <= STUB_CODE_SIZE && readable(c + i + n - 1); i++)
        if (!memcmp(c + i, pat, n)) return STUB_BASE + i;
    return 0;
}

/* The stub's rt_sigreturn sequence (mov $15,%eax; syscall; ud2): its
 * `syscall` is a host syscall instruction the workload can jump to. */
static __attribute__((unused)) unsigned long stub_syscall_insn(void) {
    static const unsigned char pat[] = {0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b};
    unsigned long a = stub_find(pat, sizeof pat);
    return a ? a + 5 : 0;
}

/* Runs `fn` in a child; its wait status. */
static __attribute__((unused)) int in_child(void (*fn)(void *), void *arg) {
    pid_t p = fork();
    if (p == 0) {
        fn(arg);
        _exit(0);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) < 0) return -1;
    return st;
}

/* Like in_child, but a child that has not ended after `secs` seconds
 * (a process that hurt itself into a hang) is killed with SIGKILL. */
static __attribute__((unused)) int in_child_for(void (*fn)(void *), void *arg, int secs) {
    pid_t p = fork();
    if (p == 0) {
        fn(arg);
        _exit(0);
    }
    if (p < 0) return -1;
    int st = 0;
    for (int i = 0; i < secs * 100; i++) {
        if (waitpid(p, &st, WNOHANG) == p) return st;
        sleep_ms(10);
    }
    kill(p, SIGKILL);
    return waitpid(p, &st, 0) == p ? st : -1;
}

/* The kernel still serves everyone else: a new process runs and exits. */
static __attribute__((unused)) int kernel_alive(void) {
    pid_t p = fork();
    if (p == 0) _exit(getppid() > 0 ? 7 : 8);
    int st = 0;
    return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 7;
}

static __attribute__((unused)) const char *status_text(int st) {
    static char b[4][48];
    static int i;
    i = (i + 1) % 4;
    if (st < 0) snprintf(b[i], sizeof b[i], "fork failed");
    else if (WIFSIGNALED(st)) snprintf(b[i], sizeof b[i], "killed by signal %d", WTERMSIG(st));
    else snprintf(b[i], sizeof b[i], "exit %d", WEXITSTATUS(st));
    return b[i];
}
