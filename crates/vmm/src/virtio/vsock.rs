//! virtio-vsock, served in the VMM with host-side Unix sockets
//! (Firecracker's "hybrid vsock"): a host process connects to the VMM's
//! Unix socket, writes `CONNECT <port>\n`, and once the guest accepts,
//! reads `OK <host port>\n` and has a byte stream to that guest port.
//! No vhost-vsock in the host kernel, no host-wide CID namespace: the
//! channel is as confined as the VMM. Guest-initiated connections are
//! refused (the agent only listens).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;

use anyhow::{Result, anyhow};
use seccompiler::BpfProgram;
use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader, Writer};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::{Activation, DeviceThread, Irq, VIRTIO_F_VERSION_1, VirtioDevice, read_config_bytes};
use crate::memory::Mem;

pub const HOST_CID: u64 = 2;
const HDR_LEN: usize = 44;
const TYPE_STREAM: u16 = 1;
const OP_REQUEST: u16 = 1;
const OP_RESPONSE: u16 = 2;
const OP_RST: u16 = 3;
const OP_SHUTDOWN: u16 = 4;
const OP_RW: u16 = 5;
const OP_CREDIT_UPDATE: u16 = 6;
const OP_CREDIT_REQUEST: u16 = 7;
const SHUTDOWN_RCV: u32 = 1;
const SHUTDOWN_SEND: u32 = 2;
/// What each host side of a connection buffers for the guest.
const CONN_BUF: u32 = 256 * 1024;
/// Most payload in one packet to the guest.
const MAX_PKT: usize = 64 * 1024;
const QUEUE_SIZE: u16 = 256;
const RXQ: usize = 0;
const TXQ: usize = 1;

#[derive(Clone, Copy, Default, Debug)]
struct Hdr {
    src_cid: u64,
    dst_cid: u64,
    src_port: u32,
    dst_port: u32,
    len: u32,
    type_: u16,
    op: u16,
    flags: u32,
    buf_alloc: u32,
    fwd_cnt: u32,
}

impl Hdr {
    fn parse(b: &[u8; HDR_LEN]) -> Hdr {
        let u64_ = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let u32_ = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u16_ = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
        Hdr {
            src_cid: u64_(0),
            dst_cid: u64_(8),
            src_port: u32_(16),
            dst_port: u32_(20),
            len: u32_(24),
            type_: u16_(28),
            op: u16_(30),
            flags: u32_(32),
            buf_alloc: u32_(36),
            fwd_cnt: u32_(40),
        }
    }
    fn bytes(&self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.type_.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }
}

#[derive(PartialEq, Debug)]
enum ConnState {
    /// Reading the `CONNECT <port>\n` line.
    Handshake,
    /// REQUEST sent, waiting for the guest's RESPONSE.
    Connecting,
    Established,
}

struct Conn {
    stream: UnixStream,
    state: ConnState,
    line: Vec<u8>,
    local_port: u32,
    peer_port: u32,
    /// Bytes sent to the guest, and the guest's credit.
    tx_cnt: u32,
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    /// Bytes written to the host stream, and the count last told the guest.
    fwd_cnt: u32,
    fwd_told: u32,
    /// Guest data not yet written to the host stream.
    to_host: VecDeque<u8>,
    readable: bool,
    host_eof: bool,
    guest_no_send: bool,
    guest_no_recv: bool,
    eof_told: bool,
    /// The guest shut both ways down: the connection goes once what it
    /// sent has reached the host stream.
    closing: bool,
    /// The guest reset it meanwhile: it is the host stream's alone until
    /// then (no credit update, no reset is sent).
    detached: bool,
}

impl Conn {
    fn credit(&self) -> u32 {
        self.peer_buf_alloc
            .saturating_sub(self.tx_cnt.wrapping_sub(self.peer_fwd_cnt))
    }
}

/// A connection made inside the VMM process (the VMM's own agent session).
pub type Connector = mpsc::Sender<UnixStream>;

pub struct Vsock {
    cid: u64,
    thread: DeviceThread,
}

