// nginx's pattern under wrk-style keep-alive load, on loopback TCP (host
// sockets at the userspace level): one server thread runs an
// edge-triggered epoll loop (level-triggered listener, non-blocking
// accept up to EAGAIN; each connection EPOLLIN|EPOLLOUT|EPOLLRDHUP|
// EPOLLET, read up to EAGAIN, answer each request, keep the connection,
// wait for EPOLLOUT when a response does not fit), and CONNS client
// threads each make ROUNDS request/response round trips on one
// connection, sending the next request as soon as the answer is in.
// As under wrk's load, the clients connect and send their first request
// before the server accepts: the server's loop finds each new connection
// readable at once, and never blocks until the next requests come.
// An edge the loop never sees leaves a client waiting: every wait has a
// timeout, and a stall is printed and fails the run instead of hanging.
//
// usage: compat_epoll_keepalive [CONNS [ROUNDS]]   both, in threads
//        compat_epoll_keepalive server PORT CONNS  the server alone, until
//                                                  CONNS connections closed
//        compat_epoll_keepalive client PORT CONNS ROUNDS
// Clients in another process (outside the sandbox, as wrk) send truly
// at the same time as the server's loop runs.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXCONN 64
#define REQ_LEN 64
// A response larger than one loopback segment, as a small static page.
#define RESP_LEN 4096
// Per-operation timeout: far above any round trip, even on a loaded host.
#define OP_TIMEOUT_MS 15000

static int conns = 8, rounds = 200;
static int lfd = -1;
static struct sockaddr_in addr;
static volatile int failed;
// The clients' first requests are sent before the server starts.
static pthread_barrier_t sent_first;

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    fflush(stdout);
    _exit(1);
}

struct conn {
    int fd;
    int inbuf;        // bytes of the request being read
    int owed;         // responses not yet written in full
    int out_off;      // bytes of the current response written
    long served;
};

static struct conn *conn_of[65536];

// Writes owed responses until done or EAGAIN (then EPOLLOUT resumes it).
static int flush(struct conn *c) {
    static char resp[RESP_LEN];
    while (c->owed > 0) {
        ssize_t n = send(c->fd, resp + c->out_off, RESP_LEN - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->out_off += n;
        if (c->out_off == RESP_LEN) {
            c->out_off = 0;
            c->owed--;
            c->served++;
        }
    }
    return 0;
}

static void *server(void *arg) {
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    long total = (long)conns * rounds, served = 0;
    int closed = 0;
    while (closed < conns && !failed) {
        struct epoll_event ev[32];
        int n = epoll_wait(ep, ev, 32, OP_TIMEOUT_MS);
        if (n == 0) {
            printf("server: stalled (no event for %d ms) after %ld of %ld responses\n",
                   OP_TIMEOUT_MS, served, total);
            failed = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0)
                        break;
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *k = calloc(1, sizeof *k);
                    k->fd = c;
                    conn_of[c] = k;
                    struct epoll_event ce = {
                        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            struct conn *k = conn_of[fd];
            char buf[4096];
            int eof = 0;
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    eof = 1;
                    break;
                }
                if (r < 0)
                    break;
                k->inbuf += r;
                k->owed += k->inbuf / REQ_LEN;
                k->inbuf %= REQ_LEN;
            }
            long before = k->served;
            if (flush(k) < 0)
                eof = 1;
            served += k->served - before;
            if (eof) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                conn_of[fd] = NULL;
                free(k);
                closed++;
            }
        }
    }
    close(ep);
    if (!failed)
        printf("server: %ld responses\n", served);
    return NULL;
}

// Waits up to OP_TIMEOUT_MS for `events` on fd; 0 when ready.
static int await(int fd, short events, int id, int round, const char *what) {
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, OP_TIMEOUT_MS) == 1)
        return 0;
    printf("client %d: stalled waiting to %s in round %d\n", id, what, round);
    failed = 1;
    return -1;
}

