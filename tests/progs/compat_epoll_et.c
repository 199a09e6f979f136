// Edge-triggered epoll on TCP sockets (host sockets at the userspace
// level): a connected, writable socket is reported writable once, then
// again only with a new event. What CPython's test_epoll checks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    fflush(stdout);
    _exit(1);
}

static void show(const char *what, int ep, int timeout_ms, int client) {
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, timeout_ms);
    unsigned c = 0, s = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.fd == client)
            c = ev[i].events;
        else
            s = ev[i].events;
    }
    printf("%s: %d events, client 0x%x server 0x%x\n", what, n, c, s);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0) {
        perror("listen");
        return 1;
    }
    getsockname(l, (struct sockaddr *)&a, &al);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, (struct sockaddr *)&a, sizeof a);
    int server = accept(l, NULL, NULL);

    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET};
    e.data.fd = server;
    epoll_ctl(ep, EPOLL_CTL_ADD, server, &e);
    e.data.fd = client;
    epoll_ctl(ep, EPOLL_CTL_ADD, client, &e);

    show("first wait", ep, 1000, client);
    show("second wait, nothing new", ep, 300, client);
    write(client, "Hello!", 6);
    write(server, "world!!!", 8);
    // No pause: Linux reports both edges at once (CPython's test_epoll).
    show("after data both ways", ep, 1000, client);
    show("again, nothing new", ep, 300, client);
    epoll_ctl(ep, EPOLL_CTL_DEL, client, NULL);
    e.events = EPOLLOUT;
    e.data.fd = server;
    epoll_ctl(ep, EPOLL_CTL_MOD, server, &e);
    show("level-triggered after MOD", ep, 1000, client);
    return 0;
}
