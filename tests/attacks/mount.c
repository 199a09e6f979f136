/* Mount and unmount: a tmpfs tagged with a name the host looks for, proc
 * and a bind of / elsewhere, unmount /proc/sys (read-only) and a masked
 * path, remount the root read-write, and the new mount API. The host
 * reads the container's mount table from outside before and after. */
#include "attack.h"

int main(void) {
    protocol_init("mount");
    const char *tag = param("ATTACK_TAG");
    int done = 0;
    char errs[256] = "";
#define TRY(what, expr) do { long r_ = (expr); int e_ = r_ < 0 ? errno : 0; \
        info("%s: %s", what, ename(e_)); \
        if (!e_) done++; \
        if (!strstr(errs, ename(e_))) { if (*errs) strcat(errs, "/"); strcat(errs, ename(e_)); } } while (0)
    wait_go(20); /* the host reads the mount table first */
    mkdir("/tmp/m1", 0755);
    mkdir("/tmp/m2", 0755);
    mkdir("/tmp/m3", 0755);
    TRY("mount tmpfs", mount(tag, "/tmp/m1", "tmpfs", 0, NULL));
    TRY("mount proc", mount(tag, "/tmp/m2", "proc", 0, NULL));
    TRY("bind /", mount("/", "/tmp/m3", NULL, MS_BIND | MS_REC, NULL));
    TRY("umount /proc/sys", umount2("/proc/sys", MNT_DETACH));
    TRY("umount /proc/kcore", umount2("/proc/kcore", MNT_DETACH));
    TRY("remount / rw", mount(NULL, "/", NULL, MS_REMOUNT, NULL));
    TRY("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    TRY("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/", 1 /*OPEN_TREE_CLONE*/));
    if (done)
        verdict("ESCAPED", "%d of 8 mount operations succeeded", done);
    else
        verdict("BLOCKED", "every mount operation refused (%s)", errs);
    hold(20);
    return 0;
}
