// PI futexes (FUTEX_LOCK_PI, LOCK_PI2, TRYLOCK_PI, UNLOCK_PI): the
// protocol on the futex word as Linux runs it. One line per behaviour, no
// TIDs printed (they differ between runs); compared with the host kernel by
// crates/atoll/tests/userspace_compat.rs.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif

static sigjmp_buf jb;
static void on_alarm(int s) { (void)s; siglongjmp(jb, 1); }
#define GUARDED(name, secs, ...)           \
    do {                                   \
        if (sigsetjmp(jb, 1) == 0) {       \
            alarm(secs);                   \
            __VA_ARGS__;                   \
            alarm(0);                      \
        } else {                           \
            printf("%s: TIMEOUT\n", name); \
        }                                  \
        fflush(stdout);                    \
    } while (0)

static const char *err(long r) {
    static char b[64];
    if (r >= 0) snprintf(b, sizeof b, "ok(%ld)", r);
    else snprintf(b, sizeof b, "%s", strerrorname_np(errno));
    return b;
}

static long futex(atomic_uint *a, int op, const struct timespec *t) {
    return syscall(SYS_futex, a, op, 0, t, NULL, 0);
}
static long lock_pi(atomic_uint *a) { return futex(a, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, NULL); }
static long unlock_pi(atomic_uint *a) { return futex(a, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, NULL); }
static long trylock_pi(atomic_uint *a) { return futex(a, FUTEX_TRYLOCK_PI | FUTEX_PRIVATE_FLAG, NULL); }

static unsigned me(void) { return (unsigned)gettid(); }
static int owned_by_me(unsigned w) { return (w & FUTEX_TID_MASK) == me(); }
static int waiters(unsigned w) { return (w & FUTEX_WAITERS) != 0; }
static int died(unsigned w) { return (w & FUTEX_OWNER_DIED) != 0; }

// Spins (bounded by the caller's GUARDED alarm) until `bit` shows in *a.
static void await_bit(atomic_uint *a, unsigned bit) {
    while (!(atomic_load(a) & bit)) usleep(1000);
}

static atomic_uint word;

static void basics(void) {
    long r = lock_pi(&word);
    printf("lock_pi of a free word: %s, word is my tid %d\n", err(r), atomic_load(&word) == me());
    printf("lock_pi again: %s\n", err(lock_pi(&word)));
    printf("trylock_pi of my own lock: %s\n", err(trylock_pi(&word)));
    r = unlock_pi(&word);
    printf("unlock_pi: %s, word %u\n", err(r), atomic_load(&word));
    printf("unlock_pi of a free word: %s\n", err(unlock_pi(&word)));
    r = trylock_pi(&word);
    printf("trylock_pi of a free word: %s, mine %d\n", err(r), owned_by_me(atomic_load(&word)));
    unlock_pi(&word);
    atomic_store(&word, FUTEX_WAITERS | FUTEX_OWNER_DIED);
    r = lock_pi(&word);
    unsigned w = atomic_load(&word);
    printf("lock_pi of an owner-died word: %s, mine %d waiters %d died %d\n", err(r), owned_by_me(w), waiters(w), died(w));
    atomic_store(&word, me() | FUTEX_WAITERS);
    r = unlock_pi(&word);
    printf("unlock_pi with the waiters bit and nobody waiting: %s, word %u\n", err(r), atomic_load(&word));
    printf("lock_pi misaligned: %s\n", err(lock_pi((atomic_uint *)((char *)&word + 1))));
    printf("lock_pi of an unmapped word: %s\n", err(lock_pi((atomic_uint *)8)));
    atomic_uint *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("lock_pi of a read-only word: %s\n", err(lock_pi(ro)));
    printf("unlock_pi of a read-only word I do not own: %s\n", err(unlock_pi(ro)));
    munmap(ro, 4096);
}

// A thread that owns `word` until told to unlock (or to exit holding it).
static atomic_int holder_go;  // 1: unlock and exit, 2: exit holding it
static atomic_uint holder_tid;
static void *holder(void *arg) {
    (void)arg;
    lock_pi(&word);
    atomic_store(&holder_tid, me());
    while (!atomic_load(&holder_go)) usleep(1000);
    if (atomic_load(&holder_go) == 1) unlock_pi(&word);
    return NULL;
}
static pthread_t start_holder(void) {
    pthread_t t;
    atomic_store(&word, 0);
    atomic_store(&holder_go, 0);
    atomic_store(&holder_tid, 0);
    pthread_create(&t, NULL, holder, NULL);
    while (!atomic_load(&holder_tid)) usleep(1000);
    return t;
}

