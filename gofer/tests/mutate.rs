//! The gofer's write operations end to end, over a real temporary tree: create, mkdir,
//! mknod, symlink, link, unlink, rename, setattr and extended attributes, their refusal when
//! served read-only, and their confinement to the served tree under symlink races.

mod common;

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{Fixture, TempTree};
use rvisor_gofer::client::{
    setattr_valid as sv, SetAttrMsg, RENAME_EXCHANGE, RENAME_NOREPLACE, XATTR_CREATE, XATTR_REPLACE,
};
use rvisor_gofer::{GoferClient, GoferError, ServerOptions};
use rvisor_syscalls::flags::mode::{S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
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

fn root(c: &GoferClient) -> u64 {
    c.attach().unwrap().0
}

fn md(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn create_makes_a_new_file_with_its_mode_and_owner_and_donates_it_open() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    let owner = if is_root() { (1234, 5678) } else { (0, 0) };
    let (fid, attr, fd) = c.create(r, b"new", O_RDWR, 0o640, owner).unwrap();
    let host = md(&f.tree.join("new"));
    assert_eq!(attr.st_ino, host.ino());
    assert_eq!(attr.st_mode, S_IFREG | 0o640);
    assert_eq!(host.mode(), S_IFREG | 0o640);
    if is_root() {
        assert_eq!((host.uid(), host.gid()), (1234, 5678));
        assert_eq!((attr.st_uid, attr.st_gid), (1234, 5678));
    }
    let mut file = fs::File::from(fd);
    file.write_all(b"written through the donated fd").unwrap();
    file.rewind().unwrap();
    let mut back = String::new();
    file.read_to_string(&mut back).unwrap();
    assert_eq!(back, "written through the donated fd");
    assert_eq!(c.stat(fid).unwrap().st_size, 30);
    // Exclusive: an existing name, a symlink included, is EEXIST and left alone.
    assert_eq!(
        errno(c.create(r, b"new", O_RDWR, 0o600, (0, 0))),
        Errno::EEXIST
    );
    let passwd = md(Path::new("/etc/passwd"));
    assert_eq!(
        errno(c.create(r, b"abs_link", O_WRONLY | O_TRUNC, 0o600, (0, 0))),
        Errno::EEXIST
    );
    assert_eq!(md(Path::new("/etc/passwd")).size(), passwd.size());
    // Bad modes and names are refused.
    assert_eq!(
        errno(c.create(r, b"x", O_RDWR, S_IFREG | 0o600, (0, 0))),
        Errno::EINVAL
    );
    assert_eq!(
        errno(c.create(r, b"x", O_PATH, 0o600, (0, 0))),
        Errno::EINVAL
    );
    let (file_fid, _) = c.walk(r, b"hello.txt").unwrap();
    assert_eq!(
        errno(c.create(file_fid, b"x", O_RDWR, 0o600, (0, 0))),
        Errno::ENOTDIR
    );
    assert_eq!(
        errno(c.create(999_999, b"x", O_RDWR, 0o600, (0, 0))),
        Errno::EBADF
    );
    f.finish();
}

#[test]
fn mkdir_mknod_and_symlink_make_nodes_of_their_type_with_their_mode() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    let (d, attr) = c.mkdir(r, b"dir", 0o1750, (0, 0)).unwrap();
    assert_eq!(attr.st_mode, S_IFDIR | 0o1750);
    assert_eq!(md(&f.tree.join("dir")).mode(), S_IFDIR | 0o1750);
    // The new fid is the directory: nodes can be made in it.
    let (_, attr) = c.mknod(d, b"fifo", S_IFIFO | 0o600, (0, 0)).unwrap();
    assert_eq!(attr.st_mode, S_IFIFO | 0o600);
    assert!(md(&f.tree.join("dir/fifo")).file_type().is_fifo());
    let (_, attr) = c.mknod(d, b"sock", S_IFSOCK | 0o644, (0, 0)).unwrap();
    assert_eq!(attr.st_mode & S_IFMT, S_IFSOCK);
    assert!(md(&f.tree.join("dir/sock")).file_type().is_socket());
    let (_, attr) = c.mknod(d, b"plain", 0o600, (0, 0)).unwrap();
    assert_eq!(attr.st_mode, S_IFREG | 0o600);
    assert_eq!(
        errno(c.mknod(d, b"null", S_IFCHR | 0o666, (0, 0))),
        Errno::EPERM
    );
    assert!(!f.tree.join("dir/null").exists());
    let (l, attr) = c.symlink(d, b"link", b"../../etc/shadow", (0, 0)).unwrap();
    assert_eq!(attr.st_mode & S_IFMT, S_IFLNK);
    assert_eq!(c.readlink(l).unwrap(), b"../../etc/shadow");
    assert_eq!(
        fs::read_link(f.tree.join("dir/link")).unwrap().as_os_str(),
        "../../etc/shadow"
    );
    assert_eq!(errno(c.symlink(d, b"empty", b"", (0, 0))), Errno::ENOENT);
    assert_eq!(errno(c.mkdir(d, b"link", 0o755, (0, 0))), Errno::EEXIST);
    assert_eq!(errno(c.mkdir(r, b"..", 0o755, (0, 0))), Errno::EINVAL);
    assert_eq!(errno(c.mkdir(r, b"a/b", 0o755, (0, 0))), Errno::EINVAL);
    f.finish();
}

