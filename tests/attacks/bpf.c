/* eBPF: create a map and load a socket filter program. */
#include "attack.h"
#include <linux/bpf.h>

int main(void) {
    protocol_init("bpf");
    union bpf_attr m;
    memset(&m, 0, sizeof m);
    m.map_type = BPF_MAP_TYPE_ARRAY;
    m.key_size = 4;
    m.value_size = 8;
    m.max_entries = 1;
    long mf = syscall(SYS_bpf, BPF_MAP_CREATE, &m, sizeof m);
    int em = mf < 0 ? errno : 0;
    struct bpf_insn prog[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr p;
    memset(&p, 0, sizeof p);
    p.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    p.insns = (uintptr_t)prog;
    p.insn_cnt = 2;
    p.license = (uintptr_t)"GPL";
    long pf = syscall(SYS_bpf, BPF_PROG_LOAD, &p, sizeof p);
    int ep = pf < 0 ? errno : 0;
    info("map create: %s, prog load: %s", ename(em), ename(ep));
    if (mf >= 0 || pf >= 0)
        verdict("ESCAPED", "the host kernel loaded eBPF objects (map %s, program %s)", ename(em), ename(ep));
    else
        verdict("BLOCKED", "bpf refused (%s)", ename(ep));
    return 0;
}
