#!/bin/sh
# The vm level's network, end to end (run by in-vm.sh, or alone by
# `tests/vm/run.sh net`): a container at --isolation vm in a network
# namespace held by a bind mount (as CNI's are), whose eth0 is one end of
# a veth pair and the other end (vpeer, 10.209.0.1 and fd09:209::1) is
# on this host's side. The guest's eth0 must get the veth's MAC, IPv4 and
# IPv6 addresses, MTU and default routes; reach a server on the host side (ping, HTTP, a bulk
# transfer) and be reached by the host side; delete must leave no tap and
# no redirect behind. The timings printed are of software emulation
# (QEMU TCG inside the test VM), with the load at the time.
W=$1
R=/run/atoll-vm-net
A="atoll --root $R"
NS=/run/netns/vme2e-net
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
inns() { nsenter --net=$NS "$@"; }

echo "== the pod's network: virtio-net on a tap joined to the pod's veth"
mkdir -p /run/netns "$W/www"
: > $NS
unshare --net=$NS true || bad "making the network namespace $NS"
ip link add vpeer type veth
PEER=$(ip -o link | sed -n 's/^[0-9]*: \([^@:]*\)@vpeer:.*/\1/p')
nsenter --net=$NS sleep 1000 & HOLD=$!
sleep 0.2
ip link set "$PEER" netns $HOLD
kill $HOLD
inns ip link set "$PEER" name eth0
inns ip link set eth0 mtu 1400
inns ip addr add 10.209.0.2/24 dev eth0
inns ip link set eth0 up
inns ip link set lo up
inns ip route add default via 10.209.0.1
# (no duplicate address detection on either side: the addresses are
# usable at once)
inns sh -c 'echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad'
echo 0 > /proc/sys/net/ipv6/conf/vpeer/accept_dad
inns ip -6 addr add fd09:209::2/64 dev eth0
inns ip -6 route add default via fd09:209::1
ip addr add 10.209.0.1/24 dev vpeer
ip -6 addr add fd09:209::1/64 dev vpeer
ip link set vpeer up
VMAC=$(inns ip -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
# The host side's server: a small file and 16 MiB of random bytes.
echo host-hello > "$W/www/hello"
dd if=/dev/urandom of="$W/www/big" bs=65536 count=256 2>/dev/null
BIGSUM=$(md5sum < "$W/www/big" | cut -d' ' -f1)
httpd -p 10.209.0.1:8080 -h "$W/www"

# The container (tests/vm/run.sh's bundle `net`, joining $NS): reports
# what its guest's eth0 is, serves a small and a 16 MiB file from a tmpfs,
# and runs until signalled.
t=$(now)
# (bounded, with what every atoll process was doing if it is not back:
# one run in a few dozen once hung here with nothing on the console)
ATOLL_VMM_TRACE=boot timeout -s KILL 300 $A --debug --log "$W/net-run.log" --isolation vm run -d -b "$W/net" vme2e-net 2>"$W/net-run.err"
rc=$?
if [ $rc != 0 ]; then
  bad "run -d in $NS: status $rc after $(since "$t") s: $(tail -n 3 "$W/net-run.err" | tr '\n' ' ')"
  echo "     its log:"; tail -n 40 "$W/net-run.log" | sed 's/^/       /'
  for p in $(pgrep -f atoll); do
    echo "     pid $p ($(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-80)): $(sed -n 's/^State:[[:space:]]*//p' /proc/$p/status)"
    for tk in /proc/$p/task/*; do echo "       task ${tk##*/} $(cat $tk/comm) $(cut -d' ' -f3 $tk/stat) wchan $(cat $tk/wchan 2>/dev/null): $(tr '\n' ' ' < $tk/stack 2>/dev/null | cut -c1-300)"; done
  done
  # (the checks below need the container: the rest is cleanup)
  timeout -s KILL 60 $A delete -f vme2e-net
  h=$(ps -o pid,args | grep "httpd -p 10.209.0.1" | grep -v grep | awk '{print $1}')
  [ -n "$h" ] && kill $h
  umount $NS 2>/dev/null; rm -f $NS
  ip link del vpeer 2>/dev/null
  echo "some network checks FAILED"
  exit 1
