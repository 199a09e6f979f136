//! Writes the seed corpora (fuzz/corpus/<target>/) with atoll's own
//! encoders, so seeds are inputs atoll really produces or accepts:
//!
//!     cd fuzz && cargo run --features seeds --bin seeds [OUT_DIR]
//!
//! Policy seeds are the TOML examples of docs/operators-guide.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use atoll_gofer::protocol::{Reply, Request, Stat, Statfs};
use atoll_gofer::{Dirent, SetAttr, Time};
use atoll_kernel::net::SockAddr;
use atoll_kernel::net::msg::{MSGHDR_SIZE, encode_cmsg};
use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, Spec, UserBuilder,
};

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("corpus"));
    let w = |target: &str, name: &str, bytes: &[u8]| {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };

    // config.json: `atoll spec`'s output, then what tenants and
    // orchestrators add to it.
    let specs = [
        ("atoll-spec.json", Spec::default()),
        ("userspace-tenant.json", annotated()),
        ("binds-seccomp-limits.json", busy()),
    ];
    for (name, spec) in &specs {
        w("config_json", name, pretty(spec).as_bytes());
    }
    w(
        "config_json",
        "minimal.json",
        br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{}}"#,
    );

    // exec --process
    let default_process = Spec::default().process().clone().unwrap();
    w(
        "process_json",
        "atoll-spec-process.json",
        serde_json::to_string_pretty(&default_process)
            .unwrap()
            .as_bytes(),
    );
    w(
        "process_json",
        "exec-process.json",
        serde_json::to_string_pretty(&exec_process())
            .unwrap()
            .as_bytes(),
    );

    // Policies: every TOML example of the operators' guide.
    let guide = std::fs::read_to_string(here.join("../docs/operators-guide.md")).unwrap();
    let policies: Vec<String> = guide
        .split("```toml\n")
        .skip(1)
        .filter_map(|s| s.split("```").next().map(str::to_string))
        .collect();
    assert!(!policies.is_empty(), "no ```toml block in the guide");
    for (i, p) in policies.iter().enumerate() {
        w(
            "policy_parse",
            &format!("operators-guide-{i}.toml"),
            p.as_bytes(),
        );
    }
    w(
        "policy_parse",
        "typo.toml",
        b"[defaults]\nprivileged = false\n\n[tenants.acme]\nprivilaged = true\n",
    );
    let largest = policies.iter().max_by_key(|p| p.len()).unwrap();
    for (name, spec) in &specs {
        let mut b = largest.as_bytes().to_vec();
        b.push(0);
        b.extend_from_slice(pretty(spec).as_bytes());
        w("policy_eval", &format!("guide+{name}"), &b);
    }

    // Gofer messages, both directions.
    for (i, r) in requests().iter().enumerate() {
        w(
            "gofer_request",
            &format!("{i:02}-{}", kind(r)),
            &r.encode(i as u32),
        );
    }
    for (i, r) in replies().iter().enumerate() {
        let name = match r {
            Ok(r) => kind(r),
            Err(_) => "error".into(),
        };
        w(
            "gofer_reply",
            &format!("{i:02}-{name}"),
            &Reply::encode(i as u32, r),
        );
    }

    // Socket addresses.
    for (name, a) in addrs() {
        w("kernel_sockaddr", name, &a.to_bytes());
    }

    // sendmsg images: msghdr at the start, the rest behind it.
    for (name, img) in msghdr_images() {
        w("kernel_msghdr", name, &img);
    }

    // Paths and `#!` lines.
    for (i, p) in [
        &b"/etc/passwd"[..],
        b"usr/lib/../bin/",
        b"/",
        b"//",
        b"a",
        b"./x/./y//z",
        b"/proc/self/fd/3",
        b"#!/bin/sh -e\necho hi\n",
        b"#! /usr/bin/env python3  \n",
    ]
    .iter()
    .enumerate()
    {
        w("kernel_path", &format!("{i:02}"), p);
    }
    println!("seeds written under {}", out.display());
}

fn pretty(spec: &Spec) -> String {
    serde_json::to_string_pretty(spec).unwrap() + "\n"
}

fn kind(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    s.split([' ', '(', '{']).next().unwrap().to_lowercase()
}

fn annotated() -> Spec {
    let mut spec = Spec::default();
    spec.set_annotations(Some(HashMap::from([
        ("dev.atoll.isolation".to_string(), "userspace".to_string()),
        ("dev.atoll.tenant".to_string(), "acme".to_string()),
        (
            "io.kubernetes.pod.namespace".to_string(),
            "team-a".to_string(),
        ),
    ])));
    spec
}

