/*
 * bulk: an iperf-style bulk TCP transfer for the netstack benchmark.
 *
 *   bulk serve PORT            in the container: accepts connections one at
 *                              a time; the client's first byte says what to
 *                              do: 'r' read to EOF (then close), 's' send
 *                              until the client closes.
 *   bulk to ADDR PORT SECS     from the peer: sends for SECS seconds, then
 *                              shuts down its write side and waits for the
 *                              server's close (so every byte counted was
 *                              received), prints `bulk_to_mbit N`.
 *   bulk from ADDR PORT SECS   from the peer: receives for SECS seconds,
 *                              prints `bulk_from_mbit N`.
 *
 * 128 KiB writes and reads, default socket buffers, IPv4.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (128 * 1024)
static char buf[CHUNK];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn)) die(const char *what) {
    perror(what);
    exit(1);
}

static void __attribute__((noreturn)) serve(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(l, 8) < 0) die("listen");
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            die("accept");
        }
        char cmd = 0;
        if (read(c, &cmd, 1) == 1) {
            if (cmd == 'r') {
                while (read(c, buf, sizeof buf) > 0) {
                }
            } else if (cmd == 's') {
                while (write(c, buf, sizeof buf) > 0) {
                }
            }
        }
        close(c);
    }
}

static int client(const char *addr, int port, double secs, int to) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
        fprintf(stderr, "bulk: bad address %s\n", addr);
        return 2;
    }
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    char cmd = to ? 'r' : 's';
    if (write(s, &cmd, 1) != 1) die("write");
    double start = now(), end = start + secs;
    long long bytes = 0;
    while (now() < end) {
        ssize_t n = to ? write(s, buf, sizeof buf) : read(s, buf, sizeof buf);
        if (n <= 0) die(to ? "write" : "read");
        bytes += n;
    }
    if (to) {
        /* Every byte sent has arrived once the server closes. */
        shutdown(s, SHUT_WR);
        while (read(s, buf, sizeof buf) > 0) {
        }
    }
    double t = now() - start;
    close(s);
    printf("bulk_%s_mbit %.1f\n", to ? "to" : "from", bytes * 8 / t / 1e6);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && !strcmp(argv[1], "serve")) serve(atoi(argv[2]));
    if (argc == 5 && (!strcmp(argv[1], "to") || !strcmp(argv[1], "from")))
        return client(argv[2], atoi(argv[3]), atof(argv[4]), !strcmp(argv[1], "to"));
    fprintf(stderr, "usage: bulk serve PORT | bulk to|from ADDR PORT SECS\n");
    return 2;
}
