// Edge-triggered epoll reports an edge only for a wakeup of a kind the
// interest watches, as Linux's ep_poll_callback (a wakeup's key must
// share a bit with the item's events): room freed for a writer is no
// edge for a reader of the same file, and data arriving is none for a
// writer. Pipes, unix sockets, TCP sockets of the sandbox network stack
// (Linux wakes a writer there only after the socket was out of room,
// SOCK_NOSPACE; not for each ACK), and epolls nested in epolls (every
// event of a watched file is an event of the epoll). One line per
// behaviour; the userspace level must print what the host prints.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    fflush(stdout);
    _exit(1);
}

// One epoll_wait: how many events and the bits of the first.
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

static void pipes(void) {
    int p[2];
    char buf[65536];
    pipe2(p, O_NONBLOCK);
    int ep = watch(EPOLLIN | EPOLLET, p[0]);
    write(p[1], "abcd", 4);
    show("pipe reader, data", ep, 1000);
    read(p[0], buf, 2);
    show("pipe reader, part read (room freed)", ep, 300);
    write(p[1], "ef", 2);
    show("pipe reader, more data on unread data", ep, 1000);
    read(p[0], buf, sizeof buf);
    close(ep);

    ep = watch(EPOLLOUT | EPOLLET, p[1]);
    show("pipe writer, first wait", ep, 1000);
    write(p[1], "0123456789", 10);
    show("pipe writer, after a write", ep, 300);
    read(p[0], buf, sizeof buf);
    show("pipe writer, reader took a little", ep, 300);
    long filled = 0;
    for (;;) {
        ssize_t n = write(p[1], buf, sizeof buf);
        if (n < 0)
            break;
        filled += n;
    }
    printf("pipe filled: %ld\n", filled);
    show("pipe writer, full", ep, 300);
    read(p[0], buf, 4096);
    show("pipe writer, a page read from the full pipe", ep, 1000);
    show("pipe writer, nothing new", ep, 300);
    close(ep);
    close(p[0]);
    close(p[1]);
}

static void unix_sockets(void) {
    int s[2];
    char buf[4096];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s);
    int ep = watch(EPOLLIN | EPOLLET, s[0]);
    write(s[1], "x", 1);
    show("unix reader, data", ep, 1000);
    write(s[0], "y", 1);
    read(s[1], buf, sizeof buf);
    show("unix reader, peer read (room freed) with data unread", ep, 300);
    write(s[1], "z", 1);
    show("unix reader, more data", ep, 1000);
    close(ep);

    ep = watch(EPOLLOUT | EPOLLET, s[0]);
    show("unix writer, first wait", ep, 1000);
    write(s[1], "w", 1);
    show("unix writer, data arriving", ep, 300);
    close(ep);
    close(s[0]);
    close(s[1]);
}

static void nested(void) {
    int p[2];
    char buf[64];
    pipe2(p, O_NONBLOCK);
    int inner = watch(EPOLLIN, p[0]);
    int outer = watch(EPOLLIN | EPOLLET, inner);
    show("nested, first wait", outer, 300);
    write(p[1], "a", 1);
    show("nested, data in the inner one's pipe", outer, 1000);
    show("nested, nothing new", outer, 300);
    write(p[1], "b", 1);
    show("nested, more data (inner still ready)", outer, 1000);
    struct pollfd pf = {outer, POLLIN, 0};
    printf("nested, poll of the outer epoll: %d\n", poll(&pf, 1, 0));
    read(p[0], buf, sizeof buf);
    show("nested, after the read", outer, 300);
    close(outer);
    close(inner);
    close(p[0]);
    close(p[1]);
}

// TCP over the loopback (the sandbox stack at the userspace level).
static void tcp(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    getsockname(l, (struct sockaddr *)&a, &al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0)
        perror("connect");
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096];

    int ep = watch(EPOLLOUT | EPOLLET, s);
    show("tcp writer, first wait", ep, 1000);
    write(s, "hello", 5);
    // The peer's ACK (and its reading, a window update) come back.
    struct pollfd pf = {c, POLLIN, 0};
    poll(&pf, 1, 1000);
    read(c, buf, sizeof buf);
    show("tcp writer, ACK of what it sent", ep, 300);
    close(ep);

    ep = watch(EPOLLIN | EPOLLET, s);
    write(c, "data", 4);
    show("tcp reader, data", ep, 1000);
    write(s, "back", 4);
    poll(&pf, 1, 1000);
    read(c, buf, sizeof buf);
    show("tcp reader, ACK of its own data with data unread", ep, 300);
    write(c, "more", 4);
    show("tcp reader, more data", ep, 1000);
    close(ep);
    close(c);
    close(s);
    close(l);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(30);
    pipes();
    unix_sockets();
    nested();
    tcp();
    return 0;
}