impl Vsock {
    /// `listener`: the host-side socket (in the container's state dir);
    /// returns the device and a connector for in-process connections
    /// (with the eventfd that wakes the device thread). The device's
    /// thread starts here, under `filter`.
    pub fn new(
        cid: u64,
        listener: Option<UnixListener>,
        filter: Option<BpfProgram>,
    ) -> Result<(Vsock, Connector, EventFd)> {
        let (tx, rx) = mpsc::channel();
        let evt = EventFd::new(libc::EFD_NONBLOCK)?;
        let wake = evt.try_clone()?;
        if let Some(l) = &listener {
            l.set_nonblocking(true)?;
        }
        let thread = DeviceThread::spawn("vsock", filter, crate::seccomp::Caps::Drop, move |a| {
            let mut w = Worker::new(cid, a, listener, rx, evt);
            if let Err(e) = w.run() {
                eprintln!("atoll-vmm: vsock: {e:#}");
            }
        })?;
        Ok((Vsock { cid, thread }, tx, wake))
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        19
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }
    fn queue_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE; 3]
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.cid.to_le_bytes(), offset, data)
    }
    fn activate(&mut self, a: Activation) -> Result<()> {
        self.thread.activate(a)
    }
}

const TOK_RX: u64 = 0;
const TOK_TX: u64 = 1;
const TOK_EVQ: u64 = 2;
const TOK_LISTENER: u64 = 3;
const TOK_INCOMING: u64 = 4;
/// How long the device waits for an event while connections are open
/// before it looks at its queues again (`Worker::rescan`).
const RESCAN_MS: i32 = 500;
/// Tokens of host streams: their fd plus this.
const TOK_CONN: u64 = 1 << 32;

struct Worker {
    cid: u64,
    mem: Mem,
    queues: Vec<Queue>,
    kicks: Vec<EventFd>,
    irq: Irq,
    listener: Option<UnixListener>,
    incoming: mpsc::Receiver<UnixStream>,
    wake: EventFd,
    epoll: Epoll,
    /// Host streams by fd.
    conns: HashMap<RawFd, Conn>,
    /// (local port, peer port) → fd.
    by_port: HashMap<(u32, u32), RawFd>,
    /// Control packets waiting for guest RX buffers.
    control: VecDeque<Hdr>,
    next_port: u32,
    /// ATOLL_VMM_TRACE=vsock: every packet on stderr.
    trace: bool,
}

impl Worker {
    fn new(
        cid: u64,
        a: Activation,
        listener: Option<UnixListener>,
        incoming: mpsc::Receiver<UnixStream>,
        wake: EventFd,
    ) -> Worker {
        Worker {
            cid,
            mem: a.mem,
            queues: a.queues,
            kicks: a.kicks,
            irq: a.irq,
            listener,
            incoming,
            wake,
            epoll: Epoll::new().expect("epoll"),
            conns: HashMap::new(),
            by_port: HashMap::new(),
            control: VecDeque::new(),
            next_port: 1 << 16,
            trace: std::env::var("ATOLL_VMM_TRACE").is_ok_and(|v| v.contains("vsock")),
        }
    }

    fn add_fd(&self, fd: RawFd, tok: u64, ev: EventSet) -> Result<()> {
        self.epoll
            .ctl(ControlOperation::Add, fd, EpollEvent::new(ev, tok))
            .map_err(|e| anyhow!("epoll: {e}"))
    }

    fn run(&mut self) -> Result<()> {
        for (i, k) in self.kicks.iter().enumerate() {
            self.add_fd(k.as_raw_fd(), i as u64, EventSet::IN)?;
        }
        if let Some(l) = &self.listener {
            self.add_fd(l.as_raw_fd(), TOK_LISTENER, EventSet::IN)?;
        }
        self.add_fd(self.wake.as_raw_fd(), TOK_INCOMING, EventSet::IN)?;
        let mut events = vec![EpollEvent::default(); 64];
        loop {
            let idle = self.conns.is_empty() && self.control.is_empty();
            let timeout = if idle { -1 } else { RESCAN_MS };
            let n = match self.epoll.wait(timeout, &mut events) {
                Ok(0) => {
                    self.rescan();
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow!("epoll_wait: {e}")),
            };
            for ev in &events[..n] {
                let tok = ev.data();
                match tok {
                    TOK_RX | TOK_EVQ => {
                        let _ = self.kicks[tok as usize].read();
                    }
                    TOK_TX => {
                        let _ = self.kicks[TXQ].read();
                        self.process_tx();
                    }
                    TOK_LISTENER => self.accept(),
                    TOK_INCOMING => {
                        let _ = self.wake.read();
                        while let Ok(s) = self.incoming.try_recv() {
                            self.add_conn(s);
                        }
                    }
                    t if t >= TOK_CONN => self.conn_event((t - TOK_CONN) as RawFd, ev.event_set()),
                    _ => {}
                }
            }
            self.process_rx();
        }
    }

