/* Nice values and scheduling policies as Linux keeps them (CPython's
 * test_os.test_set_get_priority and test_posix's scheduler tests): per
 * thread, inherited by fork, checked against RLIMIT_NICE and ownership,
 * with the errnos of bad arguments. Runs without CAP_SYS_NICE (the
 * default capability set). One line per behaviour. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(long r) {
    return r < 0 ? strerrorname_np(errno) : "ok";
}

/* The raw syscall: 20 - nice, or an error. */
static long rawprio(int which, int who) {
    return syscall(SYS_getpriority, which, who);
}

static void *thread_nice(void *arg) {
    (void)arg;
    long r = setpriority(PRIO_PROCESS, syscall(SYS_gettid), 12);
    if (r < 0) r = -1;
    printf("thread sets its own nice 12: %s, now %ld\n", err(r), 20 - rawprio(PRIO_PROCESS, 0));
    return NULL;
}

static void stat_nice(const char *what) {
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024] = {0};
    if (f) {
        fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    }
    /* Fields 18 and 19 (priority, nice), after the command's ')'. */
    char *p = strrchr(buf, ')');
    int field = 2, prio = -99, nice = -99;
    for (char *q = p ? p + 1 : buf; *q; q++) {
        if (*q == ' ') {
            field++;
            if (field == 18) sscanf(q + 1, "%d", &prio);
            if (field == 19) sscanf(q + 1, "%d", &nice);
        }
    }
    printf("%s: /proc/self/stat priority %d nice %d\n", what, prio, nice);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("raw getpriority self: %ld\n", rawprio(PRIO_PROCESS, 0));
    printf("setpriority 5: %s\n", err(setpriority(PRIO_PROCESS, 0, 5)));
    printf("getpriority: %ld\n", 20 - rawprio(PRIO_PROCESS, getpid()));
    stat_nice("after nice 5");
    printf("setpriority 3 (lower, no CAP_SYS_NICE): %s\n", err(setpriority(PRIO_PROCESS, 0, 3)));
    long r = setpriority(PRIO_PROCESS, 0, 100);
    printf("setpriority 100 (clamped): %s, now %ld\n", err(r), 20 - rawprio(PRIO_PROCESS, 0));
    printf("getpriority PRIO_PGRP 0: %ld\n", 20 - rawprio(PRIO_PGRP, 0));
    printf("getpriority PRIO_USER 0: %ld\n", 20 - rawprio(PRIO_USER, 0));
    printf("getpriority which 99: %s\n", err(rawprio(99, 0)));
    printf("getpriority no such pid: %s\n", err(rawprio(PRIO_PROCESS, 999999)));
    printf("setpriority no such pid: %s\n", err(setpriority(PRIO_PROCESS, 999999, 1)));
    pid_t c = fork();
    if (c == 0) {
        printf("child inherits nice: %ld\n", 20 - rawprio(PRIO_PROCESS, 0));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    pthread_t th;
    pthread_create(&th, NULL, thread_nice, NULL);
    pthread_join(th, NULL);
    printf("main thread keeps nice: %ld\n", 20 - rawprio(PRIO_PROCESS, 0));

    struct sched_param sp = {0};
    printf("sched_getscheduler self: %d\n", sched_getscheduler(0));
    printf("sched_getscheduler -1: %s\n", err(sched_getscheduler(-1)));
    printf("sched_getscheduler no such pid: %s\n", err(sched_getscheduler(999999)));
    printf("sched_getparam NULL: %s\n", err(syscall(SYS_sched_getparam, 0, NULL)));
    printf("sched_getparam -1: %s\n", err(sched_getparam(-1, &sp)));
    r = sched_setscheduler(0, SCHED_BATCH, &sp);
    printf("SCHED_BATCH: %s, now %d\n", err(r), sched_getscheduler(0));
    sp.sched_priority = 5;
    printf("SCHED_OTHER priority 5: %s\n", err(sched_setscheduler(0, SCHED_OTHER, &sp)));
    printf("SCHED_FIFO priority 5: %s\n", err(sched_setscheduler(0, SCHED_FIFO, &sp)));
    sp.sched_priority = 0;
    printf("SCHED_FIFO priority 0: %s\n", err(sched_setscheduler(0, SCHED_FIFO, &sp)));
    printf("policy 99: %s\n", err(sched_setscheduler(0, 99, &sp)));
    printf("policy -5: %s\n", err(sched_setscheduler(0, -5, &sp)));
    r = sched_setparam(0, &sp);
    printf("sched_setparam keeps the policy: %s, now %d\n", err(r), sched_getscheduler(0));
    r = sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &sp);
    printf("SCHED_OTHER|RESET_ON_FORK: %s, now %#x\n", err(r), sched_getscheduler(0));
    c = fork();
    if (c == 0) {
        printf("child after reset-on-fork: policy %d nice %ld\n", sched_getscheduler(0),
               20 - rawprio(PRIO_PROCESS, 0));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("clear RESET_ON_FORK unprivileged: %s\n", err(sched_setscheduler(0, SCHED_OTHER, &sp)));
    printf("SCHED_IDLE: %s\n", err(sched_setscheduler(0, SCHED_IDLE | SCHED_RESET_ON_FORK, &sp)));
    printf("leave SCHED_IDLE at nice 19: %s\n",
           err(sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp)));
    cpu_set_t set;
    printf("sched_getaffinity -1: %s\n", err(sched_getaffinity(-1, sizeof set, &set)));
    printf("sched_getaffinity 4 bytes: %s\n", err(syscall(SYS_sched_getaffinity, 0, 4, &set)));
    struct timespec ts;
    printf("sched_rr_get_interval -1: %s\n", err(sched_rr_get_interval(-1, &ts)));
    return 0;
}
