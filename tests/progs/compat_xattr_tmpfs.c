/* Extended attributes on tmpfs (/tmp), as Linux keeps them: user.* on
 * regular files and directories only (a symlink or FIFO: EPERM to set,
 * ENODATA to read), XATTR_CREATE / XATTR_REPLACE, ERANGE for a buffer
 * too small or a name empty or too long, E2BIG for a value past 64 KiB,
 * EOPNOTSUPP for an unknown namespace, trusted.* for CAP_SYS_ADMIN only,
 * the file's permission bits for user.*, a sticky directory's attributes
 * for its owner; a change is IN_ATTRIB and moves ctime, a read is no
 * event (two alike in a row are one, as inotify merges them). Compared
 * line by line with the host. Needs CAP_SETUID and CAP_SETGID. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0) printf("%s: %s\n", what, strerrorname_np(errno));
    else printf("%s: ok(%ld)\n", what, r);
}

/* The inotify events waiting, by name. */
static void events(int ifd, const char *after) {
    char buf[4096];
    printf("events after %s:", after);
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            printf(" %s", e->mask == IN_ATTRIB ? "IN_ATTRIB"
                          : e->mask == IN_OPEN ? "IN_OPEN" : "other");
            p += sizeof *e + e->len;
        }
    }
    printf("\n");
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(void) {
    const char *d = "/tmp/xa";
    const char *f = "/tmp/xa/f";
    mkdir(d, 0755);
    int fd = open(f, O_CREAT | O_RDWR, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    int ifd = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(ifd, f, IN_ALL_EVENTS);
    char buf[256];
    int v = 123;

    struct stat before, after;
    stat(f, &before);
    usleep(20000);
    show("setxattr user.a", setxattr(f, "user.a", &v, sizeof v, 0));
    stat(f, &after);
    printf("ctime moved: %s\n",
           (after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
            after.st_ctim.tv_nsec != before.st_ctim.tv_nsec) ? "yes" : "no");
    events(ifd, "setxattr");
    show("getxattr size 0", getxattr(f, "user.a", NULL, 0));
    show("getxattr into 2 bytes", getxattr(f, "user.a", buf, 2));
    int got = 0;
    show("getxattr", getxattr(f, "user.a", &got, sizeof got));
    printf("value: %d\n", got);
    events(ifd, "getxattr");
    show("XATTR_CREATE of an existing name", setxattr(f, "user.a", "x", 1, XATTR_CREATE));
    show("XATTR_REPLACE of a missing name", setxattr(f, "user.b", "x", 1, XATTR_REPLACE));
    show("XATTR_REPLACE", setxattr(f, "user.a", "xy", 2, XATTR_REPLACE));
    show("getxattr replaced", getxattr(f, "user.a", buf, sizeof buf));
    show("XATTR_CREATE", setxattr(f, "user.b", "", 0, XATTR_CREATE));
    show("unknown flag", setxattr(f, "user.c", "x", 1, 4));
    show("bare prefix", setxattr(f, "user.", "x", 1, 0));
    show("unknown namespace", setxattr(f, "foo.bar", "x", 1, 0));
    show("getxattr unknown namespace", getxattr(f, "foo.bar", buf, sizeof buf));
    show("empty name", setxattr(f, "", "x", 1, 0));
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[256] = 0;
    show("name of 256 bytes", setxattr(f, longname, "x", 1, 0));
    longname[255] = 0;
    show("name of 255 bytes", setxattr(f, longname, "x", 1, 0));
    show("remove it", removexattr(f, longname));
    char *big = calloc(1, 65537);
    show("value of 65537 bytes", setxattr(f, "user.big", big, 65537, 0));
    show("value of 65536 bytes", setxattr(f, "user.big", big, 65536, 0));
    show("getxattr of 65536 bytes", getxattr(f, "user.big", big, 65536));
    show("remove big", removexattr(f, "user.big"));
    show("value from an unmapped address", setxattr(f, "user.c", (void *)8, 4, 0));
    events(ifd, "the errors");

    show("listxattr size 0", listxattr(f, NULL, 0));
    show("listxattr into 3 bytes", listxattr(f, buf, 3));
    /* In name order: Linux's order is its table's. */
    long n = listxattr(f, buf, sizeof buf);
    const char *names[16];
    int count = 0;
    for (long i = 0; i < n && count < 16; i += strlen(buf + i) + 1) names[count++] = buf + i;
    qsort(names, count, sizeof *names, by_name);
    printf("list:");
    for (int i = 0; i < count; i++) printf(" %s", names[i]);
    printf("\n");
    events(ifd, "listxattr");

    show("removexattr", removexattr(f, "user.a"));
    show("removexattr again", removexattr(f, "user.a"));
    show("getxattr removed", getxattr(f, "user.a", buf, sizeof buf));
    events(ifd, "removexattr");

    int ro = open(f, O_RDONLY);
    show("fsetxattr on a read-only descriptor", fsetxattr(ro, "user.f", "1", 1, 0));
    show("fgetxattr", fgetxattr(ro, "user.f", buf, sizeof buf));
    show("flistxattr", flistxattr(ro, buf, sizeof buf));
    show("fremovexattr", fremovexattr(ro, "user.f"));
    events(ifd, "the f* calls");
    int op = open(f, O_PATH);
    show("fgetxattr of an O_PATH descriptor", fgetxattr(op, "user.b", buf, sizeof buf));

    show("setxattr on a directory", setxattr(d, "user.d", "1", 1, 0));
    show("getxattr on a directory", getxattr(d, "user.d", buf, sizeof buf));
    symlink("f", "/tmp/xa/l");
    show("lsetxattr user.* on a symlink", lsetxattr("/tmp/xa/l", "user.l", "1", 1, 0));
    show("lgetxattr user.* on a symlink", lgetxattr("/tmp/xa/l", "user.l", buf, sizeof buf));
    show("llistxattr of a symlink", llistxattr("/tmp/xa/l", buf, sizeof buf));
    show("setxattr through the symlink", setxattr("/tmp/xa/l", "user.t", "1", 1, 0));
    show("getxattr on the target", getxattr(f, "user.t", buf, sizeof buf));
    mkfifo("/tmp/xa/fifo", 0644);
    show("setxattr user.* on a FIFO", setxattr("/tmp/xa/fifo", "user.x", "1", 1, 0));
    show("getxattr user.* on a FIFO", getxattr("/tmp/xa/fifo", "user.x", buf, sizeof buf));
    int p[2];
    pipe(p);
    show("fsetxattr user.* on a pipe", fsetxattr(p[0], "user.x", "1", 1, 0));
    show("fgetxattr user.* on a pipe", fgetxattr(p[0], "user.x", buf, sizeof buf));
    show("setxattr trusted.* without CAP_SYS_ADMIN",
         setxattr(f, "trusted.x", "1", 1, 0));
    show("getxattr trusted.* without CAP_SYS_ADMIN",
         getxattr(f, "trusted.x", buf, sizeof buf));

    /* As nobody: the permission bits count for user.*. */
    mkdir("/tmp/xa/sticky", 01777);
    chmod("/tmp/xa/sticky", 01777);
    int nfd = open("/tmp/xa/mine", O_CREAT | O_RDWR, 0600);
    close(nfd);
    if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
        perror("setresuid");
        return 1;
    }
    show("nobody: setxattr on root's 0644 file", setxattr(f, "user.n", "1", 1, 0));
    show("nobody: getxattr on root's 0644 file", getxattr(f, "user.b", buf, sizeof buf));
    show("nobody: removexattr on root's 0644 file", removexattr(f, "user.b"));
    show("nobody: getxattr on root's 0600 file", getxattr("/tmp/xa/mine", "user.b", buf, sizeof buf));
    show("nobody: listxattr on root's 0600 file", listxattr("/tmp/xa/mine", buf, sizeof buf));
    show("nobody: setxattr on root's sticky directory",
         setxattr("/tmp/xa/sticky", "user.s", "1", 1, 0));
    return 0;
}
