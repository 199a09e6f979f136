//! The rootfs overlay of the userspace level (`dev.atoll.overlay:
//! root:memory`, `--overlay`, the config's `overlay`): the container's
//! changes to its rootfs go to a layer in the sandbox's memory. What the
//! container sees is what Linux gives (the same script run natively on a
//! copy of the same files prints the same), the bundle's rootfs is
//! unchanged afterwards, the layer counts against the memory limit
//! (ENOSPC when full, as tmpfs), bad values are refused in one line.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use atoll_testkit::{Bundle, BundleBuilder};
use common::*;

const OVERLAY: &str = "dev.atoll.overlay";

/// The files the scripts work on, put in the bundle's rootfs by the host.
fn populate(root: &Path) {
    let d = root.join("data");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::create_dir_all(d.join("dir/inner")).unwrap();
    std::fs::write(d.join("file"), "lower\n").unwrap();
    std::fs::write(d.join("keep"), "keep\n").unwrap();
    std::fs::write(d.join("gone"), "gone\n").unwrap();
    std::fs::write(d.join("sub/x"), "x\n").unwrap();
    std::fs::write(d.join("dir/a"), "a\n").unwrap();
    std::fs::write(d.join("dir/inner/b"), "b\n").unwrap();
    std::fs::write(d.join("victim"), "victim\n").unwrap();
}

