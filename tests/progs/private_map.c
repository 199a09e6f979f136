/* Private file mappings (MAP_PRIVATE of a host file): what the workload
 * sees through them when the file changes, when it writes its own copy
 * (after mprotect), across fork, and at the file's end. The userspace
 * level shares a read-only private mapping's pages with the file's cache
 * until a write; each line must read as on Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf jb;
static void on_bus(int sig) { siglongjmp(jb, sig); }

static int touch(volatile char *p) {
    if (sigsetjmp(jb, 1) == 0) {
        (void)*p;
        return 0;
    }
    return 1;
}

int main(void) {
    const char *path = "/private-map-data";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    char buf[8192];
    memset(buf, 'a', sizeof buf);
    if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
        perror("setup");
        return 1;
    }
    char *m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("read-only private map: %c\n", m[0]);

    /* An untouched page of a private mapping shows later writes to the file. */
    pwrite(fd, "b", 1, 0);
    printf("file write seen through the private map: %c\n", m[0]);

    /* A child makes its own copy writable and writes it. */
    pid_t p = fork();
    if (p == 0) {
        if (mprotect(m, 8192, PROT_READ | PROT_WRITE) != 0)
            _exit(1);
        m[0] = 'c';
        m[4096] = 'd';
        _exit(m[0] == 'c' && m[4096] == 'd' ? 0 : 2);
    }
    int st;
    waitpid(p, &st, 0);
    char f0 = 0;
    pread(fd, &f0, 1, 0);
    printf("child wrote its copy: exit %d; parent sees %c %c; file has %c\n",
           WEXITSTATUS(st), m[0], m[4096], f0);

    /* This process writes its copy: the file and another mapping keep theirs. */
    if (mprotect(m, 8192, PROT_READ | PROT_WRITE) != 0)
        perror("mprotect");
    m[1] = 'e';
    char *m2 = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    pread(fd, &f0, 1, 1);
    printf("after writing the copy: copy %c, other map %c, file %c\n", m[1], m2[1], f0);

    /* After the copy, file writes no longer show in the written page. */
    pwrite(fd, "f", 1, 1);
    printf("file write after the copy: copy %c, other map %c\n", m[1], m2[1]);

    /* The copy forgets its writes with MADV_DONTNEED: the file again. */
    madvise(m, 4096, MADV_DONTNEED);
    printf("MADV_DONTNEED of the copy: %c\n", m[1]);

    /* The kernel never writes through a read-only private mapping. */
    int fd2 = open(path, O_RDONLY);
    ssize_t r = read(fd2, m2, 10);
    printf("read() into a read-only private map: %s\n",
           r < 0 && errno == EFAULT ? "EFAULT" : "not refused");
    pread(fd, &f0, 1, 2);
    printf("file byte 2 still: %c\n", f0);

    /* A mapping reaching past the end of the file: SIGBUS there, and for
     * the part cut off by a truncation. */
    signal(SIGBUS, on_bus);
    char *m3 = mmap(NULL, 16384, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("touch past the end: %s\n", touch(m3 + 12288) ? "SIGBUS" : "read");
    ftruncate(fd, 4096);
    printf("touch past a truncation: %s\n", touch(m2 + 4096) ? "SIGBUS" : "read");
    printf("touch before it: %s\n", touch(m2 + 10) ? "SIGBUS" : "read");

    /* A private mapping that is executable and read-only, then written:
     * the file keeps its bytes. */
    char *m4 = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    mprotect(m4, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
    m4[3] = 'x';
    pread(fd, &f0, 1, 3);
    printf("written exec copy %c, file %c\n", m4[3], f0);
    unlink(path);
    return 0;
}
