//! The native level's seccomp filter as a BPF program, compiled once per
//! profile and loaded by atoll's executor right before the workload's
//! exec (the container's init and every exec'd process alike).
//!
//! libseccomp needs some 7 ms of CPU to turn atoll's default profile
//! (about 350 syscalls, some with argument rules) into BPF, and
//! libcontainer did that in every container's init: a quarter of the
//! native level's `run` of /bin/true. The program libseccomp generates is
//! the same for the same profile, so atoll keeps it in the state root,
//! keyed by a SHA-256 of the profile, the libseccomp version and the
//! architecture, with a checksum; a file that does not verify is compiled
//! again. The translation from the spec is libcontainer 0.7's (the
//! effective spec is already adapted to it: see effective.rs on
//! SCMP_CMP_MASKED_EQ), so the program is the one libcontainer would have
//! loaded.

use std::io::{Read, Seek, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"atollbpf";
const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
const SECCOMP_FILTER_FLAG_LOG: u32 = 2;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 4;

/// A compiled filter: the program and the flags to load it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bpf {
    program: Vec<libc::sock_filter>,
    flags: u32,
}

impl Bpf {
    /// Installs the filter on the calling thread (with TSYNC if the profile
    /// asked for it). Needs no_new_privs or CAP_SYS_ADMIN.
    pub fn load(&self) -> std::io::Result<()> {
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at our program for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The program's instructions as (code, jt, jf, k).
    pub fn instructions(&self) -> impl Iterator<Item = (u16, u8, u8, u32)> + '_ {
        self.program.iter().map(|i| (i.code, i.jt, i.jf, i.k))
    }

    /// The seccomp(2) flags to load it with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Instructions in the program.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.program.len() * 8 + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&(self.program.len() as u32).to_ne_bytes());
        for i in &self.program {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    fn from_bytes(b: &[u8]) -> Option<Bpf> {
        let (body, sum) = b.split_at_checked(b.len().checked_sub(32)?)?;
        if Sha256::digest(body).as_slice() != sum || !body.starts_with(MAGIC) {
            return None;
        }
        let flags = u32::from_ne_bytes(body.get(8..12)?.try_into().ok()?);
        let n = u32::from_ne_bytes(body.get(12..16)?.try_into().ok()?) as usize;
        let code = body.get(16..)?;
        if n == 0 || n > u16::MAX as usize || code.len() != n * 8 {
            return None;
        }
        let program = code
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Some(Bpf { program, flags })
    }

    /// Writes the filter to `path` (atomically: a reader sees all or none).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, self.to_bytes()).with_context(|| format!("{}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))
    }

    /// Reads a filter `save` wrote; an error if it is missing or damaged.
    pub fn read(path: &Path) -> Result<Bpf> {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        Bpf::from_bytes(&bytes)
            .ok_or_else(|| anyhow!("{}: not an intact compiled seccomp filter", path.display()))
    }
}

/// Whether atoll compiles and loads this profile itself; a profile that
/// hands syscalls to a notifier stays with libcontainer (the notifier's
/// descriptor must reach the listener).
pub fn loadable(profile: &LinuxSeccomp) -> bool {
    !libcontainer::seccomp::is_notify(profile)
}

/// The filter for `profile`, from the cache directory `dir` or compiled
/// (and then kept there).
pub fn cached(dir: &Path, profile: &LinuxSeccomp) -> Result<Bpf> {
    keep(dir, profile, None)
}

/// [`cached`], and a copy of the filter at `dest` (for exec): a hard link
/// to the cache file when there is one (files in the cache are never
/// written in place, so the link stays what it was; and removing it with
/// the container frees no disk blocks, which costs a discard on a
/// `discard`-mounted disk), else a file of its own.
pub fn cached_with_copy(dir: &Path, profile: &LinuxSeccomp, dest: &Path) -> Result<Bpf> {
    keep(dir, profile, Some(dest))
}

fn keep(dir: &Path, profile: &LinuxSeccomp, dest: Option<&Path>) -> Result<Bpf> {
    let path = cache_path(dir, profile)?;
    let bpf = match Bpf::read(&path) {
        Ok(bpf) => bpf,
        Err(_) => {
            let bpf = compile(profile)?;
            // A cache that cannot be written only costs time.
            if let Err(e) = std::fs::create_dir_all(dir)
                .map_err(anyhow::Error::from)
                .and_then(|_| bpf.save(&path))
            {
                tracing::debug!("seccomp filter cache: {e:#}");
            }
            bpf
        }
    };
    if let Some(dest) = dest
        && std::fs::hard_link(&path, dest).is_err()
    {
        bpf.save(dest)?;
    }
    Ok(bpf)
}

fn cache_path(dir: &Path, profile: &LinuxSeccomp) -> Result<PathBuf> {
    let v = libseccomp::ScmpVersion::current().map_err(|e| anyhow!("libseccomp version: {e}"))?;
    let mut h = Sha256::new();
    h.update(b"atoll seccomp filter 1\n");
    h.update(format!("libseccomp {}.{}.{}\n", v.major, v.minor, v.micro));
    h.update(format!("{:?}\n", ScmpArch::native()));
    h.update(serde_json::to_vec(profile)?);
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(dir.join(format!("{hex}.bpf")))
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            errno
                .try_into()
                .map_err(|_| anyhow!("seccomp: SCMP_ACT_TRACE value {errno} is out of range"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => bail!("seccomp: SCMP_ACT_NOTIFY is not compiled here"),
    })
}

