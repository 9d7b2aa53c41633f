//! The overlay root (issue 5): by default the sandbox's writes to its root land in an
//! in-memory upper layer and the host tree stays exactly as it was, while every process in
//! the sandbox sees the changes; `--overlay=none` (or `do --writable`) writes through the
//! gofer to the root directory.

use std::path::{Path, PathBuf};

use rvisor_tests::*;

fn sh(script: &str) -> Cmd {
    Cmd::new(BUSYBOX)
        .args(["sh", "-c", script])
        .env("PATH", SYSTEM_PATH)
}

/// A description of everything under `dir` that a change would alter: each entry's path,
/// type, permissions, size, symlink target and file contents (hashed).
fn tree_state(dir: &Path) -> String {
    fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(md) = std::fs::symlink_metadata(p) else {
            out.push(format!("{}: missing", p.display()));
            return;
        };
        let rel = p.strip_prefix(base).unwrap_or(p).display().to_string();
        let mode = md.permissions().mode() & 0o7777;
        if md.file_type().is_symlink() {
            let target = std::fs::read_link(p)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            out.push(format!("{rel} link {target}"));
        } else if md.is_dir() {
            out.push(format!("{rel} dir {mode:o}"));
            let mut names: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|r| r.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            names.sort();
            for n in names {
                walk(base, &n, out);
            }
        } else {
            let data = std::fs::read(p).unwrap_or_default();
            out.push(format!(
                "{rel} file {mode:o} {} {:016x}",
                md.len(),
                fnv1a(&data)
            ));
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.join("\n")
}

/// FNV-1a: enough to notice any change of a file's bytes.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The acceptance script: a change and a removal in the root, seen by this shell and by a
/// second process of the sandbox.
const ACCEPTANCE: &str = r#"echo x > /etc/touched && busybox rm /usr/bin/env && busybox cat /etc/touched
test -e /usr/bin/env || echo env gone
busybox sh -c 'busybox cat /etc/touched; busybox ls /usr/bin/env 2>/dev/null || echo env gone in a child'
busybox ls /usr/bin | busybox grep -cx env || true"#;
const ACCEPTANCE_OUT: &str = "x\nenv gone\nx\nenv gone in a child\n0\n";

#[test]
fn default_overlay_keeps_the_host_root_unchanged_while_the_sandbox_sees_its_changes() {
    require_busybox();
    let env = Path::new("/usr/bin/env");
    let touched = Path::new("/etc/touched");
    assert!(
        !touched.exists(),
        "/etc/touched exists on the host before the test; remove it"
    );
    let before = std::fs::read(env).expect("the host has /usr/bin/env");
    let o = run_rvisor(&[], &sh(ACCEPTANCE));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), ACCEPTANCE_OUT, "{}", o.dump());
    assert!(
        !touched.exists(),
        "the sandbox's /etc/touched reached the host"
    );
    assert_eq!(
        std::fs::read(env).expect("the host's /usr/bin/env is still there"),
        before
    );
    // A new sandbox starts from the host tree again.
    let o = run_rvisor(
        &[],
        &sh("test -e /usr/bin/env && ! test -e /etc/touched && echo fresh"),
    );
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "fresh\n", "{}", o.dump());
}

/// A small root directory: busybox, /etc and /usr/bin/env.
fn small_root(name: &str) -> TempDir {
    require_busybox();
    let dir = TempDir::new(name);
    for d in ["bin", "etc", "usr/bin"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, dir.path().join("bin/busybox")).unwrap();
    dir.write("etc/hostname", b"small\n", 0o644);
    dir.write("usr/bin/env", b"#!/bin/busybox env\n", 0o755);
    dir
}

#[test]
fn overlay_none_writes_through_to_the_root_directory() {
    for flags in [
        (&["--overlay=none"][..], &[][..]),
        (&[][..], &["--writable"][..]),
        (&["--overlay2=none"][..], &[][..]),
    ] {
        let root = small_root("overlay-none");
        let rootfs = root.path().to_string_lossy().to_string();
        let mut do_flags = vec!["--rootfs", &rootfs];
        do_flags.extend_from_slice(flags.1);
        let o = run_rvisor_do(flags.0, &do_flags, &sh(ACCEPTANCE).env("PATH", "/bin"));
        // The root has no busybox applet links: the script calls `busybox` through PATH=/bin.
        o.assert_code(0);
        assert_eq!(
            o.stdout_str(),
            ACCEPTANCE_OUT,
            "flags {flags:?}: {}",
            o.dump()
        );
        assert_eq!(
            std::fs::read(root.path().join("etc/touched"))
                .ok()
                .as_deref(),
            Some(&b"x\n"[..]),
            "flags {flags:?}"
        );
        assert!(
            !root.path().join("usr/bin/env").exists(),
            "flags {flags:?}: /usr/bin/env was not removed"
        );
    }
}

#[test]
fn default_overlay_over_a_given_root_directory_leaves_it_unchanged() {
    for global in [
        &[][..],
        &["--overlay=memory"][..],
        &["--overlay2=root:memory"][..],
        &["--overlay"][..],
    ] {
        let root = small_root("overlay-rootfs");
        let before = tree_state(root.path());
        let rootfs = root.path().to_string_lossy().to_string();
        let o = run_rvisor_do(
            global,
            &["--rootfs", &rootfs],
            &sh(ACCEPTANCE).env("PATH", "/bin"),
        );
        o.assert_code(0);
        assert_eq!(
            o.stdout_str(),
            ACCEPTANCE_OUT,
            "flags {global:?}: {}",
            o.dump()
        );
        assert_eq!(
            tree_state(root.path()),
            before,
            "flags {global:?}: the root directory changed"
        );
    }
}

