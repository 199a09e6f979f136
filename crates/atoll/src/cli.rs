//! runc's command line, as containerd's runc shim, conmon/podman and the
//! OCI validation suites call it, plus atoll's own commands.

use std::path::PathBuf;

use atoll_runtime::Isolation;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "atoll",
    about = "atoll: an OCI runtime with per-container isolation levels for hard multi-tenancy",
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = atoll_runtime::layout::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Isolation level (default: annotation dev.atoll.isolation, config file, native)
    #[arg(long, global = true, value_parser = parse_isolation)]
    pub isolation: Option<Isolation>,
    /// Userspace level platform: systrap or ptrace (default: annotation
    /// dev.atoll.platform, config file, systrap where the host supports it)
    #[arg(long, global = true, env = "ATOLL_PLATFORM")]
    pub platform: Option<String>,
    /// Userspace level network: sandbox (the kernel's own TCP/IP stack on
    /// the interfaces of the container's network namespace, which it takes
    /// over) or host, also named host-stack (the kernel's host sockets in
    /// that namespace)
    /// (default: annotation dev.atoll.network; host for a container sharing
    /// the node's network namespace; config file; sandbox)
    #[arg(long, global = true, env = "ATOLL_NETWORK")]
    pub network: Option<String>,
    /// Userspace level rootfs overlay: none (writes go to the bundle's
    /// rootfs) or root:memory (to a layer in the sandbox's memory, counted
    /// against its memory limit; the rootfs stays unchanged) (default:
    /// annotation dev.atoll.overlay, config file, none)
    #[arg(long, global = true, env = "ATOLL_OVERLAY")]
    pub overlay: Option<String>,
    /// Node configuration file
    #[arg(long, global = true, env = "ATOLL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Tenant policy file (default: config file's `policy`, /etc/atoll/policy.toml if it exists)
    #[arg(long, global = true)]
    pub policy: Option<PathBuf>,
    /// Audit log (default: config file's `audit_log`, /var/log/atoll/audit.jsonl)
    #[arg(long, global = true)]
    pub audit_log: Option<PathBuf>,
    /// Accepted for runc compatibility (checkpointing is not supported)
    #[arg(long, global = true, hide = true)]
    pub criu: Option<PathBuf>,
    /// Accepted for runc compatibility
    #[arg(long, global = true, hide = true)]
    pub rootless: Option<String>,
    /// Print version information
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

fn parse_isolation(s: &str) -> Result<Isolation, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its process waits for `start`)
    Create(CreateArgs),
    /// Start the process of a created container
    Start { id: String },
    /// Print the state of a container as JSON
    State { id: String },
    /// Send a signal to the container's init process
    Kill {
        id: String,
        /// Signal name (TERM, SIGTERM) or number
        #[arg(default_value = "SIGTERM", allow_hyphen_values = true)]
        signal: String,
        /// Send the signal to every process of the container
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and everything it holds
    Delete {
        id: String,
        /// Kill the container first if it is running
        #[arg(short, long)]
        force: bool,
    },
    /// Create and start a container
    Run(RunArgs),
    /// Run a process in a running container
    Exec(ExecArgs),
    /// List the processes of a container
    Ps {
        id: String,
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Options passed to ps(1) for the table format (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only container ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        /// Bundle directory to write config.json into
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print the runtime-spec features this runtime implements
    Features,
    /// Print container events and resource statistics
    Events {
        id: String,
        /// Print statistics once and exit
        #[arg(long)]
        stats: bool,
        /// Seconds between statistics
        #[arg(long, default_value = "5", value_parser = parse_interval)]
        interval: u32,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change a running container's resource limits
    Update {
        id: String,
        /// runtime-spec linux.resources JSON file, or - for stdin
        #[arg(short = 'r', long)]
        resources: Option<PathBuf>,
        #[command(flatten)]
        limits: UpdateLimits,
    },
    /// Print the userspace level's syscall compatibility table (Markdown)
    Compat,
    /// Print the host syscall allowlists of the sandbox's own processes
    /// (Markdown): with --isolation userspace the application kernel's,
    /// gofer's and stubs', with --isolation vm the VMM threads'; both by default
    Allowlists,
    /// Report what this host supports
    Check {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Print the audit trail (JSON lines), filtered; --follow waits for more
    Audit(crate::commands::audit::AuditArgs),
    /// Serve per-container and per-tenant metrics in Prometheus format
    Metrics(crate::commands::metrics::MetricsArgs),
    /// Register atoll with containerd, podman or Docker (edits their configuration)
    Install(crate::commands::install::InstallArgs),
    /// Remove what `atoll install` added
    Uninstall(crate::commands::install::InstallArgs),
}

fn parse_interval(s: &str) -> Result<u32, String> {
    let t = s.trim_end_matches('s');
    t.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("interval {s:?} is not a positive number of seconds"))
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's init pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master fd to
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not give the container a new session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3 on) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Log every workload syscall (userspace level)
    #[arg(long)]
    pub strace: bool,
    /// Userspace sandbox log file (kernel messages, strace output)
    #[arg(long)]
    pub sandbox_log: Option<PathBuf>,
    /// Test hook: make the sandbox attempt this forbidden host syscall
    #[arg(long, hide = true)]
    pub debug_confinement: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return after starting the container
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container after its process exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// Command and arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// runtime-spec process JSON
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Working directory
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variable NAME=value (repeatable)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids (repeatable)
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Capabilities to add, CAP_KILL or KILL (repeatable)
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process (default: the container's noNewPrivileges)
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    pub process_label: Option<String>,
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    /// Exec into a paused container too (the process runs once it is resumed)
    #[arg(long)]
    pub ignore_paused: bool,
    #[arg(long, hide = true)]
    pub cgroup: Option<String>,
}

/// runc's individual `update` flags.
#[derive(Args, Debug, Default)]
pub struct UpdateLimits {
    #[arg(long)]
    pub memory: Option<i64>,
    #[arg(long)]
    pub memory_swap: Option<i64>,
    #[arg(long)]
    pub memory_reservation: Option<i64>,
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_after_the_id() {
        let c = Cli::try_parse_from([
            "atoll",
            "create",
            "c1",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
        ])
        .unwrap();
        match c.command {
            Some(Command::Create(a)) => {
                assert_eq!(a.id, "c1");
                assert_eq!(a.bundle, PathBuf::from("/b"));
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from(["atoll", "delete", "c1", "--force"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Delete { force: true, .. })
        ));
        let c = Cli::try_parse_from(["atoll", "kill", "c1", "KILL", "--all"]).unwrap();
        assert!(matches!(c.command, Some(Command::Kill { all: true, .. })));
    }

    #[test]
    fn exec_command_keeps_its_own_flags() {
        let c =
            Cli::try_parse_from(["atoll", "exec", "--tty", "c1", "ls", "-la", "--color"]).unwrap();
        match c.command {
            Some(Command::Exec(a)) => {
                assert!(a.tty);
                assert_eq!(a.command, ["ls", "-la", "--color"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn global_flags_as_containerd_passes_them() {
        let c = Cli::try_parse_from([
            "atoll",
            "--root",
            "/run/x",
            "--log",
            "/l.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "start",
            "c1",
        ])
        .unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.systemd_cgroup);
    }
}
