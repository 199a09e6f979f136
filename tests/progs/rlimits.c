// Resource limits as Linux enforces them: RLIMIT_AS, RLIMIT_DATA,
// RLIMIT_FSIZE (SIGXFSZ, EFBIG), RLIMIT_NOFILE, RLIMIT_NPROC and
// RLIMIT_STACK, each in a child process. Prints one line per check; the
// test compares the output with a native run.
// Usage: rlimits DIR   (DIR: a writable directory)
//        rlimits recurse KIB   (internal: uses KIB of stack)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

// Sets the soft limit, keeping the hard one.
static void setlim(int res, rlim_t cur) {
    struct rlimit r;
    getrlimit(res, &r);
    r.rlim_cur = cur;
    if (setrlimit(res, &r) != 0) perror("setrlimit");
}

// Runs f in a child; prints how it ended.
static void in_child(const char *what, void (*f)(const char *), const char *arg) {
    pid_t c = fork();
    if (c == 0) {
        f(arg);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st))
        printf("%s: killed by %s\n", what, sigabbrev_np(WTERMSIG(st)));
    else
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
}

static void as_limit(const char *unused) {
    (void)unused;
    setlim(RLIMIT_AS, 512 << 20);
    void *p = mmap(0, 1L << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("AS: 1 GiB %s", p == MAP_FAILED ? err(-1) : "mapped");
    p = mmap(0, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf(", 16 MiB %s", p == MAP_FAILED ? err(-1) : "mapped");
    p = mmap(0, 1L << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf(", 1 GiB reservation %s", p == MAP_FAILED ? err(-1) : "mapped");
    errno = 0;
    void *b = sbrk(1 << 30);
    printf(", sbrk 1 GiB %s\n", b == (void *)-1 ? strerrorname_np(errno) : "moved");
}

static void data_limit(const char *unused) {
    (void)unused;
    setlim(RLIMIT_DATA, 0);
    errno = 0;
    void *b = sbrk(8192);
    printf("DATA: sbrk %s", b == (void *)-1 ? strerrorname_np(errno) : "moved");
    void *p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf(", private rw %s", p == MAP_FAILED ? err(-1) : "mapped");
    p = mmap(0, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf(", private ro %s", p == MAP_FAILED ? err(-1) : "mapped");
    printf(", mprotect rw %s", err(mprotect(p, 1 << 20, PROT_READ | PROT_WRITE)));
    p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf(", shared rw %s\n", p == MAP_FAILED ? err(-1) : "mapped");
}

static volatile int xfsz;
static void on_xfsz(int s) {
    (void)s;
    xfsz++;
}

static void fsize_limit(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/fsize", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    setlim(RLIMIT_FSIZE, 1024);
    signal(SIGXFSZ, on_xfsz);
    char buf[2048];
    memset(buf, 'x', sizeof buf);
    long r1 = write(fd, buf, 1000);
    long r2 = write(fd, buf, 100);
    errno = 0;
    long r3 = write(fd, buf, 10);
    const char *e3 = strerrorname_np(errno);
    long r4 = pwrite(fd, buf, 10, 5000);
    const char *e4 = err(r4);
    const char *e5 = err(ftruncate(fd, 4096));
    const char *e6 = err(ftruncate(fd, 512));
    printf("FSIZE: write %ld, cut %ld, at limit %ld %s, past %s, grow %s, shrink %s, SIGXFSZ %d\n", r1,
           r2, r3, e3, e4, e5, e6, xfsz);
    signal(SIGXFSZ, SIG_IGN);
    errno = 0;
    long r7 = pwrite(fd, buf, 10, 2048);
    printf("FSIZE ignored: %ld %s\n", r7, strerrorname_np(errno));
    signal(SIGXFSZ, SIG_DFL);
    unlink(path);
    pwrite(fd, buf, 10, 2048);
    printf("FSIZE default: survived\n");
}

static void nofile_limit(const char *unused) {
    (void)unused;
    setlim(RLIMIT_NOFILE, 10);
    int n = 0;
    while (open("/dev/null", O_RDONLY) >= 0) n++;
    printf("NOFILE: opened %d then %s", n, strerrorname_np(errno));
    printf(", dup2 past %s", err(dup2(0, 20)));
    printf(", F_DUPFD past %s\n", err(fcntl(0, F_DUPFD, 20)));
}

static void nproc_limit(const char *unused) {
    (void)unused;
    // An unprivileged uid nothing else on the host uses.
    if (setresgid(40000, 40000, 40000) || setresuid(40000, 40000, 40000)) {
        printf("NPROC: setuid %s\n", strerrorname_np(errno));
        return;
    }
    setlim(RLIMIT_NPROC, 3);
    int made = 0;
    pid_t kids[8];
    for (int i = 0; i < 8; i++) {
        pid_t c = fork();
        if (c == 0) {
            pause();
            _exit(0);
        }
        if (c < 0) {
            printf("NPROC: forked %d then %s\n", made, strerrorname_np(errno));
            break;
        }
        kids[made++] = c;
    }
    for (int i = 0; i < made; i++) kill(kids[i], SIGKILL);
    while (wait(0) > 0) {
    }
}

static int recurse(int depth) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (depth <= 0) return pad[0];
    return recurse(depth - 1) + pad[0];
}

static const char *self;
static void stack_limit(const char *kib) {
    setlim(RLIMIT_STACK, 256 << 10);
    // The main thread's stack is sized at exec.
    execl(self, self, "recurse", kib, (char *)0);
    _exit(99);
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    self = argv[0];
    if (argc > 2 && !strcmp(argv[1], "recurse")) {
        recurse(atoi(argv[2]));
        printf("recursed %s KiB\n", argv[2]);
        return 0;
    }
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    in_child("AS", as_limit, 0);
    in_child("DATA", data_limit, 0);
    in_child("FSIZE", fsize_limit, dir);
    in_child("NOFILE", nofile_limit, 0);
    in_child("NPROC", nproc_limit, 0);
    in_child("STACK 64 KiB", stack_limit, "64");
    in_child("STACK 1 MiB", stack_limit, "1024");
    printf("done\n");
    return 0;
}
