//! Linux features real server software needs from the userspace level
//! (issue 13): shared file mappings, System V and POSIX IPC, inotify,
//! splice and friends, resource limits. Each test runs the same program
//! natively and in the application kernel and compares what it prints.

mod common;

use atoll_testkit::cprog;
use common::*;

/// A test program from tests/progs, statically linked.
fn prog(name: &str) -> std::path::PathBuf {
    let src = std::fs::read_to_string(progs().join(format!("{name}.c"))).unwrap();
    cprog::compile(name, &src, &["-pthread", "-lrt"])
}

/// Runs `/opt/NAME args` in a busybox bundle at both levels, with a host
/// directory bound at /data (one per level) and tmpfs on /tmp and
/// /dev/shm; returns (native, userspace) outputs and the host directories.
fn both_levels(
    name: &str,
    args: &[&str],
) -> (
    atoll_testkit::Out,
    atoll_testkit::Out,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    both_levels_in(name, args, busybox)
}

/// As `both_levels`, in bundles `builder` starts.
fn both_levels_in(
    name: &str,
    args: &[&str],
    builder: impl Fn() -> atoll_testkit::BundleBuilder,
) -> (
    atoll_testkit::Out,
    atoll_testkit::Out,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    let a = atoll();
    let bin = prog(name);
    let mut outs = Vec::new();
    let mut dirs = Vec::new();
    for level in ["native", "userspace"] {
        let data = tempfile::tempdir().unwrap();
        let exe = format!("/opt/{name}");
        let mut argv = vec![exe.as_str()];
        argv.extend_from_slice(args);
        let b = builder()
            .bind(data.path(), "/data", false)
            .tmpfs("/tmp")
            .tmpfs("/dev/shm")
            .args(&argv)
            .build();
        cprog::install(&bin, &b.rootfs, &exe);
        outs.push(run_at(&a, level, &b, &format!("{name}-{}", &level[..1])));
        dirs.push(data);
    }
    let user = outs.pop().unwrap();
    let native = outs.pop().unwrap();
    let ud = dirs.pop().unwrap();
    let nd = dirs.pop().unwrap();
    (native, user, nd, ud)
}

#[test]
fn shared_file_mappings_match_native() {
    // A host file through the gofer, a tmpfs file, a /dev/shm file.
    for dir in ["/data", "/tmp", "/dev/shm"] {
        let (native, user, _nd, ud) = both_levels("shared_mmap", &[dir]);
        native.ok();
        user.ok();
        assert!(native.stdout.ends_with("done\n"), "{native:#?}");
        assert_eq!(user.stdout, native.stdout, "in {dir}");
        if dir == "/data" {
            // What the mappings wrote reached the host file: by msync, by
            // munmap and close, by a child's exit.
            let f = std::fs::read(ud.path().join("shared.dat")).unwrap();
            assert_eq!(&f[500..506], b"synced");
            assert_eq!(&f[600..608], b"unmapped");
            assert_eq!(&f[700..706], b"atexit");
            assert_eq!(f[2 * 4096 + 5], b'g');
            assert_eq!(f.len(), 3 * 4096);
        }
    }
}

#[test]
fn the_map_limit_behaves_as_linux() {
    // mmap, and an mprotect or munmap that would split a mapping, fail
    // with ENOMEM at max_map_count (the kernel's own limit, below the
    // host's: the stub never reaches the host's, where a mapping change
    // the kernel must make could fail), and a write-back of a dirty page
    // of a shared host file mapping at that limit leaves the process
    // alive. A kernel without the limit let the mappings pile up until
    // the stub's host limit killed the process, after ~40 s of mmaps that
    // each walked every mapping.
    let (native, user, _, _) = both_levels("map_limit", &["/data"]);
    native.ok();
    user.ok();
    assert!(native.stdout.ends_with("survived\n"), "{native:#?}");
    assert_eq!(user.stdout, native.stdout);
}

#[test]
fn host_files_stream_as_natively_while_their_size_changes() {
    // Past its first 256 KiB an open rootfs file is read through a window
    // of the host file mapped into the kernel (vfs/hostwindow.rs). Its
    // reads must see every shrink and growth made through other
    // descriptors, an O_TRUNC open, a truncate by path and a punched
    // hole, and reads that cross a window's edge or the file's end.
    // The same on a bind mount shared with the host (revalidated; a
    // local file system, so it streams too).
    for path in ["/stream.dat", "/data/stream.dat"] {
        let (native, user, _, _) = both_levels("stream_window", &[path]);
        native.ok();
        user.ok();
        assert!(native.stdout.ends_with("done\n"), "{path}: {native:#?}");
        assert!(!native.stdout.contains("WRONG"), "{path}: {native:#?}");
        assert_eq!(user.stdout, native.stdout, "{path}");
    }
}

