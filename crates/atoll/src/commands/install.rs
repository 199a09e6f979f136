//! `atoll install` and `atoll uninstall`: register atoll with containerd
//! (CRI runtimes `atoll` and `atoll-native` on the shim
//! `io.containerd.atoll.v2`), podman (containers.conf) and Docker
//! (daemon.json). Edits are idempotent, keep everything else in the file
//! as it was, back the file up before changing it, and can be previewed
//! with `--dry-run`; `uninstall` removes exactly what `install` adds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{ArgGroup, Args};
use serde_json::{Value, json};
use toml_edit::{Array, DocumentMut, Item, Table, value};

/// Runtime type containerd resolves to `containerd-shim-atoll-v2`.
pub const SHIM_RUNTIME_TYPE: &str = "io.containerd.atoll.v2";
/// `TypeUrl` of the shim options (names the content of `ConfigPath`).
pub const SHIM_OPTIONS_TYPE: &str = "io.containerd.atoll.v1.options";
/// First line of every shim options file install writes; uninstall only
/// removes files that start with it.
const OPTIONS_HEADER: &str = "# Written by `atoll install --containerd`";
/// Comment on the `runc` runtime install adds when it creates the
/// `runtimes` table (uninstall removes that entry again).
const DEFAULT_RUNC_MARK: &str =
    "# Added by `atoll install`: containerd's default runtime (a runtimes table must list it).";
/// containers.conf's own default for `runtime_supports_json` (podman 4).
const PODMAN_JSON_RUNTIMES: &[&str] = &["crun", "runc", "kata", "runsc", "krun"];

/// The runtimes atoll registers: handler name and isolation level.
const RUNTIMES: &[(&str, &str)] = &[("atoll", "userspace"), ("atoll-native", "native")];

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["containerd", "podman", "docker", "vm_assets"])))]
pub struct InstallArgs {
    /// containerd: CRI runtimes `atoll` (userspace) and `atoll-native` (native)
    #[arg(long)]
    pub containerd: bool,
    /// podman: the `atoll` runtime in containers.conf
    #[arg(long)]
    pub podman: bool,
    /// Docker: runtimes `atoll` (userspace) and `atoll-native` in daemon.json
    #[arg(long)]
    pub docker: bool,
    /// The vm level's guest kernel and initramfs: install copies DIR's
    /// vmlinux and initramfs.cpio (from scripts/vm-assets.sh) to where
    /// atoll looks; uninstall removes them
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub vm_assets: Option<Option<PathBuf>>,
    /// The file to edit (default: /etc/containerd/config.toml,
    /// /etc/containers/containers.conf, /etc/docker/daemon.json)
    #[arg(long = "config", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Show what would change and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The atoll binary the entries point at (default: this one)
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Containerd,
    Podman,
    Docker,
}

impl Target {
    fn of(a: &InstallArgs) -> Target {
        if a.containerd {
            Target::Containerd
        } else if a.podman {
            Target::Podman
        } else {
            Target::Docker
        }
    }
    fn name(self) -> &'static str {
        match self {
            Target::Containerd => "containerd",
            Target::Podman => "podman",
            Target::Docker => "docker",
        }
    }
    fn default_path(self) -> &'static str {
        match self {
            Target::Containerd => "/etc/containerd/config.toml",
            Target::Podman => "/etc/containers/containers.conf",
            Target::Docker => "/etc/docker/daemon.json",
        }
    }
}

/// One file's change: `new: None` removes the file.
#[derive(Debug, PartialEq)]
struct Change {
    path: PathBuf,
    old: Option<String>,
    new: Option<String>,
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn atoll_binary(a: &InstallArgs) -> Result<PathBuf> {
    let p = match &a.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating the atoll binary")?,
    };
    std::fs::canonicalize(&p).with_context(|| format!("atoll binary {}", p.display()))
}

