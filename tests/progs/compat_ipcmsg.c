/* IP-level ancillary data of UDP sockets, as Linux gives and takes it
 * (CPython's test_socket RFC3542 tests, DNS servers that answer from the
 * address they were asked on): IPV6_HOPLIMIT / IPV6_TCLASS / IPV6_PKTINFO
 * and IP_TTL / IP_TOS / IP_PKTINFO, sent per datagram with sendmsg and
 * received with recvmsg when the socket's IPV6_RECV* / IP_RECV* options
 * are on; truncation; the errnos of bad messages. One line per behaviour. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void timeout(int sig) {
    (void)sig;
    printf("TIMEOUT\n");
    exit(1);
}

static int one = 1;

static int bound(int family, struct sockaddr_storage *ss, socklen_t *len) {
    int s = socket(family, SOCK_DGRAM, 0);
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (void *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        *len = sizeof *a;
    } else {
        struct sockaddr_in *a = (void *)ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *a;
    }
    if (bind(s, (void *)ss, *len) < 0) perror("bind");
    getsockname(s, (void *)ss, len);
    return s;
}

/* Sends "x" to `to` with control messages `ctl` (level, type, int value,
 * value size) until a zero size. */
struct ctl {
    int level, type, value, size;
};

static int send_with(int s, struct sockaddr_storage *to, socklen_t len, struct ctl *c) {
    char buf[256];
    memset(buf, 0, sizeof buf);
    size_t used = 0;
    for (; c && c->size; c++) {
        struct cmsghdr *h = (void *)(buf + used);
        h->cmsg_level = c->level;
        h->cmsg_type = c->type;
        h->cmsg_len = CMSG_LEN(c->size);
        if (c->size == 1) {
            *(unsigned char *)CMSG_DATA(h) = c->value;
        } else {
            memcpy(CMSG_DATA(h), &c->value, sizeof c->value);
        }
        used += CMSG_SPACE(c->size);
    }
    struct iovec iov = {"x", 1};
    struct msghdr m = {.msg_name = to, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    if (used) {
        m.msg_control = buf;
        m.msg_controllen = used;
    }
    return sendmsg(s, &m, 0);
}

static void show(const char *what, int s, size_t room) {
    char data[16];
    char ctl[512];
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = room};
    if (room == 0) m.msg_control = NULL;
    int n = recvmsg(s, &m, 0);
    if (n < 0) {
        printf("%s: recvmsg %s\n", what, strerror(errno));
        return;
    }
    printf("%s: %d bytes%s:", what, n, m.msg_flags & MSG_CTRUNC ? " CTRUNC" : "");
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        int v = 0;
        size_t dl = h->cmsg_len - CMSG_LEN(0);
        if (h->cmsg_level == SOL_IPV6 && h->cmsg_type == IPV6_PKTINFO && dl >= sizeof(struct in6_pktinfo)) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(h), sizeof pi);
            char a[64];
            inet_ntop(AF_INET6, &pi.ipi6_addr, a, sizeof a);
            printf(" IPV6_PKTINFO(%s,%s)", a, pi.ipi6_ifindex == (int)if_nametoindex("lo") ? "lo" : "other");
            continue;
        }
        if (h->cmsg_level == SOL_IP && h->cmsg_type == IP_PKTINFO && dl >= sizeof(struct in_pktinfo)) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(h), sizeof pi);
            char a[32], b[32];
            inet_ntop(AF_INET, &pi.ipi_spec_dst, a, sizeof a);
            inet_ntop(AF_INET, &pi.ipi_addr, b, sizeof b);
            printf(" IP_PKTINFO(%s,%s,%s)", a, b, pi.ipi_ifindex == (int)if_nametoindex("lo") ? "lo" : "other");
            continue;
        }
        if (dl == 1) {
            v = *(unsigned char *)CMSG_DATA(h);
        } else if (dl >= 4) {
            memcpy(&v, CMSG_DATA(h), 4);
        }
        const char *name = h->cmsg_level == SOL_IPV6 && h->cmsg_type == IPV6_HOPLIMIT ? "IPV6_HOPLIMIT"
                           : h->cmsg_level == SOL_IPV6 && h->cmsg_type == IPV6_TCLASS ? "IPV6_TCLASS"
                           : h->cmsg_level == SOL_IP && h->cmsg_type == IP_TTL        ? "IP_TTL"
                           : h->cmsg_level == SOL_IP && h->cmsg_type == IP_TOS        ? "IP_TOS"
                                                                                      : "other";
        printf(" %s(len %zu)=%d", name, dl, v);
    }
    printf("\n");
}