#[test]
fn link_adds_a_name_for_the_same_inode_and_refuses_directories() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    let (file, _) = c.walk(r, b"hello.txt").unwrap();
    let (sub, _) = c.walk(r, b"subdir").unwrap();
    c.link(file, sub, b"hard").unwrap();
    assert_eq!(
        md(&f.tree.join("subdir/hard")).ino(),
        md(&f.tree.join("hello.txt")).ino()
    );
    assert_eq!(c.stat(file).unwrap().st_nlink, 2);
    assert_eq!(errno(c.link(sub, r, b"dirlink")), Errno::EPERM);
    assert_eq!(errno(c.link(file, sub, b"hard")), Errno::EEXIST);
    // A symlink is linked itself, not its target.
    let (sl, _) = c.walk(r, b"abs_link").unwrap();
    c.link(sl, sub, b"sl2").unwrap();
    assert!(md(&f.tree.join("subdir/sl2")).file_type().is_symlink());
    f.finish();
}

#[test]
fn unlink_removes_files_and_symlinks_and_rmdir_empty_directories() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    c.unlink(r, b"hello.txt", false).unwrap();
    assert!(!f.tree.join("hello.txt").exists());
    c.unlink(r, b"abs_link", false).unwrap();
    assert!(fs::symlink_metadata(f.tree.join("abs_link")).is_err());
    assert!(Path::new("/etc/passwd").exists());
    assert_eq!(errno(c.unlink(r, b"subdir", false)), Errno::EISDIR);
    assert_eq!(errno(c.unlink(r, b"subdir", true)), Errno::ENOTEMPTY);
    let (sub, _) = c.walk(r, b"subdir").unwrap();
    c.unlink(sub, b"deeper", true).unwrap();
    assert!(!f.tree.join("subdir/deeper").exists());
    assert_eq!(errno(c.unlink(r, b"missing", false)), Errno::ENOENT);
    assert_eq!(errno(c.unlink(r, b"..", true)), Errno::EINVAL);
    assert_eq!(errno(c.unlink(r, b".", true)), Errno::EINVAL);
    f.finish();
}

