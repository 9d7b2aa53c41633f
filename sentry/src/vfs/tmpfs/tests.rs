use std::sync::Arc;

use rvisor_platform::Perms;
use rvisor_syscalls::flags::mman::{MAP_SHARED, PROT_READ, PROT_WRITE};
use rvisor_syscalls::flags::open::{O_APPEND, O_RDWR, O_TRUNC};
use rvisor_syscalls::Errno;

use super::*;
use crate::mm::testutil::new_mm;
use crate::vfs::inode::falloc_flags::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
use crate::vfs::inode::rename_flags::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use crate::vfs::Dentry;

fn fs() -> (Arc<dyn Inode>, Arc<MemoryFile>) {
    let mf = MemoryFile::with_window(1 << 30).unwrap();
    (Tmpfs::new_root(mf.clone(), 0o1777, 0, 0), mf)
}

fn nlink(i: &Arc<dyn Inode>) -> u64 {
    i.stat().unwrap().st_nlink
}

fn names(dir: &Arc<dyn Inode>) -> Vec<String> {
    let f = dir.open(0).unwrap();
    let mut v: Vec<String> = f.getdents(0, 1 << 16).unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect();
    v.sort();
    v
}

fn read_all(f: &Arc<dyn FileImpl>, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    let got = f.read(&mut b, 0, 0).unwrap();
    b.truncate(got);
    b
}

#[test]
fn files_are_created_written_read_and_truncated() {
    let (root, mf) = fs();
    let st = root.stat().unwrap();
    assert_eq!((st.st_mode, st.st_nlink, st.st_size), (S_IFDIR | 0o1777, 2, 40));
    assert_eq!(root.statfs().unwrap().f_type, TMPFS_MAGIC);
    let f = root.create(b"f", 0o640, 1000, 100).unwrap();
    assert_eq!(root.create(b"f", 0o640, 0, 0).err(), Some(Errno::EEXIST));
    let st = f.stat().unwrap();
    assert_eq!((st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size), (S_IFREG | 0o640, 1000, 100, 1, 0));
    assert_ne!(st.st_ino, root.stat().unwrap().st_ino);
    assert_eq!(st.st_dev, root.stat().unwrap().st_dev);
    let file = f.open(O_RDWR).unwrap();
    assert_eq!(file.write(b"hello world", 0, O_RDWR).unwrap(), 11);
    assert_eq!(file.write(b"!", 0, O_RDWR | O_APPEND).unwrap(), 1, "O_APPEND writes at the end");
    assert_eq!(read_all(&file, 64), b"hello world!");
    let st = f.stat().unwrap();
    assert_eq!((st.st_size, st.st_blocks), (12, 8));
    // A write past the end leaves a hole of zeros.
    file.write(b"x", 8192 + 3, 0).unwrap();
    let mut b = [9u8; 4];
    assert_eq!(file.read(&mut b, 8192, 0).unwrap(), 4);
    assert_eq!(&b, b"\0\0\0x");
    assert_eq!(f.stat().unwrap().st_blocks, 16, "the hole's page is not allocated");
    // Truncation: shrinking drops data, growing back reads zeros.
    f.truncate(5).unwrap();
    assert_eq!(read_all(&file, 64), b"hello");
    f.truncate(8).unwrap();
    assert_eq!(read_all(&file, 64), b"hello\0\0\0");
    assert_eq!(mf.allocated(), 4096);
    // O_TRUNC on open empties it; mtime moves.
    let before = f.stat().unwrap();
    f.open(O_RDWR | O_TRUNC).unwrap();
    let after = f.stat().unwrap();
    assert_eq!(after.st_size, 0);
    assert!((after.st_mtime, after.st_mtime_nsec) >= (before.st_mtime, before.st_mtime_nsec));
    assert_eq!(f.truncate(u64::MAX).err(), Some(Errno::EFBIG));
    assert_eq!(root.truncate(0).err(), Some(Errno::EISDIR));
    drop((file, f));
    root.unlink(b"f").unwrap();
    assert_eq!(mf.allocated(), 0, "the last reference frees the pages");
}

