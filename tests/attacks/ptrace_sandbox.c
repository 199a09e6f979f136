/* ptrace inside the sandbox (the application kernel's own, between its
 * tasks) used against the machinery: attach to every pid (the stub
 * processes and the kernel have none in the sandbox), read and write the
 * stub's pages through a traced child (they are not the workload's), poke
 * a breakpoint into a shared library's code and look for it from a fresh
 * process (the file's pages must not change), give a tracee registers the
 * host would refuse (code segment, a base above user space, the trap
 * flag) or a jump into the stub's code, single-step a tracee through
 * syscalls. Processes may die; the kernel must serve everyone else. */
#include "attack.h"
#include <sys/ptrace.h>
#include <sys/user.h>

static void stopped_child(void *arg) {
    (void)arg;
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    for (;;) getppid();
}

static pid_t traced(void) {
    pid_t p = fork();
    if (p == 0) {
        stopped_child(NULL);
        _exit(0);
    }
    int st;
    /* WUNTRACED: where ptrace is refused the child is merely stopped. */
    waitpid(p, &st, WUNTRACED);
    return p;
}

/* A fresh image of this program calls getppid: a breakpoint a tracer
 * poked into another process's copy must not be in the file. */
static void fresh_getppid(void *arg) {
    (void)arg;
    execl("/proc/self/exe", "attack", "probe", (char *)NULL);
    _exit(120);
}

static void finish(pid_t p) {
    kill(p, SIGKILL);
    waitpid(p, NULL, __WALL);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "probe")) {
        getppid();
        _exit(0);
    }
    protocol_init("ptrace_sandbox");
    int escaped = 0;
    char what[512] = "";
