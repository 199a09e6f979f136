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
echo "load in the test VM: $(cut -d' ' -f1-3 /proc/loadavg)"

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
P=$($A state vmb-l | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
# Guest RAM is the VMM's largest anonymous mapping (256 MiB without a
# memory limit); everything else resident is the VMM's own.
awk '
  /^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); cur = 0 }
  /^Size:/ { size = $2 }
  /^Rss:/ { total += $2; if (size > big) { big = size; bigrss = $2 } ; rss[NR] = $2 }
  END { printf "VMM resident: %d KiB, of which guest RAM %d KiB (a %d KiB mapping): VMM overhead %d KiB (%.1f MiB)\n", total, bigrss, big, total - bigrss, (total - bigrss) / 1024 }
' /proc/$P/smaps
grep -E '^(VmRSS|VmHWM|Threads)' /proc/$P/status | tr '\n' ' '; echo
$A delete --force vmb-l 2>/dev/null

# VM exits: a boot (the agent's self-test), a boot and a workload.
echo "atoll-vmm self-test boot:"
t=$(now)
"$W/tools/atoll-vmm" --kernel $K --initrd $I --stats 2>&1 | grep -E "exits|error" | sed 's/^/  /'
echo "  wall: $(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s (VMM start to exit)"
# (Each file open costs about 70 exits, nearly all virtio-mmio interrupt
# status reads and acks, and ~0.4 s under TCG: 2,000 of them took more
# than 10 minutes, hence 200 and a bound.)
echo "atoll-vmm boot running a syscall-heavy workload (40,000 guest syscalls, 200 file opens over virtio-fs):"
timeout -s KILL 300 "$W/tools/atoll-vmm" --kernel $K --initrd $I --stats --share "$W/first/rootfs" -- sh -c \
  'dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null; i=0; while [ $i -lt 200 ]; do cat /etc/passwd >/dev/null; i=$((i + 1)); done' 2>&1 |
  grep -E "exits|error" | sed 's/^/  /'
timeout -s KILL 300 "$W/tools/atoll-vmm" --kernel $K --initrd $I --stats --share "$W/first/rootfs" -- true 2>&1 |
  grep -E "exits|error" | sed 's/^/  the same boot running true: /'

# QEMU -M microvm booting the same kernel and initramfs (its self-test
# finds no vsock device there: the agent fails and the guest reboots,
# which ends QEMU), against atoll-vmm's self-test boot above.
if [ -x "$W/tools/qemu-system-x86_64" ]; then
  : > "$W/qemu.t"
  i=0
  while [ $i -lt "$N" ]; do
    t=$(now)
    timeout 300 "$W/tools/qemu-system-x86_64" -L "$W/tools/qemu-share" -M microvm,x-option-roms=off,isa-serial=on,rtc=off \
      -enable-kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config -display none -no-reboot \
      -serial file:"$W/qemu.console" -kernel "$W/tools/bzImage" -initrd $I \
      -append "console=ttyS0 reboot=t panic=-1 pci=off quiet atoll.selftest" </dev/null >/dev/null 2>&1
    awk -v a="$t" -v b="$(now)" 'BEGIN { print b - a }' >> "$W/qemu.t"
    i=$((i + 1))
  done
  echo "QEMU -M microvm, same kernel and initramfs, start to exit: median $(med < "$W/qemu.t") s of $N ($(tr '\n' ' ' < "$W/qemu.t")); console: $(tail -n 2 "$W/qemu.console" | tr '\n' ' ' | cut -c1-160)"
  : > "$W/vmm.t"
  i=0
  while [ $i -lt "$N" ]; do
    t=$(now); "$W/tools/atoll-vmm" --kernel $K --initrd $I >/dev/null 2>&1
    awk -v a="$t" -v b="$(now)" 'BEGIN { print b - a }' >> "$W/vmm.t"
    i=$((i + 1))
  done
  q=$(med < "$W/qemu.t"); v=$(med < "$W/vmm.t")
  echo "atoll-vmm self-test, start to exit: median $v s of $N; ratio to QEMU microvm: $(awk -v a="$v" -v b="$q" 'BEGIN { printf "%.2f", a / b }')x"
fi
echo "load in the test VM after: $(cut -d' ' -f1-3 /proc/loadavg)"
