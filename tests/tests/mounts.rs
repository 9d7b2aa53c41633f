//! Mount options enforced as on Linux: read-only mounts (remount ro, read-only bind mounts,
//! tmpfs mounted ro) refuse changes with EROFS, nodev mounts refuse device nodes, tmpfs
//! `size=` limits writes, O_TMPFILE files are unnamed until linked. `c/mounts.c` runs
//! natively in a private mount namespace (`unshare -m`) and in rvisor; outputs must match.

use rvisor_tests::*;

/// `c/mounts.c`: `mounts BASE [SECTION...]`.
const PROG: &str = env!("RVISOR_TEST_PROG_MOUNTS");

/// Whether this test process is root (mount(2) natively needs it).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn section(name: &str) {
    if !is_root() {
        eprintln!("skipped: the native run mounts filesystems and needs root");
        return;
    }
    let dir = TempDir::new(name);
    let base = dir.path().to_string_lossy().into_owned();
    let native = run_native(&Cmd::new("unshare").args([
        "-m",
        "--propagation",
        "private",
        PROG,
        &base,
        name,
    ]));
    native.assert_code(0);
    let sandboxed = run_rvisor(&[], &Cmd::new(PROG).args(["/dev/shm", name]));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor and native differ for section {name}:\n{report}");
    }
    assert!(
        native.stdout_str().starts_with(&format!("== {name}\n")),
        "{}",
        native.dump()
    );
}

#[test]
fn remount_ro_ro_bind_mounts_and_ro_tmpfs_refuse_changes_with_erofs() {
    section("ro");
}

#[test]
fn nodev_bind_mount_refuses_to_open_device_nodes() {
    section("nodev");
}

#[test]
fn tmpfs_size_and_nr_inodes_limits_give_enospc_and_show_in_statfs() {
    section("size");
}
