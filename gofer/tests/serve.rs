//! The gofer server and client end to end, over a real temporary tree.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::{Fixture, TempTree};
use rvisor_gofer::{DirEntry, GoferClient, GoferError, ServerOptions};
use rvisor_syscalls::flags::dirent::{DT_DIR, DT_FIFO, DT_LNK, DT_REG, DT_SOCK};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use rvisor_syscalls::flags::open::*;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

const RW: ServerOptions = ServerOptions { read_only: false };
const RO: ServerOptions = ServerOptions { read_only: true };

fn errno<T: std::fmt::Debug>(r: Result<T, GoferError>) -> Errno {
    match r {
        Err(GoferError::Errno(e)) => e,
        other => panic!("expected an errno answer, got {other:?}"),
    }
}

fn assert_matches_host(attr: &Stat, path: &std::path::Path) {
    let md = fs::symlink_metadata(path).unwrap();
    assert_eq!(attr.st_dev, md.dev(), "dev of {path:?}");
    assert_eq!(attr.st_ino, md.ino(), "ino of {path:?}");
    assert_eq!(attr.st_mode, md.mode(), "mode of {path:?}");
    assert_eq!(attr.st_size, md.size() as i64, "size of {path:?}");
    assert_eq!(attr.st_nlink, md.nlink(), "nlink of {path:?}");
    assert_eq!((attr.st_uid, attr.st_gid), (md.uid(), md.gid()));
    assert_eq!(
        (attr.st_mtime, attr.st_mtime_nsec),
        (md.mtime(), md.mtime_nsec())
    );
    assert_eq!(
        (attr.st_ctime, attr.st_ctime_nsec),
        (md.ctime(), md.ctime_nsec())
    );
    assert_eq!(attr.st_blocks, md.blocks() as i64);
    assert_eq!(attr.st_blksize, md.blksize() as i64);
}

/// Walks a `/`-separated relative path one component at a time from a new root fid.
fn walk_path(c: &GoferClient, path: &str) -> Result<(u64, Stat), GoferError> {
    let (mut fid, mut attr) = c.attach()?;
    for comp in path.split('/') {
        (fid, attr) = c.walk(fid, comp.as_bytes())?;
    }
    Ok((fid, attr))
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    fs::File::from(fd).read_to_end(&mut out).unwrap();
    out
}

fn fd_flags(fd: &OwnedFd) -> (i32, i32) {
    // SAFETY: F_GETFL and F_GETFD on a descriptor we own take no pointer arguments.
    unsafe {
        (
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
        )
    }
}

/// Every entry of a directory, following the cookies, `max_bytes` at a time.
fn list_all(c: &GoferClient, dir: u64, max_bytes: u32) -> Vec<DirEntry> {
    let mut all = Vec::new();
    let mut offset = 0;
    for _ in 0..10_000 {
        let page = c.getdents(dir, offset, max_bytes).unwrap();
        let Some(last) = page.last() else { return all };
        let used: usize = page.iter().map(DirEntry::dirent64_len).sum();
        assert!(
            used <= max_bytes as usize,
            "page of {used} bytes exceeds {max_bytes}"
        );
        offset = last.next_offset;
        all.extend(page);
    }
    panic!("directory listing did not end");
}

fn host_names(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_encoded_bytes())
        .chain([b".".to_vec(), b"..".to_vec()])
        .collect();
    names.sort();
    names
}

#[test]
fn attach_returns_the_root_attributes() {
    let f = Fixture::new(RW);
    let (_root, attr) = f.client().attach().unwrap();
    assert_matches_host(&attr, &f.tree.path);
    assert_eq!(attr.st_mode & S_IFMT, S_IFDIR);
    f.finish();
}

#[test]
fn walk_and_stat_match_symlink_metadata() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    let (sub, sub_attr) = c.walk(root, b"subdir").unwrap();
    assert_matches_host(&sub_attr, &f.tree.join("subdir"));
    let (inner, inner_attr) = c.walk(sub, b"inner.txt").unwrap();
    assert_matches_host(&inner_attr, &f.tree.join("subdir/inner.txt"));
    assert_matches_host(&c.stat(inner).unwrap(), &f.tree.join("subdir/inner.txt"));
    // A walk to a symlink stats the link itself.
    let (_, link_attr) = c.walk(root, b"abs_link").unwrap();
    assert_eq!(link_attr.st_mode & S_IFMT, S_IFLNK);
    assert_matches_host(&link_attr, &f.tree.join("abs_link"));
    f.finish();
}

