// dnotify (fcntl F_NOTIFY): a signal to the directory descriptor's owner
// per event in the directory. One line per behaviour; the userspace level
// must print what the host prints.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t hits, last_fd, last_code, last_sig;

static void on_sig(int s, siginfo_t *si, void *u) {
    (void)u;
    hits++;
    last_sig = s;
    last_fd = si->si_fd;
    last_code = si->si_code;
}

static void touch(const char *p) {
    int f = open(p, O_CREAT | O_WRONLY, 0644);
    close(f);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    int rt = SIGRTMIN + 1;
    sigaction(rt, &sa, NULL);
    sigaction(SIGIO, &sa, NULL);

    mkdir("/tmp/dn", 0755);
    touch("/tmp/dn/f");
    int d = open("/tmp/dn", O_RDONLY | O_DIRECTORY);
    int f = open("/tmp/dn/f", O_RDONLY);
    printf("F_NOTIFY on a file: %s\n",
           fcntl(f, F_NOTIFY, DN_CREATE) < 0 ? strerrorname_np(errno) : "ok");

    fcntl(d, F_SETSIG, rt);
    printf("F_NOTIFY create multishot: %d\n", fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
    printf("owner is the caller: %d\n", fcntl(d, F_GETOWN) == getpid());
    touch("/tmp/dn/a");
    touch("/tmp/dn/b");
    printf("two creates: %d signals, sig is F_SETSIG's %d, si_fd is the dir %d, code %d\n", hits,
           last_sig == rt, last_fd == d, last_code);
    unlink("/tmp/dn/a");
    printf("delete not watched: %d\n", hits);

    hits = 0;
    fcntl(d, F_NOTIFY, DN_DELETE);
    unlink("/tmp/dn/b");
    touch("/tmp/dn/c");
    unlink("/tmp/dn/c");
    printf("one-shot delete: %d signals\n", hits);

    hits = 0;
    fcntl(d, F_NOTIFY, DN_MODIFY | DN_ATTRIB | DN_RENAME | DN_ACCESS | DN_MULTISHOT);
    int w = open("/tmp/dn/f", O_WRONLY);
    write(w, "x", 1);
    close(w);
    printf("modify: %d\n", hits);
    chmod("/tmp/dn/f", 0600);
    printf("attrib: %d\n", hits);
    rename("/tmp/dn/f", "/tmp/dn/g");
    printf("rename: %d\n", hits);
    char c;
    int r = open("/tmp/dn/g", O_RDONLY);
    read(r, &c, 1);
    close(r);
    printf("access: %d\n", hits);

    hits = 0;
    fcntl(d, F_NOTIFY, 0);
    touch("/tmp/dn/h");
    unlink("/tmp/dn/h");
    printf("after F_NOTIFY 0: %d\n", hits);

    // No F_SETSIG: plain SIGIO.
    hits = 0;
    fcntl(d, F_SETSIG, 0);
    fcntl(d, F_NOTIFY, DN_CREATE);
    touch("/tmp/dn/i");
    printf("plain SIGIO: %d %d\n", hits, last_sig == SIGIO);
    // CPython's test_fcntl_64_bit: DN_MULTISHOT alone is accepted.
    printf("DN_MULTISHOT alone: %d\n", fcntl(d, F_NOTIFY, DN_MULTISHOT));
    return 0;
}
