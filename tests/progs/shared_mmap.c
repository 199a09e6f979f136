// Shared file mappings: coherence with read/write/ftruncate through every
// descriptor and process, SIGBUS past the end of the file, msync and
// write-back, memfd seals, /dev/zero. Prints one line per check; the
// test compares the output with a native run.
// Usage: shared_mmap DIR (a tmpfs, or a bind mount of a host directory)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf jb;
static volatile int got_sig;

static void on_sig(int sig, siginfo_t *si, void *ctx) {
    (void)si;
    (void)ctx;
    got_sig = sig;
    siglongjmp(jb, 1);
}

// Reads one byte at p: its value, or -SIGNAL if the access faulted.
static int probe(volatile char *p) {
    got_sig = 0;
    if (sigsetjmp(jb, 1)) return -got_sig;
    return *p;
}

static int poke(volatile char *p, char v) {
    got_sig = 0;
    if (sigsetjmp(jb, 1)) return -got_sig;
    *p = v;
    return 0;
}

static const char *sname(int r) {
    static char b[16];
    if (r == -SIGBUS) return "SIGBUS";
    if (r == -SIGSEGV) return "SIGSEGV";
    snprintf(b, sizeof b, "%d", r);
    return b;
}

static void readat(int fd, off_t off, int n, char *out) {
    memset(out, 0, n + 1);
    if (pread(fd, out, n, off) < 0) strcpy(out, "pread-error");
    for (int i = 0; i < n; i++)
        if (out[i] == 0) out[i] = '.';
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    long pg = sysconf(_SC_PAGESIZE);
    char path[256], buf[64];
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, 0);
    sigaction(SIGSEGV, &sa, 0);
    setvbuf(stdout, 0, _IONBF, 0);

    // 1. write() and a shared mapping see each other.
    snprintf(path, sizeof path, "%s/shared.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    if (write(fd, "hello", 5) != 5 || ftruncate(fd, 2 * pg) != 0) { perror("setup"); return 1; }
    char *m = mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    printf("map sees write: %.5s\n", m);
    memcpy(m + 100, "WORLD", 5);
    readat(fd, 100, 5, buf);
    printf("pread sees map: %s\n", buf);
    pwrite(fd, "xyz", 3, 200);
    printf("map sees pwrite: %.3s\n", m + 200);

    // 2. A second descriptor and a second mapping of the same file.
    int fd2 = open(path, O_RDWR);
    char *m2 = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
    memcpy(m2 + pg + 7, "second", 6);
    printf("first map sees second: %.6s\n", m + pg + 7);

    // 3. A child process writes through the mapping it inherited, and
    //    through a mapping of its own.
    pid_t c = fork();
    if (c == 0) {
        memcpy(m + 300, "child", 5);
        int cfd = open(path, O_RDWR);
        char *cm = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        memcpy(cm + 400, "own", 3);
        _exit(0);
    }
    waitpid(c, 0, 0);
    readat(fd, 300, 5, buf);
    printf("parent sees child: %.5s %s %.3s\n", m + 300, buf, m + 400);

    // 4. Past the end of the file: SIGBUS; truncation takes pages away
    //    from every mapping; growing brings zeros back.
    printf("page past end: %s\n", sname(probe(m + 2 * pg)));
    ftruncate(fd, pg + 10);
    int in = probe(m + pg + 7), tail = probe(m + pg + 20), next = probe(m + 2 * pg);
    int other = probe(m2 + pg + 3);
    printf("after shrink: in=%s tail=%d next=%s other=%s\n", sname(in), tail, sname(next), sname(other));
    ftruncate(fd, 3 * pg);
    int z20 = probe(m + pg + 20), zg = probe(m + 2 * pg + 5);
    printf("after grow: %d %d %s\n", z20, zg, sname(poke(m + 2 * pg + 5, 'g')));
    readat(fd, 2 * pg + 5, 1, buf);
    printf("pread after grow: %s size=%lld\n", buf, (long long)lseek(fd, 0, SEEK_END));

    // 5. msync, munmap, close: the bytes are in the file for everyone.
    memcpy(m + 500, "synced", 6);
    printf("msync: %d\n", msync(m, 3 * pg, MS_SYNC));
    int r = msync(m, pg, MS_SYNC | MS_ASYNC);
    printf("msync bad flags: %d %s\n", r, strerror(errno));
    memcpy(m + 600, "unmapped", 8);
    munmap(m, 3 * pg);
    munmap(m2, 2 * pg);
    close(fd2);
    close(fd);
    fd = open(path, O_RDONLY);
    readat(fd, 500, 6, buf);
    printf("after close: %s ", buf);
    readat(fd, 600, 8, buf);
    printf("%s\n", buf);

    // 6. Written in a child that exits without msync or munmap.
    c = fork();
    if (c == 0) {
        int cfd = open(path, O_RDWR);
        char *cm = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        memcpy(cm + 700, "atexit", 6);
        _exit(0);
    }
    waitpid(c, 0, 0);
    readat(fd, 700, 6, buf);
    printf("after child exit: %s\n", buf);
    close(fd);

    // 7. MAP_PRIVATE past the end: SIGBUS too; private writes stay private.
    fd = open(path, O_RDWR);
    char *p = mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("private: %.5s past=%s\n", p, sname(probe(p + 3 * pg)));
    p[0] = 'J';
    readat(fd, 0, 5, buf);
    printf("private write stays: %s %.5s\n", buf, p);
    madvise(p, pg, MADV_DONTNEED);
    printf("private after DONTNEED: %.5s\n", p);
    munmap(p, 4 * pg);
    close(fd);

    // 8. Read-only descriptors: no writable shared mapping.
    fd = open(path, O_RDONLY);
    errno = 0;
    p = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("rdonly shared rw: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
    p = mmap(0, pg, PROT_READ, MAP_SHARED, fd, 0);
    r = mprotect(p, pg, PROT_READ | PROT_WRITE);
    printf("rdonly mprotect rw: %d %s\n", r, strerror(errno));
    munmap(p, pg);
    close(fd);

    // 9. memfd: shared between processes, seals.
    int mfd = memfd_create("seals", MFD_ALLOW_SEALING);
    ftruncate(mfd, pg);
    char *mm = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    c = fork();
    if (c == 0) {
        strcpy(mm, "from child");
        _exit(0);
    }
    waitpid(c, 0, 0);
    readat(mfd, 0, 10, buf);
    printf("memfd: %s %s\n", mm, buf);
    errno = 0;
    r = fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE);
    printf("seal write while mapped: %d %s\n", r, strerror(errno));
    munmap(mm, pg);
    printf("seal write: %d\n", fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK));
    printf("seals: %#x\n", fcntl(mfd, F_GET_SEALS));
    errno = 0;
    ssize_t w = write(mfd, "x", 1);
    printf("write sealed: %zd %s\n", w, strerror(errno));
    errno = 0;
    mm = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    printf("map sealed rw: %s\n", mm == MAP_FAILED ? strerror(errno) : "mapped");
    errno = 0;
    r = ftruncate(mfd, 10);
    printf("shrink sealed: %d %s\n", r, strerror(errno));
    printf("grow: %d\n", ftruncate(mfd, 2 * pg));
    printf("seal seal: %d ", fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL));
    errno = 0;
    r = fcntl(mfd, F_ADD_SEALS, F_SEAL_GROW);
    printf("%d %s\n", r, strerror(errno));
    int plain = memfd_create("plain", 0);
    errno = 0;
    int gs = fcntl(plain, F_GET_SEALS);
    r = fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE);
    printf("unsealable: %#x %d %s\n", gs, r, strerror(errno));

    // 10. /dev/zero shared: memory shared with children, not with other mappings.
    int z = open("/dev/zero", O_RDWR);
    char *z1 = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0);
    char *z2 = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0);
    c = fork();
    if (c == 0) {
        strcpy(z1, "zero child");
        _exit(0);
    }
    waitpid(c, 0, 0);
    printf("dev zero: %s [%d]\n", z1, z2[0]);

    // 10b. madvise: a DONTFORK range is not in the child, a WIPEONFORK
    //      range is there zeroed; unknown advice and holes are errors.
    char *df = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(df, "dontfork");
    strcpy(df + pg, "wiped");
    printf("madvise: %d %d", madvise(df, pg, MADV_DONTFORK), madvise(df + pg, pg, MADV_WIPEONFORK));
    c = fork();
    if (c == 0) {
        int gone = probe(df);
        _exit((gone == -SIGSEGV ? 1 : 0) | (df[pg] == 0 ? 2 : 0));
    }
    int wst;
    waitpid(c, &wst, 0);
    r = madvise(df, pg, 12345);
    printf(" child=%d bad=%s", WEXITSTATUS(wst), strerrorname_np(errno));
    munmap(df + pg, pg);
    r = madvise(df, 2 * pg, MADV_NORMAL);
    printf(" hole=%s\n", strerrorname_np(errno));
    munmap(df, pg);

    // 11. A file mapped into itself: read() into its own mapping.
    snprintf(path, sizeof path, "%s/self.dat", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(fd, 2 * pg);
    pwrite(fd, "selfread", 8, 0);
    p = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    w = pread(fd, p + pg, 8, 0);
    printf("self read: %zd %.8s\n", w, p + pg);
    munmap(p, 2 * pg);
    close(fd);
    unlink(path);
    printf("done\n");
    return 0;
}
