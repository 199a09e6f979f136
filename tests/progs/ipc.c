// System V shared memory, semaphores (SEM_UNDO), message queues and POSIX
// message queues, across processes. Prints one line per check; the test
// compares the output with a native run.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define E(x) ((x) < 0 ? strerrorname_np(errno) : "ok")

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}

// Polls until semctl(cmd) on sem 0 reports `want` (a sleeper arrived).
static int wait_cnt(int id, int cmd, int want) {
    for (int i = 0; i < 2000; i++) {
        if (semctl(id, 0, cmd) == want) return want;
        msleep(2);
    }
    return semctl(id, 0, cmd);
}

static volatile int notified, notified_code;
static void on_usr1(int sig, siginfo_t *si, void *c) {
    (void)sig;
    (void)c;
    notified = si->si_value.sival_int;
    notified_code = si->si_code;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);

    // ---- shared memory ----
    int shm = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    char *p = shmat(shm, 0, 0);
    strcpy(p, "parent");
    pid_t c = fork();
    if (c == 0) {
        char *q = shmat(shm, 0, 0);
        strcpy(q + 100, "child");
        _exit(strcmp(q, "parent") != 0);
    }
    int st;
    waitpid(c, &st, 0);
    struct shmid_ds ds;
    shmctl(shm, IPC_STAT, &ds);
    printf("shm: child=%d data=%s size=%zu nattch=%lu mode=%o\n", WEXITSTATUS(st), p + 100,
           ds.shm_segsz, ds.shm_nattch, ds.shm_perm.mode);
    char *p2 = shmat(shm, 0, SHM_RDONLY);
    shmctl(shm, IPC_STAT, &ds);
    printf("shm: second attach sees %s nattch=%lu\n", p2, ds.shm_nattch);
    printf("shm: mprotect rdonly attach: %s\n", E(mprotect(p2, 4096, PROT_READ | PROT_WRITE)));
    printf("shm: rmid %s\n", E(shmctl(shm, IPC_RMID, 0)));
    shmctl(shm, IPC_STAT, &ds);
    printf("shm: after rmid dest=%d key=%d\n", !!(ds.shm_perm.mode & SHM_DEST), ds.shm_perm.__key);
    shmdt(p2);
    const char *d1 = E(shmdt(p));
    printf("shm: shmdt %s, again %s\n", d1, E(shmdt(p)));
    printf("shm: stat after last detach: %s\n", E(shmctl(shm, IPC_STAT, &ds)));
    key_t key = 0x5eed;
    int k1 = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
    printf("shm: keyed %s", E(k1));
    printf(", excl again %s", E(shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600)));
    printf(", bigger %s", E(shmget(key, 8192, 0600)));
    printf(", lookup same=%d", shmget(key, 0, 0600) == k1);
    printf(", missing %s\n", E(shmget(key + 1, 4096, 0600)));
    printf("shm: zero size %s\n", E(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600)));
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    char line[512];
    int lines = 0, found = 0;
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        if (strstr(line, "     24301 ")) found = 1;  // 0x5eed
    }
    if (f) fclose(f);
    printf("shm: /proc/sysvipc/shm lines=%d keyed=%d\n", lines, found);
    shmctl(k1, IPC_RMID, 0);

    // ---- semaphores ----
    int sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    unsigned short init[2] = {0, 5};
    semctl(sem, 0, SETALL, (union semun){.array = init});
    c = fork();
    if (c == 0) {
        struct sembuf down = {0, -1, 0};
        _exit(semop(sem, &down, 1) == 0 ? 0 : 1);
    }
    printf("sem: ncnt while asleep=%d\n", wait_cnt(sem, GETNCNT, 1));
    struct sembuf up = {0, 1, 0};
    semop(sem, &up, 1);
    waitpid(c, &st, 0);
    printf("sem: sleeper woke status=%d val=%d", WEXITSTATUS(st), semctl(sem, 0, GETVAL));
    printf(" ncnt=%d\n", semctl(sem, 0, GETNCNT));
    c = fork();
    if (c == 0) {
        struct sembuf ops[2] = {{1, -3, SEM_UNDO}, {0, 2, SEM_UNDO}};
        semop(sem, ops, 2);
        _exit(semctl(sem, 1, GETVAL));
    }
    waitpid(c, &st, 0);
    printf("sem: undo child saw %d, after exit %d", WEXITSTATUS(st), semctl(sem, 0, GETVAL));
    printf(" %d\n", semctl(sem, 1, GETVAL));
    struct sembuf big = {0, -10, IPC_NOWAIT};
    printf("sem: nowait %s\n", E(semop(sem, &big, 1)));
    struct timespec to = {0, 20000000};
    big.sem_flg = 0;
    printf("sem: timed %s\n", E(semtimedop(sem, &big, 1, &to)));
    struct sembuf bad = {7, 1, 0};
    printf("sem: bad num %s", E(semop(sem, &bad, 1)));
    printf(", range %s\n", E(semctl(sem, 0, SETVAL, (union semun){.val = 40000})));
    c = fork();
    if (c == 0) {
        struct sembuf z = {1, 0, 0};
        int r = semop(sem, &z, 1);
        _exit(r < 0 && errno == EIDRM ? 0 : 1);
    }
    printf("sem: zcnt while asleep=%d\n", wait_cnt(sem, GETZCNT, 0) >= 0 ? 1 : 0);
    msleep(50);
    semctl(sem, 0, IPC_RMID);
    waitpid(c, &st, 0);
    printf("sem: rmid woke sleeper with EIDRM=%d\n", WEXITSTATUS(st) == 0);

    // ---- message queues ----
    int mq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct {
        long mtype;
        char mtext[64];
    } m;
    for (int t = 3; t >= 1; t--) {
        m.mtype = t;
        snprintf(m.mtext, sizeof m.mtext, "type%d", t);
        msgsnd(mq, &m, strlen(m.mtext) + 1, 0);
    }
    struct msqid_ds mds;
    msgctl(mq, IPC_STAT, &mds);
    printf("msg: qnum=%lu cbytes=%lu\n", mds.msg_qnum, mds.__msg_cbytes);
    ssize_t n = msgrcv(mq, &m, sizeof m.mtext, 2, 0);
    printf("msg: by type %zd %s\n", n, m.mtext);
    n = msgrcv(mq, &m, sizeof m.mtext, -3, 0);
    printf("msg: lowest type %ld %s\n", m.mtype, m.mtext);
    printf("msg: too small %s\n", E(msgrcv(mq, &m, 2, 0, 0)));
    n = msgrcv(mq, &m, 2, 0, MSG_NOERROR);
    printf("msg: noerror %zd\n", n);
    printf("msg: empty nowait %s\n", E(msgrcv(mq, &m, sizeof m.mtext, 0, IPC_NOWAIT)));
    c = fork();
    if (c == 0) {
        n = msgrcv(mq, &m, sizeof m.mtext, 9, 0);
        _exit(n > 0 && strcmp(m.mtext, "late") == 0 ? 0 : 1);
    }
    msleep(50);
    m.mtype = 9;
    strcpy(m.mtext, "late");
    msgsnd(mq, &m, 5, 0);
    waitpid(c, &st, 0);
    printf("msg: blocked receiver got it=%d\n", WEXITSTATUS(st) == 0);
    m.mtype = 0;
    printf("msg: bad type %s\n", E(msgsnd(mq, &m, 1, 0)));
    msgctl(mq, IPC_RMID, 0);
    printf("msg: after rmid %s\n", E(msgsnd(mq, &m, 1, 0)));

    // ---- POSIX message queues ----
    struct mq_attr attr = {0, 4, 32, 0};
    mq_unlink("/atoll-q");
    mqd_t q = mq_open("/atoll-q", O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    printf("mq: open %s", E(q));
    printf(", excl again %s\n", E(mq_open("/atoll-q", O_RDWR | O_CREAT | O_EXCL, 0600, &attr)));
    mq_send(q, "low", 4, 1);
    mq_send(q, "high", 5, 7);
    mq_send(q, "low2", 5, 1);
    char buf[64];
    unsigned prio;
    struct pollfd pfd = {q, POLLIN | POLLOUT, 0};
    poll(&pfd, 1, 0);
    mq_getattr(q, &attr);
    printf("mq: curmsgs=%ld poll=%#x\n", attr.mq_curmsgs, pfd.revents);
    for (int i = 0; i < 3; i++) {
        n = mq_receive(q, buf, sizeof buf, &prio);
        printf("mq: got %s prio %u\n", buf, prio);
    }
    printf("mq: small buffer %s\n", E(mq_receive(q, buf, 8, &prio)));
    struct timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 20000000;
    if (abs.tv_nsec >= 1000000000) abs.tv_sec++, abs.tv_nsec -= 1000000000;
    printf("mq: timed %s\n", E(mq_timedreceive(q, buf, sizeof buf, &prio, &abs)));
    struct mq_attr nb = {O_NONBLOCK, 0, 0, 0};
    mq_setattr(q, &nb, 0);
    printf("mq: nonblocking %s\n", E(mq_receive(q, buf, sizeof buf, &prio)));
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    sev.sigev_value.sival_int = 42;
    printf("mq: notify %s", E(mq_notify(q, &sev)));
    printf(", again %s\n", E(mq_notify(q, &sev)));
    c = fork();
    if (c == 0) {
        mqd_t cq = mq_open("/atoll-q", O_WRONLY);
        _exit(mq_send(cq, "ping", 5, 3) == 0 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    for (int i = 0; i < 200 && !notified; i++) msleep(5);
    printf("mq: notified value=%d code=%d\n", notified, notified_code);
    n = read(q, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("mq: status %s", buf);
    for (int i = 0; i < 4; i++) mq_send(q, "fill", 5, 0);
    printf("mq: full nonblocking send %s\n", E(mq_send(q, "x", 2, 0)));
    printf("mq: too long %s\n", E(mq_send(q, buf, 33, 0)));
    printf("mq: unlink %s", E(mq_unlink("/atoll-q")));
    printf(", again %s", E(mq_unlink("/atoll-q")));
    printf(", open %s\n", E(mq_open("/atoll-q", O_RDONLY)));
    printf("mq: bad name %s\n", E(mq_open("/a/b", O_RDONLY | O_CREAT, 0600, 0)));
    mq_close(q);
    printf("done\n");
    return 0;
}
