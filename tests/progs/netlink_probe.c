/* What a sandbox's network looks like from inside through NETLINK_ROUTE
 * and the SIOCGIF* ioctls (--network sandbox): prints one line per fact
 * on stdout, "fail ..." on a broken expectation (exit 1).
 *
 *   netlink_probe IFNAME
 *
 * Lines: "nl unbound <pid>", "nl bound" (a port id was given), "nl peek
 * ok <n>" (MSG_PEEK|MSG_TRUNC with no buffer sized the datagram a read
 * then got whole), "nl trunc ok" (a short buffer: MSG_TRUNC), "nl pids
 * ok" (replies carry our port id), "nl newaddr <errno>", "nl audit
 * <errno>"; getifaddrs: "ifa <name> inet|inet6 <addr> <netmask>", "ifa
 * <name> packet"; if_nameindex: "ifindex <n> <name>"; ioctls on a UDP
 * socket for IFNAME: "ioctl <what> <value>" and "ioctl set <errno>". */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            printf("fail %s errno %d\n", #c, errno);                          \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

static const char *ntop(struct sockaddr *sa) {
    static char b[2][INET6_ADDRSTRLEN];
    static int i;
    i ^= 1;
    if (!sa)
        return "-";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, b[i], sizeof b[i]);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, b[i], sizeof b[i]);
    else
        return "?";
    return b[i];
}

static void netlink(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    CHECK(fd >= 0);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    socklen_t sl = sizeof sa;
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    printf("nl unbound %u\n", sa.nl_pid);
    sa.nl_pid = 0;
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    sl = sizeof sa;
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    CHECK(sl == sizeof sa && sa.nl_family == AF_NETLINK && sa.nl_pid != 0);
    printf("nl bound\n");
    unsigned me = sa.nl_pid;

    struct {
        struct nlmsghdr h;
        struct rtgenmsg g;
    } req = {
        .h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK,
              .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 77},
        .g = {.rtgen_family = AF_UNSPEC},
    };
    struct sockaddr_nl kern = {.nl_family = AF_NETLINK};
    CHECK(sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kern, sizeof kern) == sizeof req);
    /* iproute2's way of sizing its buffer. */
    struct iovec iov = {0};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t want = recvmsg(fd, &mh, MSG_PEEK | MSG_TRUNC);
    CHECK(want > 0);
    char *buf = malloc(want);
    iov.iov_base = buf;
    iov.iov_len = want;
    struct sockaddr_nl from;
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    ssize_t got = recvmsg(fd, &mh, 0);
    CHECK(got == want && !(mh.msg_flags & MSG_TRUNC));
    CHECK(mh.msg_namelen == sizeof from && from.nl_family == AF_NETLINK && from.nl_pid == 0);
    printf("nl peek ok %zd\n", got);
    int pids_ok = 1, done = 0;
    for (;;) {
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, got); h = NLMSG_NEXT(h, got)) {
            if (h->nlmsg_pid != me || h->nlmsg_seq != 77)
                pids_ok = 0;
            if (h->nlmsg_type == NLMSG_DONE)
                done = 1;
        }
        if (done)
            break;
        iov.iov_len = want;
        got = recvmsg(fd, &mh, 0);
        CHECK(got > 0);
    }
    CHECK(pids_ok);
    printf("nl pids ok\n");

    /* A reader with too small a buffer loses the rest: MSG_TRUNC. */
    req.h.nlmsg_seq = 78;
    CHECK(send(fd, &req, sizeof req, 0) == sizeof req);
    char small[20];
    iov.iov_base = small;
    iov.iov_len = sizeof small;
    got = recvmsg(fd, &mh, 0);
    CHECK(got == sizeof small && (mh.msg_flags & MSG_TRUNC));
    printf("nl trunc ok\n");
    while (recv(fd, buf, want, MSG_DONTWAIT) > 0)
        ;

    /* Changes are refused. */
    struct {
        struct nlmsghdr h;
        struct ifaddrmsg a;
        struct rtattr ra;
        unsigned char ip[4];
    } add = {
        .h = {.nlmsg_len = sizeof add, .nlmsg_type = RTM_NEWADDR,
              .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, .nlmsg_seq = 79},
        .a = {.ifa_family = AF_INET, .ifa_prefixlen = 24, .ifa_index = 1},
        .ra = {.rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL},
        .ip = {10, 9, 9, 9},
    };
    CHECK(send(fd, &add, sizeof add, 0) == sizeof add);
    char eb[256];
    got = recv(fd, eb, sizeof eb, 0);
    struct nlmsghdr *eh = (struct nlmsghdr *)eb;
    CHECK(got >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && eh->nlmsg_type == NLMSG_ERROR);
    struct nlmsgerr *e = NLMSG_DATA(eh);
    CHECK(e->msg.nlmsg_seq == 79 && eh->nlmsg_seq == 79);
    printf("nl newaddr %d\n", -e->error);
    close(fd);

    int audit = socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
    printf("nl audit %d\n", audit < 0 ? errno : 0);
}

