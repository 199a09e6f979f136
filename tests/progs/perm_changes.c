/* Permission checks right after the caller's own chmod, chown and
 * exclusive creates, as an unprivileged user, in the directory argv[1]
 * (a bind mount shared with the host, or the rootfs). At the userspace
 * level the kernel keeps the mode, owner and group its own setattr made
 * (vfs/hostfs.rs `keep_perm`) and creates with O_EXCL without looking up
 * the name first (syscalls/fs/open.rs), and gives what it makes in a
 * set-group-ID directory that directory's group: every answer must be
 * Linux's, so the output must match native's line for line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static const char *path(const char *name) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void say(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: ok\n", what);
}

static void try_open(const char *what, const char *name, int flags) {
    int fd = open(path(name), flags, 0644);
    say(what, fd);
    if (fd >= 0) close(fd);
}

static void show_mode(const char *what, const char *name) {
    struct stat st;
    if (lstat(path(name), &st) < 0) {
        printf("%s: %s\n", what, strerrorname_np(errno));
        return;
    }
    /* A symlink's mode bits are the host's (0777 on Linux). */
    printf("%s: mode %o uid %d gid %d\n", what,
           S_ISLNK(st.st_mode) ? 0777 : st.st_mode & 07777, st.st_uid, st.st_gid);
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/perm", argc > 1 ? argv[1] : "/tmp");
    umask(022);
    /* As root: a directory everyone may write, one no one but root may,
     * with a file in it. */
    if (mkdir(dir, 0777) < 0 || chmod(dir, 0777) < 0) { perror("mkdir"); return 1; }
    if (mkdir(path("closed"), 0755) < 0) { perror("mkdir closed"); return 1; }
    if (close(open(path("closed/there"), O_CREAT | O_WRONLY, 0644)) < 0) { perror("there"); return 1; }
    if (chmod(path("closed"), 0555) < 0) { perror("chmod closed"); return 1; }
    /* A set-group-ID directory of group 1234, everyone may write. */
    if (mkdir(path("sgid"), 0777) < 0 || chown(path("sgid"), 0, 1234) < 0 ||
        chmod(path("sgid"), 02777) < 0) {
        perror("sgid");
        return 1;
    }
    /* setgroups may be refused (a user namespace that denies it): the
     * supplementary groups then stay, the same at both levels. */
    (void)setgroups(0, NULL);
    if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0) {
        perror("drop");
        return 1;
    }

    /* Exclusive creates. */
    int fd = open(path("a"), O_CREAT | O_EXCL | O_RDWR, 0644);
    say("create a", fd);
    try_open("create a again", "a", O_CREAT | O_EXCL | O_WRONLY);
    say("dangling symlink", symlink("/nowhere", path("dangling")));
    try_open("create over a dangling symlink", "dangling", O_CREAT | O_EXCL | O_WRONLY);
    try_open("create where it exists, no write access", "closed/there",
             O_CREAT | O_EXCL | O_WRONLY);
    try_open("create where it does not, no write access", "closed/new",
             O_CREAT | O_EXCL | O_WRONLY);
    try_open("create a directory's name", "closed", O_CREAT | O_EXCL | O_WRONLY);
    show_mode("a", "a");

    /* fchmod, then checks at once. */
    say("fchmod a 0", fchmod(fd, 0));
    try_open("read a at 0", "a", O_RDONLY);
    say("fchmod a 0400", fchmod(fd, 0400));
    try_open("read a at 0400", "a", O_RDONLY);
    try_open("write a at 0400", "a", O_WRONLY);
    say("fchmod a 0600", fchmod(fd, 0600));
    try_open("write a at 0600", "a", O_WRONLY);
    say("chmod a 0", chmod(path("a"), 0));
    try_open("read a at 0 after chmod", "a", O_RDONLY);
    say("access a R", access(path("a"), R_OK));
    say("chmod a 0400", chmod(path("a"), 0400));
    try_open("read a at 0400 after chmod", "a", O_RDONLY);
    try_open("write a at 0400 after chmod", "a", O_WRONLY);
    say("chown a to its own group", chown(path("a"), -1, 1000));
    try_open("write a after chown", "a", O_WRONLY);
    say("chmod a 0644", chmod(path("a"), 0644));
    say("access a R", access(path("a"), R_OK));
    /* Set-group-ID for a group the user is not in is dropped. */
    say("fchmod a 02755", fchmod(fd, 02755));
    show_mode("a", "a");
    say("fchmod a 02755 again", fchmod(fd, 02755));
    show_mode("a", "a");

    /* Owner and group. */
    say("fchown a to its own group", fchown(fd, -1, 1000));
    say("fchown a to root", fchown(fd, 0, -1));
    say("fchown a to group 0", fchown(fd, -1, 0));
    say("fchmod a 0700", fchmod(fd, 0700));
    say("futimens a", futimens(fd, NULL));
    try_open("read a at 0700", "a", O_RDONLY);
    show_mode("a", "a");

    /* A set-user-ID file made by the user. */
    int s = open(path("suid"), O_CREAT | O_EXCL | O_WRONLY, 04755);
    say("create suid 04755", s);
    show_mode("suid", "suid");
    if (s >= 0) close(s);

    /* A directory the user makes, then closes and opens again. */
    say("mkdir sub", mkdir(path("sub"), 0755));
    say("chmod sub 0", chmod(path("sub"), 0));
    try_open("create in sub at 0", "sub/x", O_CREAT | O_EXCL | O_WRONLY);
    say("chmod sub 0300", chmod(path("sub"), 0300));
    try_open("create in sub at 0300", "sub/x", O_CREAT | O_EXCL | O_WRONLY);
    try_open("create in sub at 0300 again", "sub/x", O_CREAT | O_EXCL | O_WRONLY);
    say("chmod sub 0500", chmod(path("sub"), 0500));
    try_open("create in sub at 0500 where it exists", "sub/x", O_CREAT | O_EXCL | O_WRONLY);
    try_open("create in sub at 0500", "sub/y", O_CREAT | O_EXCL | O_WRONLY);
    /* What the user makes in the set-group-ID directory is of its group;
     * a directory made there is set-group-ID too. */
    int g = open(path("sgid/f"), O_CREAT | O_EXCL | O_WRONLY, 0644);
    say("create in sgid", g);
    if (g >= 0) close(g);
    show_mode("sgid/f", "sgid/f");
    say("mkdir in sgid", mkdir(path("sgid/d"), 0755));
    show_mode("sgid/d", "sgid/d");
    say("mkfifo in sgid", mkfifo(path("sgid/p"), 0644));
    show_mode("sgid/p", "sgid/p");
    say("symlink in sgid", symlink("f", path("sgid/l")));
    show_mode("sgid/l", "sgid/l");
    /* The user is not in group 1234: a set-group-ID program made there
     * loses the bit (Linux's mode_strip_sgid), at creation and on chmod;
     * without group execute it keeps it. */
    g = open(path("sgid/x"), O_CREAT | O_EXCL | O_WRONLY, 02755);
    say("create 02755 in sgid", g);
    show_mode("sgid/x", "sgid/x");
    if (g >= 0) {
        say("fchmod sgid/x 02755", fchmod(g, 02755));
        show_mode("sgid/x", "sgid/x");
        close(g);
    }
    g = open(path("sgid/y"), O_CREAT | O_EXCL | O_WRONLY, 02644);
    say("create 02644 in sgid", g);
    if (g >= 0) close(g);
    show_mode("sgid/y", "sgid/y");
    say("mknod fifo 02750 in sgid", mknod(path("sgid/q"), S_IFIFO | 02750, 0));
    show_mode("sgid/q", "sgid/q");
    close(fd);
    printf("done\n");
    return 0;
}
