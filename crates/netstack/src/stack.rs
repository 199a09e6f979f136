//! The stack: interfaces (loopback first, then the links), the table of
//! Linux sockets over smoltcp sockets, routing between interfaces, and the
//! poll that moves packets and reports which sockets changed.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, Route, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::config::{Cidr, LinkConfig, NetConfig, RouteConfig};
use crate::device::{DevStats, Frames, LinkDevice, LoopDevice};
use crate::egress::Egress;
use crate::ports::Ports;
use crate::sockopt::Opts;
use crate::{Errno, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP};

/// A Linux socket of the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// Where a send takes its bytes from (workload memory, through the
/// kernel's mapping, or a buffer in tests).
pub trait Source {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies bytes from offset `at` into `out`; returns how many.
    fn read_at(&self, at: usize, out: &mut [u8]) -> usize;
}

/// Where a receive puts its bytes.
pub trait Sink {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `data` to offset `at`; returns how many fitted.
    fn write_at(&self, at: usize, data: &[u8]) -> usize;
}

impl Source for &[u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn read_at(&self, at: usize, out: &mut [u8]) -> usize {
        let src = self.get(at..).unwrap_or(&[]);
        let n = src.len().min(out.len());
        out[..n].copy_from_slice(&src[..n]);
        n
    }
}

impl Sink for std::cell::RefCell<Vec<u8>> {
    fn len(&self) -> usize {
        self.borrow().len()
    }
    fn write_at(&self, at: usize, data: &[u8]) -> usize {
        let mut b = self.borrow_mut();
        let room = b.len().saturating_sub(at);
        let n = data.len().min(room);
        b[at..at + n].copy_from_slice(&data[..n]);
        n
    }
}

impl<F: Frames + ?Sized> Frames for Box<F> {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        (**self).recv(buf)
    }
    fn send(&mut self, frame: &[u8]) -> bool {
        (**self).send(frame)
    }
    fn vnet(&self) -> bool {
        (**self).vnet()
    }
}

pub(crate) enum Dev {
    Loop(LoopDevice),
    Link(LinkDevice<Box<dyn Frames>>),
}

/// One interface: smoltcp's, its device, and the smoltcp sockets that
/// live on it.
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// Addresses as the workload sees them (`ip addr`).
    pub addrs: Vec<Cidr>,
    pub routes: Vec<RouteConfig>,
    pub(crate) iface: Interface,
    pub(crate) dev: Dev,
    pub(crate) set: SocketSet<'static>,
}

impl Iface {
    pub fn stats(&self) -> DevStats {
        match &self.dev {
            Dev::Loop(d) => d.stats,
            Dev::Link(d) => d.stats,
        }
    }
    pub fn is_loopback(&self) -> bool {
        matches!(self.dev, Dev::Loop(_))
    }

    /// The interface as rtnetlink and the SIOCGIF* ioctls show it.
    pub fn view(&self) -> crate::rtnetlink::NlIface {
        crate::rtnetlink::NlIface {
            name: self.name.clone(),
            index: self.index,
            mac: self.mac,
            mtu: self.mtu,
            addrs: self.addrs.clone(),
            routes: self.routes.clone(),
            stats: self.stats(),
        }
    }
}

/// A smoltcp socket of a Linux socket: on which interface, which handle.
pub(crate) type Slot = (usize, SocketHandle);

/// A listening TCP socket's pools: per (interface, address) some sockets
/// in LISTEN; handshakes in progress; connections waiting for accept.
pub(crate) struct Listener {
    pub backlog: usize,
    pub pools: Vec<(usize, Option<IpAddress>, Vec<SocketHandle>)>,
    pub embryos: Vec<Slot>,
    pub queue: VecDeque<Slot>,
}

pub(crate) struct Conn {
    pub slot: Slot,
    pub connecting: bool,
    /// The state last seen, to tell a reset from an orderly close.
    pub last: tcp::State,
    /// The connection ended (reset, refused, closed): nothing more to read
    /// beyond what was buffered.
    pub done: bool,
    pub started: SInstant,
}

pub(crate) enum St {
    /// A socket that has done nothing yet (maybe bound).
    Idle,
    Listen(Listener),
    Tcp(Conn),
    /// UDP and ping sockets: one smoltcp socket per (interface, address).
    Dgram {
        slots: Vec<(usize, Option<IpAddress>, SocketHandle)>,
        peer: Option<SocketAddr>,
    },
}

