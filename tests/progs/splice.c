// splice, tee, vmsplice, sendfile and copy_file_range between pipes,
// files in DIR (a tmpfs, or a bind mount of a host directory), sockets and
// devices. Prints one line per check; the test compares with native.
// Usage: splice DIR
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define R(x) res((long)(x))
static const char *res(long r) {
    static char b[8][64];
    static int i;
    i = (i + 1) % 8;
    if (r < 0)
        snprintf(b[i], 64, "%s", strerrorname_np(errno));
    else
        snprintf(b[i], 64, "%ld", r);
    return b[i];
}

static void show(const char *label, int fd, int n) {
    char buf[256] = {0};
    int r = read(fd, buf, n);
    printf("%s: %d \"%.*s\"\n", label, r, r > 0 ? r : 0, buf);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char a[256], b[256];
    setvbuf(stdout, 0, _IONBF, 0);
    snprintf(a, sizeof a, "%s/splice-a", dir);
    snprintf(b, sizeof b, "%s/splice-b", dir);
    int fa = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fa, "0123456789abcdefghij", 20);
    int p[2], q[2], s[2];
    pipe(p);
    pipe(q);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);

    // file -> pipe, with an offset (the file position does not move).
    loff_t off = 5;
    const char *r = R(splice(fa, &off, p[1], 0, 7, 0));
    printf("file->pipe: %s off=%lld pos=%lld\n", r, (long long)off, (long long)lseek(fa, 0, SEEK_CUR));
    // pipe -> pipe, tee, then pipe -> socket and socket -> pipe.
    printf("tee: %s\n", R(tee(p[0], q[1], 100, 0)));
    printf("pipe->pipe: %s\n", R(splice(q[0], 0, s[1], 0, 3, 0)));
    show("socket", s[0], 3);
    printf("pipe->socket: %s\n", R(splice(p[0], 0, s[1], 0, 100, 0)));
    printf("socket->pipe: %s\n", R(splice(s[0], 0, p[1], 0, 100, 0)));
    show("pipe", p[0], 100);
    show("rest of tee", q[0], 100);
    // pipe -> file at the file position and at an offset.
    write(p[1], "XYZ", 3);
    lseek(fa, 0, SEEK_SET);
    r = R(splice(p[0], 0, fa, 0, 3, 0));
    printf("pipe->file: %s pos=%lld\n", r, (long long)lseek(fa, 0, SEEK_CUR));
    write(p[1], "uv", 2);
    off = 18;
    r = R(splice(p[0], 0, fa, &off, 10, 0));
    printf("pipe->file at offset: %s off=%lld\n", r, (long long)off);
    char buf[64] = {0};
    pread(fa, buf, 40, 0);
    printf("file now: %s\n", buf);

    // Errors.
    int fb = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("no pipe: %s\n", R(splice(fa, 0, fb, 0, 1, 0)));
    off = 0;
    printf("offset on pipe: %s\n", R(splice(p[0], &off, fa, 0, 1, 0)));
    printf("same pipe: %s\n", R(splice(p[0], 0, p[1], 0, 1, 0)));
    printf("bad flags: %s\n", R(splice(fa, 0, p[1], 0, 1, 0x100)));
    printf("write end as input: %s\n", R(splice(p[1], 0, fa, 0, 1, 0)));
    printf("empty nonblock: %s\n", R(splice(p[0], 0, fa, 0, 1, SPLICE_F_NONBLOCK)));
    printf("tee non-pipe: %s\n", R(tee(fa, p[1], 1, 0)));
    int fl = fcntl(p[1], F_GETFL);
    fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
    char big[65536];
    memset(big, 'f', sizeof big);
    while (write(p[1], big, sizeof big) > 0) {
    }
    printf("full pipe: %s\n", R(splice(fa, 0, p[1], 0, 10, SPLICE_F_NONBLOCK)));
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    while (read(p[0], big, sizeof big) > 0) {
    }
    fcntl(p[0], F_SETFL, fl);
    fcntl(p[1], F_SETFL, fl);

    // vmsplice both ways.
    struct iovec iov[2] = {{"vm", 2}, {"splice", 6}};
    printf("vmsplice in: %s\n", R(vmsplice(p[1], iov, 2, 0)));
    char o1[3] = {0}, o2[8] = {0};
    struct iovec out[2] = {{o1, 2}, {o2, 7}};
    r = R(vmsplice(p[0], out, 2, 0));
    printf("vmsplice out: %s %s %s\n", r, o1, o2);
    printf("vmsplice not pipe: %s\n", R(vmsplice(fa, iov, 1, 0)));

    // sendfile: file -> socket, file -> pipe, with and without offset.
    off = 10;
    r = R(sendfile(s[1], fa, &off, 5));
    printf("sendfile->socket: %s off=%lld\n", r, (long long)off);
    show("socket", s[0], 5);
    lseek(fa, 2, SEEK_SET);
    r = R(sendfile(p[1], fa, 0, 4));
    printf("sendfile->pipe: %s pos=%lld\n", r, (long long)lseek(fa, 0, SEEK_CUR));
    show("pipe", p[0], 4);
    printf("sendfile->file: %s\n", R(sendfile(fb, fa, 0, 100)));
    printf("sendfile from socket: %s\n", R(sendfile(fb, s[0], 0, 1)));
    int null = open("/dev/null", O_WRONLY);
    lseek(fa, 0, SEEK_SET);
    printf("sendfile->/dev/null: %s\n", R(sendfile(null, fa, 0, 100)));

    // copy_file_range.
    loff_t oi = 0, oo = 3;
    r = R(copy_file_range(fa, &oi, fb, &oo, 8, 0));
    printf("copy_file_range: %s oi=%lld oo=%lld\n", r, (long long)oi, (long long)oo);
    memset(buf, 0, sizeof buf);
    pread(fb, buf, 40, 0);
    printf("copy now: %s\n", buf);
    oi = 0;
    oo = 4;
    printf("overlap: %s\n", R(copy_file_range(fa, &oi, fa, &oo, 8, 0)));
    printf("flags: %s\n", R(copy_file_range(fa, 0, fb, 0, 8, 1)));
    printf("pipe: %s\n", R(copy_file_range(p[0], 0, fb, 0, 8, 0)));
    oi = 1000;
    printf("past end: %s\n", R(copy_file_range(fa, &oi, fb, 0, 8, 0)));
    unlink(a);
    unlink(b);
    printf("done\n");
    return 0;
}
