//! Who holds which port: bind conflicts as Linux decides them
//! (SO_REUSEADDR, SO_REUSEPORT, wildcard and dual-stack addresses) and
//! ephemeral ports for connects and implicit binds.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::stack::{Proto, SockId};

/// Linux's default ip_local_port_range.
pub const EPHEMERAL: (u16, u16) = (32768, 60999);

#[derive(Clone, Debug)]
pub struct Binding {
    pub id: SockId,
    /// The bound address (unspecified for a wildcard), IPv4-mapped
    /// addresses already turned into IPv4.
    pub addr: IpAddr,
    /// Which families it covers (a dual-stack `::` covers both).
    pub v4: bool,
    pub v6: bool,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub listening: bool,
}

impl Binding {
    fn overlaps(&self, o: &Binding) -> bool {
        let family = (self.v4 && o.v4) || (self.v6 && o.v6);
        family && (self.addr.is_unspecified() || o.addr.is_unspecified() || self.addr == o.addr)
    }
}

#[derive(Default)]
pub struct Ports {
    used: HashMap<(Proto, u16), Vec<Binding>>,
    next: u16,
}

impl Ports {
    /// Whether `b` may take `port` next to the bindings already there.
    fn free_for(&self, proto: Proto, port: u16, b: &Binding) -> bool {
        let Some(list) = self.used.get(&(proto, port)) else {
            return true;
        };
        list.iter().filter(|e| e.id != b.id).all(|e| {
            !e.overlaps(b)
                || (e.reuseport && b.reuseport)
                || (e.reuseaddr && b.reuseaddr && (proto != Proto::Tcp || !e.listening))
        })
    }

    /// Binds `b` to `port` (0: an ephemeral port); returns the port.
    pub fn bind(&mut self, proto: Proto, port: u16, b: Binding) -> Result<u16, crate::Errno> {
        let port = if port == 0 {
            self.ephemeral(proto, &b)?
        } else {
            if !self.free_for(proto, port, &b) {
                return Err(libc::EADDRINUSE);
            }
            port
        };
        self.used.entry((proto, port)).or_default().push(b);
        Ok(port)
    }

    fn ephemeral(&mut self, proto: Proto, b: &Binding) -> Result<u16, crate::Errno> {
        let (lo, hi) = EPHEMERAL;
        let span = (hi - lo + 1) as u32;
        if self.next < lo || self.next > hi {
            // Start somewhere unpredictable, as Linux does.
            let mut r = [0u8; 2];
            // SAFETY: getrandom into a 2-byte buffer.
            unsafe { libc::getrandom(r.as_mut_ptr() as *mut libc::c_void, 2, 0) };
            self.next = lo + (u16::from_ne_bytes(r) as u32 % span) as u16;
        }
        for _ in 0..span {
            let p = self.next;
            self.next = if p >= hi { lo } else { p + 1 };
            // An ephemeral port is one nobody holds at all.
            if !self.used.contains_key(&(proto, p)) && self.free_for(proto, p, b) {
                return Ok(p);
            }
        }
        Err(libc::EADDRNOTAVAIL)
    }

    /// listen(): a second listener needs SO_REUSEPORT on both.
    pub fn listen(&mut self, proto: Proto, port: u16, id: SockId) -> Result<(), crate::Errno> {
        let Some(list) = self.used.get_mut(&(proto, port)) else {
            return Ok(());
        };
        let me = list.iter().find(|e| e.id == id).cloned();
        let Some(me) = me else {
            return Ok(());
        };
        if list
            .iter()
            .any(|e| e.id != id && e.listening && e.overlaps(&me) && !(e.reuseport && me.reuseport))
        {
            return Err(libc::EADDRINUSE);
        }
        for e in list.iter_mut().filter(|e| e.id == id) {
            e.listening = true;
        }
        Ok(())
    }

    pub fn release(&mut self, proto: Proto, port: u16, id: SockId) {
        if let Some(list) = self.used.get_mut(&(proto, port)) {
            list.retain(|e| e.id != id);
            if list.is_empty() {
                self.used.remove(&(proto, port));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: u64, addr: &str, reuseaddr: bool, reuseport: bool) -> Binding {
        let addr: IpAddr = addr.parse().unwrap();
        Binding {
            id: SockId(id),
            addr,
            v4: addr.is_ipv4(),
            v6: addr.is_ipv6(),
            reuseaddr,
            reuseport,
            listening: false,
        }
    }

    #[test]
    fn conflicts_as_linux() {
        let mut p = Ports::default();
        assert_eq!(
            p.bind(Proto::Tcp, 80, b(1, "0.0.0.0", false, false)),
            Ok(80)
        );
        assert_eq!(
            p.bind(Proto::Tcp, 80, b(2, "127.0.0.1", false, false)),
            Err(libc::EADDRINUSE)
        );
        // Another family does not overlap.
        assert_eq!(p.bind(Proto::Tcp, 80, b(3, "::", false, false)), Ok(80));
        // UDP is another table.
        assert_eq!(
            p.bind(Proto::Udp, 80, b(4, "0.0.0.0", false, false)),
            Ok(80)
        );
        // SO_REUSEADDR on both: allowed while neither listens (TCP).
        assert_eq!(p.bind(Proto::Tcp, 81, b(5, "0.0.0.0", true, false)), Ok(81));
        assert_eq!(p.bind(Proto::Tcp, 81, b(6, "0.0.0.0", true, false)), Ok(81));
        p.listen(Proto::Tcp, 81, SockId(5)).unwrap();
        assert_eq!(p.listen(Proto::Tcp, 81, SockId(6)), Err(libc::EADDRINUSE));
        // SO_REUSEPORT on both: two listeners.
        p.bind(Proto::Tcp, 82, b(7, "0.0.0.0", false, true))
            .unwrap();
        p.bind(Proto::Tcp, 82, b(8, "0.0.0.0", false, true))
            .unwrap();
        p.listen(Proto::Tcp, 82, SockId(7)).unwrap();
        p.listen(Proto::Tcp, 82, SockId(8)).unwrap();
        p.release(Proto::Tcp, 80, SockId(1));
        assert_eq!(
            p.bind(Proto::Tcp, 80, b(9, "127.0.0.1", false, false)),
            Ok(80)
        );
        let e = p
            .bind(Proto::Tcp, 0, b(10, "0.0.0.0", false, false))
            .unwrap();
        assert!((EPHEMERAL.0..=EPHEMERAL.1).contains(&e));
    }
}
