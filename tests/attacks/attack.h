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