/// `atoll install`.
pub fn install(root: &Path, root_is_default: bool, a: &InstallArgs) -> Result<i32> {
    let target = Target::of(a);
    let path = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(target.default_path()));
    let binary = atoll_binary(a)?;
    let old = read_optional(&path)?;
    let text = old.clone().unwrap_or_default();
    let mut changes = Vec::new();
    match target {
        Target::Containerd => {
            let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            let mut entries = Vec::new();
            for (name, level) in RUNTIMES {
                let opts_path = dir.join(format!("{name}.toml"));
                let root = (!root_is_default).then_some(root);
                let opts = shim_options(name, level, &binary, root);
                changes.push(Change {
                    path: opts_path.clone(),
                    old: read_optional(&opts_path)?,
                    new: Some(opts),
                });
                entries.push((name.to_string(), opts_path));
            }
            let new = containerd_install(&text, &entries)
                .with_context(|| format!("{}", path.display()))?;
            changes.insert(
                0,
                Change {
                    path: path.clone(),
                    old,
                    new: Some(new),
                },
            );
        }
        Target::Podman => {
            let new =
                podman_install(&text, &binary).with_context(|| format!("{}", path.display()))?;
            changes.push(Change {
                path: path.clone(),
                old,
                new: Some(new),
            });
        }
        Target::Docker => {
            let new =
                docker_install(&text, &binary).with_context(|| format!("{}", path.display()))?;
            changes.push(Change {
                path: path.clone(),
                old,
                new: Some(new),
            });
        }
    }
    apply(target, changes, a.dry_run)?;
    if !a.dry_run {
        notes(target, &binary);
    }
    Ok(0)
}

/// `atoll uninstall`.
pub fn uninstall(a: &InstallArgs) -> Result<i32> {
    let target = Target::of(a);
    let path = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(target.default_path()));
    let Some(old) = read_optional(&path)? else {
        println!(
            "{}: {} does not exist; nothing to remove",
            target.name(),
            path.display()
        );
        return Ok(0);
    };
    let mut changes = Vec::new();
    let new = match target {
        Target::Containerd => {
            let (new, option_files) =
                containerd_uninstall(&old).with_context(|| format!("{}", path.display()))?;
            for f in option_files {
                if let Some(t) = read_optional(&f)?
                    && t.starts_with(OPTIONS_HEADER)
                {
                    changes.push(Change {
                        path: f,
                        old: Some(t),
                        new: None,
                    });
                }
            }
            new
        }
        Target::Podman => podman_uninstall(&old).with_context(|| format!("{}", path.display()))?,
        Target::Docker => docker_uninstall(&old).with_context(|| format!("{}", path.display()))?,
    };
    changes.insert(
        0,
        Change {
            path,
            old: Some(old),
            new: Some(new),
        },
    );
    apply(target, changes, a.dry_run).map(|_| 0)
}

/// Writes (or, with `dry_run`, shows) the changes; backs up every existing
/// file it modifies or removes.
fn apply(target: Target, changes: Vec<Change>, dry_run: bool) -> Result<()> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut changed = false;
    for c in changes {
        if c.old == c.new {
            continue;
        }
        changed = true;
        let p = c.path.display();
        if dry_run {
            match (&c.old, &c.new) {
                (None, Some(_)) => println!("would create {p}:"),
                (Some(_), None) => println!("would remove {p}:"),
                _ => println!("would change {p}:"),
            }
            print!(
                "{}",
                diff(
                    c.old.as_deref().unwrap_or(""),
                    c.new.as_deref().unwrap_or("")
                )
            );
            continue;
        }
        if c.old.is_some() {
            let backup = PathBuf::from(format!("{p}.atoll-backup-{stamp}"));
            std::fs::copy(&c.path, &backup)
                .with_context(|| format!("backing up {p} to {}", backup.display()))?;
            println!("{}: backed up {p} to {}", target.name(), backup.display());
        }
        match &c.new {
            Some(text) => {
                if let Some(dir) = c.path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let tmp = PathBuf::from(format!("{p}.atoll-tmp"));
                std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
                if let Ok(meta) = std::fs::metadata(&c.path) {
                    let _ = std::fs::set_permissions(&tmp, meta.permissions());
                }
                std::fs::rename(&tmp, &c.path).with_context(|| format!("writing {p}"))?;
                println!(
                    "{}: {} {p}",
                    target.name(),
                    if c.old.is_some() {
                        "updated"
                    } else {
                        "created"
                    }
                );
            }
            None => {
                std::fs::remove_file(&c.path).with_context(|| format!("removing {p}"))?;
                println!("{}: removed {p}", target.name());
            }
        }
    }
    if !changed {
        println!("{}: nothing to change", target.name());
    }
    Ok(())
}

