//! Which tenant a container belongs to.
//!
//! Trust note: `dev.atoll.tenant` is read from the bundle, so it names the
//! tenant only as reliably as whoever writes bundles. Under Kubernetes the
//! namespace annotations are set by containerd/CRI-O themselves, while pod
//! annotations reach the bundle only through the CRI runtime's
//! `pod_annotations` allowlist: operators must not pass `dev.atoll.*`
//! through it, or any pod could pick its own tenant.

use std::collections::HashMap;

/// Explicit tenant annotation; wins over the Kubernetes namespace.
pub const TENANT_ANNOTATION: &str = "dev.atoll.tenant";
/// Pod namespace as containerd's CRI plugin and CRI-O annotate it.
pub const K8S_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Sandbox namespace as containerd's CRI plugin annotates it.
pub const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// Tenant of containers that name none.
pub const DEFAULT_TENANT: &str = "default";
/// Longest tenant name: a DNS subdomain, like a Kubernetes object name.
pub const MAX_TENANT_LEN: usize = 253;

/// The tenant a bundle's annotations name: `dev.atoll.tenant`, else
/// `io.kubernetes.pod.namespace`, else `io.kubernetes.cri.sandbox-namespace`,
/// else `"default"`.
///
/// The value is returned as written, even empty or malformed, rather than
/// falling through to the next source: a bundle that names a tenant badly
/// must be refused by [`validate_tenant`], not silently land in another one.
pub fn tenant_of(annotations: Option<&HashMap<String, String>>) -> String {
    let Some(a) = annotations else {
        return DEFAULT_TENANT.to_string();
    };
    [TENANT_ANNOTATION, K8S_POD_NAMESPACE, CRI_SANDBOX_NAMESPACE]
        .iter()
        .find_map(|k| a.get(*k))
        .cloned()
        .unwrap_or_else(|| DEFAULT_TENANT.to_string())
}

/// A tenant name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant name {name:?}: {reason}")]
pub struct InvalidTenant {
    pub name: String,
    pub reason: &'static str,
}

/// Checks a tenant name: 1 to 253 characters of `a-z 0-9 . - _`, starting
/// and ending with a letter or digit. Tenant names end up in audit records,
/// metric labels and possibly paths, so the alphabet is kept small and `.`,
/// `..` or a leading `-` can never be a whole name.
pub fn validate_tenant(name: &str) -> Result<(), InvalidTenant> {
    let bad = |reason| {
        Err(InvalidTenant {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_TENANT_LEN {
        return bad("longer than 253 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return bad("only lowercase letters, digits, '.', '-' and '_' are allowed");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tenant_precedence() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "default"),
            (&[("other", "x")], "default"),
            (&[(CRI_SANDBOX_NAMESPACE, "sb")], "sb"),
            (
                &[(CRI_SANDBOX_NAMESPACE, "sb"), (K8S_POD_NAMESPACE, "ns")],
                "ns",
            ),
            (
                &[
                    (CRI_SANDBOX_NAMESPACE, "sb"),
                    (K8S_POD_NAMESPACE, "ns"),
                    (TENANT_ANNOTATION, "acme"),
                ],
                "acme",
            ),
            // Empty is kept so validation refuses it.
            (&[(TENANT_ANNOTATION, ""), (K8S_POD_NAMESPACE, "ns")], ""),
        ];
        for (pairs, want) in cases {
            assert_eq!(tenant_of(Some(&ann(pairs))), *want, "{pairs:?}");
        }
        assert_eq!(tenant_of(None), "default");
    }

    #[test]
    fn tenant_names() {
        let long_ok = "a".repeat(253);
        let too_long = "a".repeat(254);
        let cases: &[(&str, bool)] = &[
            ("acme", true),
            ("kube-system", true),
            ("team_a.prod-1", true),
            ("0", true),
            (&long_ok, true),
            ("", false),
            (&too_long, false),
            ("Acme", false),
            ("acme corp", false),
            ("a/b", false),
            (".", false),
            ("..", false),
            ("-acme", false),
            ("acme-", false),
            ("acme\n", false),
            ("ünï", false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_tenant(name).is_ok(), *ok, "{name:?}");
        }
        let err = validate_tenant("A").unwrap_err().to_string();
        assert!(err.starts_with("invalid tenant name \"A\""), "{err}");
    }
}
