/* Read a host file through /proc/<pid>/root, /proc/self/root, /proc/<pid>/cwd
 * and ../ chains beyond the root. */
#include "attack.h"

int main(void) {
    protocol_init("proc_root");
    const char *marker = param("ATTACK_MARKER"), *secret = param("ATTACK_SECRET");
    char path[4096];
    int tried = 0;
    const char *prefixes[] = {"/proc/1/root", "/proc/self/root", "/proc/self/root/../../../../..",
                              "/proc/1/cwd/../../../../../..", "/proc/self/cwd/../../../../../..",
                              "/../../../../..", "/proc/thread-self/root"};
    for (unsigned i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        snprintf(path, sizeof path, "%s%s", prefixes[i], marker);
        int e = try_secret_at(AT_FDCWD, path, secret);
        tried++;
        if (e == 0) { verdict("ESCAPED", "read the host file through %s", path); return 0; }
        info("%s: %s", path, ename(e));
    }
    /* Every process this container can see, and each of its tasks. */
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "/proc/%s/%s%s", de->d_name, k ? "cwd/../../../../.." : "root", marker);
            int e = try_secret_at(AT_FDCWD, path, secret);
            tried++;
            if (e == 0) { verdict("ESCAPED", "read the host file through /proc/<pid>/%s", k ? "cwd" : "root"); return 0; }
        }
    }
    if (d) closedir(d);
    info("paths tried: %d", tried);
    verdict("BLOCKED", "no /proc/*/root, /proc/*/cwd or ../ path reached the host file");
    return 0;
}
