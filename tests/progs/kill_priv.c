/* Set-user-ID and set-group-ID bits that a write, a truncation, a
 * fallocate or a chown takes away, as Linux does (should_remove_suid,
 * file_modified, chown_common, setattr_should_drop_sgid), in the
 * directory argv[1]: first as root (CAP_FSETID keeps them on write and
 * truncate), then as an unprivileged user. Without this a user who may write a set-user-ID program of
 * someone else's could put code of theirs into it and keep the bit. The
 * output must match native's line for line. */
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

static void show(const char *name) {
    struct stat st;
    if (stat(path(name), &st) < 0) {
        printf("%s: %s\n", name, strerrorname_np(errno));
        return;
    }
    /* (A directory's size is its file system's own business.) */
    printf("%s: mode %o uid %d gid %d size %lld\n", name, st.st_mode & 07777, st.st_uid,
           st.st_gid, S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
}

/* A file `name` of `mode`, `uid` and `gid`, with 3 bytes in it (made as
 * root). */
static int make(const char *name, mode_t mode, uid_t uid, gid_t gid) {
    int fd = open(path(name), O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0 || write(fd, "abc", 3) != 3 || fchown(fd, uid, gid) < 0 ||
        fchmod(fd, mode) < 0) {
        perror(name);
        exit(1);
    }
    close(fd);
    return 0;
}

static void write_to(const char *what, const char *name) {
    int fd = open(path(name), O_WRONLY);
    say(what, fd < 0 ? -1 : write(fd, "x", 1));
    if (fd >= 0) close(fd);
    show(name);
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/killpriv", argc > 1 ? argv[1] : "/tmp");
    umask(0);
    if (mkdir(dir, 0777) < 0) { perror("mkdir"); return 1; }

    /* As root, with CAP_FSETID: write and truncate keep the bits; chown,
     * even to the same owner, takes set-user-ID away from a file (not a
     * directory), and set-group-ID with group execute. */
    make("r_write", 06755, 0, 0);
    write_to("root write", "r_write");
    make("r_trunc", 06755, 0, 0);
    say("root truncate", truncate(path("r_trunc"), 1));
    show("r_trunc");
    make("r_chown", 06755, 0, 0);
    say("root chown -1 -1", chown(path("r_chown"), -1, -1));
    show("r_chown");
    make("r_chown_g", 02745, 0, 0);
    say("root chown -1 -1 (no group execute)", chown(path("r_chown_g"), -1, -1));
    show("r_chown_g");
    if (mkdir(path("r_dir"), 0755) < 0 || chmod(path("r_dir"), 06755) < 0) {
        perror("r_dir");
        return 1;
    }
    say("root chown -1 -1 of a directory", chown(path("r_dir"), -1, -1));
    show("r_dir");

    /* Files for the user. */
    make("u_write", 06755, 1000, 1000);
    make("u_write_g", 02745, 1000, 1000);
    make("u_write_other", 04757, 0, 0);
    make("u_pwrite", 04755, 1000, 1000);
    make("u_ftrunc", 06755, 1000, 1000);
    make("u_trunc", 06755, 1000, 1000);
    make("u_otrunc", 04755, 1000, 1000);
    make("u_chown", 06755, 1000, 1000);
    make("u_chown_g", 02745, 1000, 1000);
    make("u_write_after", 04755, 1000, 1000);
    make("u_falloc", 06755, 1000, 1000);
    (void)setgroups(0, NULL);
    if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0) {
        perror("drop");
        return 1;
    }

    /* As the user: a write takes set-user-ID away, and set-group-ID with
     * group execute (without, it marks mandatory locking and stays). */
    write_to("write", "u_write");
    write_to("write (no group execute)", "u_write_g");
    write_to("write to root's world-writable set-user-ID file", "u_write_other");
    int fd = open(path("u_pwrite"), O_WRONLY);
    say("pwrite", fd < 0 ? -1 : pwrite(fd, "y", 1, 10));
    if (fd >= 0) close(fd);
    show("u_pwrite");
    /* Truncation by descriptor, by path, and by open with O_TRUNC. */
    fd = open(path("u_ftrunc"), O_WRONLY);
    say("ftruncate to the same size", fd < 0 ? -1 : ftruncate(fd, 3));
    if (fd >= 0) close(fd);
    show("u_ftrunc");
    say("truncate", truncate(path("u_trunc"), 1));
    show("u_trunc");
    fd = open(path("u_otrunc"), O_WRONLY | O_TRUNC);
    say("open with O_TRUNC", fd);
    if (fd >= 0) close(fd);
    show("u_otrunc");
    /* fallocate (Linux's file_modified). */
    fd = open(path("u_falloc"), O_WRONLY);
    say("fallocate", fd < 0 ? -1 : fallocate(fd, 0, 0, 8192));
    if (fd >= 0) close(fd);
    show("u_falloc");
    /* chown to nobody new, and to the user's own group. */
    say("chown -1 -1", chown(path("u_chown"), -1, -1));
    show("u_chown");
    say("chown to its own group (no group execute)", chown(path("u_chown_g"), -1, 1000));
    show("u_chown_g");
    /* The bit set again by its owner, then a second write through a
     * descriptor opened before: taken away again. */
    fd = open(path("u_write_after"), O_WRONLY);
    say("first write", fd < 0 ? -1 : write(fd, "1", 1));
    show("u_write_after");
    say("chmod 04755 again", chmod(path("u_write_after"), 04755));
    show("u_write_after");
    say("second write", fd < 0 ? -1 : write(fd, "2", 1));
    if (fd >= 0) close(fd);
    show("u_write_after");
    printf("done\n");
    return 0;
}
