/* Forge patched call sites of glibc's read() shape (`jmp *abs32; ud2;
 * int3`) in the workload's own executable memory and fault in them where
 * the kernel sends a thread on into the site's trampoline: after the
 * `syscall` (the instruction there faults) and at the `ud2`. The forged
 * jump names (a) the systrap stub's syscall entry, (b) an address inside
 * the trampoline table that is no entry's start, (c) a real entry whose
 * code the workload rewrote (mprotect) into a raw exit_group(45). The
 * kernel must deliver (a) and (b) as the real faults they are, never move
 * the thread outside the table; (c) runs the workload's own code, whose
 * raw syscall is the sandbox kernel's to serve. */
#include "attack.h"

static unsigned char *page;
static unsigned long table, entry0;

/* The first entry a read() site would use: its address's second byte
 * faults when followed by 06 (kernel/usertrap.rs, faulting_lead). */
static unsigned long first_xor_entry(void) {
    for (unsigned long at = table; at < table + 0x4000; at += 64) {
        unsigned char b = at >> 8;
        if (b == 0x0f || (b >= 0x48 && b <= 0x4f) || b == 0x06 || b == 0x07 || b == 0x0e ||
            b == 0x16 || b == 0x17 || b == 0x1e || b == 0x1f || b == 0x27 || b == 0x2f || b == 0x37 ||
            b == 0x3f || b == 0x60 || b == 0x61 || b == 0x82 || b == 0x9a || b == 0xce ||
            (b >= 0xd4 && b <= 0xd6) || b == 0xea || b == 0xf4 || b == 0xfa || b == 0xfb)
            return at;
    }
    return 0;
}

/* A site at `page` whose patch jumps through `slot`. */
static void forge_site(unsigned long slot) {
    unsigned char c[10] = {0xff, 0x24, 0x25, 0, 0, 0, 0, 0x0f, 0x0b, 0xcc};
    unsigned int s = (unsigned int)slot;
    memcpy(c + 3, &s, 4);
    memcpy(page, c, sizeof c);
    __builtin___clear_cache((char *)page, (char *)page + sizeof c);
}

static void on_fault(int s, siginfo_t *si, void *uc) {
    (void)si;
    unsigned long rip = ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
    /* A real fault, delivered where it happened (inside the forged
     * site): 20 + signal's kind; anywhere else: 30. */
    if (rip >= (unsigned long)page && rip < (unsigned long)page + 10) _exit(s == SIGILL ? 20 : 21);
    _exit(30);
}

static void enter(void *arg) {
    long how = (long)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    unsigned long off = how % 2 ? 4 : 7; /* after the syscall, the ud2 */
    unsigned long slot;
    switch (how / 2) {
    case 0: {
        unsigned long low = 0x60000;
        while (low >= table && low < table + 0x4000) low += 0x1000;
        if (mmap((void *)low, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                 -1, 0) == MAP_FAILED)
            _exit(93);
        slot = low + 0xf00;
        *(unsigned long *)slot = STUB_BASE;
        break;
    }
    case 1: slot = entry0 + 8; break;
    default:
        if (mprotect((void *)(entry0 & ~0xfffUL), 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC)) _exit(92);
        /* mov $231,%eax; mov $45,%edi; syscall, at the tail (36) and at
         * the part that keeps %eax (10). */
        unsigned char c[] = {0xb8, 231, 0, 0, 0, 0xbf, 45, 0, 0, 0, 0x0f, 0x05};
        memcpy((unsigned char *)entry0 + 36, c, sizeof c);
        memcpy((unsigned char *)entry0 + 10, c, sizeof c);
        __builtin___clear_cache((char *)entry0, (char *)entry0 + 64);
        slot = entry0;
    }
    forge_site(slot);
    ((void (*)(void))(page + off))();
    _exit(91);
}

int main(void) {
    protocol_init("systrap_patch_forge");
    if (!stub_syscall_insn()) {
        verdict("HARMLESS", "no systrap stub");
        return 0;
    }
    /* Patch read()'s site first, so that a table exists. */
    char b;
    int fds[2];
    if (pipe(fds) == 0)
        for (int i = 0; i < 10; i++) {
            write(fds[1], "x", 1);
            read(fds[0], &b, 1);
        }
    for (unsigned long a = 0x60000; a < 0x70000; a += 0x1000)
        if (readable((void *)a)) { table = a; break; }
    entry0 = table ? first_xor_entry() : 0;
    page = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    info("trampoline table at %#lx, forged sites at %p", table, (void *)page);
    if (!table || !entry0 || page == MAP_FAILED) {
        verdict("ESCAPED", "no trampoline table found (nothing was patched)");
        return 0;
    }
    const char *names[] = {"stub entry", "table, no entry", "rewritten entry"};
    int ok = 1;
    for (long how = 0; how < 6; how++) {
        int st = in_child(enter, (void *)how);
        int code = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        /* (a), (b): the site faults where it is, SIGILL at the ud2,
         * SIGILL or SIGSEGV at the operand's lead byte; (c): exit 45. */
        int good = how / 2 == 2 ? code == 45 : how % 2 ? code == 20 || code == 21 : code == 20;
        info("%s, entered at +%d: %s (%s)", names[how / 2], how % 2 ? 4 : 7, status_text(st),
             good ? "as expected" : "UNEXPECTED");
        ok &= good;
    }
    if (!ok)
        verdict("ESCAPED", "a forged site sent a thread somewhere else than the fault or its own table");
    else if (!kernel_alive())
        verdict("ESCAPED", "the kernel stopped serving the sandbox");
    else
        verdict("BLOCKED", "forged read() sites faulted where they were; a rewritten trampoline ran only the workload's own code");
    return 0;
}