/// Everything under `root`/data as the host sees it: path, type, mode,
/// size, link count, content.
fn host_view(root: &Path) -> Vec<String> {
    fn walk(p: &Path, rel: &str, out: &mut Vec<String>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        let content = if m.is_file() {
            String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned()
        } else {
            String::new()
        };
        out.push(format!(
            "{rel} mode={:o} size={} nlink={} {content:?}",
            m.mode(),
            if m.is_dir() { 0 } else { m.size() },
            if m.is_dir() { 0 } else { m.nlink() }
        ));
        if m.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            for n in names {
                walk(&p.join(&n), &format!("{rel}/{n}"), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("data"), "data", &mut out);
    out
}

/// Changes of every kind, and what the container sees after each.
const SCRIPT: &str = r#"
cd /data
echo upper >> file; echo "file=$(cat file | tr '\n' ' ')"
echo new > created; echo "created=$(cat created)"
rm gone; [ -e gone ] || echo gone-gone
mv created renamed && echo "renamed=$(cat renamed)"
mv renamed victim && echo "victim=$(cat victim)"
ln victim victim2 && echo "links=$(stat -c %h victim) $(stat -c %h victim2)"
chmod 600 file; echo "mode=$(stat -c %a file)"
chown 12:34 keep; echo "owner=$(stat -c %u:%g keep)"
i1=$(stat -c %i keep); touch keep; [ "$i1" = "$(stat -c %i keep)" ] && echo ino-kept
: > keep; echo "keep-size=$(stat -c %s keep)"
rm -r dir && mkdir dir && echo "dir-now=$(ls -A dir | wc -l)"
mkdir newdir && echo in > newdir/f && rm newdir/f && rmdir newdir && echo rmdir-ok
mv sub sub2 && echo "moved=$(cat sub2/x)"; [ -e sub ] || echo sub-gone
ln -s file sym && echo "sym=$(readlink sym) $(cat sym | head -1)"
echo "list=$(ls -a | tr '\n' ' ')"
echo "find=$(find . | sort | tr '\n' ' ')"
echo "dev=$(head -c 3 /dev/zero | wc -c) proc=$(grep -c . /proc/self/status | grep -c .)"
"#;

fn bundle_with(annotations: &[(&str, &str)]) -> Bundle {
    let mut b: BundleBuilder = busybox().sh(SCRIPT);
    for (k, v) in annotations {
        b = b.annotation(k, v);
    }
    let b = b.build();
    populate(&b.rootfs);
    b
}

#[test]
fn changes_stay_in_the_overlay_and_read_as_linux_gives_them() {
    changes_stay_in_the_overlay(&[(OVERLAY, "root:memory")]);
}

/// The same through the gofer (no direct access): its view of the rootfs
/// includes the container's own mounts (/proc, /dev, /sys, each a root
/// numbered like the others), which must stay distinct objects under the
/// overlay for the kernel's mounts to land where they belong.
#[test]
fn changes_stay_in_the_overlay_through_the_gofer() {
    changes_stay_in_the_overlay(&[(OVERLAY, "root:memory"), ("dev.atoll.directfs", "false")]);
}

fn changes_stay_in_the_overlay(annotations: &[(&str, &str)]) {
    let a = atoll();
    // Linux: the same script natively, on its own copy of the files.
    let native = bundle_with(&[]);
    let want = run_at(&a, "native", &native, "ovl-native");
    want.ok();
    let b = bundle_with(annotations);
    let before = host_view(&b.rootfs);
    let got = run_at(&a, "userspace", &b, "ovl");
    got.ok();
    assert_eq!(got.stdout, want.stdout, "{got:#?}\nnative: {want:#?}");
    for line in ["ino-kept", "rmdir-ok", "sub-gone", "gone-gone", "dir-now=0"] {
        assert!(got.stdout.contains(line), "{line}: {got:#?}");
    }
    // The bundle's rootfs is as the host left it.
    assert_eq!(host_view(&b.rootfs), before);
    // (The native run did change its copy: the comparison means something.)
    assert_ne!(host_view(&native.rootfs), before);
}

/// The overlay can be asked for with the flag too; `none` keeps writes
/// going to the bundle's rootfs.
#[test]
fn flag_picks_the_overlay_and_none_writes_the_rootfs() {
    let a = atoll();
    let b = busybox().sh("echo changed > /data/file").build();
    populate(&b.rootfs);
    let id1 = id("ovl-flag");
    a.run(&[
        "--isolation",
        "userspace",
        "--overlay",
        "root:memory",
        "run",
        "-b",
        b.path_str(),
        &id1,
    ])
    .ok();
    leaks(&a, &id1, &b).assert_clean();
    assert_eq!(
        std::fs::read_to_string(b.rootfs.join("data/file")).unwrap(),
        "lower\n"
    );
    let id2 = id("ovl-none");
    a.run(&[
        "--isolation",
        "userspace",
        "--overlay",
        "none",
        "run",
        "-b",
        b.path_str(),
        &id2,
    ])
    .ok();
    leaks(&a, &id2, &b).assert_clean();
    assert_eq!(
        std::fs::read_to_string(b.rootfs.join("data/file")).unwrap(),
        "changed\n"
    );
}

/// A copy-up breaks a lower hard link (the other name keeps the lower
/// file), as overlayfs does without its index feature; links made in
/// the container are real links.
#[test]
fn copy_up_breaks_a_lower_hard_link_as_overlayfs() {
    let a = atoll();
    let b = busybox()
        .annotation(OVERLAY, "root:memory")
        .sh(
            "cd /data; echo \"before=$(stat -c %h h1)\"; echo more >> h1; \
             echo \"h1=$(stat -c %h h1) h2=$(cat h2)\"; ln h1 h3; echo more2 >> h3; \
             echo \"h1=$(stat -c %h h1) $(tail -1 h1)\"",
        )
        .build();
    populate(&b.rootfs);
    std::fs::write(b.rootfs.join("data/h1"), "one\n").unwrap();
    std::fs::hard_link(b.rootfs.join("data/h1"), b.rootfs.join("data/h2")).unwrap();
    let out = run_at(&a, "userspace", &b, "ovl-hard");
    out.ok();
    assert_eq!(
        out.stdout, "before=2\nh1=1 h2=one\nh1=2 more2\n",
        "{out:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(b.rootfs.join("data/h1")).unwrap(),
        "one\n"
    );
}

/// The layer is memory of the container: writes beyond its memory limit
/// fail with ENOSPC, a copy-up of a file that does not fit too; freeing
/// the space lets writes go on.
#[test]
fn overlay_writes_count_against_the_memory_limit() {
    let a = atoll();
    let b = busybox()
        .annotation(OVERLAY, "root:memory")
        .memory_limit(96 << 20)
        .sh("dd if=/dev/zero of=/fill bs=1M count=300 2>&1 | grep -q 'No space left' && echo fill-enospc; \
             (echo x >> /big) 2>&1 | grep -q 'No space left' && echo big-enospc; echo \"big-size=$(wc -c < /big)\"; \
             rm /fill; echo small > /small && echo \"small=$(cat /small)\"")
        .build();
    // A sparse 256 MiB file: copying it up cannot fit.
    std::fs::File::create(b.rootfs.join("big"))
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let out = run_at(&a, "userspace", &b, "ovl-mem");
    out.ok();
    assert!(out.stdout.contains("fill-enospc\n"), "{out:#?}");
    assert!(out.stdout.contains("big-enospc\n"), "{out:#?}");
    assert!(out.stdout.contains("big-size=268435456\n"), "{out:#?}");
    assert!(out.stdout.contains("small=small\n"), "{out:#?}");
    assert!(!b.rootfs.join("fill").exists());
    assert!(!b.rootfs.join("small").exists());
    assert_eq!(
        std::fs::metadata(b.rootfs.join("big")).unwrap().len(),
        256 << 20
    );
}

#[test]
fn bad_overlay_values_are_refused_in_one_line() {
    let a = atoll();
    let b = busybox()
        .annotation(OVERLAY, "root:disk")
        .args(&["/bin/true"])
        .build();
    let id1 = id("ovl-bad");
    let out = a.run(&["--isolation", "userspace", "run", "-b", b.path_str(), &id1]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr
            .contains("annotation dev.atoll.overlay: unknown overlay \"root:disk\""),
        "{out:#?}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:#?}");
    leaks(&a, &id1, &b).assert_clean();

    let b = busybox().args(&["/bin/true"]).build();
    let out = a.run(&[
        "--isolation",
        "userspace",
        "--overlay",
        "root:self",
        "run",
        "-b",
        b.path_str(),
        &id1,
    ]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("--overlay") && out.stderr.contains("not built"),
        "{out:#?}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:#?}");
    leaks(&a, &id1, &b).assert_clean();

    // The other levels have no overlay to offer.
    let out = a.run(&[
        "--isolation",
        "native",
        "--overlay",
        "root:memory",
        "run",
        "-b",
        b.path_str(),
        &id1,
    ]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr
            .contains("overlay root:memory needs the userspace level"),
        "{out:#?}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:#?}");
    leaks(&a, &id1, &b).assert_clean();
}

/// In a pod, each container's root gets an overlay of its own.
#[test]
fn pod_containers_each_get_their_own_overlay() {
    const TYPE: &str = "io.kubernetes.cri.container-type";
    const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
    let a = atoll();
    let sid = id("ovl-pod");
    let sb = busybox()
        .sh("exec sleep 1000")
        .annotation(TYPE, "sandbox")
        .annotation(SANDBOX_ID, &sid)
        .annotation(OVERLAY, "root:memory")
        .build();
    start_detached(&a, "userspace", &sb, &sid);
    for who in ["one", "two"] {
        let mid = id(&format!("ovl-pod-{who}"));
        let m = busybox()
            .sh(&format!(
                "echo {who} >> /data/file; rm /data/gone; echo \"$(cat /data/file | tr '\\n' ' ')\"; ls /data"
            ))
            .annotation(TYPE, "container")
            .annotation(SANDBOX_ID, &sid)
            .annotation(OVERLAY, "root:memory")
            .build();
        populate(&m.rootfs);
        let before = host_view(&m.rootfs);
        let out = a.run(&["--isolation", "userspace", "run", "-b", m.path_str(), &mid]);
        out.ok();
        assert!(
            out.stdout.starts_with(&format!("lower {who} \n")),
            "{out:#?}"
        );
        assert!(!out.stdout.contains("gone"), "{out:#?}");
        leaks(&a, &mid, &m).assert_clean();
        assert_eq!(host_view(&m.rootfs), before);
    }
    // A member's overlay counts against its own memory limit.
    let mid = id("ovl-pod-mem");
    let m = busybox()
        .sh("dd if=/dev/zero of=/fill bs=1M count=200 2>&1 | grep -q 'No space left' && echo fill-enospc; \
             rm /fill; echo after > /after && cat /after")
        .annotation(TYPE, "container")
        .annotation(SANDBOX_ID, &sid)
        .annotation(OVERLAY, "root:memory")
        .memory_limit(64 << 20)
        .build();
    let out = a.run(&["--isolation", "userspace", "run", "-b", m.path_str(), &mid]);
    out.ok();
    assert_eq!(out.stdout, "fill-enospc\nafter\n", "{out:#?}");
    leaks(&a, &mid, &m).assert_clean();
    assert!(!m.rootfs.join("fill").exists());
    a.run(&["delete", "-f", &sid]).ok();
    leaks(&a, &sid, &sb).assert_clean();
}

/// The root mount's options in the gofer's mount namespace (the
/// container's), where the rootfs the kernel is donated comes from.
fn gofer_root_options(kernel: i64) -> String {
    // `run -d` returns once the container's process runs; the sandbox may
    // still be starting its gofer (and naming it) then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let gofer = loop {
        let children = std::fs::read_to_string(format!("/proc/{kernel}/task/{kernel}/children"))
            .unwrap_or_default();
        let found = children.split_whitespace().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "atoll-gofer")
        });
        if let Some(g) = found {
            break g.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no gofer among the kernel's children {children:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let info = std::fs::read_to_string(format!("/proc/{gofer}/mountinfo")).unwrap();
    info.lines()
        .rfind(|l| l.split_whitespace().nth(4) == Some("/"))
        .and_then(|l| l.split_whitespace().nth(5))
        .unwrap_or_default()
        .to_string()
}

