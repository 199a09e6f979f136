//! The vm level as the lifecycle sees it: the container's init becomes
//! atoll's VMM (the binary plugs it in, as it does the application
//! kernel), which boots a guest whose agent runs the workload. Everything
//! the VMM needs from outside the container (/dev/kvm, the guest kernel
//! and initramfs, the vsock socket in the state directory, its log) is
//! opened by `create` and inherited as descriptors: once libcontainer
//! has pivoted the init into the rootfs, none of it is reachable by path.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::{Capability, Spec};

/// Where the guest kernel and initramfs are looked for, unless the config
/// file's `vm_assets` or `$ATOLL_VM_ASSETS` says otherwise.
pub const DEFAULT_ASSETS: &str = "/usr/local/lib/atoll/vm";
pub const KERNEL_FILE: &str = "vmlinux";
pub const INITRD_FILE: &str = "initramfs.cpio";

/// Descriptors a vm-level init inherits: log, vsock socket, /dev/kvm,
/// kernel, initramfs (and the tap, when the pod has a network: one more).
pub const VM_FDS: i32 = 5;

/// Guest RAM when the spec sets no memory limit.
pub const DEFAULT_GUEST_MIB: u64 = 256;
/// Smallest guest that boots (atoll_vmm::memory::MIN_MEM_MIB).
pub const MIN_GUEST_MIB: u64 = 128;
/// What the VMM itself needs in the container's memory cgroup beside the
/// guest's RAM (its threads, the virtio-fs file table, page tables).
pub const VMM_OVERHEAD_MIB: u64 = 64;

/// Entry point of the vm level, provided by the binary that links the
/// VMM. It does not return on success: the init exits with the status of
/// the guest's process.
pub type VmEntry = fn(&VmLaunch) -> std::result::Result<(), String>;

/// Checks, at create, that the kernel image can be booted (the binary
/// links the loader). Returns a one-line reason if not.
pub type KernelCheck = fn(&mut File) -> std::result::Result<(), String>;

/// What the VMM needs, captured before the fork into the container's init.
#[derive(Clone)]
pub struct VmLaunch {
    /// The bundle's own spec: its process runs in the guest.
    pub spec: Spec,
    pub id: String,
    pub mem_mib: u64,
    pub vcpus: u8,
    /// Descriptor numbers in the init.
    pub log_fd: i32,
    pub vsock_fd: i32,
    pub kvm_fd: i32,
    pub kernel_fd: i32,
    pub initrd_fd: i32,
    /// Copy the guest's console to the log (`--debug`).
    pub console: bool,
    /// The container process's seccomp filter (guest_seccomp).
    pub seccomp: atoll_agent::proto::Seccomp,
    /// The pod's interface (vm_net.rs): the tap's descriptor number in
    /// the init and what the guest's eth0 becomes.
    pub net: Option<(i32, atoll_agent::proto::Network)>,
}

/// The directory holding the guest assets.
pub fn assets_dir(config: Option<&Path>) -> PathBuf {
    config
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ATOLL_VM_ASSETS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ASSETS))
}

/// Opens the guest kernel and initramfs, with errors that say what to do.
pub fn open_assets(dir: &Path) -> Result<(File, File)> {
    let open = |name: &str| {
        let p = dir.join(name);
        File::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!(
                    "isolation level vm: guest {} {} is missing (build them with scripts/vm-assets.sh DIR, then `atoll install --vm-assets DIR` puts them there)",
                    if name == KERNEL_FILE { "kernel" } else { "initramfs" },
                    p.display()
                )
            } else {
                anyhow!("isolation level vm: {}: {e}", p.display())
            }
        })
    };
    Ok((open(KERNEL_FILE)?, open(INITRD_FILE)?))
}

/// Opens /dev/kvm and makes sure it can run an ordinary guest.
pub fn open_kvm() -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| anyhow!("isolation level vm: /dev/kvm: {e}"))?;
    if let Some(why) = kvm_unusable() {
        bail!("isolation level vm: /dev/kvm cannot boot a guest kernel: {why}");
    }
    Ok(f)
}

/// Why this host's /dev/kvm cannot boot an unmodified guest kernel, if it
/// cannot: a KVM-PVM (paravirtualized nested KVM) runs only guests that
/// speak its private ABI.
pub fn kvm_unusable() -> Option<String> {
    if Path::new("/sys/module/kvm_pvm").exists() {
        return Some(
            "it is KVM-PVM (kvm_pvm), which runs only guests built for PVM; atoll's guest is Debian's kernel (run the vm level on a host with hardware virtualization, or inside scripts/test-vm.sh)".into(),
        );
    }
    None
}

