//! Permission checks with the guest's credentials (the guest's root is root only inside):
//! `c/perms.c` sets files up as root and then, in a child that became nobody, tries what
//! Linux forbids — search permission on every folder a path crosses, open/create/remove,
//! the sticky bit, chmod/chown, utimensat, access(2) with real and effective ids, execve,
//! protected hard links — and checks that writes by a non-root owner clear set-ID bits.
//! The native run works in a fresh host folder, the sandboxed ones in its /dev/shm tmpfs
//! and in a host folder through the gofer; outputs (one errno name per call) and exit
//! statuses must match byte for byte. Section bindsetid runs in an OCI container's writable
//! bind mount, and the host files' modes afterwards must match the native run's too.

use rvisor_tests::*;

/// `c/perms.c` (built by build.rs): `perms BASE [SECTION...]`.
const PERMS_PROG: &str = env!("RVISOR_TEST_PROG_PERMS");

/// A fresh host folder that nobody may search (as the sandbox's 1777 /dev/shm).
fn fresh_dir(name: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(name);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs section `name` natively in a fresh host folder, then in rvisor twice: under its
/// `/dev/shm` tmpfs, and in another fresh host folder reached through the gofer
/// (`--overlay=none`). Each must agree with the native run byte for byte, and the native
/// run must meet every expectation. Skipped (with a message) unless the tests run as root:
/// the program drops to nobody.
fn section(name: &str) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: perms needs root (it drops to uid 65534 in a child)");
        return;
    }
    let cmd_for = |base: &str| Cmd::new(PERMS_PROG).args([base, name]);
    let dir = fresh_dir(name);
    let native = run_native(&cmd_for(&dir.path().to_string_lossy()));
    native.assert_code(0);
    assert!(
        native.stdout_str().starts_with(&format!("== {name}\n")),
        "{}",
        native.dump()
    );
    let sandboxed = run_rvisor(&[], &cmd_for("/dev/shm"));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (in /dev/shm) and native (in a fresh folder) differ for {name}:\n{report}");
    }
    let host_dir = fresh_dir(name);
    let through_gofer = run_rvisor(
        &["--overlay=none"],
        &cmd_for(&host_dir.path().to_string_lossy()),
    );
    if let Some(report) = compare(&native, &through_gofer, Compare::Bytes) {
        panic!("rvisor (host folder through the gofer) and native differ for {name}:\n{report}");
    }
}

#[test]
fn path_walks_need_search_permission_on_every_folder_crossed() {
    section("walk");
}

#[test]
fn open_create_unlink_rename_chmod_chown_and_hard_links_as_nobody_match_native() {
    section("files");
}

#[test]
fn utimensat_and_access_rules_for_a_non_owner_match_native() {
    section("attrs");
}

#[test]
fn execve_needs_an_execute_bit_the_caller_may_use() {
    section("exec");
}

#[test]
fn writes_and_truncations_by_a_non_root_caller_clear_set_id_bits() {
    section("setid");
}

#[test]
fn access_walks_and_checks_with_the_real_ids_unless_at_eaccess() {
    section("realids");
}

#[test]
fn execve_and_access_x_ok_refuse_files_on_a_noexec_mount() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the noexec section mounts a tmpfs, which needs root");
        return;
    }
    // Natively in a private mount namespace, so the host's mount table is left alone.
    let dir = fresh_dir("noexec");
    let native = run_native(&Cmd::new("/usr/bin/unshare").args([
        "-m",
        "--propagation",
        "private",
        PERMS_PROG,
        &dir.path().to_string_lossy(),
        "noexec",
    ]));
    native.assert_code(0);
    assert!(
        native.stdout_str().starts_with("== noexec\n"),
        "{}",
        native.dump()
    );
    let sandboxed = run_rvisor(&[], &Cmd::new(PERMS_PROG).args(["/dev/shm", "noexec"]));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor and native differ for noexec:\n{report}");
    }
}

/// The mode (with set-ID bits) and owner of every file in `dir`, by name.
fn modes_in(dir: &std::path::Path) -> std::collections::BTreeMap<String, (u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.file_name().to_string_lossy().into_owned(), (m.mode() & 0o7777, m.uid(), m.gid()))
        })
        .collect()
}

#[test]
fn set_id_bits_in_a_writable_bind_mount_are_kept_for_root_and_cleared_for_others() {
    // The common container case: a volume (a writable bind mount of a host folder), which
    // the sentry writes through descriptors the gofer donated while it is host nobody in
    // its own user namespace. Section bindsetid of c/perms.c changes root's and nobody's
    // set-ID files in every way that clears set-ID bits (write, pwrite, writev, ftruncate,
    // truncate, an O_TRUNC open, fallocate, sendfile, copy_file_range), one file each: a
    // guest root keeps the bits, nobody loses them. Natively in a fresh folder and in an
    // OCI container in a bind mount of another: the outputs must match byte for byte, and
    // so must the host files' modes and owners afterwards.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: perms needs root (it drops to uid 65534 in a child)");
        return;
    }
    let native_dir = fresh_dir("bindsetid-native");
    let native = run_native(&Cmd::new(PERMS_PROG).args([&*native_dir.path().to_string_lossy(), "bindsetid"]));
    native.assert_code(0);
    assert!(native.stdout_str().starts_with("== bindsetid\n"), "{}", native.dump());

    let volume = fresh_dir("bindsetid-volume");
    let b = rvisor_tests::oci::Bundle::new("perms-bindsetid", &["/perms", "/data", "bindsetid"]);
    let (src, prog) = (volume.path().to_string_lossy().into_owned(), PERMS_PROG.to_string());
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(serde_json::json!({ "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rw"] }));
        mounts.push(serde_json::json!({ "destination": "/perms", "type": "bind", "source": prog, "options": ["rbind", "ro"] }));
        // Docker's default capabilities: the guest's root has CAP_FSETID (keeps set-ID
        // bits), CAP_CHOWN, CAP_SETUID and CAP_SETGID (becomes nobody).
        let caps = serde_json::json!([
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
            "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"
        ]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = caps.clone();
        }
        c["process"]["capabilities"]["ambient"] = serde_json::json!([]);
    });
    let id = format!("perms-bindsetid-{}", std::process::id());
    let sandboxed = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), &id]);
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (in a writable bind mount) and native differ:\n{report}");
    }
    let native_modes = modes_in(&native_dir.path().join("bindsetid"));
    assert!(native_modes.len() > 50, "{native_modes:?}");
    assert_eq!(
        modes_in(&volume.path().join("bindsetid")),
        native_modes,
        "host modes and owners after the sandboxed run (left) and the native one (right)"
    );
}