fn notes(target: Target, binary: &Path) {
    match target {
        Target::Containerd => {
            let shim = binary.with_file_name("containerd-shim-atoll-v2");
            if !shim.exists() {
                println!(
                    "containerd: note: {} is missing; install containerd-shim-atoll-v2 next to atoll",
                    shim.display()
                );
            }
            println!(
                "containerd: restart containerd; {} must be on its PATH (runtime type {SHIM_RUNTIME_TYPE})",
                shim.file_name().unwrap_or_default().to_string_lossy()
            );
        }
        Target::Podman => println!("podman: use `podman --runtime atoll`"),
        Target::Docker => println!("docker: restart dockerd, then `docker run --runtime atoll`"),
    }
}

/// The shim options file of one containerd runtime.
fn shim_options(name: &str, level: &str, binary: &Path, root: Option<&Path>) -> String {
    let mut s = format!(
        "{OPTIONS_HEADER}: options of containerd's runtime {name:?}\n\
         # (the shim {SHIM_RUNTIME_TYPE} reads this file, named by the runtime's ConfigPath).\n\
         isolation = {level:?}\n\
         binary = {:?}\n",
        binary.display().to_string()
    );
    if let Some(r) = root {
        s.push_str(&format!("root = {:?}\n", r.display().to_string()));
    }
    s
}

fn parse_toml(text: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| {
        anyhow!(
            "not valid TOML: {}",
            atoll_runtime::config::one_line(&e.to_string())
        )
    })
}

/// The CRI plugin's table name for a config file's `version`.
fn cri_plugin(doc: &DocumentMut) -> &'static str {
    match doc.get("version").and_then(|v| v.as_integer()) {
        Some(3) => "io.containerd.cri.v1.runtime",
        Some(2) => "io.containerd.grpc.v1.cri",
        _ => "cri",
    }
}

/// The table at `path`, created (implicit, so it adds no header of its
/// own) where missing.
fn table_at<'a>(root: &'a mut Table, path: &[&str]) -> Result<&'a mut Table> {
    let mut t = root;
    for k in path {
        if !t.contains_key(k) {
            let mut n = Table::new();
            n.set_implicit(true);
            t.insert(k, Item::Table(n));
        }
        t = t
            .get_mut(k)
            .and_then(Item::as_table_mut)
            .ok_or_else(|| anyhow!("{k} is not a table"))?;
    }
    Ok(t)
}

fn runtimes_path(plugin: &str) -> [&str; 4] {
    ["plugins", plugin, "containerd", "runtimes"]
}

