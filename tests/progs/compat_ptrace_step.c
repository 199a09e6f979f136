// ptrace as gVisor's ptrace_test and wait_test use it beyond the basics
// of compat_ptrace.c: PTRACE_SINGLESTEP (one instruction at a time, a
// syscall instruction reports at its exit, the FPU state kept), an exec
// from a non-leader thread under PTRACE_O_TRACEEXIT (the leader's exit
// stop comes first and the exec waits for it), SIGKILL ending an exec
// stop in an exit stop (but not the exit stop of an exiting process),
// and a traced child waited for with __WCLONE. One line per
// behaviour, no pids printed; compared with the host kernel by
// crates/atoll/tests/userspace_compat.rs.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

// Four instructions to step through: nop, nop, getpid by syscall, and a
// jump back to the start.
extern char step_code[], step_nop2[], step_mov[], step_sys[], step_after[];
__asm__(".text\n"
        ".globl step_code\nstep_code:\n nop\n"
        ".globl step_nop2\nstep_nop2:\n nop\n"
        ".globl step_mov\nstep_mov:\n mov $39, %eax\n"
        ".globl step_sys\nstep_sys:\n syscall\n"
        ".globl step_after\nstep_after:\n jmp step_code\n");

// A function that is one `mov $nr,%eax; syscall` site (getpid), called
// a few times first: the userspace level then patches it (a jump to a
// trampoline), and stepping it must still be two steps.
extern char site_code[], site_sys[], site_after[];
long site_code_fn(void);
__asm__(".text\n"
        ".globl site_code\n.globl site_code_fn\nsite_code:\nsite_code_fn:\n mov $39, %eax\n"
        ".globl site_sys\nsite_sys:\n syscall\n"
        ".globl site_after\nsite_after:\n ret\n");

// A signal handler: a step into it stops at its first instruction.
extern char handler_code[], handler_nop2[];
void handler_code_fn(int);
__asm__(".text\n"
        ".globl handler_code\n.globl handler_code_fn\nhandler_code:\nhandler_code_fn:\n nop\n"
        ".globl handler_nop2\nhandler_nop2:\n nop\n ret\n");

static const char *st(int s) {
    static char buf[64];
    if (WIFEXITED(s))
        snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(s));
    else if (WIFSIGNALED(s))
        snprintf(buf, sizeof buf, "killed by %d", WTERMSIG(s));
    else if (WIFSTOPPED(s))
        snprintf(buf, sizeof buf, "stopped by %d event %d", WSTOPSIG(s), s >> 16);
    else
        snprintf(buf, sizeof buf, "status %#x", s);
    return buf;
}

static void on_alarm(int s) {
    (void)s;
    printf("TIMEOUT\n");
    fflush(stdout);
    _exit(1);
}

// A child that asks to be traced, stops itself, then runs `body`.
static pid_t traced_child(void (*body)(void)) {
    pid_t p = fork();
    if (p == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(100);
        raise(SIGSTOP);
        body();
        _exit(0);
    }
    int s;
    waitpid(p, &s, 0);
    return p;
}

static void spin_body(void) {
    // Something live in the vector registers while the tracer steps.
    __asm__ volatile("movq %0, %%xmm7" ::"r"(0x1122334455667788ULL) : "xmm7");
    for (;;) {
    }
}

static void step_once(pid_t c, int n, char *want) {
    int s;
    ptrace(PTRACE_SINGLESTEP, c, 0, 0);
    waitpid(c, &s, 0);
    siginfo_t si = {0};
    ptrace(PTRACE_GETSIGINFO, c, 0, &si);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("step %d: %s, si_code %d, at the next instruction %s\n", n, st(s), si.si_code,
           r.rip == (unsigned long)want ? "yes" : "no");
}

