/* Streams a rootfs file while its size changes through other descriptors
 * and through its path. At the userspace level, reads past the first
 * 256 KiB of an open file come from a window of the host file mapped into
 * the kernel (crates/kernel/src/vfs/hostwindow.rs), which must notice
 * every shrink and growth: the output must match native's line for line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (1L << 20)

static unsigned char pat(long i) { return (unsigned char)(i * 7 + i / 4096); }

static void die(const char *what) { perror(what); exit(1); }

/* Reads [off, off+len) of fd in blocks of bs; prints how much came and
 * whether every byte was the pattern (or zero where `zero_from` says). */
static void check(const char *what, int fd, long off, long len, long bs, long zero_from) {
    static unsigned char buf[3 << 20];
    long got = 0, bad = -1;
    while (got < len) {
        long want = len - got < bs ? len - got : bs;
        ssize_t n = pread(fd, buf, want, off + got);
        if (n < 0) die("pread");
        if (n == 0) break;
        for (long i = 0; i < n && bad < 0; i++) {
            long at = off + got + i;
            unsigned char e = at >= zero_from ? 0 : pat(at);
            if (buf[i] != e) bad = at;
        }
        got += n;
    }
    printf("%s: %ld bytes, %s", what, got, bad < 0 ? "as written" : "WRONG at ");
    if (bad >= 0) printf("%ld", bad);
    printf("\n");
}

/* A new descriptor of p that has read 512 KiB from off. */
static int warm(const char *p, long off) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) die("open");
    check("  warm-up", fd, off, 512 * 1024, 4096, 1L << 62);
    return fd;
}

int main(int argc, char **argv) {
    const char *p = argc > 1 ? argv[1] : "/stream.dat";
    static unsigned char blk[MiB];
    int w = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w < 0) die("create");
    for (long m = 0; m < 9; m++) {
        for (long i = 0; i < MiB; i++) blk[i] = pat(m * MiB + i);
        if (write(w, blk, MiB) != MiB) die("write");
    }
    close(w);
    int a = open(p, O_RDONLY);
    if (a < 0) die("open");
    check("first 2 MiB in 4 KiB reads", a, 0, 2 * MiB, 4096, 1L << 62);
    check("across 4 MiB in 1.5 MiB reads", a, 2 * MiB, 5 * MiB, 3 * MiB / 2, 1L << 62);
    check("to the end in 64 KiB reads", a, 7 * MiB, 4 * MiB, 65536, 1L << 62);

    /* One preadv of three pieces across the window's edge at 4 MiB. */
    {
        static unsigned char v1[100000], v2[3000], v3[200000];
        struct iovec iov[3] = {{v1, sizeof v1}, {v2, sizeof v2}, {v3, sizeof v3}};
        long at = 4 * MiB - sizeof v1 - 1000, bad = -1;
        /* In sequence up to it, so that it is a window's. */
        check("  warm-up to it", a, at - 512 * 1024, 512 * 1024, 4096, 1L << 62);
        ssize_t n = preadv(a, iov, 3, at);
        for (int k = 0, base = 0; k < 3; base += iov[k].iov_len, k++)
            for (size_t i = 0; i < iov[k].iov_len && bad < 0; i++)
                if (((unsigned char *)iov[k].iov_base)[i] != pat(at + base + i)) bad = at + base + i;
        if (bad < 0)
            printf("preadv of three pieces across 4 MiB: %zd bytes, as written\n", n);
        else
            printf("preadv of three pieces across 4 MiB: %zd bytes, WRONG at %ld\n", n, bad);
    }
    /* A shrink through the reading descriptor itself (opened read-write). */
    {
        int rw = open(p, O_RDWR);
        if (rw < 0) die("open rw");
        check("  warm-up read-write", rw, 0, 512 * 1024, 4096, 1L << 62);
        if (ftruncate(rw, 600 * 1024 + 7) != 0) die("ftruncate own");
        check("after ftruncate through the same descriptor", rw, 512 * 1024, MiB, 4096, 1L << 62);
        /* Random reads: never a window, the same bytes. */
        srand(7);
        long bad = -1;
        for (int i = 0; i < 2000 && bad < 0; i++) {
            unsigned char b[512];
            long at = (long)(rand() % (600 * 1024));
            ssize_t n = pread(rw, b, sizeof b, at);
            for (ssize_t j = 0; j < n && bad < 0; j++)
                if (b[j] != pat(at + j)) bad = at + j;
        }
        printf("random reads: %s\n", bad < 0 ? "as written" : "WRONG");
        close(rw);
    }
    close(a);
    w = open(p, O_WRONLY | O_TRUNC);
    if (w < 0) die("rewrite");
    for (long m = 0; m < 9; m++) {
        for (long i = 0; i < MiB; i++) blk[i] = pat(m * MiB + i);
        if (write(w, blk, MiB) != MiB) die("write");
    }
    close(w);
    a = open(p, O_RDONLY);
    if (a < 0) die("open");

    /* Each change lands while a window over the next read is placed: a
     * fresh descriptor reads 512 KiB first (4 MiB windows: the reads
     * below stay within the window that placed). */
    close(a);
    a = warm(p, 0);
    int b = open(p, O_RDWR);
    if (b < 0) die("open rw");
    if (ftruncate(b, MiB + 100) != 0) die("ftruncate");
    check("after ftruncate through another descriptor", a, MiB - 8192, MiB, 4096, 1L << 62);
    close(a);
    a = warm(p, 0);
    unsigned char z[4096];
    memset(z, 0, sizeof z);
    if (pwrite(b, z, sizeof z, 3 * MiB) != sizeof z) die("pwrite");
    check("after a write past the end (a hole, then zeros)", a, MiB, 3 * MiB, 4096, MiB + 100);

    close(a);
    a = warm(p, 0);
    int c = open(p, O_WRONLY | O_TRUNC);
    if (c < 0) die("open O_TRUNC");
    check("after an O_TRUNC open", a, 0, MiB, 4096, 1L << 62);
    for (long i = 0; i < 5 * MiB; i += MiB) {
        for (long j = 0; j < MiB; j++) blk[j] = pat(i + j);
        if (write(c, blk, MiB) != MiB) die("write again");
    }
    check("written again through that one", a, 0, 8 * MiB, 4096, 1L << 62);
    close(a);
    a = warm(p, 4 * MiB);
    if (truncate(p, 4 * MiB + 5) != 0) die("truncate");
    check("after truncate by path", a, 4 * MiB, MiB, 4096, 1L << 62);
    close(a);
    a = warm(p, 0);
    if (fallocate(b, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, MiB) == 0) {
        check("a punched hole", a, MiB, MiB, 4096, MiB);
        check("after it", a, 2 * MiB, MiB, 4096, 1L << 62);
    }
    /* A read crossing the end returns what there is. */
    unsigned char tail[8192];
    printf("read across the end: %zd\n", pread(a, tail, sizeof tail, 4 * MiB - 100));
    printf("read at the end: %zd\n", pread(a, tail, sizeof tail, 4 * MiB + 5));
    close(a);
    close(b);
    close(c);
    unlink(p);
    printf("done\n");
    return 0;
}
