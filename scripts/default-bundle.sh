#!/usr/bin/env bash
# Builds the embedded default image: a bundle whose rootfs is Debian's
# busybox-static with its applets linked, and a config.json from `atoll spec`.
# usage: default-bundle.sh ATOLL_BINARY BUNDLE_DIR [ARGS...]
set -euo pipefail
atoll=$1; bundle=$2; shift 2
rootfs=$bundle/rootfs
if [ ! -x "$rootfs/bin/busybox" ]; then
  mkdir -p "$rootfs"/{bin,dev,proc,sys,etc,tmp,root,var}
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
fi
rm -f "$bundle/config.json"
"$atoll" spec --bundle "$bundle"
args_json=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")
python3 - "$bundle/config.json" "$args_json" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(path))
c["process"]["terminal"] = False
if args:
    c["process"]["args"] = args
c["hostname"] = "atoll"
json.dump(c, open(path, "w"), indent=2)
PY