static void ifaddrs(void) {
    struct ifaddrs *l;
    CHECK(getifaddrs(&l) == 0);
    for (struct ifaddrs *i = l; i; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        if (i->ifa_addr->sa_family == AF_PACKET)
            printf("ifa %s packet\n", i->ifa_name);
        else
            printf("ifa %s %s %s %s\n", i->ifa_name,
                   i->ifa_addr->sa_family == AF_INET ? "inet" : "inet6",
                   ntop(i->ifa_addr), ntop(i->ifa_netmask));
    }
    freeifaddrs(l);
    struct if_nameindex *n = if_nameindex();
    CHECK(n);
    for (struct if_nameindex *p = n; p->if_index; p++)
        printf("ifindex %u %s\n", p->if_index, p->if_name);
    if_freenameindex(n);
}

static void ioctls(const char *name) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct ifreq r[8];
    struct ifconf c = {.ifc_len = sizeof r, .ifc_req = r};
    CHECK(ioctl(fd, SIOCGIFCONF, &c) == 0);
    for (int i = 0; i < c.ifc_len / (int)sizeof r[0]; i++)
        printf("ioctl conf %s %s\n", r[i].ifr_name, ntop(&r[i].ifr_addr));
    struct ifconf q = {.ifc_len = 0, .ifc_req = NULL};
    CHECK(ioctl(fd, SIOCGIFCONF, &q) == 0);
    printf("ioctl conflen %d\n", q.ifc_len / (int)sizeof r[0]);
    struct ifreq f;
    memset(&f, 0, sizeof f);
    strncpy(f.ifr_name, name, IFNAMSIZ - 1);
    CHECK(ioctl(fd, SIOCGIFINDEX, &f) == 0);
    int index = f.ifr_ifindex;
    printf("ioctl index %d\n", index);
    memset(&f, 0, sizeof f);
    f.ifr_ifindex = index;
    CHECK(ioctl(fd, SIOCGIFNAME, &f) == 0);
    printf("ioctl name %s\n", f.ifr_name);
    CHECK(ioctl(fd, SIOCGIFADDR, &f) == 0);
    printf("ioctl addr %s\n", ntop(&f.ifr_addr));
    CHECK(ioctl(fd, SIOCGIFNETMASK, &f) == 0);
    printf("ioctl netmask %s\n", ntop(&f.ifr_netmask));
    CHECK(ioctl(fd, SIOCGIFBRDADDR, &f) == 0);
    printf("ioctl brd %s\n", ntop(&f.ifr_broadaddr));
    CHECK(ioctl(fd, SIOCGIFFLAGS, &f) == 0);
    printf("ioctl flags up=%d loopback=%d running=%d\n", !!(f.ifr_flags & IFF_UP),
           !!(f.ifr_flags & IFF_LOOPBACK), !!(f.ifr_flags & IFF_RUNNING));
    CHECK(ioctl(fd, SIOCGIFMTU, &f) == 0);
    printf("ioctl mtu %d\n", f.ifr_mtu);
    CHECK(ioctl(fd, SIOCGIFHWADDR, &f) == 0);
    unsigned char *m = (unsigned char *)f.ifr_hwaddr.sa_data;
    printf("ioctl hwaddr %d %02x:%02x:%02x:%02x:%02x:%02x\n", f.ifr_hwaddr.sa_family, m[0], m[1],
           m[2], m[3], m[4], m[5]);
    f.ifr_mtu = 1400;
    errno = 0;
    CHECK(ioctl(fd, SIOCSIFMTU, &f) < 0);
    printf("ioctl set %d\n", errno);
    strcpy(f.ifr_name, "nosuch0");
    errno = 0;
    CHECK(ioctl(fd, SIOCGIFINDEX, &f) < 0);
    printf("ioctl missing %d\n", errno);
    close(fd);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: netlink_probe IFNAME\n");
        return 2;
    }
    netlink();
    ifaddrs();
    ioctls(argv[1]);
    printf("done\n");
    return 0;
}
