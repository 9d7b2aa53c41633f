//! A gofer serving a single regular file as its root (a single-file bind mount such as
//! `/etc/hosts`): attach, stat, open, setattr and xattrs work on it; walking from it fails
//! with ENOTDIR; a read-only server refuses every change with EROFS.

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::thread::JoinHandle;

use common::TempTree;
use rvisor_gofer::protocol::{setattr_valid as sv, SetAttrMsg};
use rvisor_gofer::{serve, serve_root, socketpair, GoferClient, GoferError, ServerOptions};
use rvisor_syscalls::flags::open::*;
use rvisor_syscalls::Errno;

const RW: ServerOptions = ServerOptions { read_only: false };
const RO: ServerOptions = ServerOptions { read_only: true };

fn errno<T: std::fmt::Debug>(r: Result<T, GoferError>) -> Errno {
    match r {
        Err(GoferError::Errno(e)) => e,
        other => panic!("expected an errno answer, got {other:?}"),
    }
}

/// `O_PATH` descriptor of `path`, following symlinks unless `nofollow`.
fn open_path(path: &Path, nofollow: bool) -> OwnedFd {
    let extra = if nofollow { libc::O_NOFOLLOW } else { 0 };
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC | extra)
        .open(path)
        .unwrap();
    OwnedFd::from(f)
}

/// A server on a thread serving the file `name` of a temporary directory.
struct FileFixture {
    tree: TempTree,
    client: Option<GoferClient>,
    server: Option<JoinHandle<Result<(), GoferError>>>,
}

impl FileFixture {
    fn new(contents: &[u8], opts: ServerOptions) -> FileFixture {
        let tree = TempTree::empty();
        fs::write(tree.join("hosts"), contents).unwrap();
        let root = open_path(&tree.join("hosts"), false);
        let (server_sock, client_sock) = socketpair().unwrap();
        let server = std::thread::spawn(move || serve(server_sock, root, opts));
        FileFixture {
            tree,
            client: Some(GoferClient::new(client_sock)),
            server: Some(server),
        }
    }

    fn client(&self) -> &GoferClient {
        self.client.as_ref().unwrap()
    }

    fn path(&self) -> std::path::PathBuf {
        self.tree.join("hosts")
    }

    /// Closes the client and checks the server ended cleanly.
    fn finish(mut self) {
        self.client = None;
        let result = self.server.take().unwrap().join().expect("server panicked");
        assert!(result.is_ok(), "server failed: {result:?}");
    }
}

