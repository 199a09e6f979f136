// ITIMER_VIRTUAL and ITIMER_PROF: interval timers on the process's CPU
// time. One line per behaviour (no timing printed, only what must hold);
// the userspace level must print what the host prints.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t vt, prof, code;
// Which thread took the SIGPROFs: the spinning worker or another.
static atomic_int worker_tid, by_worker, by_other;

static void on_sig(int s, siginfo_t *si, void *u) {
    (void)u;
    if (s == SIGVTALRM) {
        vt++;
    } else {
        prof++;
        if (syscall(SYS_gettid) == worker_tid)
            by_worker++;
        else
            by_other++;
    }
    code = si->si_code;
}

static int started[2];

// Says it runs, then spins in user code until it has taken `arg` SIGPROFs.
static void set(int which, long value_us, long interval_us);
static void *spinner(void *arg) {
    long until_prof = (long)arg;
    worker_tid = syscall(SYS_gettid);
    write(started[1], "", 1);
    volatile unsigned long x = 0;
    while (by_worker < until_prof)
        x++;
    // Disarmed here: once this thread is gone the main thread runs.
    set(ITIMER_PROF, 0, 0);
    return NULL;
}

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT vt=%d prof=%d\n", vt, prof);
    fflush(stdout);
    _exit(1);
}

static void set(int which, long value_us, long interval_us) {
    struct itimerval it = {{interval_us / 1000000, interval_us % 1000000},
                           {value_us / 1000000, value_us % 1000000}};
    setitimer(which, &it, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGVTALRM, &sa, NULL);
    sigaction(SIGPROF, &sa, NULL);

    struct itimerval g;
    set(ITIMER_VIRTUAL, 200000, 30000);
    getitimer(ITIMER_VIRTUAL, &g);
    long left = g.it_value.tv_sec * 1000000 + g.it_value.tv_usec;
    printf("virtual armed: left in (0, 210ms]=%d interval=%ld\n", left > 0 && left <= 210000,
           (long)g.it_interval.tv_usec);

    // Sleeping is no CPU time: nothing fires.
    struct timespec nap = {0, 300 * 1000 * 1000};
    nanosleep(&nap, NULL);
    printf("virtual after sleeping: %d signals\n", vt);

    // Spinning in user code, no syscalls: it fires, again and again.
    volatile unsigned long x = 0;
    while (vt < 3)
        x++;
    printf("virtual fired while spinning: %d code=%d\n", vt >= 3, code);
    set(ITIMER_VIRTUAL, 0, 0);
    getitimer(ITIMER_VIRTUAL, &g);
    printf("virtual disarmed: %ld %ld\n", (long)g.it_value.tv_usec, (long)g.it_interval.tv_usec);

    // ITIMER_PROF counts system time too: a loop of syscalls fires it.
    set(ITIMER_PROF, 50000, 0);
    while (prof < 1)
        getppid();
    getitimer(ITIMER_PROF, &g);
    printf("prof fired once: %d, then disarmed: %ld %ld\n", prof, (long)g.it_value.tv_usec,
           (long)g.it_interval.tv_usec);

    // A child does not inherit the timers.
    set(ITIMER_PROF, 5000000, 0);
    pid_t c = fork();
    if (c == 0) {
        getitimer(ITIMER_PROF, &g);
        printf("child's prof timer: %ld %ld\n", (long)g.it_value.tv_sec,
               (long)g.it_value.tv_usec);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    getitimer(ITIMER_PROF, &g);
    printf("parent's prof timer still armed: %d\n", g.it_value.tv_sec > 0 || g.it_value.tv_usec > 0);
    set(ITIMER_PROF, 0, 0);

    // Linux raises a CPU timer's signal on the thread the tick found
    // running: the spinning worker, not the main thread waiting for it.
    // The timer is armed once the worker spins (creating a thread is
    // CPU time of the main thread), 30 ms of CPU time ahead.
    // SA_NODEFER: the worker never blocks SIGPROF, even in its handler
    // (at the userspace level a handler's entry and return are slow
    // enough for the next expiry to find the signal blocked there, when
    // Linux, too, would give it to the main thread).
    sa.sa_flags |= SA_NODEFER;
    sigaction(SIGPROF, &sa, NULL);
    pthread_t w;
    char byte;
    pipe(started);
    by_worker = by_other = 0;
    pthread_create(&w, NULL, spinner, (void *)5L);
    read(started[0], &byte, 1);
    set(ITIMER_PROF, 30000, 10000);
    pthread_join(w, NULL);
    printf("prof signals while the main thread waits: all to the spinning thread: %d\n",
           by_worker >= 5 && by_other == 0);

    struct itimerval bad = {{0, 1000000}, {0, 0}};
    printf("bad interval: %d\n", setitimer(ITIMER_VIRTUAL, &bad, NULL));
    return 0;
}