#[test]
fn a_bad_overlay_value_is_refused_with_one_line() {
    let o = run_rvisor(&["--overlay=disk"], &Cmd::new("/bin/true"));
    assert_ne!(o.code(), Some(0), "{}", o.dump());
    assert!(
        o.stderr_str().starts_with("rvisor: ") && o.stderr_str().contains("--overlay=disk"),
        "{}",
        o.dump()
    );
}

/// A tree with nested directories, modes, a symlink and a hard link.
fn make_tree(base: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let src = base.join("src");
    for d in ["d1/deep/deeper", "d2", "empty"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for (i, f) in [
        "f1",
        "f2",
        "f3",
        "d1/a",
        "d1/deep/b",
        "d1/deep/deeper/c",
        "d2/e",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(src.join(f), format!("{f} {}\n", "x".repeat(i * 1000))).unwrap();
    }
    std::fs::set_permissions(src.join("f3"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::set_permissions(src.join("d2"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("../f1", src.join("d1/link")).unwrap();
    std::fs::hard_link(src.join("f2"), src.join("d2/f2-hard")).unwrap();
}

/// `cp -a`, `mv` of directories and files, `tar` out and back in, `rm -rf`, chmod, appends,
/// links and removals in the tree under "$1", then a listing of the result.
const WORKLOAD: &str = r#"set -e
cd "$1"
cp -a src copy
mv src/d1 src/d1-moved
mv copy/d1/deep moved-deep
mv src/f3 src/d2/f3-moved
tar czf t.tgz src
mkdir x
cd x
tar xzf ../t.tgz
cd ..
mv x/src x/src-renamed
rm -rf copy
rm -rf src/d1-moved/deep
chmod 600 x/src-renamed/f1
echo more >> src/f1
ln src/f1 src/f1-hard
rm src/d2/f2-hard
rmdir src/empty
mkdir src/empty
echo new > src/empty/new
find . | sort
find . -type f ! -name t.tgz | sort | while read f; do echo "$f $(stat -c '%a %s' "$f") $(md5sum < "$f")"; done
stat -c '%h' src/f1 src/f1-hard
find . -type l | sort | while read f; do echo "$f -> $(readlink "$f")"; done
find . -type d | sort | while read f; do echo "$f $(stat -c '%a' "$f")"; done
"#;

#[test]
fn file_tree_workload_in_a_lower_directory_matches_native_and_leaves_the_host_unchanged() {
    require_busybox();
    // Native: on its own copy of the tree.
    let native_dir = TempDir::new("overlay-native");
    make_tree(native_dir.path());
    let native = run_native(&sh(WORKLOAD).args(["sh", &native_dir.path().to_string_lossy()]));
    native.assert_code(0);
    // Sandboxed: on a host folder that the overlay's lower layer holds.
    let lower_dir = TempDir::new("overlay-lower");
    make_tree(lower_dir.path());
    let before = tree_state(lower_dir.path());
    let sandboxed = run_rvisor(
        &[],
        &sh(WORKLOAD).args(["sh", &lower_dir.path().to_string_lossy()]),
    );
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (over the overlay) and native differ:\n{report}");
    }
    assert_eq!(
        tree_state(lower_dir.path()),
        before,
        "the sandbox changed the host's tree"
    );
}

#[test]
fn a_host_directory_of_the_root_can_be_copied_moved_and_removed() {
    require_busybox();
    // A small documentation folder of the host's /usr/share/doc: a real gofer directory.
    let doc = std::fs::read_dir("/usr/share/doc")
        .expect("the host has /usr/share/doc")
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.is_symlink() && p.is_dir())
        .min_by_key(|p| {
            (
                std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0) < 2,
                p.clone(),
            )
        })
        .expect("a folder in /usr/share/doc");
    let before = tree_state(&doc);
    let d = doc.to_string_lossy().to_string();
    let script = format!(
        r#"set -e
d={d}
n=$(ls -A "$d" | wc -l)
cp -a "$d" "$d.copy"
mv "$d" "$d.moved"
test ! -e "$d"
test "$(ls -A "$d.moved" | wc -l)" = "$n"
diff -r "$d.moved" "$d.copy"
mv "$d.moved" "$d"
rm -rf "$d.copy" "$d"
test ! -e "$d" && test ! -e "$d.copy" && test ! -e "$d.moved"
ls /usr/share/doc | grep -cx "$(basename "$d")" || true
echo done"#
    );
    let o = run_rvisor(&[], &sh(&script));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "0\ndone\n", "{}", o.dump());
    assert_eq!(
        tree_state(&doc),
        before,
        "the sandbox changed {d} on the host"
    );
    assert!(
        !Path::new(&format!("{d}.copy")).exists() && !Path::new(&format!("{d}.moved")).exists()
    );
}

#[test]
fn file_semantics_program_in_a_lower_directory_matches_native() {
    // c/tmpfs.c: create, rename(2) flags, links, unlinked open files, permissions, the
    // sticky bit, truncate, fallocate, shared mappings; here over the overlay root, in a
    // folder of the host's (lower) tree.
    let native_dir = TempDir::new("overlay-prog-native");
    let native = run_native(&Cmd::new(env!("RVISOR_TEST_PROG_TMPFS")).arg(native_dir.path()));
    native.assert_code(0);
    let lower_dir = TempDir::new("overlay-prog-lower");
    let before = tree_state(lower_dir.path());
    let sandboxed = run_rvisor(
        &[],
        &Cmd::new(env!("RVISOR_TEST_PROG_TMPFS")).arg(lower_dir.path()),
    );
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (over the overlay) and native differ:\n{report}");
    }
    assert!(
        native.stdout_str().lines().count() > 100,
        "{}",
        native.dump()
    );
    assert_eq!(
        tree_state(lower_dir.path()),
        before,
        "the sandbox changed the host's tree"
    );
}