/// The annotation containerd's CRI puts on a pod's sandbox container: the
/// pod's memory in bytes, the sum of its containers' limits as the kubelet
/// computes them (PodSandboxConfig's resources), known before any of them
/// is created. Kata sizes its sandbox VM from it too.
pub const CRI_SANDBOX_MEMORY: &str = "io.kubernetes.cri.sandbox-memory";

/// The spec's memory limit in bytes, if it sets one.
pub fn memory_limit(spec: &Spec) -> Option<u64> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|l| *l > 0)
        .map(|l| l as u64)
}

/// The pod's memory from its sandbox container's CRI annotation
/// (CRI_SANDBOX_MEMORY), for a sandbox container without a limit of its
/// own.
fn pod_memory(spec: &Spec) -> Option<u64> {
    if crate::pod::role(spec) != crate::pod::PodRole::Sandbox {
        return None;
    }
    spec.annotations()
        .as_ref()?
        .get(CRI_SANDBOX_MEMORY)?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|b| *b > 0)
}

/// Guest RAM for the container: what its memory limit leaves beside the
/// VMM, so that guest pages and the VMM together stay within it (an
/// error if that cannot boot); for a pod's sandbox container without a
/// limit, what the pod's memory leaves, but never less than a guest that
/// boots (that figure sizes, it does not limit: refusing a pod whose
/// containers' limits add up to little would break it); the default
/// without either.
pub fn guest_memory(spec: &Spec) -> Result<u64> {
    if let Some(bytes) = memory_limit(spec) {
        let mib = bytes >> 20;
        let guest = mib.saturating_sub(VMM_OVERHEAD_MIB);
        if guest < MIN_GUEST_MIB {
            bail!(
                "isolation level vm: memory limit {mib} MiB is too small to boot a guest (at least {} MiB: {MIN_GUEST_MIB} for the guest, {VMM_OVERHEAD_MIB} for the VMM)",
                MIN_GUEST_MIB + VMM_OVERHEAD_MIB
            );
        }
        return Ok(guest);
    }
    Ok(match pod_memory(spec) {
        Some(bytes) => ((bytes >> 20).saturating_sub(VMM_OVERHEAD_MIB)).max(MIN_GUEST_MIB),
        None => DEFAULT_GUEST_MIB,
    })
}

/// vCPUs for the container: its CPU quota rounded up, 1 by default, at
/// most 8.
pub fn guest_vcpus(spec: &Spec) -> u8 {
    let cpu = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.cpu().as_ref());
    match cpu.and_then(|c| Some((c.quota()?, c.period()?))) {
        Some((q, p)) if q > 0 && p > 0 => (q as u64).div_ceil(p).clamp(1, 8) as u8,
        _ => 1,
    }
}

/// Capabilities the VMM starts with, all for its virtio-fs server, which
/// acts on the rootfs for the guest's users (the guest kernel has checked
/// their permissions already). The server is a process the VMM forks
/// first (atoll_vmm::fs_server): it keeps these, and the VMM then drops
/// them all.
/// - CHOWN: setattr of a file's owner, for any guest user;
/// - DAC_OVERRIDE: reading, writing and searching files and directories
///   whatever their modes (the guest's root may; the host must not refuse
///   what the guest allowed);
/// - DAC_READ_SEARCH: hard links, which the server makes with
///   linkat(AT_EMPTY_PATH) on the held file (Linux asks for this
///   capability there). Its other power, open_by_handle_at (the "shocker"
///   escape), is on no VMM thread's seccomp allowlist, and the server
///   never uses file handles (inode file handles are off);
/// - FOWNER: chmod, utimes and xattrs of files the VMM's uid 0 does not own;
/// - FSETID: keeping setuid/setgid bits through chown and writes where
///   the guest's Linux keeps them (the server drops it around writes that
///   must clear them);
/// - SETUID, SETGID: the server switches its own thread's effective uid
///   and gid to the requesting guest user's while it creates a file,
///   directory, node or symlink, so the new file has the right owner.
///
/// Not kept: MKNOD (a device node made by the guest in the rootfs would
/// be opened on the host by the server: the guest makes its device nodes
/// in its own /dev, and a mknod of one in the rootfs fails). The
/// VMM runs as uid 0 of the container's user namespace because the
/// passthrough server treats requests of the guest's root as its own
/// uid's: files the guest's root creates must be owned by 0.
pub const VMM_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Setgid,
    Capability::Setuid,
];