static void *client(void *arg) {
    int id = (int)(long)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    // A server in another process may not listen yet.
    for (int tries = 0; lfd < 0 && tries < 150; tries++) {
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
            goto connected;
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        usleep(100000);
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        printf("client %d: connect: %s\n", id, strerror(errno));
        failed = 1;
        pthread_barrier_wait(&sent_first);
        return NULL;
    }
connected:;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static const char req[REQ_LEN] = "GET / HTTP/1.1\r\nHost: x\r\n";
    char buf[RESP_LEN];
    for (int r = 0; r < rounds && !failed; r++) {
        ssize_t sent = send(fd, req, REQ_LEN, MSG_NOSIGNAL);
        if (r == 0)
            pthread_barrier_wait(&sent_first);
        if (sent != REQ_LEN) {
            printf("client %d: send failed in round %d\n", id, r);
            failed = 1;
            break;
        }
        int got = 0;
        while (got < RESP_LEN) {
            if (await(fd, POLLIN, id, r, "read the response") < 0)
                goto out;
            ssize_t n = recv(fd, buf, RESP_LEN - got, MSG_DONTWAIT);
            if (n == 0) {
                printf("client %d: server closed in round %d\n", id, r);
                failed = 1;
                goto out;
            }
            if (n > 0)
                got += n;
        }
    }
out:
    close(fd);
    return NULL;
}

static void usage(void) {
    fprintf(stderr,
            "usage: compat_epoll_keepalive [CONNS [ROUNDS]]\n"
            "       compat_epoll_keepalive server PORT CONNS\n"
            "       compat_epoll_keepalive client PORT CONNS ROUNDS\n"
            "(CONNS 1..%d, ROUNDS >= 1)\n",
            MAXCONN);
    exit(2);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int port = 0, run_server = 1, run_clients = 1;
    char **a = argv + 1;
    if (argc > 1 && strcmp(argv[1], "server") == 0) {
        if (argc != 4)
            usage();
        run_clients = 0;
        port = atoi(argv[2]);
        conns = atoi(argv[3]);
    } else if (argc > 1 && strcmp(argv[1], "client") == 0) {
        if (argc != 5)
            usage();
        run_server = 0;
        port = atoi(argv[2]);
        conns = atoi(argv[3]);
        rounds = atoi(argv[4]);
    } else {
        if (argc > 3)
            usage();
        if (argc > 1)
            conns = atoi(a[0]);
        if (argc > 2)
            rounds = atoi(a[1]);
    }
    if (conns < 1 || conns > MAXCONN || rounds < 1 || port < 0 || port > 65535)
        usage();
    signal(SIGALRM, on_alarm);
    alarm(OP_TIMEOUT_MS / 1000 * 4);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (run_server) {
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        socklen_t al = sizeof addr;
        if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 128) < 0) {
            perror("listen");
            return 1;
        }
        getsockname(lfd, (struct sockaddr *)&addr, &al);
    }
    if (!run_clients) {
        // The server's own wait for its first connection is no stall.
        alarm(0);
        // As a busy server's backlog: the clients connect and send their
        // first requests before the loop starts, which then finds each
        // new connection readable at once.
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        poll(&p, 1, -1);
        usleep(300000);
        alarm(OP_TIMEOUT_MS / 1000 * 4);
        server(NULL);
        return failed;
    }
    pthread_t st, ct[MAXCONN];
    pthread_barrier_init(&sent_first, NULL, conns + 1);
    for (int i = 0; i < conns; i++)
        pthread_create(&ct[i], NULL, client, (void *)(long)i);
    pthread_barrier_wait(&sent_first);
    if (run_server)
        pthread_create(&st, NULL, server, NULL);
    for (int i = 0; i < conns; i++)
        pthread_join(ct[i], NULL);
    if (run_server)
        pthread_join(st, NULL);
    if (failed)
        return 1;
    printf("keep-alive: %d connections x %d round trips: ok\n", conns, rounds);
    return 0;
}
