//! /proc/net files from the stack's own state, in Linux's formats
//! (netstat, ss and lsof read tcp/udp; ifconfig and sar read dev).

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use crate::stack::Stack;

fn hex_addr(a: &SocketAddr, v6: bool) -> String {
    let ip = match (a.ip(), v6) {
        (IpAddr::V4(v), true) => IpAddr::V6(v.to_ipv6_mapped()),
        (ip, _) => ip,
    };
    let h = match ip {
        IpAddr::V4(v) => format!("{:08X}", u32::from_ne_bytes(v.octets())),
        IpAddr::V6(v) => v
            .octets()
            .chunks(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes(c.try_into().unwrap())))
            .collect(),
    };
    format!("{h}:{:04X}", a.port())
}

/// /proc/net/tcp (`v6` false) or tcp6.
pub fn tcp(stack: &Stack, v6: bool) -> String {
    let mut s = if v6 {
        String::from(
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        )
    } else {
        String::from(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        )
    };
    let rows = stack
        .tcp_table()
        .into_iter()
        .filter(|(l, ..)| l.is_ipv6() == v6);
    for (n, (l, r, st, tx, rx)) in rows.enumerate() {
        let _ = writeln!(
            s,
            "{n:4}: {} {} {st:02X} {tx:08X}:{rx:08X} 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 0 10 -1",
            hex_addr(&l, v6),
            hex_addr(&r, v6)
        );
    }
    s
}

/// /proc/net/udp or udp6.
pub fn udp(stack: &Stack, v6: bool) -> String {
    let mut s = if v6 {
        String::from(
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n",
        )
    } else {
        String::from(
            "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n",
        )
    };
    let rows = stack
        .udp_table()
        .into_iter()
        .filter(|(l, ..)| l.is_ipv6() == v6);
    for (n, (l, r, tx, rx)) in rows.enumerate() {
        let st = if r.port() != 0 { 1 } else { 7 };
        let _ = writeln!(
            s,
            "{n:5}: {} {} {st:02X} {tx:08X}:{rx:08X} 00:00000000 00000000     0        0 0 2 0000000000000000 0",
            hex_addr(&l, v6),
            hex_addr(&r, v6)
        );
    }
    s
}

/// /proc/net/dev.
pub fn dev(stack: &Stack) -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for f in &stack.ifaces {
        let st = f.stats();
        let _ = writeln!(
            s,
            "{:>6}: {:7} {:7} {:4} {:4} {:4} {:5} {:10} {:9} {:8} {:7} {:4} {:4} {:4} {:5} {:7} {:10}",
            f.name,
            st.rx_bytes,
            st.rx_packets,
            0,
            st.rx_dropped,
            0,
            0,
            0,
            0,
            st.tx_bytes,
            st.tx_packets,
            0,
            st.tx_dropped,
            0,
            0,
            0,
            0
        );
    }
    s
}

/// /proc/net/if_inet6: the IPv6 addresses.
pub fn if_inet6(stack: &Stack) -> String {
    let mut s = String::new();
    for f in &stack.ifaces {
        for c in &f.addrs {
            if let IpAddr::V6(a) = c.addr {
                let hex: String = a.octets().iter().map(|b| format!("{b:02x}")).collect();
                let scope = if a.is_loopback() {
                    0x10
                } else if a.segments()[0] & 0xffc0 == 0xfe80 {
                    0x20
                } else {
                    0
                };
                let _ = writeln!(
                    s,
                    "{hex} {:02x} {:02x} {scope:02x} 80 {:>8}",
                    f.index, c.prefix, f.name
                );
            }
        }
    }
    s
}

/// /proc/net/route: the IPv4 routes (what `route -n` and old tools read).
pub fn route(stack: &Stack) -> String {
    let mut s = String::from(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
    );
    let h = |a: IpAddr| match a {
        IpAddr::V4(v) => format!("{:08X}", u32::from_ne_bytes(v.octets())),
        _ => String::new(),
    };
    for f in stack.ifaces.iter().skip(1) {
        let mut rows: Vec<(IpAddr, IpAddr, u8)> = Vec::new();
        for c in f.addrs.iter().filter(|c| c.addr.is_ipv4()) {
            rows.push((c.network(), "0.0.0.0".parse().unwrap(), c.prefix));
        }
        for r in f.routes.iter().filter(|r| r.dst.addr.is_ipv4()) {
            // The links' routes as taken over include the connected ones
            // made from the addresses above: listed once.
            let on_link = "0.0.0.0".parse().unwrap();
            if r.gateway.is_none() && rows.contains(&(r.dst.network(), on_link, r.dst.prefix)) {
                continue;
            }
            rows.push((
                r.dst.network(),
                r.gateway.unwrap_or("0.0.0.0".parse().unwrap()),
                r.dst.prefix,
            ));
        }
        for (dst, gw, prefix) in rows {
            let mask = if prefix == 0 {
                0u32
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            let flags = 1 | if gw.is_unspecified() { 0 } else { 2 };
            let _ = writeln!(
                s,
                "{}\t{}\t{}\t{:04X}\t0\t0\t0\t{}\t0\t0\t0",
                f.name,
                h(dst),
                h(gw),
                flags,
                h(IpAddr::V4(mask.into()))
            );
        }
    }
    s
}