    /// Nothing happened for `RESCAN_MS` while connections are open: the
    /// queues are looked at again and an interrupt the guest has not
    /// acknowledged is raised once more, so that a kick or an interrupt
    /// lost on the way (the likeliest cause of an exec whose request once
    /// never reached the agent in the nested, emulated test VM: it stays
    /// in the used ring of an idle guest for good) delays a session by
    /// that much instead of hanging it.
    fn rescan(&mut self) {
        self.process_tx();
        self.process_rx();
        if self.irq.status.load(std::sync::atomic::Ordering::SeqCst) & Irq::USED_BUFFER != 0 {
            let _ = self.irq.evt.write(1);
        }
    }

    fn accept(&mut self) {
        while let Some(Ok((s, _))) = self.listener.as_ref().map(|l| l.accept()) {
            self.add_conn(s);
        }
    }

    fn add_conn(&mut self, s: UnixStream) {
        if self.trace {
            eprintln!("vsock: new host connection");
        }
        if s.set_nonblocking(true).is_err() {
            return;
        }
        let fd = s.as_raw_fd();
        let ev = EventSet::IN | EventSet::OUT | EventSet::READ_HANG_UP | EventSet::EDGE_TRIGGERED;
        if self.add_fd(fd, TOK_CONN + fd as u64, ev).is_err() {
            return;
        }
        let local_port = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(1 << 16);
        self.conns.insert(
            fd,
            Conn {
                stream: s,
                state: ConnState::Handshake,
                line: Vec::new(),
                local_port,
                peer_port: 0,
                tx_cnt: 0,
                peer_buf_alloc: 0,
                peer_fwd_cnt: 0,
                fwd_cnt: 0,
                fwd_told: 0,
                to_host: VecDeque::new(),
                readable: true,
                host_eof: false,
                guest_no_send: false,
                guest_no_recv: false,
                eof_told: false,
                closing: false,
                detached: false,
            },
        );
        self.handshake(fd);
    }

    fn hdr(&self, c: &Conn, op: u16) -> Hdr {
        Hdr {
            src_cid: HOST_CID,
            dst_cid: self.cid,
            src_port: c.local_port,
            dst_port: c.peer_port,
            len: 0,
            type_: TYPE_STREAM,
            op,
            flags: 0,
            buf_alloc: CONN_BUF,
            fwd_cnt: c.fwd_cnt,
        }
    }

    /// Reads the `CONNECT <port>` line, then asks the guest.
    fn handshake(&mut self, fd: RawFd) {
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        let mut b = [0u8; 1];
        while c.state == ConnState::Handshake {
            match c.stream.read(&mut b) {
                Ok(0) => {
                    self.close(fd, false);
                    return;
                }
                Ok(_) if b[0] == b'\n' => {
                    let line = String::from_utf8_lossy(&c.line).into_owned();
                    let port = line
                        .strip_prefix("CONNECT ")
                        .and_then(|p| p.trim().parse::<u32>().ok());
                    let Some(port) = port else {
                        self.close(fd, false);
                        return;
                    };
                    c.peer_port = port;
                    c.state = ConnState::Connecting;
                    let key = (c.local_port, c.peer_port);
                    let h = self.hdr(&self.conns[&fd], OP_REQUEST);
                    self.by_port.insert(key, fd);
                    self.control.push_back(h);
                    return;
                }
                Ok(_) if c.line.len() < 64 => c.line.push(b[0]),
                Ok(_) => {
                    self.close(fd, false);
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.close(fd, false);
                    return;
                }
            }
        }
    }

    fn conn_event(&mut self, fd: RawFd, ev: EventSet) {
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        if c.state == ConnState::Handshake {
            self.handshake(fd);
            return;
        }
        if c.state == ConnState::Connecting && ev.contains(EventSet::HANG_UP) {
            // The host side closed while waiting for the guest (its
            // handshake timed out; a half close, a client done writing,
            // still waits): the guest is told, nothing of it is kept.
            self.reset(fd);
            return;
        }
        if ev.intersects(EventSet::IN | EventSet::READ_HANG_UP | EventSet::HANG_UP) {
            c.readable = true;
        }
        if ev.contains(EventSet::OUT) {
            self.flush_to_host(fd);
        }
    }

