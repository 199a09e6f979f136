/* What a platform must preserve across a syscall, printed so that native
 * and userspace runs can be compared line by line:
 * - every SSE register (and the AVX upper halves where the CPU has AVX),
 *   the x87 control word and MXCSR, across a patchable call site
 *   (mov $nr,%eax; syscall), a call site that cannot be patched, and a
 *   signal handler that clobbers them all, in the main thread and in a
 *   second thread;
 * - general registers across both kinds of call site (rcx and r11 are the
 *   syscall's to clobber);
 * - signals and their frames: a handler runs while the thread spins in
 *   user code, sigreturn restores the interrupted registers;
 * - the vDSO: present (AT_SYSINFO_EHDR), and its clock agrees with the
 *   syscall's;
 * - glibc's read() site (`xor %eax,%eax; syscall; cmp $-4096,%rax`):
 *   reads through it, a read restarted after a signal handler and one
 *   interrupted (EINTR), and entries into the middle of the sequence
 *   (after the xor, after the syscall) behave as the original code;
 * - glibc's openat(AT_FDCWD) site shape (`mov $-100,%edi; syscall`, the
 *   number loaded before): opens through it give the same descriptors;
 * - a signal a plain syscall raises itself (SIGPIPE of a write): its
 *   frame and the registers after it;
 * - syscall-site patching: printed by the caller from /proc/self/maps and
 *   the read and openat sites' bytes. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <ucontext.h>

static int has_avx;
static volatile int got_signal, signals;

static void clobber_fpu(void) {
    __asm__ volatile(
        "pxor %%xmm0,%%xmm0\n pxor %%xmm1,%%xmm1\n pxor %%xmm7,%%xmm7\n pxor %%xmm15,%%xmm15\n"
        "pcmpeqd %%xmm3,%%xmm3\n" ::: "xmm0", "xmm1", "xmm3", "xmm7", "xmm15");
    if (has_avx) __asm__ volatile("vpxor %%ymm5,%%ymm5,%%ymm5\n vzeroupper" ::: "xmm5");
    unsigned cw = 0x27f, mx = 0x9fc0;
    __asm__ volatile("fldcw %0\n ldmxcsr %1" ::"m"(cw), "m"(mx));
}

static void on_signal(int s) {
    (void)s;
    clobber_fpu();
    got_signal++;
    signals++;
}

/* Loads xmm0-15 (and ymm upper halves), the x87 control word and MXCSR
 * from `in`, runs `kind` (0: patchable getppid, 1: unpatchable getppid, 2:
 * spin until a signal arrived), stores them into `out`. */
struct state {
    uint8_t ymm[16][32];
    uint16_t fcw;
    uint32_t mxcsr;
    uint64_t gpr[6];
};

#define LD(i) "vmovdqu " #i "*32(%[in]), %%ymm" #i "\n"
#define ST(i) "vmovdqu %%ymm" #i ", " #i "*32(%[out])\n"
#define LDX(i) "movdqu " #i "*32(%[in]), %%xmm" #i "\n"
#define STX(i) "movdqu %%xmm" #i ", " #i "*32(%[out])\n"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
/* One asm block from load to store: nothing the compiler emits can touch
 * the vector registers in between. */
#define SEQ(load, body, store)                                                            \
    __asm__ volatile("fldcw %[fcw]\n ldmxcsr %[mx]\n" load body store                      \
                     "fnstcw %[ofcw]\n stmxcsr %[omx]\n"                                   \
                     : [ofcw] "=m"(out->fcw), [omx] "=m"(out->mxcsr), "+b"(g[0]), "+S"(g[1]), \
                       "+D"(g[2]), "+r"(g[3])                                               \
                     : [in] "r"(in->ymm), [out] "r"(out->ymm), [fcw] "m"(in->fcw),          \
                       [mx] "m"(in->mxcsr), [flag] "m"(got_signal)                          \
                     : "rax", "rcx", "r11", "rdx", "memory")
#define PATCHABLE "mov $110, %%eax\n syscall\n"
#define UNPATCHABLE "xor %%eax, %%eax\n add $110, %%eax\n syscall\n"
#define SPIN "1: pause\n cmpl $0, %[flag]\n je 1b\n"

static void run(int kind, struct state *in, struct state *out) {
    register uint64_t r12 __asm__("r12");
    uint64_t g[6] = {0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666};
    (void)r12;
    if (has_avx) {
        if (kind == 0) SEQ(ALL(LD), PATCHABLE, ALL(ST));
        else if (kind == 1) SEQ(ALL(LD), UNPATCHABLE, ALL(ST));
        else SEQ(ALL(LD), SPIN, ALL(ST));
    } else {
        if (kind == 0) SEQ(ALL(LDX), PATCHABLE, ALL(STX));
        else if (kind == 1) SEQ(ALL(LDX), UNPATCHABLE, ALL(STX));
        else SEQ(ALL(LDX), SPIN, ALL(STX));
    }
    memcpy(out->gpr, g, sizeof g);
}