fn containerd_install(text: &str, entries: &[(String, PathBuf)]) -> Result<String> {
    let mut doc = parse_toml(text)?;
    let plugin = cri_plugin(&doc);
    let default_runtime = doc
        .get("plugins")
        .and_then(|p| p.get(plugin))
        .and_then(|c| c.get("containerd"))
        .and_then(|c| c.get("default_runtime_name"))
        .and_then(Item::as_str)
        .unwrap_or("runc")
        .to_string();
    let runtimes = table_at(doc.as_table_mut(), &runtimes_path(plugin))?;
    // A `runtimes` table replaces containerd's built-in one, whose only
    // entry is the default runtime `runc`: CRI refuses to start when the
    // default runtime is not listed, so list it as containerd would.
    if default_runtime == "runc" && !runtimes.contains_key("runc") {
        let mut rt = Table::new();
        rt.insert("runtime_type", value("io.containerd.runc.v2"));
        rt.decor_mut()
            .set_prefix(format!("\n{DEFAULT_RUNC_MARK}\n"));
        runtimes.insert("runc", Item::Table(rt));
    }
    for (name, opts) in entries {
        let cfg = opts.display().to_string();
        let want_type = SHIM_RUNTIME_TYPE;
        if let Some(existing) = runtimes.get_mut(name).and_then(Item::as_table_mut) {
            // Update in place (keeps its position and any other keys).
            if existing.get("runtime_type").and_then(Item::as_str) != Some(want_type) {
                existing.insert("runtime_type", value(want_type));
            }
            let o = table_at(existing, &["options"])?;
            o.set_implicit(false);
            if o.get("TypeUrl").and_then(Item::as_str) != Some(SHIM_OPTIONS_TYPE) {
                o.insert("TypeUrl", value(SHIM_OPTIONS_TYPE));
            }
            if o.get("ConfigPath").and_then(Item::as_str) != Some(cfg.as_str()) {
                o.insert("ConfigPath", value(cfg));
            }
            continue;
        }
        let mut rt = Table::new();
        rt.insert("runtime_type", value(want_type));
        let mut o = Table::new();
        o.insert("TypeUrl", value(SHIM_OPTIONS_TYPE));
        o.insert("ConfigPath", value(cfg));
        rt.insert("options", Item::Table(o));
        runtimes.insert(name, Item::Table(rt));
    }
    Ok(doc.to_string())
}

/// Removes the runtimes install added; returns the new text and the
/// options files they named.
fn containerd_uninstall(text: &str) -> Result<(String, Vec<PathBuf>)> {
    let mut doc = parse_toml(text)?;
    let plugin = cri_plugin(&doc);
    let mut files = Vec::new();
    let path = runtimes_path(plugin);
    let Some(runtimes) = path.iter().try_fold(doc.as_table_mut(), |t, k| {
        t.get_mut(k).and_then(Item::as_table_mut)
    }) else {
        return Ok((text.to_string(), files));
    };
    for (name, _) in RUNTIMES {
        let ours = runtimes
            .get(name)
            .and_then(|r| r.get("runtime_type"))
            .and_then(Item::as_str)
            == Some(SHIM_RUNTIME_TYPE);
        if !ours {
            continue;
        }
        if let Some(f) = runtimes
            .get(name)
            .and_then(|r| r.get("options"))
            .and_then(|o| o.get("ConfigPath"))
            .and_then(Item::as_str)
        {
            files.push(PathBuf::from(f));
        }
        runtimes.remove(name);
    }
    let added_runc = runtimes
        .get("runc")
        .and_then(Item::as_table)
        .and_then(|t| t.decor().prefix())
        .and_then(|p| p.as_str())
        .is_some_and(|p| p.contains(DEFAULT_RUNC_MARK));
    if added_runc && runtimes.len() == 1 {
        runtimes.remove("runc");
    }
    prune_empty_implicit(doc.as_table_mut(), &path);
    Ok((doc.to_string(), files))
}

/// Removes the tables along `path` that install created implicitly and
/// that are empty now, deepest first.
fn prune_empty_implicit(root: &mut Table, path: &[&str]) {
    if path.is_empty() {
        return;
    }
    let Some(child) = root.get_mut(path[0]).and_then(Item::as_table_mut) else {
        return;
    };
    prune_empty_implicit(child, &path[1..]);
    if child.is_empty() && child.is_implicit() {
        root.remove(path[0]);
    }
}

