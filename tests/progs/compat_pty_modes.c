// Pseudo-terminal modes beyond cooked and raw: non-canonical reads with
// VMIN and VTIME, packet mode (TIOCPKT) on the master, and job control
// on the slave: a background process group that reads its controlling
// terminal gets SIGTTIN, one that writes it with TOSTOP or changes its
// settings SIGTTOU (EIO or no stop when the signal is ignored), as
// drivers/tty/n_tty.c. One line per behaviour; the userspace level must
// print what the host prints.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPKT
#define TIOCGPKT _IOR('T', 0x38, int)
#endif

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    _exit(1);
}

static const char *err(long r) {
    static char b[64];
    if (r >= 0) {
        snprintf(b, sizeof b, "ok(%ld)", r);
        return b;
    }
    return strerrorname_np(errno);
}

static void show(const char *what, const char *buf, long n) {
    printf("%s: ", what);
    if (n < 0) {
        printf("%s\n", strerrorname_np(errno));
        return;
    }
    printf("\"");
    for (long i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c <= 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            printf("%c", c);
    }
    printf("\" (%ld)\n", n);
}

// Waits until `fd` is readable (what the other end wrote reaches a
// terminal's reader a moment later on Linux).
static void settle(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 2000);
}

static void open_pair(int *m, int *s) {
    *m = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(*m);
    unlockpt(*m);
    *s = open(ptsname(*m), O_RDWR | O_NOCTTY);
}

static void raw(int s, int vmin, int vtime) {
    struct termios t;
    tcgetattr(s, &t);
    t.c_lflag &= ~(ICANON | ECHO | ISIG);
    t.c_cc[VMIN] = vmin;
    t.c_cc[VTIME] = vtime;
    tcsetattr(s, TCSANOW, &t);
}

static void set_nonblock(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

// Writes `what` to `fd` after `ms` milliseconds, from a child.
static pid_t later(int fd, const char *what, int ms) {
    pid_t c = fork();
    if (c == 0) {
        usleep(ms * 1000);
        write(fd, what, strlen(what));
        _exit(0);
    }
    return c;
}

static void vmin_vtime(void) {
    int m, s;
    char buf[64];
    open_pair(&m, &s);
    raw(s, 0, 0);
    printf("vmin 0 vtime 0, nothing: %s\n", err(read(s, buf, sizeof buf)));
    raw(s, 0, 2);
    set_nonblock(s, 1);
    printf("vmin 0 vtime 2, nonblocking, nothing: %s\n", err(read(s, buf, sizeof buf)));
    set_nonblock(s, 0);
    printf("vmin 0 vtime 2, nothing: %s\n", err(read(s, buf, sizeof buf)));
    raw(s, 0, 30);
    pid_t c = later(m, "a", 100);
    printf("vmin 0 vtime 30, a byte comes: %s\n", err(read(s, buf, sizeof buf)));
    waitpid(c, NULL, 0);

    raw(s, 3, 0);
    write(m, "ab", 2);
    struct pollfd p = {s, POLLIN, 0};
    printf("vmin 3, poll with 2 bytes: %d\n", poll(&p, 1, 100));
    set_nonblock(s, 1);
    printf("vmin 3, nonblocking read of 2 bytes: %s\n", err(read(s, buf, sizeof buf)));
    set_nonblock(s, 0);
    write(m, "cd", 2);
    c = later(m, "e", 100);
    long n = read(s, buf, sizeof buf);
    show("vmin 3, blocking, the third byte comes later", buf, n);
    waitpid(c, NULL, 0);

    raw(s, 5, 2);
    write(m, "xy", 2);
    n = read(s, buf, sizeof buf);
    show("vmin 5 vtime 2, 2 bytes then silence", buf, n);
    close(s);
    close(m);
}

static void packet_mode(void) {
    int m, s, on = 1, got = -1;
    char buf[64];
    open_pair(&m, &s);
    printf("TIOCPKT on: %s\n", err(ioctl(m, TIOCPKT, &on)));
    ioctl(m, TIOCGPKT, &got);
    printf("TIOCGPKT: %d\n", got);
    set_nonblock(m, 1);
    printf("packet read, nothing: %s\n", err(read(m, buf, sizeof buf)));
    write(s, "hi", 2);
    settle(m);
    long n = read(m, buf, sizeof buf);
    show("packet read of data", buf, n);
    tcflush(s, TCIFLUSH);
    struct pollfd p = {m, POLLIN | POLLPRI, 0};
    poll(&p, 1, 100);
    printf("poll after the slave flushed input: 0x%x\n", p.revents);
    n = read(m, buf, sizeof buf);
    show("packet read after TCIFLUSH", buf, n);
    tcflush(s, TCOFLUSH);
    n = read(m, buf, sizeof buf);
    show("packet read after TCOFLUSH", buf, n);
    struct termios t;
    tcgetattr(s, &t);
    t.c_iflag &= ~IXON;
    tcsetattr(s, TCSANOW, &t);
    n = read(m, buf, sizeof buf);
    show("packet read after IXON off", buf, n);
    t.c_iflag |= IXON;
    tcsetattr(s, TCSANOW, &t);
    n = read(m, buf, sizeof buf);
    show("packet read after IXON on", buf, n);
    n = read(m, buf, 1);
    printf("packet read, nothing new: %s\n", err(n));
    write(m, "\x03", 1);
    settle(m);
    n = read(m, buf, sizeof buf);
    show("packet read after ^C", buf, n);
    settle(m);
    usleep(50000);
    n = read(m, buf, sizeof buf);
    show("then", buf, n);
    on = 0;
    ioctl(m, TIOCPKT, &on);
    write(s, "ok", 2);
    settle(m);
    n = read(m, buf, sizeof buf);
    show("read after TIOCPKT off", buf, n);
    close(s);
    close(m);
}

static int watch(unsigned events, int fd) {
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = events};
    e.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    return ep;
}

