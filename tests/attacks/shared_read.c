/* shared_read: abuse the host descriptor that the userspace kernel lends
 * to every plain read-only open of a rootfs file (hostfs
 * `shares_read_descriptor`). As root, open a file the host made
 * (/shared-target, mode 0644) and a secret (/shared-secret, mode 0600)
 * read-only several times, so that the kernel holds its read descriptor
 * for each; then drop to uid 65534 and try to get more out of those
 * descriptors than a read-only open allows: write, pwrite, truncate,
 * allocate, a writable shared mapping, O_APPEND/O_DIRECT through F_SETFL,
 * reopening through /proc/self/fd for writing, and opening the secret
 * again (its mode forbids it now). Files opened before the drop stay
 * readable, as on Linux; nothing else may work, and the host's copy of
 * the target must stay unchanged (the test compares it). */
#include "attack.h"
#include <grp.h>

static int tries, worked;

static void step(const char *what, long r) {
    tries++;
    if (r >= 0) worked++;
    info("%s: %s", what, r < 0 ? ename(errno) : "WORKED");
}

int main(void) {
    protocol_init("shared_read");
    const char *target = "/shared-target", *secret = "/shared-secret";
    int t[3], s[3];
    for (int i = 0; i < 3; i++) {
        t[i] = open(target, O_RDONLY);
        s[i] = open(secret, O_RDONLY);
    }
    if (t[2] < 0 || s[2] < 0) {
        verdict("HARMLESS", "could not open the files as root");
        return 0;
    }
    close(t[1]);
    close(s[1]);
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0) {
        verdict("HARMLESS", "could not drop to uid 65534");
        return 0;
    }
    char buf[64] = {0};
    /* Still readable through what root opened (as on Linux). */
    info("read through root's open: %s", pread(s[2], buf, sizeof buf - 1, 0) > 0 ? "yes" : "no");
    step("write", write(t[2], "PWNED\n", 6));
    step("pwrite", pwrite(t[0], "PWNED\n", 6, 0));
    struct iovec iov = {.iov_base = "PWNED\n", .iov_len = 6};
    step("pwritev", pwritev(t[2], &iov, 1, 0));
    step("ftruncate", ftruncate(t[2], 1));
    step("fallocate", fallocate(t[0], 0, 0, 1 << 20));
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, t[2], 0);
    step("writable shared mapping", m == MAP_FAILED ? -1 : 0);
    if (m != MAP_FAILED) {
        memcpy(m, "PWNED\n", 6);
        msync(m, 4096, MS_SYNC);
        munmap(m, 4096);
    }
    fcntl(t[2], F_SETFL, O_APPEND | O_DIRECT);
    step("write after F_SETFL O_APPEND|O_DIRECT", write(t[2], "PWNED\n", 6));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", t[2]);
    int w = open(path, O_RDWR);
    step("reopen through /proc/self/fd for writing", w);
    if (w >= 0) {
        step("write through the reopened file", write(w, "PWNED\n", 6));
        close(w);
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", s[2]);
    int r = open(path, O_RDONLY);
    step("reopen the secret through /proc/self/fd", r);
    if (r >= 0) close(r);
    int again = open(secret, O_RDONLY);
    step("open the secret again", again);
    if (again >= 0) {
        memset(buf, 0, sizeof buf);
        info("read the secret again: %s", read(again, buf, sizeof buf - 1) > 0 ? "yes" : "no");
        close(again);
    }
    step("open the target for writing", open(target, O_WRONLY));
    info("%d of %d tries worked", worked, tries);
    if (worked == 0)
        verdict("BLOCKED", "every write through a read-only open, every reopen for writing and every new open of the secret was refused");
    else
        verdict("ESCAPED", "a read-only open or a dropped privilege gave more than Linux allows");
    return 0;
}
