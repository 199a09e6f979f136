//! Capability names and the capability sets of a process.

use oci_spec::runtime::{Capability, Process};
use serde::Deserialize;
use serde::de::IntoDeserializer;

/// runc's default set (`runc spec`): what every container may have without
/// `allowed_capabilities` saying so.
pub const RUNC_DEFAULT_CAPS: [Capability; 3] = [
    Capability::AuditWrite,
    Capability::Kill,
    Capability::NetBindService,
];

/// Parses a capability name with or without `CAP_`, in any case
/// (`SYS_ADMIN`, `cap_sys_admin`, `CAP_SYS_ADMIN`).
pub fn parse_cap(name: &str) -> Option<Capability> {
    // oci-spec's own Deserialize already accepts every spelling.
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        name.into_deserializer();
    Capability::deserialize(de).ok()
}

/// The canonical name, `CAP_SYS_ADMIN`, as it appears in config.json.
pub fn cap_name(cap: Capability) -> String {
    format!("CAP_{cap}")
}

/// A capability named in the policy file; unknown names are parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct CapName(pub Capability);

impl TryFrom<String> for CapName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_cap(&s)
            .map(CapName)
            .ok_or_else(|| format!("unknown capability {s:?}"))
    }
}

/// The five capability sets by their config.json names, in the order
/// violations are reported.
pub const SET_NAMES: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// The capabilities a process would hold, per set.
pub enum ProcessCaps {
    /// `process.capabilities` is absent: libcontainer then leaves the
    /// runtime's own (full, root) capabilities in place.
    Unrestricted,
    /// One entry per [`SET_NAMES`] element, each sorted by name so that the
    /// first violation is the same on every run (the spec's sets are hash
    /// sets). An absent set is empty: libcontainer empties an absent
    /// bounding set, and leaves the others as the runtime had them, which
    /// atoll never raises.
    Sets([Vec<Capability>; 5]),
}

impl ProcessCaps {
    pub fn of(process: Option<&Process>) -> ProcessCaps {
        let Some(c) = process.and_then(|p| p.capabilities().as_ref()) else {
            return ProcessCaps::Unrestricted;
        };
        let sorted = |s: &Option<oci_spec::runtime::Capabilities>| -> Vec<Capability> {
            let mut caps: Vec<Capability> = s.iter().flatten().copied().collect();
            caps.sort_by_cached_key(|c| cap_name(*c));
            caps
        };
        ProcessCaps::Sets([
            sorted(c.bounding()),
            sorted(c.effective()),
            sorted(c.inheritable()),
            sorted(c.permitted()),
            sorted(c.ambient()),
        ])
    }

    /// The first capability (set order, then name order) not accepted by
    /// `ok`, as a violation's field and value.
    pub fn first_not(&self, ok: impl Fn(Capability) -> bool) -> Option<(String, String)> {
        match self {
            ProcessCaps::Unrestricted => Some((
                "process.capabilities".to_string(),
                "absent (keeps all capabilities)".to_string(),
            )),
            ProcessCaps::Sets(sets) => SET_NAMES.iter().zip(sets).find_map(|(name, set)| {
                set.iter()
                    .find(|c| !ok(**c))
                    .map(|c| (format!("process.capabilities.{name}"), cap_name(*c)))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        for s in [
            "CAP_SYS_ADMIN",
            "SYS_ADMIN",
            "sys_admin",
            "cap_sys_admin",
            "Cap_Sys_Admin",
        ] {
            assert_eq!(parse_cap(s), Some(Capability::SysAdmin), "{s}");
        }
        assert_eq!(
            parse_cap("NET_BIND_SERVICE"),
            Some(Capability::NetBindService)
        );
        assert_eq!(parse_cap("SYS_ADMINX"), None);
        assert_eq!(parse_cap(""), None);
        assert_eq!(cap_name(Capability::NetBindService), "CAP_NET_BIND_SERVICE");
        assert_eq!(cap_name(Capability::DacReadSearch), "CAP_DAC_READ_SEARCH");
        assert_eq!(cap_name(Capability::Bpf), "CAP_BPF");
    }
}