/// Mounts, namespaces by path, limits, sysctls and a seccomp profile with
/// the argument rule libcontainer needs swapped.
fn busy() -> Spec {
    let mut spec = Spec::default();
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source("data")
            .options(vec!["rbind".to_string(), "ro".to_string()])
            .build()
            .unwrap(),
    );
    mounts.push(
        MountBuilder::default()
            .destination("/logs")
            .source("/var/log/pods")
            .options(vec!["bind".to_string()])
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    let clone = LinuxSyscallBuilder::default()
        .names(vec!["clone".to_string()])
        .action(oci_spec::runtime::LinuxSeccompAction::ScmpActAllow)
        .args(vec![
            LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(0x7E02_0000u64)
                .value_two(0u64)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    let seccomp = LinuxSeccompBuilder::default()
        .default_action(oci_spec::runtime::LinuxSeccompAction::ScmpActErrno)
        .syscalls(vec![clone])
        .build()
        .unwrap();
    let base = spec.linux().clone().unwrap();
    let mut namespaces = base.namespaces().clone().unwrap_or_default();
    namespaces.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Network)
            .path("/var/run/netns/cni-1234")
            .build()
            .unwrap(),
    );
    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1i64 << 30)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .quota(100_000i64)
                .period(100_000u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(256i64).build().unwrap())
        .build()
        .unwrap();
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .seccomp(seccomp)
        .sysctl(HashMap::from([(
            "net.ipv4.tcp_keepalive_time".to_string(),
            "600".to_string(),
        )]))
        .masked_paths(base.masked_paths().clone().unwrap_or_default())
        .readonly_paths(base.readonly_paths().clone().unwrap_or_default())
        .build()
        .unwrap();
    spec.set_linux(Some(linux));
    spec.set_process(Some(exec_process()));
    spec
}

fn exec_process() -> Process {
    let caps: std::collections::HashSet<_> = [oci_spec::runtime::Capability::NetBindService]
        .into_iter()
        .collect();
    ProcessBuilder::default()
        .args(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "id".to_string(),
        ])
        .env(vec![
            "PATH=/usr/bin:/bin".to_string(),
            "TERM=xterm".to_string(),
        ])
        .cwd("/srv")
        .user(
            UserBuilder::default()
                .uid(1000u32)
                .gid(1000u32)
                .additional_gids(vec![1001u32])
                .build()
                .unwrap(),
        )
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()
                .unwrap(),
        )
        .rlimits(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .hard(1024u64)
                .soft(1024u64)
                .build()
                .unwrap(),
        ])
        .no_new_privileges(true)
        .build()
        .unwrap()
}

fn requests() -> Vec<Request> {
    let name = b"passwd".to_vec();
    vec![
        Request::Walk {
            dir: 1,
            name: b"etc".to_vec(),
        },
        Request::Stat { fid: 2 },
        Request::Open {
            fid: 2,
            flags: libc::O_RDONLY | libc::O_CLOEXEC,
        },
        Request::Create {
            dir: 2,
            name: name.clone(),
            flags: libc::O_WRONLY | libc::O_EXCL,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
        },
        Request::Mkdir {
            dir: 1,
            name: b"tmp".to_vec(),
            mode: 0o1777,
            uid: 0,
            gid: 0,
        },
        Request::Mknod {
            dir: 1,
            name: b"fifo".to_vec(),
            mode: libc::S_IFIFO | 0o600,
            uid: 0,
            gid: 0,
        },
        Request::Symlink {
            dir: 1,
            name: b"link".to_vec(),
            target: b"../../etc/shadow".to_vec(),
            uid: 0,
            gid: 0,
        },
        Request::Link {
            target: 3,
            dir: 1,
            name: b"hard".to_vec(),
        },
        Request::Unlink {
            dir: 1,
            name: b"tmp".to_vec(),
            flags: libc::AT_REMOVEDIR,
        },
        Request::Rename {
            old_dir: 1,
            old: b"a".to_vec(),
            new_dir: 2,
            new: b"b".to_vec(),
            flags: libc::RENAME_NOREPLACE,
        },
        Request::Readlink { fid: 4 },
        Request::SetAttr {
            fid: 4,
            attr: SetAttr {
                mode: Some(0o600),
                uid: Some(1000),
                gid: None,
                size: Some(0),
                atime: Some(Time::Now),
                mtime: Some(Time::At(1_700_000_000, 5)),
            },
        },
        Request::Readdir { fid: 1, offset: 0 },
        Request::Statfs { fid: 1 },
        Request::Release { fid: 4 },
    ]
}