fn podman_install(text: &str, binary: &Path) -> Result<String> {
    let mut doc = parse_toml(text)?;
    let bin = binary.display().to_string();
    let engine = table_at(doc.as_table_mut(), &["engine"])?;
    engine.set_implicit(false);
    // runtime_supports_json: setting it replaces podman's default list,
    // so a new list starts from that default.
    match engine.get_mut("runtime_supports_json") {
        Some(item) => {
            let arr = item
                .as_array_mut()
                .ok_or_else(|| anyhow!("engine.runtime_supports_json is not an array"))?;
            if !arr.iter().any(|v| v.as_str() == Some("atoll")) {
                arr.push("atoll");
            }
        }
        None => {
            let mut arr: Array = PODMAN_JSON_RUNTIMES.iter().copied().collect();
            arr.push("atoll");
            engine.insert("runtime_supports_json", value(arr));
        }
    }
    let runtimes = table_at(engine, &["runtimes"])?;
    runtimes.set_implicit(false);
    let want: Array = [bin.as_str()].into_iter().collect();
    let same = runtimes
        .get("atoll")
        .and_then(Item::as_array)
        .is_some_and(|a| a.iter().map(|v| v.as_str()).eq([Some(bin.as_str())]));
    if !same {
        runtimes.insert("atoll", value(want));
    }
    Ok(doc.to_string())
}

fn podman_uninstall(text: &str) -> Result<String> {
    let mut doc = parse_toml(text)?;
    let Some(engine) = doc.get_mut("engine").and_then(Item::as_table_mut) else {
        return Ok(text.to_string());
    };
    if let Some(rt) = engine.get_mut("runtimes").and_then(Item::as_table_mut) {
        rt.remove("atoll");
        if rt.is_empty() {
            engine.remove("runtimes");
        }
    }
    if let Some(arr) = engine
        .get_mut("runtime_supports_json")
        .and_then(Item::as_array_mut)
    {
        arr.retain(|v| v.as_str() != Some("atoll"));
        // install wrote podman's default plus atoll: back to no setting.
        if arr
            .iter()
            .map(|v| v.as_str())
            .eq(PODMAN_JSON_RUNTIMES.iter().map(|s| Some(*s)))
        {
            engine.remove("runtime_supports_json");
        }
    }
    if engine.is_empty() {
        doc.remove("engine");
    }
    Ok(doc.to_string())
}

fn docker_entries(binary: &Path) -> Vec<(&'static str, Value)> {
    RUNTIMES
        .iter()
        .map(|(name, level)| {
            (
                *name,
                json!({"path": binary.display().to_string(), "runtimeArgs": ["--isolation", level]}),
            )
        })
        .collect()
}

fn parse_daemon_json(text: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| anyhow!("not valid JSON: {e}"))?;
    if !v.is_object() {
        bail!("not a JSON object");
    }
    Ok(v)
}

