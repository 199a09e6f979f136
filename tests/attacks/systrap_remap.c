/* Unmap, remap or unprotect the systrap stub's code and pages through the
 * kernel's memory syscalls (munmap, mmap MAP_FIXED, mremap onto it,
 * mprotect, madvise), then check the stub's code is unchanged and still
 * serves syscalls. */
#include "attack.h"

int main(void) {
    protocol_init("systrap_remap");
    if (!stub_syscall_insn()) {
        verdict("HARMLESS", "no systrap stub");
        return 0;
    }
    unsigned char before[256];
    memcpy(before, (void *)STUB_BASE, sizeof before);
    int done = 0;
    char how[512] = "";
#define TRY(name, expr)                                                     \
    do {                                                                    \
        long r_ = (long)(expr);                                             \
        int e_ = errno;                                                     \
        info("%s: %s", name, r_ == -1 || r_ == (long)MAP_FAILED ? ename(e_) : "succeeded"); \
        if (!(r_ == -1 || r_ == (long)MAP_FAILED)) { done++; strcat(how, name); strcat(how, "; "); } \
    } while (0)
    TRY("munmap", munmap((void *)STUB_BASE, STUB_CODE_SIZE));
    TRY("mmap fixed", mmap((void *)STUB_BASE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    TRY("mprotect rw", mprotect((void *)STUB_BASE, 0x1000, PROT_READ | PROT_WRITE));
    TRY("madvise dontneed", madvise((void *)STUB_BASE, 0x1000, MADV_DONTNEED));
    void *mine = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TRY("mremap onto it", mremap(mine, 0x1000, 0x1000, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)STUB_BASE));
    TRY("mremap it away", mremap((void *)STUB_BASE, 0x1000, 0x1000, MREMAP_MAYMOVE));
    TRY("munmap the slots", munmap((void *)(STUB_BASE + 0x100000), 0x10000));
    TRY("mmap over the slots", mmap((void *)(STUB_BASE + 0x100000), 0x1000, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    int same = !memcmp(before, (void *)STUB_BASE, sizeof before);
    long p1 = getppid(), p2 = syscall(SYS_getppid);
    int alive = kernel_alive();
    info("stub code unchanged: %s; getppid %ld/%ld", same ? "yes" : "no", p1, p2);
    if (done)
        verdict("ESCAPED", "the kernel changed the stub's mappings: %s", how);
    else if (!same || !alive)
        verdict("ESCAPED", "the stub's code changed or the kernel stopped serving");
    else
        verdict("BLOCKED", "every change to the stub's pages refused (beyond the workload's address space)");
    return 0;
}
