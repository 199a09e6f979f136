/* Reads the first MiB of argv[1] in 4 KiB blocks (past 256 KiB in
 * sequence the userspace level reads through a window of the host file,
 * crates/kernel/src/vfs/hostwindow.rs), makes the directory argv[2] to
 * tell the host, waits for the file argv[3] to appear, then reads the rest
 * and prints how much came. argv[4] "busy": wait with a loop of stat
 * calls, never sleeping; "sleep": sleep before every look; "looked": as
 * "busy", having looked for argv[3] once before making argv[2]. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    static char buf[4096];
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    long first = 0;
    for (int i = 0; i < 256; i++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        first += n;
    }
    printf("first=%ld\n", first);
    fflush(stdout);
    int busy = !strcmp(argv[4], "busy") || !strcmp(argv[4], "looked");
    struct stat st;
    if (!strcmp(argv[4], "looked") && stat(argv[3], &st) == 0) {
        fprintf(stderr, "%s is there already\n", argv[3]);
        return 1;
    }
    if (mkdir(argv[2], 0755) < 0) { perror("mkdir"); return 1; }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (!busy) {
            /* Before every look, the first too: the host may answer
             * before it, and this reader is the one that slept. */
            struct timespec d = {0, 20 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
        if (stat(argv[3], &st) == 0) break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 30) { fprintf(stderr, "no go\n"); return 1; }
    }
    long rest = 0;
    int nonzero = 1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) { perror("read"); return 1; }
        if (n == 0) break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != 'a') nonzero = 0;
        rest += n;
    }
    printf("rest=%ld %s\n", rest, nonzero ? "all written bytes" : "WRONG bytes");
    return 0;
}
