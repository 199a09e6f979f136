// File, pipe, memory and event behaviours of gVisor's syscall suite that
// the userspace level got wrong (issue 19). One line per behaviour;
// compared with the host kernel by crates/atoll/tests/userspace_compat.rs.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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

static volatile int sigpipes;
static void on_sigpipe(int s) { (void)s; sigpipes++; }
static int pfd[2];

static void *close_reader_later(void *a) {
    (void)a;
    usleep(200000);
    close(pfd[0]);
    return NULL;
}

// A blocking write larger than the pipe writes what fits, waits for
// room, and when the reader goes returns the count with SIGPIPE.
static void pipe_writes_whole(void) {
    signal(SIGPIPE, on_sigpipe);
    pipe(pfd);
    int size = fcntl(pfd[1], F_GETPIPE_SZ);
    char *buf = calloc(1, 2 * size);
    pthread_t t;
    pthread_create(&t, NULL, close_reader_later, NULL);
    GUARDED("blocking pipe write", 5, {
        long r = write(pfd[1], buf, 2 * size);
        printf("blocking pipe write past the size: %s of %d\n", r == size ? "the size" : err(r),
               2 * size);
    });
    pthread_join(t, NULL);
    printf("SIGPIPEs: %d\n", sigpipes);
    long w = write(pfd[1], buf, 1);
    printf("write after the reader left: %s\n", err(w));
    printf("SIGPIPEs: %d\n", sigpipes);
    close(pfd[1]);
    free(buf);
    signal(SIGPIPE, SIG_DFL);
    pipe(pfd);
    char c;
    GUARDED("zero-size read", 5, printf("zero-size read of an empty pipe: %s\n", err(read(pfd[0], &c, 0))));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pfd[1]);
    struct stat st;
    printf("fdinfo stat: %s\n", err(lstat(path, &st)));
    FILE *f = fopen(path, "r");
    char line[128];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "flags:", 6) || !strncmp(line, "pos:", 4)) printf("fdinfo %s", line);
    }
    if (f) fclose(f);
    close(pfd[0]);
    close(pfd[1]);
}

static void *reader_of_closed_fd(void *a) {
    int v = 0;
    long r = read(pfd[0], &v, sizeof v);
    *(long *)a = r == sizeof v ? v : -1;
    return NULL;
}

// A read blocked on a descriptor keeps its file even if the descriptor
// is closed meanwhile.
static void blocked_read_keeps_file(void) {
    pipe(pfd);
    long got = 0;
    pthread_t t;
    pthread_create(&t, NULL, reader_of_closed_fd, &got);
    usleep(200000);
    close(pfd[0]);
    int v = 42;
    printf("write after closing the blocked reader's fd: %s\n", err(write(pfd[1], &v, sizeof v)));
    GUARDED("blocked read", 5, pthread_join(t, NULL));
    printf("blocked read got: %ld\n", got);
    close(pfd[1]);
}

static void eventfd_edge(void) {
    int ep = epoll_create1(0), e = eventfd(0, 0);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.u64 = 7}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
    printf("eventfd edge first: %d\n", epoll_wait(ep, out, 2, 0));
    printf("eventfd edge again: %d\n", epoll_wait(ep, out, 2, 0));
    uint64_t v = UINT64_MAX - 1;
    write(e, &v, 8);
    read(e, &v, 8);
    GUARDED("eventfd edge", 5, printf("eventfd edge after a change: %d\n", epoll_wait(ep, out, 2, 1000)));
    close(ep);
    close(e);
}

static void sparse_memfd(void) {
    int fd = memfd_create("sparse", 0);
    printf("memfd ftruncate INT64_MAX: %s\n", err(ftruncate(fd, INT64_MAX)));
    struct stat st;
    fstat(fd, &st);
    printf("memfd size %lld blocks %lld\n", (long long)st.st_size, (long long)st.st_blocks);
    char buf[8] = {1};
    printf("pread near the end: %s\n", err(pread(fd, buf, 8, INT64_MAX - 4)));
    printf("pwrite at 1 TiB: %s\n", err(pwrite(fd, "x", 1, 1LL << 40)));
    long r = pread(fd, buf, 2, 1LL << 40);
    printf("pread at 1 TiB: %s %d\n", err(r), buf[0]);
    printf("pwrite past the largest size: %s\n", err(pwrite(fd, "xy", 2, INT64_MAX - 1)));
    printf("ftruncate past the largest size: %s\n", err(ftruncate(fd, -1)));
    char *m = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE, fd, (1LL << 40) - 4096);
    printf("private map of a sparse file: %s", m == MAP_FAILED ? strerrorname_np(errno) : "ok");
    if (m != MAP_FAILED) printf(" byte %d\n", m[4096]);
    else printf("\n");
    close(fd);
}

