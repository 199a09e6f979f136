/* Traffic across the sandbox's link (--network sandbox with the
 * container's veth taken over): a TCP exchange with a server on the
 * host's end of the veth (IPv4 and IPv6), a UDP request/response with a
 * responder there, and a TCP server in the sandbox the host connects to.
 *
 *   link_probe OUT HOST4 HOST6 TCP_PORT UDP_PORT LISTEN_PORT
 *
 * Appends the stack's /proc/net/route and if_inet6 lines to OUT, then
 * one line per step ("tcp4 <reply>", "tcp6 <reply>",
 * "udp <reply>", "listening", "served <peer>"), or "fail ..." and exits
 * 1; then holds on for 30 s so the host can look at the kernel. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *out_path;

static void line(const char *fmt, ...) {
    FILE *f = fopen(out_path, "a");
    if (!f)
        exit(3);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            line("fail %s errno %d", #c, errno);                              \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* Reads until the peer closes; NUL-terminated. */
static void read_all(int fd, char *buf, size_t cap) {
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK(poll(&p, 1, 10000) == 1);
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        CHECK(r >= 0);
        if (r == 0)
            break;
        got += r;
    }
    buf[got] = 0;
}

/* Sends "ping" to a server that answers and closes; logs the answer. */
static void tcp_exchange(const char *tag, struct sockaddr *sa, socklen_t len) {
    char buf[256];
    int s = socket(sa->sa_family, SOCK_STREAM, 0);
    CHECK(s >= 0);
    CHECK(connect(s, sa, len) == 0);
    CHECK(write(s, "ping", 4) == 4);
    CHECK(shutdown(s, SHUT_WR) == 0);
    read_all(s, buf, sizeof buf);
    close(s);
    line("%s %s", tag, buf);
}

int main(int argc, char **argv) {
    char buf[256];
    if (argc != 7)
        return 2;
    out_path = argv[1];
    int tcp_port = atoi(argv[4]), udp_port = atoi(argv[5]), listen_port = atoi(argv[6]);

    struct sockaddr_in h4 = {.sin_family = AF_INET, .sin_port = htons(tcp_port)};
    CHECK(inet_pton(AF_INET, argv[2], &h4.sin_addr) == 1);
    struct sockaddr_in6 h6 = {.sin6_family = AF_INET6, .sin6_port = htons(tcp_port)};
    CHECK(inet_pton(AF_INET6, argv[3], &h6.sin6_addr) == 1);
    /* The stack's routes and IPv6 addresses, as route(8) and ip(8) read them. */
    const char *files[] = {"/proc/net/route", "/proc/net/if_inet6"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        CHECK(f != NULL);
        char l[256];
        while (fgets(l, sizeof l, f)) {
            l[strcspn(l, "\n")] = 0;
            line("%s: %s", files[i], l);
        }
        fclose(f);
    }
    tcp_exchange("tcp4", (struct sockaddr *)&h4, sizeof h4);
    tcp_exchange("tcp6", (struct sockaddr *)&h6, sizeof h6);

    /* UDP: one query, one answer (a DNS-style exchange). */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(u >= 0);
    h4.sin_port = htons(udp_port);
    CHECK(sendto(u, "query", 5, 0, (struct sockaddr *)&h4, sizeof h4) == 5);
    struct pollfd p = {.fd = u, .events = POLLIN};
    CHECK(poll(&p, 1, 10000) == 1);
    ssize_t n = recv(u, buf, sizeof buf - 1, 0);
    CHECK(n > 0);
    buf[n] = 0;
    line("udp %s", buf);
    close(u);

    /* A server in the sandbox, reached from the host's end. */
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(srv >= 0);
    int one = 1;
    CHECK(setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(listen_port)};
    CHECK(bind(srv, (struct sockaddr *)&any, sizeof any) == 0);
    CHECK(listen(srv, 4) == 0);
    line("listening");
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    int c = accept(srv, (struct sockaddr *)&from, &flen);
    CHECK(c >= 0);
    char peer[64];
    inet_ntop(AF_INET, &from.sin_addr, peer, sizeof peer);
    int len = snprintf(buf, sizeof buf, "hello %s from the sandbox", peer);
    CHECK(write(c, buf, len) == len);
    close(c);
    line("served %s", peer);
    sleep(30);
    return 0;
}