static void single_step(void) {
    pid_t c = traced_child(spin_body);
    struct user_fpregs_struct before, after;
    ptrace(PTRACE_GETFPREGS, c, 0, &before);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, c, 0, &r);
    r.rip = (unsigned long)step_code;
    ptrace(PTRACE_SETREGS, c, 0, &r);
    step_once(c, 1, step_nop2);
    ptrace(PTRACE_GETFPREGS, c, 0, &after);
    printf("FPU state kept across a step: %s\n",
           memcmp(before.xmm_space, after.xmm_space, sizeof before.xmm_space) == 0 ? "yes" : "no");
    step_once(c, 2, step_mov);
    step_once(c, 3, step_sys);
    step_once(c, 4, step_after);
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("stepped getpid returned the child's pid: %s\n", (pid_t)r.rax == c ? "yes" : "no");
    printf("trap flag seen by the tracer: %s\n", r.eflags & 0x100 ? "yes" : "no");
    step_once(c, 5, step_code);
    // Resumed normally it runs on (the trap flag went with the step).
    int s;
    ptrace(PTRACE_CONT, c, 0, 0);
    usleep(100000);
    printf("after PTRACE_CONT: %s\n", waitpid(c, &s, WNOHANG) == 0 ? "running" : st(s));
    kill(c, SIGKILL);
    waitpid(c, &s, 0);
    printf("stepped child: %s\n", st(s));
}

// PTRACE_SYSEMU_SINGLESTEP: one instruction at a time, and a syscall
// instruction stops at its entry, is not run, and reports no step of its
// own (the next resume steps the instruction after it).
static void sysemu_step_once(pid_t c, int n, char *want) {
    int s;
    ptrace(32 /* PTRACE_SYSEMU_SINGLESTEP */, c, 0, 0);
    waitpid(c, &s, 0);
    siginfo_t si = {0};
    ptrace(PTRACE_GETSIGINFO, c, 0, &si);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("sysemu step %d: %s, si_code %d, at the next instruction %s, orig_rax %lld\n", n, st(s),
           si.si_code, r.rip == (unsigned long)want ? "yes" : "no", (long long)r.orig_rax);
}

static void sysemu_single_step(void) {
    pid_t c = traced_child(spin_body);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, c, 0, &r);
    r.rip = (unsigned long)step_code;
    ptrace(PTRACE_SETREGS, c, 0, &r);
    sysemu_step_once(c, 1, step_nop2);
    sysemu_step_once(c, 2, step_mov);
    sysemu_step_once(c, 3, step_sys);
    sysemu_step_once(c, 4, step_after);
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("sysemu stop: rax %lld\n", (long long)r.rax);
    r.rax = 4242;  // the tracer's result for the skipped syscall
    ptrace(PTRACE_SETREGS, c, 0, &r);
    sysemu_step_once(c, 5, step_code);
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("emulated result kept: %s\n", r.rax == 4242 ? "yes" : "no");
    int s;
    kill(c, SIGKILL);
    waitpid(c, &s, 0);
    printf("sysemu-stepped child: %s\n", st(s));
}

// Stepping a patched syscall site, then into a signal handler.
static void step_site_and_handler(void) {
    pid_t c = traced_child(spin_body);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, c, 0, &r);
    r.rip = (unsigned long)site_code;
    r.rax = 0;
    ptrace(PTRACE_SETREGS, c, 0, &r);
    step_once(c, 11, site_sys);
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("site step 1 loaded the number: %s\n", r.rax == 39 ? "yes" : "no");
    step_once(c, 12, site_after);
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("site step 2 made the syscall: %s\n", (pid_t)r.rax == c ? "yes" : "no");
    // Into a handler: SIGUSR1 delivered by the step itself.
    int s;
    ptrace(PTRACE_SINGLESTEP, c, 0, SIGUSR1);
    waitpid(c, &s, 0);
    siginfo_t si = {0};
    ptrace(PTRACE_GETSIGINFO, c, 0, &si);
    ptrace(PTRACE_GETREGS, c, 0, &r);
    printf("step into a handler: %s, si_code %d, at its first instruction %s\n", st(s), si.si_code,
           r.rip == (unsigned long)handler_code ? "yes" : "no");
    step_once(c, 13, handler_nop2);
    kill(c, SIGKILL);
    waitpid(c, &s, 0);
    printf("site-stepped child: %s\n", st(s));
}