static int check(const char *who, int kind) {
    struct state in, out;
    memset(&out, 0, sizeof out);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 32; j++) in.ymm[i][j] = (uint8_t)(i * 37 + j * 11 + kind + 1);
    in.fcw = 0x37a;
    in.mxcsr = 0x1f80 | 0x6000; /* round toward zero */
    got_signal = 0;
    if (kind == 2) {
        struct itimerval it = {{0, 0}, {0, 20000}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
    run(kind, &in, &out);
    int bad = 0;
    int width = has_avx ? 32 : 16;
    for (int i = 0; i < 16; i++)
        if (memcmp(in.ymm[i], out.ymm[i], width)) bad++;
    uint64_t want[4] = {0x1111, 0x2222, 0x3333, 0x4444};
    int gbad = memcmp(out.gpr, want, sizeof want) != 0;
    const char *names[] = {"patchable syscall", "unpatchable syscall", "signal handler"};
    printf("%s %s: vector registers %s, fcw %s, mxcsr %s, general registers %s\n", who, names[kind],
           bad ? "CHANGED" : "kept", out.fcw == in.fcw ? "kept" : "CHANGED",
           out.mxcsr == in.mxcsr ? "kept" : "CHANGED", gbad ? "CHANGED" : "kept");
    return bad;
}

static void *thread(void *arg) {
    (void)arg;
    for (int round = 0; round < 3; round++)
        for (int kind = 0; kind < 2; kind++) check(round == 0 ? "thread" : "thread again", kind);
    return NULL;
}

/* call_site(rdi, rsi, rdx, rax, at): jumps to `at` with those registers,
 * as code that reaches the middle of read()'s sequence would; the
 * sequence ends in read()'s own `ja error; ret`. */
long call_site(long rdi, void *rsi, long rdx, long rax, const unsigned char *at);
__asm__(".globl call_site\n"
        "call_site:\n"
        "  mov %rcx, %rax\n"
        "  jmp *%r8\n");

/* openat_cwd(path, flags): openat(AT_FDCWD, path, flags) as glibc's
 * __open64_nocancel makes it, the number loaded first and the site the
 * last two instructions. */
long openat_cwd(const char *path, long flags);
extern const unsigned char openat_cwd_site[];
__asm__(".globl openat_cwd\n"
        "openat_cwd:\n"
        "  mov $257, %eax\n"
        "  mov %rsi, %rdx\n"
        "  mov %rdi, %rsi\n"
        ".globl openat_cwd_site\n"
        "openat_cwd_site:\n"
        "  mov $-100, %edi\n"
        "  syscall\n"
        "  ret\n");
static const unsigned char OPENAT_SITE[7] = {0xbf, 0x9c, 0xff, 0xff, 0xff, 0x0f, 0x05};

/* Opens through the openat site often enough to be patched: each gives
 * the lowest free descriptor, closed again; a missing file fails. */
static void check_openat_site(void) {
    int same = 1;
    long first = -1;
    for (int i = 0; i < 20; i++) {
        long fd = openat_cwd("/platform", O_RDONLY);
        if (first < 0) first = fd;
        if (fd < 0 || fd != first) same = 0;
        if (fd >= 0) close(fd);
    }
    long missing = openat_cwd("/no-such-file", O_RDONLY);
    printf("openat site: 20 opens %s, a missing file %ld\n", same ? "ok" : "DIFFER", missing);
}

static const unsigned char XOR_SITE[10] = {0x31, 0xc0, 0x0f, 0x05, 0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff};
static const unsigned char *read_site;
static int rd_fds[2];

/* The single-threaded site of read(): the sequence, then `ja; ret`. */
static const unsigned char *find_read_site(void) {
    const unsigned char *f = (const unsigned char *)read;
    for (int i = 0; i < 96; i++)
        if (!memcmp(f + i, XOR_SITE, sizeof XOR_SITE) && f[i + 10] == 0x77 && f[i + 12] == 0xc3)
            return f + i;
    return NULL;
}

static volatile int alarms;

static void on_alarm_write(int s) {
    (void)s;
    if (++alarms == 2) write(rd_fds[1], "late", 4);
}

static void check_read_site(void) {
    read_site = find_read_site();
    printf("read site found: %s\n", read_site ? "yes" : "no");
    if (!read_site) return;
    char buf[16] = {0};
    pipe(rd_fds);
    for (int i = 0; i < 3; i++) {
        write(rd_fds[1], "abc", 3);
        long n = read(rd_fds[0], buf, sizeof buf);
        printf("read %d: %ld %.3s\n", i, n, buf);
    }
    errno = 0;
    long n = read(-1, buf, 1);
    printf("read of a bad fd: %ld %s\n", n, strerror(errno));
    /* Entered after the xor: the syscall with %eax as it is. */
    write(rd_fds[1], "xyz", 3);
    n = call_site(rd_fds[0], buf, sizeof buf, 0, read_site + 2);
    printf("entered after the xor: %ld %.3s\n", n, buf);
    /* Entered after the syscall: only the check of %rax. */
    errno = 0;
    n = call_site(0, 0, 0, 42, read_site + 4);
    printf("entered after the syscall: %ld\n", n);
    n = call_site(0, 0, 0, -EBADF, read_site + 4);
    printf("entered after the syscall with an error: %ld %s\n", n, strerror(errno));
    /* A read blocked on an empty pipe, a handler with SA_RESTART runs
     * twice, the second writes: the read is restarted and gets it. */
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm_write;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    n = read(rd_fds[0], buf, sizeof buf);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("restarted read: %ld %.4s after %d signals\n", n, buf, alarms >= 2 ? 2 : alarms);
    /* Without SA_RESTART: EINTR. */
    int before = signals;
    sa.sa_handler = on_signal;
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval once = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &once, NULL);
    errno = 0;
    n = read(rd_fds[0], buf, sizeof buf);
    printf("interrupted read: %ld %s\n", n, strerror(errno));
    signals = before;
    signal(SIGALRM, on_signal);
}

