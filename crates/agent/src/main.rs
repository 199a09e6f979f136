//! atoll's guest agent: `/init` of the vm level's guest. It mounts the
//! kernel file systems, loads the virtio modules the initramfs carries,
//! and serves the host over vsock: containers (a mount, pid, UTS and IPC
//! namespace each, rooted in a virtio-fs share), their processes, stdio,
//! signals and exit statuses.

mod guest;

fn main() {
    if std::process::id() != 1 {
        eprintln!("atoll-agent: runs as /init of an atoll guest");
        std::process::exit(2);
    }
    // A panic of pid 1 panics the guest kernel: say why in its log first.
    std::panic::set_hook(Box::new(|info| {
        use std::io::Write;
        let msg = format!("atoll-agent: {info}\n");
        if let Ok(mut k) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
            let _ = k.write_all(msg.as_bytes());
        }
        let _ = std::io::stderr().write_all(msg.as_bytes());
    }));
    guest::init::boot();
}