fn docker_install(text: &str, binary: &Path) -> Result<String> {
    let mut v = parse_daemon_json(text)?;
    let before = v.clone();
    let runtimes = v
        .as_object_mut()
        .unwrap()
        .entry("runtimes")
        .or_insert_with(|| json!({}));
    let map = runtimes
        .as_object_mut()
        .ok_or_else(|| anyhow!("\"runtimes\" is not an object"))?;
    for (name, entry) in docker_entries(binary) {
        map.insert(name.to_string(), entry);
    }
    if v == before {
        return Ok(text.to_string());
    }
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

fn docker_uninstall(text: &str) -> Result<String> {
    let mut v = parse_daemon_json(text)?;
    let before = v.clone();
    let obj = v.as_object_mut().unwrap();
    if let Some(map) = obj.get_mut("runtimes").and_then(Value::as_object_mut) {
        for (name, _) in RUNTIMES {
            let ours = map
                .get(*name)
                .and_then(|e| e.get("runtimeArgs"))
                .and_then(Value::as_array)
                .is_some_and(|a| a.first().and_then(Value::as_str) == Some("--isolation"));
            if ours {
                map.remove(*name);
            }
        }
        if map.is_empty() {
            obj.remove("runtimes");
        }
    }
    if v == before {
        return Ok(text.to_string());
    }
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// A line diff (`-` removed, `+` added, two lines of context).
fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // LCS table; config files are small.
    let mut l = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || l[i][j + 1] > l[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| {
        let lo = k.saturating_sub(2);
        let hi = (k + 3).min(ops.len());
        ops[lo..hi].iter().any(|(c, _)| *c != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (c, line)) in ops.iter().enumerate() {
        if *c == ' ' && !near(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("  ...\n");
            skipped = false;
        }
        out.push_str(&format!("{c} {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTAINERD_V2: &str = r#"version = 2

# keep this comment
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
"#;

    fn entries() -> Vec<(String, PathBuf)> {
        vec![
            ("atoll".into(), PathBuf::from("/etc/containerd/atoll.toml")),
            (
                "atoll-native".into(),
                PathBuf::from("/etc/containerd/atoll-native.toml"),
            ),
        ]
    }

    #[test]
    fn containerd_install_is_idempotent_and_reversible() {
        let once = containerd_install(CONTAINERD_V2, &entries()).unwrap();
        let doc: DocumentMut = once.parse().unwrap();
        let rts = &doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"];
        assert_eq!(
            rts["atoll"]["runtime_type"].as_str(),
            Some(SHIM_RUNTIME_TYPE)
        );
        assert_eq!(
            rts["atoll-native"]["options"]["ConfigPath"].as_str(),
            Some("/etc/containerd/atoll-native.toml")
        );
        assert_eq!(
            rts["runc"]["runtime_type"].as_str(),
            Some("io.containerd.runc.v2")
        );
        assert!(
            once.starts_with(CONTAINERD_V2),
            "existing text untouched:\n{once}"
        );
        assert_eq!(containerd_install(&once, &entries()).unwrap(), once);
        let (back, files) = containerd_uninstall(&once).unwrap();
        assert_eq!(back, CONTAINERD_V2);
        assert_eq!(files.len(), 2);
        // nothing of ours: nothing to remove
        assert_eq!(
            containerd_uninstall(CONTAINERD_V2).unwrap().0,
            CONTAINERD_V2
        );
    }

    /// Debian's /etc/containerd/config.toml: no runtimes table at all.
    const CONTAINERD_DEBIAN: &str = r#"version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"#;

    #[test]
    fn containerd_keeps_the_default_runtime() {
        let once = containerd_install(CONTAINERD_DEBIAN, &entries()).unwrap();
        let doc: DocumentMut = once.parse().unwrap();
        let rts = &doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"];
        assert_eq!(
            rts["runc"]["runtime_type"].as_str(),
            Some("io.containerd.runc.v2")
        );
        assert!(rts["atoll"].is_table());
        assert_eq!(containerd_install(&once, &entries()).unwrap(), once);
        assert_eq!(containerd_uninstall(&once).unwrap().0, CONTAINERD_DEBIAN);
        // another default runtime is the operator's business
        let other = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"crun\"\n";
        let once = containerd_install(other, &entries()).unwrap();
        assert!(!once.contains("runc"), "{once}");
        assert_eq!(containerd_uninstall(&once).unwrap().0, other);
    }

    #[test]
    fn containerd_versions_and_empty_files() {
        let v1 = containerd_install("", &entries()).unwrap();
        let doc: DocumentMut = v1.parse().unwrap();
        assert!(doc["plugins"]["cri"]["containerd"]["runtimes"]["atoll"].is_table());
        assert_eq!(containerd_uninstall(&v1).unwrap().0, "");
        let v3 = containerd_install("version = 3\n", &entries()).unwrap();
        let doc: DocumentMut = v3.parse().unwrap();
        assert!(
            doc["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["atoll"]
                .is_table()
        );
        // an entry of ours with another options path is updated in place
        let moved =
            containerd_install(&v3, &[("atoll".into(), PathBuf::from("/x/atoll.toml"))]).unwrap();
        assert!(moved.contains("/x/atoll.toml") && !moved.contains("/etc/containerd/atoll.toml"));
        assert!(containerd_install("plugins = 3\n", &entries()).is_err());
        let e = containerd_install("[plugins\n", &entries())
            .unwrap_err()
            .to_string();
        assert!(e.contains("TOML") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn podman_entries() {
        let base = "[containers]\ndefault_ulimits = [\"nofile=1024:1024\"]\n";
        let once = podman_install(base, Path::new("/usr/bin/atoll")).unwrap();
        let doc: DocumentMut = once.parse().unwrap();
        assert_eq!(
            doc["engine"]["runtimes"]["atoll"][0].as_str(),
            Some("/usr/bin/atoll")
        );
        let json: Vec<_> = doc["engine"]["runtime_supports_json"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert!(json.contains(&"runc".to_string()) && json.contains(&"atoll".to_string()));
        assert_eq!(
            podman_install(&once, Path::new("/usr/bin/atoll")).unwrap(),
            once
        );
        assert_eq!(podman_uninstall(&once).unwrap(), base);
        // an existing list is extended, and keeps its other entries after uninstall
        let own = "[engine]\nruntime_supports_json = [\"runc\"]\n";
        let once = podman_install(own, Path::new("/a")).unwrap();
        assert!(once.contains("\"runc\", \"atoll\""), "{once}");
        assert_eq!(podman_uninstall(&once).unwrap(), own);
    }

    #[test]
    fn docker_entries_round_trip() {
        let base = "{\n  \"default-ulimits\": {\"nofile\": {\"Name\": \"nofile\", \"Hard\": 1024, \"Soft\": 1024}}\n}\n";
        let once = docker_install(base, Path::new("/usr/bin/atoll")).unwrap();
        let v: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(v["runtimes"]["atoll"]["path"], "/usr/bin/atoll");
        assert_eq!(
            v["runtimes"]["atoll"]["runtimeArgs"],
            json!(["--isolation", "userspace"])
        );
        assert_eq!(
            v["runtimes"]["atoll-native"]["runtimeArgs"],
            json!(["--isolation", "native"])
        );
        assert_eq!(v["default-ulimits"]["nofile"]["Hard"], 1024);
        assert_eq!(
            docker_install(&once, Path::new("/usr/bin/atoll")).unwrap(),
            once
        );
        let back: Value = serde_json::from_str(&docker_uninstall(&once).unwrap()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(base).unwrap());
        assert!(docker_install("[1]", Path::new("/a")).is_err());
        assert!(
            docker_install("", Path::new("/a"))
                .unwrap()
                .contains("atoll-native")
        );
    }

    #[test]
    fn command_line() {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let c = Cli::try_parse_from([
            "atoll",
            "--root",
            "/run/x",
            "install",
            "--containerd",
            "--config",
            "/tmp/c.toml",
            "--dry-run",
        ])
        .unwrap();
        let Some(Command::Install(a)) = &c.command else {
            panic!("{c:?}")
        };
        assert!(a.containerd && a.dry_run && !a.podman);
        assert_eq!(a.config.as_deref(), Some(Path::new("/tmp/c.toml")));
        assert_eq!(c.root, PathBuf::from("/run/x"));
        // exactly one target
        assert!(Cli::try_parse_from(["atoll", "install"]).is_err());
        assert!(Cli::try_parse_from(["atoll", "uninstall", "--podman", "--docker"]).is_err());
        let c = Cli::try_parse_from(["atoll", "uninstall", "--docker"]).unwrap();
        assert!(
            matches!(c.command, Some(Command::Uninstall(ref a)) if a.docker && a.config.is_none())
        );
    }

    #[test]
    fn diff_shows_changes_with_context() {
        let d = diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nX\ne\nf\ng\n");
        assert_eq!(d, "  ...\n  b\n  c\n- d\n+ X\n  e\n  f\n");
    }
}