/// Both runs ended well, native's with "done", and their outputs match
/// line for line (the lines that differ in the message).
fn same_lines(dir: &str, native: &atoll_testkit::Out, user: &atoll_testkit::Out) {
    native.ok();
    user.ok();
    assert!(native.stdout.ends_with("done\n"), "{dir}: {native:#?}");
    let n: Vec<&str> = native.stdout.lines().collect();
    let u: Vec<&str> = user.stdout.lines().collect();
    let diff: Vec<String> = (0..n.len().max(u.len()))
        .filter(|i| n.get(*i) != u.get(*i))
        .map(|i| format!("native:    {:?}\nuserspace: {:?}", n.get(i), u.get(i)))
        .collect();
    assert!(diff.is_empty(), "{dir}:\n{}", diff.join("\n"));
}

#[test]
fn permission_checks_right_after_own_changes_match_native() {
    // The kernel keeps the mode, owner and group its own chmod and chown
    // made for the permission checks that follow, and creates with
    // O_EXCL without looking the name up first: on the rootfs (trusted)
    // and on a bind mount shared with the host (revalidated), as an
    // unprivileged user, every answer must be Linux's.
    for dir in ["/", "/data"] {
        // Docker's capabilities: root may change its user ids.
        let (native, user, _, _) =
            both_levels_in("perm_changes", &[dir], || busybox().docker_caps());
        same_lines(dir, &native, &user);
    }
}

#[test]
fn writes_truncations_and_chowns_take_set_id_bits_away_as_natively() {
    // A user who may write someone else's set-user-ID program must not
    // be able to put code of theirs into it and keep the bit: a write, a
    // truncation and a chown take set-user-ID (and set-group-ID with
    // group execute) away unless the caller holds CAP_FSETID, as Linux
    // does. On the rootfs, on a bind mount shared with the host, and on
    // the sandbox's own tmpfs.
    for dir in ["/", "/data", "/dev/shm"] {
        let (native, user, _, _) = both_levels_in("kill_priv", &[dir], || busybox().docker_caps());
        same_lines(dir, &native, &user);
    }
}

#[test]
fn creates_on_a_read_only_mount_fail_as_natively() {
    // On a read-only bind mount an existing name gives EEXIST to an
    // O_EXCL create and EROFS to a plain one, a missing name EROFS, and
    // a path through a file ENOTDIR, as in Linux, whichever of the
    // kernel's create paths (the O_EXCL shortcut past the lookup, or the
    // lookup first) and the host's own checks answer it.
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("there"), b"x").unwrap();
    std::fs::create_dir(ro.path().join("dir")).unwrap();
    let (native, user, _, _) = both_levels_in("excl_readonly", &["/ro"], || {
        busybox().bind(ro.path(), "/ro", true)
    });
    same_lines("/ro", &native, &user);
    for line in [
        "O_CREAT|O_EXCL there: EEXIST",
        "O_CREAT|O_EXCL missing: EROFS",
    ] {
        assert!(native.stdout.contains(line), "{native:#?}");
    }
}

#[test]
fn sysv_ipc_and_posix_message_queues_match_native() {
    let (native, user, _, _) = both_levels("ipc", &[]);
    native.ok();
    user.ok();
    assert!(native.stdout.ends_with("done\n"), "{native:#?}");
    assert_eq!(user.stdout, native.stdout);
}

#[test]
fn ipcs_lists_the_sandbox_objects_as_natively() {
    let a = atoll();
    let src = std::fs::read_to_string(progs().join("ipcs_objects.c")).unwrap();
    let bin = cprog::compile_dynamic("ipcs_objects", &src, &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, dir.path().join("ipcs_objects")).unwrap();
    let b = debian()
        .bind(dir.path(), "/opt/t", true)
        .args(&["/opt/t/ipcs_objects"])
        .build();
    let native = run_at(&a, "native", &b, "ipcs-n");
    let user = run_at(&a, "userspace", &b, "ipcs-u");
    native.ok();
    user.ok();
    assert!(native.stdout.contains("0x00005eed"), "{native:#?}");
    assert_eq!(user.stdout, native.stdout);
}

