/*
 * The workload side of atoll's micro-benchmarks: one static program, run
 * inside a container at each isolation level, that times its own loops with
 * clock_gettime (CLOCK_MONOTONIC) and prints one `KEY VALUE` line per sample.
 *
 * Inside the userspace level clock_gettime is itself a served syscall, so
 * loops are timed as a whole: one clock read before and one after a chunk
 * of many calls, never around a single call. Time-bounded loops read the
 * clock once per chunk (1000 getppid, 100 of anything else), so the clock
 * costs at most 0.1-1% of a sample.
 *
 * usage:
 *   workload getppid SECONDS SAMPLES      getppid_libc_ns: ns per libc getppid()
 *                                         (glibc's `mov $110,%eax; syscall`,
 *                                         a site a platform may patch);
 *                                         getppid_raw_ns: ns per
 *                                         syscall(SYS_getppid) (glibc's
 *                                         generic syscall(), number in a
 *                                         register: not patchable)
 *   workload threads COUNTS SECONDS SAMPLES
 *                                         for each thread count in COUNTS
 *                                         (e.g. 1,2,8): that many threads
 *                                         loop on getppid, libc then raw;
 *                                         sps_libc_tN / sps_raw_tN: calls per
 *                                         second of all threads together
 *   workload files DIR SAMPLES SECONDS    64 MiB file written and read in
 *                                         4 KiB and 1 MiB blocks (MiB/s),
 *                                         open+close and stat loops (ns/call)
 *   workload pipe SECONDS SAMPLES         pipe_rtt_per_s: 1-byte round trips
 *                                         per second between two processes
 *   workload tcp SECONDS SAMPLES          tcp_wwr_ms: ms per request/response
 *                                         over loopback TCP, Nagle on, the
 *                                         request written as a 10-byte
 *                                         header then a 100-byte body, a
 *                                         10-byte reply (write-write-read:
 *                                         the body waits for the header's
 *                                         ACK, which the peer may delay)
 *   workload spawn N WARMUP PROG [ARG...] spawn_ms: fork+exec+wait of PROG, N
 *                                         times after WARMUP untimed ones
 *   workload time KEY N WARMUP BEFORE PROG [ARG...]
 *                                         KEY: ms per fork+exec+wait of PROG,
 *                                         as spawn; before each run (untimed)
 *                                         `/bin/sh -c BEFORE` unless BEFORE
 *                                         is empty
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void emit(const char *key, double value) {
    printf("%s %.3f\n", key, value);
    fflush(stdout);
}

/* ---- getppid ---- */

/* glibc's getppid() is `mov $110,%eax; syscall; ret`: the call-site
 * pattern syscall-patching platforms rewrite. syscall(SYS_getppid) goes
 * through glibc's generic syscall(), which moves the number from a
 * register: no fixed pattern, so it always takes the trap path. */
static void getppid_libc(void) { getppid(); }
static void getppid_raw(void) { syscall(SYS_getppid); }

static double getppid_loop(void (*call)(void), double seconds) {
    long calls = 0;
    double t0 = now(), t1;
    do {
        for (int i = 0; i < 1000; i++) call();
        calls += 1000;
        t1 = now();
    } while (t1 - t0 < seconds);
    return (t1 - t0) * 1e9 / calls;
}

static void bench_getppid(double seconds, int samples) {
    /* warm-up: page in, fill caches, let a patching platform patch */
    for (int i = 0; i < 1000; i++) {
        getppid_libc();
        getppid_raw();
    }
    for (int s = 0; s < samples; s++) {
        emit("getppid_libc_ns", getppid_loop(getppid_libc, seconds));
        emit("getppid_raw_ns", getppid_loop(getppid_raw, seconds));
    }
}

/* ---- many threads on a cheap syscall (the kernel's ceiling) ---- */

/* Each worker adds its calls to its own counter (one cache line each) in
 * chunks of 100 (few enough that a slow platform's sample is not
 * quantized by them); the main thread reads the counters around a sleep. The
 * workers never read the clock: every call they make is a getppid. */
struct worker {
    _Alignas(64) _Atomic long calls;
    void (*call)(void);
};

static _Atomic int workers_stop;

static void *worker_main(void *arg) {
    struct worker *w = arg;
    while (!atomic_load_explicit(&workers_stop, memory_order_relaxed)) {
        for (int i = 0; i < 100; i++) w->call();
        atomic_fetch_add_explicit(&w->calls, 100, memory_order_relaxed);
    }
    return NULL;
}

