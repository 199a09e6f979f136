//! `atoll`: the runtime's command line.

mod check;
mod cli;
mod commands;
mod logging;
mod root_cause;
mod vm;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // clap's errors span several lines with usage; keep the sentence.
            let text = e.to_string();
            let sentence: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                .filter(|l| !l.is_empty())
                .collect();
            let sentence = sentence.join(" ");
            let sentence = sentence.trim_start_matches("error: ");
            eprintln!("atoll: error: {sentence} (see atoll --help)");
            std::process::exit(2);
        }
    };
    // Commands that only print end quietly when their reader goes (`atoll
    // state ID | grep -q running`), as runc's do, instead of panicking on
    // EPIPE. The others keep SIGPIPE ignored: they relay a container's
    // stdio or talk to sockets, and a reader that goes must not kill them
    // mid-operation.
    if matches!(
        cli.command,
        Some(
            cli::Command::State { .. }
                | cli::Command::List { .. }
                | cli::Command::Ps { .. }
                | cli::Command::Features
                | cli::Command::Events { .. }
                | cli::Command::Compat
                | cli::Command::Allowlists
                | cli::Command::Check { .. }
                | cli::Command::Audit(_)
        )
    ) {
        atoll_runtime::executor::restore_sigpipe();
    }
    // Before any file is opened: the descriptor slots a userspace sandbox
    // inherits (see atoll_runtime::fds).
    let preserved = match &cli.command {
        Some(cli::Command::Create(a)) => Some(a.preserve_fds),
        Some(cli::Command::Run(a)) => Some(a.create.preserve_fds),
        _ => None,
    };
    if let Some(n) = preserved {
        atoll_runtime::fds::reserve(3 + n.max(0), atoll_runtime::fds::RESERVED_FDS);
    }
    if let Err(e) = logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        eprintln!("atoll: error: {e}");
        std::process::exit(1);
    }
    if matches!(
        cli.command,
        Some(cli::Command::Create(_) | cli::Command::Run(_) | cli::Command::Exec(_))
    ) {
        root_cause::init();
    }
    match commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = root_cause::fold_into(&atoll_runtime::one_line(&e));
            match logging::LOG.get() {
                // Logs on stderr in runc's JSON form: clients parse that line.
                Some(log) if log.json && !log.to_file => log.write(&tracing::Level::ERROR, &msg),
                // The last line says "error" as runc's and youki's do
                // (tools match on the word).
                Some(log) => {
                    log.write_file_only(&tracing::Level::ERROR, &msg);
                    eprintln!("atoll: error: {msg}");
                }
                None => eprintln!("atoll: error: {msg}"),
            }
            std::process::exit(1);
        }
    }
}