/* ---- callee-saved registers of a blocked read ---- */

static const uint64_t CALLEE[5] = {0xb0b0b0b0b0b0b0b0, 0x1212121212121212, 0x1313131313131313,
                                   0x1414141414141414, 0x1515151515151515};
static volatile uint64_t in_frame[5];

static void on_usr1(int s, siginfo_t *si, void *ucv) {
    (void)s, (void)si;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    in_frame[0] = g[REG_RBX], in_frame[1] = g[REG_R12], in_frame[2] = g[REG_R13];
    in_frame[3] = g[REG_R14], in_frame[4] = g[REG_R15];
    /* The handler's own use of them must not leak back. */
    __asm__ volatile("xor %%ebx,%%ebx\n xor %%r12d,%%r12d\n xor %%r13d,%%r13d\n"
                     "xor %%r14d,%%r14d\n xor %%r15d,%%r15d" ::: "rbx", "r12", "r13", "r14", "r15");
}

/* read(fd, buf, 1) with rbx, r12-r15 set to CALLEE; `after` gets them
 * as the syscall returned. */
static long read_with_callee(int fd, char *buf, uint64_t after[5]) {
    long ret;
    __asm__ volatile("mov 0(%[c]), %%rbx\n mov 8(%[c]), %%r12\n mov 16(%[c]), %%r13\n"
                     "mov 24(%[c]), %%r14\n mov 32(%[c]), %%r15\n"
                     "xor %%eax, %%eax\n syscall\n"
                     "mov %%rbx, 0(%[o])\n mov %%r12, 8(%[o])\n mov %%r13, 16(%[o])\n"
                     "mov %%r14, 24(%[o])\n mov %%r15, 32(%[o])\n"
                     : "=a"(ret)
                     : "D"(fd), "S"(buf), "d"(1), [c] "r"(CALLEE), [o] "r"(after)
                     : "rbx", "r12", "r13", "r14", "r15", "rcx", "r11", "memory");
    return ret;
}

static const char *kept(const volatile uint64_t *r) {
    for (int i = 0; i < 5; i++)
        if (r[i] != CALLEE[i]) return "CHANGED";
    return "kept";
}

static void check_blocked_read(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    int p[2];
    if (pipe(p)) return;
    pid_t me = getpid();
    pid_t c = fork();
    if (c == 0) {
        usleep(30000);
        kill(me, SIGUSR1);
        usleep(30000);
        if (write(p[1], "x", 1) != 1) _exit(1);
        _exit(0);
    }
    char b;
    uint64_t after[5];
    long r = read_with_callee(p[0], &b, after);
    waitpid(c, NULL, 0);
    printf("blocked read, signal: read returned %ld, frame registers %s, after the handler %s\n", r,
           kept(in_frame), kept(after));
    close(p[0]), close(p[1]);
}

/* A plain syscall (write) whose own work raises a signal (SIGPIPE, a pipe
 * without readers): the kernel's lean path hands such a syscall's end to
 * the general one, which builds the handler's frame. The frame holds the
 * callee-saved registers the syscall was made with, and they are kept
 * after the handler; the write fails with EPIPE. */
