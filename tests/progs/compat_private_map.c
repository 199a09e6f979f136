/* Private mappings of a host file (MAP_PRIVATE) as Linux has them: until
 * the mapping may be written, its pages are the file's own (a change made
 * through write(2) shows through them); made writable and written, it has
 * its own copy that the file never sees; a write to a read-only private
 * mapping is SIGSEGV, a touch past the end of the file SIGBUS; a child of
 * fork sees what the parent saw. The file is on a bind mount (a host
 * directory), given as argv[1]. Compared line by line with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

/* How a child that runs f ends: "exit N" or the signal's name. */
static const char *child(void (*f)(char *), char *m) {
    static char buf[64];
    pid_t pid = fork();
    if (pid == 0) {
        f(m);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) snprintf(buf, sizeof buf, "%s", sigabbrev_np(WTERMSIG(st)));
    else snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
    return buf;
}

static void write_first(char *m) { m[0] = 'w'; }
static void touch_second(char *m) { _exit(m[PG]); }
static void read_both(char *m) { _exit(m[0] == 'X' && m[2 * PG] == 'Z' ? 7 : 1); }

int main(int argc, char **argv) {
    char path[256];
    snprintf(path, sizeof path, "%s/private-map", argc > 1 ? argv[1] : "/tmp");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    char page[PG];
    for (int i = 0; i < 3; i++) {
        memset(page, 'A' + i, PG);
        if (write(fd, page, PG) != PG) return 1;
    }
    char *m = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) return 1;
    printf("read-only private map: %c %c %c\n", m[0], m[PG], m[2 * PG]);
    pwrite(fd, "X", 1, 0);
    pwrite(fd, "Y", 1, PG);
    printf("after write(2) to the file: %c %c\n", m[0], m[PG]);
    printf("write to the read-only mapping: %s\n", child(write_first, m));
    printf("mprotect read-write: %s\n", mprotect(m, 3 * PG, PROT_READ | PROT_WRITE) ? strerrorname_np(errno) : "ok");
    m[2 * PG] = 'Z';
    char c = 0;
    pread(fd, &c, 1, 2 * PG);
    printf("written privately: mapping %c, file %c\n", m[2 * PG], c);
    printf("child of fork sees the parent's view: %s\n", child(read_both, m));
    char *r = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("second read-only map: %c\n", r[0]);
    ftruncate(fd, PG);
    printf("touch past the end after a truncation: %s\n", child(touch_second, r));
    munmap(r, 2 * PG);
    munmap(m, 3 * PG);
    close(fd);
    unlink(path);
    return 0;
}