/// With the overlay nothing of the sandbox can write the rootfs: the
/// gofer's root mount (whose clone the kernel walks) is read-only; without
/// it, it is writable.
#[test]
fn rootfs_is_read_only_under_the_sandbox_with_the_overlay() {
    let a = atoll();
    for (overlay, want) in [("root:memory", "ro"), ("none", "rw")] {
        let b = busybox()
            .annotation(OVERLAY, overlay)
            .args(&["sleep", "100"])
            .build();
        let cid = id("ovl-ro");
        let pid = start_detached(&a, "userspace", &b, &cid);
        // The gofer is named before it has set its root up: its options
        // are looked at until they are the expected ones, or 20 s passed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let opts = loop {
            let o = gofer_root_options(pid);
            if o.split(',').next() == Some(want) || std::time::Instant::now() > deadline {
                break o;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        a.run(&["delete", "-f", &cid]).ok();
        leaks(&a, &cid, &b).assert_clean();
        assert!(
            opts.split(',').next() == Some(want),
            "{overlay}: root mount options {opts:?}"
        );
    }
}

/// Real programs on an overlay root: python3 starts and writes into /etc,
/// GNU tar extracts a tree (creates, chmod, chown, utimes) into the
/// overlay and finds it whole; the shared Debian image is not touched.
#[test]
fn python_and_tar_run_on_an_overlay_root() {
    let a = atoll();
    let script = "python3 -c \"open('/etc/atoll-ovl','w').write('py-ok'); print(open('/etc/atoll-ovl').read())\" && \
         tar -C /usr/share/doc -cf /tmp/doc.tar . && mkdir /opt/x && tar -C /opt/x -xf /tmp/doc.tar && \
         echo \"tree=$(cd /usr/share/doc && find . | sort | md5sum) copy=$(cd /opt/x && find . | sort | md5sum)\" && \
         echo \"stat=$(cd /usr/share/doc && find . -type f | sort | xargs stat -c '%a %s %Y' | md5sum) \
copy=$(cd /opt/x && find . -type f | sort | xargs stat -c '%a %s %Y' | md5sum)\"";
    let b = debian()
        .docker_caps()
        .annotation(OVERLAY, "root:memory")
        .args(&["/bin/sh", "-c", script])
        .build();
    // The shared image as a writable root: only the overlay (and the
    // read-only mount under it) keeps it unchanged.
    let mut spec = b.spec();
    let mut r = spec.root().clone().unwrap();
    r.set_readonly(Some(false));
    spec.set_root(Some(r));
    b.write_spec(&spec);
    let out = run_at(&a, "userspace", &b, "ovl-debian");
    let leaked = [b.rootfs.join("etc/atoll-ovl"), b.rootfs.join("opt/x")]
        .iter()
        .filter(|p| p.exists())
        .map(|p| {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
            p.display().to_string()
        })
        .collect::<Vec<_>>();
    assert!(
        leaked.is_empty(),
        "written into the shared image: {leaked:?}"
    );
    out.ok();
    assert!(out.stdout.starts_with("py-ok\n"), "{out:#?}");
    let line = |p: &str| {
        let l = out
            .stdout
            .lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{p}: {out:#?}"))
            .to_string();
        let (x, y) = l[p.len()..].split_once(" copy=").unwrap();
        assert_eq!(x.trim(), y.trim(), "{l}");
    };
    line("tree=");
    line("stat=");
}

/// fallocate on a tmpfs populates its pages, so it is held to the memory
/// limit as writes are: past it ENOSPC (as a full tmpfs), within it the
/// blocks are there, and removing the file gives the room back.
#[test]
fn tmpfs_fallocate_counts_against_the_memory_limit() {
    let a = atoll();
    let b = busybox()
        .memory_limit(96 << 20)
        .tmpfs("/scratch")
        .sh("fallocate -l 300M /scratch/big 2>&1 | grep -q 'No space left' && echo big-enospc; \
             fallocate -l 16M /scratch/small && echo \"small-blocks=$(stat -c %b /scratch/small)\"; \
             rm /scratch/small; fallocate -l 64M /scratch/again && echo again-ok")
        .build();
    let out = run_at(&a, "userspace", &b, "falloc-mem");
    out.ok();
    assert!(out.stdout.contains("big-enospc\n"), "{out:#?}");
    // 16 MiB in 512-byte blocks.
    assert!(out.stdout.contains("small-blocks=32768\n"), "{out:#?}");
    assert!(out.stdout.contains("again-ok\n"), "{out:#?}");
}
