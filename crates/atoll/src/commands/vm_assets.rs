//! `atoll install --vm-assets DIR` and `atoll uninstall --vm-assets`: the
//! vm level's guest kernel and initramfs, as scripts/vm-assets.sh builds
//! them, copied to where atoll looks (`vm_level::assets_dir`). Both are
//! checked before anything is written, so a truncated download or a
//! bzImage never lands there; each file is written beside its final name
//! and renamed, so a running `create` sees the old file or the new one.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use atoll_runtime::vm_level::{INITRD_FILE, KERNEL_FILE};

/// Written by vm-assets.sh: which Debian kernel the assets come from.
const VERSION_FILE: &str = "VERSION";

/// Why `initrd` is not an uncompressed newc cpio archive, if it is not.
fn check_initramfs(initrd: &mut File) -> std::result::Result<(), String> {
    let mut magic = [0u8; 6];
    initrd
        .read_exact(&mut magic)
        .map_err(|_| "empty or too short to be a cpio archive".to_string())?;
    if &magic != b"070701" && &magic != b"070702" {
        return Err("not an uncompressed newc cpio archive (vm-assets.sh makes one)".into());
    }
    Ok(())
}

pub fn install(src: Option<&Path>, dest: &Path, dry_run: bool) -> Result<i32> {
    let src = src.ok_or_else(|| {
        anyhow!("install --vm-assets needs the directory scripts/vm-assets.sh built")
    })?;
    let open = |name: &str| {
        let p = src.join(name);
        File::open(&p).map_err(|e| anyhow!("vm assets: {}: {e}", p.display()))
    };
    let mut kernel = open(KERNEL_FILE)?;
    crate::vm::check_kernel(&mut kernel)
        .map_err(|e| anyhow!("vm assets: {}: {e}", src.join(KERNEL_FILE).display()))?;
    let mut initrd = open(INITRD_FILE)?;
    check_initramfs(&mut initrd)
        .map_err(|e| anyhow!("vm assets: {}: {e}", src.join(INITRD_FILE).display()))?;
    let mut names = vec![KERNEL_FILE, INITRD_FILE];
    if src.join(VERSION_FILE).is_file() {
        names.push(VERSION_FILE);
    }
    if dry_run {
        for n in &names {
            println!(
                "would copy {} to {}",
                src.join(n).display(),
                dest.join(n).display()
            );
        }
        return Ok(0);
    }
    std::fs::create_dir_all(dest).with_context(|| format!("vm assets: {}", dest.display()))?;
    for n in &names {
        let tmp = dest.join(format!(".{n}.installing"));
        let done =
            copy_sparse(&src.join(n), &tmp).and_then(|_| std::fs::rename(&tmp, dest.join(n)));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            bail!("vm assets: installing {}: {e}", dest.join(n).display());
        }
    }
    println!(
        "vm assets: {} installed in {}",
        names.join(", "),
        dest.display()
    );
    Ok(0)
}

/// Copies `from` to `to` leaving holes where `from` has 4 KiB blocks of
/// zeros: the VMM's loader skips a kernel image's holes rather than
/// copying them into guest RAM (a third of Debian's vmlinux is zeros).
fn copy_sparse(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    const BLOCK: usize = 4096;
    let mut src = File::open(from)?;
    let dst = File::create(to)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match src.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        for (i, block) in buf[..n].chunks(BLOCK).enumerate() {
            if block.iter().any(|b| *b != 0) {
                dst.write_all_at(block, at + (i * BLOCK) as u64)?;
            }
        }
        at += n as u64;
    }
    dst.set_len(at)?;
    dst.sync_all()
}

pub fn uninstall(dest: &Path, dry_run: bool) -> Result<i32> {
    let present: Vec<&str> = [KERNEL_FILE, INITRD_FILE, VERSION_FILE]
        .into_iter()
        .filter(|n| dest.join(n).exists())
        .collect();
    if present.is_empty() {
        println!("vm assets: none in {}; nothing to remove", dest.display());
        return Ok(0);
    }
    for n in &present {
        if dry_run {
            println!("would remove {}", dest.join(n).display());
        } else {
            std::fs::remove_file(dest.join(n))
                .with_context(|| format!("vm assets: {}", dest.join(n).display()))?;
        }
    }
    if !dry_run {
        // Only if nothing else is there.
        let _ = std::fs::remove_dir(dest);
        println!(
            "vm assets: {} removed from {}",
            present.join(", "),
            dest.display()
        );
    }
    Ok(0)
}