static void result(const char *what, int r) {
    printf("%s: %s\n", what, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, timeout);
    alarm(20);
    struct sockaddr_storage sa, ca;
    socklen_t sl, cl;

    /* IPv6 */
    int srv = bound(AF_INET6, &sa, &sl);
    int cli = bound(AF_INET6, &ca, &cl);
    send_with(cli, &sa, sl, NULL);
    show("v6 options off", srv, 512);
    setsockopt(srv, SOL_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
    setsockopt(srv, SOL_IPV6, IPV6_RECVTCLASS, &one, sizeof one);
    setsockopt(srv, SOL_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    send_with(cli, &sa, sl, NULL);
    show("v6 defaults", srv, 512);
    struct ctl hop_class[] = {{SOL_IPV6, IPV6_TCLASS, 0x28, 4}, {SOL_IPV6, IPV6_HOPLIMIT, 2, 4}, {0}};
    result("v6 send hoplimit 2 tclass 0x28", send_with(cli, &sa, sl, hop_class));
    show("v6 per datagram", srv, 512);
    struct ctl dflt[] = {{SOL_IPV6, IPV6_TCLASS, -1, 4}, {SOL_IPV6, IPV6_HOPLIMIT, -1, 4}, {0}};
    result("v6 send -1 (defaults)", send_with(cli, &sa, sl, dflt));
    show("v6 per datagram defaults", srv, 512);
    int hops = 5;
    setsockopt(cli, SOL_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
    send_with(cli, &sa, sl, NULL);
    show("v6 unicast hops 5", srv, 512);
    send_with(cli, &sa, sl, NULL);
    show("v6 room for one", srv, CMSG_SPACE(sizeof(struct in6_pktinfo)));
    send_with(cli, &sa, sl, NULL);
    show("v6 no room", srv, 0);
    int off = 0;
    setsockopt(srv, SOL_IPV6, IPV6_RECVPKTINFO, &off, sizeof off);
    int v = -1;
    socklen_t vl = sizeof v;
    getsockopt(srv, SOL_IPV6, IPV6_RECVHOPLIMIT, &v, &vl);
    printf("getsockopt IPV6_RECVHOPLIMIT: %d\n", v);
    struct ctl bad_hop[] = {{SOL_IPV6, IPV6_HOPLIMIT, 256, 4}, {0}};
    result("v6 hoplimit 256", send_with(cli, &sa, sl, bad_hop));
    struct ctl bad_class[] = {{SOL_IPV6, IPV6_TCLASS, 1, 1}, {0}};
    result("v6 tclass as one byte", send_with(cli, &sa, sl, bad_class));
    struct ctl bad_type[] = {{SOL_IPV6, 9999, 1, 4}, {0}};
    result("v6 unknown type", send_with(cli, &sa, sl, bad_type));
    struct ctl other_level[] = {{SOL_IP, IP_TTL, 0, 4}, {0}};
    result("v6 socket, SOL_IP message", send_with(cli, &sa, sl, other_level));
    show("v6 after SOL_IP message", srv, 512);

    /* IPv4 */
    int s4 = bound(AF_INET, &sa, &sl);
    int c4 = bound(AF_INET, &ca, &cl);
    setsockopt(s4, SOL_IP, IP_RECVTTL, &one, sizeof one);
    setsockopt(s4, SOL_IP, IP_RECVTOS, &one, sizeof one);
    setsockopt(s4, SOL_IP, IP_PKTINFO, &one, sizeof one);
    send_with(c4, &sa, sl, NULL);
    show("v4 defaults", s4, 512);
    struct ctl ttl_tos[] = {{SOL_IP, IP_TTL, 3, 4}, {SOL_IP, IP_TOS, 0x10, 1}, {0}};
    result("v4 send ttl 3 tos 0x10", send_with(c4, &sa, sl, ttl_tos));
    show("v4 per datagram", s4, 512);
    struct ctl bad_ttl[] = {{SOL_IP, IP_TTL, 0, 4}, {0}};
    result("v4 ttl 0", send_with(c4, &sa, sl, bad_ttl));
    struct ctl bad_tos[] = {{SOL_IP, IP_TOS, 0x10, 2}, {0}};
    result("v4 tos in two bytes", send_with(c4, &sa, sl, bad_tos));

    /* IP_PKTINFO: the source a datagram is sent from. */
    char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
    memset(cbuf, 0, sizeof cbuf);
    struct cmsghdr *h = (void *)cbuf;
    h->cmsg_level = SOL_IP;
    h->cmsg_type = IP_PKTINFO;
    h->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo *pi = (void *)CMSG_DATA(h);
    struct iovec iov = {"x", 1};
    struct msghdr m = {.msg_name = &sa, .msg_namelen = sl, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    inet_pton(AF_INET, "127.0.0.1", &pi->ipi_spec_dst);
    result("v4 pktinfo source 127.0.0.1", sendmsg(c4, &m, 0));
    show("v4 from pktinfo source", s4, 512);
    inet_pton(AF_INET, "10.9.9.9", &pi->ipi_spec_dst);
    result("v4 pktinfo source 10.9.9.9", sendmsg(c4, &m, 0));

    /* A unix socket skips IP-level messages. */
    int u[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, u);
    struct ctl ip_on_unix[] = {{SOL_IP, IP_TTL, 3, 4}, {0}};
    result("unix socket, SOL_IP message", send_with(u[0], NULL, 0, ip_on_unix));
    return 0;
}