#define ESC(...) do { escaped++; snprintf(what + strlen(what), sizeof what - strlen(what), __VA_ARGS__); } while (0)

    /* 1. Every pid: only our own children are traceable. */
    int attached = 0;
    for (int pid = 1; pid < 4096; pid++) {
        if (pid == getpid()) continue;
        if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0) {
            attached++;
            info("attached to pid %d", pid);
            waitpid(pid, NULL, __WALL);
            ptrace(PTRACE_DETACH, pid, 0, 0);
        }
    }
    info("pids attachable: %d (none exist but ours)", attached);
    if (attached) ESC("attached to %d pids; ", attached);

    /* 2. The stub's pages through a tracee. */
    pid_t c = traced();
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, c, (void *)STUB_BASE, 0);
    int peek_err = errno;
    info("PEEKDATA of the stub code: %s", peek_err ? ename(peek_err) : "read");
    if (!peek_err) ESC("read the stub's code (%lx); ", v);
    int pokes = 0;
    for (unsigned long a = STUB_BASE; a < STUB_BASE + 5 * 4096; a += 4096)
        if (ptrace(PTRACE_POKEDATA, c, (void *)a, 0xcccccccccccccccc) == 0) pokes++;
    info("POKEDATA into the stub's pages: %d of 5 written", pokes);
    if (pokes) ESC("wrote %d stub pages; ", pokes);

    /* 2b. /proc/PID/mem: no process but our children opens, no other
     * user opens ours, and neither a tracee's file nor our own reaches
     * the stub's pages. */
    int mem_opens = 0;
    for (int pid = 1; pid < 4096; pid++) {
        if (pid == getpid() || pid == c) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        int fd = open(path, O_RDWR);
        if (fd >= 0) {
            mem_opens++;
            info("opened %s", path);
            close(fd);
        }
    }
    info("other processes' /proc/PID/mem opened: %d", mem_opens);
    if (mem_opens) ESC("opened %d other processes' memory; ", mem_opens);
    /* A process of another user reads ours (root's): refused as Linux
     * refuses it (PTRACE_MODE_ATTACH: a different uid, no CAP_SYS_PTRACE). */
    int up[2];
    pipe(up);
    pid_t nobody = fork();
    if (nobody == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", getppid());
        int ok = setgid(65534) == 0 && setuid(65534) == 0;
        int fd = ok ? open(path, O_RDONLY) : -1;
        char res = !ok ? 's' : fd >= 0 ? 'o' : 'r';
        write(up[1], &res, 1);
        _exit(0);
    }
    char got = '?';
    read(up[0], &got, 1);
    waitpid(nobody, NULL, 0);
    info("another user opens our /proc/PID/mem: %s",
         got == 'o' ? "opened" : got == 'r' ? "refused" : got == 's' ? "could not change user" : "?");
    if (got == 'o') ESC("another user opened our memory; ");
    /* Our own child, as root too, while we are not dumpable (a process
     * holding secrets, or one that changed credentials): refused (the
     * dumpable check of PTRACE_MODE_ATTACH; Yama's scope as well). */
    prctl(PR_SET_DUMPABLE, 0);
    pid_t kid = fork();
    if (kid == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", getppid());
        int fd = open(path, O_RDONLY);
        _exit(fd >= 0 ? 0 : 1);
    }
    int kst = 0;
    waitpid(kid, &kst, 0);
    prctl(PR_SET_DUMPABLE, 1);
    int kid_opened = WIFEXITED(kst) && WEXITSTATUS(kst) == 0;
    info("our child opens our /proc/PID/mem while we are not dumpable: %s",
         kid_opened ? "opened" : "refused");
    if (kid_opened) ESC("a child opened a non-dumpable parent's memory; ");
    char mpath[64];
    snprintf(mpath, sizeof mpath, "/proc/%d/mem", c);
    const char *mems[2] = {mpath, "/proc/self/mem"};
    for (int i = 0; i < 2; i++) {
        int fd = open(mems[i], O_RDWR);
        if (fd < 0) {
            info("open %s: %s", mems[i], ename(errno));
            continue;
        }
        unsigned long buf[4] = {0xcccccccccccccccc, 0xcccccccccccccccc, 0xcccccccccccccccc, 0xcccccccccccccccc};
        ssize_t rd = pread(fd, buf, sizeof buf, (off_t)STUB_BASE);
        int rerr = errno;
        ssize_t wr = pwrite(fd, buf, sizeof buf, (off_t)STUB_BASE);
        int werr = errno;
        info("%s at the stub's code: read %s, write %s", mems[i], rd >= 0 ? "done" : ename(rerr),
             wr >= 0 ? "done" : ename(werr));
        if (rd > 0) ESC("read the stub's code through %s; ", mems[i]);
        if (wr > 0) ESC("wrote the stub's code through %s; ", mems[i]);
        close(fd);
    }

    /* 3. A breakpoint in the program code: the tracee gets its own copy. */
    unsigned char *code = (unsigned char *)getppid;
    unsigned char before = *code;
    long r = ptrace(PTRACE_POKETEXT, c, code, 0xccL | (*(long *)code & ~0xffL));
    info("POKETEXT into getppid code: %s", r == 0 ? "written (copy-on-write)" : ename(errno));
    int st = in_child(fresh_getppid, NULL);
    info("a fresh image calling getppid: %s", status_text(st));
    if (*code != before) ESC("our own libc code changed; ");
    if (!(WIFEXITED(st))) ESC("another process hit the breakpoint; ");

    /* 4. Registers the host would refuse, and a jump into the stub. */
    struct user_regs_struct regs, bad;
    if (ptrace(PTRACE_GETREGS, c, 0, &regs) != 0) {
        info("GETREGS: %s", ename(errno));
        finish(c);
        goto done;
    }
    bad = regs;
    bad.cs = 0x10;
    r = ptrace(PTRACE_SETREGS, c, 0, &bad);
    info("SETREGS with a kernel code segment: %s", r == 0 ? "accepted" : ename(errno));
    if (r == 0) ESC("kernel cs accepted; ");
    bad = regs;
    bad.fs_base = 0xffff880000000000UL;
    r = ptrace(PTRACE_SETREGS, c, 0, &bad);
    info("SETREGS with a kernel fs base: %s", r == 0 ? "accepted" : ename(errno));
    if (r == 0) ESC("kernel fs base accepted; ");
    bad = regs;
    bad.eflags |= 0x100 | 0x3000; /* TF, IOPL 3 */
    ptrace(PTRACE_SETREGS, c, 0, &bad);
    memset(&bad, 0, sizeof bad);
    ptrace(PTRACE_GETREGS, c, 0, &bad);
    info("eflags after asking for TF and IOPL 3: %#llx", (unsigned long long)bad.eflags);
    if (bad.eflags & (0x100 | 0x3000)) ESC("trap flag or IOPL set; ");
    bad = regs;
    bad.rip = STUB_BASE;
    ptrace(PTRACE_SETREGS, c, 0, &bad);
    ptrace(PTRACE_CONT, c, 0, 0);
    int cst = 0;
    waitpid(c, &cst, __WALL);
    if (WIFSTOPPED(cst)) {
        info("the tracee jumped into the stub: stopped by %d", WSTOPSIG(cst));
        finish(c);
    } else {
        info("the tracee jumped into the stub: %s", status_text(cst));
    }

    /* 5. Single steps through syscalls, the fast path's sites among them
     * (their return to user mode is where the trap flag would land in the
     * stub): no stop may be at a stub address, and the tracee's work must
     * come out right. */
    pid_t s = fork();
    if (s == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        int n = 0;
        for (int i = 0; i < 64; i++) n += getppid() > 0;
        _exit(n == 64 ? 42 : 1);
    }
    int sst = 0;
    waitpid(s, &sst, WUNTRACED);
    long steps = 0, traps = 0, in_stub = 0;
    for (;;) {
        if (ptrace(PTRACE_SINGLESTEP, s, 0, 0) != 0) {
            info("SINGLESTEP: %s", ename(errno));
            finish(s);
            sst = 0;
            break;
        }
        waitpid(s, &sst, __WALL);
        if (!WIFSTOPPED(sst)) break;
        steps++;
        if (WSTOPSIG(sst) == SIGTRAP) traps++;
        struct user_regs_struct sr;
        if (ptrace(PTRACE_GETREGS, s, 0, &sr) == 0 && sr.rip >= STUB_BASE) in_stub++;
        if (steps > 1000000) {
            finish(s);
            break;
        }
    }
    info("single steps: %ld stops, %ld SIGTRAP, %ld at a stub address; the tracee: %s", steps,
         traps, in_stub, steps ? status_text(sst) : "not stepped");
    if (in_stub) ESC("a single step stopped in the stub's code; ");
    if (steps && !(WIFEXITED(sst) && WEXITSTATUS(sst) == 42)) ESC("a stepped tracee went wrong; ");
done:
    if (!kernel_alive()) ESC("the kernel stopped serving; ");

    if (escaped)
        verdict("ESCAPED", "%s", what);
    else if (peek_err == EPERM)
        verdict("BLOCKED", "ptrace is refused (EPERM)");
    else
        verdict("BLOCKED", "no pid but our children is traceable, the stub's pages are not the "
                           "tracee's (%s), a code poke stays in the tracee, refused registers "
                           "(EIO) and a jump into the stub only hurt the tracee",
                ename(peek_err));
    return 0;
}