static struct timespec abs_in(clockid_t c, long ms) {
    struct timespec ts;
    clock_gettime(c, &ts);
    ts.tv_nsec += ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

static void contention(void) {
    pthread_t t = start_holder();
    long r = trylock_pi(&word);
    unsigned w = atomic_load(&word);
    printf("trylock_pi of another's lock: %s, waiters bit %d\n", err(r), waiters(w));
    printf("unlock_pi of another's lock: %s\n", err(unlock_pi(&word)));
    struct timespec ts = abs_in(CLOCK_REALTIME, 50);
    GUARDED("lock_pi with a realtime timeout", 5,
            printf("lock_pi with a realtime timeout: %s\n", err(futex(&word, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, &ts))));
    ts = abs_in(CLOCK_MONOTONIC, 50);
    GUARDED("lock_pi2 with a monotonic timeout", 5,
            printf("lock_pi2 with a monotonic timeout: %s\n",
                   err(futex(&word, FUTEX_LOCK_PI2 | FUTEX_PRIVATE_FLAG, &ts))));
    ts = abs_in(CLOCK_REALTIME, 50);
    GUARDED("lock_pi2 with a realtime timeout", 5,
            printf("lock_pi2 with a realtime timeout: %s\n",
                   err(futex(&word, FUTEX_LOCK_PI2 | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME, &ts))));
    ts = (struct timespec){1, 0};
    printf("lock_pi with a timeout long past: %s\n", err(futex(&word, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, &ts)));
    printf("lock_pi with FUTEX_CLOCK_REALTIME: %s\n",
           err(futex(&word, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME, &ts)));
    ts = (struct timespec){1, 2000000000};
    printf("lock_pi with a bad timespec: %s\n", err(futex(&word, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, &ts)));
    printf("lock_pi with an unmapped timespec: %s\n",
           err(futex(&word, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, (struct timespec *)8)));
    atomic_uint other = 0;
    ts = (struct timespec){0, 1000};
    printf("futex_wait with FUTEX_CLOCK_REALTIME: %s\n",
           err(syscall(SYS_futex, &other, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 0, &ts, NULL, 0)));
    printf("futex_wake with FUTEX_CLOCK_REALTIME: %s\n",
           err(syscall(SYS_futex, &other, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0)));
    atomic_store(&holder_go, 1);
    pthread_join(t, NULL);
    printf("after the holder's unlock: word %u\n", atomic_load(&word));
}

// A waiter sleeps in the kernel; the owner's unlock hands it the lock.
static atomic_int waiter_result = -100, waiter_saw_mine, waiter_saw_waiters, waiter_saw_died;
static void *waiter(void *arg) {
    (void)arg;
    long r = lock_pi(&word);
    atomic_store(&waiter_result, r == 0 ? 0 : errno);
    unsigned w = atomic_load(&word);
    atomic_store(&waiter_saw_mine, owned_by_me(w));
    atomic_store(&waiter_saw_waiters, waiters(w));
    atomic_store(&waiter_saw_died, died(w));
    unlock_pi(&word);
    return NULL;
}

static void handover(void) {
    atomic_store(&word, 0);
    lock_pi(&word);
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    GUARDED("a waiter sets FUTEX_WAITERS", 5, {
        await_bit(&word, FUTEX_WAITERS);
        printf("a waiter sets FUTEX_WAITERS: still mine %d\n", owned_by_me(atomic_load(&word)));
    });
    // The user-space unlock fails: the owner must come to the kernel.
    unsigned expect = me();
    printf("user-space unlock with a waiter: %d\n",
           atomic_compare_exchange_strong(&word, &expect, 0));
    printf("unlock_pi to a waiter: %s\n", err(unlock_pi(&word)));
    pthread_join(t, NULL);
    printf("the waiter got it: result %d, word named it %d, waiters bit %d, owner died %d; word now %u\n",
           atomic_load(&waiter_result), atomic_load(&waiter_saw_mine), atomic_load(&waiter_saw_waiters),
           atomic_load(&waiter_saw_died), atomic_load(&word));
}

// The owner exits holding the lock: the waiter gets it.
static void owner_exits(void) {
    pthread_t t = start_holder();
    atomic_store(&waiter_result, -100);
    pthread_t wt;
    pthread_create(&wt, NULL, waiter, NULL);
    GUARDED("owner exits with a waiter", 5, {
        await_bit(&word, FUTEX_WAITERS);
        atomic_store(&holder_go, 2);
        pthread_join(t, NULL);
        pthread_join(wt, NULL);
        printf("owner exits with a waiter: result %d, word named it %d, waiters bit %d, owner died %d; word now %u\n",
               atomic_load(&waiter_result), atomic_load(&waiter_saw_mine), atomic_load(&waiter_saw_waiters),
               atomic_load(&waiter_saw_died), atomic_load(&word));
    });
}

static void *died_holding(void *arg) {
    lock_pi((atomic_uint *)arg);
    return NULL;
}

// The word names a thread that is gone.
static void dead_owner(void) {
    pthread_t t;
    atomic_store(&word, 0);
    pthread_create(&t, NULL, died_holding, &word);
    pthread_join(t, NULL);
    unsigned stale = atomic_load(&word);
    long r = lock_pi(&word);
    printf("lock_pi of an exited owner: %s, waiters bit %d\n", err(r), waiters(atomic_load(&word)));
    atomic_store(&word, stale);
    printf("trylock_pi of an exited owner: %s\n", err(trylock_pi(&word)));
    pid_t c = fork();
    if (c == 0) _exit(0);
    waitpid(c, NULL, 0);
    atomic_store(&word, (unsigned)c);
    printf("lock_pi of a reaped process: %s\n", err(lock_pi(&word)));
}

// Signals: a handler runs while the waiter sleeps; LOCK_PI carries on.
static atomic_int handled;
static void on_usr1(int s) { (void)s; atomic_fetch_add(&handled, 1); }
static atomic_uint waiter_tid;
static void *signalled_waiter(void *arg) {
    (void)arg;
    atomic_store(&waiter_tid, me());
    long r = lock_pi(&word);
    atomic_store(&waiter_result, r == 0 ? 0 : errno);
    unlock_pi(&word);
    return NULL;
}

static void signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;  // no SA_RESTART
    sigaction(SIGUSR1, &sa, NULL);
    atomic_store(&word, 0);
    atomic_store(&waiter_result, -100);
    lock_pi(&word);
    pthread_t t;
    pthread_create(&t, NULL, signalled_waiter, NULL);
    GUARDED("lock_pi interrupted by a handler", 5, {
        await_bit(&word, FUTEX_WAITERS);
        syscall(SYS_tgkill, getpid(), atomic_load(&waiter_tid), SIGUSR1);
        while (!atomic_load(&handled)) usleep(1000);
        usleep(20000);
        printf("lock_pi interrupted by a handler: still waiting %d\n", atomic_load(&waiter_result) == -100);
        unlock_pi(&word);
        pthread_join(t, NULL);
        printf("then handed the lock: result %d, word %u\n", atomic_load(&waiter_result), atomic_load(&word));
    });
}