#[test]
fn stat_sees_changes_made_after_the_walk() {
    let f = Fixture::new(RW);
    let (fid, before) = walk_path(f.client(), "hello.txt").unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(f.tree.join("hello.txt"))
        .unwrap()
        .write_all(b"more")
        .unwrap();
    let after = f.client().stat(fid).unwrap();
    assert_eq!(after.st_size, before.st_size + 4);
    f.finish();
}

#[test]
fn open_donates_a_descriptor_that_reads_the_file() {
    let f = Fixture::new(RW);
    let (fid, _) = walk_path(f.client(), "hello.txt").unwrap();
    let fd = f.client().open(fid, O_RDONLY).unwrap();
    let (fl, fdfl) = fd_flags(&fd);
    assert_eq!(
        fl & libc::O_NONBLOCK,
        0,
        "O_NONBLOCK must be cleared unless asked for"
    );
    assert_eq!(fdfl & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    assert_eq!(read_all(fd), b"hello, gofer\n");
    let (fid, _) = walk_path(f.client(), "subdir/inner.txt").unwrap();
    assert_eq!(
        read_all(f.client().open(fid, O_RDONLY).unwrap()),
        b"inner\n"
    );
    f.finish();
}

#[test]
fn open_keeps_o_nonblock_when_asked() {
    let f = Fixture::new(RW);
    let (fid, _) = walk_path(f.client(), "hello.txt").unwrap();
    let fd = f.client().open(fid, O_RDONLY | O_NONBLOCK).unwrap();
    assert_eq!(fd_flags(&fd).0 & libc::O_NONBLOCK, libc::O_NONBLOCK);
    f.finish();
}

#[test]
fn open_for_writing_reaches_the_file_when_writable() {
    let f = Fixture::new(RW);
    let (fid, _) = walk_path(f.client(), "empty").unwrap();
    let fd = f.client().open(fid, O_WRONLY | O_TRUNC).unwrap();
    fs::File::from(fd)
        .write_all(b"written through the gofer")
        .unwrap();
    assert_eq!(
        fs::read(f.tree.join("empty")).unwrap(),
        b"written through the gofer"
    );
    f.finish();
}

#[test]
fn read_only_refuses_write_truncate_and_append_with_erofs() {
    let f = Fixture::new(RO);
    let c = f.client();
    let (fid, _) = walk_path(c, "hello.txt").unwrap();
    for flags in [
        O_WRONLY,
        O_RDWR,
        O_RDONLY | O_TRUNC,
        O_RDONLY | O_APPEND,
        O_WRONLY | O_APPEND,
    ] {
        assert_eq!(errno(c.open(fid, flags)), Errno::EROFS, "flags {flags:#o}");
    }
    assert_eq!(read_all(c.open(fid, O_RDONLY).unwrap()), b"hello, gofer\n");
    assert_eq!(
        fs::read(f.tree.join("hello.txt")).unwrap(),
        b"hello, gofer\n"
    );
    f.finish();
}

#[test]
fn open_of_a_directory_gives_a_directory_descriptor() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    let (sub, sub_attr) = c.walk(root, b"subdir").unwrap();
    let fd = c.open(sub, O_RDONLY | O_DIRECTORY).unwrap();
    let md = fs::File::from(fd).metadata().unwrap();
    assert!(md.is_dir());
    assert_eq!(md.ino(), sub_attr.st_ino);
    assert_eq!(errno(c.open(sub, O_WRONLY)), Errno::EISDIR);
    let (file, _) = c.walk(sub, b"inner.txt").unwrap();
    assert_eq!(errno(c.open(file, O_RDONLY | O_DIRECTORY)), Errno::ENOTDIR);
    f.finish();
}

