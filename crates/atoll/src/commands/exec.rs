//! `exec`.

use anyhow::Result;
use atoll_runtime::exec::{ExecOptions, parse_user};
use atoll_runtime::{Isolation, Runtime, wait};

use crate::cli::ExecArgs;

pub fn exec(rt: &Runtime, a: &ExecArgs) -> Result<i32> {
    let opts = ExecOptions {
        id: a.id.clone(),
        process: a.process.clone(),
        args: a.command.clone(),
        env: a.env.clone(),
        cwd: a.cwd.clone(),
        user: a.user.as_deref().map(parse_user).transpose()?,
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        tty: a.tty,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    match rt.exec_target(&a.id, a.ignore_paused)? {
        Isolation::Native => {
            let pid = rt.exec_native(&opts)?;
            if a.detach {
                return Ok(0);
            }
            let set = wait::block_signals();
            Ok(wait::forward_until_exit(pid, &set))
        }
        Isolation::Userspace => rt.exec_userspace(&opts),
        Isolation::Vm => rt.exec_vm(&opts),
    }
}
