/* A console socket's receiver for tests/vm (runc's protocol: the
 * terminal's master arrives as one SCM_RIGHTS message).
 * usage: recvtty SOCKET: listens on SOCKET, takes one master, copies what
 * the terminal prints to stdout until it closes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: recvtty SOCKET\n"); return 2; }
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    unlink(argv[1]);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0) { perror("recvtty: bind"); return 1; }
    int c = accept(l, NULL, NULL);
    if (c < 0) { perror("recvtty: accept"); return 1; }
    char buf[4096], ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    if (recvmsg(c, &m, 0) < 0) { perror("recvtty: recvmsg"); return 1; }
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (!h || h->cmsg_type != SCM_RIGHTS) { fprintf(stderr, "recvtty: no descriptor\n"); return 1; }
    int master;
    memcpy(&master, CMSG_DATA(h), sizeof master);
    close(c);
    for (;;) {
        ssize_t n = read(master, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EIO once the last slave is closed */
        fwrite(buf, 1, n, stdout);
        fflush(stdout);
    }
    return 0;
}
