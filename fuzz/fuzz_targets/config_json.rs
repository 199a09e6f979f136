//! A bundle's config.json as `create` reads it: parsed with the field path
//! in errors and checked as runc checks it (`spec::load_bundle` without the
//! file system), the level picked from its annotation, then the effective
//! spec for each level, which libcontainer reads back from atoll's state
//! directory and so must survive serialization unchanged.
#![no_main]

use std::path::Path;

use atoll_runtime::effective::effective_spec;
use atoll_runtime::{Isolation, level, spec};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = spec::parse_json::<Spec>(data) else {
        return;
    };
    if spec::check_spec(&parsed).is_err() || parsed.root().is_none() {
        return;
    }
    let annotation = parsed
        .annotations()
        .as_ref()
        .and_then(|a| a.get(level::ISOLATION_ANNOTATION))
        .map(String::as_str);
    let _ = level::select(None, annotation, None);

    for isolation in Isolation::ALL {
        for systemd in [false, true] {
            let eff = effective_spec(&parsed, "fuzz", Path::new("/bundle"), isolation, systemd);
            let linux = eff.linux().as_ref().expect("effective spec has linux");
            assert!(linux.cgroups_path().is_some());
            assert!(linux.masked_paths().is_some() && linux.readonly_paths().is_some());
            match isolation {
                Isolation::Native => assert!(linux.seccomp().is_some()),
                // The guest's agent applies the profile; the VMM is the init.
                Isolation::Vm => assert!(linux.seccomp().is_none()),
                Isolation::Userspace => {
                    assert!(linux.seccomp().is_none());
                    let p = eff.process().as_ref().expect("checked: process");
                    assert_eq!(p.no_new_privileges(), Some(true));
                    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
                }
            }
            // What lifecycle::create_inner writes (Spec::save) and
            // libcontainer loads (Spec::load).
            let json = serde_json::to_vec(&eff).expect("effective spec serializes");
            let back: Spec = serde_json::from_slice(&json).expect("effective spec loads");
            assert_eq!(
                back, eff,
                "effective spec changed on its way to libcontainer"
            );
            spec::check_spec(&back).expect("effective spec passes the bundle checks");
        }
    }
});
