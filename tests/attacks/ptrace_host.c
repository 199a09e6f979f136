/* Attach to a host process the test started (its host pid is known to
 * the attacker), read its memory, signal it, get a pidfd to it. */
#include "attack.h"

int main(void) {
    protocol_init("ptrace_host");
    int pid = atoi(param("ATTACK_PID"));
    int reached = 0;
    char errs[256] = "";
#define NOTE(what, r) do { int e_ = (r) < 0 ? errno : 0; info("%s: %s", what, ename(e_)); \
        if (!e_) reached++; \
        if (!strstr(errs, ename(e_))) { if (*errs) strcat(errs, "/"); strcat(errs, ename(e_)); } } while (0)
    char cmd[256] = "";
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
    long n = read_file(p, cmd, sizeof cmd);
    info("/proc/%d/cmdline: %s", pid, n >= 0 ? cmd : ename(-n));
    long r = ptrace(PTRACE_ATTACH, pid, 0, 0);
    NOTE("PTRACE_ATTACH", r);
    if (r == 0) waitpid(pid, NULL, __WALL);
    long r2 = ptrace(PTRACE_SEIZE, pid, 0, 0);
    NOTE("PTRACE_SEIZE", r2);
    char buf[64];
    struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
    NOTE("process_vm_readv", syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0));
    NOTE("kill 0", kill(pid, 0));
    NOTE("pidfd_open", syscall(SYS_pidfd_open, pid, 0));
    snprintf(p, sizeof p, "/proc/%d/mem", pid);
    NOTE("open /proc/pid/mem", open(p, O_RDONLY));
    if (r == 0 || r2 == 0) {
        verdict("ESCAPED", "attached to the host process with ptrace");
        hold(10); /* stay attached while the host looks */
        return 0;
    }
    if (reached)
        verdict("ESCAPED", "reached the host process (%d operations succeeded)", reached);
    else
        verdict("BLOCKED", "the host process is out of reach (%s)", errs);
    hold(10);
    return 0;
}
