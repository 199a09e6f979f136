/* Exec in place (systrap): the exec of a process whose only thread is the
 * caller keeps its stub process and host thread for the new image. Here
 * the old image puts a secret in every XMM register and five general
 * registers, on its stack, in its heap, its bss and a mapping, then execs
 * a reader of it: once through the stub's signal path (the host saves the
 * FPU state, secret and all, in a frame on the stub's signal stack) and
 * once through a patched call site (the FPU state stays live in the
 * thread). Two readers, each exec'd both ways:
 * - a bare one (a tiny ELF this program writes): its first instructions,
 *   before any syscall of its own can overwrite anything, look at its XMM
 *   registers and at its thread's stub area (slot, FPU page, signal stack);
 * - this program again, which looks at the old image's addresses and at
 *   every thread area of its stub process.
 * Natively there is no stub: the readers find nothing either way. */
#include "attack.h"
#include <elf.h>

#define SECRET "EXEC-LEFTOVER-42" /* 16 bytes: one XMM register */

static char self_path[] = "/attack";

/* execve(path, argv, envp) with the secret in xmm0-15, rbx and r12-r15. `patchable`: through `mov $59,%eax; syscall`, the sequence
 * the kernel patches into a jump (the first call traps, later ones take
 * the patched path); else through a sequence it leaves alone, which
 * always traps (the signal path). Returns only on failure. */
static long exec_with_secret(int patchable, const char *path, char **argv, char **envp) {
    static __attribute__((aligned(16))) char s[16];
    memcpy(s, SECRET, 16);
    unsigned long w;
    memcpy(&w, s, 8);
    long r;
#define LOAD_XMM                                                                     \
    "movdqa (%[s]), %%xmm0\n movdqa %%xmm0, %%xmm1\n movdqa %%xmm0, %%xmm2\n"        \
    "movdqa %%xmm0, %%xmm3\n movdqa %%xmm0, %%xmm4\n movdqa %%xmm0, %%xmm5\n"        \
    "movdqa %%xmm0, %%xmm6\n movdqa %%xmm0, %%xmm7\n movdqa %%xmm0, %%xmm8\n"        \
    "movdqa %%xmm0, %%xmm9\n movdqa %%xmm0, %%xmm10\n movdqa %%xmm0, %%xmm11\n"      \
    "movdqa %%xmm0, %%xmm12\n movdqa %%xmm0, %%xmm13\n movdqa %%xmm0, %%xmm14\n"     \
    "movdqa %%xmm0, %%xmm15\n"
#define LOAD_GPRS \
    "mov %[w], %%rbx\n mov %[w], %%r12\n mov %[w], %%r13\n mov %[w], %%r14\n mov %[w], %%r15\n"
#define CLOBBERS                                                                           \
    "rcx", "r11", "rbx", "r12", "r13", "r14", "r15", "memory", "xmm0", "xmm1", "xmm2",     \
        "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
        "xmm13", "xmm14", "xmm15"
    if (patchable) {
        asm volatile(LOAD_XMM LOAD_GPRS "mov $59, %%eax\n syscall\n"
                     : "=a"(r)
                     : [s] "r"(s), [w] "r"(w), "D"(path), "S"(argv), "d"(envp)
                     : CLOBBERS);
    } else {
        asm volatile(LOAD_XMM LOAD_GPRS "xor %%eax, %%eax\n add $59, %%eax\n syscall\n"
                     : "=a"(r)
                     : [s] "r"(s), [w] "r"(w), "D"(path), "S"(argv), "d"(envp)
                     : CLOBBERS);
    }
    return r;
}

/* The bare reader: position-independent code copied into an ELF of its
 * own. Exit 0: nothing found; 10: an XMM register holds the secret's
 * first 8 bytes; 11: the signal stack does; 12: the slot or FPU page. No
 * syscall before it looks (the stub's signal path would write a frame
 * over what it looks for). */
