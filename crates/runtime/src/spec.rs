//! Reading a bundle: config.json parsed with errors that say where, and the
//! checks runc makes before it touches anything.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{Process, Spec};
use serde::de::DeserializeOwned;

/// A bundle that has been read and checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub path: PathBuf,
    /// The spec as the bundle wrote it (rootfs made absolute).
    pub spec: Spec,
    /// Absolute, canonical rootfs.
    pub rootfs: PathBuf,
}

/// Parses JSON into `T`, naming the field path, line and column on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            anyhow!("{inner}")
        } else {
            anyhow!("{path}: {inner}")
        }
    })
}

/// Loads and validates `<bundle>/config.json`.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let shown = bundle.display();
    let path = std::fs::canonicalize(bundle).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!("bundle {shown} does not exist"),
        _ => anyhow!("bundle {shown}: {e}"),
    })?;
    if !path.is_dir() {
        bail!("bundle {shown} is not a directory");
    }
    let config = path.join("config.json");
    let bytes = std::fs::read(&config).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!("bundle {shown}: config.json not found"),
        _ => anyhow!("{}: {e}", config.display()),
    })?;
    let mut spec: Spec = parse_json(&bytes).with_context(|| format!("{}", config.display()))?;
    check_spec(&spec).with_context(|| format!("{}", config.display()))?;

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| anyhow!("{}: root is missing", config.display()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        path.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!(
            "rootfs {} (root.path in config.json) does not exist",
            rootfs.display()
        ),
        _ => anyhow!("rootfs {}: {e}", rootfs.display()),
    })?;
    if !rootfs.is_dir() {
        bail!("rootfs {} is not a directory", rootfs.display());
    }
    let mut root = root.clone();
    root.set_path(rootfs.clone());
    spec.set_root(Some(root));
    Ok(Bundle { path, spec, rootfs })
}

/// Checks runc makes on the spec itself.
pub fn check_spec(spec: &Spec) -> Result<()> {
    if !spec.version().starts_with("1.") {
        bail!(
            "ociVersion {:?} is not supported (atoll implements runtime-spec 1.x)",
            spec.version()
        );
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow!("process is missing"))?;
    check_process(process)?;
    if spec.linux().is_none() {
        bail!("linux is missing");
    }
    Ok(())
}

pub fn check_process(process: &Process) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => bail!("process.args is empty: nothing to run"),
    }
    if !process.cwd().is_absolute() {
        bail!(
            "process.cwd {:?} is not an absolute path",
            process.cwd().display()
        );
    }
    for (i, env) in process.env().iter().flatten().enumerate() {
        if !env.contains('=') {
            bail!("process.env[{i}] {env:?} is not of the form NAME=value");
        }
    }
    Ok(())
}

/// Loads an exec `--process` file (a runtime-spec `process` object).
pub fn load_process(path: &Path) -> Result<Process> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read(path).with_context(|| format!("process file {}", path.display()))?
    };
    let process: Process =
        parse_json(&bytes).with_context(|| format!("process file {}", path.display()))?;
    check_process(&process).with_context(|| format!("process file {}", path.display()))?;
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    fn good() -> String {
        serde_json::to_string_pretty(&Spec::default()).unwrap()
    }

    #[test]
    fn loads_default_spec() {
        let dir = bundle_with(&good());
        let b = load_bundle(dir.path()).unwrap();
        assert!(b.rootfs.is_absolute());
        assert_eq!(b.spec.root().as_ref().unwrap().path(), &b.rootfs);
    }

    #[test]
    fn malformed_json_names_the_place() {
        let dir =
            bundle_with("{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {\"args\": \"sh\"}\n}");
        let err = format!("{:#}", load_bundle(dir.path()).unwrap_err());
        assert!(err.contains("process.args"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let dir = bundle_with("{ not json");
        let err = format!("{:#}", load_bundle(dir.path()).unwrap_err());
        assert!(err.contains("line 1 column 3"), "{err}");
    }

    #[test]
    fn missing_pieces() {
        let err = format!(
            "{:#}",
            load_bundle(Path::new("/nonexistent/b")).unwrap_err()
        );
        assert!(err.contains("does not exist"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", load_bundle(dir.path()).unwrap_err());
        assert!(err.contains("config.json not found"), "{err}");

        let dir = bundle_with(&good());
        std::fs::remove_dir(dir.path().join("rootfs")).unwrap();
        let err = format!("{:#}", load_bundle(dir.path()).unwrap_err());
        assert!(
            err.contains("rootfs") && err.contains("does not exist"),
            "{err}"
        );

        let mut spec = Spec::default();
        spec.set_version("0.9".into());
        let dir = bundle_with(&serde_json::to_string(&spec).unwrap());
        let err = format!("{:#}", load_bundle(dir.path()).unwrap_err());
        assert!(err.contains("ociVersion"), "{err}");

        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap();
        p.set_args(Some(vec![]));
        spec.set_process(Some(p));
        let dir = bundle_with(&serde_json::to_string(&spec).unwrap());
        let err = format!("{:#}", load_bundle(dir.path()).unwrap_err());
        assert!(err.contains("process.args is empty"), "{err}");
    }
}
