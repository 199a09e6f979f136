#!/bin/sh
# bench/vm.sh's measurements, run inside the test VM (busybox sh, atoll
# on PATH, the vm assets installed). $1: the shared directory, $2: rounds.
W=$1
N=${2:-3}
A="atoll --root /run/atoll-vm-bench"
K=/usr/local/lib/atoll/vm/vmlinux
I=/usr/local/lib/atoll/vm/initramfs.cpio
now() { cut -d' ' -f1 /proc/uptime; }
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else printf "-" }'; }
# `KEY VALUE` lines for bench/report.py (bench/run.sh's vm section).
R=$W/results
: > "$R"
res() { echo "$1 $2" >> "$R"; }
echo "load in the test VM: $(cut -d' ' -f1-3 /proc/loadavg)"
res load_before "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
res rounds "$N"

# Boot to first output, and to exit.
: > "$W/first.t"; : > "$W/exit.t"
i=0
while [ $i -lt "$N" ]; do
  t=$(now)
  $A --isolation vm run -b "$W/first" vmb-f$i 2>/dev/null | { read -r l; echo "$(now) $l"; cat >/dev/null; } > "$W/line"
  e=$(now)
  awk -v a="$t" '{ print $1 - a }' "$W/line" >> "$W/first.t"
  awk -v a="$t" -v b="$e" 'BEGIN { print b - a }' >> "$W/exit.t"
  grep -q first "$W/line" || echo "round $i: no first line: $(cat "$W/line")"
  $A delete --force vmb-f$i 2>/dev/null
  i=$((i + 1))
done
echo "boot to first output (atoll run, vm level): median $(med < "$W/first.t") s of $N ($(tr '\n' ' ' < "$W/first.t"))"
echo "run to exit: median $(med < "$W/exit.t") s"
res first_output_s "$(med < "$W/first.t")"
res first_output_all "$(tr '\n' ' ' < "$W/first.t" | sed 's/ $//; s/ /,/g')"
res run_exit_s "$(med < "$W/exit.t")"

# Exec round trip and the VMM's memory, in one running guest.
$A --isolation vm run -d -b "$W/long" vmb-l >/dev/null 2>&1
$A exec vmb-l true >/dev/null 2>&1   # waits for the guest to boot
: > "$W/exec.t"
i=0
while [ $i -lt "$N" ]; do
  t=$(now); $A exec vmb-l true; e=$(now)
  awk -v a="$t" -v b="$e" 'BEGIN { print b - a }' >> "$W/exec.t"
  i=$((i + 1))
