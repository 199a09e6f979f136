/* shared_read: abuse the host descriptor that the userspace kernel lends
 * to every plain read-only open of a rootfs file, and for a moment to
 * those of a file on a bind mount shared with the host (hostfs
 * `shares_read_descriptor`). On each, as root, open a file the host made
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

/* The abuses, through the opens t (target) and s (secret) made as root
 * of the files target and secret in one directory. */
static void abuse(const char *where, int *t, int *s, const char *target, const char *secret) {
    char buf[64] = {0}, what[160];
#define STEP(name, r) do { snprintf(what, sizeof what, "%s: %s", where, name); step(what, r); } while (0)
    /* Still readable through what root opened (as on Linux). */
    info("%s: read through root's open: %s", where, pread(s[2], buf, sizeof buf - 1, 0) > 0 ? "yes" : "no");
    STEP("write", write(t[2], "PWNED\n", 6));
    STEP("pwrite", pwrite(t[0], "PWNED\n", 6, 0));
    struct iovec iov = {.iov_base = "PWNED\n", .iov_len = 6};
    STEP("pwritev", pwritev(t[2], &iov, 1, 0));
    STEP("ftruncate", ftruncate(t[2], 1));
    STEP("fallocate", fallocate(t[0], 0, 0, 1 << 20));
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, t[2], 0);
    STEP("writable shared mapping", m == MAP_FAILED ? -1 : 0);
    if (m != MAP_FAILED) {
        memcpy(m, "PWNED\n", 6);
        msync(m, 4096, MS_SYNC);
        munmap(m, 4096);
    }
    fcntl(t[2], F_SETFL, O_APPEND | O_DIRECT);
    STEP("write after F_SETFL O_APPEND|O_DIRECT", write(t[2], "PWNED\n", 6));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", t[2]);
    int w = open(path, O_RDWR);
    STEP("reopen through /proc/self/fd for writing", w);
    if (w >= 0) {
        STEP("write through the reopened file", write(w, "PWNED\n", 6));
        close(w);
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", s[2]);
    int r = open(path, O_RDONLY);
    STEP("reopen the secret through /proc/self/fd", r);
    if (r >= 0) close(r);
    /* At once, within the moment a shared bind mount's host open stands
     * for (hostfs `open_regular`): the kernel's own check refuses it. */
    int again = open(secret, O_RDONLY);
    STEP("open the secret again", again);
    if (again >= 0) {
        memset(buf, 0, sizeof buf);
        info("%s: read the secret again: %s", where, read(again, buf, sizeof buf - 1) > 0 ? "yes" : "no");
        close(again);
    }
    STEP("open the target for writing", open(target, O_WRONLY));
#undef STEP
}

int main(void) {
    protocol_init("shared_read");
    /* The rootfs (a trusted mount) and /bind, a bind mount shared with
     * the host (revalidated), whose read-only opens share the last host
     * open's descriptor for a moment. */
    const char *dirs[2] = {"", "/bind"}, *names[2] = {"rootfs", "shared bind mount"};
    char target[2][64], secret[2][64];
    int t[2][3], s[2][3];
    for (int d = 0; d < 2; d++) {
        snprintf(target[d], sizeof target[d], "%s/shared-target", dirs[d]);
        snprintf(secret[d], sizeof secret[d], "%s/shared-secret", dirs[d]);
        for (int i = 0; i < 3; i++) {
            t[d][i] = open(target[d], O_RDONLY);
            s[d][i] = open(secret[d], O_RDONLY);
        }
        if (t[d][2] < 0 || s[d][2] < 0) {
            verdict("HARMLESS", "could not open the files as root");
            return 0;
        }
        close(t[d][1]);
        close(s[d][1]);
    }
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0) {
        verdict("HARMLESS", "could not drop to uid 65534");
        return 0;
    }
    for (int d = 1; d >= 0; d--)
        abuse(names[d], t[d], s[d], target[d], secret[d]);
    info("%d of %d tries worked", worked, tries);
    if (worked == 0)
        verdict("BLOCKED", "every write through a read-only open, every reopen for writing and every new open of the secret was refused");
    else
        verdict("ESCAPED", "a read-only open or a dropped privilege gave more than Linux allows");
    return 0;
}
