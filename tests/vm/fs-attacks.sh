#!/bin/sh
# Runs in a vm-level container (tests/vm/in-vm.sh's attack step): the
# attack programs of tests/attacks named in $ATTACKS, one after the other,
# then symlink attacks against the virtio-fs server that shares the
# bundle's rootfs. The test VM (the host here) keeps a secret at
# $ATTACK_MARKER, outside the rootfs; links to it were planted in the
# rootfs before the guest booted (/link-abs, /link-rel, /link-dir). Every
# line is for in-vm.sh, which checks the host side itself.
# The file server at work: what a container does to its files as root.
fsops() {
  rm -rf /fsops && mkdir -p /fsops/d && cd /fsops/d && echo data > f && chmod 640 f &&
    chown 65534:65534 f && ln -s f sym && ln f hard && mv hard hard2 && touch f &&
    truncate -s 100 f && mkfifo fifo && dd if=/dev/zero of=big bs=64k count=16 2>/dev/null &&
    sync && ls -la >/dev/null && rm big && cd /
}
if fsops; then echo "fsops ok"; else echo "fsops failed"; fi
if mknod /fsops/d/cdev c 1 3 2>/dev/null; then echo "mknod worked"; else echo "mknod refused"; fi
cd /

for a in $ATTACKS; do
  timeout -s KILL 20 "/attacks/$a" </dev/null 2>&1 || true
done

S=$ATTACK_SECRET
reached=""
# Reads $1 and notes it if the host's secret came back.
try() { cat "$1" 2>/dev/null | grep -q "$S" && reached="$reached $1"; }
# Planted links, followed by the guest kernel inside its own root.
try /link-abs
try /link-rel
try /link-dir/secret
# `..` walks beyond the root, by path and by chdir.
try /../../../../../tmp/atoll-vm-attack/secret
try /tmp/../../../../../../tmp/atoll-vm-attack/secret
(cd / && for i in 1 2 3 4 5 6 7 8 9 10; do cd ..; done && cat tmp/atoll-vm-attack/secret 2>/dev/null) |
  grep -q "$S" && reached="$reached cd-..-x10"
# Links the guest makes and writes through: the write lands in the
# rootfs (in-vm.sh checks the test VM's /tmp is untouched).
mkdir -p /tmp/atoll-vm-attack
ln -s /tmp/atoll-vm-attack /guest-link 2>/dev/null
echo planted > /guest-link/planted
ln -s ../../../../../../../tmp/atoll-vm-attack/planted-rel /guest-rel 2>/dev/null
echo planted > /guest-rel
# A swap race: one loop turns /race/d from a directory into a link to
# / and back while another opens through it.
mkdir -p /race
(i=0; while [ $i -lt 60 ]; do
   rm -rf /race/d; mkdir /race/d
   rm -rf /race/d; ln -s / /race/d
   i=$((i + 1))
 done) &
n=0
while [ $n -lt 120 ]; do
  try /race/d/tmp/atoll-vm-attack/secret
  try /race/d/link-abs
  n=$((n + 1))
done
wait
if [ -z "$reached" ]; then
  echo "ATTACK virtiofs_symlink BLOCKED planted absolute, relative and directory links, ../ walks and a directory/link swap race ($n rounds) stayed inside the rootfs"
else
  echo "ATTACK virtiofs_symlink ESCAPED the host's secret came back through:$reached"
fi
echo "fs-attacks done"
