//! `make conformance` (scripts/conformance.sh): gVisor's syscall test suite
//! at both levels, generating docs/conformance.md. Driven here with two
//! stand-in gtest binaries (one passes, one aborts midway), so the counting,
//! the status column, the time ratio and the generated file are tested
//! without the suite itself.

use atoll_testkit::cprog;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/conformance.sh")
}

fn run(envs: &[(&str, &Path)]) -> atoll_testkit::Out {
    let mut c = Command::new(script());
    c.env_remove("GVISOR_SYSCALL_TESTS")
        .env("ATOLL", env!("CARGO_BIN_EXE_atoll"));
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("running conformance.sh").into()
}

/// A program printing what a gtest binary of `total` tests prints when the
/// first `ok` pass; aborts there when `ok < total`.
fn fake_gtest(name: &str, total: u32, ok: u32) -> PathBuf {
    let src = format!(
        r#"#include <stdio.h>
#include <stdlib.h>
int main(void) {{
    printf("[==========] Running {total} tests from 1 test suite.\n");
    for (int i = 0; i < {ok}; i++) printf("[ RUN      ] Fake.T%d\n[       OK ] Fake.T%d (0 ms)\n", i, i);
    fflush(stdout);
    if ({ok} < {total}) abort();
    printf("[==========] {total} tests from 1 test suite ran. (0 ms total)\n[  PASSED  ] {total} tests.\n");
    return 0;
}}
"#
    );
    cprog::compile(name, &src, &[])
}

#[test]
fn conformance_without_the_suite_says_how_to_get_it() {
    let out = run(&[]);
    assert_eq!(out.code, 2, "{out:#?}");
    out.fails_with("GVISOR_SYSCALL_TESTS is not set");
    let out = run(&[(
        "GVISOR_SYSCALL_TESTS",
        Path::new("/nonexistent/suite.tar.xz"),
    )]);
    out.fails_with("does not exist");
    // gVisor's runsc is a level only when RUNSC names it.
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(script());
    c.env("GVISOR_SYSCALL_TESTS", dir.path())
        .env("ATOLL", env!("CARGO_BIN_EXE_atoll"))
        .env("CONFORMANCE_LEVELS", "runsc")
        .env_remove("RUNSC");
    let out: atoll_testkit::Out = c.output().unwrap().into();
    out.fails_with("level runsc needs RUNSC=");
}

#[test]
fn conformance_tabulates_each_binary_at_both_levels_into_the_doc() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    std::fs::copy(fake_gtest("fake_pass", 3, 3), suite.join("fakepass_test")).unwrap();
    std::fs::copy(fake_gtest("fake_crash", 4, 1), suite.join("fakecrash_test")).unwrap();
    let tarball = dir.path().join("suite.tar.xz");
    let st = Command::new("tar")
        .arg("-cJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&suite)
        .args(["fakepass_test", "fakecrash_test"])
        .status()
        .unwrap();
    assert!(st.success());
    let doc = dir.path().join("conformance.md");
    let out = run(&[
        ("GVISOR_SYSCALL_TESTS", &tarball),
        ("CONFORMANCE_DOC", &doc),
        ("CONFORMANCE_OUT", &dir.path().join("out")),
    ]);
    out.ok();
    let table = std::fs::read_to_string(&doc).unwrap();
    assert!(
        table.starts_with("# gVisor's syscall test suite at each level\n"),
        "{table}"
    );
    assert!(
        table.contains("gVisor commit `3c5eee17dc45`, 2 binaries"),
        "{table}"
    );
    // When each level ran, and under what load.
    assert!(table.contains("\n- native: from "), "{table}");
    assert!(table.contains("\n- userspace: from "), "{table}");
    assert!(
        table.contains(
            "| binary | tests | native | userspace | seconds (native / userspace) | userspace / native |"
        ),
        "{table}"
    );
    assert!(
        table.contains("| fakepass | 3 | 3/0/0 | 3/0/0 | "),
        "{table}"
    );
    let crash = table
        .lines()
        .find(|l| l.starts_with("| fakecrash |"))
        .unwrap();
    assert!(
        crash.starts_with("| fakecrash | 4 | 1/3/0, crash (exit ")
            && crash.matches(", crash").count() == 2
            && (crash.ends_with("x |") || crash.ends_with("x** |")),
        "{crash}"
    );
    assert!(
        table.contains("| **all** | 7 | 4/3/0 | 4/3/0 | "),
        "{table}"
    );
    assert!(
        table.contains("Binaries over 3x their native time: "),
        "{table}"
    );
    // The doc again from the same results, without running anything.
    std::fs::remove_file(&doc).unwrap();
    let mut c = Command::new(script());
    c.arg("--table")
        .env_remove("GVISOR_SYSCALL_TESTS")
        .env("CONFORMANCE_DOC", &doc)
        .env("CONFORMANCE_OUT", dir.path().join("out"));
    let again: atoll_testkit::Out = c.output().unwrap().into();
    again.ok();
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), table);

    // Named binaries print their rows and leave the doc alone.
    let before = std::fs::read_to_string(&doc).unwrap();
    let mut c = Command::new(script());
    c.arg("fakepass")
        .env("ATOLL", env!("CARGO_BIN_EXE_atoll"))
        .env("GVISOR_SYSCALL_TESTS", &suite)
        .env("CONFORMANCE_DOC", &doc)
        .env("CONFORMANCE_OUT", dir.path().join("out2"));
    let out: atoll_testkit::Out = c.output().unwrap().into();
    out.ok();
    assert!(
        out.stdout.contains("| fakepass | 3 | 3/0/0 | 3/0/0 | "),
        "{out:#?}"
    );
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), before);
    // A name the suite lacks is an error.
    c.args(["nosuch"]);
    let out: atoll_testkit::Out = c.output().unwrap().into();
    out.fails_with("no binary nosuch_test");
}

