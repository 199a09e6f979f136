//! What selects how the shim runs atoll: the shim options file that
//! containerd names in a runtime's options, and the per-container record
//! of the choices made at create (read back by `delete` after a crash).
//!
//! containerd hands non-runc shims their options as
//! `runtimeoptions.v1.Options { TypeUrl, ConfigPath }` (CRI's
//! `[...runtimes.NAME.options]` table, `ctr run --runtime-config-path`).
//! `ConfigPath` names a TOML file:
//!
//! ```toml
//! isolation = "userspace"            # level of every container of this runtime
//! config = "/etc/atoll/config.toml"  # atoll's node configuration (--config)
//! root = "/run/containerd/atoll"     # state root; the namespace is appended
//! binary = "/usr/local/bin/atoll"    # the atoll binary
//! systemd_cgroup = false
//! ```
//!
//! so one shim binary serves several containerd runtimes (`atoll`,
//! `atoll-native`), each with its own file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use atoll_runtime::Isolation;
use containerd_shim::protos::protobuf::CodedInputStream;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use serde::{Deserialize, Serialize};

/// Default state root; the containerd namespace is appended (like runc's
/// `/run/containerd/runc/<namespace>`).
pub const DEFAULT_ROOT: &str = "/run/containerd/atoll";

/// Type URL containerd gives `runtimeoptions.v1.Options`.
pub const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";

/// Value `atoll install` writes in `TypeUrl` (informational: it names the
/// content of the file at `ConfigPath`).
pub const OPTIONS_TYPE_URL: &str = "io.containerd.atoll.v1.options";

/// The shim options file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShimOptions {
    /// Level of every container this runtime creates (`--isolation`).
    /// Absent: atoll's own choice (annotation, node config, native).
    pub isolation: Option<Isolation>,
    /// atoll's node configuration file (`--config`).
    pub config: Option<PathBuf>,
    /// State root (the containerd namespace is appended).
    pub root: Option<PathBuf>,
    /// The atoll binary (default: next to the shim, else on PATH).
    pub binary: Option<PathBuf>,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

impl ShimOptions {
    pub fn parse(text: &str) -> Result<ShimOptions> {
        toml::from_str(text)
            .map_err(|e| anyhow!("{}", atoll_runtime::config::one_line(&e.to_string())))
    }

    pub fn load(path: &Path) -> Result<ShimOptions> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("shim options {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("shim options {}", path.display()))
    }

    /// Options from a task's `options` field: nothing means defaults.
    pub fn from_any(any: Option<&Any>) -> Result<ShimOptions> {
        let Some(any) = any.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
            return Ok(ShimOptions::default());
        };
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        if name != RUNTIME_OPTIONS_TYPE {
            bail!(
                "runtime options of type {:?} are not understood (expected {RUNTIME_OPTIONS_TYPE}: \
                 set ConfigPath to an atoll shim options file)",
                any.type_url
            );
        }
        let (_type_url, config_path) = decode_runtime_options(&any.value)?;
        if config_path.is_empty() {
            return Ok(ShimOptions::default());
        }
        Self::load(Path::new(&config_path))
    }
}

/// Decodes `runtimeoptions.v1.Options`: `string type_url = 1; string
/// config_path = 2;` (the message is too small to need generated code).
pub fn decode_runtime_options(bytes: &[u8]) -> Result<(String, String)> {
    let mut is = CodedInputStream::from_bytes(bytes);
    let (mut type_url, mut config_path) = (String::new(), String::new());
    while let Some(tag) = is.read_raw_tag_or_eof().context("runtime options")? {
        match tag {
            // field 1, wire type 2 (length-delimited)
            0x0a => type_url = is.read_string().context("runtime options TypeUrl")?,
            0x12 => config_path = is.read_string().context("runtime options ConfigPath")?,
            t => {
                let wire = containerd_shim::protos::protobuf::rt::WireType::new(t & 7)
                    .ok_or_else(|| anyhow!("runtime options: bad wire type in tag {t}"))?;
                is.skip_field(wire).context("runtime options")?;
            }
        }
    }
    Ok((type_url, config_path))
}

