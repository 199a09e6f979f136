//! Control protocol (exec into the sandbox, process listing).

use super::Kernel;

pub fn serve(k: &mut Kernel, fd: i32) {
    // Accept and drop connections until exec support lands, so a client
    // gets a clean EOF instead of hanging.
    loop {
        // SAFETY: accept4 on our listening socket.
        let c = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if c < 0 {
            return;
        }
        k.log
            .line("control: request refused (exec into userspace sandboxes is not available yet)");
        unsafe { libc::close(c) };
    }
}