asm(".pushsection .rodata\n"
    ".globl bare_reader_start\n"
    "bare_reader_start:\n"
    "movabs $0x46454c2d43455845, %r8\n" /* "EXEC-LEF" */
    "movq %xmm0, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm1, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm2, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm3, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm4, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm5, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm6, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm7, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm8, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm9, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm10, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm11, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm12, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm13, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm14, %rax\n cmp %rax, %r8\n je 9f\n"
    "movq %xmm15, %rax\n cmp %rax, %r8\n je 9f\n"
    /* The stub's GS base is the thread's area (0 natively). */
    "rdgsbase %rax\n test %rax, %rax\n jz 8f\n"
    "lea 0x4000(%rax), %rsi\n mov $0x800, %ecx\n" /* signal stack, 16 KiB */
    "1: cmp (%rsi), %r8\n je 10f\n add $8, %rsi\n dec %ecx\n jnz 1b\n"
    "mov %rax, %rsi\n mov $0x400, %ecx\n" /* slot and FPU page */
    "2: cmp (%rsi), %r8\n je 11f\n add $8, %rsi\n dec %ecx\n jnz 2b\n"
    "8: mov $60, %eax\n xor %edi, %edi\n syscall\n"
    "9: mov $60, %eax\n mov $10, %edi\n syscall\n"
    "10: mov $60, %eax\n mov $11, %edi\n syscall\n"
    "11: mov $60, %eax\n mov $12, %edi\n syscall\n"
    ".globl bare_reader_end\n"
    "bare_reader_end:\n"
    ".popsection\n");
extern const unsigned char bare_reader_start[], bare_reader_end[];

static const char bare_path[] = "/tmp/exec-leftovers-reader";

/* Writes the bare reader as a static ELF executable; 0 or errno. */
static int write_bare_reader(void) {
    size_t code = bare_reader_end - bare_reader_start;
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    memset(&eh, 0, sizeof eh);
    memset(&ph, 0, sizeof ph);
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x400000 + sizeof eh + sizeof ph;
    eh.e_phoff = sizeof eh;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof ph;
    eh.e_phnum = 1;
    ph.p_type = PT_LOAD;
    ph.p_flags = PF_R | PF_X;
    ph.p_vaddr = ph.p_paddr = 0x400000;
    ph.p_filesz = ph.p_memsz = sizeof eh + sizeof ph + code;
    ph.p_align = 0x1000;
    int fd = open(bare_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0) return errno;
    int ok = write(fd, &eh, sizeof eh) == (long)sizeof eh && write(fd, &ph, sizeof ph) == (long)sizeof ph &&
             write(fd, bare_reader_start, code) == (long)code;
    close(fd);
    return ok ? 0 : EIO;
}

/* Where the reader found the secret, one INFO line each; how many. */
static int found;

static void leak(const char *where) {
    info("the new image read the old one's secret: %s", where);
    found++;
}

/* Whether [p, p+n) holds the secret's first 8 bytes (what a general
 * register held). The reader keeps the secret only masked: registers it
 * saves in its own slot at its own syscalls must not hold the secret. */
static int holds_secret(const unsigned char *p, size_t n) {
    static volatile unsigned char masked[8];
    static volatile int ready;
    if (!ready) {
        for (int i = 0; i < 8; i++) masked[i] = (unsigned char)(SECRET[i] ^ 0xa5);
        ready = 1;
    }
    for (size_t i = 0; i + 8 <= n; i++) {
        int k = 0;
        while (k < 8 && (unsigned char)(p[i + k] ^ 0xa5) == masked[k]) k++;
        if (k == 8) return 1;
    }
    return 0;
}

/* Scans [from, to) page by page, skipping pages it cannot read. */
static int scan(unsigned long from, unsigned long to) {
    for (unsigned long a = from & ~0xfffUL; a < to; a += 0x1000)
        if (readable((void *)a) && holds_secret((const unsigned char *)a, 0x1000)) return 1;
    return 0;
}

