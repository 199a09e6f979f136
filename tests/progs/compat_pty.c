// Pseudo-terminals: /dev/ptmx and /dev/pts, the line discipline (cooked
// and raw mode, echo, CR/NL mapping, erase and EOF characters), window
// sizes, the controlling terminal and its signals, and hangup. One line
// per behaviour; the userspace level must print what the host prints.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    fflush(stdout);
    _exit(1);
}

static const char *err(int r) {
    static char b[64];
    if (r >= 0) {
        snprintf(b, sizeof b, "ok(%d)", r);
        return b;
    }
    return strerrorname_np(errno);
}

// Prints bytes with control characters escaped.
static void show(const char *what, const char *buf, long n) {
    printf("%s: ", what);
    if (n < 0) {
        printf("%s\n", strerrorname_np(errno));
        return;
    }
    printf("\"");
    for (long i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c == '\n')
            printf("\\n");
        else if (c == '\r')
            printf("\\r");
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            printf("%c", c);
    }
    printf("\" (%ld)\n", n);
}

// Reads what is there within a short wait (the other side wrote already).
static long drain(int fd, char *buf, long cap) {
    long got = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (got < cap && poll(&p, 1, 200) == 1 && (p.revents & POLLIN)) {
        long n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += n;
    }
    return got;
}

static int open_pair(int *master, int *slave) {
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    if (*master < 0 || grantpt(*master) < 0 || unlockpt(*master) < 0)
        return -1;
    *slave = open(ptsname(*master), O_RDWR | O_NOCTTY);
    return *slave;
}