#[test]
fn inotify_events_match_native() {
    for dir in ["/tmp", "/data"] {
        let (native, user, _, _) = both_levels("inotify", &[dir]);
        native.ok();
        user.ok();
        assert!(
            native.stdout.contains("[wd2 DELETE_SELF] [wd2 IGNORED]"),
            "{native:#?}"
        );
        assert_eq!(user.stdout, native.stdout, "in {dir}");
    }
}

#[test]
fn splice_tee_vmsplice_sendfile_copy_file_range_match_native() {
    for dir in ["/tmp", "/data"] {
        let (native, user, _, _) = both_levels("splice", &[dir]);
        native.ok();
        user.ok();
        assert!(native.stdout.ends_with("done\n"), "{native:#?}");
        assert_eq!(user.stdout, native.stdout, "in {dir}");
    }
}

/// uid and gid of `user` in the Debian rootfs.
fn debian_user(name: &str) -> (u32, u32) {
    let passwd =
        std::fs::read_to_string(atoll_testkit::debian::debian_rootfs().join("etc/passwd")).unwrap();
    let f: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in the Debian rootfs"))
        .split(':')
        .collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

const POSTGRES: &str = r#"
set -e
export PATH=/usr/lib/postgresql/15/bin:$PATH
initdb -D /tmp/pgdata -A trust -U postgres >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }
grep -E 'shared memory implementation' /tmp/initdb.log
pg_ctl -D /tmp/pgdata -o '-k /tmp -c listen_addresses=' -l /tmp/pg.log -w start >/dev/null
psql -h /tmp -U postgres -At -c 'create table t(x int primary key, y text)' \
    -c "insert into t select i, md5(i::text) from generate_series(1,2000) i" \
    -c 'select count(*), sum(x), min(y) from t' -c 'show shared_memory_type'
pg_ctl -D /tmp/pgdata -m fast -w stop >/dev/null
grep -c 'database system is shut down' /tmp/pg.log
"#;

#[test]
fn postgresql_initdb_start_query_stop_match_native() {
    let a = atoll();
    let (uid, gid) = debian_user("postgres");
    let b = debian()
        .tmpfs("/tmp")
        .tmpfs("/dev/shm")
        .user(uid, gid)
        .env("LANG=C")
        .sh(POSTGRES)
        .build();
    let native = run_at(&a, "native", &b, "pg-n");
    let user = run_at(&a, "userspace", &b, "pg-u");
    native.ok();
    user.ok();
    assert!(native.stdout.contains("2000|2001000|"), "{native:#?}");
    assert_eq!(user.stdout, native.stdout);
}

const INOTIFYWAIT: &str = r#"
mkdir /tmp/w
inotifywait -m -e create,modify,attrib,close_write,moved_from,moved_to,delete /tmp/w >/tmp/ev 2>/tmp/err &
while ! grep -q 'Watches established' /tmp/err; do sleep 0.05; done
echo hello > /tmp/w/a
chmod 600 /tmp/w/a
mv /tmp/w/a /tmp/w/b
mkdir /tmp/w/d
rm /tmp/w/b
rmdir /tmp/w/d
sleep 0.3
kill %1
cat /tmp/ev
"#;

#[test]
fn inotifywait_reports_as_natively() {
    let a = atoll();
    let b = debian().tmpfs("/tmp").sh(INOTIFYWAIT).build();
    let native = run_at(&a, "native", &b, "inw-n");
    let user = run_at(&a, "userspace", &b, "inw-u");
    native.ok();
    user.ok();
    assert!(native.stdout.contains("/tmp/w/ MOVED_TO b"), "{native:#?}");
    assert_eq!(user.stdout, native.stdout);
}

#[test]
fn resource_limits_match_native() {
    let a = atoll();
    let bin = prog("rlimits");
    let b = busybox()
        .docker_caps()
        .tmpfs("/tmp")
        .args(&["/opt/rlimits", "/tmp"])
        .build();
    cprog::install(&bin, &b.rootfs, "/opt/rlimits");
    let native = run_at(&a, "native", &b, "rlim-n");
    let user = run_at(&a, "userspace", &b, "rlim-u");
    native.ok();
    user.ok();
    assert!(
        native.stdout.contains("FSIZE: killed by XFSZ"),
        "{native:#?}"
    );
    assert!(
        native.stdout.contains("NPROC: forked 2 then EAGAIN"),
        "{native:#?}"
    );
    assert_eq!(user.stdout, native.stdout);
}