static void reader(int argc, char **argv) {
    /* First thing: what the registers hold (glibc's start-up code before
     * main uses few of the high XMM registers). */
    static __attribute__((aligned(16))) unsigned char x[8][16];
    asm volatile("movdqa %%xmm8, 0(%0)\n movdqa %%xmm9, 16(%0)\n movdqa %%xmm10, 32(%0)\n"
                 "movdqa %%xmm11, 48(%0)\n movdqa %%xmm12, 64(%0)\n movdqa %%xmm13, 80(%0)\n"
                 "movdqa %%xmm14, 96(%0)\n movdqa %%xmm15, 112(%0)\n"
                 :
                 : "r"(x)
                 : "memory");
    if (holds_secret(&x[0][0], sizeof x)) leak("XMM registers at start");
    unsigned long gs = 0;
    if (readable((void *)STUB_BASE)) {
        asm volatile("rdgsbase %0" : "=r"(gs));
        /* The thread's area: slot, FPU page, signal stack (32 KiB). */
        if (gs && scan(gs, gs + 0x8000)) leak("its stub area (slot, FPU page or signal stack)");
        /* Every area of the stub process. */
        if (scan(STUB_BASE + 0x100000, STUB_BASE + 0x100000 + 64 * 0x8000))
            leak("a thread area of its stub process");
    }
    for (int i = 2; i < argc; i++) {
        unsigned long a = strtoul(argv[i], NULL, 16);
        if (readable((void *)a) && holds_secret((const unsigned char *)a, 4096)) {
            char w[64];
            snprintf(w, sizeof w, "the old image's memory at %#lx", a);
            leak(w);
        }
    }
    _exit(found ? 10 : 0);
}

struct how {
    int patchable; /* exec through a patched site, else the signal path */
    int bare;      /* exec the bare reader, else this program */
};

static void writer(void *arg) {
    const struct how *how = arg;
    int patchable = how->patchable;
    static char bss[8192];
    char stack[4096];
    char *heap = malloc(1 << 16);
    char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!heap || map == MAP_FAILED) _exit(3);
    for (size_t i = 0; i + 16 <= sizeof stack; i += 16) memcpy(stack + i, SECRET, 16);
    for (size_t i = 0; i + 16 <= 4096; i += 16) {
        memcpy(heap + i, SECRET, 16);
        memcpy(map + i, SECRET, 16);
        memcpy(bss + i, SECRET, 16);
    }
    char a[4][32];
    snprintf(a[0], sizeof a[0], "%lx", (unsigned long)stack);
    snprintf(a[1], sizeof a[1], "%lx", (unsigned long)heap);
    snprintf(a[2], sizeof a[2], "%lx", (unsigned long)map);
    snprintf(a[3], sizeof a[3], "%lx", (unsigned long)bss);
    char *args[] = {self_path, "reader", a[0], a[1], a[2], a[3], NULL};
    char *env[] = {NULL};
    if (patchable) {
        /* Failed execs through the same site: the kernel patches a site
         * at its 8th call. */
        for (int i = 0; i < 10; i++) exec_with_secret(1, "/nonexistent", args, env);
    }
    exec_with_secret(patchable, how->bare ? bare_path : self_path, args, env);
    _exit(4);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "reader")) reader(argc, argv);
    protocol_init("exec_leftovers");
    int e = write_bare_reader();
    if (e) {
        info("writing the bare reader: %s", ename(e));
        verdict("ESCAPED", "the bare reader could not be written (the test could not run)");
        return 0;
    }
    static const struct how hows[] = {{0, 1}, {1, 1}, {0, 0}, {1, 0}};
    static const char *names[] = {"bare reader, signal path", "bare reader, patched site",
                                  "reader, signal path", "reader, patched site"};
    int leaked = 0, ran = 1;
    for (int i = 0; i < 4; i++) {
        int st = in_child(writer, (void *)&hows[i]);
        info("exec of the %s: %s", names[i], status_text(st));
        if (st < 0 || !WIFEXITED(st)) ran = 0;
        else if (WEXITSTATUS(st) >= 10 && WEXITSTATUS(st) <= 12) leaked = 1;
        else if (WEXITSTATUS(st) != 0) ran = 0;
    }
    if (leaked)
        verdict("ESCAPED", "an exec'd image read the old image's registers or memory");
    else if (!ran)
        verdict("ESCAPED", "an exec'd reader did not run to its end (the test could not look)");
    else
        verdict("BLOCKED", "nothing of the old image's registers, stack, heap or mappings was readable after exec, through either stub path");
    return 0;
}
