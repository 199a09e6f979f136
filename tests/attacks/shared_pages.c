/* The userspace level maps a file's read-only private mappings (program
 * text, read-only data) to the file's shared page cache, which every
 * process that maps the same file sees, and patches syscall sites in text.
 * Try to change what *another* process of the same file sees: write the
 * program's read-only data through syscalls that write user memory,
 * through /proc/self/mem, process_vm_writev, and after mprotect; write its
 * writable data (exec copies it from the same page cache); let the
 * kernel patch a syscall site of the program's text; then exec the same
 * file again and look at its fresh image before it runs anything. */
#include "attack.h"

static const char canary[8192] __attribute__((aligned(4096))) = "CANARY-0123456789";
/* Writable data: exec copies it from the file's page cache, which every
 * process of the file shares, into the process's own memory. */
static char wdata[8192] __attribute__((aligned(4096))) = "WDATA-0123456789";

/* glibc's static getppid: mov $110,%eax; syscall (the patchable site);
 * patched, the kernel makes it jmp *abs32 (ff 24 25) to a trampoline. */
static const unsigned char SITE[] = {0xb8, 0x6e, 0x00, 0x00, 0x00, 0x0f, 0x05};
static const unsigned char PATCHED[] = {0xff, 0x24, 0x25};

static long site_of(const unsigned char *f) {
    for (int i = 0; i < 32; i++)
        if (!memcmp(f + i, SITE, sizeof SITE) || !memcmp(f + i, PATCHED, sizeof PATCHED))
            return i;
    return -1;
}

static int check(void) {
    /* A fresh image of the same file: nothing run yet but this. */
    const unsigned char *f = (const unsigned char *)getppid;
    long at = site_of(f);
    int site_ok = at < 0 || f[at] == 0xb8;
    int canary_ok = !strcmp(canary, "CANARY-0123456789");
    int wdata_ok = !strcmp(wdata, "WDATA-0123456789");
    printf("CHECK site %s canary %s data %s\n", site_ok ? "original" : "patched",
           canary_ok ? "original" : "changed", wdata_ok ? "original" : "changed");
    return site_ok && canary_ok && wdata_ok ? 0 : 3;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "check"))
        return check();
    protocol_init("shared_pages");
    char how[512] = "";
    int fd = open(argv[0], O_RDONLY);
    /* Syscalls that write user memory, aimed at the read-only data. */
    ssize_t r = read(fd, (void *)canary, 16);
    info("read() into read-only data: %s", r < 0 ? ename(errno) : "succeeded");
    r = pread(fd, (void *)canary, 16, 0);
    info("pread() into it: %s", r < 0 ? ename(errno) : "succeeded");
    r = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)canary);
    info("clock_gettime into it: %s", r < 0 ? ename(errno) : "succeeded");
    struct iovec local = {.iov_base = "XXXX", .iov_len = 4};
    struct iovec remote = {.iov_base = (void *)canary, .iov_len = 4};
    r = syscall(SYS_process_vm_writev, getpid(), &local, 1, &remote, 1, 0);
    info("process_vm_writev into it: %s", r < 0 ? ename(errno) : "succeeded");
    int mem = open("/proc/self/mem", O_RDWR);
    if (mem >= 0) {
        r = pwrite(mem, "YYYY", 4, (off_t)(unsigned long)canary);
        info("/proc/self/mem write: %s", r < 0 ? ename(errno) : "succeeded");
    } else {
        info("/proc/self/mem: %s", ename(errno));
    }
    /* Writable data, by a store and by a syscall that writes user memory. */
    memcpy(wdata, "WWWW", 4);
    r = pread(fd, wdata + 4, 4, 0);
    info("writable data written: now %.8s", wdata);
    /* Its own copy, made writable. */
    if (mprotect((void *)canary, 4096, PROT_READ | PROT_WRITE) == 0) {
        memcpy((void *)canary, "ZZZZ", 4);
        info("mprotect and write: own copy now %.4s", canary);
    }
    /* A patched syscall site in this process's text. */
    for (int i = 0; i < 2000; i++)
        getppid();
    const unsigned char *f = (const unsigned char *)getppid;
    long at = site_of(f);
    info("getppid site in this process: %s", at < 0 ? "not found" : f[at] == 0xff ? "patched" : "original");
    /* What a new process of the same file sees. */
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        execl(argv[0], argv[0], "check", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(p, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    /* And the file itself, read again. */
    char head[4];
    pread(fd, head, 4, 0);
    int elf = !memcmp(head, "\x7f" "ELF", 4);
    info("re-exec: exit %d; file starts with ELF: %s", code, elf ? "yes" : "no");
    if (code == 3)
        strcat(how, "a new process of the same file saw the change");
    else if (code != 0)
        strcat(how, "the re-exec failed");
    if (code == 3)
        verdict("ESCAPED", "%s", how);
    else if (code != 0)
        verdict("ESCAPED", "%s", how);
    else
        verdict("BLOCKED", "writes and patches stay in the writing process's own copy; a new process of the same file sees the file");
    return 0;
}
