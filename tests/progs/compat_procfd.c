/* pidfd_send_signal through a descriptor of a /proc/<pid> directory, as
 * Linux (5.1+) allows: to this process, to a child, to a child that has
 * exited (ESRCH); a descriptor of any other directory is EBADF. CPython's
 * test_signal (test_pidfd_send_signal) does the first. Compared line by
 * line with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_usr1(int s) { got = s; }

static const char *res(long r) { return r == 0 ? "ok" : strerrorname_np(errno); }

static long send(int fd, int sig) { return syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); }

int main(void) {
    signal(SIGUSR1, on_usr1);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", getpid());
    int self = open(path, O_DIRECTORY | O_RDONLY);
    long r = send(self, SIGUSR1);
    printf("/proc/self-pid dir: %s, handler ran %d\n", res(r), got == SIGUSR1);
    printf("signal 0 to it: %s\n", res(send(self, 0)));
    printf("bad signal: %s\n", res(send(self, 99)));
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    snprintf(path, sizeof path, "/proc/%d", child);
    int cfd = open(path, O_DIRECTORY | O_RDONLY);
    printf("to a child: %s\n", res(send(cfd, SIGTERM)));
    int st;
    waitpid(child, &st, 0);
    printf("child ended by: %s\n", WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : "exit");
    printf("to a reaped child: %s\n", res(send(cfd, SIGTERM)));
    int other = open("/proc/self/fd", O_DIRECTORY | O_RDONLY);
    printf("another /proc directory: %s\n", res(send(other, SIGUSR1)));
    int root = open("/", O_DIRECTORY | O_RDONLY);
    printf("a plain directory: %s\n", res(send(root, SIGUSR1)));
    return 0;
}