/// A binary over the 3x bound is explained from gtest's own per-case
/// times: the cases both levels pass (the same work at each) apart from
/// those only the userspace level passes (work the native level cut short
/// by failing), so a reader sees which of the two the wall time measured.
#[test]
fn conformance_explains_a_binary_over_the_time_bound_by_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let level = |name: &str, secs: u32, passed: u32, log: &str| {
        let d = out.join(name);
        std::fs::create_dir_all(d.join("logs")).unwrap();
        std::fs::write(
            d.join("results.tsv"),
            format!("slow\t4\t{passed}\t0\tok\t{secs}\n"),
        )
        .unwrap();
        std::fs::write(d.join("logs/slow.log"), log).unwrap();
    };
    level(
        "native",
        1,
        1,
        "[==========] Running 4 tests from 2 test suites.\n\
         [       OK ] Fake.A (100 ms)\n\
         [  FAILED  ] Fake.B (0 ms)\n\
         [  FAILED  ] Fake.C (0 ms)\n\
         [  FAILED  ] P/T.X/0, where GetParam() = false (0 ms)\n",
    );
    level(
        "userspace",
        12,
        4,
        "[==========] Running 4 tests from 2 test suites.\n\
         [       OK ] Fake.A (300 ms)\n\
         [       OK ] Fake.B (5000 ms)\n\
         [       OK ] Fake.C (2000 ms)\n\
         [       OK ] P/T.X/0 (4000 ms)\n",
    );
    let doc = dir.path().join("conformance.md");
    let mut c = Command::new(script());
    c.arg("--table")
        .env_remove("RUNSC")
        .env("CONFORMANCE_LEVELS", "native userspace")
        .env("CONFORMANCE_DOC", &doc)
        .env("CONFORMANCE_OUT", &out);
    let res: atoll_testkit::Out = c.output().unwrap().into();
    res.ok();
    let table = std::fs::read_to_string(&doc).unwrap();
    assert!(
        table.contains("| slow | 4 | 1/3/0 | 4/0/0 | 1 / 12 | **12.0x** |"),
        "{table}"
    );
    assert!(
        table.contains("Binaries over 3x their native time: slow.\n"),
        "{table}"
    );
    assert!(
        table.contains(
            "- slow: 1 s natively, 12 s at userspace; the 1 cases passing at both take \
             100 ms natively and 300 ms at userspace; 3 cases pass at userspace only, \
             taking 11000 ms, slowest `Fake.B` 5000 ms (failed natively in 0 ms), \
             `P/T.X/0` 4000 ms (failed natively in 0 ms), `Fake.C` 2000 ms (failed \
             natively in 0 ms).\n"
        ),
        "{table}"
    );
}