done
echo "exec round trip: median $(med < "$W/exec.t") s of $N ($(tr '\n' ' ' < "$W/exec.t"))"
res exec_s "$(med < "$W/exec.t")"
P=$($A state vmb-l | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
# Guest RAM is the VMM's largest mapping (a memfd, 256 MiB without a
# memory limit); everything else resident is the VMM's own: its RSS less
# the guest pages touched, and the PSS of the other mappings (shared
# libraries' pages divided among the processes that map them).
awk -v R="$R" '
  /^[0-9a-f]+-[0-9a-f]+ / { n++ }
  /^Size:/ { size[n] = $2; if ($2 > big) { big = $2; bi = n } }
  /^Rss:/ { rss[n] = $2; total += $2 }
  /^Pss:/ { pss[n] = $2; ptotal += $2 }
  END {
    printf "VMM resident: %d KiB, of which guest RAM %d KiB (a %d KiB mapping): VMM overhead %d KiB (%.1f MiB), PSS beyond guest RAM %d KiB\n", total, rss[bi], big, total - rss[bi], (total - rss[bi]) / 1024, ptotal - pss[bi]
    printf "vmm_rss_kib %d\nguest_rss_kib %d\nguest_mapping_kib %d\nvmm_overhead_kib %d\nvmm_overhead_pss_kib %d\n", total, rss[bi], big, total - rss[bi], ptotal - pss[bi] >> R
  }
' /proc/$P/smaps
grep -E '^(VmRSS|VmHWM|Threads)' /proc/$P/status | tr '\n' ' '; echo
# The file server is a process of its own (the VMM's child, `atoll-fs`):
# its memory beyond the guest RAM it maps adds to the VMM's overhead.
S=""
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = atoll-fs ] && [ "$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)" = "$P" ] && S=${d#/proc/}
done
[ -n "$S" ] && awk -v R="$R" '
  /^[0-9a-f]+-[0-9a-f]+ / { ram = ($0 ~ /memfd:atoll-guest-ram/) }
  /^Rss:/ { if (!ram) rss += $2 }
  /^Pss:/ { if (!ram) pss += $2 }
  END {
    printf "file server resident beyond guest RAM: %d KiB (PSS %d KiB)\n", rss, pss
    printf "fs_server_rss_kib %d\nfs_server_pss_kib %d\n", rss, pss >> R
  }
' /proc/$S/smaps
res vmm_threads "$(sed -n 's/^Threads:[[:space:]]*//p' /proc/$P/status)"
$A delete --force vmb-l 2>/dev/null

# VM exits: a boot (the agent's self-test), a boot and a workload.
# exits KEY: the counts of atoll-vmm --stats's last line ("... exits N (io
# A, mmio B), VMM RSS K KiB") as KEY, KEY_io, KEY_mmio.
exits() {
  tee "$W/stats" | grep -E "exits|error" | sed "s/^/  $2/"
  sed -n 's/.*total \([0-9.]*\)s, exits \([0-9]*\) (io \([0-9]*\), mmio \([0-9]*\)).*/\2 \3 \4 \1/p' "$W/stats" |
    tail -n 1 | { read -r e io mmio total || exit 0; res "$1" "$e"; res "$1_io" "$io"; res "$1_mmio" "$mmio"; res "$1_total_s" "$total"; }
  # (with a command: when the agent first answered on vsock)
  sed -n 's/^agent reachable after \([0-9.]*\)s.*/\1/p' "$W/stats" | tail -n 1 |
    { read -r a && res "$1_agent_s" "$a"; true; }
}
echo "atoll-vmm self-test boot:"
t=$(now)
"$W/tools/atoll-vmm" --kernel $K --initrd $I --stats 2>&1 | exits exits_boot
echo "  wall: $(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s (VMM start to exit)"
# (Each file open costs about 70 exits, nearly all virtio-mmio interrupt
# status reads and acks, and ~0.4 s under TCG: 2,000 of them took more
# than 10 minutes, hence 200 and a bound.)
echo "atoll-vmm boot running a syscall-heavy workload (40,000 guest syscalls, 200 file opens over virtio-fs):"
timeout -s KILL 300 "$W/tools/atoll-vmm" --kernel $K --initrd $I --stats --share "$W/first/rootfs" -- sh -c \
  'dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null; i=0; while [ $i -lt 200 ]; do cat /etc/passwd >/dev/null; i=$((i + 1)); done' 2>&1 |
  exits exits_workload
timeout -s KILL 300 "$W/tools/atoll-vmm" --kernel $K --initrd $I --stats --share "$W/first/rootfs" -- true 2>&1 |
  exits exits_true "the same boot running true: "

# QEMU -M microvm booting the same kernel and initramfs, with the same
# kernel command line as atoll's guests (atoll_vmm::BASE_CMDLINE, from
# `atoll-vmm --base-cmdline`), to /init: the agent's first line on the
# console in self-test mode ("atoll-agent: init"), timed from QEMU's
# start, against atoll run's first output above. QEMU takes the same vmlinux (its PVH entry note; no firmware, no
# decompression) and falls back to the bzImage it came from when it
# cannot. The self-test then finds no vsock device: the agent fails and
# the guest reboots, which ends QEMU.
# qemu_boot KERNEL: one boot; appends to qemu.init.t and qemu.t.
qemu_boot() {
  t=$(now)
  rm -f "$W/qemu.init"
  timeout 300 "$W/tools/qemu-system-x86_64" -L "$W/tools/qemu-share" -M microvm,x-option-roms=off,isa-serial=on,rtc=off \
    -enable-kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config -display none -no-reboot \
    -serial stdio -kernel "$1" -initrd $I \
    -append "$BASE quiet atoll.selftest" </dev/null 2>"$W/qemu.err" |
    while read -r l; do
      case $l in *"atoll-agent: init"*) [ -f "$W/qemu.init" ] || now > "$W/qemu.init" ;; esac
      echo "$l"
    done > "$W/qemu.console"
  e=$(now)
  [ -f "$W/qemu.init" ] || return 1
  awk -v a="$t" '{ print $1 - a }' "$W/qemu.init" >> "$W/qemu.init.t"
  awk -v a="$t" -v b="$e" 'BEGIN { print b - a }' >> "$W/qemu.t"
}
if [ -x "$W/tools/qemu-system-x86_64" ]; then
  BASE=$("$W/tools/atoll-vmm" --base-cmdline)
  : > "$W/qemu.t"; : > "$W/qemu.init.t"
  qk=$K; qkind=vmlinux
  if ! qemu_boot "$qk"; then
    echo "QEMU did not reach /init with the vmlinux ($(tail -n 2 "$W/qemu.console" "$W/qemu.err" | tr '\n' ' ' | cut -c1-200)): the bzImage instead"
    qk=$W/tools/bzImage; qkind=bzImage
    qemu_boot "$qk" || echo "QEMU did not reach /init with the bzImage either: $(tail -n 3 "$W/qemu.console" "$W/qemu.err" | tr '\n' ' ' | cut -c1-300)"
  fi
  i=1
  while [ $i -lt "$N" ]; do
    qemu_boot "$qk" || echo "QEMU round $i: no /init line"
    i=$((i + 1))
  done
  res qemu_kernel "$qkind"
  res qemu_init_s "$(med < "$W/qemu.init.t")"
  res qemu_init_all "$(tr '\n' ' ' < "$W/qemu.init.t" | sed 's/ $//; s/ /,/g')"
  res qemu_exit_s "$(med < "$W/qemu.t")"
  echo "QEMU -M microvm ($qkind), same kernel and initramfs, start to /init: median $(med < "$W/qemu.init.t") s of $N ($(tr '\n' ' ' < "$W/qemu.init.t")), to exit: median $(med < "$W/qemu.t") s"
  : > "$W/vmm.t"
  i=0
  while [ $i -lt "$N" ]; do
    t=$(now); "$W/tools/atoll-vmm" --kernel $K --initrd $I >/dev/null 2>&1
    awk -v a="$t" -v b="$(now)" 'BEGIN { print b - a }' >> "$W/vmm.t"
    i=$((i + 1))
  done
  q=$(med < "$W/qemu.t"); v=$(med < "$W/vmm.t")
  res vmm_selftest_s "$v"
  echo "atoll-vmm self-test, start to exit: median $v s of $N; ratio to QEMU microvm start to exit: $(awk -v a="$v" -v b="$q" 'BEGIN { printf "%.2f", a / b }')x"
  f=$(med < "$W/first.t"); qi=$(med < "$W/qemu.init.t")
  echo "atoll run to first output / QEMU microvm to /init: $(awk -v a="$f" -v b="$qi" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }')x (target: at most 0.5x)"
else
  res qemu_kernel none
fi
echo "on a host with hardware KVM the targets are Firecracker's (guest init within 125 ms, VMM overhead under 5 MiB)"
echo "load in the test VM after: $(cut -d' ' -f1-3 /proc/loadavg)"
res load_after "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
# The results travel back on stdout (the shared directory is a copy).
sed 's/^/vm-result /' "$R"
