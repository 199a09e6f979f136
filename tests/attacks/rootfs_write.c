/* rootfs_write: change the files of the container's rootfs so that the
 * host's copy (the bundle's rootfs) changes: overwrite, append, truncate,
 * chmod, chown, utimes, rename over, unlink and hard-link a file the host
 * put there, and create new files and directories. With the rootfs
 * overlay (dev.atoll.overlay: root:memory) every change must stay in the
 * sandbox: the container sees its changes, the host's copy is unchanged
 * (the test compares it from the host side). */
#include "attack.h"
#include <sys/time.h>

static int tries, worked;

static void step(const char *what, int r) {
    tries++;
    if (r >= 0) worked++;
    info("%s: %s", what, r < 0 ? ename(errno) : "OK");
}

int main(void) {
    protocol_init("rootfs_write");
    const char *target = "/rootfs-target";
    int fd = open(target, O_WRONLY | O_TRUNC);
    step("open O_TRUNC", fd);
    if (fd >= 0) {
        step("write", (int)write(fd, "PWNED\n", 6));
        close(fd);
    }
    fd = open(target, O_WRONLY | O_APPEND);
    step("open O_APPEND", fd);
    if (fd >= 0) {
        step("append", (int)write(fd, "MORE\n", 5));
        close(fd);
    }
    step("chown", chown(target, 1234, 1234));
    step("chmod", chmod(target, 0777));
    struct timeval tv[2] = {{1, 0}, {1, 0}};
    step("utimes", utimes(target, tv));
    step("truncate", truncate(target, 1));
    step("link", link(target, "/rootfs-link"));
    fd = open("/rootfs-new", O_WRONLY | O_CREAT | O_EXCL, 0644);
    step("create", fd);
    if (fd >= 0) close(fd);
    step("mkdir", mkdir("/rootfs-dir", 0755));
    step("rename over", rename("/rootfs-new", "/rootfs-victim"));
    step("unlink", unlink("/rootfs-gone"));
    step("rmdir", rmdir("/rootfs-emptydir"));
    /* What the container sees now. */
    struct stat st;
    int seen = stat(target, &st) == 0 && st.st_size == 1 && (st.st_mode & 0777) == 0777 &&
               access("/rootfs-gone", F_OK) != 0 && access("/rootfs-dir", F_OK) == 0;
    info("the container sees its changes: %s", seen ? "yes" : "no");
    if (worked == 0)
        verdict("BLOCKED", "every change of the rootfs was refused");
    else
        verdict("BLOCKED", "the changes stay in the sandbox's overlay (the host's copy is compared by the test)");
    return 0;
}