/// Everything needed to run atoll for one container; saved in the bundle
/// as `atoll-shim.json` so the `delete` action can clean up after a crash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AtollCtx {
    pub binary: PathBuf,
    /// State root of this namespace.
    pub root: PathBuf,
    pub config: Option<PathBuf>,
    pub isolation: Option<Isolation>,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

pub const CTX_FILE: &str = "atoll-shim.json";

impl AtollCtx {
    pub fn new(opts: &ShimOptions, namespace: &str) -> Result<AtollCtx> {
        if namespace.is_empty() || namespace.contains('/') || namespace.starts_with('.') {
            bail!("containerd namespace {namespace:?} cannot name a directory");
        }
        let root = opts
            .root
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
            .join(namespace);
        let binary = match &opts.binary {
            Some(b) => b.clone(),
            None => default_binary()?,
        };
        Ok(AtollCtx {
            binary,
            root,
            config: opts.config.clone(),
            isolation: opts.isolation,
            systemd_cgroup: opts.systemd_cgroup,
        })
    }

    pub fn save(&self, bundle: &Path) -> Result<()> {
        let path = bundle.join(CTX_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(bundle: &Path) -> Result<AtollCtx> {
        let path = bundle.join(CTX_FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// atoll's runtime library with the same root and configuration as the
    /// binary gets, for the calls the shim makes in-process.
    pub fn runtime(&self) -> Result<atoll_runtime::Runtime> {
        let config = atoll_runtime::Config::load(self.config.as_deref())?;
        Ok(atoll_runtime::Runtime::new(
            self.root.clone(),
            self.systemd_cgroup,
            config,
        ))
    }
}

/// The atoll binary next to the shim (both are installed together), else
/// the one on PATH.
pub fn default_binary() -> Result<PathBuf> {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let sibling = dir.join("atoll");
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join("atoll");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "the atoll binary is neither next to the shim nor on PATH (set `binary` in the shim options)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(type_url: &str, path: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for (tag, s) in [(0x0a, type_url), (0x12, path)] {
            if s.is_empty() {
                continue;
            }
            v.push(tag);
            v.push(s.len() as u8);
            v.extend_from_slice(s.as_bytes());
        }
        v
    }

    #[test]
    fn decodes_runtimeoptions() {
        let (t, p) = decode_runtime_options(&encode("x.y", "/etc/atoll/a.toml")).unwrap();
        assert_eq!((t.as_str(), p.as_str()), ("x.y", "/etc/atoll/a.toml"));
        // an unknown varint field (3) is skipped
        let mut b = encode("", "/p");
        b.extend_from_slice(&[0x18, 0x05]);
        assert_eq!(decode_runtime_options(&b).unwrap().1, "/p");
        assert!(decode_runtime_options(&[0x12, 0x09, b'a']).is_err());
    }

    #[test]
    fn options_file_and_any() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("atoll.toml");
        std::fs::write(
            &f,
            "isolation = \"userspace\"\nroot = \"/run/x\"\nbinary = \"/bin/atoll\"\n",
        )
        .unwrap();
        let any = Any {
            type_url: RUNTIME_OPTIONS_TYPE.into(),
            value: encode(OPTIONS_TYPE_URL, f.to_str().unwrap()),
            ..Default::default()
        };
        let o = ShimOptions::from_any(Some(&any)).unwrap();
        assert_eq!(o.isolation, Some(Isolation::Userspace));
        let ctx = AtollCtx::new(&o, "k8s.io").unwrap();
        assert_eq!(ctx.root, PathBuf::from("/run/x/k8s.io"));
        assert_eq!(ctx.binary, PathBuf::from("/bin/atoll"));

        assert_eq!(ShimOptions::from_any(None).unwrap(), ShimOptions::default());
        let wrong = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![],
            ..Default::default()
        };
        let e = ShimOptions::from_any(Some(&wrong)).unwrap_err().to_string();
        assert!(e.contains("containerd.runc.v1.Options"), "{e}");
        std::fs::write(&f, "isolaton = \"native\"\n").unwrap();
        let e = format!("{:#}", ShimOptions::from_any(Some(&any)).unwrap_err());
        assert!(e.contains("isolaton") && !e.contains('\n'), "{e}");
        assert!(AtollCtx::new(&ShimOptions::default(), "../x").is_err());
    }
}
