//! Writes through the gofer: with `rvisor do --writable --rootfs DIR` the sandbox's
//! changes to its root land in the host directory. The same busybox commands run natively
//! in one fresh folder and in the sandbox over another, and the two resulting trees (type,
//! permission bits, owner, size, link count, symlink targets, chosen timestamps) must be
//! equal. Without `--writable` the host folder must not change at all.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rvisor_tests::*;

/// `c/gofer_writes.c`: `gofer_writes DIR` (xattrs, fifos, sockets, mknod).
const PROG: &str = env!("RVISOR_TEST_PROG_GOFER_WRITES");

/// The commands: `$1` is the folder to work in, `$2` the busybox binary.
const SCRIPT: &str = r#"
set -e
B=$2
cd "$1"
$B mkdir -p a/b/c d/e
echo hello > a/f
$B ln -s f a/sl
$B ln -s /nonexistent/abs a/abs
$B ln a/f a/hard
$B mv a/hard a/b/moved
$B mv a/b a/b2
$B mv d/e a/e2
$B rmdir d
$B touch -d @1000000000 a/f
$B chmod 640 a/f
$B chmod 700 a/b2
$B chmod 1777 a/e2
$B truncate -s 100 a/b2/moved
$B touch -d @1234567890 a/b2/moved
$B mkfifo -m 600 a/p
$B rm -r a/b2/c
echo data > a/e2/x
$B cp a/e2/x a/e2/y
$B rm a/e2/x
$B touch a/new
$B mv a/new a/e2/
$B ln -sf abs a/sl
$B mkdir z
echo one > z/1
echo two > z/2
$B mv -f z/1 z/2
$B chown 123:456 z/2
$B mv z a/e2/z
$B cat a/f
$B ls a/e2
"#;

/// One node of a tree as the comparison sees it.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    owner: (u32, u32),
    /// Size and link count of non-directories.
    size: Option<u64>,
    nlink: Option<u64>,
    target: Option<String>,
}

/// Every node under `root` by relative path; `mtime_of` names the files whose
/// modification time is compared too (set explicitly by the script).
fn snapshot(root: &Path, mtime_of: &[&str]) -> BTreeMap<String, (Node, Option<i64>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                stack.push(p.clone());
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "file"
            };
            let node = Node {
                kind,
                mode: md.mode() & 0o7777,
                owner: (md.uid(), md.gid()),
                size: (!ft.is_dir()).then_some(md.size()),
                nlink: (!ft.is_dir()).then_some(md.nlink()),
                target: ft.is_symlink().then(|| fs::read_link(&p).unwrap().to_string_lossy().into_owned()),
            };
            let mtime = mtime_of.contains(&rel.as_str()).then_some(md.mtime());
            out.insert(rel, (node, mtime));
        }
    }
    out
}

/// A folder to serve as the sandbox's root: a copy of busybox and a work folder.
fn sandbox_root() -> TempDir {
    let root = TempDir::new("gofer-writes-root");
    fs::copy(BUSYBOX, root.path().join("busybox")).unwrap();
    fs::create_dir(root.path().join("w")).unwrap();
    root
}

fn writable(root: &TempDir) -> Vec<String> {
    vec!["--writable".into(), "--rootfs".into(), root.path().to_string_lossy().into_owned()]
}

fn run_in(root: &TempDir, do_flags: &[String], cmd: &Cmd) -> Outcome {
    let flags: Vec<&str> = do_flags.iter().map(String::as_str).collect();
    run_rvisor_do(&[], &flags, cmd)
}

#[test]
fn busybox_file_commands_change_the_host_tree_as_natively() {
    require_busybox();
    let native_dir = TempDir::new("gofer-writes-native");
    let native = run_native(&Cmd::new(BUSYBOX).args(["sh", "-c", SCRIPT, "sh"]).arg(native_dir.path()).arg(BUSYBOX));
    native.assert_code(0);
    let root = sandboxed_root_and_run(|root| {
        let cmd = Cmd::new("/busybox").args(["sh", "-c", SCRIPT, "sh", "/w", "/busybox"]);
        let out = run_in(root, &writable(root), &cmd);
        if let Some(report) = compare(&native, &out, Compare::Bytes) {
            panic!("the script's output differs:\n{report}");
        }
    });
    let times = ["a/f", "a/b2/moved"];
    let want = snapshot(native_dir.path(), &times);
    let got = snapshot(&root.path().join("w"), &times);
    assert!(want.contains_key("a/e2/z/2") && want.len() > 10, "{want:#?}");
    assert_eq!(got, want, "the sandbox's tree differs from the native one");
}