    /// Writes buffered guest data to the host stream; tells the guest of
    /// the freed credit when it matters.
    fn flush_to_host(&mut self, fd: RawFd) {
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        while !c.to_host.is_empty() {
            let (a, _) = c.to_host.as_slices();
            match c.stream.write(a) {
                Ok(n) => {
                    c.to_host.drain(..n);
                    c.fwd_cnt = c.fwd_cnt.wrapping_add(n as u32);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The host side is gone: reset (the guest is told
                    // unless it reset first).
                    let tell_guest = !c.detached;
                    self.close(fd, tell_guest);
                    return;
                }
            }
        }
        let c = &self.conns[&fd];
        if c.to_host.is_empty() && c.closing {
            let tell_guest = !c.detached;
            self.close(fd, tell_guest);
            return;
        }
        if c.to_host.is_empty() && c.guest_no_send {
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
        }
        if !c.detached && c.fwd_cnt.wrapping_sub(c.fwd_told) >= CONN_BUF / 4 {
            let h = self.hdr(c, OP_CREDIT_UPDATE);
            self.conns.get_mut(&fd).unwrap().fwd_told = h.fwd_cnt;
            self.control.push_back(h);
        }
    }

    /// Tells the guest to drop the connection, and drops it.
    fn reset(&mut self, fd: RawFd) {
        self.close(fd, true);
    }

    fn close(&mut self, fd: RawFd, tell_guest: bool) {
        if let Some(c) = self.conns.remove(&fd) {
            if tell_guest && c.state != ConnState::Handshake {
                self.control.push_back(self.hdr(&c, OP_RST));
            }
            self.by_port.remove(&(c.local_port, c.peer_port));
            let _ = self.epoll.ctl(
                ControlOperation::Delete,
                fd,
                EpollEvent::new(EventSet::empty(), 0),
            );
        }
    }

    fn process_tx(&mut self) {
        let mem = self.mem.clone();
        let mut used = false;
        while let Some(chain) = self.queues[TXQ].pop_descriptor_chain(&mem) {
            let head = chain.head_index();
            let pkt = Reader::new(&mem, chain).ok().and_then(|mut r| {
                let mut h = [0u8; HDR_LEN];
                r.read_exact(&mut h).ok()?;
                let h = Hdr::parse(&h);
                let len = (h.len as usize).min(r.available_bytes()).min(MAX_PKT);
                let mut data = vec![0u8; len];
                r.read_exact(&mut data).ok()?;
                Some((h, data))
            });
            let _ = self.queues[TXQ].add_used(&mem, head, 0);
            used = true;
            if let Some((h, data)) = pkt {
                self.on_guest_packet(h, data);
            }
        }
        if used {
            self.irq.used();
        }
    }

    fn on_guest_packet(&mut self, h: Hdr, data: Vec<u8>) {
        if self.trace {
            eprintln!("vsock: guest -> host {h:?} +{}", data.len());
        }
        if h.type_ != TYPE_STREAM || h.src_cid != self.cid || h.dst_cid != HOST_CID {
            return;
        }
        let Some(&fd) = self.by_port.get(&(h.dst_port, h.src_port)) else {
            if h.op != OP_RST {
                // Nothing here for that port: refuse.
                self.control.push_back(Hdr {
                    src_cid: HOST_CID,
                    dst_cid: self.cid,
                    src_port: h.dst_port,
                    dst_port: h.src_port,
                    type_: TYPE_STREAM,
                    op: OP_RST,
                    ..Default::default()
                });
            }
            return;
        };
        let c = self.conns.get_mut(&fd).unwrap();
        c.peer_buf_alloc = h.buf_alloc;
        c.peer_fwd_cnt = h.fwd_cnt;
        if c.credit() > 0 {
            // Edge-triggered: try the stream again now that there is credit.
            c.readable = true;
        }
        match h.op {
            OP_RESPONSE if c.state == ConnState::Connecting => {
                c.state = ConnState::Established;
                let line = format!("OK {}\n", c.local_port);
                // A fresh stream has room for one short line.
                if c.stream.write_all(line.as_bytes()).is_err() {
                    self.reset(fd);
                }
            }
            OP_RST if c.closing && !c.to_host.is_empty() => {
                // The guest gave up waiting for the host to read (its close
                // times out after 8 s): what it sent is still delivered,
                // then the stream closes; the guest hears nothing more.
                c.detached = true;
                let key = (c.local_port, c.peer_port);
                self.by_port.remove(&key);
            }
            OP_RST => {
                self.close(fd, false);
            }
            OP_RW if c.state == ConnState::Established => {
                c.to_host.extend(data);
                self.flush_to_host(fd);
            }
            OP_SHUTDOWN => {
                if h.flags & SHUTDOWN_SEND != 0 {
                    c.guest_no_send = true;
                }
                if h.flags & SHUTDOWN_RCV != 0 {
                    c.guest_no_recv = true;
                }
                // Done both ways: the close completes once what is left
                // has reached the host stream (`flush_to_host`), which may
                // take more than this write (a host reader behind).
                c.closing = c.guest_no_send && c.guest_no_recv;
                self.flush_to_host(fd);
            }
            OP_CREDIT_REQUEST => {
                let h = self.hdr(&self.conns[&fd], OP_CREDIT_UPDATE);
                self.conns.get_mut(&fd).unwrap().fwd_told = h.fwd_cnt;
                self.control.push_back(h);
            }
            _ => {}
        }
    }

    /// Whether some connection has something for the guest.
    fn has_data(&self) -> bool {
        self.conns.values().any(|c| {
            c.state == ConnState::Established
                && ((c.readable && !c.guest_no_recv && !c.host_eof) || (c.host_eof && !c.eof_told))
        })
    }

    /// Fills the guest's RX buffers: control packets first, then data from
    /// host streams that are readable and have credit.
    fn process_rx(&mut self) {
        let mem = self.mem.clone();
        let mut used = false;
        while !self.control.is_empty() || self.has_data() {
            let Some(chain) = self.queues[RXQ].pop_descriptor_chain(&mem) else {
                break; // the guest's next RX kick brings more buffers
            };
            let head = chain.head_index();
            let Ok(mut w) = Writer::new(&mem, chain) else {
                let _ = self.queues[RXQ].add_used(&mem, head, 0);
                used = true;
                continue;
            };
            let room = w.available_bytes().saturating_sub(HDR_LEN);
            let pkt = match self.control.pop_front() {
                Some(h) => Some((h, Vec::new())),
                None => self.next_data(room),
            };
            let Some((h, data)) = pkt else {
                self.queues[RXQ].go_to_previous_position();
                break;
            };
            if self.trace {
                eprintln!("vsock: host -> guest {h:?} +{}", data.len());
            }
            let ok = w.write_all(&h.bytes()).is_ok() && w.write_all(&data).is_ok();
            let len = if ok { HDR_LEN + data.len() } else { 0 };
            let _ = self.queues[RXQ].add_used(&mem, head, len as u32);
            used = true;
        }
        if used {
            self.irq.used();
        }
    }

    /// The next packet of host data (at most `room` bytes), or the
    /// SHUTDOWN that follows a host stream's end.
    fn next_data(&mut self, room: usize) -> Option<(Hdr, Vec<u8>)> {
        let fds: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state == ConnState::Established)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in fds {
            let c = self.conns.get_mut(&fd).unwrap();
            if c.host_eof {
                if !c.eof_told {
                    c.eof_told = true;
                    let mut h = self.hdr(&self.conns[&fd], OP_SHUTDOWN);
                    h.flags = SHUTDOWN_SEND;
                    return Some((h, Vec::new()));
                }
                continue;
            }
            if !c.readable || c.guest_no_recv {
                continue;
            }
            let credit = c.credit() as usize;
            if credit == 0 {
                // Asked once per stall: the guest's update makes it readable again.
                c.readable = false;
                let h = self.hdr(&self.conns[&fd], OP_CREDIT_REQUEST);
                return Some((h, Vec::new()));
            }
            let mut buf = vec![0u8; credit.min(room).min(MAX_PKT)];
            if buf.is_empty() {
                continue;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.host_eof = true;
                    c.eof_told = true;
                    let mut h = self.hdr(&self.conns[&fd], OP_SHUTDOWN);
                    h.flags = SHUTDOWN_SEND;
                    return Some((h, Vec::new()));
                }
                Ok(n) => {
                    buf.truncate(n);
                    c.tx_cnt = c.tx_cnt.wrapping_add(n as u32);
                    let mut h = self.hdr(&self.conns[&fd], OP_RW);
                    h.len = n as u32;
                    return Some((h, buf));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => c.readable = false,
                Err(_) => self.reset(fd),
            }
        }
        None
    }
}