/// The container's init is the VMM: it runs as the container's root with
/// the capabilities its file server needs and no_new_privs (the spec's
/// seccomp profile is the guest process's business: `effective` leaves
/// it out of the VMM's spec). The terminal, if any, is the guest
/// process's; the VMM relays it.
pub fn adapt(spec: &mut Spec) {
    crate::userspace_spec::init_as_root(spec, VMM_CAPS);
}

/// Opens what the VMM inherits and checks the kernel.
pub struct Resources {
    pub kvm: File,
    pub kernel: File,
    pub initrd: File,
}

/// Opens /dev/kvm first (on a host that cannot run guests that is the
/// reason to give, whatever else is missing), then the guest assets, and
/// checks the kernel image.
pub fn resources(assets: &Path, check: Option<KernelCheck>) -> Result<Resources> {
    let kvm = open_kvm()?;
    let (mut kernel, initrd) = open_assets(assets)?;
    if let Some(check) = check {
        check(&mut kernel).map_err(|e| {
            anyhow!(
                "isolation level vm: guest kernel {}: {e}",
                assets.join(KERNEL_FILE).display()
            )
        })?;
    }
    Ok(Resources {
        kvm,
        kernel,
        initrd,
    })
}

/// Everything `create` can check about a vm-level container before it
/// makes any state: a usable /dev/kvm, a memory limit that leaves room
/// for a guest, the guest assets and a bootable kernel image.
pub fn preflight(spec: &Spec, assets: &Path, check: Option<KernelCheck>) -> Result<()> {
    open_kvm()?;
    guest_memory(spec)?;
    crate::vm_net::check(spec)?;
    resources(assets, check).map(drop)
}

/// Whether this host can run the vm level, for `atoll check`: `Ok` with
/// what it would boot, or the reason it cannot.
pub fn host_support(
    assets: &Path,
    check: Option<KernelCheck>,
) -> std::result::Result<String, String> {
    resources(assets, check).map_err(|e| {
        let e = e.to_string();
        e.strip_prefix("isolation level vm: ")
            .unwrap_or(&e)
            .to_string()
    })?;
    Ok(format!(
        "/dev/kvm boots guests; guest assets in {}",
        assets.display()
    ))
}

/// Linux's capability numbers, by name (include/uapi/linux/capability.h).
pub const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

fn cap_numbers(set: &Option<oci_spec::runtime::Capabilities>) -> Option<Vec<u32>> {
    set.as_ref().map(|s| {
        let mut v: Vec<u32> = s
            .iter()
            .filter_map(|c| {
                let name = c.to_string();
                let name = name.trim_start_matches("CAP_");
                CAP_NAMES.iter().position(|n| *n == name).map(|i| i as u32)
            })
            .collect();
        v.sort_unstable();
        v
    })
}

fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> Option<u32> {
    use oci_spec::runtime::PosixRlimitType as T;
    Some(match t {
        T::RlimitCpu => 0,
        T::RlimitFsize => 1,
        T::RlimitData => 2,
        T::RlimitStack => 3,
        T::RlimitCore => 4,
        T::RlimitRss => 5,
        T::RlimitNproc => 6,
        T::RlimitNofile => 7,
        T::RlimitMemlock => 8,
        T::RlimitAs => 9,
        T::RlimitLocks => 10,
        T::RlimitSigpending => 11,
        T::RlimitMsgqueue => 12,
        T::RlimitNice => 13,
        T::RlimitRtprio => 14,
        T::RlimitRttime => 15,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// An OCI process as the guest agent runs it.
pub fn agent_process(p: &oci_spec::runtime::Process) -> atoll_agent::proto::Process {
    let u = p.user();
    let caps = p.capabilities().clone().unwrap_or_default();
    let has_caps = p.capabilities().is_some();
    atoll_agent::proto::Process {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().display().to_string(),
        uid: u.uid(),
        gid: u.gid(),
        additional_gids: u.additional_gids().clone().unwrap_or_default(),
        terminal: p.terminal().unwrap_or(false),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        rlimits: p
            .rlimits()
            .iter()
            .flatten()
            .filter_map(|r| {
                Some(atoll_agent::proto::Rlimit {
                    resource: rlimit_resource(r.typ())?,
                    soft: r.soft(),
                    hard: r.hard(),
                })
            })
            .collect(),
        bounding: if has_caps {
            cap_numbers(caps.bounding()).or(Some(vec![]))
        } else {
            None
        },
        effective: if has_caps {
            cap_numbers(caps.effective()).or(Some(vec![]))
        } else {
            None
        },
        permitted: if has_caps {
            cap_numbers(caps.permitted()).or(Some(vec![]))
        } else {
            None
        },
        inheritable: if has_caps {
            cap_numbers(caps.inheritable()).or(Some(vec![]))
        } else {
            None
        },
        ambient: cap_numbers(caps.ambient()),
        console_size: p
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16)),
        seccomp: None,
    }
}

/// Compiles the seccomp filter the guest agent puts container `id`'s
/// processes under: the spec's profile, or atoll's default one (Docker's
/// rules, by the process's bounding set) when the spec has none: the
/// guest kernel is the tenant's, but keyctl, io_uring, bpf, userfaultfd
/// and the like are its attack surface all the same. Kept in the state
/// directory for exec (like the native level's filter).
pub fn guest_seccomp(
    layout: &crate::layout::Layout,
    id: &str,
    spec: &Spec,
) -> Result<atoll_agent::proto::Seccomp> {
    let profile = crate::effective::guest_seccomp_profile(spec);
    if !crate::seccomp_filter::loadable(&profile) {
        bail!(
            "isolation level vm: a seccomp profile that hands syscalls to a notifier (SCMP_ACT_NOTIFY) cannot run in a guest"
        );
    }
    let bpf = crate::seccomp_filter::cached_with_copy(
        &layout.seccomp_cache(),
        &profile,
        &layout.seccomp_filter(id),
    )
    .map_err(|e| anyhow!("seccomp profile: {e:#}"))?;
    Ok(to_agent(&bpf))
}

/// The filter create compiled for container `id`, for exec.
pub fn saved_guest_seccomp(
    layout: &crate::layout::Layout,
    id: &str,
) -> Result<atoll_agent::proto::Seccomp> {
    crate::seccomp_filter::Bpf::read(&layout.seccomp_filter(id))
        .map(|b| to_agent(&b))
        .map_err(|e| anyhow!("container {id}: its seccomp filter: {e:#}"))
}

fn to_agent(bpf: &crate::seccomp_filter::Bpf) -> atoll_agent::proto::Seccomp {
    atoll_agent::proto::Seccomp {
        flags: bpf.flags(),
        program: bpf
            .instructions()
            .map(|(c, jt, jf, k)| atoll_agent::proto::Seccomp::pack(c, jt, jf, k))
            .collect(),
    }
}

/// virtio-fs tag under which the VMM shares the container's rootfs.
pub const ROOTFS_TAG: &str = "rootfs";

/// The container as the guest agent makes it: its rootfs is the VMM's
/// root (the bundle's rootfs, shared whole).
pub fn agent_container(id: &str, spec: &Spec) -> atoll_agent::proto::Container {
    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| atoll_agent::proto::Mount {
            destination: m.destination().display().to_string(),
            typ: m.typ().clone().unwrap_or_default(),
            source: m
                .source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default(),
            options: m.options().clone().unwrap_or_default(),
        })
        .collect();
    let linux = spec.linux().clone().unwrap_or_default();
    let mut masked_paths = linux.masked_paths().clone().unwrap_or_else(|| {
        crate::effective::DEFAULT_MASKED_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    if crate::pod::role(spec) == crate::pod::PodRole::Sandbox {
        // The pod's members' rootfs, in the share of the sandbox's VM:
        // not the sandbox container's business.
        masked_paths.push(crate::vm_pod::IN_SHARE.to_string());
    }
    atoll_agent::proto::Container {
        id: id.to_string(),
        rootfs_tag: ROOTFS_TAG.to_string(),
        rootfs_path: "/".to_string(),
        readonly: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        hostname: spec.hostname().clone(),
        mounts,
        masked_paths,
        readonly_paths: linux.readonly_paths().clone().unwrap_or_else(|| {
            crate::effective::DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect()
        }),
        join_namespaces: Vec::new(),
        join_of: None,
        network: None,
        // A VM's own container has the whole guest (its limit sized it);
        // a pod member's is set by its create.
        memory_limit: None,
    }
}

/// The namespaces a pod member joins in the guest: those its spec joins
/// by path on the host (CRI gives the pod's UTS and IPC namespaces, and
/// its pid namespace with shareProcessNamespace) are its sandbox
/// container's there.
pub fn joined_namespaces(spec: &Spec) -> Vec<String> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .filter(|n| n.path().is_some())
        .filter_map(|n| match n.typ() {
            T::Uts => Some("uts".to_string()),
            T::Ipc => Some("ipc".to_string()),
            T::Pid => Some("pid".to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_limit(bytes: Option<i64>) -> Spec {
        let mut s = Spec::default();
        if let Some(b) = bytes {
            let mut linux = s.linux().clone().unwrap_or_default();
            let mut r = oci_spec::runtime::LinuxResources::default();
            let mut m = oci_spec::runtime::LinuxMemory::default();
            m.set_limit(Some(b));
            r.set_memory(Some(m));
            linux.set_resources(Some(r));
            s.set_linux(Some(linux));
        }
        s
    }

    #[test]
    fn the_vmm_keeps_only_its_file_servers_capabilities() {
        let mut spec = Spec::default();
        adapt(&mut spec);
        let p = spec.process().clone().unwrap();
        let caps = p.capabilities().clone().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            let set = set.clone().unwrap();
            assert_eq!(set.len(), VMM_CAPS.len());
            // device nodes the guest made, opened on the host
            assert!(!set.contains(&Capability::Mknod));
            assert!(!set.contains(&Capability::SysAdmin));
        }
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.user().uid(), 0);
    }

    #[test]
    fn a_member_joins_in_the_guest_what_it_joins_by_path_on_the_host() {
        use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType as T};
        let ns = |t, path: Option<&str>| {
            let mut b = LinuxNamespaceBuilder::default().typ(t);
            if let Some(p) = path {
                b = b.path(p);
            }
            b.build().unwrap()
        };
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_namespaces(Some(vec![
            ns(T::Pid, None),
            ns(T::Ipc, Some("/proc/9/ns/ipc")),
            ns(T::Uts, Some("/proc/9/ns/uts")),
            ns(T::Mount, None),
            ns(T::Network, Some("/var/run/netns/cni-1")),
        ]));
        spec.set_linux(Some(linux));
        assert_eq!(joined_namespaces(&spec), vec!["ipc", "uts"]);
    }

    #[test]
    fn guest_memory_follows_the_limit() {
        assert_eq!(
            guest_memory(&spec_with_limit(None)).unwrap(),
            DEFAULT_GUEST_MIB
        );
        // The limit less the VMM's share, however large: guest pages are
        // touched lazily and count against the same cgroup.
        assert_eq!(
            guest_memory(&spec_with_limit(Some(1 << 30))).unwrap(),
            1024 - VMM_OVERHEAD_MIB
        );
        assert_eq!(
            guest_memory(&spec_with_limit(Some(224 << 20))).unwrap(),
            160
        );
        let e = guest_memory(&spec_with_limit(Some(64 << 20)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("memory limit 64 MiB is too small to boot"),
            "{e}"
        );
    }

    fn annotate(mut spec: Spec, pairs: &[(&str, &str)]) -> Spec {
        let mut a = spec.annotations().clone().unwrap_or_default();
        for (k, v) in pairs {
            a.insert(k.to_string(), v.to_string());
        }
        spec.set_annotations(Some(a));
        spec
    }

    #[test]
    fn a_pod_sandbox_without_a_limit_takes_the_pods_memory() {
        let sandbox = |mem: &str| {
            annotate(
                spec_with_limit(None),
                &[
                    (crate::pod::CRI_CONTAINER_TYPE, "sandbox"),
                    (CRI_SANDBOX_MEMORY, mem),
                ],
            )
        };
        assert_eq!(guest_memory(&sandbox("536870912")).unwrap(), 512 - 64);
        // 0: the kubelet knows no sum (a container without a limit).
        assert_eq!(guest_memory(&sandbox("0")).unwrap(), DEFAULT_GUEST_MIB);
        assert_eq!(guest_memory(&sandbox("lots")).unwrap(), DEFAULT_GUEST_MIB);
        // A small pod still boots (the figure sizes, it does not limit).
        assert_eq!(guest_memory(&sandbox("134217728")).unwrap(), MIN_GUEST_MIB);
        // The sandbox's own limit wins.
        let limited = annotate(
            spec_with_limit(Some(320 << 20)),
            &[
                (crate::pod::CRI_CONTAINER_TYPE, "sandbox"),
                (CRI_SANDBOX_MEMORY, "536870912"),
            ],
        );
        assert_eq!(guest_memory(&limited).unwrap(), 256);
        // A member's annotation does not size anything: its sandbox's VM
        // exists already.
        let member = annotate(
            spec_with_limit(None),
            &[
                (crate::pod::CRI_CONTAINER_TYPE, "container"),
                (crate::pod::CRI_SANDBOX_ID, "s"),
                (CRI_SANDBOX_MEMORY, "536870912"),
            ],
        );
        assert_eq!(guest_memory(&member).unwrap(), DEFAULT_GUEST_MIB);
    }

    #[test]
    fn missing_assets_say_how_to_make_them() {
        let d = tempfile::tempdir().unwrap();
        let e = open_assets(d.path()).unwrap_err().to_string();
        assert!(e.contains("vm-assets.sh") && e.contains("vmlinux"), "{e}");
    }
}
