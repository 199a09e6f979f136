/* Two threads: one keeps swapping ./d between a directory and a symlink
 * pointing at "/" (and at long ../ chains); the other keeps opening
 * d/<target> and reports whether it ever read the marker's content. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile int stop;
static const char *targets[] = {"/", "../../../../../../../../..", "/../../..", "/proc/self/root", "/proc/1/root/../.."};

static void *swapper(void *arg) {
    (void)arg;
    unsigned i = 0;
    while (!stop) {
        unlink("d");
        rmdir("d");
        if (i & 1) mkdir("d", 0755);
        else symlink(targets[(i / 2) % 5], "d");
        i++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "d/tmp/marker";
    const char *marker = argc > 2 ? argv[2] : "HOST-SECRET";
    chdir("/tmp");
    pthread_t t;
    pthread_create(&t, NULL, swapper, NULL);
    int opened = 0, leaks = 0;
    for (int i = 0; i < 3000; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        opened++;
        char buf[256] = {0};
        read(fd, buf, sizeof buf - 1);
        if (strstr(buf, marker)) leaks++;
        close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("opened=%d leaks=%d\n", opened, leaks);
    return leaks != 0;
}
