/* Exclusive and plain creates, and truncations, on a read-only mount
 * (argv[1], holding a file "there" and a directory "dir"). The kernel's
 * O_EXCL create skips the lookup of the name when the caller may write
 * the directory (syscalls/fs/open.rs); on a read-only mount Linux still
 * answers EEXIST for a name that exists and EROFS for one that does not,
 * and the output must match native's line for line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void try(const char *what, const char *dir, const char *name, int flags) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, flags, 0644);
    printf("%s %s: %s\n", what, name, fd < 0 ? strerrorname_np(errno) : "ok");
    if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/ro";
    const char *names[] = {"there", "dir", "missing", "dir/missing", "missing/x", "there/x"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        try("O_CREAT|O_EXCL", dir, names[i], O_CREAT | O_EXCL | O_WRONLY);
        try("O_CREAT", dir, names[i], O_CREAT | O_WRONLY);
        try("O_TRUNC", dir, names[i], O_TRUNC | O_WRONLY);
        try("O_RDONLY", dir, names[i], O_RDONLY);
    }
    printf("done\n");
    return 0;
}