static long workers_total(struct worker *w, int n) {
    long total = 0;
    for (int i = 0; i < n; i++) total += atomic_load(&w[i].calls);
    return total;
}

static void sleep_for(double seconds) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void threads_run(int n, void (*call)(void), const char *kind, double seconds,
                        int samples) {
    struct worker *w = aligned_alloc(64, sizeof *w * n);
    pthread_t *tids = calloc(n, sizeof *tids);
    if (!w || !tids) die("alloc");
    atomic_store(&workers_stop, 0);
    for (int i = 0; i < n; i++) {
        atomic_init(&w[i].calls, 0);
        w[i].call = call;
        errno = pthread_create(&tids[i], NULL, worker_main, &w[i]);
        if (errno) die("pthread_create");
    }
    /* warm-up: every thread started and past its first calls */
    sleep_for(seconds / 5);
    char key[64];
    snprintf(key, sizeof key, "sps_%s_t%d", kind, n);
    for (int s = 0; s < samples; s++) {
        long c0 = workers_total(w, n);
        double t0 = now();
        sleep_for(seconds);
        long c1 = workers_total(w, n);
        double t1 = now();
        emit(key, (c1 - c0) / (t1 - t0));
    }
    atomic_store(&workers_stop, 1);
    for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
    free(w);
    free(tids);
}

static void bench_threads(const char *counts, double seconds, int samples) {
    char *list = strdup(counts), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int n = atoi(tok);
        if (n < 1 || n > 1024) {
            fprintf(stderr, "workload: bad thread count %s\n", tok);
            exit(2);
        }
        threads_run(n, getppid_libc, "libc", seconds, samples);
        threads_run(n, getppid_raw, "raw", seconds, samples);
    }
    free(list);
}

/* ---- files ---- */

#define FILE_SIZE (64L << 20)

static char buf[1 << 20];

static double write_file(const char *path, size_t bs) {
    unlink(path);
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open for write");
    for (long off = 0; off < FILE_SIZE; off += bs) {
        ssize_t n = write(fd, buf, bs);
        if (n != (ssize_t)bs) die("write");
    }
    if (close(fd) < 0) die("close");
    return FILE_SIZE / (double)(1 << 20) / (now() - t0);
}

static double read_file(const char *path, size_t bs) {
    double t0 = now();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open for read");
    long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, bs);
        if (n < 0) die("read");
        if (n == 0) break;
        total += n;
    }
    close(fd);
    if (total != FILE_SIZE) {
        fprintf(stderr, "workload: read %ld bytes, expected %ld\n", total, FILE_SIZE);
        exit(1);
    }
    return FILE_SIZE / (double)(1 << 20) / (now() - t0);
}

static double open_close_loop(const char *path, double seconds) {
    long calls = 0;
    double t0 = now(), t1;
    do {
        for (int i = 0; i < 100; i++) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) die("open");
            close(fd);
        }
        calls += 100;
        t1 = now();
    } while (t1 - t0 < seconds);
    return (t1 - t0) * 1e9 / calls;
}

static double stat_loop(const char *path, double seconds) {
    struct stat st;
    long calls = 0;
    double t0 = now(), t1;
    do {
        for (int i = 0; i < 100; i++)
            if (stat(path, &st) < 0) die("stat");
        calls += 100;
        t1 = now();
    } while (t1 - t0 < seconds);
    return (t1 - t0) * 1e9 / calls;
}

static void bench_files(const char *dir, int samples, double seconds) {
    char big[4096], small[4096];
    snprintf(big, sizeof big, "%s/big", dir);
    snprintf(small, sizeof small, "%s/small", dir);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 7);
    int fd = open(small, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "x\n", 2) != 2) die("small file");
    close(fd);
    for (int s = 0; s < samples; s++) {
        emit("write_1m_mibps", write_file(big, 1 << 20));
        emit("read_1m_mibps", read_file(big, 1 << 20));
        emit("write_4k_mibps", write_file(big, 4096));
        emit("read_4k_mibps", read_file(big, 4096));
        emit("open_close_ns", open_close_loop(small, seconds));
        emit("stat_ns", stat_loop(small, seconds));
    }
    unlink(big);
    unlink(small);
}

/* ---- pipe ping-pong ---- */

