// A process at the host's map limit whose dirty page of a shared host
// file mapping is written back. At the userspace level the kernel must
// then unmap that page from the process's stub (so that the next write
// faults and makes it dirty again), which splits one host mapping in
// three: a mapping more than the stub has room for. The kernel cannot
// keep its records true, so it kills the process (SIGKILL) and logs why;
// natively the write-back needs no new mapping and the process goes on.
// Before that, what Linux does at its map limit (vm.max_map_count):
// mmap fails with ENOMEM once the process has that many mappings, and so
// do an mprotect and a munmap that would split one; a munmap that frees
// a mapping makes room again.
// Usage: map_limit DIR (a bind mount of a host directory)
// Prints a line per check; the test compares the output with a native run.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static long count_maps(void) {
    FILE *m = fopen("/proc/self/maps", "r");
    if (!m) return -1;
    long n = 0;
    int c;
    while ((c = fgetc(m)) != EOF)
        if (c == '\n') n++;
    fclose(m);
    return n;
}

static long max_map_count(void) {
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = -1;
    if (!f || fscanf(f, "%ld", &v) != 1) v = -1;
    if (f) fclose(f);
    return v;
}

// "ok", or what the call failed with.
static const char *res(int r) { return r == 0 ? "ok" : errno == ENOMEM ? "ENOMEM" : strerror(errno); }

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/data";
    long pg = sysconf(_SC_PAGESIZE);
    char path[256];
    snprintf(path, sizeof path, "%s/map_limit.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 3 * pg) != 0) {
        perror("map_limit: file");
        return 1;
    }
    volatile char *f = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED) {
        perror("map_limit: mmap file");
        return 1;
    }
    // All three pages present in one mapping, the middle one dirty.
    (void)f[0];
    (void)f[2 * pg];
    f[pg] = 'x';

    // Three pages to split at the limit.
    char *three = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (three == MAP_FAILED) {
        perror("map_limit: mmap anon");
        return 1;
    }
    memset(three, 1, 3 * pg);
    long max = max_map_count(), before = count_maps();

    // One page of a tmpfs file, mapped again and again: a host mapping
    // each, one page of memory in all.
    int one = memfd_create("map_limit", 0);
    if (one < 0 || ftruncate(one, pg) != 0) {
        perror("map_limit: memfd");
        return 1;
    }
    long n = 0;
    for (;;) {
        volatile char *p = mmap(NULL, pg, PROT_READ, MAP_SHARED | MAP_POPULATE, one, 0);
        if (p == MAP_FAILED) {
            if (errno != ENOMEM) {
                perror("map_limit: mmap");
                return 1;
            }
            break;
        }
        (void)*p;
        if (++n > 1 << 20) {
            fprintf(stderr, "map_limit: no limit after %ld mappings\n", n);
            return 1;
        }
    }
    long total = before + n;
    printf("mmap at the limit: ENOMEM, with max_map_count %s\n",
           total >= max - 64 && total <= max + 2 ? "mappings" : "a different number of mappings");
    if (total < max - 64 || total > max + 2)
        fprintf(stderr, "map_limit: %ld mappings (%ld before), max_map_count %ld\n", total, before, max);
    printf("mprotect splitting a mapping: %s\n", res(mprotect(three + pg, pg, PROT_READ)));
    printf("munmap making a hole: %s\n", res(munmap(three + pg, pg)));
    printf("munmap of a whole mapping: %s\n", res(munmap(three, 3 * pg)));
    void *again = mmap(NULL, pg, PROT_READ, MAP_SHARED, one, 0);
    printf("mmap after it: %s\n", again == MAP_FAILED ? "ENOMEM" : "ok");
    printf("limit reached\n");
    fflush(stdout);
    if (msync((void *)f, 3 * pg, MS_SYNC) != 0) {
        perror("map_limit: msync");
        return 1;
    }
    printf("survived\n");
    return 0;
}
