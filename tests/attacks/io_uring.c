/* io_uring: its operations bypass seccomp filtering of the equivalent
 * syscalls, and it is a large kernel attack surface. */
#include "attack.h"
#include <linux/io_uring.h>

int main(void) {
    protocol_init("io_uring");
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    long fd = syscall(SYS_io_uring_setup, 8, &p);
    int e = fd < 0 ? errno : 0;
    info("io_uring_setup: %s", ename(e));
    if (fd >= 0)
        verdict("ESCAPED", "created an io_uring instance in the host kernel");
    else
        verdict("BLOCKED", "io_uring_setup refused (%s)", ename(e));
    return 0;
}
