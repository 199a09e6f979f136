//! Audit records: JSON lines, appended from many writers.

use crate::decision::Violation;
use crate::{AuditDecision, AuditEvent, AuditLog, AuditRecord, Decision, Level, read_records};

#[test]
fn records_round_trip_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/log/atoll/audit.jsonl");
    let log = AuditLog::open(&path).unwrap();

    let upgraded = Decision::Allow {
        level: Level::Userspace,
        upgraded_from: Some(Level::Native),
    };
    let refused = Decision::Refuse(Violation {
        tenant: "acme".into(),
        rule: "run_as_non_root".into(),
        field: "process.user.uid".into(),
        value: "0".into(),
    });
    let records = [
        AuditRecord::of_decision(AuditEvent::Create, "acme", "c1", &upgraded),
        AuditRecord::of_decision(AuditEvent::Create, "acme", "c2", &refused),
        AuditRecord::new(AuditEvent::Start, "beta", "c3", AuditDecision::Allow),
        AuditRecord::syscall_refused("acme", "c1", Level::Userspace, "ptrace", 3),
        AuditRecord::syscall_unimplemented("acme", "c1", Level::Userspace, "io_pgetevents", 1),
        AuditRecord {
            error: Some("container c4 does not exist".into()),
            ..AuditRecord::new(AuditEvent::Kill, "beta", "c4", AuditDecision::Allow)
        },
    ];
    for r in &records {
        log.append(r).unwrap();
    }

    let all = read_records(&path, None).unwrap();
    assert_eq!(all, records);
    let acme = read_records(&path, Some("acme")).unwrap();
    assert_eq!(acme.len(), 4);
    assert!(read_records(&path, Some("nobody")).unwrap().is_empty());

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["event"], "create");
    assert_eq!(lines[0]["decision"], "upgrade");
    assert_eq!(lines[0]["level"], "userspace");
    assert_eq!(lines[0]["detail"], "upgraded from native");
    assert_eq!(lines[1]["event"], "refuse");
    assert_eq!(lines[1]["decision"], "refuse");
    assert_eq!(lines[1]["rule"], "run_as_non_root");
    assert_eq!(
        lines[1]["detail"],
        "tenant \"acme\": rule run_as_non_root forbids process.user.uid=0"
    );
    assert!(lines[2].get("level").is_none() && lines[2].get("rule").is_none());
    assert_eq!(lines[3]["event"], "syscall_refused");
    assert_eq!(lines[3]["syscall"], "ptrace");
    assert_eq!(lines[3]["count"], 3);
    assert_eq!(lines[1]["attempted"], "create");
    assert!(lines[0].get("attempted").is_none() && lines[0].get("error").is_none());
    assert_eq!(lines[4]["event"], "syscall_unimplemented");
    assert_eq!(lines[4]["syscall"], "io_pgetevents");
    assert_eq!(lines[5]["error"], "container c4 does not exist");
    let time = lines[0]["time"].as_str().unwrap();
    assert!(time.ends_with('Z'), "{time}");
    chrono::DateTime::parse_from_rfc3339(time).unwrap();
}

#[test]
fn concurrent_writers_do_not_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::thread::scope(|s| {
        for t in 0..8 {
            let path = &path;
            s.spawn(move || {
                // A log per writer, as separate processes would have.
                let log = AuditLog::open(path).unwrap();
                let mut r = AuditRecord::new(
                    AuditEvent::Exec,
                    &format!("tenant{t}"),
                    &"x".repeat(2000),
                    AuditDecision::Allow,
                );
                for i in 0..50 {
                    r.detail = Some(format!("{i}"));
                    log.append(&r).unwrap();
                }
            });
        }
    });
    let all = read_records(&path, None).unwrap();
    assert_eq!(all.len(), 400);
    assert_eq!(read_records(&path, Some("tenant3")).unwrap().len(), 50);
}

#[test]
fn torn_last_line_is_skipped_but_bad_lines_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    log.append(&AuditRecord::new(
        AuditEvent::Delete,
        "acme",
        "c1",
        AuditDecision::Allow,
    ))
    .unwrap();
    let good = std::fs::read_to_string(&path).unwrap();

    std::fs::write(&path, format!("{good}{{\"time\":\"20")).unwrap();
    assert_eq!(read_records(&path, None).unwrap().len(), 1);

    std::fs::write(&path, format!("{good}not json\n{good}")).unwrap();
    let e = read_records(&path, None).unwrap_err().to_string();
    assert!(e.contains("line 2"), "{e}");

    // Unknown fields from a newer atoll are ignored.
    let newer = good.trim_end().trim_end_matches('}').to_string() + ",\"future\":1}\n";
    std::fs::write(&path, newer).unwrap();
    assert_eq!(read_records(&path, None).unwrap().len(), 1);
}