pub(crate) struct Sock {
    pub family: i32,
    pub proto: Proto,
    pub opts: Opts,
    /// The bound address and port (port 0: not bound).
    pub local: SocketAddr,
    pub bound: bool,
    pub st: St,
    /// A pending error (SO_ERROR).
    pub err: Option<Errno>,
    pub shut_rd: bool,
    pub shut_wr: bool,
    /// Readiness last reported, to find what changed.
    pub sig: (u32, usize, usize, usize),
}

/// The events a change of a socket's signature (readiness, receive,
/// send and accept queue lengths) from `old` to `new` stands for, as the
/// wakeups Linux's sockets make: data or a connection arriving is an
/// input event even on a socket that was readable already
/// (sk_data_ready); readiness gained is an event of its kind (a state
/// change, an error); room freed is an output event only for a socket
/// that had none (SOCK_NOSPACE: a write found it full), not for every
/// ACK or window update of one that stayed writable.
pub fn wakeup_events(old: (u32, usize, usize, usize), new: (u32, usize, usize, usize)) -> u32 {
    let mut ev = new.0 & !old.0;
    if new.1 > old.1 || new.3 > old.3 {
        ev |= POLLIN;
    }
    ev
}

/// Whether a stream socket with `queued` of `capacity` bytes in its send
/// buffer polls writable: with room for half as much again (Linux's
/// sk_stream_is_writeable), so that a writer that filled it is woken once
/// a good part is sent, not for every segment acknowledged.
pub fn stream_writable(queued: usize, capacity: usize) -> bool {
    capacity.saturating_sub(queued) >= queued / 2 && queued < capacity
}

/// What the kernel is told after a poll.
#[derive(Default)]
pub struct PollOutcome {
    /// Sockets whose readiness or queues changed, each with the events
    /// Linux would wake its waiters with (poll bits; see
    /// [`wakeup_events`]; 0: a change no event stands for).
    pub changed: Vec<(SockId, u32)>,
    /// More frames are waiting than one poll takes: poll again soon.
    pub again: bool,
}

/// How many frames one poll takes from a link before letting the kernel
/// serve syscalls again.
const INGRESS_BUDGET: usize = 256;

/// How long a closed connection stays in TIME-WAIT (smoltcp: 10 s, Linux
/// 60 s). Long enough to acknowledge a peer's FIN retransmitted after a
/// lost final ACK (its first retransmission comes after one RTO, 200 ms
/// to 1 s). smoltcp visits every socket of an interface on each pass, so
/// a server closing connections at a few thousand a second kept tens of
/// thousands of TIME-WAIT sockets and spent its time walking them; Linux
/// keeps them as minisockets in a hash, which smoltcp has no room for.
/// Ports are not at stake: a server's is its listener's, a client's
/// ephemeral port is taken again only after the allocator went round.
const TIME_WAIT_LINGER: SDuration = SDuration::from_millis(1000);

/// How often the orphans are looked at (they are many under a load of
/// short connections; each look visits them all).
const REAP_EVERY: SDuration = SDuration::from_millis(100);

pub struct Stack {
    pub ifaces: Vec<Iface>,
    /// Ordered by id: looked up several times per socket on every pass
    /// (readiness of each socket after each batch of packets), where
    /// SipHash cost more than the lookups' comparisons.
    pub(crate) socks: BTreeMap<SockId, Sock>,
    next_id: u64,
    pub(crate) ports: Ports,
    /// smoltcp sockets whose Linux socket is closed but which still have
    /// work (data to send, FIN handshakes, TIME-WAIT).
    pub(crate) orphans: Vec<(Slot, SInstant)>,
    /// When the orphans are next looked at.
    next_reap: SInstant,
    pub egress: Egress,
    base: std::time::Instant,
    /// Listeners to look at after each ingress packet.
    pub(crate) listeners: Vec<SockId>,
    pub(crate) next_ident: u16,
}

pub(crate) fn to_ip(a: IpAddr) -> IpAddress {
    match a {
        IpAddr::V4(v) => IpAddress::Ipv4(v),
        IpAddr::V6(v) => IpAddress::Ipv6(v),
    }
}

pub(crate) fn from_ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(v) => IpAddr::V4(v),
        IpAddress::Ipv6(v) => IpAddr::V6(v),
    }
}

