//! NETLINK_ROUTE requests from the workload (`--network sandbox`): the
//! bytes of a sendmsg on a netlink socket go to the stack's rtnetlink
//! server, so no request (lying lengths, truncated headers and
//! attributes, unknown types and flags, batches) may panic it or read
//! past the buffer, and every reply is well framed: whole messages of at
//! least a header, each carrying the asker's port id, within the
//! receive room (plus at most one datagram).
//!
//! Input: one byte of socket options (bit 0 strict checking, bit 1
//! CAP_ACK, bit 2 CAP_NET_ADMIN, bits 3-7 the receive room in KiB), then
//! the request bytes.
#![no_main]

use atoll_netstack::rtnetlink::{DUMP_DATAGRAM, NLMSG_HDRLEN, NlIface, serve};
use atoll_netstack::{Cidr, RouteConfig};
use libfuzzer_sys::fuzz_target;

fn ifaces() -> Vec<NlIface> {
    vec![
        NlIface {
            name: "lo".into(),
            index: 1,
            mtu: 65536,
            addrs: vec![
                Cidr::parse("127.0.0.1/8").unwrap(),
                Cidr::parse("::1/128").unwrap(),
            ],
            ..Default::default()
        },
        NlIface {
            name: "eth0".into(),
            index: 4,
            mac: Some([2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            addrs: vec![
                Cidr::parse("10.0.0.2/24").unwrap(),
                Cidr::parse("fd00::2/64").unwrap(),
                Cidr::parse("fe80::1/64").unwrap(),
            ],
            routes: vec![RouteConfig {
                dst: Cidr::parse("0.0.0.0/0").unwrap(),
                gateway: Some("10.0.0.1".parse().unwrap()),
            }],
            ..Default::default()
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, req)) = data.split_first() else {
        return;
    };
    let asker = atoll_netstack::rtnetlink::Asker {
        portid: 0x1234,
        strict: opts & 1 != 0,
        cap_ack: opts & 2 != 0,
        net_admin: opts & 4 != 0,
    };
    let room = ((opts >> 3) as usize + 1) * 1024;
    let (replies, _lost) = serve(&ifaces(), req, &asker, room);
    let total: usize = replies.iter().map(|d| d.len()).sum();
    // A request's replies may be up to a datagram past the room, and an
    // error echoes at most the whole request.
    assert!(total <= room + DUMP_DATAGRAM.max(req.len() + 64) * 2);
    for d in &replies {
        let mut at = 0;
        assert!(!d.is_empty());
        while at < d.len() {
            assert!(d.len() - at >= NLMSG_HDRLEN);
            let len = u32::from_ne_bytes(d[at..at + 4].try_into().unwrap()) as usize;
            assert!(len >= NLMSG_HDRLEN && at + len <= d.len());
            assert_eq!(len % 4, 0);
            let pid = u32::from_ne_bytes(d[at + 12..at + 16].try_into().unwrap());
            assert_eq!(pid, 0x1234);
            at += len;
        }
    }
});