int main(void) {
    signal(SIGALRM, on_alarm);
    alarm(20);
    setvbuf(stdout, NULL, _IONBF, 0);
    char buf[256];

    int m = posix_openpt(O_RDWR | O_NOCTTY);
    printf("posix_openpt: %s\n", m >= 0 ? "ok" : strerrorname_np(errno));
    char *name = ptsname(m);
    printf("ptsname under /dev/pts: %d\n", name && strncmp(name, "/dev/pts/", 9) == 0);
    unsigned int n = 99;
    int r = ioctl(m, TIOCGPTN, &n);
    printf("TIOCGPTN matches ptsname: %s %d\n", err(r), name && (unsigned)atoi(name + 9) == n);
    int lock = -1;
    ioctl(m, TIOCGPTLCK, &lock);
    printf("new pty locked: %d\n", lock);
    r = open(name, O_RDWR | O_NOCTTY);
    printf("open locked slave: %s\n", err(r));
    printf("grantpt unlockpt: %d %d\n", grantpt(m), unlockpt(m));
    ioctl(m, TIOCGPTLCK, &lock);
    printf("unlocked: %d\n", lock);
    int s = open(name, O_RDWR | O_NOCTTY);
    printf("open slave: %s\n", s >= 0 ? "ok" : strerrorname_np(errno));
    printf("isatty master slave: %d %d\n", isatty(m), isatty(s));
    struct stat st, st2;
    stat(name, &st);
    fstat(s, &st2);
    printf("slave node: chr=%d major=%u same-as-fd=%d\n", S_ISCHR(st.st_mode), major(st.st_rdev),
           st.st_rdev == st2.st_rdev && st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
    char *tn = ttyname(s);
    printf("ttyname is ptsname: %d\n", tn && name && strcmp(tn, name) == 0);

    struct termios t;
    tcgetattr(s, &t);
    printf("default: icanon=%d echo=%d isig=%d icrnl=%d opost=%d onlcr=%d veof=%d verase=%d\n",
           !!(t.c_lflag & ICANON), !!(t.c_lflag & ECHO), !!(t.c_lflag & ISIG),
           !!(t.c_iflag & ICRNL), !!(t.c_oflag & OPOST), !!(t.c_oflag & ONLCR), t.c_cc[VEOF],
           t.c_cc[VERASE]);
    struct termios tm;
    tcgetattr(m, &tm);
    printf("master shares slave termios: %d\n", tm.c_lflag == t.c_lflag);

    // Nothing written yet: a non-blocking master read would block.
    fcntl(m, F_SETFL, O_RDWR | O_NONBLOCK);
    r = read(m, buf, sizeof buf);
    printf("empty master read: %s\n", err(r));
    struct pollfd pf = {m, POLLIN | POLLOUT, 0};
    poll(&pf, 1, 0);
    printf("empty master poll: 0x%x\n", pf.revents);
    fcntl(m, F_SETFL, O_RDWR);

    write(s, "hello\n", 6);
    pf.revents = 0;
    poll(&pf, 1, 0);
    printf("master poll after slave write: 0x%x\n", pf.revents);
    int avail = -1;
    ioctl(m, FIONREAD, &avail);
    printf("master FIONREAD: %d\n", avail);
    show("slave output at master", buf, drain(m, buf, sizeof buf));

    // Cooked input: erase, a whole line, echo.
    write(m, "ab\x7f" "c\r", 5);
    show("slave reads a cooked line", buf, read(s, buf, sizeof buf));
    show("echo", buf, drain(m, buf, sizeof buf));
    write(m, "xyz\x15ok\n", 7);
    show("after kill char", buf, read(s, buf, sizeof buf));
    drain(m, buf, sizeof buf);
    write(m, "par", 3);
    fcntl(s, F_SETFL, O_RDWR | O_NONBLOCK);
    r = read(s, buf, sizeof buf);
    printf("unfinished line: %s\n", err(r));
    avail = -1;
    ioctl(s, FIONREAD, &avail);
    printf("slave FIONREAD of an unfinished line: %d\n", avail);
    fcntl(s, F_SETFL, O_RDWR);
    write(m, "\x04", 1);
    show("EOF char ends the line", buf, read(s, buf, sizeof buf));
    write(m, "\x04", 1);
    show("EOF on an empty line", buf, read(s, buf, sizeof buf));
    drain(m, buf, sizeof buf);

    // Raw mode.
    struct termios raw = t;
    cfmakeraw(&raw);
    printf("tcsetattr raw: %d\n", tcsetattr(s, TCSANOW, &raw));
    write(m, "x\r\x03", 3);
    show("raw read", buf, read(s, buf, sizeof buf));
    write(s, "a\nb", 3);
    show("raw output", buf, drain(m, buf, sizeof buf));
    tcsetattr(s, TCSAFLUSH, &t);

    // Window size.
    struct winsize w = {.ws_row = 24, .ws_col = 80}, w2 = {0};
    r = ioctl(m, TIOCSWINSZ, &w);
    ioctl(s, TIOCGWINSZ, &w2);
    printf("winsize via master, seen on slave: %s %d %d\n", err(r), w2.ws_row, w2.ws_col);

    // No controlling terminal: job-control requests on the slave fail.
    pid_t pg = 0;
    r = ioctl(s, TIOCGPGRP, &pg);
    printf("TIOCGPGRP without ctty: %s\n", err(r));
    r = ioctl(s, TIOCGSID, &pg);
    printf("TIOCGSID without ctty: %s\n", err(r));
    pid_t nl = fork();
    if (nl == 0) {
        // A fresh child leads no session.
        r = ioctl(s, TIOCSCTTY, 0);
        printf("TIOCSCTTY by a non-leader: %s\n", err(r));
        _exit(0);
    }
    waitpid(nl, NULL, 0);

    // TIOCGPTPEER opens the same slave.
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    fstat(peer, &st2);
    printf("TIOCGPTPEER: %s same=%d\n", peer >= 0 ? "ok" : strerrorname_np(errno),
           st2.st_rdev == st.st_rdev);
    close(peer);

    // Unknown requests.
    r = ioctl(s, 0x54ff, 0);
    printf("unknown tty ioctl: %s\n", err(r));

    // A child in a new session takes the slave as controlling terminal;
    // ^C raises SIGINT in its foreground group, a window change SIGWINCH.
    int ready[2];
    pipe(ready);
    pid_t c = fork();
    if (c == 0) {
        close(m);
        close(ready[0]);
        setsid();
        int cs = open(name, O_RDWR);
        pid_t sid = 0, fg = 0;
        ioctl(cs, TIOCGSID, &sid);
        fg = tcgetpgrp(cs);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGWINCH);
        sigprocmask(SIG_BLOCK, &set, NULL);
        int tty = open("/dev/tty", O_RDWR);
        dprintf(tty, "child: sid-is-me=%d fg-is-me=%d tty=%d\n", sid == getpid(), fg == getpid(),
                tty >= 0);
        write(ready[1], "r", 1);
        int got = 0;
        sigwait(&set, &got);
        dprintf(cs, "child got %s\n", got == SIGINT ? "SIGINT" : "other");
        write(ready[1], "r", 1);
        sigwait(&set, &got);
        dprintf(cs, "child got %s\n", got == SIGWINCH ? "SIGWINCH" : "other");
        _exit(0);
    }
    close(ready[1]);
    close(s);
    read(ready[0], buf, 1);
    show("child's terminal output", buf, drain(m, buf, sizeof buf));
    write(m, "\x03", 1);
    read(ready[0], buf, 1);
    show("after ^C", buf, drain(m, buf, sizeof buf));
    w.ws_col = 100;
    ioctl(m, TIOCSWINSZ, &w);
    int status = 0;
    waitpid(c, &status, 0);
    show("after window change", buf, drain(m, buf, sizeof buf));
    printf("child exit: %d\n", WEXITSTATUS(status));
    // Every slave is closed now: the master reads EIO and polls hangup.
    r = read(m, buf, sizeof buf);
    printf("master read after slave closed: %s\n", err(r));
    pf.revents = 0;
    pf.events = POLLIN;
    poll(&pf, 1, 0);
    printf("master poll after slave closed: hup=%d\n", !!(pf.revents & POLLHUP));
    close(m);

    // The master closes: the slave is hung up.
    int m2, s2;
    open_pair(&m2, &s2);
    write(m2, "line\n", 5);
    close(m2);
    r = read(s2, buf, sizeof buf);
    printf("slave read after master closed: %s\n", err(r));
    r = write(s2, "x", 1);
    printf("slave write after master closed: %s\n", err(r));
    struct pollfd ps = {s2, POLLIN, 0};
    poll(&ps, 1, 0);
    printf("slave poll after master closed: hup=%d in=%d\n", !!(ps.revents & POLLHUP),
           !!(ps.revents & POLLIN));
    close(s2);

    // Nobody reads: writers are held back, memory is bounded.
    open_pair(&m2, &s2);
    cfmakeraw(&raw);
    tcsetattr(s2, TCSANOW, &raw);
    fcntl(m2, F_SETFL, O_RDWR | O_NONBLOCK);
    fcntl(s2, F_SETFL, O_RDWR | O_NONBLOCK);
    static char big[1 << 16];
    long total = 0;
    for (int i = 0; i < 64; i++) {
        long k = write(m2, big, sizeof big);
        if (k < 0)
            break;
        total += k;
    }
    printf("master writes stop: %s bounded=%d\n", strerrorname_np(errno), total < (4 << 20));
    total = 0;
    for (int i = 0; i < 64; i++) {
        long k = write(s2, big, sizeof big);
        if (k < 0)
            break;
        total += k;
    }
    printf("slave writes stop: %s bounded=%d\n", strerrorname_np(errno), total < (4 << 20));
    close(m2);
    close(s2);
    return 0;
}
