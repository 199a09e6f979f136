/* Forge and race the systrap stub's shared pages: while one thread makes
 * syscalls (patched sites, the signal path, mmap, new threads), another
 * scribbles over that thread's slot (registers, state word, frame
 * pointer, flags, wait mode, returned rax, the XSAVE image the stub
 * restores) and over the stub's control results; then it tries to write
 * the pages the stub maps read-only (the kernel's hints, the control
 * requests). The process may crash; the kernel must serve everyone else. */
#include "attack.h"
#include <pthread.h>

static volatile unsigned long slot;
static volatile int stop;

static void *victim(void *arg) {
    (void)arg;
    unsigned long gs;
    asm volatile("rdgsbase %0" : "=r"(gs));
    slot = gs;
    while (!stop) {
        getppid();
        syscall(SYS_getppid);
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) munmap(p, 1 << 20);
    }
    return NULL;
}

static void *spawner(void *arg) {
    (void)arg;
    while (!stop) {
        pthread_t t;
        if (pthread_create(&t, NULL, (void *(*)(void *))getppid, NULL) == 0) pthread_join(t, NULL);
    }
    return NULL;
}

static unsigned long rnd(void) {
    static unsigned long x = 88172645463325252UL;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return x;
}

static void forge(void *arg) {
    (void)arg;
    pthread_t v, s;
    pthread_create(&v, NULL, victim, NULL);
    pthread_create(&s, NULL, spawner, NULL);
    while (!slot) sched_yield();
    volatile unsigned long *w = (volatile unsigned long *)slot;
    volatile unsigned long *res = (volatile unsigned long *)(STUB_BASE + 0x14000);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long n = 0;
    do {
        unsigned long r = rnd();
        switch (r % 8) {
        case 0: w[0] = r >> 8; break;                      /* state, sleeping */
        case 1: w[(r >> 8) % 512] = rnd(); break;          /* anywhere in the slot */
        case 2: w[2] = 0x7ff000100000UL + (r % 0x10000); break; /* frame pointer */
        case 3: w[0] = 16 | (r & 0xffffffff00000000UL); break;  /* "run" */
        case 4: res[(r >> 8) % 512] = rnd(); break;        /* control results */
        case 5: w[8 + (r >> 8) % 27] = 0; break;           /* registers */
        case 6: {                                          /* the FPU page */
            /* Its XSAVE header: every feature (AMX's tile data too, which
             * the stub never restores) or a compacted format, then the
             * flag that makes the stub's way back restore it. */
            volatile unsigned long *fpu = (volatile unsigned long *)(slot + 0x1000);
            fpu[64] = (r & 1) ? ~0UL : (1UL << 18) | 3;
            fpu[65] = (r & 2) ? rnd() : 0;
            w[1] |= 1UL << 32;
            break;
        }
        case 7:                                            /* how it waits */
            /* The entry path and the wait mode (spin, sleep, yield for
             * the control thread, yield while blocked, or nonsense), and
             * the rax the stub returns with (the state word's line). */
            w[5] = (r >> 40) | ((r >> 8) % 5) << 32;
            w[6] = rnd();
            break;
        }
        n++;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 1500000000L);
    stop = 1;
    _exit(0);
}

static volatile int wrote_ro;

static void try_write(void *addr) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = probe_fault;
    sigaction(SIGSEGV, &sa, &old);
    if (!sigsetjmp(probe_jmp, 1)) {
        *(volatile unsigned long *)addr = 0x4141414141414141UL;
        asm volatile("" ::: "memory");
        wrote_ro++;
    }
    sigaction(SIGSEGV, &old, NULL);
}

static void write_ro(void *arg) {
    (void)arg;
    try_write((void *)(STUB_BASE + 0x4000));  /* the kernel's hints */
    try_write((void *)(STUB_BASE + 0x10000)); /* control requests */
    try_write((void *)(STUB_BASE + 0x100));   /* the stub's code */
    _exit(wrote_ro ? 10 : 0);
}

int main(void) {
    protocol_init("systrap_forge");
    if (!stub_syscall_insn()) {
        verdict("HARMLESS", "no systrap stub to forge");
        return 0;
    }
    /* The forger may hang its own process (its threads wait for answers
     * to stops it forged away): it gets 20 s, then the kernel kills it. */
    int st = in_child_for(forge, NULL, 20);
    info("forger: %s", status_text(st));
    int ro = in_child(write_ro, NULL);
    info("writes to read-only stub pages: %s", status_text(ro));
    int alive = kernel_alive();
    info("kernel serves a new process afterwards: %s", alive ? "yes" : "no");
    if (ro >= 0 && WIFEXITED(ro) && WEXITSTATUS(ro) == 10)
        verdict("ESCAPED", "wrote a page the stub maps read-only");
    else if (!alive)
        verdict("ESCAPED", "the kernel stopped serving the sandbox");
    else
        verdict("BLOCKED", "forged slots and results hurt only the forger; read-only stub pages stayed read-only; the kernel served on");
    return 0;
}