#[test]
fn rename_moves_exchanges_and_keeps_walked_fids_usable() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    let (sub, _) = c.walk(r, b"subdir").unwrap();
    let (hello, _) = c.walk(r, b"hello.txt").unwrap();
    c.rename(r, b"hello.txt", sub, b"moved.txt", 0).unwrap();
    assert_eq!(
        fs::read(f.tree.join("subdir/moved.txt")).unwrap(),
        b"hello, gofer\n"
    );
    // The fid walked to the old name opens the file under its new one.
    let mut s = String::new();
    fs::File::from(c.open(hello, O_RDONLY).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "hello, gofer\n");
    assert_eq!(
        errno(c.rename(sub, b"moved.txt", sub, b"inner.txt", RENAME_NOREPLACE)),
        Errno::EEXIST
    );
    let (inner, _) = c.walk(sub, b"inner.txt").unwrap();
    c.rename(sub, b"moved.txt", sub, b"inner.txt", RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(
        fs::read(f.tree.join("subdir/inner.txt")).unwrap(),
        b"hello, gofer\n"
    );
    assert_eq!(
        fs::read(f.tree.join("subdir/moved.txt")).unwrap(),
        b"inner\n"
    );
    let mut s = String::new();
    fs::File::from(c.open(inner, O_RDONLY).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "inner\n");
    // Directories move too; a symlink is renamed, not followed.
    c.rename(r, b"subdir", r, b"subdir2", 0).unwrap();
    assert!(f.tree.join("subdir2/deeper").is_dir());
    c.rename(r, b"dir_link", r, b"dir_link2", 0).unwrap();
    assert!(md(&f.tree.join("dir_link2")).file_type().is_symlink());
    assert_eq!(errno(c.rename(r, b"missing", r, b"x", 0)), Errno::ENOENT);
    assert_eq!(errno(c.rename(r, b"..", r, b"x", 0)), Errno::EINVAL);
    f.finish();
}