/// A Python that allocates more than the container may hold.
const BIG_ALLOC: &str = r#"
try:
    x = bytearray(400 << 20)
    print("allocated")
except MemoryError:
    print("MemoryError")
small = bytearray(8 << 20)
print("still alive", len(small))
print([l for l in open("/proc/meminfo") if l.startswith("MemTotal")][0].split()[1])
"#;

#[test]
fn memory_limit_gives_enomem_not_an_oom_kill() {
    let a = atoll();
    let b = debian()
        .memory_limit(192 << 20)
        .args(&["/usr/bin/python3", "-c", BIG_ALLOC])
        .build();
    let user = run_at(&a, "userspace", &b, "memlim-u");
    user.ok();
    assert_eq!(
        user.stdout,
        format!("MemoryError\nstill alive {}\n{}\n", 8 << 20, 192 << 10),
        "{user:#?}"
    );
    // RLIMIT_AS (ulimit -v) gives MemoryError at both levels.
    let b = debian()
        .sh("ulimit -v 200000; python3 -c 'x = bytearray(500 << 20)' 2>&1 | tail -1")
        .build();
    let native = run_at(&a, "native", &b, "ulimv-n");
    let user = run_at(&a, "userspace", &b, "ulimv-u");
    assert_eq!(native.stdout, "MemoryError\n", "{native:#?}");
    assert_eq!(user.stdout, native.stdout);
}

/// SQLite in WAL mode (its -shm index is a shared mapping of a host file)
/// with a reader and a writer in two processes, and Python's
/// multiprocessing.shared_memory (/dev/shm) between two processes.
const WAL_AND_SHM: &str = r#"
import os, sqlite3, multiprocessing as mp
from multiprocessing import shared_memory
db = "/data/t.db"
c = sqlite3.connect(db)
print(c.execute("pragma journal_mode=wal").fetchone())
c.execute("create table t(x)")
c.execute("insert into t values (1), (2), (3)")
c.commit()
reader = sqlite3.connect(db)
def writer():
    w = sqlite3.connect(db)
    w.execute("insert into t select x + 10 from t")
    w.commit()
    w.close()
p = mp.Process(target=writer); p.start(); p.join()
print("reader sees", reader.execute("select count(*), sum(x) from t").fetchone())
print("wal files", sorted(f for f in os.listdir("/data") if f.startswith("t.db")))
reader.close(); c.close()
def child(name):
    s = shared_memory.SharedMemory(name=name)
    s.buf[:5] = b"child"
    s.close()
s = shared_memory.SharedMemory(create=True, size=8192, name="atoll_shm")
s.buf[5:10] = b"paren"
p = mp.Process(target=child, args=("atoll_shm",)); p.start(); p.join()
print(bytes(s.buf[:10]), p.exitcode, os.listdir("/dev/shm"))
s.close(); s.unlink()
"#;

#[test]
fn sqlite_wal_and_python_shared_memory_match_native() {
    let a = atoll();
    let mut outs = Vec::new();
    for level in ["native", "userspace"] {
        let data = tempfile::tempdir().unwrap();
        let b = debian()
            .bind(data.path(), "/data", false)
            .tmpfs("/dev/shm")
            .args(&["/usr/bin/python3", "-c", WAL_AND_SHM])
            .build();
        let out = run_at(&a, level, &b, &format!("wal-{}", &level[..1]));
        out.ok();
        // What SQLite wrote is in the host file.
        let db = std::fs::read(data.path().join("t.db")).unwrap();
        assert!(db.starts_with(b"SQLite format 3"), "{level}");
        outs.push(out.stdout.clone());
    }
    assert!(outs[0].contains("reader sees (6, 42)"), "{}", outs[0]);
    assert_eq!(outs[1], outs[0]);
}