static void edges(const char *what, int ep, int timeout_ms) {
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, timeout_ms);
    printf("%s: %d events, 0x%x\n", what, n, n > 0 ? ev.events : 0);
}

// Edge-triggered epoll on the slave: an edge per input arriving, none for
// its own output; room for a writer when the master reads.
static void slave_edges(void) {
    int m, s;
    char buf[64];
    open_pair(&m, &s);
    raw(s, 1, 0);
    int in = watch(EPOLLIN | EPOLLET, s);
    write(m, "a", 1);
    edges("slave reader, input", in, 1000);
    write(s, "out", 3);
    edges("slave reader, its own output, input unread", in, 300);
    settle(m);
    read(m, buf, sizeof buf);
    edges("slave reader, the master read its output", in, 300);
    write(m, "b", 1);
    edges("slave reader, more input", in, 1000);
    int out = watch(EPOLLOUT | EPOLLET, s);
    edges("slave writer, first wait", out, 1000);
    write(s, "more", 4);
    edges("slave writer, after writing", out, 300);
    settle(m);
    read(m, buf, sizeof buf);
    edges("slave writer, the master read it", out, 1000);
    close(in);
    close(out);
    close(s);
    close(m);
}

// The session's leader (C1) and a background group's process (C2).
static void job_control(void) {
    int m, s;
    char buf[64];
    open_pair(&m, &s);
    write(m, "x\n", 2);
    int up[2], down[2];
    pipe(up);
    pipe(down);
    pid_t c1 = fork();
    if (c1 == 0) {
        setsid();
        printf("leader takes the terminal: %s\n", err(ioctl(s, TIOCSCTTY, 0)));
        pid_t c2 = fork();
        if (c2 == 0) {
            setpgid(0, 0);
            printf("background write without TOSTOP: %s\n", err(write(s, "bg", 2)));
            write(up[1], "1", 1);
            read(down[0], buf, 1);
            signal(SIGTTOU, SIG_IGN);
            printf("background write, TOSTOP, SIGTTOU ignored: %s\n", err(write(s, "bg", 2)));
            struct termios t;
            tcgetattr(s, &t);
            printf("background tcsetattr, SIGTTOU ignored: %s\n", err(tcsetattr(s, TCSANOW, &t)));
            signal(SIGTTOU, SIG_DFL);
            printf("background write, TOSTOP, after SIGCONT: %s\n", err(write(s, "bg", 2)));
            signal(SIGTTIN, SIG_IGN);
            printf("background read, SIGTTIN ignored: %s\n", err(read(s, buf, sizeof buf)));
            signal(SIGTTIN, SIG_DFL);
            long n = read(s, buf, sizeof buf);
            show("read after SIGTTIN, made foreground, SIGCONT", buf, n);
            _exit(0);
        }
        setpgid(c2, c2);
        read(up[0], buf, 1);
        struct termios t;
        tcgetattr(s, &t);
        t.c_lflag |= TOSTOP;
        tcsetattr(s, TCSANOW, &t);
        write(down[1], "1", 1);
        int st;
        waitpid(c2, &st, WUNTRACED);
        printf("background writer: stopped %d by %s\n", WIFSTOPPED(st),
               WIFSTOPPED(st) ? sigabbrev_np(WSTOPSIG(st)) : "-");
        t.c_lflag &= ~TOSTOP;
        tcsetattr(s, TCSANOW, &t);
        kill(c2, SIGCONT);
        waitpid(c2, &st, WUNTRACED);
        printf("background reader: stopped %d by %s\n", WIFSTOPPED(st),
               WIFSTOPPED(st) ? sigabbrev_np(WSTOPSIG(st)) : "-");
        printf("leader makes it the foreground: %s\n", err(tcsetpgrp(s, c2)));
        kill(c2, SIGCONT);
        waitpid(c2, &st, 0);
        printf("background process exited: %d\n", WIFEXITED(st));
        // Now the leader is in the background: changing settings stops it
        // (SIGTTOU blocked: allowed).
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTTOU);
        sigprocmask(SIG_BLOCK, &set, NULL);
        printf("leader in the background, tcsetpgrp, SIGTTOU blocked: %s\n",
               err(tcsetpgrp(s, getpgrp())));
        _exit(0);
    }
    waitpid(c1, NULL, 0);
    close(s);
    close(m);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(30);
    vmin_vtime();
    packet_mode();
    slave_edges();
    job_control();
    return 0;
}