static void bench_pipe(double seconds, int samples) {
    int ping[2], pong[2];
    if (pipe2(ping, O_CLOEXEC) < 0 || pipe2(pong, O_CLOEXEC) < 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    char c = 'x';
    if (pid == 0) {
        close(ping[1]);
        close(pong[0]);
        while (read(ping[0], &c, 1) == 1)
            if (write(pong[1], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    close(ping[0]);
    close(pong[1]);
    for (int i = 0; i < 100; i++)
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) die("ping-pong");
    for (int s = 0; s < samples; s++) {
        long trips = 0;
        double t0 = now(), t1;
        do {
            for (int i = 0; i < 100; i++)
                if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) die("ping-pong");
            trips += 100;
            t1 = now();
        } while (t1 - t0 < seconds);
        emit("pipe_rtt_per_s", trips / (t1 - t0));
    }
    close(ping[1]);
    int st;
    waitpid(pid, &st, 0);
}

/* ---- TCP write-write-read ---- */

static int read_full(int fd, char *buf, int n) {
    for (int got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) return -1;
        got += r;
    }
    return n;
}

static void wwr_trip(int fd) {
    char buf[100] = {0};
    if (write(fd, buf, 10) != 10 || write(fd, buf, 100) != 100 || read_full(fd, buf, 10) < 0)
        die("tcp write-write-read");
}

static void bench_tcp(double seconds, int samples) {
    int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (lst < 0 || bind(lst, (struct sockaddr *)&a, len) < 0 || listen(lst, 1) < 0 ||
        getsockname(lst, (struct sockaddr *)&a, &len) < 0)
        die("tcp listen");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        int c = accept(lst, NULL, NULL);
        char buf[100];
        while (c >= 0 && read_full(c, buf, 10) == 10 && read_full(c, buf, 100) == 100)
            if (write(c, buf, 10) != 10) _exit(1);
        _exit(0);
    }
    close(lst);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, len) < 0) die("tcp connect");
    for (int i = 0; i < 3; i++) wwr_trip(fd);
    for (int s = 0; s < samples; s++) {
        long trips = 0;
        double t0 = now(), t1;
        do {
            wwr_trip(fd);
            trips++;
            t1 = now();
        } while (t1 - t0 < seconds);
        emit("tcp_wwr_ms", (t1 - t0) * 1e3 / trips);
    }
    close(fd);
    int st;
    waitpid(pid, &st, 0);
}

/* ---- spawn ---- */

/* fork+exec+wait of argv, N times after WARMUP untimed runs, each preceded
 * (untimed) by `/bin/sh -c before` when before is not empty. */
static void run_child(char **argv, int quiet) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) dup2(null, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "workload: %s exited with status %#x\n", argv[0], st);
        exit(1);
    }
}

static void bench_spawn(const char *key, int n, int warmup, const char *before, char **argv) {
    char *sh[] = {"/bin/sh", "-c", (char *)before, NULL};
    for (int i = -warmup; i < n; i++) {
        if (before && *before) run_child(sh, 0);
        double t0 = now();
        run_child(argv, 1);
        double t1 = now();
        if (i >= 0) emit(key, (t1 - t0) * 1e3);
    }
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "getppid")) {
        bench_getppid(atof(argv[2]), atoi(argv[3]));
    } else if (argc >= 5 && !strcmp(argv[1], "files")) {
        bench_files(argv[2], atoi(argv[3]), atof(argv[4]));
    } else if (argc >= 4 && !strcmp(argv[1], "pipe")) {
        bench_pipe(atof(argv[2]), atoi(argv[3]));
    } else if (argc >= 4 && !strcmp(argv[1], "tcp")) {
        bench_tcp(atof(argv[2]), atoi(argv[3]));
    } else if (argc >= 5 && !strcmp(argv[1], "threads")) {
        bench_threads(argv[2], atof(argv[3]), atoi(argv[4]));
    } else if (argc >= 5 && !strcmp(argv[1], "spawn")) {
        bench_spawn("spawn_ms", atoi(argv[2]), atoi(argv[3]), NULL, argv + 4);
    } else if (argc >= 7 && !strcmp(argv[1], "time")) {
        bench_spawn(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], argv + 6);
    } else {
        fprintf(stderr, "usage: workload getppid|files|pipe|tcp|threads|spawn|time ... (see the source)\n");
        return 2;
    }
    return 0;
}
