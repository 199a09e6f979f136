/* Host syscalls from where the systrap platform might let them pass: from
 * a patched call site's trampoline table (made writable and executable
 * with mprotect), and from the last bytes below the stub's code, so that
 * the address after the `syscall` instruction is the stub's first byte
 * (the edge of the range syscall user dispatch lets through). The call is
 * exit_group(N): served by the sandbox's kernel, the process exits with
 * N; on the host it would end the stub process, which the kernel reports
 * as a kill. */
#include "attack.h"

static void raw_exit_at(unsigned char *at, int code) {
    /* mov $231,%eax; mov $code,%edi; syscall */
    unsigned char c[] = {0xb8, 231, 0, 0, 0, 0xbf, 0, 0, 0, 0, 0x0f, 0x05};
    memcpy(c + 6, &code, 4);
    memcpy(at, c, sizeof c);
    __builtin___clear_cache((char *)at, (char *)at + sizeof c);
    ((void (*)(void))at)();
}

static void from_table(void *arg) {
    unsigned long table = (unsigned long)arg;
    if (mprotect((void *)table, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) _exit(90);
    raw_exit_at((unsigned char *)table + 0x100, 43);
    _exit(91);
}

static void from_edge(void *arg) {
    (void)arg;
    unsigned char *edge = mmap((void *)(STUB_BASE - 0x1000), 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (edge == MAP_FAILED) _exit(92);
    raw_exit_at(edge + 0x1000 - 12, 44);
    _exit(93);
}

int main(void) {
    protocol_init("systrap_raw");
    if (!stub_syscall_insn()) {
        verdict("HARMLESS", "no systrap stub");
        return 0;
    }
    /* Patch a site first (libc's getppid is one), so a table exists. */
    for (int i = 0; i < 10; i++) getppid();
    unsigned long table = 0;
    for (unsigned long a = 0x60000; a < 0x70000; a += 0x1000)
        if (readable((void *)a)) { table = a; break; }
    info("trampoline table at %#lx", table);
    int t = table ? in_child(from_table, (void *)table) : -1;
    info("exit_group(43) from the trampoline table: %s", status_text(t));
    int e = in_child(from_edge, NULL);
    info("exit_group(44) ending at the stub's first byte: %s", status_text(e));
    int alive = kernel_alive();
    int t_ok = t >= 0 && WIFEXITED(t) && WEXITSTATUS(t) == 43;
    int e_ok = e >= 0 && WIFEXITED(e) && WEXITSTATUS(e) == 44;
    if (!table)
        verdict("ESCAPED", "no trampoline table found (nothing was patched)");
    else if (!t_ok || !e_ok)
        verdict("ESCAPED", "a raw syscall did not reach the sandbox's kernel (%s, %s)",
                t_ok ? "table ok" : "table", e_ok ? "edge ok" : "edge");
    else if (!alive)
        verdict("ESCAPED", "the kernel stopped serving the sandbox");
    else
        verdict("BLOCKED", "raw syscalls from the trampoline table and the stub's edge were served by the kernel");
    return 0;
}
