// Attributes stat reports after each kind of change, on the container's
// rootfs (a host directory whose attributes the userspace kernel caches:
// every change it makes must show at once, through every name).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static struct stat st(const char *p) {
    struct stat s;
    memset(&s, 0, sizeof s);
    if (stat(p, &s) < 0) perror(p);
    return s;
}

static void times(const char *p, long a, long m) {
    struct timeval tv[2] = {{a, 0}, {m, 0}};
    if (utimes(p, tv) < 0) perror("utimes");
}

static int later(struct timespec t, long than) { return t.tv_sec > than; }

static int differ(struct timespec a, struct timespec b) {
    return a.tv_sec != b.tv_sec || a.tv_nsec != b.tv_nsec;
}

// Read-only opens of one rootfs file, which the userspace kernel serves
// from one shared host descriptor: each open is still a file of its own
// (offset, status flags, locks), and sees what other opens write,
// truncate, replace and unlink.
static void shared_reads(void) {
    const char *p = "/attrs-s", *q = "/attrs-s.new";
    unlink(p); unlink(q);
    int w = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(w, "0123456789", 10);
    int a = open(p, O_RDONLY), b = open(p, O_RDONLY);
    char x[8] = {0}, y[8] = {0};
    read(a, x, 3);
    read(b, y, 2);
    read(a, x + 3, 2);
    printf("shared reads: offsets %ld %ld, bytes %s %s\n", (long)lseek(a, 0, SEEK_CUR),
           (long)lseek(b, 0, SEEK_CUR), x, y);
    fcntl(a, F_SETFL, O_NONBLOCK);
    printf("shared reads: flags %o %o\n", fcntl(a, F_GETFL) & O_NONBLOCK,
           fcntl(b, F_GETFL) & O_NONBLOCK);
    lseek(a, 0, SEEK_END);
    printf("shared reads: after a seek to the end, the other at %ld\n",
           (long)lseek(b, 0, SEEK_CUR));
    int la = flock(a, LOCK_EX | LOCK_NB);
    int lb = flock(b, LOCK_EX | LOCK_NB);
    printf("shared reads: flock %d, the other %s\n", la, lb == 0 ? "ok" : strerrorname_np(errno));
    flock(a, LOCK_UN);
    pwrite(w, "AB", 2, 0);
    memset(y, 0, sizeof y);
    pread(b, y, 4, 0);
    printf("shared reads: another open's write: %s\n", y);
    ftruncate(w, 3);
    int c = open(p, O_RDONLY);
    memset(y, 0, sizeof y);
    printf("shared reads: after a truncation: %zd %s\n", read(c, y, sizeof y - 1), y);
    printf("shared reads: write to a read-only open: %s\n",
           write(c, "z", 1) < 0 ? strerrorname_np(errno) : "written");
    int n = open(q, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    write(n, "new", 3);
    close(n);
    rename(q, p);
    int d = open(p, O_RDONLY);
    memset(x, 0, sizeof x);
    memset(y, 0, sizeof y);
    read(d, x, sizeof x - 1);
    pread(c, y, sizeof y - 1, 0);
    printf("shared reads: after a rename over it: new %s, old %s\n", x, y);
    unlink(p);
    int e = open(p, O_RDONLY);
    memset(x, 0, sizeof x);
    pread(d, x, sizeof x - 1, 0);
    printf("shared reads: after unlink: open %s, the open one reads %s\n",
           e < 0 ? strerrorname_np(errno) : "ok", x);
    close(a); close(b); close(c); close(d); close(w);
}

int main(void) {
    const char *f = "/attrs-f", *g = "/attrs-g", *d = "/attrs-d";
    unlink(f); unlink(g); unlink("/attrs-d/h"); unlink("/attrs-d/x");
    rmdir("/attrs-d/e"); rmdir(d);

    int fd = open(f, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    write(fd, "hello", 5);
    close(fd);
    printf("created: size %ld\n", (long)st(f).st_size);
    printf("again: size %ld\n", (long)st(f).st_size);

    fd = open(f, O_WRONLY | O_APPEND);
    write(fd, "abc", 3);
    printf("after append: size %ld\n", (long)st(f).st_size);
    struct stat fs;
    fstat(fd, &fs);
    printf("fstat: size %ld\n", (long)fs.st_size);
    close(fd);

    link(f, g);
    printf("hard link: nlink %ld\n", (long)st(f).st_nlink);
    fd = open(g, O_WRONLY | O_APPEND);
    write(fd, "zz", 2);
    close(fd);
    printf("written through the other name: size %ld\n", (long)st(f).st_size);
    truncate(f, 4);
    printf("truncated through the first: size %ld via the other\n", (long)st(g).st_size);

    chmod(f, 0600);
    printf("chmod: mode %o via the other\n", st(g).st_mode & 07777);

    times(f, 1000000, 1000000);
    printf("utimes: mtime %ld\n", (long)st(f).st_mtim.tv_sec);
    fd = open(f, O_WRONLY);
    write(fd, "x", 1);
    close(fd);
    printf("write moves mtime: %s\n", later(st(f).st_mtim, 1000000) ? "yes" : "no");

    times(f, 1000, 2000);
    char buf[16];
    fd = open(f, O_RDONLY);
    read(fd, buf, sizeof buf);
    close(fd);
    // relatime (the host's default) moves an access time older than the
    // modification; a noatime host moves none: both levels print the same.
    printf("read after an old atime: atime %s\n", later(st(f).st_atim, 2000) ? "moved" : "kept");
    // The same through the file's other name, both names' attributes
    // read just before (a read changes its file's attributes alone, but
    // under every name).
    times(f, 1000, 2000);
    st(f);
    st(g);
    fd = open(g, O_RDONLY);
    read(fd, buf, sizeof buf);
    close(fd);
    printf("read through the other name after an old atime: atime %s\n",
           later(st(f).st_atim, 2000) ? "moved" : "kept");

    mkdir(d, 0755);
    printf("mkdir: nlink %ld\n", (long)st(d).st_nlink);
    mkdir("/attrs-d/e", 0755);
    printf("subdirectory: nlink %ld\n", (long)st(d).st_nlink);
    times(d, 1000, 1000);
    close(open("/attrs-d/x", O_CREAT | O_WRONLY, 0644));
    printf("create moves the directory's mtime: %s\n", later(st(d).st_mtim, 1000) ? "yes" : "no");
    times(d, 1000, 2000);
    st(d);
    int dfd = open(d, O_RDONLY | O_DIRECTORY);
    char dents[4096];
    syscall(SYS_getdents64, dfd, dents, sizeof dents);
    close(dfd);
    printf("directory read after an old atime: atime %s\n", later(st(d).st_atim, 2000) ? "moved" : "kept");
    rmdir("/attrs-d/e");
    printf("rmdir: nlink %ld\n", (long)st(d).st_nlink);

    struct stat before = st(f);
    usleep(30000);
    rename(f, "/attrs-d/h");
    printf("rename moves ctime: %s\n", differ(st("/attrs-d/h").st_ctim, before.st_ctim) ? "yes" : "no");
    unlink(g);
    printf("other name unlinked: nlink %ld\n", (long)st("/attrs-d/h").st_nlink);

    fd = open("/attrs-d/h", O_RDWR);
    ftruncate(fd, 8192);
    printf("ftruncate: size %ld\n", (long)st("/attrs-d/h").st_size);
    fallocate(fd, 0, 0, 16384);
    printf("fallocate: size %ld\n", (long)st("/attrs-d/h").st_size);
    times("/attrs-d/h", 1000, 1000);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(m, "mapped", 6);
    munmap(m, 8192);
    close(fd);
    printf("write through a shared mapping moves mtime: %s\n",
           later(st("/attrs-d/h").st_mtim, 1000) ? "yes" : "no");
    fd = open("/attrs-d/h", O_WRONLY | O_TRUNC);
    close(fd);
    printf("O_TRUNC: size %ld\n", (long)st("/attrs-d/h").st_size);

    // A mode the kernel set is what a later walk checks, in another
    // process as much as in this one: a user without the directory's
    // search permission is refused its file, then let through.
    chmod("/", 0755); // a test rootfs may be a private temporary directory
    mkdir("/attrs-p", 0755);
    close(open("/attrs-p/x", O_CREAT | O_WRONLY, 0644));
    for (int mode = 0700; mode >= 0; mode = mode == 0700 ? 0755 : -1) {
        chmod("/attrs-p", mode);
        pid_t pid = fork();
        if (pid == 0) {
            if (setresuid(1000, 1000, 1000) < 0) _exit(2);
            struct stat s;
            _exit(stat("/attrs-p/x", &s) == 0 ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        printf("mode %o: another user %s\n", mode,
               WEXITSTATUS(status) == 0 ? "reaches the file" : "is refused");
    }
    unlink("/attrs-p/x"); rmdir("/attrs-p");

    // The same through hard links and owners: a mode or owner changed
    // through one name is what an open or an unlink through the other
    // checks, however recently the kernel read the file's attributes.
    mkdir("/attrs-p", 01777);
    chmod("/attrs-p", 01777);
    close(open("/attrs-p/a", O_CREAT | O_WRONLY, 0644));
    link("/attrs-p/a", "/attrs-p/b");
    const char *steps[] = {"chmod 600 a", "chmod 644 b", "chown a", "chown b"};
    for (int i = 0; i < 4; i++) {
        close(open("/attrs-p/a", O_RDONLY));
        close(open("/attrs-p/b", O_RDONLY));
        switch (i) {
        case 0: chmod("/attrs-p/a", 0600); break;
        case 1: chmod("/attrs-p/b", 0644); break;
        case 2: chown("/attrs-p/a", 1000, 1000); break;
        case 3: chown("/attrs-p/b", 0, 0); break;
        }
        link("/attrs-p/a", "/attrs-p/c");
        pid_t pid = fork();
        if (pid == 0) {
            if (setresuid(1000, 1000, 1000) < 0) _exit(9);
            int o = open(i % 2 ? "/attrs-p/a" : "/attrs-p/b", O_RDWR);
            int r = o >= 0 ? 1 : 0;
            if (o >= 0) close(o);
            o = open(i % 2 ? "/attrs-p/a" : "/attrs-p/b", O_RDONLY);
            r |= o >= 0 ? 2 : 0;
            if (o >= 0) close(o);
            // The sticky directory lets only the file's owner remove it.
            r |= unlink("/attrs-p/c") == 0 ? 4 : 0;
            _exit(r);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        unlink("/attrs-p/c");
        int r = WEXITSTATUS(status);
        printf("%s, another user: write %s, read %s, unlink %s\n", steps[i],
               r & 1 ? "yes" : "no", r & 2 ? "yes" : "no", r & 4 ? "yes" : "no");
    }
    unlink("/attrs-p/a"); unlink("/attrs-p/b"); rmdir("/attrs-p");

    unlink("/attrs-d/h"); unlink("/attrs-d/x"); rmdir(d);
    shared_reads();
    return 0;
}