#[test]
fn fallocate_allocates_extends_and_punches_holes() {
    let (root, _) = fs();
    let f = root.create(b"f", 0o600, 0, 0).unwrap();
    f.fallocate(FALLOC_FL_KEEP_SIZE, 0, 4096).unwrap();
    assert_eq!(f.stat().unwrap().st_size, 0);
    f.fallocate(0, 0, 10000).unwrap();
    let st = f.stat().unwrap();
    assert_eq!((st.st_size, st.st_blocks), (10000, 24));
    let file = f.open(O_RDWR).unwrap();
    file.write(b"abcdef", 0, 0).unwrap();
    f.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1, 2).unwrap();
    assert_eq!(&read_all(&file, 6), b"a\0\0def");
    assert_eq!(f.fallocate(0x10, 0, 1).err(), Some(Errno::EOPNOTSUPP));
}

#[test]
fn directories_count_links_and_refuse_to_lose_entries() {
    let (root, _) = fs();
    let d = root.mkdir(b"d", 0o755, 0, 0).unwrap();
    assert_eq!((nlink(&root), nlink(&d)), (3, 2));
    d.create(b"f", 0o644, 0, 0).unwrap();
    assert_eq!(root.rmdir(b"d").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(root.unlink(b"d").err(), Some(Errno::EISDIR));
    assert_eq!(d.rmdir(b"f").err(), Some(Errno::ENOTDIR));
    assert_eq!(root.rmdir(b"nope").err(), Some(Errno::ENOENT));
    d.unlink(b"f").unwrap();
    assert_eq!(d.lookup(b"f").err(), Some(Errno::ENOENT));
    root.rmdir(b"d").unwrap();
    assert_eq!((nlink(&root), nlink(&d)), (2, 0));
    // A removed directory (someone's cwd, say) takes no new entries.
    assert_eq!(d.create(b"g", 0o644, 0, 0).err(), Some(Errno::ENOENT));
    assert_eq!(d.mkdir(b"g", 0o755, 0, 0).err(), Some(Errno::ENOENT));
    assert!(d.open(0).unwrap().getdents(0, 4096).unwrap().is_empty());
}

#[test]
fn hard_links_share_the_inode_and_unlinked_open_files_live_on() {
    let (root, _) = fs();
    let f = root.create(b"a", 0o644, 0, 0).unwrap();
    let file = f.open(O_RDWR).unwrap();
    file.write(b"data", 0, 0).unwrap();
    root.link(b"b", &f).unwrap();
    assert_eq!(nlink(&f), 2);
    assert_eq!(root.link(b"b", &f).err(), Some(Errno::EEXIST));
    assert_eq!(root.lookup(b"b").unwrap().stat().unwrap().st_ino, f.stat().unwrap().st_ino);
    root.unlink(b"a").unwrap();
    root.unlink(b"b").unwrap();
    assert_eq!(nlink(&f), 0);
    assert_eq!(read_all(&file, 8), b"data", "still readable through the open file");
    assert_eq!(root.link(b"c", &f).err(), Some(Errno::ENOENT), "no resurrection");
    let d = root.mkdir(b"d", 0o755, 0, 0).unwrap();
    assert_eq!(root.link(b"e", &d).err(), Some(Errno::EPERM));
    let (other, _) = fs();
    let g = other.create(b"g", 0o644, 0, 0).unwrap();
    assert_eq!(root.link(b"g", &g).err(), Some(Errno::EXDEV));
    assert_eq!(root.rename(b"d", &other, b"d", 0).err(), Some(Errno::EXDEV));
}

#[test]
fn symlinks_keep_their_target() {
    let (root, _) = fs();
    let l = root.symlink(b"l", b"../x/y", 5, 6).unwrap();
    let st = l.stat().unwrap();
    assert_eq!((st.st_mode, st.st_size, st.st_uid), (S_IFLNK | 0o777, 6, 5));
    assert_eq!(l.readlink().unwrap(), b"../x/y");
    assert!(l.is_symlink());
    assert_eq!(root.readlink().err(), Some(Errno::EINVAL));
}

#[test]
fn rename_moves_replaces_and_exchanges_like_linux() {
    let (root, _) = fs();
    let a = root.mkdir(b"a", 0o755, 0, 0).unwrap();
    let b = root.mkdir(b"b", 0o755, 0, 0).unwrap();
    let f = a.create(b"f", 0o644, 0, 0).unwrap();
    b.create(b"g", 0o644, 0, 0).unwrap();
    // A file to another directory, replacing a file there.
    a.rename(b"f", &b, b"g", 0).unwrap();
    assert_eq!(names(&a), [".", ".."]);
    assert_eq!(b.lookup(b"g").unwrap().stat().unwrap().st_ino, f.stat().unwrap().st_ino);
    // Type mismatches and NOREPLACE.
    let c = root.mkdir(b"c", 0o755, 0, 0).unwrap();
    assert_eq!(b.rename(b"g", &root, b"c", 0).err(), Some(Errno::EISDIR));
    assert_eq!(root.rename(b"c", &b, b"g", 0).err(), Some(Errno::ENOTDIR));
    assert_eq!(root.rename(b"a", &root, b"b", 0).err(), Some(Errno::ENOTEMPTY));
    assert_eq!(root.rename(b"a", &root, b"c", RENAME_NOREPLACE).err(), Some(Errno::EEXIST));
    assert_eq!(root.rename(b"zz", &root, b"c", 0).err(), Some(Errno::ENOENT));
    // A directory into itself.
    assert_eq!(root.rename(b"a", &a, b"x", 0).err(), Some(Errno::EINVAL));
    let sub = a.mkdir(b"sub", 0o755, 0, 0).unwrap();
    assert_eq!(root.rename(b"a", &sub, b"x", 0).err(), Some(Errno::EINVAL));
    // A directory onto an empty one, to another parent: link counts follow.
    assert_eq!((nlink(&root), nlink(&a)), (5, 3));
    a.rename(b"sub", &root, b"c", 0).unwrap();
    assert_eq!((nlink(&root), nlink(&a), nlink(&c)), (5, 2, 0));
    assert_eq!(c.create(b"x", 0o644, 0, 0).err(), Some(Errno::ENOENT), "the replaced directory is gone");
    let dots = sub.open(0).unwrap().getdents(0, 4096).unwrap();
    assert_eq!(dots[1].ino, root.stat().unwrap().st_ino, "`..` is the new parent");
    // EXCHANGE swaps a file and a directory.
    assert_eq!(root.rename(b"c", &b, b"nope", RENAME_EXCHANGE).err(), Some(Errno::ENOENT));
    root.rename(b"c", &b, b"g", RENAME_EXCHANGE).unwrap();
    assert!(b.lookup(b"g").unwrap().is_dir());
    assert!(!root.lookup(b"c").unwrap().is_dir());
    assert_eq!((nlink(&root), nlink(&b)), (4, 3));
    // Renaming a name onto another name of the same file does nothing.
    root.link(b"c2", &root.lookup(b"c").unwrap()).unwrap();
    root.rename(b"c", &root, b"c2", 0).unwrap();
    assert!(root.lookup(b"c").is_ok() && root.lookup(b"c2").is_ok());
}

#[test]
fn listings_continue_across_removals() {
    let (root, _) = fs();
    for i in 0..50 {
        root.create(format!("f{i}").as_bytes(), 0o644, 0, 0).unwrap();
    }
    let dir = root.open(0).unwrap();
    // Small batches, deleting what was listed, as `rm -rf` does.
    let (mut offset, mut seen) = (0, 0);
    loop {
        let batch = dir.getdents(offset, 100).unwrap();
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            if e.name != b"." && e.name != b".." {
                root.unlink(&e.name).unwrap();
                seen += 1;
            }
        }
        offset = batch.last().unwrap().next_offset;
    }
    assert_eq!(seen, 50);
    assert_eq!(names(&root), [".", ".."]);
    assert_eq!(root.stat().unwrap().st_size, 40);
}