fn cidr(c: &Cidr) -> IpCidr {
    IpCidr::new(to_ip(c.addr), c.prefix)
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; other addresses unchanged.
pub(crate) fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v) => v.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        a => a,
    }
}

fn random_u64() -> u64 {
    let mut r = [0u8; 8];
    // SAFETY: getrandom into an 8-byte buffer.
    unsafe { libc::getrandom(r.as_mut_ptr() as *mut libc::c_void, 8, 0) };
    u64::from_ne_bytes(r)
}

impl Stack {
    /// A stack with loopback and the links of `config`, each with its
    /// frames (same order as `config.links`).
    pub fn new(config: &NetConfig, frames: Vec<Box<dyn Frames>>) -> Stack {
        let base = std::time::Instant::now();
        let now = SInstant::from_micros(0);
        let mut ifaces = Vec::new();
        // Loopback: 127.0.0.0/8 and ::1, and every link address as a host
        // address (Linux routes traffic to its own addresses through lo).
        let mut lodev = LoopDevice::new();
        let mut c = Config::new(HardwareAddress::Ip);
        c.random_seed = random_u64();
        let mut lo = Interface::new(c, &mut lodev, now);
        let lo_addrs = vec![
            Cidr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8),
            Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        ];
        lo.update_ip_addrs(|a| {
            for c in &lo_addrs {
                let _ = a.push(cidr(c));
            }
            for l in &config.links {
                for c in &l.addrs {
                    let host = Cidr::new(c.addr, if c.addr.is_ipv4() { 32 } else { 128 });
                    let _ = a.push(cidr(&host));
                }
            }
        });
        // Every 127.x.y.z is local, as on Linux.
        lo.set_any_ip(true);
        lo.routes_mut().update(|r| {
            let _ = r.push(Route {
                cidr: IpCidr::new(IpAddress::v4(127, 0, 0, 0), 8),
                via_router: IpAddress::v4(127, 0, 0, 1),
                preferred_until: None,
                expires_at: None,
            });
        });
        ifaces.push(Iface {
            name: "lo".into(),
            index: 1,
            mac: None,
            mtu: 65536,
            addrs: lo_addrs,
            routes: Vec::new(),
            iface: lo,
            dev: Dev::Loop(lodev),
            set: SocketSet::new(Vec::new()),
        });
        for (l, f) in config.links.iter().zip(frames) {
            ifaces.push(Self::link(l, f, now));
        }
        Stack {
            ifaces,
            socks: BTreeMap::new(),
            next_id: 1,
            ports: Ports::default(),
            orphans: Vec::new(),
            next_reap: now,
            egress: Egress::default(),
            base,
            listeners: Vec::new(),
            next_ident: (random_u64() & 0xffff) as u16,
        }
    }

    fn link(l: &LinkConfig, frames: Box<dyn Frames>, now: SInstant) -> Iface {
        let mut dev = LinkDevice::new(frames, l.mtu as usize);
        let mut c = Config::new(HardwareAddress::Ethernet(EthernetAddress(l.mac)));
        c.random_seed = random_u64();
        let mut iface = Interface::new(c, &mut dev, now);
        iface.update_ip_addrs(|a| {
            for c in &l.addrs {
                let _ = a.push(cidr(c));
            }
        });
        iface.routes_mut().update(|r| {
            for rt in &l.routes {
                if let Some(gw) = rt.gateway {
                    let _ = r.push(Route {
                        cidr: cidr(&rt.dst),
                        via_router: to_ip(gw),
                        preferred_until: None,
                        expires_at: None,
                    });
                }
            }
        });
        Iface {
            name: l.name.clone(),
            index: l.index,
            mac: Some(l.mac),
            mtu: l.mtu,
            addrs: l.addrs.clone(),
            routes: l.routes.clone(),
            iface,
            dev: Dev::Link(dev),
            set: SocketSet::new(Vec::new()),
        }
    }

    /// smoltcp's clock.
    pub fn now(&self) -> SInstant {
        SInstant::from_micros(self.base.elapsed().as_micros() as i64)
    }

    /// When the stack next needs a poll (timers of TCP and ARP), as a
    /// host instant; None when only packets or syscalls can give it work.
    pub fn poll_at(&mut self) -> Option<std::time::Instant> {
        let now = self.now();
        let mut at: Option<SInstant> = None;
        for i in &mut self.ifaces {
            if let Some(t) = i.iface.poll_at(now, &i.set) {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        }
        // Orphans in TIME-WAIT and the like are looked at once a second.
        if !self.orphans.is_empty() {
            let t = now + SDuration::from_secs(1);
            at = Some(at.map_or(t, |a| a.min(t)));
        }
        at.map(|t| {
            let us = t.total_micros().max(0) as u64;
            self.base + std::time::Duration::from_micros(us)
        })
    }

    pub(crate) fn alloc_id(&mut self) -> SockId {
        let id = SockId(self.next_id);
        self.next_id += 1;
        id
    }

    pub(crate) fn sock(&self, id: SockId) -> Result<&Sock, Errno> {
        self.socks.get(&id).ok_or(libc::EBADF)
    }

    pub(crate) fn sock_mut(&mut self, id: SockId) -> Result<&mut Sock, Errno> {
        self.socks.get_mut(&id).ok_or(libc::EBADF)
    }

    /// A new socket; `family` AF_INET or AF_INET6.
    pub fn socket(&mut self, family: i32, proto: Proto) -> Result<SockId, Errno> {
        if family != libc::AF_INET && family != libc::AF_INET6 {
            return Err(libc::EAFNOSUPPORT);
        }
        let id = self.alloc_id();
        let unspec = if family == libc::AF_INET {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        self.socks.insert(
            id,
            Sock {
                family,
                proto,
                opts: Opts::new(proto),
                local: SocketAddr::new(unspec, 0),
                bound: false,
                st: St::Idle,
                err: None,
                shut_rd: false,
                shut_wr: false,
                sig: (0, 0, 0, 0),
            },
        );
        Ok(id)
    }

    /// Whether `a` is an address of this sandbox.
    pub fn is_local(&self, a: &IpAddr) -> bool {
        a.is_loopback()
            || (matches!(a, IpAddr::V4(v) if v.octets()[0] == 127))
            || self
                .ifaces
                .iter()
                .any(|i| i.addrs.iter().any(|c| c.addr == *a))
    }

    /// The interface traffic to `dst` leaves by: loopback for the
    /// sandbox's own addresses, else the longest matching prefix of the
    /// links' subnets and routes.
    pub fn route(&self, dst: &IpAddr) -> Option<usize> {
        if self.is_local(dst) {
            return Some(0);
        }
        let mut best: Option<(usize, u8)> = None;
        for (i, f) in self.ifaces.iter().enumerate().skip(1) {
            let mut consider = |c: &Cidr| {
                if c.contains(dst) && best.is_none_or(|(_, p)| c.prefix > p) {
                    best = Some((i, c.prefix));
                }
            };
            for c in &f.addrs {
                consider(c);
            }
            for r in &f.routes {
                consider(&r.dst);
            }
        }
        if best.is_none() {
            // Limited broadcast and multicast: the first link of the family.
            let special = match dst {
                IpAddr::V4(v) => v.is_broadcast() || v.is_multicast(),
                IpAddr::V6(v) => v.is_multicast(),
            };
            if special {
                return self
                    .ifaces
                    .iter()
                    .enumerate()
                    .skip(1)
                    .find(|(_, f)| f.addrs.iter().any(|c| c.addr.is_ipv4() == dst.is_ipv4()))
                    .map(|(i, _)| i);
            }
        }
        best.map(|(i, _)| i)
    }

    /// The source address for `dst` out of interface `i`.
    pub(crate) fn source_for(&self, i: usize, dst: &IpAddr) -> Option<IpAddr> {
        if i == 0 {
            // Loopback: the destination itself when it is one of ours.
            if self.is_local(dst) && !dst.is_unspecified() {
                return Some(*dst);
            }
        }
        self.ifaces[i]
            .iface
            .get_source_address(&to_ip(*dst))
            .map(from_ip)
            .filter(|a| !a.is_unspecified())
    }

    /// The (interface, address) pairs a socket bound to `addr` listens or
    /// receives on. A wildcard of a socket restricted to one family gets
    /// one entry per address of that family, so an IPv4 and an IPv6-only
    /// socket on the same port each see only their own traffic.
    pub(crate) fn endpoints(&self, addr: IpAddr, dual: bool) -> Vec<(usize, Option<IpAddress>)> {
        let mut out = Vec::new();
        if addr.is_unspecified() {
            for (i, f) in self.ifaces.iter().enumerate() {
                if dual {
                    out.push((i, None));
                    continue;
                }
                for c in &f.addrs {
                    if c.addr.is_ipv4() == addr.is_ipv4() {
                        out.push((i, Some(to_ip(c.addr))));
                    }
                }
                if i == 0 {
                    // Loopback also answers for the links' addresses.
                    for l in self.ifaces.iter().skip(1) {
                        for c in &l.addrs {
                            if c.addr.is_ipv4() == addr.is_ipv4() {
                                out.push((0, Some(to_ip(c.addr))));
                            }
                        }
                    }
                }
            }
        } else {
            out.push((0, Some(to_ip(addr))));
            for (i, f) in self.ifaces.iter().enumerate().skip(1) {
                if f.addrs.iter().any(|c| c.addr == addr) {
                    out.push((i, Some(to_ip(addr))));
                }
            }
        }
        out
    }

    /// Moves packets: every link's waiting frames (up to a budget), the
    /// loopback queue, and whatever sockets have to send, until nothing
    /// moves; then finds the sockets whose state changed.
    pub fn poll(&mut self) -> PollOutcome {
        let now = self.now();
        let mut again = false;
        // Links found empty in this pass are not read again in its later
        // rounds: each look is a host read(2) that fails with EAGAIN, and
        // frames arriving meanwhile wake the kernel's poller anyway.
        let mut drained = vec![false; self.ifaces.len()];
        for _round in 0..64 {
            let mut moved = false;
            // `i` indexes self.ifaces too, borrowed anew inside the loop.
            #[allow(clippy::needless_range_loop)]
            for i in 0..self.ifaces.len() {
                let mut taken = 0;
                while !drained[i] {
                    let f = &mut self.ifaces[i];
                    let r = match &mut f.dev {
                        Dev::Loop(d) => f.iface.poll_ingress_single(now, d, &mut f.set),
                        Dev::Link(d) => f.iface.poll_ingress_single(now, d, &mut f.set),
                    };
                    if r == PollIngressSingleResult::None {
                        drained[i] = i > 0;
                        break;
                    }
                    moved = true;
                    if !self.listeners.is_empty() {
                        self.refill_listeners();
                    }
                    taken += 1;
                    if i > 0 && taken >= INGRESS_BUDGET {
                        again = true;
                        break;
                    }
                }
                let f = &mut self.ifaces[i];
                f.iface.poll_maintenance(now);
                loop {
                    let r = match &mut f.dev {
                        Dev::Loop(d) => f.iface.poll_egress(now, d, &mut f.set),
                        Dev::Link(d) => f.iface.poll_egress(now, d, &mut f.set),
                    };
                    if r == smoltcp::iface::PollResult::None {
                        break;
                    }
                    moved = true;
                }
            }
            let lo_pending = matches!(&self.ifaces[0].dev, Dev::Loop(d) if !d.queue.is_empty());
            if !moved && !lo_pending {
                break;
            }
        }
        self.refill_listeners();
        if now >= self.next_reap {
            self.reap_orphans(now);
            self.next_reap = now + REAP_EVERY;
        }
        PollOutcome {
            changed: self.changed(),
            again,
        }
    }

    /// Sends what interface `i`'s sockets have queued, now.
    pub(crate) fn flush_egress(&mut self, i: usize) {
        let now = self.now();
        let f = &mut self.ifaces[i];
        loop {
            let r = match &mut f.dev {
                Dev::Loop(d) => f.iface.poll_egress(now, d, &mut f.set),
                Dev::Link(d) => f.iface.poll_egress(now, d, &mut f.set),
            };
            if r == smoltcp::iface::PollResult::None {
                break;
            }
        }
    }

    /// Sockets whose readiness or queue lengths moved since last looked at.
    fn changed(&mut self) -> Vec<(SockId, u32)> {
        let ids: Vec<SockId> = self.socks.keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            let s = self.signature(id);
            if let Some(sock) = self.socks.get_mut(&id)
                && sock.sig != s
            {
                out.push((id, wakeup_events(sock.sig, s)));
                sock.sig = s;
            }
        }
        out
    }

    /// Records the socket's state as seen (after the workload's own
    /// operations, so only news from the network counts as a change).
    pub(crate) fn settle(&mut self, id: SockId) {
        let s = self.signature(id);
        if let Some(sock) = self.socks.get_mut(&id) {
            sock.sig = s;
        }
    }

    fn signature(&mut self, id: SockId) -> (u32, usize, usize, usize) {
        self.observe(id);
        let mask = self.readiness(id);
        let Some(s) = self.socks.get(&id) else {
            return (0, 0, 0, 0);
        };
        match &s.st {
            St::Tcp(c) => {
                let t = self.ifaces[c.slot.0].set.get::<tcp::Socket>(c.slot.1);
                (mask, t.recv_queue(), t.send_queue(), 0)
            }
            St::Listen(l) => (mask, 0, 0, l.queue.len()),
            St::Dgram { slots, .. } => {
                let (mut r, mut w) = (0, 0);
                for (i, _, h) in slots {
                    match s.proto {
                        Proto::Udp => {
                            let u = self.ifaces[*i].set.get::<udp::Socket>(*h);
                            r += u.recv_queue();
                            w += u.send_queue();
                        }
                        _ => {
                            let u = self.ifaces[*i].set.get::<smoltcp::socket::icmp::Socket>(*h);
                            r += u.recv_queue();
                            w += u.send_queue();
                        }
                    }
                }
                (mask, r, w, 0)
            }
            St::Idle => (mask, 0, 0, 0),
        }
    }

    /// poll(2) bits of a socket.
    pub fn readiness(&mut self, id: SockId) -> u32 {
        let Some(s) = self.socks.get(&id) else {
            return POLLERR | POLLHUP;
        };
        let err = if s.err.is_some() { POLLERR } else { 0 };
        match &s.st {
            St::Idle => {
                // An unconnected TCP socket is "hung up" for poll, as on
                // Linux; an unbound datagram socket may send.
                match s.proto {
                    Proto::Tcp => POLLOUT | POLLHUP | err,
                    _ => POLLOUT | err,
                }
            }
            St::Listen(l) => {
                if l.queue.is_empty() {
                    err
                } else {
                    POLLIN | err
                }
            }
            St::Tcp(c) => {
                let t = self.ifaces[c.slot.0].set.get::<tcp::Socket>(c.slot.1);
                let mut m = err;
                if c.connecting {
                    return match t.state() {
                        tcp::State::SynSent | tcp::State::SynReceived => m,
                        tcp::State::Closed | tcp::State::TimeWait => {
                            m | POLLIN | POLLOUT | POLLHUP | POLLERR
                        }
                        _ => m | POLLOUT,
                    };
                }
                let readable_end = !t.may_recv() || c.done || s.shut_rd;
                if t.can_recv() || readable_end {
                    m |= POLLIN;
                }
                if readable_end {
                    m |= POLLRDHUP;
                }
                let send_closed = s.shut_wr || !t.may_send();
                if send_closed || stream_writable(t.send_queue(), t.send_capacity()) {
                    m |= POLLOUT;
                }
                if (readable_end && send_closed) || c.done {
                    m |= POLLHUP;
                }
                m
            }
            St::Dgram { slots, .. } => {
                let mut m = err;
                let mut can_send = true;
                for (i, _, h) in slots {
                    match s.proto {
                        Proto::Udp => {
                            let u = self.ifaces[*i].set.get::<udp::Socket>(*h);
                            if u.can_recv() {
                                m |= POLLIN;
                            }
                            can_send &= u.can_send();
                        }
                        _ => {
                            let u = self.ifaces[*i].set.get::<smoltcp::socket::icmp::Socket>(*h);
                            if u.can_recv() {
                                m |= POLLIN;
                            }
                            can_send &= u.can_send();
                        }
                    }
                }
                if can_send {
                    m |= POLLOUT;
                }
                if s.shut_rd {
                    m |= POLLIN | POLLRDHUP;
                }
                m
            }
        }
    }

    /// Closes a socket (its last descriptor went away). A TCP connection
    /// sends what it holds and finishes its handshake alone; unread data
    /// or SO_LINGER 0 resets it instead.
    pub fn close(&mut self, id: SockId) {
        let Some(s) = self.socks.remove(&id) else {
            return;
        };
        let now = self.now();
        if s.bound {
            self.ports.release(s.proto, s.local.port(), id);
        }
        self.listeners.retain(|l| *l != id);
        match s.st {
            St::Idle => {}
            St::Listen(l) => {
                for (i, _, pool) in l.pools {
                    for h in pool {
                        self.ifaces[i].set.remove(h);
                    }
                }
                for (i, h) in l.embryos.into_iter().chain(l.queue) {
                    self.ifaces[i].set.get_mut::<tcp::Socket>(h).abort();
                    self.orphans.push(((i, h), now));
                }
            }
            St::Tcp(c) => {
                let t = self.ifaces[c.slot.0].set.get_mut::<tcp::Socket>(c.slot.1);
                if t.recv_queue() > 0 || s.opts.linger == Some(0) {
                    t.abort();
                } else {
                    t.close();
                }
                self.orphans.push((c.slot, now));
            }
            St::Dgram { slots, .. } => {
                for (i, _, h) in slots {
                    // What was sent still leaves (a query sent right before
                    // close); what was not read is dropped.
                    self.orphans.push(((i, h), now));
                }
            }
        }
    }

    /// Drops orphans that are done (or stuck for too long).
    fn reap_orphans(&mut self, now: SInstant) {
        let mut keep = Vec::with_capacity(self.orphans.len());
        for ((i, h), since) in std::mem::take(&mut self.orphans) {
            let set = &mut self.ifaces[i].set;
            let done = match set.get_mut::<smoltcp::socket::Socket>(h) {
                smoltcp::socket::Socket::Tcp(t) => {
                    // Give up on a peer that never finishes after 2 minutes.
                    if now - since > SDuration::from_secs(120) {
                        t.abort();
                    }
                    t.state() == tcp::State::Closed
                        || (t.state() == tcp::State::TimeWait && now - since >= TIME_WAIT_LINGER)
                }
                smoltcp::socket::Socket::Udp(u) => {
                    u.send_queue() == 0 || now - since > SDuration::from_secs(2)
                }
                smoltcp::socket::Socket::Icmp(u) => {
                    u.send_queue() == 0 || now - since > SDuration::from_secs(2)
                }
            };
            if done {
                set.remove(h);
            } else {
                keep.push(((i, h), since));
            }
        }
        self.orphans = keep;
    }

    /// The local address a socket shows (getsockname).
    pub fn sockname(&mut self, id: SockId) -> Result<SocketAddr, Errno> {
        let s = self.sock(id)?;
        if let St::Tcp(c) = &s.st
            && let Some(ep) = self.ifaces[c.slot.0]
                .set
                .get::<tcp::Socket>(c.slot.1)
                .local_endpoint()
        {
            return Ok(self.shown(s.family, SocketAddr::new(from_ip(ep.addr), ep.port)));
        }
        Ok(self.shown(s.family, s.local))
    }

    /// The peer (getpeername).
    pub fn peername(&mut self, id: SockId) -> Result<SocketAddr, Errno> {
        let s = self.sock(id)?;
        match &s.st {
            St::Tcp(c) if !c.connecting && !c.done => {
                let t = self.ifaces[c.slot.0].set.get::<tcp::Socket>(c.slot.1);
                let ep = t.remote_endpoint().ok_or(libc::ENOTCONN)?;
                Ok(self.shown(s.family, SocketAddr::new(from_ip(ep.addr), ep.port)))
            }
            St::Dgram { peer: Some(p), .. } => Ok(self.shown(s.family, *p)),
            _ => Err(libc::ENOTCONN),
        }
    }

    /// An address as a socket of `family` reports it (IPv4 peers of a
    /// dual-stack IPv6 socket appear IPv4-mapped).
    pub(crate) fn shown(&self, family: i32, a: SocketAddr) -> SocketAddr {
        match (family, a.ip()) {
            (libc::AF_INET6, IpAddr::V4(v)) => {
                SocketAddr::new(IpAddr::V6(v.to_ipv6_mapped()), a.port())
            }
            _ => a,
        }
    }

    /// Takes the pending error (SO_ERROR).
    pub fn take_error(&mut self, id: SockId) -> Result<Option<Errno>, Errno> {
        Ok(self.sock_mut(id)?.err.take())
    }

    pub fn proto(&self, id: SockId) -> Option<Proto> {
        self.socks.get(&id).map(|s| s.proto)
    }

    pub fn family(&self, id: SockId) -> Option<i32> {
        self.socks.get(&id).map(|s| s.family)
    }

    /// Bytes readable now (FIONREAD) and bytes not yet acknowledged
    /// (TIOCOUTQ).
    pub fn queues(&mut self, id: SockId) -> Result<(usize, usize), Errno> {
        let s = self.sock(id)?;
        Ok(match &s.st {
            St::Tcp(c) => {
                let t = self.ifaces[c.slot.0].set.get::<tcp::Socket>(c.slot.1);
                (t.recv_queue(), t.send_queue())
            }
            St::Dgram { slots, .. } if s.proto == Proto::Udp => {
                // FIONREAD on UDP: the size of the next datagram.
                let slots = slots.clone();
                let mut next = 0;
                let mut out = 0;
                for (i, _, h) in &slots {
                    let u = self.ifaces[*i].set.get_mut::<udp::Socket>(*h);
                    if next == 0
                        && let Ok((d, _)) = u.peek()
                    {
                        next = d.len();
                    }
                    out += u.send_queue();
                }
                (next, out)
            }
            _ => (0, 0),
        })
    }

    /// Whether a socket is listening (SO_ACCEPTCONN).
    pub fn is_listening(&self, id: SockId) -> bool {
        matches!(self.socks.get(&id).map(|s| &s.st), Some(St::Listen(_)))
    }

    /// Every open TCP connection and listener, for /proc/net/tcp:
    /// (local, remote, Linux state number, tx queue, rx queue).
    pub fn tcp_table(&self) -> Vec<(SocketAddr, SocketAddr, u8, usize, usize)> {
        let mut out = Vec::new();
        for s in self.socks.values() {
            match &s.st {
                St::Listen(_) => out.push((s.local, unspec_like(s.local), 10, 0, 0)),
                St::Tcp(c) => {
                    let t = self.ifaces[c.slot.0].set.get::<tcp::Socket>(c.slot.1);
                    if let (Some(l), Some(r)) = (t.local_endpoint(), t.remote_endpoint()) {
                        out.push((
                            SocketAddr::new(from_ip(l.addr), l.port),
                            SocketAddr::new(from_ip(r.addr), r.port),
                            linux_state(t.state()),
                            t.send_queue(),
                            t.recv_queue(),
                        ));
                    }
                }
                _ if s.proto == Proto::Tcp && s.bound => {
                    out.push((s.local, unspec_like(s.local), 7, 0, 0))
                }
                _ => {}
            }
        }
        for ((i, h), _) in &self.orphans {
            if let smoltcp::socket::Socket::Tcp(t) =
                self.ifaces[*i].set.get::<smoltcp::socket::Socket>(*h)
                && let (Some(l), Some(r)) = (t.local_endpoint(), t.remote_endpoint())
            {
                out.push((
                    SocketAddr::new(from_ip(l.addr), l.port),
                    SocketAddr::new(from_ip(r.addr), r.port),
                    linux_state(t.state()),
                    t.send_queue(),
                    0,
                ));
            }
        }
        out
    }

    /// Bound UDP sockets, for /proc/net/udp: (local, remote, tx, rx).
    pub fn udp_table(&self) -> Vec<(SocketAddr, SocketAddr, usize, usize)> {
        let mut out = Vec::new();
        for s in self.socks.values() {
            if s.proto != Proto::Udp || !s.bound {
                continue;
            }
            let (mut tx, mut rx) = (0, 0);
            let mut peer = unspec_like(s.local);
            if let St::Dgram { slots, peer: p } = &s.st {
                for (i, _, h) in slots {
                    let u = self.ifaces[*i].set.get::<udp::Socket>(*h);
                    tx += u.send_queue();
                    rx += u.recv_queue();
                }
                if let Some(p) = p {
                    peer = *p;
                }
            }
            out.push((s.local, peer, tx, rx));
        }
        out
    }
}

fn unspec_like(a: SocketAddr) -> SocketAddr {
    let ip = if a.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, 0)
}

/// Linux's TCP state numbers (include/net/tcp_states.h).
pub(crate) fn linux_state(s: tcp::State) -> u8 {
    match s {
        tcp::State::Established => 1,
        tcp::State::SynSent => 2,
        tcp::State::SynReceived => 3,
        tcp::State::FinWait1 => 4,
        tcp::State::FinWait2 => 5,
        tcp::State::TimeWait => 6,
        tcp::State::Closed => 7,
        tcp::State::CloseWait => 8,
        tcp::State::LastAck => 9,
        tcp::State::Listen => 10,
        tcp::State::Closing => 11,
    }
}
