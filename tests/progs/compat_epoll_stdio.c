// Edge-triggered epoll on the container's stdio (host pipes, or the
// console's pty with `terminal: true`, at the userspace level): an edge
// per input arriving, also while earlier input is unread; for output, what
// the host's pipe or terminal wakes its writers with; and, on pipes, the
// hangup when the writer closes. The test feeds stdin when a line asks
// for it. One line per behaviour; the userspace level must print what
// the host prints.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    _exit(1);
}

static void show(const char *what, int ep, int timeout_ms) {
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, timeout_ms);
    printf("%s: %d events, 0x%x\n", what, n, n > 0 ? ev[0].events : 0);
}

static int watch(unsigned events, int fd) {
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = events};
    e.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
        perror("epoll_ctl");
    return ep;
}

static long drain(void) {
    char buf[256];
    long total = 0, n;
    while ((n = read(0, buf, sizeof buf)) > 0)
        total += n;
    return total;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(30);
    int tty = isatty(0);
    if (tty) {
        // No echo: the output is the program's own lines.
        struct termios t;
        tcgetattr(0, &t);
        t.c_lflag &= ~ECHO;
        tcsetattr(0, TCSANOW, &t);
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    int in = watch(EPOLLIN | EPOLLET, 0);
    show("stdin, nothing yet", in, 300);
    printf("input please: 1\n");
    show("stdin, input", in, 10000);
    show("stdin, nothing new", in, 300);
    printf("input please: 2\n");
    show("stdin, more input with input unread", in, 10000);
    printf("stdin read: %ld\n", drain());
    show("stdin, read up to EAGAIN", in, 300);
    printf("input please: 3\n");
    show("stdin, input after EAGAIN", in, 10000);
    printf("stdin read: %ld\n", drain());

    int out = watch(EPOLLOUT | EPOLLET, 1);
    show("stdout, first wait", out, 1000);
    printf("some output\n");
    show("stdout, after output the reader takes", out, 300);
    if (tty)
        return 0;

    printf("close stdin please\n");
    show("stdin, writer closed", in, 10000);
    show("stdin, nothing new after the hangup", in, 300);
    return 0;
}