static void *exec_thread(void *a) {
    (void)a;
    char *argv[] = {"/proc/self/exe", "exec-child", 0};
    execve(argv[0], argv, 0);
    _exit(101);
}

static void exec_body(void) {
    pthread_t t;
    pthread_create(&t, 0, exec_thread, 0);
    pthread_join(t, 0);
    _exit(102);
}

static void exec_from_thread(void) {
    pid_t c = traced_child(exec_body);
    int s;
    unsigned long msg = 0;
    ptrace(PTRACE_SETOPTIONS, c, 0,
           PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("clone event: %s\n", st(s));
    ptrace(PTRACE_GETEVENTMSG, c, 0, &msg);
    pid_t th = (pid_t)msg;
    waitpid(th, &s, __WALL);
    printf("new thread: %s\n", st(s));
    ptrace(PTRACE_CONT, c, 0, 0);
    ptrace(PTRACE_CONT, th, 0, 0);
    waitpid(c, &s, 0);
    printf("leader during the exec: %s\n", st(s));
    ptrace(PTRACE_GETEVENTMSG, c, 0, &msg);
    printf("leader's exit message: %s\n", st((int)msg));
    printf("exec still waiting: %s\n", waitpid(th, &s, __WALL | WNOHANG) == 0 ? "yes" : "no");
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("after the leader went: %s\n", st(s));
    ptrace(PTRACE_GETEVENTMSG, c, 0, &msg);
    printf("exec event message is the old thread id: %s\n", (pid_t)msg == th ? "yes" : "no");
    kill(c, SIGKILL);
    waitpid(c, &s, 0);
    printf("SIGKILL at the exec stop: %s\n", st(s));
    ptrace(PTRACE_GETEVENTMSG, c, 0, &msg);
    printf("its exit message: %s\n", st((int)msg));
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("exec'd child: %s\n", st(s));
}

static void exit3_body(void) { _exit(3); }

static void kill_in_exit_stop(void) {
    pid_t c = traced_child(exit3_body);
    int s;
    ptrace(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("exit stop: %s\n", st(s));
    // The process is exiting already: SIGKILL changes nothing (Linux
    // drops signals to a group in exit); the tracer lets it go.
    printf("SIGKILL in the exit stop: %s\n", kill(c, SIGKILL) == 0 ? "ok" : strerror(errno));
    usleep(100000);
    printf("after it: %s\n", waitpid(c, &s, WNOHANG) == 0 ? "still stopped" : st(s));
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &s, 0);
    printf("continued: %s\n", st(s));
}

static void wclone_of_a_tracee(void) {
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(100);
        _exit(0);
    }
    close(p[1]);
    char b;
    read(p[0], &b, 1);
    close(p[0]);
    int s;
    pid_t w = wait4(c, &s, __WCLONE, 0);
    printf("__WCLONE wait of a traced child: %s\n", w == c ? st(s) : strerror(errno));
    if (w != c) waitpid(c, &s, 0);
    printf("children left: %s\n", waitpid(-1, &s, WNOHANG) < 0 && errno == ECHILD ? "none" : "some");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0) _exit(0);
    setvbuf(stdout, 0, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    // The same call site made a few times first: the userspace level then
    // takes it by its fast path, whose return the steps must go through.
    for (int i = 0; i < 3; i++) raise(SIGWINCH);
    signal(SIGUSR1, handler_code_fn);
    for (int i = 0; i < 3; i++) site_code_fn();
    single_step();
    sysemu_single_step();
    step_site_and_handler();
    exec_from_thread();
    kill_in_exit_stop();
    wclone_of_a_tracee();
    return 0;
}
