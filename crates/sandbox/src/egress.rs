//! The egress rules the sandbox's network stack enforces at connect and
//! sendto: the cloud metadata services are refused for every sandbox; a
//! tenant with a network policy adds its `egress_allow`/`egress_deny`
//! rules and the denial of the node's own addresses and loopback.

use atoll_netstack::{Cidr, Egress, EgressRule};
use atoll_runtime::executor::EgressOptions;

fn parse(list: &[(String, String, String)], what: &str) -> Result<Vec<EgressRule>, String> {
    list.iter()
        .enumerate()
        .map(|(i, (cidr, ports, proto))| {
            let mut name = format!("{what}[{i}] {cidr}");
            for part in [proto, ports] {
                if !part.is_empty() {
                    name.push(' ');
                    name.push_str(part);
                }
            }
            Ok(EgressRule {
                cidr: Cidr::parse(cidr)?,
                ports: EgressRule::parse_ports(ports)?,
                proto: EgressRule::parse_proto(proto)?,
                name,
            })
        })
        .collect::<Result<_, String>>()
        .map_err(|e| format!("{what}: {e}"))
}

pub fn rules(opts: Option<&EgressOptions>) -> Result<Egress, String> {
    let mut e = Egress::default();
    match opts {
        None => {
            e.builtin = Egress::builtin(&[])
                .into_iter()
                .filter(|r| r.name.contains("metadata"))
                .collect();
        }
        Some(o) => {
            e.builtin = Egress::builtin(&o.node);
            e.allow = parse(&o.allow, "egress_allow")?;
            e.deny = parse(&o.deny, "egress_deny")?;
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(c: &str, p: &str, proto: &str) -> (String, String, String) {
        (c.into(), p.into(), proto.into())
    }

    #[test]
    fn without_a_tenant_policy_only_metadata_is_refused() {
        let e = rules(None).unwrap();
        let tcp = atoll_netstack::Proto::Tcp;
        assert!(
            e.refusing("169.254.169.254".parse().unwrap(), 80, tcp)
                .is_some()
        );
        assert!(
            e.refusing("fd00:ec2::254".parse().unwrap(), 80, tcp)
                .is_some()
        );
        assert!(e.refusing("10.0.0.1".parse().unwrap(), 80, tcp).is_none());
    }

    #[test]
    fn a_tenant_policy_adds_its_rules_and_the_node() {
        let o = EgressOptions {
            allow: vec![t("0.0.0.0/0", "", ""), t("10.0.0.1/32", "53", "udp")],
            deny: vec![t("10.9.0.0/16", "22,80-90", "tcp")],
            node: vec!["10.0.0.1".parse().unwrap()],
        };
        let e = rules(Some(&o)).unwrap();
        let (tcp, udp) = (atoll_netstack::Proto::Tcp, atoll_netstack::Proto::Udp);
        assert_eq!(
            e.refusing("10.9.1.1".parse().unwrap(), 85, tcp).as_deref(),
            Some("egress_deny[0] 10.9.0.0/16 tcp 22,80-90")
        );
        assert!(e.refusing("10.9.1.1".parse().unwrap(), 85, udp).is_none());
        assert!(e.refusing("10.0.0.1".parse().unwrap(), 53, udp).is_none());
        assert_eq!(
            e.refusing("10.0.0.1".parse().unwrap(), 22, tcp).as_deref(),
            Some("builtin: node address 10.0.0.1")
        );
        assert!(
            e.refusing("169.254.169.254".parse().unwrap(), 80, tcp)
                .is_some()
        );
        let bad = EgressOptions {
            allow: vec![t("10.0.0.0/8", "0", "")],
            ..Default::default()
        };
        assert!(rules(Some(&bad)).unwrap_err().starts_with("egress_allow: "));
    }
}
