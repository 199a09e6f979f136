/* A process started with `exec` (kubectl exec, docker exec, ctr task
 * exec all end in the runtime's exec) tries what the container's seccomp
 * profile forbids: a user namespace (to regain capabilities), the kernel
 * keyring, io_uring. The container's init only holds; the host execs this
 * program again with the argument "exec", and that process attacks. The
 * container runs without no_new_privs, as Docker's containers do, which is
 * the case where a runtime must load the filter before it drops
 * CAP_SYS_ADMIN. */
#include "attack.h"
#include <linux/io_uring.h>

static const char *seccomp_mode(void) {
    static char line[64] = "unknown";
    char buf[4096];
    if (read_file("/proc/self/status", buf, sizeof buf) < 0) return line;
    char *s = strstr(buf, "\nSeccomp:");
    if (s) sscanf(s + 9, " %63s", line);
    return line;
}

int main(int argc, char **argv) {
    protocol_init("exec_seccomp");
    if (argc < 2 || strcmp(argv[1], "exec") != 0) {
        /* The container's init: its own filter is not in question. */
        info("init: seccomp mode %s", seccomp_mode());
        hold(60);
        return 0;
    }
    info("exec'd process: seccomp mode %s, NoNewPrivs off by the spec", seccomp_mode());
    long u = syscall(SYS_unshare, CLONE_NEWUSER);
    int eu = u < 0 ? errno : 0;
    long k = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0);
    int ek = k < 0 ? errno : 0;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    long r = syscall(SYS_io_uring_setup, 8, &p);
    int er = r < 0 ? errno : 0;
    info("unshare(CLONE_NEWUSER): %s, keyctl: %s, io_uring_setup: %s", ename(eu), ename(ek), ename(er));
    if (u == 0 || k >= 0 || r >= 0)
        verdict("ESCAPED", "the exec'd process made syscalls the container's profile forbids (%s%s%s)",
                u == 0 ? "unshare(CLONE_NEWUSER) " : "", k >= 0 ? "keyctl " : "",
                r >= 0 ? "io_uring_setup" : "");
    else
        verdict("BLOCKED", "the exec'd process is under the container's profile: unshare(CLONE_NEWUSER) %s, keyctl %s, io_uring_setup %s",
                ename(eu), ename(ek), ename(er));
    return 0;
}
