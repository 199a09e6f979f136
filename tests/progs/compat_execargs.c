/* execve's arguments as Linux reads them: thousands of strings (what
 * xargs hands a program), strings and pointer arrays that cross a page,
 * strings in a file mapping, and each way to get them wrong (a pointer
 * or a string in an unmapped or PROT_NONE page, a string that runs into
 * one, a missing terminator, a string or a total too long). The kernel
 * reads a page of pointers at a time and finds strings inside the page
 * it read last; these are the edges of that. Compared line by line with
 * the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

static char *self;

/* The child: prints how many arguments came and a digest of them. */
static int child(int argc, char **argv) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < argc; i++) {
        for (char *p = argv[i]; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    printf("  child: %d arguments, digest %016llx\n", argc, (unsigned long long)h);
    return 0;
}

/* Runs `path` with `argv` and `env` (NULL: just A=1), under
 * RLIMIT_STACK `stack` (0: as it is); prints the result. `path` NULL: the
 * program itself, argv[0] "child" (execveat with `flags` if not 0). */
static void run_file(const char *what, const char *path, char **argv, char **env, rlim_t stack,
                     int flags) {
    fflush(stdout);
    int p[2];
    if (pipe(p)) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char *dflt[] = {"A=1", NULL};
        if (!env) env = dflt;
        if (stack) {
            struct rlimit r = {stack, stack};
            if (setrlimit(RLIMIT_STACK, &r)) _exit(3);
        }
        if (flags)
            syscall(SYS_execveat, AT_FDCWD, path ? path : self, argv, env, flags);
        else
            execve(path ? path : self, argv, env);
        int e = errno;
        if (write(p[1], &e, sizeof e) < 0) _exit(2);
        _exit(1);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    if (n == sizeof e) printf("%s: %s\n", what, strerrorname_np(e));
    else printf("%s: ran, status %d\n", what, WEXITSTATUS(st));
}

static void run_env(const char *what, char **argv, char **env, rlim_t stack) {
    run_file(what, NULL, argv, env, stack, 0);
}

static void run(const char *what, char **argv) { run_env(what, argv, NULL, 0); }

/* n pointers to one string of `len` bytes (with its NUL) after `first`
 * (if any), then NULL. */
static char **many(const char *first, int n, size_t len) {
    char *s = malloc(len);
    memset(s, 'B', len - 1);
    s[len - 1] = 0;
    char **v = calloc(n + 2, sizeof *v);
    int i = 0;
    if (first) v[i++] = (char *)first;
    while (n--) v[i++] = s;
    return v;
}

/* A 2-page mapping whose second page is unmapped (or PROT_NONE). */
static char *edge(int prot_none) {
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (prot_none) mprotect(m + PG, PG, PROT_NONE);
    else munmap(m + PG, PG);
    return m;
}

/* The child of the descriptor cases: the name the exec gave it. */
static int show_name(void) {
    char comm[32] = "";
    int fd = open("/proc/self/comm", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, comm, sizeof comm - 1);
        if (n > 0) comm[n - 1] = 0;
        close(fd);
    }
    printf("  execfn %s, comm %s\n", (char *)getauxval(AT_EXECFN), comm);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 0 && strcmp(argv[0], "child") == 0) return child(argc, argv);
    if (argc > 0 && strcmp(argv[0], "show-name") == 0) return show_name();
    self = argv[0];

    /* Many strings, packed in one buffer as xargs packs them. */
    {
        int n = 3000;
        char *buf = malloc(n * 80);
        char **v = calloc(n + 2, sizeof *v);
        v[0] = "child";
        char *at = buf;
        for (int i = 1; i <= n; i++) {
            v[i] = at;
            at += sprintf(at, "/usr/share/doc/package-%04d/changelog.Debian.gz%.*s", i, i % 17,
                          "abcdefghijklmnopq") + 1;
        }
        run("3000 packed strings", v);
        free(buf);
        free(v);
    }

    /* A string and a pointer that each cross a page boundary. */
    {
        char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char *s = m + PG - 5;
        strcpy(s, "across-the-page");
        char **v = (char **)(m + 2 * PG - 12); /* unaligned: v[1] straddles */
        char *v0 = "child";
        memcpy(&v[0], &v0, 8);
        memcpy(&v[1], &s, 8);
        char *z = NULL;
        memcpy(&v[2], &z, 8);
        run("a string and a pointer across pages", v);
    }

    /* Strings in a read-only file mapping. */
    {
        char path[] = "/tmp/execargs-XXXXXX";
        int fd = mkstemp(path);
        const char text[] = "first-in-file\0second-in-file";
        if (write(fd, text, sizeof text) != sizeof text) return 1;
        char *f = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
        run("strings in a file mapping", (char *[]){"child", f, f + 14, NULL});
        munmap(f, PG);
        close(fd);
        unlink(path);
    }

    /* The errors. */
    {
        char *m = edge(0);
        run("a string pointer into an unmapped page", (char *[]){"child", m + PG + 8, NULL});
        memset(m + PG - 6, 'x', 6);
        run("a string that runs into an unmapped page", (char *[]){"child", m + PG - 6, NULL});
        char **v = (char **)(m + PG - 16);
        v[0] = "child";
        v[1] = "no-terminator";
        run("a pointer array without its terminator", v);
        run("an unmapped pointer array", (char **)(m + PG));
        char *n = edge(1);
        memset(n + PG - 3, 'y', 3);
        run("a string that runs into a PROT_NONE page", (char *[]){"child", n + PG - 3, NULL});
        run("a string pointer into a PROT_NONE page", (char *[]){"child", n + PG, NULL});
    }

    /* The limits: a string of MAX_ARG_STRLEN (128 KiB with its NUL) is
     * fine, one byte more is not; 3 MiB in all is too much. */
    {
        size_t max = 32 * PG;
        char *s = malloc(max + 1);
        memset(s, 'L', max);
        s[max - 1] = 0;
        run("a string of 128 KiB with its NUL", (char *[]){"child", s, NULL});
        s[max - 1] = 'L';
        s[max] = 0;
        run("a string one byte longer", (char *[]){"child", s, NULL});
        free(s);
        int n = 30;
        char *big = malloc(100000);
        memset(big, 'B', 99999);
        big[99999] = 0;
        char **v = calloc(n + 2, sizeof *v);
        v[0] = "child";
        for (int i = 1; i <= n; i++) v[i] = big;
        run("3 MiB of arguments", v);
        free(big);
        free(v);
    }

    /* One limit for the arguments, the environment and the program's
     * name together: a quarter of RLIMIT_STACK (8 MiB here: 2 MiB), less
     * a pointer per string. */
    {
        run("1.5 MiB of arguments", many("child", 15, 100000));
        run_env("1 MB of arguments and 0.9 MB of environment", many("child", 10, 100000),
                many(NULL, 9, 100000), 0);
        run_env("1.2 MB of arguments and 1.2 MB of environment", many("child", 12, 100000),
                many(NULL, 12, 100000), 0);
        run_env("300 kB of arguments under a 1 MiB stack limit", many("child", 3, 100000), NULL,
                1 << 20);
        run_env("200 kB of arguments under a 1 MiB stack limit", many("child", 2, 100000), NULL,
                1 << 20);
        /* The pointers are counted before any string is read: a missing
         * terminator is EFAULT even after a string too long. */
        char *m = edge(0);
        char **v = (char **)(m + PG - 16);
        v[0] = "child";
        v[1] = many(NULL, 1, 200000)[0];
        run("a string too long, then a pointer array without its terminator", v);
    }

    /* The file is found and opened before the arguments are read; its
     * format is looked at after them. */
    {
        char **big = many("x", 30, 100000);
        char *m = edge(0);
        run_file("a missing file with an unmapped pointer array", "/tmp/no-such-program",
                 (char **)(m + PG), NULL, 0, 0);
        int fd = open("/tmp/not-executable", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) close(fd);
        run_file("a file without execute permission and 3 MiB of arguments",
                 "/tmp/not-executable", big, NULL, 0, 0);
        fd = open("/tmp/no-format", O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (fd >= 0) {
            if (write(fd, "junk\n", 5) != 5) return 1;
            close(fd);
        }
        run_file("a file of no known format and 3 MiB of arguments", "/tmp/no-format", big,
                 NULL, 0, 0);
        run_file("a file of no known format", "/tmp/no-format", (char *[]){"x", NULL}, NULL, 0,
                 0);
        run_file("execveat with an unknown flag and an unmapped pointer array", NULL,
                 (char **)(m + PG), NULL, 0, 0x8000);
    }

    /* A program named by a descriptor is /dev/fd/N (and /dev/fd/N/name
     * below a directory's): its AT_EXECFN, what a script's interpreter is
     * given, what counts against the limit; its task name is the file's
     * own when the descriptor alone named it. */
    {
        dup2(open(self, O_PATH), 20);
        dup2(open("/tmp", O_PATH | O_DIRECTORY), 21);
        int s = open("/tmp/show-script", O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (s >= 0) {
            const char *text = "#!/bin/sh\necho \"  script as $0\"\n";
            if (write(s, text, strlen(text)) < 0) return 1;
            close(s);
        }
        char *none[] = {NULL};
        for (int i = 0; i < 4; i++) {
            if (i == 2) {
                /* Below a close-on-exec descriptor the script's name is
                 * gone after the exec: refused. A program still runs. */
                fcntl(20, F_SETFD, FD_CLOEXEC);
                fcntl(21, F_SETFD, FD_CLOEXEC);
            }
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                if (i % 2 == 0)
                    syscall(SYS_execveat, 20, "", (char *[]){"show-name", NULL}, none,
                            AT_EMPTY_PATH);
                else
                    syscall(SYS_execveat, 21, "show-script", (char *[]){"x", NULL}, none, 0);
                printf("  execveat: %s\n", strerrorname_np(errno));
                fflush(stdout);
                _exit(1);
            }
            int st;
            waitpid(pid, &st, 0);
        }
    }
    return 0;
}