fn replies() -> Vec<Result<Reply, i32>> {
    // SAFETY: stat and statfs of "/" into zeroed plain-data structs.
    let (st, sfs) = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let mut sfs: libc::statfs = std::mem::zeroed();
        libc::stat(c"/".as_ptr(), &mut st);
        libc::statfs(c"/".as_ptr(), &mut sfs);
        (Stat::from_libc(&st), Statfs::from_libc(&sfs))
    };
    vec![
        Ok(Reply::Done),
        Ok(Reply::Walked { fid: 7, stat: st }),
        Ok(Reply::Stat(st)),
        Ok(Reply::Created { fid: 8, stat: st }),
        Ok(Reply::Target(b"/usr/bin/busybox".to_vec())),
        Ok(Reply::Entries {
            entries: vec![
                Dirent {
                    ino: 2,
                    kind: libc::DT_DIR,
                    name: b"etc".to_vec(),
                },
                Dirent {
                    ino: 12,
                    kind: libc::DT_REG,
                    name: b"init".to_vec(),
                },
            ],
            more: true,
        }),
        Ok(Reply::Statfs(sfs)),
        Err(libc::ENOENT),
    ]
}

fn addrs() -> Vec<(&'static str, SockAddr)> {
    // SAFETY: plain-data socket addresses, viewed as bytes.
    let inet = unsafe {
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as u16;
        a.sin_port = 8080u16.to_be();
        a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        std::slice::from_raw_parts(
            &a as *const _ as *const u8,
            std::mem::size_of::<libc::sockaddr_in>(),
        )
        .to_vec()
    };
    let inet6 = unsafe {
        let mut a: libc::sockaddr_in6 = std::mem::zeroed();
        a.sin6_family = libc::AF_INET6 as u16;
        a.sin6_port = 443u16.to_be();
        a.sin6_addr.s6_addr[15] = 1;
        std::slice::from_raw_parts(
            &a as *const _ as *const u8,
            std::mem::size_of::<libc::sockaddr_in6>(),
        )
        .to_vec()
    };
    vec![
        ("unix-path", SockAddr::UnixPath(b"/run/app.sock".to_vec())),
        (
            "unix-abstract",
            SockAddr::UnixAbstract(b"dbus-1234".to_vec()),
        ),
        ("unix-unnamed", SockAddr::UnixUnnamed),
        ("inet-127.0.0.1-8080", SockAddr::Inet(inet)),
        ("inet6-loopback-443", SockAddr::Inet6(inet6)),
        ("unspec", SockAddr::Unspec),
    ]
}

/// Workload memory for sendmsg: a msghdr at the start (address 0x100000,
/// as the fuzz target maps it), its iovecs, name and control data after.
fn msghdr_images() -> Vec<(&'static str, Vec<u8>)> {
    const BASE: u64 = 0x10_0000;
    let image = |iovs: &[(u64, u64)], name: &[u8], control: &[u8]| {
        let mut tail = Vec::new();
        let at = |tail: &Vec<u8>| BASE + (MSGHDR_SIZE + tail.len()) as u64;
        let iov_addr = at(&tail);
        for (base, len) in iovs {
            tail.extend_from_slice(&base.to_ne_bytes());
            tail.extend_from_slice(&len.to_ne_bytes());
        }
        let name_addr = if name.is_empty() { 0 } else { at(&tail) };
        tail.extend_from_slice(name);
        tail.resize(tail.len().div_ceil(8) * 8, 0);
        let control_addr = if control.is_empty() { 0 } else { at(&tail) };
        tail.extend_from_slice(control);
        let mut b = Vec::new();
        for word in [
            name_addr,
            name.len() as u64,
            iov_addr,
            iovs.len() as u64,
            control_addr,
            control.len() as u64,
            0,
        ] {
            b.extend_from_slice(&word.to_ne_bytes());
        }
        b.extend(tail);
        b
    };
    let rights: Vec<u8> = [0i32, 1, 2].iter().flat_map(|f| f.to_ne_bytes()).collect();
    let creds: Vec<u8> = [42i32, 1000, 1000]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let mut control = encode_cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &rights);
    control.extend(encode_cmsg(libc::SOL_SOCKET, libc::SCM_CREDENTIALS, &creds));
    let addr = SockAddr::UnixPath(b"/run/app.sock".to_vec()).to_bytes();
    vec![
        ("iov-only", image(&[(BASE, 16), (BASE + 64, 100)], &[], &[])),
        (
            "name-rights-creds",
            image(&[(BASE + 8, 32)], &addr, &control),
        ),
        (
            "huge-iov-lens",
            image(&[(BASE, u64::MAX), (BASE, 1 << 40), (0, 0)], &[], &[]),
        ),
        (
            "bad-control",
            image(&[], &[], &encode_cmsg(libc::SOL_IP, 1, &[1, 2, 3, 4])),
        ),
    ]
}