#[test]
fn setattr_changes_mode_owner_size_and_times_of_the_walked_node() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    let (file, _) = c.walk(r, b"hello.txt").unwrap();
    let set = |a: SetAttrMsg| c.setattr(file, a);
    set(SetAttrMsg {
        valid: sv::MODE,
        mode: 0o4711,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(md(&f.tree.join("hello.txt")).mode(), S_IFREG | 0o4711);
    set(SetAttrMsg {
        valid: sv::SIZE,
        size: 5,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(fs::read(f.tree.join("hello.txt")).unwrap(), b"hello");
    set(SetAttrMsg {
        valid: sv::SIZE,
        size: 1 << 20,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(md(&f.tree.join("hello.txt")).size(), 1 << 20);
    let times = SetAttrMsg {
        valid: sv::ATIME | sv::MTIME,
        atime_sec: 1_000_000,
        atime_nsec: 5,
        mtime_sec: 2_000_000,
        mtime_nsec: 7,
        ..Default::default()
    };
    set(times).unwrap();
    let m = md(&f.tree.join("hello.txt"));
    assert_eq!(
        (m.atime(), m.atime_nsec(), m.mtime(), m.mtime_nsec()),
        (1_000_000, 5, 2_000_000, 7)
    );
    set(SetAttrMsg {
        valid: sv::MTIME_NOW,
        ..Default::default()
    })
    .unwrap();
    let m = md(&f.tree.join("hello.txt"));
    assert!(m.mtime() > 2_000_000 && m.atime() == 1_000_000);
    if is_root() {
        set(SetAttrMsg {
            valid: sv::UID | sv::GID,
            uid: 42,
            gid: 43,
            ..Default::default()
        })
        .unwrap();
        let m = md(&f.tree.join("hello.txt"));
        assert_eq!((m.uid(), m.gid()), (42, 43));
        // A symlink's own owner changes; its target is untouched.
        let passwd = md(Path::new("/etc/passwd"));
        let (sl, _) = c.walk(r, b"abs_link").unwrap();
        c.setattr(
            sl,
            SetAttrMsg {
                valid: sv::UID,
                uid: 77,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(md(&f.tree.join("abs_link")).uid(), 77);
        let after = md(Path::new("/etc/passwd"));
        assert_eq!(
            (after.uid(), after.mode(), after.ctime()),
            (passwd.uid(), passwd.mode(), passwd.ctime())
        );
    }
    // A symlink has no mode to change; directories and fifos have no size.
    let (sl, _) = c.walk(r, b"abs_link").unwrap();
    assert_eq!(
        errno(c.setattr(
            sl,
            SetAttrMsg {
                valid: sv::MODE,
                mode: 0o600,
                ..Default::default()
            }
        )),
        Errno::EOPNOTSUPP
    );
    assert_eq!(md(Path::new("/etc/passwd")).mode() & 0o7777, 0o644);
    let (sub, _) = c.walk(r, b"subdir").unwrap();
    assert_eq!(
        errno(c.setattr(
            sub,
            SetAttrMsg {
                valid: sv::SIZE,
                ..Default::default()
            }
        )),
        Errno::EISDIR
    );
    let (fifo, _) = c.walk(r, b"fifo").unwrap();
    assert_eq!(
        errno(c.setattr(
            fifo,
            SetAttrMsg {
                valid: sv::SIZE,
                ..Default::default()
            }
        )),
        Errno::EINVAL
    );
    c.setattr(
        fifo,
        SetAttrMsg {
            valid: sv::MODE,
            mode: 0o600,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(md(&f.tree.join("fifo")).mode(), S_IFIFO | 0o600);
    f.finish();
}

#[test]
fn user_xattrs_round_trip_and_other_namespaces_are_refused() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    let (file, _) = c.walk(r, b"hello.txt").unwrap();
    let (sub, _) = c.walk(r, b"subdir").unwrap();
    for fid in [file, sub] {
        match c.setxattr(fid, b"user.color", b"blue", 0) {
            // The host filesystem (e.g. an old tmpfs) may not store user xattrs.
            Err(GoferError::Errno(Errno::EOPNOTSUPP)) => return,
            other => other.unwrap(),
        }
        assert_eq!(c.getxattr(fid, b"user.color").unwrap(), b"blue");
        assert_eq!(
            errno(c.setxattr(fid, b"user.color", b"red", XATTR_CREATE)),
            Errno::EEXIST
        );
        assert_eq!(
            errno(c.setxattr(fid, b"user.other", b"x", XATTR_REPLACE)),
            Errno::ENODATA
        );
        // Host filesystems bound values (ext4: one block); the protocol carries 64 KiB.
        let big = vec![0x5a; 2000];
        c.setxattr(fid, b"user.big", &big, 0).unwrap();
        assert_eq!(c.getxattr(fid, b"user.big").unwrap(), big);
        let mut names: Vec<&[u8]> = Vec::new();
        let list = c.listxattr(fid).unwrap();
        names.extend(list.split(|&b| b == 0).filter(|n| !n.is_empty()));
        names.sort();
        assert_eq!(names, [&b"user.big"[..], b"user.color"]);
        c.removexattr(fid, b"user.big").unwrap();
        assert_eq!(errno(c.getxattr(fid, b"user.big")), Errno::ENODATA);
        assert_eq!(errno(c.removexattr(fid, b"user.big")), Errno::ENODATA);
        assert_eq!(errno(c.getxattr(fid, b"trusted.x")), Errno::EOPNOTSUPP);
        assert_eq!(
            errno(c.setxattr(fid, b"security.x", b"1", 0)),
            Errno::EOPNOTSUPP
        );
        assert_eq!(errno(c.getxattr(fid, b"user.")), Errno::EINVAL);
        assert_eq!(errno(c.getxattr(fid, b"")), Errno::ERANGE);
        assert_eq!(errno(c.getxattr(fid, &[b'a'; 256])), Errno::ERANGE);
        assert_eq!(
            errno(c.setxattr(fid, b"user.x", &vec![0; 64 * 1024 + 1], 0)),
            Errno::E2BIG
        );
    }
    // Special files and symlinks carry no user attributes: none is found or set.
    let (fifo, _) = c.walk(r, b"fifo").unwrap();
    assert_eq!(errno(c.getxattr(fifo, b"user.color")), Errno::ENODATA);
    assert_eq!(
        errno(c.setxattr(fifo, b"user.color", b"1", 0)),
        Errno::EPERM
    );
    assert!(c.listxattr(fifo).unwrap().is_empty());
    f.finish();
}

#[test]
fn read_only_refuses_every_change_with_erofs_and_changes_nothing() {
    let f = Fixture::new(RO);
    let c = f.client();
    let r = root(c);
    let (file, _) = c.walk(r, b"hello.txt").unwrap();
    let before = fs::read_dir(&f.tree.path).unwrap().count();
    assert_eq!(
        errno(c.create(r, b"n", O_RDWR, 0o600, (0, 0))),
        Errno::EROFS
    );
    assert_eq!(errno(c.mkdir(r, b"n", 0o700, (0, 0))), Errno::EROFS);
    assert_eq!(
        errno(c.mknod(r, b"n", S_IFIFO | 0o600, (0, 0))),
        Errno::EROFS
    );
    assert_eq!(errno(c.symlink(r, b"n", b"t", (0, 0))), Errno::EROFS);
    assert_eq!(errno(c.link(file, r, b"n")), Errno::EROFS);
    assert_eq!(errno(c.unlink(r, b"hello.txt", false)), Errno::EROFS);
    assert_eq!(errno(c.rename(r, b"hello.txt", r, b"n", 0)), Errno::EROFS);
    let all = SetAttrMsg {
        valid: sv::MODE | sv::SIZE | sv::MTIME_NOW,
        mode: 0o777,
        ..Default::default()
    };
    assert_eq!(errno(c.setattr(file, all)), Errno::EROFS);
    assert_eq!(errno(c.setxattr(file, b"user.a", b"1", 0)), Errno::EROFS);
    assert_eq!(errno(c.removexattr(file, b"user.a")), Errno::EROFS);
    assert_eq!(fs::read_dir(&f.tree.path).unwrap().count(), before);
    assert_eq!(md(&f.tree.join("hello.txt")).mode() & 0o777, 0o644);
    f.finish();
}

/// Names no host file outside the tree may ever get.
fn escape_name(i: usize) -> String {
    format!("rvisor-gofer-escape-{}-{i}", std::process::id())
}

fn no_escapes_in(dir: &Path) {
    let prefix = format!("rvisor-gofer-escape-{}-", std::process::id());
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name();
        assert!(
            !name.to_string_lossy().starts_with(&prefix),
            "{name:?} escaped into {dir:?}"
        );
    }
}

#[test]
fn creates_unlinks_and_renames_through_a_swapped_symlink_stay_in_the_tree() {
    let tree = TempTree::empty();
    fs::create_dir(tree.join("work")).unwrap();
    std::os::unix::fs::symlink("/", tree.join("evil")).unwrap();
    let f = Fixture::serve(tree, RW);
    let c = f.client();
    let r = root(c);
    let stop = Arc::new(AtomicBool::new(false));
    // Swap "work" (a directory) and "evil" (a symlink to /) back and forth, and keep a
    // symlink to / appearing and disappearing at "flip".
    let racer = {
        let stop = stop.clone();
        let (work, evil, flip) = (
            f.tree.join("work"),
            f.tree.join("evil"),
            f.tree.join("flip"),
        );
        std::thread::spawn(move || {
            let (w, e) = (
                std::ffi::CString::new(work.into_os_string().into_encoded_bytes()).unwrap(),
                std::ffi::CString::new(evil.into_os_string().into_encoded_bytes()).unwrap(),
            );
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: both paths are NUL-terminated strings alive for the call.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        w.as_ptr(),
                        libc::AT_FDCWD,
                        e.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    );
                }
                let _ = std::os::unix::fs::symlink("/", &flip);
                let _ = fs::remove_file(&flip);
                swaps += 1;
            }
            swaps
        })
    };
    for i in 0..1500 {
        let name = escape_name(i);
        let name = name.as_bytes();
        // Through a fid walked to the swapped name: either the real directory or ENOTDIR.
        if let Ok((dir, _)) = c.walk(r, b"work") {
            let ok_or_refused = |r: Result<(), GoferError>| match r {
                Ok(()) => {}
                Err(GoferError::Errno(
                    Errno::ENOTDIR | Errno::ENOENT | Errno::EEXIST | Errno::ESTALE,
                )) => {}
                Err(e) => panic!("unexpected {e:?}"),
            };
            ok_or_refused(c.create(dir, name, O_RDWR, 0o600, (0, 0)).map(|_| ()));
            ok_or_refused(c.mkdir(dir, b"sub", 0o700, (0, 0)).map(|_| ()));
            ok_or_refused(c.rename(dir, name, dir, b"renamed", 0));
            ok_or_refused(c.unlink(dir, b"renamed", false));
            ok_or_refused(c.unlink(dir, b"sub", true));
            ok_or_refused(c.symlink(dir, name, b"/", (0, 0)).map(|_| ()));
            ok_or_refused(c.unlink(dir, name, false));
            let _ = c.clunk(dir);
        }
        // Through the flipping name itself.
        let _ = c.create(r, b"flip", O_RDWR, 0o600, (0, 0));
        let _ = c.mkdir(r, b"flip", 0o700, (0, 0));
        let _ = c.rename(r, b"flip", r, name, 0);
        let _ = c.unlink(r, name, false);
        let _ = c.unlink(r, name, true);
        let _ = c.unlink(r, b"flip", true);
    }
    stop.store(true, Ordering::Relaxed);
    assert!(racer.join().unwrap() > 0);
    no_escapes_in(Path::new("/"));
    no_escapes_in(&std::env::temp_dir());
    assert!(Path::new("/etc/passwd").exists());
    f.finish();
}

#[test]
fn dot_dot_slash_and_absolute_symlink_names_are_refused_for_every_change() {
    let f = Fixture::new(RW);
    let c = f.client();
    let r = root(c);
    let (file, _) = c.walk(r, b"hello.txt").unwrap();
    for bad in [&b".."[..], b".", b"/etc", b"a/b", b"", b"x\0y"] {
        assert_eq!(
            errno(c.create(r, bad, O_RDWR, 0o600, (0, 0))),
            Errno::EINVAL,
            "{bad:?}"
        );
        assert_eq!(errno(c.mkdir(r, bad, 0o700, (0, 0))), Errno::EINVAL);
        assert_eq!(
            errno(c.mknod(r, bad, S_IFIFO | 0o600, (0, 0))),
            Errno::EINVAL
        );
        assert_eq!(errno(c.symlink(r, bad, b"t", (0, 0))), Errno::EINVAL);
        assert_eq!(errno(c.link(file, r, bad)), Errno::EINVAL);
        assert_eq!(errno(c.unlink(r, bad, false)), Errno::EINVAL);
        assert_eq!(errno(c.rename(r, b"hello.txt", r, bad, 0)), Errno::EINVAL);
        assert_eq!(errno(c.rename(r, bad, r, b"x", 0)), Errno::EINVAL);
    }
    // An absolute symlink in the tree used as a directory is not followed.
    let (dl, _) = c.walk(r, b"dir_link").unwrap();
    assert_eq!(
        errno(c.create(dl, b"x", O_RDWR, 0o600, (0, 0))),
        Errno::ENOTDIR
    );
    assert_eq!(errno(c.unlink(dl, b"passwd", false)), Errno::ENOTDIR);
    assert_eq!(errno(c.mkdir(dl, b"x", 0o700, (0, 0))), Errno::ENOTDIR);
    assert!(Path::new("/etc/passwd").exists());
    let _ = fs::metadata("/etc").unwrap().permissions().mode();
    f.finish();
}
