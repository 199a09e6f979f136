// inotify: the events of common file operations in a directory DIR (a
// tmpfs, or a bind mount of a host directory), printed one per line so a
// test can compare them with a native run.
// Usage: inotify DIR
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int ifd;

static void mask_str(uint32_t m, char *out) {
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {IN_ACCESS, "ACCESS"},   {IN_MODIFY, "MODIFY"},       {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
        {IN_OPEN, "OPEN"},       {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
        {IN_CREATE, "CREATE"},   {IN_DELETE, "DELETE"},       {IN_DELETE_SELF, "DELETE_SELF"},
        {IN_MOVE_SELF, "MOVE_SELF"}, {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"},
        {IN_Q_OVERFLOW, "OVERFLOW"},
    };
    out[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].bit) {
            if (out[0]) strcat(out, "|");
            strcat(out, names[i].name);
        }
}

// Prints the queued events under `label`; cookies print as equal/unequal
// to the previous one so they compare across runs.
static void drain(const char *label) {
    static uint32_t last_cookie;
    char buf[8192];
    int avail = 0;
    ioctl(ifd, FIONREAD, &avail);
    printf("%s (%d bytes):", label, avail);
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            char m[256];
            mask_str(e->mask, m);
            printf(" [wd%d %s%s%s", e->wd, m, e->len ? " " : "", e->len ? e->name : "");
            if (e->cookie) {
                printf(" cookie%s", e->cookie == last_cookie ? "=" : "*");
                last_cookie = e->cookie;
            }
            printf("]");
            p += sizeof *e + e->len;
        }
    }
    printf("\n");
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char dir[256], a[300], b[300], sub[300];
    setvbuf(stdout, 0, _IONBF, 0);
    snprintf(dir, sizeof dir, "%s/watched", base);
    mkdir(dir, 0755);
    snprintf(a, sizeof a, "%s/a.txt", dir);
    snprintf(b, sizeof b, "%s/b.txt", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);

    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int wd = inotify_add_watch(ifd, dir, IN_ALL_EVENTS);
    printf("watch dir: %d", wd);
    printf(", same again: %d\n", inotify_add_watch(ifd, dir, IN_ALL_EVENTS));
    errno = 0;
    int r = inotify_add_watch(ifd, "/nonexistent", IN_ALL_EVENTS);
    printf("missing path: %d %s\n", r, strerrorname_np(errno));
    r = inotify_add_watch(ifd, dir, 0);
    printf("empty mask: %d %s\n", r, strerrorname_np(errno));

    int fd = open(a, O_CREAT | O_WRONLY, 0644);
    drain("create");
    write(fd, "hello", 5);
    write(fd, "", 0);
    drain("write");
    close(fd);
    drain("close");
    int fwd = inotify_add_watch(ifd, a, IN_ALL_EVENTS);
    fd = open(a, O_RDONLY);
    char c[8];
    read(fd, c, 8);
    read(fd, c, 8);
    close(fd);
    drain("read");
    chmod(a, 0600);
    drain("chmod");
    truncate(a, 2);
    drain("truncate");
    struct timeval tv[2] = {{1, 0}, {2, 0}};
    utimes(a, tv);
    drain("utimes");
    fd = open(a, O_WRONLY | O_TRUNC);
    close(fd);
    drain("open trunc");
    rename(a, b);
    drain("rename");
    link(b, a);
    drain("link");
    unlink(a);
    drain("unlink one link");
    fd = open(b, O_RDONLY);
    unlink(b);
    drain("unlink while open");
    close(fd);
    drain("last close");
    printf("rm removed watch: %s\n", inotify_rm_watch(ifd, fwd) < 0 ? strerrorname_np(errno) : "ok");
    mkdir(sub, 0755);
    int swd = inotify_add_watch(ifd, sub, IN_ALL_EVENTS);
    drain("mkdir");
    symlink("target", a);
    drain("symlink");
    unlink(a);
    rmdir(sub);
    drain("rmdir");
    (void)swd;
    struct pollfd pfd = {ifd, POLLIN, 0};
    printf("poll empty: %d\n", poll(&pfd, 1, 0));
    fd = open(a, O_CREAT | O_RDWR, 0644);
    r = poll(&pfd, 1, 0);
    printf("poll ready: %d %#x\n", r, pfd.revents);
    close(fd);
    char small[16];
    errno = 0;
    r = read(ifd, small, sizeof small);
    printf("small read: %d %s\n", r, strerrorname_np(errno));
    drain("rest");
    inotify_rm_watch(ifd, wd);
    drain("rm_watch");
    unlink(a);
    rmdir(dir);
    printf("done\n");
    return 0;
}