#[test]
fn open_rejects_o_path_and_o_creat() {
    let f = Fixture::new(RW);
    let (fid, _) = walk_path(f.client(), "hello.txt").unwrap();
    assert_eq!(errno(f.client().open(fid, O_PATH)), Errno::EINVAL);
    assert_eq!(errno(f.client().open(fid, O_RDWR | O_CREAT)), Errno::EINVAL);
    assert_eq!(
        errno(f.client().open(fid, O_RDWR | O_TMPFILE)),
        Errno::EINVAL
    );
    f.finish();
}

#[test]
fn open_of_a_fifo_is_refused_without_blocking() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (fid, _) = walk_path(c, "fifo").unwrap();
    // With no writer, a blocking open for reading (or one for writing) would hang forever.
    assert_eq!(errno(c.open(fid, O_RDONLY)), Errno::ENXIO);
    assert_eq!(errno(c.open(fid, O_WRONLY)), Errno::ENXIO);
    assert_eq!(errno(c.open(fid, O_RDWR | O_NONBLOCK)), Errno::ENXIO);
    f.finish();
}

#[test]
fn open_of_a_socket_is_refused() {
    let f = Fixture::new(RW);
    let (fid, _) = walk_path(f.client(), "sock").unwrap();
    assert_eq!(errno(f.client().open(fid, O_RDWR)), Errno::ENXIO);
    f.finish();
}

#[test]
fn open_of_a_device_is_refused() {
    let tree = TempTree::standard();
    let path =
        std::ffi::CString::new(tree.join("null").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    let made = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if made != 0 {
        eprintln!(
            "skipping: cannot mknod here: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    let f = Fixture::serve(tree, RW);
    let (fid, _) = walk_path(f.client(), "null").unwrap();
    assert_eq!(errno(f.client().open(fid, O_RDWR)), Errno::EACCES);
    assert_eq!(errno(f.client().open(fid, O_RDONLY)), Errno::EACCES);
    f.finish();
}

#[test]
fn open_of_a_symlink_does_not_follow_it() {
    let f = Fixture::new(RW);
    let (fid, _) = walk_path(f.client(), "abs_link").unwrap();
    assert_eq!(errno(f.client().open(fid, O_RDONLY)), Errno::ELOOP);
    f.finish();
}

#[test]
fn readlink_returns_the_target_without_following_it() {
    let f = Fixture::new(RW);
    let c = f.client();
    for (name, target) in [
        ("abs_link", "/etc/passwd"),
        ("rel_link", "../../../../../../../../etc/passwd"),
        ("dir_link", "/etc"),
    ] {
        let (fid, attr) = walk_path(c, name).unwrap();
        assert_eq!(attr.st_mode & S_IFMT, S_IFLNK);
        assert_eq!(c.readlink(fid).unwrap(), target.as_bytes());
    }
    let (fid, _) = walk_path(c, "hello.txt").unwrap();
    assert_eq!(errno(c.readlink(fid)), Errno::EINVAL);
    f.finish();
}

#[test]
fn walk_through_a_symlink_is_refused() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (link, _) = walk_path(c, "dir_link").unwrap();
    assert_eq!(errno(c.walk(link, b"passwd")), Errno::ENOTDIR);
    f.finish();
}

#[test]
fn walk_rejects_dot_dot_slash_empty_and_nul() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    let (sub, _) = c.walk(root, b"subdir").unwrap();
    for name in [
        &b".."[..],
        b".",
        b"",
        b"subdir/inner.txt",
        b"a/b",
        b"/",
        b"/etc",
        b"hello.txt\0",
    ] {
        assert_eq!(
            errno(c.walk(root, name)),
            Errno::EINVAL,
            "{:?}",
            String::from_utf8_lossy(name)
        );
        assert_eq!(
            errno(c.walk(sub, name)),
            Errno::EINVAL,
            "{:?}",
            String::from_utf8_lossy(name)
        );
    }
    assert_eq!(errno(c.walk(root, &[b'x'; 256])), Errno::ENAMETOOLONG);
    f.finish();
}

#[test]
fn walk_of_a_missing_name_is_enoent() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    assert_eq!(errno(c.walk(root, b"no-such-file")), Errno::ENOENT);
    assert_eq!(errno(c.walk(root, &[b'x'; 255])), Errno::ENOENT);
    let (file, _) = c.walk(root, b"hello.txt").unwrap();
    assert_eq!(errno(c.walk(file, b"child")), Errno::ENOTDIR);
    f.finish();
}

