#!/bin/sh
# The vm level's end-to-end checks, run as root where /dev/kvm boots
# guests (inside scripts/test-vm.sh's test VM, or on such a host), with
# atoll on PATH and the bundles tests/vm/run.sh made in $1. Prints one
# line per check and timings; exits non-zero if any check failed.
W=$1
R=/run/atoll-vm-e2e
A="atoll --root $R"
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f s", b - a }'; }
HOST_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
# Waits up to 60 s for container $1 to be stopped.
wait_stopped() {
  i=0
  while [ $i -lt 300 ]; do
    $A state "$1" 2>/dev/null | grep '"status": *"stopped"' >/dev/null && return 0
    sleep 0.2; i=$((i + 1))
  done
  return 1
}
# After a failed check: container $1's state, the end of its sandbox log
# (the guest's console, the VMM's errors) and the test VM's last seccomp
# records (a VMM killed by its filter says nothing itself).
vmm_log() {
  echo "     state: $($A state "$1" 2>&1 | tr -d '\n' | tr -s ' ')"
  for f in $(find "$R" -path "*$1*" -name sandbox.log 2>/dev/null); do
    tail -n 20 "$f" | sed 's/^/     log: /'
  done
  dmesg | grep 'type=1326' | tail -n 3 | sed 's/^/     seccomp: /'
}
# Nothing of container $1 is left: state dir, cgroup, process.
gone() {
  left=""
  [ -e "$R/$1" ] || [ -e "$R/.atoll/$1" ] && left="$left state-dir"
  [ -n "$(find /sys/fs/cgroup -name "*$1*" 2>/dev/null)" ] && left="$left cgroup"
  # busybox's timeout leaves a watchdog child (its own command line) that
  # notices within a second that the command it watched has exited: give
  # processes that long to go before calling them left behind.
  i=0
  while [ $i -lt 15 ] && ps -o pid,args | grep -v grep | grep -q -- "$1"; do
    sleep 0.2; i=$((i + 1))
  done
  ps -o pid,args | grep -v grep | grep -q -- "$1" && left="$left process ($(ps -o pid,ppid,stat,args | grep -v grep | grep -- "$1" | head -3 | tr '\n' ';'))"
  grep -q "$1" /proc/mounts && left="$left mount"
  if [ -z "$left" ]; then ok "$1: delete leaves nothing behind"; else bad "$1: left behind:$left"; fi
}

# The pid of the file server process of the VMM whose pid is $1 (its
# child named atoll-fs), if any.
file_server_of() {
  for d in /proc/[0-9]*; do
    [ "$(cat "$d/comm" 2>/dev/null)" = atoll-fs ] && [ "$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)" = "$1" ] && echo "${d#/proc/}"
  done
}

echo "== atoll check"
$A check | grep -E '^(kvm|vm|shmem huge pages) '
$A check | grep -E '^vm +yes' >/dev/null && ok "check: the vm level runs here" || bad "check: the vm level does not run here"

echo "== run: status, stdio, guest kernel, writes land in the rootfs"
t=$(now)
$A --isolation vm run -b "$W/exit7" vme2e-e7 >"$W/out" 2>"$W/err"
rc=$?
echo "     run to exit: $(since "$t") (boot, run, shutdown)"
[ $rc = 7 ] && ok "exit 7 comes back as 7" || bad "exit status $rc, not 7 (stderr: $(head -c 300 "$W/err"))"
grep -q to-stdout "$W/out" && ok "stdout comes through" || bad "stdout: $(head -c 200 "$W/out")"
grep -q to-stderr "$W/err" && ok "stderr comes through" || bad "stderr: $(head -c 200 "$W/err")"
G=$(cat "$W/exit7/rootfs/boot_id" 2>/dev/null)
[ -n "$G" ] && ok "a file the container wrote is in the bundle's rootfs" || bad "no /boot_id in the bundle's rootfs"
[ -n "$G" ] && [ "$G" != "$HOST_BOOT_ID" ] && ok "it ran under a guest kernel (boot id $G, not $HOST_BOOT_ID)" || bad "boot id $G is the host's"
links=$(sed -n 's/^[0-9]*: \([^:@]*\):.*/\1/p' "$W/exit7/rootfs/links" 2>/dev/null | tr '\n' ' ')
[ "$links" = "lo " ] && grep -q "lo: <[^>]*UP" "$W/exit7/rootfs/links" && ok "without a network namespace path the guest has loopback only, up" || bad "the guest's links without a pod network: $(cat "$W/exit7/rootfs/links" 2>/dev/null | tr '\n' ';')"
$A delete vme2e-e7 2>/dev/null
gone vme2e-e7
$A --isolation vm run -b "$W/readonly" vme2e-ro >/dev/null 2>"$W/err"
rc=$?
[ $rc != 0 ] && [ ! -e "$W/readonly/rootfs/written" ] && grep -q "Read-only" "$W/err" && ok "a read-only root stays read-only in the guest" || bad "read-only root: status $rc, $(cat "$W/err")"
gone vme2e-ro