static void remaps(void) {
    long pg = 4096;
    char *a = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(a, "first");
    strcpy(a + 3 * pg, "last");
    char *b = mremap(a, 4 * pg, pg, 0);
    printf("mremap shrink: %s\n", b == a ? "same place" : "moved");
    printf("tail after shrink: %s\n", mprotect(a + pg, pg, PROT_READ) ? strerrorname_np(errno) : "still mapped");
    // Grow where something else is mapped right after: it must move.
    munmap(a, pg);
    a = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(a, "data");
    printf("mremap grow blocked without MAYMOVE: %s\n", mremap(a, pg, 4 * pg, 0) == MAP_FAILED ? strerrorname_np(errno) : "grew");
    char *c = mremap(a, 2 * pg, 64 * pg, MREMAP_MAYMOVE);
    printf("mremap MAYMOVE: %s, data %s, new tail %d\n", c == MAP_FAILED ? strerrorname_np(errno) : "ok", c == MAP_FAILED ? "-" : c, c == MAP_FAILED ? -1 : c[40 * pg]);
    char *target = mmap(NULL, 8 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *d = mremap(c, 64 * pg, 8 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    printf("mremap FIXED: %s, data %s\n", d == target ? "at target" : strerrorname_np(errno), d == target ? d : "-");
    printf("old range after FIXED: %s\n", mprotect(c, pg, PROT_READ) ? strerrorname_np(errno) : "mapped");
    printf("mremap FIXED overlapping: %s\n", mremap(d, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, d + pg) == MAP_FAILED ? strerrorname_np(errno) : "ok");
    printf("mremap FIXED without MAYMOVE: %s\n", mremap(d, pg, pg, MREMAP_FIXED, target) == MAP_FAILED ? strerrorname_np(errno) : "ok");
    if (d == MAP_FAILED) return;
    char *e = mremap(d, pg, pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    printf("mremap DONTUNMAP: %s, data %s, old %d\n", e == MAP_FAILED ? strerrorname_np(errno) : "ok", e == MAP_FAILED ? "-" : e, d[0]);
    printf("mremap of an unmapped range: %s\n", mremap((void *)0x10000, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED ? strerrorname_np(errno) : "ok");
    printf("mremap huge length: %s\n", mremap(d, pg, (size_t)-1, MREMAP_MAYMOVE) == MAP_FAILED ? strerrorname_np(errno) : "ok");
}

static void dirents_and_links(void) {
    int d = open("/tmp", O_RDONLY | O_DIRECTORY);
    char *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("getdents64 count past INT_MAX: %s\n", err(syscall(SYS_getdents64, d, buf, (unsigned)INT32_MAX + 1u)));
    // Only the first page writable: the entries that fit before the fault.
    munmap(buf + 4096, 4096);
    for (int i = 0; i < 200; i++) {
        char n[64];
        snprintf(n, sizeof n, "/tmp/dirent-%03d-padding-padding-padding", i);
        close(open(n, O_CREAT | O_WRONLY, 0600));
    }
    lseek(d, 0, SEEK_SET);
    long r = syscall(SYS_getdents64, d, buf, 8192);
    printf("getdents64 into a partly mapped buffer: %s\n", r > 0 && r <= 4096 ? "some entries" : err(r));
    close(d);
    close(open("/tmp/link-src", O_CREAT | O_WRONLY, 0600));
    printf("linkat bogus flags: %s\n", err(linkat(AT_FDCWD, "/tmp/link-src", AT_FDCWD, "/tmp/link-dst", 0x4000)));
    printf("link to a name with a slash: %s\n", err(link("/tmp/link-src", "/tmp/link-dst/")));
    printf("rmdir of /: %s\n", err(rmdir("/")));
    mkdir("/tmp/d1", 0777);
    mkdir("/tmp/d2", 0777);
    printf("renameat2 NOREPLACE|EXCHANGE: %s\n", err(syscall(SYS_renameat2, AT_FDCWD, "/tmp/d1", AT_FDCWD, "/tmp/d2", 3)));
    printf("renameat2 NOREPLACE onto a dot: %s\n", err(syscall(SYS_renameat2, AT_FDCWD, "/tmp/d1", AT_FDCWD, "/tmp/d2/.", 1)));
    // Search permission on the last name's directory comes first (the
    // bundle's root has no CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH).
    mkdir("/tmp/noexec", 0777);
    chmod("/tmp/noexec", 0666);
    printf("unlink in an unsearchable directory: %s\n", err(unlink("/tmp/noexec/nonexistent")));
    printf("mkdir in an unsearchable directory: %s\n", err(mkdir("/tmp/noexec/new", 0777)));
}

static int ts_after(struct timespec a, struct timespec b) {
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

static long links(const char *p) {
    struct stat st;
    return stat(p, &st) ? -1 : (long)st.st_nlink;
}

static long fd_links(int fd) {
    struct stat st;
    return fstat(fd, &st) ? -1 : (long)st.st_nlink;
}

// tmpfs sizes, renames' link counts, and reads of character devices.
static void sizes_links_reads(void) {
    struct stat b, a;
    int fd = open("/tmp/trunc", O_CREAT | O_WRONLY, 0600);
    if (write(fd, "abc", 3) != 3) printf("write failed\n");
    close(fd);
    stat("/tmp/trunc", &b);
    usleep(20000);
    truncate("/tmp/trunc", 0);
    stat("/tmp/trunc", &a);
    printf("truncate(2) to a new size: mtime later %d, ctime later %d\n", ts_after(a.st_mtim, b.st_mtim),
           ts_after(a.st_ctim, b.st_ctim));
    b = a;
    usleep(20000);
    truncate("/tmp/trunc", 0);
    stat("/tmp/trunc", &a);
    printf("truncate(2) to the same size: mtime later %d\n", ts_after(a.st_mtim, b.st_mtim));

    mkdir("/tmp/p1", 0777);
    mkdir("/tmp/p2", 0777);
    mkdir("/tmp/p3", 0777);
    mkdir("/tmp/p1/a", 0777);
    mkdir("/tmp/p2/b", 0777);
    int bfd = open("/tmp/p2/b", O_RDONLY | O_DIRECTORY);
    // (The rename before the counts: C leaves the order of arguments open.)
    long r = rename("/tmp/p1/a", "/tmp/p2/b");
    printf("rename of a directory over another: %s, parents' links %ld %ld, the replaced one's %ld\n", err(r),
           links("/tmp/p1"), links("/tmp/p2"), fd_links(bfd));
    close(bfd);
    mkdir("/tmp/p1/c", 0777);
    r = rename("/tmp/p1/c", "/tmp/p3/c");
    printf("rename of a directory to another parent: %s, parents' links %ld %ld\n", err(r), links("/tmp/p1"),
           links("/tmp/p3"));
    r = rename("/tmp/p3/c", "/tmp/p3/d");
    printf("rename of a directory within its parent: %s, parent's links %ld\n", err(r), links("/tmp/p3"));
    close(open("/tmp/p1/f", O_CREAT | O_WRONLY, 0600));
    close(open("/tmp/p1/g", O_CREAT | O_WRONLY, 0600));
    int gfd = open("/tmp/p1/g", O_RDONLY);
    r = rename("/tmp/p1/f", "/tmp/p1/g");
    printf("rename of a file over another: %s, the replaced one's links %ld\n", err(r), fd_links(gfd));
    close(gfd);
    r = syscall(SYS_renameat2, AT_FDCWD, "/tmp/p3/d", AT_FDCWD, "/tmp/p1/g", 2);
    printf("exchange of a directory and a file: %s, parents' links %ld %ld\n", err(r), links("/tmp/p1"),
           links("/tmp/p3"));

    size_t n = 4 << 20;
    char *big = malloc(n + 4096);
    struct iovec iov[2] = {{big, 4096}, {big + 4096, n}};
    int z = open("/dev/zero", O_RDONLY);
    printf("readv of 4 MiB from /dev/zero: %s\n", err(readv(z, iov, 2)));
    close(z);
    z = open("/dev/urandom", O_RDONLY);
    printf("read of 4 MiB from /dev/urandom: %s\n", err(read(z, big, n)));
    close(z);
    free(big);
}

int main(void) {
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pipe_writes_whole();
    blocked_read_keeps_file();
    eventfd_edge();
    sparse_memfd();
    remaps();
    dirents_and_links();
    sizes_links_reads();
    return 0;
}
