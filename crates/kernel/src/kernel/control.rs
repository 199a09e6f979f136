//! The control socket: requests from atoll on the host (exec, ps) served
//! inside the sandbox. Created before the kernel confines itself.

use super::Kernel;

impl Kernel {
    /// Starts serving the control socket `fd` (already listening).
    pub fn set_control(&mut self, fd: i32) {
        if self
            .poller
            .add_source(fd, super::poller::TOKEN_CONTROL)
            .is_ok()
        {
            self.control_fd = Some(fd);
        }
    }

    /// Serves pending control connections (registered once a control
    /// socket is configured).
    pub fn serve_control(&mut self) {
        let Some(fd) = self.control_fd else {
            return;
        };
        crate::kernel::control_proto::serve(self, fd);
    }
}
