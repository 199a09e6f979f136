/* Makes raw syscalls that would change the host if they ran there:
 * mount a tmpfs, set the hostname, and report what the kernel answered. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    long r = syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, 0);
    printf("mount=%ld errno=%d\n", r, r < 0 ? errno : 0);
    r = syscall(SYS_sethostname, "pwned", 5);
    printf("sethostname=%ld errno=%d\n", r, r < 0 ? errno : 0);
    r = syscall(SYS_umount2, "/proc", 2);
    printf("umount=%ld errno=%d\n", r, r < 0 ? errno : 0);
    printf("getpid=%ld\n", syscall(SYS_getpid));
    struct utsname u;
    uname(&u);
    printf("nodename=%s\n", u.nodename);
    fflush(stdout);
    /* Stay alive so the host can look at the container's namespaces. */
    if (getenv("HOLD")) sleep(3);
    return 0;
}
