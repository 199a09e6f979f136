//! Running the atoll binary with a private state root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An atoll instance for one test: its own `--root`, so state never mixes.
pub struct Atoll {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub extra: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A finished command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }
    /// Asserts failure with a one-line error on stderr mentioning `what`.
    pub fn fails_with(&self, what: &str) -> &Self {
        assert_ne!(self.code, 0, "command unexpectedly succeeded: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "error is not one line: {self:#?}");
        assert!(
            self.stderr.contains(what),
            "error does not mention {what:?}: {self:#?}"
        );
        self
    }
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Atoll {
    pub fn new(bin: impl Into<PathBuf>) -> Atoll {
        crate::require_root();
        let dir = tempfile::Builder::new()
            .prefix("atoll-test-root-")
            .tempdir_in("/run")
            .expect("state root");
        Atoll {
            bin: bin.into(),
            root: dir.path().to_path_buf(),
            extra: Vec::new(),
            _dir: dir,
        }
    }

    /// Adds global flags to every command (e.g. `--isolation userspace`).
    pub fn with_global(mut self, args: &[&str]) -> Atoll {
        self.extra.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(&self.extra);
        // Audit records of tests stay with the test's state root, not in
        // the machine's /var/log/atoll.
        c.env("ATOLL_AUDIT_LOG", self.root.join("audit.jsonl"));
        c
    }

    /// Runs `atoll <args>` with stdin closed, capturing output.
    ///
    /// Output goes to files, not pipes: a detached container inherits
    /// atoll's stdout and stderr and would hold a pipe open long after
    /// atoll itself has exited.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with_input(args, b"")
    }

    /// Runs `atoll <args>` feeding `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Out {
        use std::io::{Read, Seek, Write};
        let mut stdin = tempfile::tempfile().unwrap();
        stdin.write_all(input).unwrap();
        stdin.rewind().unwrap();
        let mut out = tempfile::tempfile().unwrap();
        let mut err = tempfile::tempfile().unwrap();
        let status = self
            .command()
            .args(args)
            .stdin(stdin)
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("running atoll");
        let mut stdout = String::new();
        let mut stderr = String::new();
        out.rewind().unwrap();
        out.read_to_string(&mut stdout).unwrap();
        err.rewind().unwrap();
        err.read_to_string(&mut stderr).unwrap();
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout,
            stderr,
        }
    }

    /// `atoll state <id>` parsed.
    pub fn state(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout).expect("state is JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls until the container reaches `status` (or panics after 10 s).
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = self.status(id);
            if s == status {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "container {id} stayed {s}, expected {status}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
