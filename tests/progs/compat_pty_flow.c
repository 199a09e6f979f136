// Pseudo-terminal reads interrupted by a signal and output flow control,
// as drivers/tty/n_tty.c: a non-canonical read waiting for VMIN bytes
// returns the bytes that came when a signal interrupts it (EINTR only
// when none came); with IXON the STOP and START characters (^S, ^Q) stop
// and restart the slave's output (IXANY: any character restarts it), and
// so do tcflow's TCOOFF and TCOON, while TCIOFF and TCION send the
// characters to the other end; a packet-mode master learns of stops and
// starts. One line per behaviour; the userspace level must print what
// the host prints.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    _exit(1);
}

static void on_timer(int s) { (void)s; }

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

// What one end wrote reaches the other a moment later on Linux (a work
// queue moves it).
static void pause_ms(int ms) {
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

static void open_pair(int *m, int *s) {
    *m = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(*m);
    unlockpt(*m);
    *s = open(ptsname(*m), O_RDWR | O_NOCTTY);
}

// Non-canonical, no echo, no signal characters; IXON as a new terminal.
static void raw(int s, int vmin, tcflag_t iflag_on) {
    struct termios t;
    tcgetattr(s, &t);
    t.c_lflag &= ~(ICANON | ECHO | ISIG);
    t.c_oflag &= ~OPOST;
    t.c_iflag |= iflag_on;
    t.c_cc[VMIN] = vmin;
    t.c_cc[VTIME] = 0;
    tcsetattr(s, TCSANOW, &t);
}

// A read of the slave interrupted by a timer signal 200 ms in.
static long interrupted_read(int s, char *buf, int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timer;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, NULL);
    pid_t me = getpid(), kicker = fork();
    if (kicker == 0) {
        pause_ms(200);
        kill(me, SIGUSR1);
        _exit(0);
    }
    long n = read(s, buf, 10);
    int saved = errno;
    waitpid(kicker, NULL, 0);
    errno = saved;
    return n;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    char buf[64];
    int m, s;
    long n;

    open_pair(&m, &s);
    raw(s, 5, 0);
    write(m, "ab", 2);
    pause_ms(50);
    n = interrupted_read(s, buf, 0);
    show("vmin 5, 2 bytes came, interrupted", buf, n);
    write(m, "cd", 2);
    pause_ms(50);
    n = interrupted_read(s, buf, 1);
    show("vmin 5, 2 bytes came, interrupted, SA_RESTART", buf, n);
    n = interrupted_read(s, buf, 0);
    printf("vmin 5, nothing came, interrupted: %s\n", err(n));
    close(s);
    close(m);

    // ^S and ^Q from the master stop and restart the slave's output.
    open_pair(&m, &s);
    raw(s, 1, 0);
    nonblock(s);
    nonblock(m);
    write(m, "\x13", 1);
    pause_ms(50);
    printf("slave write after ^S: %s\n", err(write(s, "x", 1)));
    struct pollfd p = {s, POLLOUT, 0};
    printf("slave poll after ^S: %d 0x%x\n", poll(&p, 1, 0), p.revents);
    printf("master read after ^S: %s\n", err(read(m, buf, sizeof buf)));
    write(m, "\x11", 1);
    pause_ms(50);
    printf("slave write after ^Q: %s\n", err(write(s, "y", 1)));
    pause_ms(50);
    show("master read after ^Q", buf, read(m, buf, sizeof buf));
    printf("slave input of ^S and ^Q: %s\n", err(read(s, buf, sizeof buf)));

    // A writer blocked by ^S goes on after ^Q.
    write(m, "\x13", 1);
    pause_ms(50);
    pid_t w = fork();
    if (w == 0) {
        // Its own open file: blocking (the parent's stays nonblocking).
        int bs = open(ptsname(m), O_RDWR | O_NOCTTY);
        printf("blocked writer after ^Q: %s\n", err(write(bs, "abc", 3)));
        _exit(0);
    }
    pause_ms(200);
    printf("master read while the writer waits: %s\n", err(read(m, buf, sizeof buf)));
    write(m, "\x11", 1);
    waitpid(w, NULL, 0);
    pause_ms(50);
    show("master read after the blocked writer", buf, read(m, buf, sizeof buf));

    // IXANY: any character restarts output, and is input.
    raw(s, 1, IXANY);
    write(m, "\x13", 1);
    pause_ms(50);
    printf("IXANY, slave write after ^S: %s\n", err(write(s, "x", 1)));
    write(m, "z", 1);
    pause_ms(50);
    printf("IXANY, slave write after z: %s\n", err(write(s, "w", 1)));
    show("IXANY, slave input", buf, read(s, buf, sizeof buf));
    pause_ms(50);
    show("IXANY, master read", buf, read(m, buf, sizeof buf));

    // Echo made while output is stopped is held until it restarts; a
    // signal character restarts it (n_tty_receive_signal_char).
    {
        struct termios e;
        tcgetattr(s, &e);
        e.c_lflag |= ECHO | ISIG;
        e.c_iflag &= ~IXANY;
        tcsetattr(s, TCSANOW, &e);
        write(m, "\x13" "e", 2);
        pause_ms(50);
        printf("echo while stopped, master read: %s\n", err(read(m, buf, sizeof buf)));
        write(m, "\x11", 1);
        pause_ms(50);
        show("echo after ^Q", buf, read(m, buf, sizeof buf));
        write(m, "\x13", 1);
        pause_ms(50);
        write(m, "\x03", 1);
        pause_ms(50);
        printf("slave write after ^S and ^C: %s\n", err(write(s, "k", 1)));
        pause_ms(50);
        show("master read after ^C", buf, read(m, buf, sizeof buf));
        read(s, buf, sizeof buf);
    }

    // IXON off restarts output.
    raw(s, 1, 0);
    write(m, "\x13", 1);
    pause_ms(50);
    struct termios t;
    tcgetattr(s, &t);
    t.c_iflag &= ~IXON;
    tcsetattr(s, TCSANOW, &t);
    printf("slave write after ^S and IXON off: %s\n", err(write(s, "v", 1)));
    pause_ms(50);
    read(m, buf, sizeof buf);
    t.c_iflag |= IXON;
    tcsetattr(s, TCSANOW, &t);

    // tcflow on the slave: TCOOFF holds against ^Q until TCOON.
    printf("tcflow TCOOFF: %s\n", err(tcflow(s, TCOOFF)));
    printf("slave write after TCOOFF: %s\n", err(write(s, "x", 1)));
    write(m, "\x11", 1);
    pause_ms(50);
    printf("slave write after TCOOFF and ^Q: %s\n", err(write(s, "x", 1)));
    printf("tcflow TCOON: %s\n", err(tcflow(s, TCOON)));
    printf("slave write after TCOON: %s\n", err(write(s, "u", 1)));
    pause_ms(50);
    show("master read after TCOON", buf, read(m, buf, sizeof buf));
    tcflow(s, TCIOFF);
    pause_ms(50);
    show("master read after TCIOFF", buf, read(m, buf, sizeof buf));
    tcflow(s, TCION);
    pause_ms(50);
    show("master read after TCION", buf, read(m, buf, sizeof buf));
    printf("tcflow 7: %s\n", err(ioctl(s, TCXONC, 7)));

    // tcflow on the master: its own writes stop; TCIOFF stops the slave.
    printf("master TCOOFF: %s\n", err(tcflow(m, TCOOFF)));
    printf("master write after its TCOOFF: %s\n", err(write(m, "q", 1)));
    printf("master TCOON: %s\n", err(tcflow(m, TCOON)));
    printf("master write after its TCOON: %s\n", err(write(m, "q", 1)));
    pause_ms(50);
    show("slave input from the master", buf, read(s, buf, sizeof buf));
    tcflow(m, TCIOFF);
    pause_ms(50);
    printf("slave write after the master's TCIOFF: %s\n", err(write(s, "x", 1)));
    tcflow(m, TCION);
    pause_ms(50);
    printf("slave write after the master's TCION: %s\n", err(write(s, "t", 1)));
    pause_ms(50);
    read(m, buf, sizeof buf);

    // Packet mode: the master's reader learns of stops and starts.
    int one = 1;
    ioctl(m, TIOCPKT, &one);
    write(m, "\x13", 1);
    pause_ms(50);
    show("packet read after ^S", buf, read(m, buf, sizeof buf));
    write(m, "\x11", 1);
    pause_ms(50);
    show("packet read after ^Q", buf, read(m, buf, sizeof buf));
    tcflow(s, TCOOFF);
    pause_ms(50);
    show("packet read after TCOOFF", buf, read(m, buf, sizeof buf));
    tcflow(s, TCOON);
    pause_ms(50);
    show("packet read after TCOON", buf, read(m, buf, sizeof buf));
    return 0;
}