/// Makes a sandbox root, runs `f` with it, and returns it for inspection.
fn sandboxed_root_and_run(f: impl FnOnce(&TempDir)) -> TempDir {
    let root = sandbox_root();
    f(&root);
    root
}

#[test]
fn xattrs_fifos_sockets_and_mknod_on_the_gofer_match_native() {
    let native_dir = TempDir::new("gofer-writes-xattr-native");
    let native = run_native(&Cmd::new(PROG).arg(native_dir.path()));
    native.assert_code(0);
    let root = sandbox_root();
    fs::copy(PROG, root.path().join("gofer_writes")).unwrap();
    let out = run_in(&root, &writable(&root), &Cmd::new("/gofer_writes").arg("/w"));
    if let Some(report) = compare(&native, &out, Compare::Bytes) {
        panic!("rvisor (gofer root) and native differ:\n{report}");
    }
    // The attribute reached the host file.
    let host = xattr_of(&root.path().join("w/f"), "user.color");
    assert_eq!(host.as_deref(), Some(&b"green"[..]));
}

#[test]
fn xattrs_fifos_and_sockets_on_tmpfs_match_native() {
    let native_dir = TempDir::new("gofer-writes-tmpfs-native");
    let native = run_native(&Cmd::new(PROG).arg(native_dir.path()));
    native.assert_code(0);
    let sandboxed = run_rvisor(&[], &Cmd::new(PROG).arg("/dev/shm"));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (tmpfs /dev/shm) and native differ:\n{report}");
    }
}

#[test]
fn without_writable_the_host_tree_is_never_changed() {
    require_busybox();
    let root = sandbox_root();
    fs::write(root.path().join("w/keep"), b"original").unwrap();
    let before = snapshot(root.path(), &["w/keep"]);
    let script = "echo changed > /w/keep; /busybox mkdir /w/new; /busybox rm -f /busybox; /busybox touch /w/t";
    let flags = ["--rootfs".to_string(), root.path().to_string_lossy().into_owned()];
    let out = run_in(&root, &flags, &Cmd::new("/busybox").args(["sh", "-c", script]));
    assert!(!looks_like_panic(&out.stderr), "{}", out.dump());
    assert_eq!(snapshot(root.path(), &["w/keep"]), before, "{}", out.dump());
    assert_eq!(fs::read(root.path().join("w/keep")).unwrap(), b"original");
}

/// The value of the extended attribute `name` of `path`, read on the host.
fn xattr_of(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated; `buf` is a live buffer of its length.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

#[test]
fn read_only_root_refuses_every_write_with_erofs() {
    require_busybox();
    let root = sandbox_root();
    fs::write(root.path().join("w/keep"), b"original").unwrap();
    let before = snapshot(root.path(), &["w/keep"]);
    let script = "for c in 'touch /w/t' 'mkdir /w/d' 'rm /w/keep' 'mv /w/keep /w/k2' 'ln -s x /w/l' 'chmod 777 /w/keep' 'mkfifo /w/p'; do /busybox $c 2>&1; done; echo x >> /w/keep";
    let flags = ["--read-only".to_string(), "--rootfs".to_string(), root.path().to_string_lossy().into_owned()];
    let out = run_in(&root, &flags, &Cmd::new("/busybox").args(["sh", "-c", script]));
    let text = out.stdout_str() + &out.stderr_str();
    assert_eq!(text.matches("Read-only file system").count(), 8, "{}", out.dump());
    assert_eq!(snapshot(root.path(), &["w/keep"]), before, "{}", out.dump());
}