if [ -f "$W/python/config.json" ]; then
  echo "== python3 from a Debian rootfs"
  t=$(now)
  out=$($A --isolation vm run -b "$W/python" vme2e-py 2>"$W/err")
  rc=$?
  echo "     run to exit: $(since "$t")"
  [ $rc = 3 ] && echo "$out" | grep -E " 3\.[0-9]+\.[0-9]+$" >/dev/null && ok "python3 runs in the guest ($out) and its exit 3 comes back" || bad "python3: status $rc: $out $(head -c 300 "$W/err")"
  [ -n "$out" ] && [ "${out%% *}" != "$HOST_BOOT_ID" ] && ok "python3's boot id is the guest's" || bad "python3's boot id: $out"
  $A delete vme2e-py 2>/dev/null
  gone vme2e-py
fi

echo "== create, start, state, exec, kill TERM, delete"
t=$(now)
$A --isolation vm create -b "$W/long" vme2e-l1 || bad "create failed"
echo "     create: $(since "$t")"
$A state vme2e-l1 | grep '"status": *"created"' >/dev/null && ok "state: created" || bad "state after create: $($A state vme2e-l1 2>&1)"
t=$(now)
$A start vme2e-l1 || bad "start failed"
i=0; while [ ! -s "$W/long/rootfs/boot_id" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo "     start to the process's first write: $(since "$t") (boot)"
$A state vme2e-l1 | grep '"status": *"running"' >/dev/null && ok "state: running" || bad "state after start: $($A state vme2e-l1 2>&1)"
t=$(now)
out=$($A exec vme2e-l1 sh -c 'cat /proc/sys/kernel/random/boot_id; exit 5')
rc=$?
echo "     exec round trip: $(since "$t")"
[ $rc = 5 ] && ok "exec: exit 5 comes back as 5" || bad "exec status $rc"
[ -n "$out" ] && [ "$out" = "$(cat "$W/long/rootfs/boot_id")" ] && ok "exec runs in the same guest" || bad "exec's boot id '$out' is not the init's '$(cat "$W/long/rootfs/boot_id")'"
# Output the host reads late: the process has exited and the guest has
# closed its side while part of it still waits in the VMM for the host
# stream (more than the relay's pipe and socket hold, less than the
# guest's credit), past the guest's 8 s close timeout (its reset), and all
# of it, then the exit status, must come through.
n=$( ( $A exec vme2e-l1 sh -c 'head -c 400000 /dev/zero | tr "\0" x; exit 6'; echo $? > "$W/big.rc" ) | (sleep 10; wc -c | tr -d " ") )
if [ "$n" = 400000 ] && [ "$(cat "$W/big.rc")" = 6 ]; then
  ok "exec output read late: all 400000 bytes, then exit 6"
else
  bad "exec output read late: $n bytes, status $(cat "$W/big.rc")"
  vmm_log vme2e-l1
fi
# exec with a terminal: the master goes to a console socket (runc's
# protocol, as containerd's shim asks); the guest gives the process a
# terminal of its own.
"$W/recvtty" "$W/console.sock" > "$W/tty.out" 2>&1 & RT=$!
i=0; while [ ! -S "$W/console.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
$A exec -t --console-socket "$W/console.sock" vme2e-l1 sh -c 'tty; exit 3'
rc=$?
# recvtty waits for a connection: an exec that failed before making one
# would leave it (and this script) waiting for good.
i=0; while kill -0 $RT 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill $RT 2>/dev/null; wait $RT
[ $rc = 3 ] && grep -q '^/dev/pts/[0-9]' "$W/tty.out" && ok "exec with a terminal: a terminal in the guest ($(tr -d '\r' < "$W/tty.out" | tr '\n' ' ')), exit 3 comes back" || bad "exec -t: status $rc: $(head -c 300 "$W/tty.out")"
out=$($A exec -t vme2e-l1 true 2>&1 </dev/null)
rc=$?
[ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "console-socket" && ok "exec -t without a terminal or console socket: one line ($out)" || bad "exec -t without a terminal: status $rc: $out"
echo "== the VMM's confinement"
P=$($A state vme2e-l1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
n=0; open=""
for st in /proc/$P/task/*/status; do
  n=$((n + 1))
  grep -q '^Seccomp:[[:space:]]*2$' "$st" || open="$open $(sed -n 's/^Name:[[:space:]]*//p' "$st")"
done
names=$(cat /proc/$P/task/*/comm 2>/dev/null | tr '\n' ' ')
[ $n -ge 4 ] && [ -z "$open" ] && ok "every VMM thread has a seccomp filter ($n threads: $names)" || bad "VMM (pid $P) threads without a filter:${open:- none} ($n threads: $names)"
caps=$(sed -n 's/^CapEff:[[:space:]]*//p;s/^CapBnd:[[:space:]]*//p;s/^NoNewPrivs:[[:space:]]*//p' /proc/$P/status | tr '\n' ' ')
# The runtime gives the VMM CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER
# FSETID SETGID SETUID (0xdf, its bounding set) for its file server, which
# it forks first: from then on it holds none itself.
[ "$caps" = "0000000000000000 00000000000000df 1 " ] && ok "the VMM holds no capability once its file server is forked, and no_new_privs (CapEff 0, CapBnd 0xdf)" || bad "the VMM's CapEff, CapBnd, NoNewPrivs: $caps"
# Capabilities are per thread: no VMM thread holds any.
tcaps=""
for st in /proc/$P/task/*/status; do
  nm=$(sed -n 's/^Name:[[:space:]]*//p' "$st")
  cc=$(sed -n 's/^CapEff:[[:space:]]*//p;s/^CapPrm:[[:space:]]*//p' "$st" | tr '\n' ' ')
  [ "$cc" = "0000000000000000 0000000000000000 " ] || tcaps="$tcaps $nm=$cc"
done
[ -z "$tcaps" ] && ok "no VMM thread holds capabilities (vCPU, vsock, virtio-fs, main)" || bad "VMM threads' CapEff/CapPrm:$tcaps"
# The file server: a process of its own, the VMM's child, confined.
S=$(file_server_of "$P")
[ -n "$S" ] && [ "$S" != "$P" ] && ok "the file server is a process of its own (pid $S, child of the VMM $P)" || bad "no atoll-fs process under the VMM (pid $P): $(cat /proc/*/comm 2>/dev/null | sort -u | tr '\n' ' ')"
if [ -n "$S" ]; then
  sst=$(sed -n 's/^Seccomp:[[:space:]]*//p;s/^NoNewPrivs:[[:space:]]*//p;s/^CapEff:[[:space:]]*//p;s/^CapPrm:[[:space:]]*//p;s/^CapInh:[[:space:]]*//p' /proc/$S/status | tr '\n' ' ')
  open=""
  for st in /proc/$S/task/*/status; do grep -q '^Seccomp:[[:space:]]*2$' "$st" || open="$open $(sed -n 's/^Name:[[:space:]]*//p' "$st")"; done
  # (status order: CapInh CapPrm CapEff, then NoNewPrivs, Seccomp)
  [ "$sst" = "0000000000000000 00000000000000df 00000000000000df 1 2 " ] && [ -z "$open" ] && ok "the file server runs under its seccomp filter on every thread ($(ls /proc/$S/task | wc -l)), no_new_privs, CapEff/CapPrm 0xdf only" || bad "the file server's CapInh CapPrm CapEff NoNewPrivs Seccomp: $sst; threads without a filter:${open:- none}"
  fds=$(for f in /proc/$S/fd/*; do readlink "$f"; done | sort | tr '\n' ' ')
  echo "     file server's descriptors: $fds"
  echo "$fds" | grep -q -E 'kvm|tun|vsock|\.sock' && bad "the file server holds a VMM descriptor: $fds" || ok "the file server holds no /dev/kvm, VM, vCPU, tap or vsock descriptor ($(echo $fds | wc -w) descriptors)"
  # Its address space: its own, apart from guest RAM (the one shared
  # mapping); nothing of KVM's (no vCPU run area).
  shared=$(awk '$2 ~ /s$/ { print $6 }' /proc/$S/maps | sort -u | tr '\n' ' ')
  grep -q kvm /proc/$S/maps && bad "the file server maps KVM's memory: $(grep kvm /proc/$S/maps | head -2)" || { [ "$shared" = "/memfd:atoll-guest-ram " ] && ok "the file server shares only guest RAM with the VMM (shared mappings: $shared; no KVM mapping)" || bad "the file server's shared mappings: $shared"; }
fi
# A file a guest user creates through the confined file server (which
# switches its thread's uid and gid for the request) is that user's.
out=$($A exec --user 65534:65534 vme2e-l1 sh -c 'echo mine > /shared/byuser && mkdir /shared/userdir && echo user-ok' 2>&1)
town=$(stat -c '%u:%g' "$W/long/rootfs/shared/byuser" "$W/long/rootfs/shared/userdir" 2>/dev/null | tr '\n' ' ')
echo "$out" | grep -q user-ok && [ "$town" = "65534:65534 65534:65534 " ] && ok "files a guest user creates are that user's in the rootfs ($town)" || bad "as uid 65534: $out; owners: $town"
rm -rf "$W/long/rootfs/shared/byuser" "$W/long/rootfs/shared/userdir"

pids=$($A ps --format json vme2e-l1)
echo "$pids" | grep -E '^\[[0-9]+(,[0-9]+)*\]$' >/dev/null && ok "ps lists the guest's processes ($pids)" || bad "ps: $pids"
# The file server killed: the guest's file requests fail (EIO from the
# VMM), and the VMM does not hang. The container's init may die of it (a
# SIGBUS on a page of its binary it had not read yet): the VMM then exits
# with it; otherwise it still answers.
if [ -n "$S" ]; then
  kill -9 "$S"
  sleep 2
  t=$(now)
  out=$(timeout 60 $A exec vme2e-l1 cat /etc/passwd 2>&1)
  rc=$?
  [ $rc != 0 ] && [ $rc != 124 ] && ok "with its file server killed, the guest's file access fails ($(since "$t"), status $rc: $(echo "$out" | head -c 120))" || bad "after killing the file server: exec status $rc: $(echo "$out" | head -c 200)"
  if $A state vme2e-l1 | grep -q '"status": *"running"'; then
    pids=$(timeout 60 $A ps --format json vme2e-l1)
    echo "$pids" | grep -E '^\[[0-9]+(,[0-9]+)*\]$' >/dev/null && ok "the VMM runs on without its file server and answers (ps: $pids)" || bad "after killing the file server: ps: $pids"
  else
    wait_stopped vme2e-l1 && ok "the VMM ended with its container's init, which the file errors ended (no hang)" || bad "after killing the file server the container is $($A state vme2e-l1 2>&1 | grep status)"
  fi
fi
$A kill vme2e-l1 TERM 2>/dev/null
if wait_stopped vme2e-l1; then ok "kill TERM stops it (or it had stopped)"; else bad "still $($A state vme2e-l1 2>&1 | grep status) after kill TERM"; fi
$A delete vme2e-l1 || bad "delete failed"
gone vme2e-l1
[ -n "$S" ] && [ -d /proc/$S ] && bad "the file server (pid $S) outlived its VMM: $(cat /proc/$S/status | head -3 | tr '\n' ' ')" || true

echo "== kill KILL, delete --force"
$A --isolation vm run -d -b "$W/long" vme2e-l2 || bad "run -d failed"
rm -f "$W/long/rootfs/boot_id"
P2=$($A state vme2e-l2 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
# (the VMM forks its file server first thing; give it 10 s at most)
S2=""; i=0; while [ -z "$S2" ] && [ $i -lt 100 ]; do S2=$(file_server_of "$P2"); [ -n "$S2" ] || sleep 0.1; i=$((i + 1)); done
$A kill vme2e-l2 KILL
if wait_stopped vme2e-l2; then ok "kill KILL stops it"; else bad "still $($A state vme2e-l2 2>&1 | grep status) after kill KILL"; fi
$A delete vme2e-l2 || bad "delete failed"
gone vme2e-l2
[ -n "$S2" ] && [ ! -e "/proc/$S2" ] && ok "the file server (pid $S2) died with its VMM" || bad "file server of vme2e-l2: pid '${S2}' $( [ -n "$S2" ] && [ -e "/proc/$S2" ] && echo "still there: $(tr '\0' ' ' < /proc/$S2/cmdline | head -c 80)")"
# kill --all: every process of the container in the guest (its init and
# an exec'd sleeper) gets the signal from the guest agent.
rm -f "$W/long/rootfs/boot_id"
$A --isolation vm run -d -b "$W/long" vme2e-l4 || bad "run -d failed"
# (exec waits for the guest to boot by itself; its TERM trap is another
# matter: see the bundle.)
$A exec -d vme2e-l4 sleep 1000 || bad "exec -d failed"
i=0; while [ ! -s "$W/long/rootfs/boot_id" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
$A kill --all vme2e-l4 TERM
if wait_stopped vme2e-l4; then ok "kill --all TERM stops it"; else bad "still $($A state vme2e-l4 2>&1 | grep status) after kill --all TERM"; fi
$A delete vme2e-l4 || bad "delete failed"
gone vme2e-l4
$A --isolation vm run -d -b "$W/long" vme2e-l3 || bad "run -d failed"
$A delete --force vme2e-l3 || bad "delete --force failed"
gone vme2e-l3

echo "== one VM per pod"
$A --isolation vm create -b "$W/podsb" vme2e-pod && $A start vme2e-pod || bad "pod sandbox: create/start failed"
t=$(now)
# Right after the sandbox's start its guest still boots: create waits.
$A --isolation vm create -b "$W/podm1" vme2e-pm1 || bad "pod member: create failed"
echo "     member create (waits for the pod's guest): $(since "$t")"
$A state vme2e-pm1 | grep '"status": *"created"' >/dev/null && ok "member: state created" || bad "member state after create: $($A state vme2e-pm1 2>&1)"
t=$(now)
$A start vme2e-pm1 || bad "pod member: start failed"
i=0; while [ ! -s "$W/podm1/rootfs/boot_id" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo "     member start to its first write: $(since "$t")"
i=0; while [ ! -s "$W/podsb/rootfs/boot_id" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
SB=$(cat "$W/podsb/rootfs/boot_id" 2>/dev/null); M1=$(cat "$W/podm1/rootfs/boot_id" 2>/dev/null)
[ -n "$M1" ] && [ "$M1" = "$SB" ] && [ "$M1" != "$HOST_BOOT_ID" ] && ok "two containers of one pod share one guest (boot id $M1)" || bad "sandbox's guest $SB, member's $M1"
PS=$($A state vme2e-pod | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
PM=$($A state vme2e-pm1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
ks=$(ls -l /proc/$PS/fd 2>/dev/null | grep -c /dev/kvm); km=$(ls -l /proc/$PM/fd 2>/dev/null | grep -c /dev/kvm)
[ "$ks" -ge 1 ] && [ "$km" = 0 ] && ok "only the sandbox's init is a VMM (the member's init $PM is its proxy)" || bad "/dev/kvm held by the sandbox's init: $ks, by the member's: $km"
$A state vme2e-pm1 | grep '"status": *"running"' >/dev/null && ok "member: state running" || bad "member state after start: $($A state vme2e-pm1 2>&1)"
out=$($A exec vme2e-pm1 sh -c 'cat /proc/sys/kernel/random/boot_id; grep ^Seccomp: /proc/self/status; ls -A /; exit 4')
rc=$?
[ $rc = 4 ] && echo "$out" | grep -qx "$SB" && ok "exec into a member: same guest, exit 4 comes back" || bad "exec into the member: status $rc: $out"
echo "$out" | grep -q "^Seccomp:[[:space:]]*2" && ok "an exec'd process runs under the default seccomp filter in the guest" || bad "exec'd process's seccomp: $(echo "$out" | grep Seccomp)"
echo "$out" | grep -qx boot_id && ! echo "$out" | grep -q atoll-pod && ok "the member's root is its own rootfs" || bad "the member's root: $(echo "$out" | tr '\n' ' ')"
out=$($A exec vme2e-pod ls -A /.atoll-pod 2>&1)
[ -z "$out" ] && ok "the sandbox container does not see the members' rootfs" || bad "the sandbox sees /.atoll-pod: $out"
p1=$($A ps --format json vme2e-pm1); p0=$($A ps --format json vme2e-pod)
echo "$p1" | grep -E '^\[[0-9]+(,[0-9]+)*\]$' >/dev/null && [ "$p1" != "$p0" ] && ok "ps of a member lists its own processes ($p1; the sandbox's: $p0)" || bad "ps: member $p1, sandbox $p0"
$A --isolation vm run -b "$W/podm2" vme2e-pm2 >"$W/out" 2>"$W/err"
rc=$?
[ $rc = 9 ] && grep -q m2-out "$W/out" && grep -q m2-err "$W/err" && ok "a member run in the foreground: exit 9 and both streams come back" || bad "member run: status $rc: $(cat "$W/out" "$W/err" | head -c 300)"
grep -q mkdir-refused "$W/out" && [ ! -e "$W/podm2/rootfs/m2dir" ] && ok "a member's own seccomp profile holds in the guest" || bad "the member's profile did not refuse mkdir: $(cat "$W/out")"
mt=$(awk '{ print $2 }' "$W/podsb/rootfs/meminfo" 2>/dev/null)
[ -n "$mt" ] && [ "$mt" -gt $((300 << 10)) ] && [ "$mt" -le $((384 << 10)) ] && ok "the pod's VM is sized from its CRI sandbox-memory (448 MiB less the VMM's 64: MemTotal $mt kB)" || bad "the pod's guest MemTotal: $(cat "$W/podsb/rootfs/meminfo" 2>/dev/null)"
$A --isolation vm run -b "$W/podm4" vme2e-pm4 >"$W/out" 2>"$W/err"
rc=$?
grep -q '^0::/atoll-vme2e-pm4$' "$W/out" && { [ $rc = 137 ] || grep -q '^dd [1-9][0-9]*$' "$W/out"; } && ok "a member's own memory limit holds in the pod's guest (its cgroup there; 56 MiB over a 32 MiB limit: $(grep '^dd ' "$W/out" || echo "killed, status $rc"))" || bad "a member over its 32 MiB limit: status $rc: $(cat "$W/out" "$W/err" | tr '\n' ' ' | head -c 300)"
grep -q -e raised-own-limit -e left-own-cgroup "$W/out" && bad "a member changed its guest cgroup: $(grep -e raised -e left "$W/out" | tr '\n' ' ')" || ok "a member can neither raise its memory limit nor leave its group in the guest (its cgroup mount is read-only)"
$A exec vme2e-pod true && ok "the pod's VM runs on after a member's OOM kill" || bad "exec into the sandbox after a member's OOM kill failed"
$A delete vme2e-pm4 2>/dev/null
gone vme2e-pm4
$A delete vme2e-pm2 2>/dev/null
gone vme2e-pm2
$A kill vme2e-pm1 TERM
if wait_stopped vme2e-pm1; then ok "kill TERM stops a member"; else bad "member still $($A state vme2e-pm1 2>&1 | grep status) after kill TERM"; fi
$A delete vme2e-pm1 || bad "member delete failed"
gone vme2e-pm1
[ -x "$W/podm1/rootfs/bin/busybox" ] || [ -e "$W/podm1/rootfs/bin/sh" ] && ok "the member's rootfs is intact after its delete" || bad "the member's rootfs lost files"
out=$($A exec vme2e-pod cat /boot_id 2>&1)
[ "$out" = "$SB" ] && ok "the pod's VM runs on after a member's delete" || bad "exec into the sandbox after the member's delete: $out"
out=$($A --isolation vm create -b "$W/podbad" vme2e-pbad 2>&1)
rc=$?
[ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "does not exist" && ok "a member of a missing sandbox: one line ($out)" || bad "member of a missing sandbox: status $rc: $out"
gone vme2e-pbad
# A sandbox created but not started has no VM yet.
$A --isolation vm create -b "$W/podsb2" vme2e-pod2 || bad "second sandbox: create failed"
out=$($A --isolation vm create -b "$W/podm3" vme2e-pm3 2>&1)
rc=$?
[ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "not running" && ok "a member of a sandbox not started: one line ($out)" || bad "member of a created sandbox: status $rc: $out"
gone vme2e-pm3
$A delete vme2e-pod2 || bad "delete of a created sandbox failed"
gone vme2e-pod2
$A kill vme2e-pod KILL
wait_stopped vme2e-pod || bad "the sandbox still runs after kill KILL"
$A delete vme2e-pod || bad "sandbox delete failed"
gone vme2e-pod
[ -z "$(ls -A "$R/.atoll/.pods" 2>/dev/null)" ] && ok "deleting the sandbox removes the pod's directory" || bad "left in $R/.atoll/.pods: $(ls -A "$R/.atoll/.pods")"

sh "$W/net.sh" "$W" || fail=1
sh "$W/cri.sh" "$W" || fail=1

echo "== the attack battery at the vm level"
# The test VM is the host here: its secret outside the rootfs, a process
# whose pid the attacks know, a loopback listener, a tag in its kernel
# log, its sysctls and modules as they were.
mkdir -p /tmp/atoll-vm-attack
SECRET=host-secret-$$-$(cut -c1-8 /proc/sys/kernel/random/uuid)
echo "$SECRET" > /tmp/atoll-vm-attack/secret
sleep 1000 & VICTIM=$!
nc -l -p 47123 > "$W/nc.out" 2>/dev/null & NC=$!
sleep 0.3; kill -0 $NC 2>/dev/null || NC=""
TAG=atoll-vm-attack-kmsg-$$
echo "$TAG" > /dev/kmsg
dev=$(stat -c %d /)
DISK="$(( (dev >> 8) & 0xfff )):$(( (dev & 0xff) | ((dev >> 12) & 0xfff00) ))"
before="$(cat /proc/sys/kernel/core_pattern /proc/sys/kernel/randomize_va_space) $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
sed -i "s/@SECRET@/$SECRET/; s/@PID@/$VICTIM/; s/@KMSG@/$TAG/; s/@DISK@/$DISK/" "$W/attacks/config.json"
t=$(now)
$A --isolation vm run -b "$W/attacks" vme2e-atk >"$W/atk.out" 2>&1
rc=$?
echo "     attacks: $(since "$t")"
sed -n 's/^ATTACK /     guest: /p' "$W/atk.out"
after="$(cat /proc/sys/kernel/core_pattern /proc/sys/kernel/randomize_va_space) $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
seen=""
grep -q "$SECRET" "$W/atk.out" && seen="$seen the-secret-was-read"
[ "$before" = "$after" ] || seen="$seen sysctls-or-modules-changed"
kill -0 $VICTIM 2>/dev/null && grep -q '^TracerPid:[[:space:]]*0$' /proc/$VICTIM/status || seen="$seen victim-touched"
[ -z "$NC" ] || { kill -0 $NC 2>/dev/null && [ ! -s "$W/nc.out" ]; } || seen="$seen loopback-reached"
grep -q atoll-vm-attack-added /proc/keys && seen="$seen key-added"
[ -e /tmp/atoll-vm-attack/planted ] || [ -e /tmp/atoll-vm-attack/planted-rel ] && seen="$seen write-through-link-reached-the-host"
[ "$(cat /tmp/atoll-vm-attack/secret)" = "$SECRET" ] || seen="$seen secret-changed"
n=$(grep -c '^ATTACK ' "$W/atk.out")
want=$(( $(sed -n 's/.*"ATTACKS=\([^"]*\)".*/\1/p' "$W/attacks/config.json" | wc -w) + 1 ))
[ -z "$seen" ] && ok "the attacks ($n verdicts) left the test VM unaffected" || bad "the host saw:$seen"
[ "$n" = "$want" ] || bad "$n attack verdicts, not $want: $(grep -v '^ATTACK \|^INFO ' "$W/atk.out" | head -c 400)"
# No seccomp profile in the bundle: the guest agent applies the default
# one, so what reaches the guest kernel's riskier interfaces is refused.
for a in keyctl io_uring bpf userfaultfd kernel_module; do
  grep -q "^ATTACK $a BLOCKED" "$W/atk.out" && ok "default guest seccomp profile: $a refused" || bad "$a in the guest: $(grep "^ATTACK $a " "$W/atk.out")"
done
grep -q '^ATTACK virtiofs_symlink BLOCKED' "$W/atk.out" && ok "virtio-fs symlink attacks stayed inside the rootfs" || bad "virtio-fs: $(grep virtiofs_symlink "$W/atk.out")"
[ -f "$W/attacks/rootfs/tmp/atoll-vm-attack/planted" ] && ok "a write through a guest-made link landed in the rootfs" || bad "no planted file in the rootfs"
# What the container did to its files as root (fs-attacks.sh) went
# through the confined file server: chown, chmod, links, rename, times,
# truncate, a FIFO; a device node was refused (the VMM has no CAP_MKNOD).
D=$W/attacks/rootfs/fsops/d
own=$(stat -c '%u:%g %a %s' "$D/f" 2>/dev/null)
grep -q '^fsops ok' "$W/atk.out" && grep -q '^mknod refused' "$W/atk.out" && [ "$own" = "65534:65534 640 100" ] &&
  [ "$(readlink "$D/sym")" = f ] && [ -p "$D/fifo" ] && [ -f "$D/hard2" ] && [ ! -e "$D/cdev" ] &&
  ok "file operations through the confined file server land in the rootfs; a device node is refused" ||
  bad "file operations: $(grep '^fsops\|^mknod' "$W/atk.out" | tr '\n' ' ') f: $own"
grep "^INFO\|^ATTACK" "$W/atk.out" > "$W/atk.log"
kill $VICTIM $NC 2>/dev/null
$A delete vme2e-atk 2>/dev/null
gone vme2e-atk

echo "== bad input"
out=$(ATOLL_VM_ASSETS=/nonexistent $A --isolation vm run -b "$W/exit7" vme2e-b1 2>&1)
rc=$?
[ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "missing" && ok "missing assets: one line ($out)" || bad "missing assets: status $rc: $out"
gone vme2e-b1
# A truncated kernel image (and the real initramfs).
mkdir -p "$W/badkernel"
head -c 4000000 /usr/local/lib/atoll/vm/vmlinux > "$W/badkernel/vmlinux"
cp /usr/local/lib/atoll/vm/initramfs.cpio "$W/badkernel/"
out=$(ATOLL_VM_ASSETS=$W/badkernel $A --isolation vm run -b "$W/exit7" vme2e-b2 2>&1)
rc=$?
[ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "truncated" && ok "truncated kernel: one line ($out)" || bad "truncated kernel: status $rc: $out"
gone vme2e-b2
out=$($A --isolation vm run -b "$W/small" vme2e-b3 2>&1)
rc=$?
[ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "too small to boot" && ok "memory limit too small: one line ($out)" || bad "small memory limit: status $rc: $out"
gone vme2e-b3

# A seccomp violation by a VMM thread is logged by the kernel (an audit
# record, type 1326) even when the VMM died of it.
if dmesg | grep 'type=1326' >/dev/null; then
  bad "seccomp violations: $(dmesg | grep 'type=1326' | sed 's/.*comm=\("[^"]*"\).*syscall=\([0-9]*\).*/\1 syscall \2/' | sort | uniq -c | tr '\n' ';')"
else
  ok "no seccomp violation in the test VM's kernel log"
fi

[ $fail = 0 ] && echo "all vm-level checks passed" || echo "some vm-level checks FAILED"
exit $fail