#[test]
fn setattr_changes_mode_owner_and_times() {
    let (root, _) = fs();
    let f = root.create(b"f", 0o644, 0, 0).unwrap();
    let ts = Timespec { tv_sec: 1000, tv_nsec: 5 };
    f.setattr(&SetAttr { mode: Some(0o4755), uid: Some(7), atime: Some(TimeSet::At(ts)), ..Default::default() }).unwrap();
    let st = f.stat().unwrap();
    assert_eq!((st.st_mode, st.st_uid, st.st_gid), (S_IFREG | 0o4755, 7, 0));
    assert_eq!((st.st_atime, st.st_atime_nsec), (1000, 5));
    assert!(st.st_ctime > 1000, "ctime is now");
}

#[test]
fn shared_mappings_are_the_file() {
    let (mm, _, mf) = new_mm();
    let root: Arc<dyn Inode> = Tmpfs::new_root(mf, 0o1777, 0, 0);
    let f = root.create(b"shm", 0o600, 0, 0).unwrap();
    f.truncate(8192).unwrap();
    let file = f.open(O_RDWR).unwrap();
    let obj = file.shared_memory().unwrap();
    let addr = mm.mmap_object(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, obj, 0, Perms::RWX).unwrap();
    mm.copy_out(addr + 4100, b"via mmap").unwrap();
    let mut b = [0u8; 8];
    file.read(&mut b, 4100, 0).unwrap();
    assert_eq!(&b, b"via mmap");
    file.write(b"via write", 10, 0).unwrap();
    let mut m = [0u8; 9];
    mm.copy_in(addr + 10, &mut m).unwrap();
    assert_eq!(&m, b"via write");
    // Beyond the last page of the file: EFAULT for a syscall (SIGBUS for a fault).
    let big = mm.mmap_object(0, 3 * 4096, PROT_READ, MAP_SHARED, file.shared_memory().unwrap(), 0, Perms::RWX).unwrap();
    assert_eq!(mm.copy_in(big + 8192, &mut b), Err(Errno::EFAULT));
    // Truncation: pages beyond the new end that are still mapped read as zeros, and so
    // does the tail of the new last page.
    f.truncate(100).unwrap();
    mm.copy_in(addr + 4100, &mut b).unwrap();
    assert_eq!(b, [0; 8]);
    mm.copy_in(addr + 10, &mut m).unwrap();
    assert_eq!(&m, b"via write");
    mm.copy_in(addr + 100, &mut b).unwrap();
    assert_eq!(b, [0; 8], "the tail of the last page is cleared");
}