impl Drop for FileFixture {
    fn drop(&mut self) {
        self.client = None;
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    fs::File::from(fd).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn file_root_attach_returns_the_files_stat() {
    let f = FileFixture::new(b"127.0.0.1 localhost\n", RW);
    let c = f.client();
    let (root, attr) = c.attach().unwrap();
    let md = fs::metadata(f.path()).unwrap();
    assert_eq!((attr.st_dev, attr.st_ino), (md.dev(), md.ino()));
    assert_eq!(attr.st_mode, md.mode());
    assert_eq!(attr.st_size, 20);
    assert_eq!(c.stat(root).unwrap().st_ino, md.ino());
    assert!(c.statfs(root).is_ok());
    f.finish();
}

#[test]
fn file_root_walk_getdents_and_namespace_changes_fail_with_enotdir() {
    let f = FileFixture::new(b"x\n", RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    assert_eq!(errno(c.walk(root, b"anything")), Errno::ENOTDIR);
    assert_eq!(errno(c.getdents(root, 0, 4096)), Errno::ENOTDIR);
    assert_eq!(
        errno(c.create(root, b"new", O_RDWR, 0o644, (0, 0))),
        Errno::ENOTDIR
    );
    assert_eq!(errno(c.mkdir(root, b"d", 0o755, (0, 0))), Errno::ENOTDIR);
    assert_eq!(errno(c.unlink(root, b"x", false)), Errno::ENOTDIR);
    assert_eq!(errno(c.open(root, O_RDONLY | O_DIRECTORY)), Errno::ENOTDIR);
    assert_eq!(errno(c.readlink(root)), Errno::EINVAL);
    f.finish();
}

#[test]
fn file_root_opens_for_reading_and_writing() {
    let f = FileFixture::new(b"127.0.0.1 localhost\n", RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    assert_eq!(
        read_all(c.open(root, O_RDONLY).unwrap()),
        b"127.0.0.1 localhost\n"
    );
    let mut w = fs::File::from(c.open(root, O_WRONLY | O_APPEND).unwrap());
    w.write_all(b"10.0.0.2 db\n").unwrap();
    drop(w);
    assert_eq!(
        fs::read(f.path()).unwrap(),
        b"127.0.0.1 localhost\n10.0.0.2 db\n"
    );
    // Each open is a description of its own: offsets are not shared.
    let mut a = fs::File::from(c.open(root, O_RDWR).unwrap());
    let mut b = fs::File::from(c.open(root, O_RDONLY).unwrap());
    a.seek(SeekFrom::Start(4)).unwrap();
    assert_eq!(b.stream_position().unwrap(), 0);
    let mut first = [0u8; 3];
    b.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"127");
    f.finish();
}

#[test]
fn file_root_stays_the_inode_served_when_its_path_is_replaced() {
    let f = FileFixture::new(b"original\n", RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    // A host tool replaces the file by renaming a new one over it; like a bind mount, the
    // server keeps serving the inode it was given, and a symlink put in its place is not
    // followed either.
    fs::write(f.tree.join("replacement"), b"replacement\n").unwrap();
    fs::rename(f.tree.join("replacement"), f.path()).unwrap();
    assert_eq!(read_all(c.open(root, O_RDONLY).unwrap()), b"original\n");
    fs::remove_file(f.path()).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", f.path()).unwrap();
    assert_eq!(read_all(c.open(root, O_RDONLY).unwrap()), b"original\n");
    f.finish();
}

#[test]
fn file_root_setattr_and_xattrs_work() {
    let f = FileFixture::new(b"0123456789", RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    c.setattr(
        root,
        SetAttrMsg {
            valid: sv::SIZE | sv::MODE,
            size: 4,
            mode: 0o600,
            ..Default::default()
        },
    )
    .unwrap();
    let md = fs::metadata(f.path()).unwrap();
    assert_eq!(md.len(), 4);
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
    c.setattr(
        root,
        SetAttrMsg {
            valid: sv::MTIME,
            mtime_sec: 1_000_000,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fs::metadata(f.path()).unwrap().mtime(), 1_000_000);
    match c.setxattr(root, b"user.rvisor", b"v", 0) {
        // Some host filesystems hold no user xattrs; the rest must then be answered alike.
        Err(GoferError::Errno(Errno::EOPNOTSUPP)) => {}
        other => {
            other.unwrap();
            assert_eq!(c.getxattr(root, b"user.rvisor").unwrap(), b"v");
            assert_eq!(c.listxattr(root).unwrap(), b"user.rvisor\0");
            c.removexattr(root, b"user.rvisor").unwrap();
            assert_eq!(errno(c.getxattr(root, b"user.rvisor")), Errno::ENODATA);
        }
    }
    f.finish();
}

#[test]
fn read_only_file_root_refuses_every_change_with_erofs() {
    let f = FileFixture::new(b"127.0.0.1 localhost\n", RO);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    assert_eq!(
        read_all(c.open(root, O_RDONLY).unwrap()),
        b"127.0.0.1 localhost\n"
    );
    for flags in [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND] {
        assert_eq!(errno(c.open(root, flags)), Errno::EROFS, "{flags:#o}");
    }
    let truncate = SetAttrMsg {
        valid: sv::SIZE,
        size: 0,
        ..Default::default()
    };
    assert_eq!(errno(c.setattr(root, truncate)), Errno::EROFS);
    assert_eq!(errno(c.setxattr(root, b"user.a", b"v", 0)), Errno::EROFS);
    assert_eq!(
        fs::read(f.path()).unwrap(),
        b"127.0.0.1 localhost\n",
        "the host file is unchanged"
    );
    f.finish();
}

#[test]
fn symlink_and_special_roots_are_refused() {
    let tree = TempTree::empty();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("link")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    for name in ["link", "fifo"] {
        let (server_sock, _client_sock) = socketpair().unwrap();
        let root = open_path(&tree.join(name), true);
        match serve(server_sock, root, RW) {
            Err(GoferError::Errno(Errno::ENOTDIR)) => {}
            other => panic!("{name}: expected ENOTDIR, got {other:?}"),
        }
    }
    // A file root needs the /proc/self/fd descriptor to reopen it through.
    fs::write(tree.join("file"), b"x").unwrap();
    let (server_sock, _client_sock) = socketpair().unwrap();
    match serve_root(server_sock, open_path(&tree.join("file"), true), None, RW) {
        Err(GoferError::Errno(Errno::EINVAL)) => {}
        other => panic!("expected EINVAL, got {other:?}"),
    }
}
