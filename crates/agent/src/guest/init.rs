//! Boot: kernel file systems, console, modules, then the vsock service.

use std::io;
use std::os::fd::FromRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;

use super::sys::{self, check, mount};

/// The vsock port the agent listens on (atoll_vmm::AGENT_PORT).
pub const PORT: u32 = 1024;

static DEBUG: OnceLock<bool> = OnceLock::new();

/// `atoll.debug` on the kernel command line: the agent logs to the console.
pub fn debug() -> bool {
    *DEBUG.get().unwrap_or(&false)
}

fn console() {
    // SAFETY: opening the console and making it this process's stdio.
    unsafe {
        let fd = libc::open(c"/dev/console".as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if fd >= 0 {
            for i in 0..3 {
                libc::dup2(fd, i);
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}

/// Loads the modules listed in /lib/modules/`list` (vm-assets.sh writes
/// `load`, for the boot, and `load-net`, for a container's network).
pub fn load_modules(list: &str) {
    let Ok(list) = std::fs::read_to_string(format!("/lib/modules/{list}")) else {
        return;
    };
    for name in list.split_whitespace() {
        let path = format!("/lib/modules/{name}.ko");
        let Ok(f) = std::fs::File::open(&path) else {
            sys::log(&format!("module {name}: missing"));
            continue;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: finit_module on an open module file with empty parameters.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
        sys::trace(&format!("module {name}"));
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                sys::log(&format!("module {name}: {e}"));
            }
        }
    }
}

fn listen() -> io::Result<libc::c_int> {
    // SAFETY: creating, binding and listening on a vsock socket.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_VSOCK,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let mut addr: libc::sockaddr_vm = std::mem::zeroed();
        addr.svm_family = libc::AF_VSOCK as libc::sa_family_t;
        addr.svm_port = PORT;
        addr.svm_cid = libc::VMADDR_CID_ANY;
        check(libc::bind(
            fd,
            (&addr as *const libc::sockaddr_vm).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        ))?;
        check(libc::listen(fd, 16))?;
        Ok(fd)
    }
}

/// Moves the agent from the initramfs onto a tmpfs root (as switch_root
/// does): containers pivot_root out of the agent's root, and the
/// initramfs cannot be pivoted away from.
fn switch_root() -> io::Result<()> {
    let new = "/newroot";
    std::fs::create_dir_all(new)?;
    mount("tmpfs", new, "tmpfs", 0, Some("mode=0755"))?;
    std::fs::create_dir_all(format!("{new}/lib/modules"))?;
    if let Ok(dir) = std::fs::read_dir("/lib/modules") {
        for e in dir.flatten() {
            std::fs::copy(
                e.path(),
                format!("{new}/lib/modules/{}", e.file_name().to_string_lossy()),
            )?;
            let _ = std::fs::remove_file(e.path());
        }
    }
    std::env::set_current_dir(new)?;
    // SAFETY: moving the new root over / and entering it.
    unsafe {
        check(libc::mount(
            c".".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_MOVE,
            std::ptr::null(),
        ))?;
        check(libc::chroot(c".".as_ptr()))?;
    }
    std::env::set_current_dir("/")
}

pub fn boot() -> ! {
    let entered = sys::uptime();
    if let Err(e) = switch_root() {
        let _ = std::fs::write(
            "/dev/kmsg",
            format!("atoll-agent: switching to a tmpfs root: {e}\n"),
        );
    }
    let _ = std::fs::create_dir_all("/proc");
    let _ = mount(
        "proc",
        "/proc",
        "proc",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    );
    let _ = DEBUG.set(sys::kernel_cmdline_has("atoll.debug"));
    let _ = std::fs::create_dir_all("/dev");
    let _ = mount("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, None);
    console();
    sys::trace(&format!("/init entered at {entered:.3}"));
    sys::trace("root switched, /proc and /dev mounted");
    if sys::kernel_cmdline_has("atoll.selftest") {
        // The benchmark's mark for "the guest reached /init", the point up
        // to which it times QEMU booting the same kernel and initramfs.
        println!("atoll-agent: init");
    }
    let _ = std::fs::create_dir_all("/sys");
    let _ = mount(
        "sysfs",
        "/sys",
        "sysfs",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    );
    let _ = std::fs::create_dir_all("/run");
    let _ = mount(
        "tmpfs",
        "/run",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=0755"),
    );
    // The guest's cgroup hierarchy, mounted read-write before any
    // container can mount it (pod members' memory limits, cgroup.rs).
    if let Err(e) = super::cgroup::mount() {
        sys::log(&format!("cgroup2: {e}"));
    }
    let _ = std::fs::create_dir_all("/tmp");
    let _ = mount(
        "tmpfs",
        "/tmp",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        None,
    );
    let _ = std::fs::create_dir_all("/dev/pts");
    let _ = mount(
        "devpts",
        "/dev/pts",
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("ptmxmode=0666,mode=0620"),
    );
    sys::trace("file systems mounted");
    load_modules("load");
    sys::trace("modules loaded");
    // The guest's own loopback: up whether or not the pod has a network.
    if let Err(e) = super::net::loopback_up() {
        sys::log(&format!("loopback: {e}"));
    }
    super::reaper::start();
    let fd = match listen() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("atoll-agent: vsock port {PORT}: {e}");
            shutdown();
        }
    };
    sys::log(&format!("ready on vsock port {PORT}"));
    sys::trace("listening on vsock");
    if sys::kernel_cmdline_has("atoll.boottrace") && sys::kernel_cmdline_has("initcall_debug") {
        slow_initcalls();
    }
    if debug() {
        // The kernel's messages at debug level too.
        let _ = std::fs::write("/proc/sys/kernel/printk", "8");
        if sys::kernel_cmdline_has("atoll.sysrq") {
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_secs(15));
                for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n.parse::<u32>().is_err() {
                        continue;
                    }
                    let stat =
                        std::fs::read_to_string(format!("/proc/{n}/stat")).unwrap_or_default();
                    if stat.contains("kworker") || stat.contains(") I ") {
                        continue;
                    }
                    let wchan =
                        std::fs::read_to_string(format!("/proc/{n}/wchan")).unwrap_or_default();
                    let mut stack =
                        std::fs::read_to_string(format!("/proc/{n}/stack")).unwrap_or_default();
                    for _ in 0..3 {
                        stack.push_str(&format!(
                            " syscall={}",
                            std::fs::read_to_string(format!("/proc/{n}/syscall"))
                                .unwrap_or_default()
                                .trim()
                        ));
                    }
                    sys::log(&format!(
                        "{} wchan={wchan} stack={}",
                        &stat[..stat.len().min(60)],
                        stack.replace('\n', " | ")
                    ));
                    for t in std::fs::read_dir(format!("/proc/{n}/task"))
                        .into_iter()
                        .flatten()
                        .flatten()
                    {
                        let tn = t.file_name().to_string_lossy().into_owned();
                        if tn == n {
                            continue;
                        }
                        let stack = std::fs::read_to_string(format!("/proc/{n}/task/{tn}/stack"))
                            .unwrap_or_default();
                        let st = std::fs::read_to_string(format!("/proc/{n}/task/{tn}/stat"))
                            .unwrap_or_default();
                        sys::log(&format!(
                            "  thread {} stack={}",
                            &st[..st.len().min(50)],
                            stack.replace('\n', " | ")
                        ));
                    }
                }
            });
        }
    }
    if sys::kernel_cmdline_has("atoll.selftest") {
        // Boot check for the asset builder and benchmarks: reaching here
        // means the kernel, the modules and vsock work.
        println!("atoll-agent: ready");
        shutdown();
    }
    loop {
        // SAFETY: accepting on the listening socket.
        let c = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if c < 0 {
            // Not a busy loop of pid 1 on a persistent error (out of
            // descriptors or memory): the host's connection waits.
            sys::log(&format!("accept: {}", std::io::Error::last_os_error()));
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        }
        // SAFETY: the accepted descriptor is ours.
        let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(c) };
        let _ = std::thread::Builder::new()
            .name("session".into())
            .spawn(move || super::session::serve(stream));
    }
}

/// With `initcall_debug` (and `atoll.boottrace`): the kernel's initcalls
/// that took more than 5 ms, from its log, on the console.
fn slow_initcalls() {
    use std::io::Read;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return;
    };
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = f.read(&mut buf) {
        let line = String::from_utf8_lossy(&buf[..n]);
        if let Some((_, rest)) = line.split_once(';')
            && let Some((what, after)) = rest.split_once(" returned ")
            && let Some(us) = after
                .split_whitespace()
                .nth(2)
                .and_then(|u| u.parse::<u64>().ok())
            && us > 5000
        {
            println!("atoll-agent: initcall {} {} ms", what.trim(), us / 1000);
        }
    }
}

/// Powers the guest off: `reboot=t` turns a restart into a triple fault,
/// which the VMM sees as KVM_EXIT_SHUTDOWN.
pub fn shutdown() -> ! {
    // SAFETY: sync and reboot have no memory arguments.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    std::process::exit(0)
}