#[test]
fn a_symlink_swapped_in_after_the_walk_cannot_escape() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (sub, _) = walk_path(c, "subdir").unwrap();
    // Replace the walked directory with a symlink to /etc behind the server's back.
    fs::rename(f.tree.join("subdir"), f.tree.join("moved")).unwrap();
    std::os::unix::fs::symlink("/etc", f.tree.join("subdir")).unwrap();
    // The fid still names the original directory, not /etc.
    assert_eq!(errno(c.walk(sub, b"passwd")), Errno::ENOENT);
    let (inner, attr) = c.walk(sub, b"inner.txt").unwrap();
    assert_matches_host(&attr, &f.tree.join("moved/inner.txt"));
    assert_eq!(read_all(c.open(inner, O_RDONLY).unwrap()), b"inner\n");
    let names: Vec<Vec<u8>> = list_all(c, sub, 4096).into_iter().map(|e| e.name).collect();
    assert!(!names.contains(&b"passwd".to_vec()));
    // A fresh walk sees the symlink, and stops there.
    let (link, attr) = walk_path(c, "subdir").unwrap();
    assert_eq!(attr.st_mode & S_IFMT, S_IFLNK);
    assert_eq!(errno(c.walk(link, b"passwd")), Errno::ENOTDIR);
    f.finish();
}

#[test]
fn a_file_replaced_after_the_walk_is_stale() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (fid, _) = walk_path(c, "hello.txt").unwrap();
    fs::write(f.tree.join("replacement"), b"other").unwrap();
    fs::rename(f.tree.join("replacement"), f.tree.join("hello.txt")).unwrap();
    assert_eq!(errno(c.open(fid, O_RDONLY)), Errno::ESTALE);
    // A fifo swapped in is refused as stale too, without blocking.
    let (fid, _) = walk_path(c, "empty").unwrap();
    fs::remove_file(f.tree.join("empty")).unwrap();
    nix::unistd::mkfifo(
        &f.tree.join("empty"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    assert_eq!(errno(c.open(fid, O_RDONLY)), Errno::ESTALE);
    f.finish();
}

#[test]
fn getdents_lists_exactly_the_directory_entries() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    let entries = list_all(c, root, 32 * 1024);
    let mut names: Vec<Vec<u8>> = entries.iter().map(|e| e.name.clone()).collect();
    names.sort();
    assert_eq!(names, host_names(&f.tree.path));
    let by_name: BTreeMap<&[u8], &DirEntry> =
        entries.iter().map(|e| (e.name.as_slice(), e)).collect();
    let expected_types = [
        ("hello.txt", DT_REG),
        ("subdir", DT_DIR),
        ("abs_link", DT_LNK),
        ("fifo", DT_FIFO),
        ("sock", DT_SOCK),
    ];
    for (name, ty) in expected_types {
        let e = by_name[name.as_bytes()];
        assert_eq!(e.d_type, ty, "{name}");
        assert_eq!(
            e.ino,
            fs::symlink_metadata(f.tree.join(name)).unwrap().ino(),
            "{name}"
        );
    }
    assert!(fs::symlink_metadata(f.tree.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // The entries of a subdirectory, too.
    let (sub, _) = c.walk(root, b"subdir").unwrap();
    let mut names: Vec<Vec<u8>> = list_all(c, sub, 4096).into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, host_names(&f.tree.join("subdir")));
    f.finish();
}

#[test]
fn getdents_paginated_with_a_small_buffer_lists_each_entry_once() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (many, _) = walk_path(c, "many").unwrap();
    let full: Vec<Vec<u8>> = list_all(c, many, 32 * 1024)
        .into_iter()
        .map(|e| e.name)
        .collect();
    for max_bytes in [64, 100, 200, 1000] {
        let mut names: Vec<Vec<u8>> = list_all(c, many, max_bytes)
            .into_iter()
            .map(|e| e.name)
            .collect();
        // Same order as one big read, no entry twice.
        assert_eq!(names, full, "max_bytes {max_bytes}");
        names.sort();
        names.dedup();
        assert_eq!(
            names,
            host_names(&f.tree.join("many")),
            "max_bytes {max_bytes}"
        );
    }
    // Restarting from the start works after a partial read.
    let first = c.getdents(many, 0, 64).unwrap();
    assert_eq!(c.getdents(many, 0, 64).unwrap(), first);
    f.finish();
}

