/* Load a kernel module (init_module with an image, finit_module on a
 * file) and unload one. Whatever the host kernel would say to a bogus
 * image, reaching the module loader at all is the escape. */
#include "attack.h"

int main(void) {
    protocol_init("kernel_module");
    static char image[4096] = "\177ELF";
    long r1 = syscall(SYS_init_module, image, sizeof image, "");
    int e1 = r1 < 0 ? errno : 0;
    info("init_module: %s", ename(e1));
    int fd = open("/proc/self/exe", O_RDONLY);
    long r2 = syscall(SYS_finit_module, fd, "", 0);
    int e2 = r2 < 0 ? errno : 0;
    info("finit_module: %s", ename(e2));
    long r3 = syscall(SYS_delete_module, "atoll_attack_no_such_module", O_NONBLOCK);
    int e3 = r3 < 0 ? errno : 0;
    info("delete_module: %s", ename(e3));
    if (e1 == EPERM && e2 == EPERM && e3 == EPERM)
        verdict("BLOCKED", "init_module, finit_module and delete_module refused (EPERM)");
    else if (!e1 || !e2)
        verdict("ESCAPED", "a module was loaded");
    else
        verdict("ESCAPED", "reached the host's module loader (%s/%s/%s)", ename(e1), ename(e2), ename(e3));
    return 0;
}
