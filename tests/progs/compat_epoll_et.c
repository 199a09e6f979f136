// Edge-triggered epoll on TCP sockets (host sockets at the userspace
// level), as Linux: an event per wakeup of the socket (data arriving,
// room freed, a state change), never for a socket that merely stays
// ready. What CPython's test_epoll checks, and the edges an event loop
// such as nginx's must not lose: data arriving after the loop read up to
// EAGAIN, also before the socket was ever waited for. Run over host
// sockets and over the sandbox network stack.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

static int listener;
static struct sockaddr_in addr;

// A connected pair: *c the connecting end, *s the accepted one.
static void pair(int *c, int *s) {
    *c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*c, (struct sockaddr *)&addr, sizeof addr) < 0)
        perror("connect");
    *s = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
    // Small writes go out at once, whatever the stack's ACK timing (not
    // this program's subject).
    int one = 1;
    setsockopt(*c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// One epoll_wait: how many events and each socket's bits.
static void show(const char *what, int ep, int timeout_ms, int a, int b) {
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, timeout_ms);
    unsigned ea = 0, eb = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.fd == a)
            ea = ev[i].events;
        else if (ev[i].data.fd == b)
            eb = ev[i].events;
    }
    printf("%s: %d events, 0x%x 0x%x\n", what, n, ea, eb);
}

static int add(int ep, int fd, unsigned events) {
    struct epoll_event e = {.events = events};
    e.data.fd = fd;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

// Reads until EAGAIN; how many bytes.
static long drain(int fd) {
    char buf[65536];
    long total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            return total;
        total += n;
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(30);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 8) < 0) {
        perror("listen");
        return 1;
    }
    getsockname(listener, (struct sockaddr *)&addr, &al);
    const unsigned ET = EPOLLIN | EPOLLOUT | EPOLLET;

    // CPython's test_control_and_wait.
    int client, server;
    pair(&client, &server);
    int ep = epoll_create1(0);
    add(ep, server, ET);
    add(ep, client, ET);
    show("writable pair, first wait", ep, 1000, client, server);
    show("nothing new", ep, 300, client, server);
    write(client, "Hello!", 6);
    write(server, "world!!!", 8);
    // No pause: Linux has both edges at once.
    show("data both ways", ep, 1000, client, server);
    show("nothing new after data", ep, 300, client, server);
    write(client, "more", 4);
    show("more data on a socket not yet read", ep, 1000, client, server);
    printf("drained: %ld\n", drain(server));
    show("drained, nothing new", ep, 300, client, server);
    write(client, "again", 5);
    show("data after draining", ep, 1000, client, server);
    drain(server);
    drain(client);
    epoll_ctl(ep, EPOLL_CTL_DEL, client, NULL);
    struct epoll_event e = {.events = EPOLLOUT};
    e.data.fd = server;
    epoll_ctl(ep, EPOLL_CTL_MOD, server, &e);
    show("level-triggered after MOD", ep, 1000, client, server);
    show("level-triggered again", ep, 1000, client, server);
    close(ep);
    close(client);
    close(server);

    // Data that arrived between EPOLL_CTL_ADD and the first wait is one
    // edge, reported with the writability the add found.
    pair(&client, &server);
    ep = epoll_create1(0);
    add(ep, server, ET);
    write(client, "early", 5);
    show("data before the first wait", ep, 1000, client, server);
    show("nothing new after it", ep, 300, client, server);
    close(ep);
    close(client);
    close(server);

    // An event loop's keep-alive turn on a socket it never blocked on:
    // each wait finds data at once; the loop reads up to EAGAIN, then the
    // next request arrives before its next wait.
    pair(&client, &server);
    ep = epoll_create1(0);
    add(ep, server, ET | EPOLLRDHUP);
    write(client, "request 1", 9);
    show("request 1", ep, 1000, client, server);
    printf("read: %ld\n", drain(server));
    write(server, "response 1", 10);
    write(client, "request 2", 9);
    show("request 2 after EAGAIN", ep, 1000, client, server);
    printf("read: %ld\n", drain(server));
    write(client, "request 3", 9);
    show("request 3 after EAGAIN", ep, 1000, client, server);
    printf("read: %ld\n", drain(server));
    show("idle", ep, 300, client, server);
    drain(client);
    close(client);
    show("peer closed", ep, 1000, client, server);
    close(ep);
    close(server);

    // A full send buffer: no EPOLLOUT while full; one when the peer's
    // reading frees room.
    pair(&client, &server);
    ep = epoll_create1(0);
    add(ep, server, ET);
    show("fresh socket", ep, 1000, client, server);
    static char big[65536];
    long sent = 0;
    for (;;) {
        ssize_t n = send(server, big, sizeof big, MSG_DONTWAIT);
        if (n < 0) {
            printf("filled: %s\n", errno == EAGAIN ? "EAGAIN" : strerror(errno));
            break;
        }
        sent += n;
    }
    show("full", ep, 300, client, server);
    long got = 0;
    while (got < sent) {
        long n = drain(client);
        got += n;
        if (n == 0)
            usleep(1000);
    }
    printf("peer read all: %s\n", got == sent ? "yes" : "no");
    show("room freed", ep, 1000, client, server);
    show("nothing new after room", ep, 300, client, server);
    close(ep);
    close(client);
    close(server);

    // An epoll holding an edge-triggered interest, polled itself (poll,
    // or an epoll it is nested in) right after more data arrived on a
    // socket it reported already: readable, as the epoll_wait it stands
    // for would report the new edge.
    pair(&client, &server);
    ep = epoll_create1(0);
    add(ep, server, EPOLLIN | EPOLLET);
    int outer = epoll_create1(0);
    add(outer, ep, EPOLLIN | EPOLLET);
    write(client, "x", 1);
    show("the epoll's wait", ep, 1000, client, server);
    write(client, "y", 1);
    struct pollfd pf = {ep, POLLIN, 0};
    int pn = poll(&pf, 1, 0);
    printf("poll of the epoll after more data: %d 0x%x\n", pn, pf.revents);
    struct epoll_event oe;
    printf("outer epoll after more data: %d\n", epoll_wait(outer, &oe, 1, 0));
    show("the epoll's wait after more data", ep, 0, client, server);
    return 0;
}
