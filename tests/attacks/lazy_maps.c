/* The systrap platform keeps a process's new mappings back from the host
 * until they are touched, then makes them in one call
 * (crates/kernel/src/platform/systrap/deferred.rs). Try to make that give more
 * than the kernel's view of the address space:
 * 1. access left behind: new mappings made PROT_NONE, read-only or
 *    unmapped, or replaced by PROT_NONE, before their first touch must
 *    fault exactly where the kernel's view says; so must a PROT_NONE
 *    reservation trimmed and mapped into (glibc's malloc and dynamic
 *    loader do that; the kernel keeps those changes back too), and
 *    memory mapped into a reservation over pages written before must
 *    read as zeros;
 * 2. another process's memory: a child keeps filling and freeing memory
 *    with a secret (so the memory file's pages are freed and given out
 *    again) while two threads here map fresh memory, map over it, unmap
 *    it, and read it at once from another thread, watching for anything
 *    but zeros in memory that was never written. */
#include "attack.h"
#include <pthread.h>
#include <stdatomic.h>

#define PG 4096UL
#define SECRET 0x5445524345535a4cULL /* "LZSECRET" */

static __thread sigjmp_buf t_jmp;
static void t_fault(int s) { (void)s; siglongjmp(t_jmp, 1); }

static void catch_faults(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = t_fault;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

static int can_read(volatile char *p) {
    if (sigsetjmp(t_jmp, 1)) return 0;
    (void)*p;
    return 1;
}

static int can_write(volatile char *p) {
    if (sigsetjmp(t_jmp, 1)) return 0;
    *p = 1;
    return 1;
}

/* Part 1: each probe's expected outcome, as Linux gives it; the names
 * of the probes that differ go into `how` once each. */
static int access_left_behind(char *how) {
    static const char *names[] = {
        "read of a page made PROT_NONE", "write to a page made read-only",
        "read of a page made read-only", "read of an unmapped page",
        "read of a page mapped over with PROT_NONE", "write to a writable page",
        "read after munmap",
        "read of a reservation's trimmed head", "read of a reservation's PROT_NONE part",
        "write to memory mapped into a reservation", "read of a reservation's trimmed tail",
        "read of memory mapped over written PROT_NONE memory (zeros wanted)",
        "write to a read-only mapping made over PROT_NONE memory",
    };
    unsigned failed = 0;
    for (int round = 0; round < 50; round++) {
        char *p = mmap(NULL, 6 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return -1;
        mprotect(p, PG, PROT_NONE);
        mprotect(p + PG, PG, PROT_READ);
        munmap(p + 2 * PG, PG);
        mmap(p + 3 * PG, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        mprotect(p + 4 * PG, 2 * PG, PROT_READ | PROT_WRITE | PROT_EXEC);
        int got[7];
        got[0] = can_read(p);
        got[1] = can_write(p + PG);
        got[2] = can_read(p + PG);
        got[3] = can_read(p + 2 * PG);
        got[4] = can_read(p + 3 * PG);
        got[5] = can_write(p + 4 * PG);
        munmap(p, 6 * PG);
        got[6] = can_read(p + 4 * PG);
        static const int want[] = {0, 0, 1, 0, 0, 1, 0};
        for (int i = 0; i < 7; i++)
            if (got[i] != want[i]) failed |= 1u << i;

        /* A reservation, trimmed at both ends, mapped into. */
        char *r = mmap(NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r == MAP_FAILED) return -1;
        munmap(r, PG);
        munmap(r + 7 * PG, PG);
        mmap(r + 2 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        int gr[6];
        gr[0] = can_read(r);
        gr[1] = can_read(r + PG);
        gr[2] = can_write(r + 2 * PG) && can_write(r + 3 * PG);
        gr[3] = can_read(r + 7 * PG);
        /* Written memory made PROT_NONE, then mapped over: new zeros. */
        if (gr[2]) r[3 * PG] = 0x5a;
        mprotect(r + 3 * PG, PG, PROT_NONE);
        mmap(r + 3 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        gr[4] = can_read(r + 3 * PG) && r[3 * PG] == 0;
        gr[5] = can_write(r + 3 * PG);
        munmap(r, 8 * PG);
        static const int want_r[] = {0, 0, 1, 0, 1, 0};
        for (int i = 0; i < 6; i++)
            if (gr[i] != want_r[i]) failed |= 1u << (7 + i);
    }
    int n = 0;
    for (int i = 0; i < 13; i++)
        if (failed & (1u << i)) {
            strcat(how, names[i]);
            strcat(how, "; ");
            n++;
        }
    return n;
}

static _Atomic(char *) shown;
static atomic_int stop_all;
static atomic_long nonzero;

static int all_zero(volatile unsigned long *w, unsigned long n) {
    for (unsigned long i = 0; i < n; i += 64)
        if (w[i]) return 0;
    return 1;
}

/* Maps, maps over, reads and unmaps fresh memory, over and over. */
static void *mapper(void *arg) {
    (void)arg;
    catch_faults();
    while (!atomic_load(&stop_all)) {
        char *q = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED) continue;
        mmap(q, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        atomic_store(&shown, q);
        if (!all_zero((volatile unsigned long *)q, 16 * PG / 8)) atomic_fetch_add(&nonzero, 1);
        atomic_store(&shown, NULL);
        munmap(q, 16 * PG);
    }
    return NULL;
}

/* The same inside PROT_NONE reservations, trimmed at both ends. */
static void *reserver(void *arg) {
    (void)arg;
    catch_faults();
    while (!atomic_load(&stop_all)) {
        char *r = mmap(NULL, 32 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r == MAP_FAILED) continue;
        char *q = mmap(r + 8 * PG, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        munmap(r, 8 * PG);
        munmap(r + 24 * PG, 8 * PG);
        if (q != MAP_FAILED) {
            atomic_store(&shown, q);
            if (!all_zero((volatile unsigned long *)q, 16 * PG / 8)) atomic_fetch_add(&nonzero, 1);
            atomic_store(&shown, NULL);
        }
        munmap(r + 8 * PG, 16 * PG);
    }
    return NULL;
}

/* Reads whatever the mappers just mapped, racing their first touch. */
static void *peeker(void *arg) {
    (void)arg;
    catch_faults();
    while (!atomic_load(&stop_all)) {
        char *q = atomic_load(&shown);
        if (!q) continue;
        if (sigsetjmp(t_jmp, 1)) continue;
        if (!all_zero((volatile unsigned long *)q, 16 * PG / 8)) atomic_fetch_add(&nonzero, 1);
    }
    return NULL;
}

static void secret_filler(void *arg) {
    (void)arg;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += 2;
    for (;;) {
        unsigned long *b = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b != MAP_FAILED) {
            for (unsigned long i = 0; i < (1 << 20) / 8; i++) b[i] = SECRET;
            munmap(b, 1 << 20);
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec > end.tv_nsec)) break;
    }
}

int main(void) {
    protocol_init("lazy_maps");
    int systrap = stub_syscall_insn() != 0;
    catch_faults();
    char how[2048] = "";
    int left = access_left_behind(how);
    info("access probes that differ from Linux: %d", left);

    pid_t child = fork();
    if (child == 0) {
        secret_filler(NULL);
        _exit(0);
    }
    pthread_t t[4];
    pthread_create(&t[0], NULL, mapper, NULL);
    pthread_create(&t[1], NULL, mapper, NULL);
    pthread_create(&t[2], NULL, reserver, NULL);
    pthread_create(&t[3], NULL, peeker, NULL);
    int st = 0;
    waitpid(child, &st, 0);
    atomic_store(&stop_all, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    long seen = atomic_load(&nonzero);
    info("fresh memory read with something other than zeros: %ld times", seen);
    if (seen) strcat(how, "fresh memory held data (another process's or an old mapping's); ");

    if (left || seen)
        verdict("ESCAPED", "%s", how);
    else if (!systrap)
        verdict("HARMLESS", "no systrap stub: the host kernel maps every change at once");
    else
        verdict("BLOCKED", "kept-back mappings fault where the kernel's view says; fresh memory reads as zeros, never another process's pages");
    return 0;
}
