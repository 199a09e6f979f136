// AF_UNIX socket behaviours of gVisor's syscall suite that the userspace
// level got wrong (issue 19): buffer accounting, options, credentials,
// control messages, errors. One line per behaviour; compared with the
// host kernel by crates/atoll/tests/userspace_compat.rs.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(long r) {
    static char b[64];
    if (r >= 0) snprintf(b, sizeof b, "ok(%ld)", r);
    else snprintf(b, sizeof b, "%s", strerrorname_np(errno));
    return b;
}

static void pair(int ty, int s[2]) { socketpair(AF_UNIX, ty, 0, s); }
static void done(int s[2]) { close(s[0]); close(s[1]); }

static int getint(int fd, int opt) {
    int v = -1;
    socklen_t l = sizeof v;
    getsockopt(fd, SOL_SOCKET, opt, &v, &l);
    return v;
}

static void buffers(void) {
    int s[2];
    pair(SOCK_STREAM, s);
    int big = INT_MAX, zero = 0;
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    int max = getint(s[0], SO_SNDBUF);
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &zero, sizeof zero);
    int min = getint(s[0], SO_SNDBUF);
    int q = min + (max - min) / 4;
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &q, sizeof q);
    printf("SO_SNDBUF doubles what is set: %s\n", getint(s[0], SO_SNDBUF) == 2 * q ? "yes" : "no");
    done(s);

    pair(SOCK_STREAM, s);
    char *buf = calloc(1, 1 << 20);
    printf("send 16K nonblocking: %s\n", err(send(s[0], buf, 16384, MSG_DONTWAIT)));
    int small = 4096;
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    printf("send past a shrunk send buffer: %s\n", err(send(s[0], buf, 16384, MSG_DONTWAIT)));
    done(s);

    pair(SOCK_STREAM, s);
    int size = getint(s[0], SO_SNDBUF);
    fcntl(s[0], F_SETFL, O_NONBLOCK);
    while (send(s[0], buf, size / 4, 0) != -1) {
    }
    printf("filling the send buffer ends in: %s\n", strerrorname_np(errno));
    struct pollfd p = {s[0], POLLOUT, 0};
    printf("poll of a full sender: %d\n", poll(&p, 1, 0));
    size *= 2;
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    printf("a bigger send buffer takes more: %s\n", send(s[0], buf, 4096, 0) > 0 ? "yes" : strerrorname_np(errno));
    int n = -1;
    ioctl(s[0], TIOCOUTQ, &n);
    printf("TIOCOUTQ of a sender with data queued: %s\n", n > 0 ? "positive" : "zero");
    done(s);

    pair(SOCK_DGRAM, s);
    printf("datagram larger than the send buffer: %s\n", err(send(s[0], buf, 1 << 20, 0)));
    done(s);
    free(buf);
}

static void options_and_errors(void) {
    int s[2];
    pair(SOCK_STREAM, s);
    struct linger l = {1, 5}, got = {0, 0};
    socklen_t len = sizeof got;
    printf("SO_LINGER set: %s\n", err(setsockopt(s[0], SOL_SOCKET, SO_LINGER, &l, sizeof l)));
    long r = getsockopt(s[0], SOL_SOCKET, SO_LINGER, &got, &len);
    printf("SO_LINGER get: %s %d %d\n", err(r), got.l_onoff, got.l_linger);
    int v = 1;
    len = sizeof v;
    printf("getsockopt at another level: %s\n", err(getsockopt(s[0], 6 /* SOL_TCP */, 1, &v, &len)));
    printf("setsockopt at another level: %s\n", err(setsockopt(s[0], 263, 16, &v, sizeof v)));
    printf("unknown SOL_SOCKET option: %s\n", err(setsockopt(s[0], SOL_SOCKET, 9999, &v, sizeof v)));
    int n = -1;
    r = ioctl(s[1], TIOCOUTQ, &n);
    printf("TIOCOUTQ: %s %d\n", err(r), n);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    // Linux answers it for the namespace's devices; ENODEV is allowed.
    r = ioctl(s[0], SIOCGIFINDEX, &ifr);
    printf("SIOCGIFINDEX on a unix socket: %s\n", r == 0 || errno == ENODEV ? "ok or ENODEV" : err(r));
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, "\0nonexistent", 12);
    printf("sendto with an address on a connected stream: %s\n", err(sendto(s[1], "abc", 3, 0, (struct sockaddr *)&a, sizeof a)));
    struct timeval tv = {0, 50000};
    setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    printf("recv with SO_RCVTIMEO and nothing to read: %s\n", err(recv(s[0], &c, 1, 0)));
    tv.tv_usec = 2000000;
    printf("SO_RCVTIMEO with microseconds out of range: %s\n", err(setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)));
    done(s);

    pair(SOCK_STREAM, s);
    char buf[10] = {0};
    write(s[1], buf, sizeof buf);
    shutdown(s[0], SHUT_RDWR);
    printf("read after the peer shut down: %s\n", err(read(s[1], buf, sizeof buf)));
    close(s[0]);
    printf("read after the peer closed with unread data: %s\n", err(read(s[1], buf, sizeof buf)));
    printf("read again: %s\n", err(read(s[1], buf, sizeof buf)));
    close(s[1]);
}