/// libcontainer 0.7's reading of an argument rule: SCMP_CMP_MASKED_EQ's
/// mask is `valueTwo`, the datum `value` (the effective spec has them so).
fn compare(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> ScmpArgCompare {
    let op = match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    };
    ScmpArgCompare::new(index as u32, op, value)
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Compiles `profile` with libseccomp, as libcontainer 0.7 would before
/// loading it: rules whose action is the default one are left out (they
/// are redundant, and libseccomp refuses them), unknown syscall names are
/// skipped (this kernel does not have them), several conditions on one
/// argument become one rule each.
pub fn compile(profile: &LinuxSeccomp) -> Result<Bpf> {
    let err = |what: &str, e: libseccomp::error::SeccompError| anyhow!("seccomp: {what}: {e}");
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("new filter", e))?;
    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // Only meaningful with a notifier.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    for a in profile.architectures().iter().flatten() {
        ctx.add_arch(arch(*a))
            .map_err(|e| err(&format!("architecture {a:?}"), e))?;
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        for name in rule.names() {
            let Ok(nr) = libseccomp::ScmpSyscall::from_name(name) else {
                continue;
            };
            let cmps: Vec<ScmpArgCompare> = rule
                .args()
                .iter()
                .flatten()
                .map(|a| compare(a.index(), a.op(), a.value(), a.value_two()))
                .collect();
            let mut indexes: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
            indexes.sort_unstable();
            let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
            let added = if cmps.is_empty() {
                ctx.add_rule(act, nr).map(|_| ())
            } else if repeated {
                cmps.iter().try_for_each(|c| {
                    ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                        .map(|_| ())
                })
            } else {
                ctx.add_rule_conditional(act, nr, &cmps).map(|_| ())
            };
            added.map_err(|e| err(&format!("rule for {name}"), e))?;
        }
    }
    Ok(Bpf {
        program: export(&ctx)?,
        flags,
    })
}

/// The BPF program libseccomp generates for `ctx`.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    // SAFETY: memfd_create with a NUL-terminated name; the File owns it.
    let fd = unsafe { libc::memfd_create(c"atoll-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd for the seccomp filter");
    }
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    ctx.export_bpf(&f)
        .map_err(|e| anyhow!("seccomp: exporting the filter: {e}"))?;
    f.flush()?;
    f.rewind()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > u16::MAX as usize {
        bail!(
            "seccomp: libseccomp exported {} bytes of filter",
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_profile() -> LinuxSeccomp {
        let caps = [oci_spec::runtime::Capability::Kill].into_iter().collect();
        let spec = crate::effective::effective_spec(
            &{
                let mut s = oci_spec::runtime::Spec::default();
                let mut p = s.process().clone().unwrap();
                let mut c = p.capabilities().clone().unwrap();
                c.set_bounding(Some(caps));
                p.set_capabilities(Some(c));
                s.set_process(Some(p));
                let mut l = s.linux().clone().unwrap();
                l.set_seccomp(None);
                s.set_linux(Some(l));
                s
            },
            "c",
            Path::new("/b"),
            crate::Isolation::Native,
            false,
        );
        spec.linux().clone().unwrap().seccomp().clone().unwrap()
    }

    #[test]
    fn cached_filters_are_the_compiled_ones_and_damage_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let p = default_profile();
        let compiled = compile(&p).unwrap();
        assert!(compiled.len() > 100, "{}", compiled.len());
        assert_eq!(cached(dir.path(), &p).unwrap(), compiled);
        let file = cache_path(dir.path(), &p).unwrap();
        assert_eq!(Bpf::read(&file).unwrap(), compiled);
        // One flipped bit: not used, compiled again and rewritten.
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert!(Bpf::read(&file).is_err());
        assert_eq!(cached(dir.path(), &p).unwrap(), compiled);
        assert_eq!(Bpf::read(&file).unwrap(), compiled);
        // A copy for a container: the same filter, linked to the cache.
        let copy = dir.path().join("container.bpf");
        assert_eq!(cached_with_copy(dir.path(), &p, &copy).unwrap(), compiled);
        assert_eq!(Bpf::read(&copy).unwrap(), compiled);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&copy).unwrap().ino(),
            std::fs::metadata(&file).unwrap().ino()
        );
        // Another profile, another file.
        let mut other = p.clone();
        other.set_default_errno_ret(Some(libc::ENOSYS as u32));
        assert_ne!(cache_path(dir.path(), &other).unwrap(), file);
    }

    /// The loaded program does what the profile says (in a child: a filter
    /// cannot be removed).
    #[test]
    fn the_loaded_filter_enforces_the_profile() {
        let bpf = compile(&default_profile()).unwrap();
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { libc::fork() } {
            0 => {
                let r = (|| {
                    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                    bpf.load().ok()?;
                    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                    // Allowed.
                    if unsafe { libc::getppid() } <= 0 {
                        return None;
                    }
                    // Not in the allowlist: EPERM.
                    if unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) } >= 0
                        || errno() != libc::EPERM
                    {
                        return None;
                    }
                    // clone3: ENOSYS (libc falls back to clone).
                    if unsafe { libc::syscall(libc::SYS_clone3, 0, 0) } >= 0
                        || errno() != libc::ENOSYS
                    {
                        return None;
                    }
                    // clone with a namespace flag: refused; plain fork works.
                    if unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) } >= 0 {
                        return None;
                    }
                    Some(())
                })();
                unsafe { libc::_exit(if r.is_some() { 0 } else { 1 }) }
            }
            pid => {
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "status {status:#x}"
                );
            }
        }
    }
}
