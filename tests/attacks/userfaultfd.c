/* userfaultfd (a favourite for winning kernel races): the syscall and
 * the /dev/userfaultfd device. */
#include "attack.h"

int main(void) {
    protocol_init("userfaultfd");
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    int e = fd < 0 ? errno : 0;
    int dev = open("/dev/userfaultfd", O_RDWR);
    int ed = dev < 0 ? errno : 0;
    info("userfaultfd: %s, /dev/userfaultfd: %s", ename(e), ename(ed));
    if (fd >= 0 || dev >= 0)
        verdict("ESCAPED", "got a userfaultfd from the host kernel");
    else
        verdict("BLOCKED", "userfaultfd refused (%s), no /dev/userfaultfd (%s)", ename(e), ename(ed));
    return 0;
}
