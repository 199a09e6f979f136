// Exhausts one resource inside a container and reports how the sandbox
// said no. Usage: limits mem|fork|threads|files
//   mem:     malloc+touch 1 MiB blocks until malloc fails -> "ENOMEM after N MiB"
//   fork:    fork sleeping children until fork fails      -> "EAGAIN after N"
//   threads: create sleeping threads until it fails       -> "EAGAIN after N threads"
//   files:   open /dev/null until open fails              -> "EMFILE after N"
// Exit status 0 when the failure had the expected errno, 1 otherwise.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static void *sleeper(void *arg) {
    (void)arg;
    pause();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *m = argv[1];
    if (!strcmp(m, "mem")) {
        long n = 0;
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p) break;
            memset(p, 0x5a, 1 << 20);
            n++;
        }
        int e = errno;
        printf("%s after %ld MiB\n", e == ENOMEM ? "ENOMEM" : strerror(e), n);
        return e == ENOMEM ? 0 : 1;
    }
    if (!strcmp(m, "fork")) {
        pid_t kids[100000];
        long n = 0;
        int e = 0;
        for (;;) {
            pid_t p = fork();
            if (p == 0) { pause(); _exit(0); }
            if (p < 0) { e = errno; break; }
            kids[n++] = p;
            if (n == 100000) break;
        }
        printf("%s after %ld\n", e == EAGAIN ? "EAGAIN" : strerror(e), n);
        fflush(stdout);
        for (long i = 0; i < n; i++) kill(kids[i], SIGKILL);
        for (long i = 0; i < n; i++) waitpid(kids[i], NULL, 0);
        return e == EAGAIN ? 0 : 1;
    }
    if (!strcmp(m, "threads")) {
        long n = 0;
        int e;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 64 << 10);
        for (;;) {
            pthread_t t;
            e = pthread_create(&t, &a, sleeper, NULL);
            if (e) break;
            n++;
        }
        printf("%s after %ld threads\n", e == EAGAIN ? "EAGAIN" : strerror(e), n);
        fflush(stdout);
        _exit(e == EAGAIN ? 0 : 1);
    }
    if (!strcmp(m, "files")) {
        long n = 0;
        for (;;) {
            int fd = open("/dev/null", O_RDONLY);
            if (fd < 0) break;
            n++;
        }
        int e = errno;
        printf("%s after %ld\n", e == EMFILE ? "EMFILE" : strerror(e), n);
        return e == EMFILE ? 0 : 1;
    }
    if (!strcmp(m, "hostfiles")) {
        // Regular files through the gofer: each holds a host descriptor
        // in the kernel.
        long n = 0;
        for (;;) {
            int fd = open(argc > 2 ? argv[2] : "/bin/sh", O_RDONLY);
            if (fd < 0) break;
            n++;
        }
        int e = errno;
        printf("%s after %ld\n", e == EMFILE ? "EMFILE" : strerror(e), n);
        return e == EMFILE || e == ENFILE ? 0 : 1;
    }
    return 2;
}