fi
i=0; while [ ! -s "$W/net/rootfs/net.ready" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
echo "     run to the guest's network up: $(since "$t") s"
addr=$(cat "$W/net/rootfs/net.addr" 2>/dev/null)
echo "$addr" | grep -q "inet 10.209.0.2/24" && ok "the guest's eth0 has the pod's address ($(echo "$addr" | grep -o 'inet [0-9./]*'))" || bad "the guest's eth0: $addr"
gmac=$(cat "$W/net/rootfs/net.mac" 2>/dev/null)
[ -n "$VMAC" ] && [ "$gmac" = "$VMAC" ] && ok "the guest's eth0 has the veth's MAC ($gmac)" || bad "guest MAC $gmac, veth's $VMAC"
[ "$(cat "$W/net/rootfs/net.mtu" 2>/dev/null)" = 1400 ] && ok "the guest's eth0 has the veth's MTU (1400)" || bad "guest MTU $(cat "$W/net/rootfs/net.mtu" 2>/dev/null)"
grep -q "default via 10.209.0.1" "$W/net/rootfs/net.route" 2>/dev/null && ok "the guest has the pod's default route" || bad "guest routes: $(cat "$W/net/rootfs/net.route" 2>/dev/null | tr '\n' ';')"
addr6=$(cat "$W/net/rootfs/net.addr6" 2>/dev/null)
echo "$addr6" | grep -q "inet6 fd09:209::2/64" && grep -q "default via fd09:209::1 dev eth0" "$W/net/rootfs/net.route6" 2>/dev/null &&
  ok "the guest's eth0 has the pod's IPv6 address and default route ($(echo "$addr6" | grep -o 'inet6 [0-9a-f:/]*'))" ||
  bad "the guest's IPv6: $addr6; routes: $(cat "$W/net/rootfs/net.route6" 2>/dev/null | tr '\n' ';')"
links=$(inns ip -o link | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p' | tr '\n' ' ')
echo "$links" | grep -q tap0_atoll && ok "the tap is in the pod's namespace ($links)" || bad "links in the pod's namespace: $links"
ip -o link | grep -q tap0_atoll && bad "a tap in the host's namespace"
# The VMM holds the tap's descriptor, its virtio-net thread is confined
# like the others, and it has no capability (to configure networks or
# any other: its file server, a process of its own, took the ones the
# runtime gave it).
P=$($A state vme2e-net | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
names=$(cat /proc/$P/task/*/comm 2>/dev/null | tr '\n' ' ')
open=""
for st in /proc/$P/task/*/status; do grep -q '^Seccomp:[[:space:]]*2$' "$st" || open="$open $(sed -n 's/^Name:[[:space:]]*//p' "$st")"; done
caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/$P/status)
echo "$names" | grep -q virtio-net && [ -z "$open" ] && ls -l /proc/$P/fd | grep -q /dev/net/tun && [ "$caps" = 0000000000000000 ] &&
  ok "the VMM holds the tap, its virtio-net thread has a seccomp filter, no capability ($names; CapEff $caps)" ||
  bad "the VMM (pid $P): threads $names, unconfined:${open:- none}, CapEff $caps, tap: $(ls -l /proc/$P/fd | grep -c /dev/net/tun)"
echo "     load: $(cat /proc/loadavg)"
out=$($A exec vme2e-net ping -c 5 -W 10 10.209.0.1 2>&1)
echo "$out" | grep -q " 0% packet loss" && ok "the guest pings the host side ($(echo "$out" | grep round-trip))" || bad "ping from the guest: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
out=$($A exec vme2e-net wget -q -O - http://10.209.0.1:8080/hello 2>&1)
[ "$out" = host-hello ] && ok "the guest reaches a server on the host side over TCP" || bad "wget from the guest: $out"
t=$(now)
out=$($A exec vme2e-net sh -c 'wget -q -O - http://10.209.0.1:8080/big | md5sum' 2>&1)
s=$(since "$t")
[ "${out%% *}" = "$BIGSUM" ] && ok "16 MiB host side -> guest intact ($s s including the exec: $(awk -v s="$s" 'BEGIN { printf "%.2f", 16 / s }') MiB/s)" || bad "bulk to the guest: $out"
out=$(timeout 60 wget -q -O - http://10.209.0.2:8081/hello 2>&1)
[ "$out" = guest-hello ] && ok "the host side reaches a server in the guest at the pod's address" || bad "wget from the host side: $out"
out=$($A exec vme2e-net ping -6 -c 3 -W 10 fd09:209::1 2>&1)
echo "$out" | grep -q " 0% packet loss" && ok "the guest pings the host side over IPv6" || bad "ping -6 from the guest: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
out=$(timeout 60 wget -q -O - "http://[fd09:209::2]:8081/hello" 2>&1)
[ "$out" = guest-hello ] && ok "the host side reaches a server in the guest at the pod's IPv6 address" || bad "wget -6 from the host side: $out"
t=$(now)
n=0; while [ $n -lt 20 ]; do timeout 60 wget -q -O /dev/null http://10.209.0.2:8081/hello || break; n=$((n + 1)); done
s=$(since "$t")
[ $n = 20 ] && ok "20 sequential HTTP requests host side -> guest ($(awk -v s="$s" 'BEGIN { printf "%.1f", s * 1000 / 20 }') ms each: connect, request, answer, close)" || bad "sequential requests: $n of 20"
GSUM=$($A exec vme2e-net sh -c 'md5sum < /dev/shm/www/big' | cut -d' ' -f1)
t=$(now)
out=$(timeout 120 wget -q -O - http://10.209.0.2:8081/big | md5sum)
s=$(since "$t")
[ -n "$GSUM" ] && [ "${out%% *}" = "$GSUM" ] && ok "16 MiB guest -> host side intact ($s s: $(awk -v s="$s" 'BEGIN { printf "%.2f", 16 / s }') MiB/s)" || bad "bulk from the guest: $out (guest's $GSUM)"
echo "     load: $(cat /proc/loadavg)"
$A kill vme2e-net KILL
i=0; while [ $i -lt 300 ]; do $A state vme2e-net 2>/dev/null | grep -q '"stopped"' && break; sleep 0.2; i=$((i + 1)); done
$A delete vme2e-net || bad "delete failed"
[ -e "$R/vme2e-net" ] || [ -e "$R/.atoll/vme2e-net" ] && bad "vme2e-net: state left"
links=$(inns ip -o link | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p' | tr '\n' ' ')
echo "$links" | grep -q tap0_atoll && bad "a tap left after delete: $links" || ok "delete leaves no tap ($links)"
f=$(inns tc filter show dev eth0 parent ffff: 2>&1)
q=$(inns tc qdisc show dev eth0 2>&1)
echo "$q" | grep -q ingress && bad "an ingress qdisc left on the veth: $q $f" || ok "delete leaves no tc qdisc or filter on the veth ($(echo "$q" | head -n1))"
# Without the redirect the namespace's own stack answers again.
ping -c 1 -W 10 10.209.0.2 >/dev/null 2>&1 && ok "the veth is the namespace's own again (its stack answers a ping)" || bad "no answer from 10.209.0.2 after delete"

echo "== bad input: a network namespace that does not exist"
sed "s|$NS|/run/netns/vme2e-nosuch|" "$W/net/config.json" > "$W/net/config.bad" && mv "$W/net/config.json" "$W/net/config.good" && mv "$W/net/config.bad" "$W/net/config.json"
out=$($A --isolation vm run -b "$W/net" vme2e-nsbad 2>&1)
rc=$?
mv "$W/net/config.good" "$W/net/config.json"
[ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "network namespace /run/netns/vme2e-nosuch" && ok "a missing network namespace: one line ($out)" || bad "a missing network namespace: status $rc: $out"
[ -e "$R/vme2e-nsbad" ] || [ -e "$R/.atoll/vme2e-nsbad" ] && bad "vme2e-nsbad: state left"
inns ip -o link | grep -q tap0_atoll && bad "a tap left by the failed create"
h=$(ps -o pid,args | grep "httpd -p 10.209.0.1" | grep -v grep | awk '{print $1}')
[ -n "$h" ] && kill $h
umount $NS 2>/dev/null; rm -f $NS
ip link del vpeer 2>/dev/null
[ $fail = 0 ] && echo "network checks passed" || echo "some network checks FAILED"
exit $fail
