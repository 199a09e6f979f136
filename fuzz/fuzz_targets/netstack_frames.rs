//! Frames from the container's interfaces (`--network sandbox`): the
//! kernel's stack takes whatever the host's end of a link sends, so no
//! frame (with or without a virtio-net header claiming offloads) may
//! panic it, and the sockets the frames reach (a listener, a bound UDP
//! socket, connections they open) stay usable.
//!
//! Input: one mode byte (bit 0: frames carry a virtio-net header, whose
//! DATA_VALID flag lets a frame past the checksum check), then frames as
//! a little-endian u16 length and that many bytes.
#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use atoll_netstack::device::Frames;
use atoll_netstack::{Cidr, LinkConfig, NetConfig, Proto, RouteConfig, Stack};
use libfuzzer_sys::fuzz_target;

struct Wire {
    rx: Rc<RefCell<VecDeque<Vec<u8>>>>,
    vnet: bool,
}

impl Frames for Wire {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let f = self.rx.borrow_mut().pop_front()?;
        let n = f.len().min(buf.len());
        buf[..n].copy_from_slice(&f[..n]);
        Some(n)
    }
    fn send(&mut self, _frame: &[u8]) -> bool {
        true
    }
    fn vnet(&self) -> bool {
        self.vnet
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let q = Rc::new(RefCell::new(VecDeque::new()));
    while rest.len() >= 2 {
        let n = (u16::from_le_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        q.borrow_mut().push_back(rest[2..2 + n].to_vec());
        rest = &rest[2 + n..];
    }
    let config = NetConfig {
        links: vec![LinkConfig {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0, 2],
            mtu: 1500,
            addrs: vec![
                Cidr::parse("10.0.0.2/24").unwrap(),
                Cidr::parse("fd00::2/64").unwrap(),
            ],
            routes: vec![RouteConfig {
                dst: Cidr::parse("0.0.0.0/0").unwrap(),
                gateway: Some("10.0.0.1".parse().unwrap()),
            }],
        }],
    };
    let wire = Wire {
        rx: q.clone(),
        vnet: mode & 1 != 0,
    };
    let mut st = Stack::new(&config, vec![Box::new(wire)]);
    let tcp = st.socket(libc::AF_INET6, Proto::Tcp).unwrap();
    st.bind(tcp, "[::]:80".parse().unwrap()).unwrap();
    st.listen(tcp, 8).unwrap();
    let udp = st.socket(libc::AF_INET, Proto::Udp).unwrap();
    st.bind(udp, "0.0.0.0:53".parse().unwrap()).unwrap();
    for _ in 0..64 {
        let out = st.poll();
        if q.borrow().is_empty() && !out.again {
            break;
        }
    }
    let buf = RefCell::new(vec![0u8; 2048]);
    while let Ok((c, _peer)) = st.accept(tcp) {
        let _ = st.readiness(c);
        let _ = st.recv(c, &buf, 0);
        let _ = st.send(c, &&b"reply"[..], None, 0);
        st.close(c);
    }
    let _ = st.recv(udp, &buf, 0);
    let _ = st.readiness(udp);
    st.poll();
    let _ = atoll_netstack::procnet::tcp(&st, true);
    let _ = atoll_netstack::procnet::dev(&st);
});