static int recv_creds(int fd, struct ucred *uc, size_t space, int *flags, size_t *clen) {
    char data[8];
    char control[64];
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = space};
    int r = recvmsg(fd, &m, 0);
    *flags = m.msg_flags;
    *clen = m.msg_controllen;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    memset(uc, 0xff, sizeof *uc);
    if (cm && cm->cmsg_type == SCM_CREDENTIALS) memcpy(uc, CMSG_DATA(cm), cm->cmsg_len - CMSG_LEN(0) < sizeof *uc ? cm->cmsg_len - CMSG_LEN(0) : sizeof *uc);
    return r;
}

static void credentials(void) {
    int s[2], one = 1, flags;
    size_t clen;
    struct ucred uc;
    pair(SOCK_STREAM, s);
    write(s[0], "x", 1);
    setsockopt(s[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    recv_creds(s[1], &uc, 64, &flags, &clen);
    printf("creds of a write before SO_PASSCRED: pid %d uid %d gid %d\n", uc.pid, uc.uid, uc.gid);
    write(s[0], "y", 1);
    recv_creds(s[1], &uc, 64, &flags, &clen);
    printf("creds of a write after SO_PASSCRED: %s\n", uc.pid == getpid() ? "the sender's" : "other");
    write(s[0], "z", 1);
    recv_creds(s[1], &uc, CMSG_SPACE(0) + sizeof(pid_t), &flags, &clen);
    printf("creds truncated to a pid: ctrunc %d controllen %zu pid %s\n", !!(flags & MSG_CTRUNC), clen, uc.pid == getpid() ? "ok" : "bad");
    write(s[0], "w", 1);
    recv_creds(s[1], &uc, CMSG_SPACE(0), &flags, &clen);
    printf("creds with room for a header only: ctrunc %d controllen %zu\n", !!(flags & MSG_CTRUNC), clen);
    done(s);

    // Descriptors: peeked ones are delivered too; no control buffer: MSG_CTRUNC.
    pair(SOCK_STREAM, s);
    int p[2];
    pipe(p);
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {"d", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
    sendmsg(s[0], &m, 0);
    sendmsg(s[0], &m, 0);
    char rb[4];
    struct iovec riov = {rb, sizeof rb};
    char rc[CMSG_SPACE(sizeof(int))];
    struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rc, .msg_controllen = sizeof rc};
    printf("peek with a descriptor: %s", err(recvmsg(s[1], &r, MSG_PEEK)));
    printf(" cmsg %s\n", CMSG_FIRSTHDR(&r) && CMSG_FIRSTHDR(&r)->cmsg_type == SCM_RIGHTS ? "rights" : "none");
    struct msghdr nul = {.msg_iov = &riov, .msg_iovlen = 1};
    long got = recvmsg(s[1], &nul, 0);
    printf("descriptor without a control buffer: %s ctrunc %d\n", err(got), !!(nul.msg_flags & MSG_CTRUNC));
    r.msg_controllen = sizeof rc;
    riov.iov_len = 0;
    got = recvmsg(s[1], &r, 0);
    printf("zero-length receive of a descriptor: %s cmsg %s\n", err(got), CMSG_FIRSTHDR(&r) && CMSG_FIRSTHDR(&r)->cmsg_type == SCM_RIGHTS ? "rights" : "none");
    done(s);
    close(p[0]);
    close(p[1]);
}

static void peer_credentials(void) {
    int srv = socket(AF_UNIX, SOCK_STREAM, 0);
    struct ucred uc;
    socklen_t len = sizeof uc;
    getsockopt(srv, SOL_SOCKET, SO_PEERCRED, &uc, &len);
    printf("SO_PEERCRED of a new socket: %d %d %d\n", uc.pid, (int)uc.uid, (int)uc.gid);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, "\0compat-peercred", 16);
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 16;
    bind(srv, (struct sockaddr *)&a, alen);
    int one = 1;
    setsockopt(srv, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    listen(srv, 5);
    len = sizeof uc;
    getsockopt(srv, SOL_SOCKET, SO_PEERCRED, &uc, &len);
    printf("SO_PEERCRED of a listener: %s\n", uc.pid == getpid() ? "its own" : "other");
    pid_t c = fork();
    if (c == 0) {
        int cl = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(cl, (struct sockaddr *)&a, alen);
        struct ucred pc;
        socklen_t l = sizeof pc;
        getsockopt(cl, SOL_SOCKET, SO_PEERCRED, &pc, &l);
        _exit(pc.pid == getppid() ? 0 : 1);
    }
    int acc = accept(srv, NULL, NULL);
    int st;
    waitpid(c, &st, 0);
    len = sizeof uc;
    getsockopt(acc, SOL_SOCKET, SO_PEERCRED, &uc, &len);
    printf("SO_PEERCRED of an accepted socket after the peer exited: %s\n", uc.pid == c ? "the peer" : "other");
    printf("the client saw the server: %d\n", WEXITSTATUS(st));
    printf("SO_PASSCRED inherited from the listener: %d\n", getint(acc, SO_PASSCRED));
    close(acc);
    close(srv);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    buffers();
    options_and_errors();
    credentials();
    peer_credentials();
    void *m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap((char *)m + 4096, 4096);
    printf("msync of an unmapped page: %s\n", err(msync((char *)m + 4096, 1, MS_ASYNC)));
    printf("msync with both MS_ASYNC and MS_SYNC: %s\n", err(msync(m, 1, MS_ASYNC | MS_SYNC)));
    return 0;
}