#[test]
fn getdents_with_a_buffer_too_small_for_one_entry_is_einval() {
    let f = Fixture::new(RW);
    let (root, _) = f.client().attach().unwrap();
    assert_eq!(errno(f.client().getdents(root, 0, 0)), Errno::EINVAL);
    assert_eq!(errno(f.client().getdents(root, 0, 8)), Errno::EINVAL);
    f.finish();
}

#[test]
fn getdents_of_a_file_is_enotdir() {
    let f = Fixture::new(RW);
    let (fid, _) = walk_path(f.client(), "hello.txt").unwrap();
    assert_eq!(errno(f.client().getdents(fid, 0, 4096)), Errno::ENOTDIR);
    f.finish();
}

#[test]
fn clunk_releases_a_fid_and_unknown_fids_are_ebadf() {
    let f = Fixture::new(RW);
    let c = f.client();
    assert_eq!(errno(c.clunk(12345)), Errno::EBADF);
    assert_eq!(errno(c.stat(0)), Errno::EBADF);
    assert_eq!(errno(c.walk(999, b"x")), Errno::EBADF);
    let (fid, _) = walk_path(c, "hello.txt").unwrap();
    c.clunk(fid).unwrap();
    assert_eq!(errno(c.clunk(fid)), Errno::EBADF);
    assert_eq!(errno(c.stat(fid)), Errno::EBADF);
    assert_eq!(errno(c.open(fid, O_RDONLY)), Errno::EBADF);
    f.finish();
}

#[test]
fn a_child_fid_outlives_its_clunked_parent() {
    let f = Fixture::new(RW);
    let c = f.client();
    let (root, _) = c.attach().unwrap();
    let (sub, _) = c.walk(root, b"subdir").unwrap();
    let (inner, _) = c.walk(sub, b"inner.txt").unwrap();
    c.clunk(sub).unwrap();
    c.clunk(root).unwrap();
    assert_eq!(read_all(c.open(inner, O_RDONLY).unwrap()), b"inner\n");
    assert_eq!(c.stat(inner).unwrap().st_mode & S_IFMT, S_IFREG);
    f.finish();
}

#[test]
fn statfs_matches_the_host() {
    let f = Fixture::new(RW);
    let (root, _) = f.client().attach().unwrap();
    let got = f.client().statfs(root).unwrap();
    let host = nix::sys::statfs::statfs(&f.tree.path).unwrap();
    assert_eq!(got.f_type, host.filesystem_type().0 as i64);
    assert_eq!(got.f_bsize, host.block_size() as i64);
    assert_eq!(got.f_blocks, host.blocks());
    assert_eq!(got.f_namelen, host.maximum_name_length() as i64);
    assert!(got.f_namelen > 0);
    f.finish();
}

#[test]
fn the_client_serves_concurrent_callers() {
    let f = Fixture::new(RW);
    let c = f.client();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    let (fid, attr) = walk_path(c, "subdir/inner.txt").unwrap();
                    assert_eq!(attr.st_size, 6);
                    assert_eq!(read_all(c.open(fid, O_RDONLY).unwrap()), b"inner\n");
                    c.clunk(fid).unwrap();
                }
            });
        }
    });
    f.finish();
}

#[test]
fn serve_refuses_a_root_that_is_neither_a_directory_nor_a_regular_file() {
    // (A regular-file root is served: see file_root.rs.)
    use std::os::unix::fs::OpenOptionsExt;
    let tree = TempTree::standard();
    let fifo = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(tree.join("fifo"))
        .unwrap();
    let (server_sock, _client_sock) = rvisor_gofer::socketpair().unwrap();
    let r = rvisor_gofer::serve(server_sock, OwnedFd::from(fifo), RW);
    assert!(matches!(r, Err(GoferError::Errno(Errno::ENOTDIR))), "{r:?}");
}
