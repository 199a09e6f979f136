/* TCP and UDP echo over 127.0.0.1 between two processes of one sandbox,
 * with blocking calls, a non-blocking connect finished through epoll,
 * and poll() readiness. Writes its verdict to the file named by argv[1]
 * ("echo ok port=N" on success), then keeps its sockets open for argv[2]
 * seconds so the host can look at what the kernel holds meanwhile. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *out_path;

static void verdict(const char *fmt, int a, int b) {
    FILE *f = fopen(out_path, "w");
    if (!f)
        exit(3);
    fprintf(f, fmt, a, b);
    fputc('\n', f);
    fclose(f);
}

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            verdict("fail line %d errno %d", __LINE__, errno);                \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

static void read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        CHECK(r > 0);
        got += r;
    }
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    out_path = argv[1];
    int hold = atoi(argv[2]);
    static const char msg[] = "hello over the sandbox stack";
    char buf[256];

    int srv = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(srv >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(srv, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t alen = sizeof a;
    CHECK(getsockname(srv, (struct sockaddr *)&a, &alen) == 0);
    int port = ntohs(a.sin_port);
    CHECK(port != 0);
    CHECK(listen(srv, 4) == 0);

    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* Client: blocking connect, write, read the echo back. */
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0)
            _exit(10);
        if (write(c, msg, sizeof msg) != sizeof msg)
            _exit(11);
        size_t got = 0;
        while (got < sizeof msg) {
            ssize_t r = read(c, buf + got, sizeof msg - got);
            if (r <= 0)
                _exit(12);
            got += r;
        }
        if (memcmp(buf, msg, sizeof msg) != 0)
            _exit(13);
        /* The server closes after the echo: end of stream. */
        if (read(c, buf, 1) != 0)
            _exit(14);
        _exit(0);
    }
    /* Server: poll for the pending connection, accept, echo, close. */
    struct pollfd p = {.fd = srv, .events = POLLIN};
    CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLIN));
    int conn = accept(srv, NULL, NULL);
    CHECK(conn >= 0);
    read_full(conn, buf, sizeof msg);
    CHECK(memcmp(buf, msg, sizeof msg) == 0);
    CHECK(write(conn, buf, sizeof msg) == sizeof msg);
    CHECK(close(conn) == 0);
    int st;
    CHECK(waitpid(child, &st, 0) == child);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        verdict("client failed status %d (%d)", st, 0);
        return 1;
    }

    /* A non-blocking connect finished through epoll, left open. */
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(nb >= 0);
    int r = connect(nb, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || errno == EINPROGRESS);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = nb};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, nb, &ev) == 0);
    CHECK(epoll_wait(ep, &ev, 1, 10000) == 1 && (ev.events & EPOLLOUT));
    int soerr = -1;
    socklen_t sl = sizeof soerr;
    CHECK(getsockopt(nb, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0);
    int held = accept(srv, NULL, NULL);
    CHECK(held >= 0);
    /* Nothing to read yet: EAGAIN on the non-blocking side. */
    CHECK(read(nb, buf, 1) == -1 && errno == EAGAIN);
    /* Data wakes an epoll waiter for EPOLLIN. */
    ev.events = EPOLLIN;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, nb, &ev) == 0);
    CHECK(write(held, "x", 1) == 1);
    CHECK(epoll_wait(ep, &ev, 1, 10000) == 1 && (ev.events & EPOLLIN));
    CHECK(read(nb, buf, 1) == 1 && buf[0] == 'x');

    /* UDP echo over loopback. */
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(u1 >= 0 && u2 >= 0);
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = 0};
    ua.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(u1, (struct sockaddr *)&ua, sizeof ua) == 0);
    alen = sizeof ua;
    CHECK(getsockname(u1, (struct sockaddr *)&ua, &alen) == 0);
    CHECK(sendto(u2, "ping", 4, 0, (struct sockaddr *)&ua, sizeof ua) == 4);
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    CHECK(recvfrom(u1, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == 4);
    CHECK(sendto(u1, buf, 4, 0, (struct sockaddr *)&from, fl) == 4);
    CHECK(recv(u2, buf, sizeof buf, 0) == 4 && memcmp(buf, "ping", 4) == 0);

    verdict("echo ok port=%d", port, 0);
    sleep(hold);
    return 0;
}