// Many threads, raw syscalls and the user-space fast path, one counter.
static long counter;
static void *hammer(void *arg) {
    int fast = arg != NULL;
    for (int i = 0; i < 200; i++) {
        unsigned z = 0;
        if (!fast || !atomic_compare_exchange_strong(&word, &z, me())) {
            if (lock_pi(&word) != 0) abort();
        }
        if (!owned_by_me(atomic_load(&word))) abort();
        counter++;
        if (i % 16 == 0) sched_yield();
        unsigned mine = me();
        if (!fast || !atomic_compare_exchange_strong(&word, &mine, 0)) {
            if (unlock_pi(&word) != 0) abort();
        }
    }
    return NULL;
}

static void concurrency(void) {
    pthread_t t[8];
    atomic_store(&word, 0);
    counter = 0;
    GUARDED("8 threads x 200 locks", 60, {
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, hammer, (i & 1) ? (void *)1 : NULL);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
        printf("8 threads x 200 locks: counter %ld, word %u\n", counter, atomic_load(&word));
    });
}

// glibc's PTHREAD_PRIO_INHERIT mutexes run on LOCK_PI/UNLOCK_PI; robust
// ones get EOWNERDEAD after an owner's death.
static pthread_mutex_t pim;
static void *lock_and_exit(void *arg) {
    (void)arg;
    pthread_mutex_lock(&pim);
    return NULL;
}

static void glibc_mutexes(void) {
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT);
    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&pim, &at);
    pthread_t t;
    pthread_create(&t, NULL, lock_and_exit, NULL);
    pthread_join(t, NULL);
    GUARDED("robust PI mutex after its owner exited", 5, {
        int r = pthread_mutex_lock(&pim);
        printf("robust PI mutex after its owner exited: %s\n", r ? strerrorname_np(r) : "ok");
        if (r == EOWNERDEAD) pthread_mutex_consistent(&pim);
        printf("then unlock: %d\n", pthread_mutex_unlock(&pim));
    });
    pthread_mutex_lock(&pim);
    printf("relock: %s\n", strerrorname_np(pthread_mutex_trylock(&pim)) ?: "?");
    pthread_mutex_unlock(&pim);
}

// Shared memory: a lock between two processes (no FUTEX_PRIVATE_FLAG).
static void shared(void) {
    atomic_uint *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    atomic_store(w, 0);
    syscall(SYS_futex, w, FUTEX_LOCK_PI, 0, NULL, NULL, 0);
    pid_t c = fork();
    if (c == 0) {
        long r = syscall(SYS_futex, w, FUTEX_LOCK_PI, 0, NULL, NULL, 0);
        int ok = r == 0 && owned_by_me(atomic_load(w)) && waiters(atomic_load(w));
        syscall(SYS_futex, w, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0);
        _exit(ok ? 0 : 1);
    }
    GUARDED("shared lock across processes", 5, {
        await_bit(w, FUTEX_WAITERS);
        printf("shared unlock to another process: %s\n",
               err(syscall(SYS_futex, w, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0)));
        int st;
        waitpid(c, &st, 0);
        printf("the other process got it: exit %d, word %u\n", WEXITSTATUS(st), atomic_load(w));
    });
}

int main(void) {
    signal(SIGALRM, on_alarm);
    setvbuf(stdout, NULL, _IOLBF, 0);
    basics();
    contention();
    handover();
    owner_exits();
    dead_owner();
    signals();
    concurrency();
    glibc_mutexes();
    shared();
    return 0;
}