/// LMDB (Debian's python3-lmdb and lmdb-utils): its map is a shared
/// mapping of its data file, read-only by default (writes go through
/// pwrite) or writable with writemap. Written and read back, a forked
/// reader seeing a later commit of its parent, reopened read-only after
/// a sync; three processes committing in turn; then mdb_load, mdb_stat
/// and mdb_dump.
const LMDB: &str = r#"
import os, sys, lmdb
for writemap in (False, True):
    path = "/data/db-%d" % writemap
    env = lmdb.open(path, map_size=64 << 20, writemap=writemap)
    with env.begin(write=True) as t:
        for i in range(2000):
            t.put(b"key%05d" % i, b"value%d" % i * 10)
    with env.begin() as t:
        ok = all(t.get(b"key%05d" % i) == b"value%d" % i * 10 for i in range(2000))
    print("writemap=%d: 2000 written and read back: %s" % (writemap, ok), flush=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)
        with env.begin() as t:
            print("writemap=%d: the child sees a later commit: %s" % (writemap, t.get(b"late")), flush=True)
        os._exit(0)
    with env.begin(write=True) as t:
        t.put(b"late", b"yes")
    os.write(w, b"x")
    os.waitpid(pid, 0)
    print("writemap=%d: entries %d" % (writemap, env.stat()["entries"]), flush=True)
    env.sync(True)
    env.close()
    env = lmdb.open(path, readonly=True)
    with env.begin() as t:
        print("writemap=%d: reopened: %s" % (writemap, t.get(b"key01999")[:9]), flush=True)
    env.close()
# Three writer processes: LMDB's write lock is a process-shared robust
# mutex in its lock file's shared map.
env = lmdb.open("/data/conc", map_size=64 << 20)
kids = []
for k in range(3):
    pid = os.fork()
    if pid == 0:
        e = lmdb.open("/data/conc", map_size=64 << 20)
        for i in range(200):
            with e.begin(write=True) as t:
                t.put(b"n", b"%d" % (int(t.get(b"n", b"0")) + 1))
        os._exit(0)
    kids.append(pid)
codes = [os.waitpid(p, 0)[1] for p in kids]
with env.begin() as t:
    print("3 writer processes, 200 commits each: n=%s %s" % (t.get(b"n"), codes), flush=True)
"#;

const LMDB_TOOLS: &str = "set -e; mkdir /data/tools; \
    printf 'VERSION=3\\nformat=print\\ntype=btree\\nHEADER=END\\n a\\n 1\\n b\\n 2\\nDATA=END\\n' \
    | mdb_load -f /dev/stdin /data/tools; mdb_stat /data/tools | grep Entries; \
    mdb_dump -p /data/tools | sed -n '/HEADER=END/,$p'";

#[test]
fn lmdb_matches_native() {
    let a = atoll();
    let mut outs = Vec::new();
    for level in ["native", "userspace"] {
        let data = tempfile::tempdir().unwrap();
        // The Python script is the shell's $0: no quoting.
        let script = format!("python3 -c \"$0\" && {LMDB_TOOLS}");
        let b = debian()
            .bind(data.path(), "/data", false)
            .args(&["/bin/sh", "-c", &script, LMDB])
            .build();
        let out = run_at(&a, level, &b, &format!("lmdb-{}", &level[..1]));
        out.ok();
        // What LMDB wrote through its map is in the host file.
        let mdb = std::fs::read(data.path().join("db-1/data.mdb")).unwrap();
        assert!(
            mdb.windows(9).any(|w| w == b"value1999"),
            "{level}: the writemap commit is not in the host file"
        );
        outs.push(out.stdout.clone());
    }
    for want in [
        "writemap=1: the child sees a later commit: b'yes'",
        "writemap=1: entries 2001",
        "3 writer processes, 200 commits each: n=b'600' [0, 0, 0]",
        "  Entries: 2",
    ] {
        assert!(outs[0].contains(want), "{want:?} not in {}", outs[0]);
    }
    assert_eq!(outs[1], outs[0]);
}

#[test]
fn shm_rmid_forced_removes_orphaned_segments() {
    // /proc/sys is read-only in a native container: the sandbox's own
    // namespace only.
    let a = atoll();
    let bin = prog("shm_rmid_forced");
    let b = busybox().args(&["/opt/shm_rmid_forced"]).build();
    cprog::install(&bin, &b.rootfs, "/opt/shm_rmid_forced");
    let user = run_at(&a, "userspace", &b, "rmidf-u");
    user.ok();
    assert_eq!(
        user.stdout, "shm_rmid_forced=0: kept\nshm_rmid_forced=1: removed\n",
        "{user:#?}"
    );
}
