/* ICMP echo through ping sockets (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6), as
 * iputils' ping uses them without CAP_NET_RAW: for each address one echo
 * request, and "ping ADDR ok" when the matching reply (type, the
 * socket's identifier, sequence and payload) arrives within 5 s, else
 * "ping ADDR fail <why> <errno>".
 *
 *   ping_probe ADDR... */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void ping(const char *addr) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int v6 = strchr(addr, ':') != NULL;
    if (v6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
        s->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &s->sin6_addr);
        len = sizeof *s;
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&ss;
        s->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &s->sin_addr);
        len = sizeof *s;
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
    if (fd < 0) {
        printf("ping %s fail socket %d\n", addr, errno);
        return;
    }
    unsigned char req[16] = {v6 ? 128 : 8, 0, 0, 0, 0x12, 0x34, 0, 7, 'a', 't', 'o', 'l', 'l', '!', '!', '!'};
    if (sendto(fd, req, sizeof req, 0, (struct sockaddr *)&ss, len) != sizeof req) {
        printf("ping %s fail sendto %d\n", addr, errno);
        close(fd);
        return;
    }
    /* The socket's identifier replaced ours, as Linux does. */
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    getsockname(fd, (struct sockaddr *)&me, &ml);
    unsigned short ident = ntohs(((struct sockaddr_in *)&me)->sin_port);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        if (poll(&p, 1, 5000) != 1) {
            printf("ping %s fail timeout %d\n", addr, errno);
            break;
        }
        unsigned char rep[64];
        ssize_t n = recv(fd, rep, sizeof rep, 0);
        if (n < 0) {
            printf("ping %s fail recv %d\n", addr, errno);
            break;
        }
        if (n == sizeof req && rep[0] == (v6 ? 129 : 0) && rep[4] == ident >> 8 &&
            rep[5] == (ident & 0xff) && rep[7] == 7 && memcmp(rep + 8, req + 8, 8) == 0) {
            printf("ping %s ok\n", addr);
            break;
        }
    }
    close(fd);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++)
        ping(argv[i]);
    return 0;
}
