//! `exec --process FILE`: a runtime-spec process object parsed and checked
//! by `spec::load_process` (without the file). `--process -` stages the
//! process as JSON in the state directory and the exec reads it again, so
//! what was accepted must read back the same.
#![no_main]

use atoll_runtime::spec;
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Process;

fuzz_target!(|data: &[u8]| {
    let Ok(process) = spec::parse_json::<Process>(data) else {
        return;
    };
    if spec::check_process(&process).is_err() {
        return;
    }
    let staged = serde_json::to_vec(&process).expect("process serializes");
    let back: Process = spec::parse_json(&staged).expect("staged process loads");
    spec::check_process(&back).expect("staged process passes the checks");
    assert_eq!(back, process);
});