static void check_raised_by_plain_syscall(void) {
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGPIPE, &sa, &old);
    int p[2];
    if (pipe(p)) return;
    close(p[0]);
    /* Ten times through one site: the first calls trap, later ones come
     * through the patched site (the 8th call patches it). */
    long ret = 0;
    const char *frame = "kept", *kept_after = "kept";
    for (int i = 0; i < 10; i++) {
        memset((void *)in_frame, 0, sizeof in_frame);
        uint64_t after[5];
        char b = 'z';
        __asm__ volatile("mov 0(%[c]), %%rbx\n mov 8(%[c]), %%r12\n mov 16(%[c]), %%r13\n"
                         "mov 24(%[c]), %%r14\n mov 32(%[c]), %%r15\n"
                         "mov $1, %%eax\n syscall\n"
                         "mov %%rbx, 0(%[o])\n mov %%r12, 8(%[o])\n mov %%r13, 16(%[o])\n"
                         "mov %%r14, 24(%[o])\n mov %%r15, 32(%[o])\n"
                         : "=a"(ret)
                         : "D"(p[1]), "S"(&b), "d"(1), [c] "r"(CALLEE), [o] "r"(after)
                         : "rbx", "r12", "r13", "r14", "r15", "rcx", "r11", "memory");
        if (strcmp(kept(in_frame), "kept")) frame = "CHANGED";
        if (strcmp(kept(after), "kept")) kept_after = "CHANGED";
        if (ret != -EPIPE) break;
    }
    printf("write raising SIGPIPE: returned %ld, frame registers %s, after the handler %s\n", ret,
           frame, kept_after);
    close(p[1]);
    sigaction(SIGPIPE, &old, NULL);
}

/* A tracer's view of a tracee blocked in a read (`platform blocked-tracer`:
 * the native level's seccomp profile refuses ptrace, so the caller runs
 * this part alone where ptrace is allowed). */
static void check_blocked_tracer(void) {
    int p[2];
    if (pipe(p)) return;
    char b;
    uint64_t after[5];
    pid_t c = fork();
    if (c == 0) {
        long n = read_with_callee(p[0], &b, after);
        _exit(n == 1 && !strcmp(kept(after), "kept") ? 0 : 1);
    }
    usleep(30000);
    struct user_regs_struct regs;
    int ok = ptrace(PTRACE_SEIZE, c, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, c, 0, 0) == 0;
    int st = 0;
    ok = ok && waitpid(c, &st, __WALL) == c && ptrace(PTRACE_GETREGS, c, 0, &regs) == 0;
    uint64_t seen[5] = {regs.rbx, regs.r12, regs.r13, regs.r14, regs.r15};
    if (ok) ptrace(PTRACE_DETACH, c, 0, 0);
    if (write(p[1], "y", 1) != 1) ok = 0;
    waitpid(c, &st, 0);
    printf("blocked read, tracer: registers %s, tracee after the read %s\n",
           ok ? kept(seen) : "NOT READ", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "kept" : "CHANGED");
    close(p[0]), close(p[1]);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "blocked-tracer")) {
        check_blocked_tracer();
        return 0;
    }
    unsigned a = 0, b = 0, c = 0, d = 0;
    __get_cpuid(1, &a, &b, &c, &d);
    has_avx = (c & (1u << 28)) && (c & (1u << 27));
    signal(SIGALRM, on_signal);
    check_read_site();
    check_openat_site();
    check_blocked_read();
    check_raised_by_plain_syscall();
    for (int round = 0; round < 3; round++)
        for (int kind = 0; kind < 3; kind++) check(round == 0 ? "main" : "main again", kind);
    pthread_t t;
    pthread_create(&t, NULL, thread, NULL);
    pthread_join(t, NULL);
    printf("signals handled: %d\n", signals);
    /* The vDSO's clock and the syscall's agree. */
    struct timespec v, s;
    clock_gettime(CLOCK_REALTIME, &v);
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &s);
    long diff = (s.tv_sec - v.tv_sec) * 1000000000L + (s.tv_nsec - v.tv_nsec);
    printf("vdso present: %s\n", getauxval(AT_SYSINFO_EHDR) ? "yes" : "no");
    printf("vdso clock agrees with the syscall: %s\n", diff >= 0 && diff < 1000000000L ? "yes" : "no");
    /* Last line, compared by the caller per platform: whether call sites
     * were patched (the trampoline table of the userspace level). */
    char line[512];
    int patched = 0;
    FILE *m = fopen("/proc/self/maps", "r");
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, "[usertrap]")) patched = 1;
    int read_patched = read_site && memcmp(read_site, XOR_SITE, sizeof XOR_SITE);
    int openat_patched = memcmp(openat_cwd_site, OPENAT_SITE, sizeof OPENAT_SITE) != 0;
    printf("usertrap: %s, read site: %s, openat site: %s\n", patched ? "yes" : "no",
           read_patched ? "patched" : "as built", openat_patched ? "patched" : "as built");
    fflush(stdout);
    return 0;
}