#[test]
fn dentry_cache_follows_renames_and_removals() {
    let (root_inode, _) = fs();
    let root = Dentry::new_root(root_inode.clone());
    root_inode.mkdir(b"a", 0o755, 0, 0).unwrap();
    let a = root.child(b"a").unwrap();
    a.inode().mkdir(b"in", 0o755, 0, 0).unwrap();
    let inner = a.child(b"in").unwrap();
    // Rename a/ to b/: the cached dentry moves, and paths below it follow.
    root.inode().rename(b"a", root.inode(), b"b", 0).unwrap();
    Dentry::move_child(&root, b"a", &root, b"b", false);
    assert_eq!(inner.path_from(&root).unwrap(), b"/b/in");
    assert!(Arc::ptr_eq(&root.child(b"b").unwrap(), &a));
    assert_eq!(root.child(b"a").err(), Some(Errno::ENOENT));
    assert!(a.is_ancestor_of(&inner) && !inner.is_ancestor_of(&a));
    // Removal forgets the name.
    a.inode().rmdir(b"in").unwrap();
    a.forget(b"in");
    assert_eq!(a.child(b"in").err(), Some(Errno::ENOENT));
    // Creation is seen at once (no negative entries).
    let f = a.inode().create(b"new", 0o644, 0, 0).unwrap();
    let d = a.instantiate(b"new", f);
    assert!(Arc::ptr_eq(&a.child(b"new").unwrap(), &d));
}

#[test]
fn unnamed_files_have_no_link_until_linked_once_unless_not_linkable() {
    let (root, _mf) = fs();
    let tmp = root.create_unnamed(0o600, 0, 0, true).unwrap();
    assert_eq!(nlink(&tmp), 0);
    assert_eq!(names(&root), [".", ".."]);
    root.link(b"a", &tmp).unwrap();
    assert_eq!(nlink(&tmp), 1);
    assert_eq!(names(&root), [".", "..", "a"]);
    // Unlinked again, it cannot come back: linkable was for the first link only.
    root.unlink(b"a").unwrap();
    assert_eq!(root.link(b"b", &tmp), Err(Errno::ENOENT));
    let excl = root.create_unnamed(0o600, 0, 0, false).unwrap();
    assert_eq!(root.link(b"c", &excl), Err(Errno::ENOENT));
    let file = root.create(b"f", 0o644, 0, 0).unwrap();
    assert_eq!(file.create_unnamed(0o600, 0, 0, true).err(), Some(Errno::ENOTDIR));
}
