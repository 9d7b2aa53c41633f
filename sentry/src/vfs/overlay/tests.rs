use std::sync::Arc;

use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use rvisor_syscalls::flags::open::{O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};
use rvisor_syscalls::types::Timespec;
use rvisor_syscalls::Errno;

use super::*;
use crate::mm::MemoryFile;
use crate::vfs::inode::rename_flags::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use crate::vfs::inode::TimeSet;

/// A lower tree (a tmpfs the tests never change after building it) and an overlay on it:
/// /etc/passwd, /usr/bin/env, /dir/{a, sub/b}, /lnk -> etc/passwd.
fn setup() -> (Arc<dyn Inode>, Arc<dyn Inode>) {
    let mf = MemoryFile::with_window(1 << 30).unwrap();
    let lower: Arc<dyn Inode> = Tmpfs::new_root(mf.clone(), 0o755, 0, 0);
    let etc = lower.mkdir(b"etc", 0o755, 0, 0).unwrap();
    write_file(&etc.create(b"passwd", 0o644, 0, 0).unwrap(), b"root:x:0:0");
    let usr = lower.mkdir(b"usr", 0o755, 0, 0).unwrap();
    let bin = usr.mkdir(b"bin", 0o755, 0, 0).unwrap();
    let env = bin.create(b"env", 0o4751, 1000, 100).unwrap();
    write_file(&env, b"#!env");
    let old = Timespec {
        tv_sec: 1_000_000,
        tv_nsec: 5,
    };
    env.setattr(&SetAttr {
        atime: Some(TimeSet::At(old)),
        mtime: Some(TimeSet::At(old)),
        ..Default::default()
    })
    .unwrap();
    let dir = lower.mkdir(b"dir", 0o750, 1000, 1000).unwrap();
    write_file(&dir.create(b"a", 0o600, 1000, 1000).unwrap(), b"aaa");
    let sub = dir.mkdir(b"sub", 0o700, 1000, 1000).unwrap();
    write_file(&sub.create(b"b", 0o600, 1000, 1000).unwrap(), b"bbb");
    lower.symlink(b"lnk", b"etc/passwd", 0, 0).unwrap();
    let root: Arc<dyn Inode> = Overlay::new_root(lower.clone(), mf).unwrap();
    (lower, root)
}

fn write_file(f: &Arc<dyn Inode>, data: &[u8]) {
    let file = f.open(O_WRONLY | O_TRUNC).unwrap();
    assert_eq!(file.write(data, 0, 0).unwrap(), data.len());
}

fn read_file(f: &Arc<dyn Inode>) -> Vec<u8> {
    let file = f.open(O_RDONLY).unwrap();
    let mut b = vec![0u8; 4096];
    let n = file.read(&mut b, 0, 0).unwrap();
    b.truncate(n);
    b
}

fn walk(root: &Arc<dyn Inode>, path: &str) -> Result<Arc<dyn Inode>, Errno> {
    let mut cur = root.clone();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        cur = cur.lookup(c.as_bytes())?;
    }
    Ok(cur)
}

fn names(dir: &Arc<dyn Inode>) -> Vec<String> {
    let f = dir.open(O_RDONLY).unwrap();
    let mut v: Vec<String> = f
        .getdents(0, 1 << 16)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_land_in_the_upper_layer_and_the_lower_is_unchanged() {
    let (lower, root) = setup();
    assert_eq!(
        read_file(&walk(&root, "etc/passwd").unwrap()),
        b"root:x:0:0"
    );
    write_file(&walk(&root, "etc/passwd").unwrap(), b"x");
    assert_eq!(read_file(&walk(&root, "etc/passwd").unwrap()), b"x");
    assert_eq!(
        read_file(&walk(&lower, "etc/passwd").unwrap()),
        b"root:x:0:0"
    );
    // A new file in a lower-only directory copies the directory up.
    let touched = walk(&root, "usr/bin")
        .unwrap()
        .create(b"touched", 0o644, 0, 0)
        .unwrap();
    write_file(&touched, b"new");
    assert_eq!(read_file(&walk(&root, "usr/bin/touched").unwrap()), b"new");
    assert_eq!(walk(&lower, "usr/bin/touched").err(), Some(Errno::ENOENT));
    assert_eq!(
        walk(&root, "lnk").unwrap().readlink().unwrap(),
        b"etc/passwd"
    );
    assert!(!root.read_only());
    assert_eq!(root.statfs().unwrap().f_type, OVERLAYFS_SUPER_MAGIC);
}

#[test]
fn unlink_leaves_a_whiteout_and_a_new_file_replaces_it() {
    let (lower, root) = setup();
    let bin = walk(&root, "usr/bin").unwrap();
    assert_eq!(bin.rmdir(b"env").err(), Some(Errno::ENOTDIR));
    bin.unlink(b"env").unwrap();
    assert_eq!(bin.lookup(b"env").err(), Some(Errno::ENOENT));
    assert_eq!(walk(&root, "usr/bin/env").err(), Some(Errno::ENOENT));
    assert_eq!(bin.unlink(b"env").err(), Some(Errno::ENOENT));
    assert_eq!(names(&bin), [".", ".."]);
    assert_eq!(read_file(&walk(&lower, "usr/bin/env").unwrap()), b"#!env");
    // A new object over the whiteout starts empty; the lower one stays hidden after it goes.
    let env = bin.create(b"env", 0o644, 0, 0).unwrap();
    assert_eq!(read_file(&env), b"");
    assert_eq!(names(&bin), [".", "..", "env"]);
    bin.unlink(b"env").unwrap();
    assert_eq!(bin.lookup(b"env").err(), Some(Errno::ENOENT));
    // A directory made over a removed lower directory is empty (opaque).
    let dir = walk(&root, "dir/sub").unwrap();
    dir.unlink(b"b").unwrap();
    walk(&root, "dir").unwrap().rmdir(b"sub").unwrap();
    let sub = walk(&root, "dir")
        .unwrap()
        .mkdir(b"sub", 0o755, 0, 0)
        .unwrap();
    assert_eq!(names(&sub), [".", ".."]);
    assert_eq!(sub.lookup(b"b").err(), Some(Errno::ENOENT));
}

#[test]
fn copy_up_keeps_metadata_and_inode_identity() {
    let (lower, root) = setup();
    let env = walk(&root, "usr/bin/env").unwrap();
    let before = env.stat().unwrap();
    let lower_st = walk(&lower, "usr/bin/env").unwrap().stat().unwrap();
    assert_eq!(
        (before.st_ino, before.st_dev),
        (lower_st.st_ino, lower_st.st_dev)
    );
    // Open for writing: copy-up with the data.
    let f = env.open(O_RDWR).unwrap();
    let after = env.stat().unwrap();
    assert_eq!(
        (after.st_ino, after.st_dev),
        (before.st_ino, before.st_dev),
        "stable identity"
    );
    assert_eq!(
        (after.st_mode, after.st_uid, after.st_gid, after.st_size),
        (S_IFREG | 0o4751, 1000, 100, 5)
    );
    assert_eq!(
        (after.st_mtime, after.st_mtime_nsec, after.st_atime),
        (1_000_000, 5, 1_000_000)
    );
    assert_eq!(
        f.stat().unwrap().st_ino,
        before.st_ino,
        "fstat of the upper file too"
    );
    f.write(b"X", 0, 0).unwrap();
    assert_eq!(read_file(&env), b"X!env");
    assert_eq!(read_file(&walk(&lower, "usr/bin/env").unwrap()), b"#!env");
    // The parent chain was copied up with its metadata; chmod of a symlink's owner too.
    let usr = walk(&root, "usr").unwrap().stat().unwrap();
    assert_eq!(usr.st_mode, S_IFDIR | 0o755);
    let lnk = walk(&root, "lnk").unwrap();
    let ino = lnk.stat().unwrap().st_ino;
    lnk.setattr(&SetAttr {
        uid: Some(7),
        ..Default::default()
    })
    .unwrap();
    let st = lnk.stat().unwrap();
    assert_eq!(
        (st.st_mode & S_IFMT, st.st_uid, st.st_ino),
        (S_IFLNK, 7, ino)
    );
    assert_eq!(lnk.readlink().unwrap(), b"etc/passwd");
    // Truncate to 0 needs no data; upper-only objects get their own inode numbers.
    let a = walk(&root, "dir/a").unwrap();
    a.truncate(0).unwrap();
    assert_eq!(read_file(&a), b"");
    let n = root.create(b"new", 0o600, 0, 0).unwrap().stat().unwrap();
    assert_ne!(
        n.st_ino,
        walk(&root, "dir/a").unwrap().stat().unwrap().st_ino
    );
    assert_eq!(n.st_dev, root.stat().unwrap().st_dev);
}

#[test]
fn listing_merges_both_layers_with_inode_numbers_matching_stat() {
    let (_lower, root) = setup();
    let dir = walk(&root, "dir").unwrap();
    dir.create(b"c", 0o644, 0, 0).unwrap();
    dir.unlink(b"a").unwrap();
    assert_eq!(names(&dir), [".", "..", "c", "sub"]);
    assert_eq!(names(&root), [".", "..", "dir", "etc", "lnk", "usr"]);
    let f = dir.open(O_RDONLY).unwrap();
    let all = f.getdents(0, 1 << 16).unwrap();
    for e in &all {
        let name = String::from_utf8(e.name.clone()).unwrap();
        let expect = match name.as_str() {
            "." => dir.stat().unwrap().st_ino,
            ".." => root.stat().unwrap().st_ino,
            n => dir.lookup(n.as_bytes()).unwrap().stat().unwrap().st_ino,
        };
        assert_eq!(e.ino, expect, "{name}");
    }
    // Reading on in small pieces from the snapshot gives the same entries once each.
    let mut seen = Vec::new();
    let mut off = 0;
    loop {
        let batch = f.getdents(off, 1).unwrap();
        let Some(last) = batch.last() else { break };
        assert_eq!(batch.len(), 1);
        off = last.next_offset;
        seen.push(batch[0].name.clone());
        // Entries removed after the listing started do not disturb it.
        if batch[0].name == b"c" {
            dir.unlink(b"c").unwrap();
        }
    }
    assert_eq!(seen, all.iter().map(|e| e.name.clone()).collect::<Vec<_>>());
    assert_eq!(
        dir.stat().unwrap().st_nlink,
        1,
        "merged directories report one link"
    );
}

#[test]
fn rmdir_of_a_merged_directory_needs_it_empty() {
    let (lower, root) = setup();
    assert_eq!(root.rmdir(b"dir").err(), Some(Errno::ENOTEMPTY));
    let dir = walk(&root, "dir").unwrap();
    dir.unlink(b"a").unwrap();
    assert_eq!(root.rmdir(b"dir").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(dir.rmdir(b"sub").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(dir.unlink(b"sub").err(), Some(Errno::EISDIR));
    walk(&root, "dir/sub").unwrap().unlink(b"b").unwrap();
    dir.rmdir(b"sub").unwrap();
    root.rmdir(b"dir").unwrap();
    assert_eq!(root.lookup(b"dir").err(), Some(Errno::ENOENT));
    assert_eq!(
        names(&dir),
        [".", ".."],
        "a removed directory lists nothing"
    );
    assert_eq!(dir.create(b"x", 0o600, 0, 0).err(), Some(Errno::ENOENT));
    assert_eq!(
        names(&walk(&lower, "dir").unwrap()),
        [".", "..", "a", "sub"]
    );
}

#[test]
fn rename_of_a_lower_directory_moves_its_whole_tree() {
    let (lower, root) = setup();
    let dir = walk(&root, "dir").unwrap();
    let a_ino = walk(&root, "dir/a").unwrap().stat().unwrap().st_ino;
    let sub = walk(&root, "dir/sub").unwrap();
    let usr = walk(&root, "usr").unwrap();
    root.rename(b"dir", &usr, b"moved", 0).unwrap();
    assert_eq!(root.lookup(b"dir").err(), Some(Errno::ENOENT));
    assert_eq!(read_file(&walk(&root, "usr/moved/sub/b").unwrap()), b"bbb");
    assert_eq!(
        walk(&root, "usr/moved/a").unwrap().stat().unwrap().st_ino,
        a_ino
    );
    assert_eq!(
        names(&walk(&root, "usr/moved").unwrap()),
        [".", "..", "a", "sub"]
    );
    assert_eq!(names(&usr), [".", "..", "bin", "moved"]);
    // The objects looked up before the rename are the moved ones.
    assert!(Arc::ptr_eq(&walk(&root, "usr/moved").unwrap(), &dir));
    assert_eq!(names(&sub), [".", "..", "b"]);
    // Back again, over an empty directory; into itself is refused.
    root.mkdir(b"dir", 0o755, 0, 0).unwrap();
    usr.rename(b"moved", &root, b"dir", 0).unwrap();
    assert_eq!(names(&walk(&root, "dir").unwrap()), [".", "..", "a", "sub"]);
    assert_eq!(
        root.rename(b"dir", &sub, b"x", 0).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        root.rename(b"etc", &root, b"dir", 0).err(),
        Some(Errno::ENOTEMPTY)
    );
    // The lower tree is as it was.
    assert_eq!(
        names(&walk(&lower, "dir").unwrap()),
        [".", "..", "a", "sub"]
    );
    assert_eq!(names(&walk(&lower, "usr").unwrap()), [".", "..", "bin"]);
}

#[test]
fn rename_of_files_honours_noreplace_and_exchange() {
    let (lower, root) = setup();
    let etc = walk(&root, "etc").unwrap();
    let dir = walk(&root, "dir").unwrap();
    assert_eq!(
        dir.rename(b"a", &etc, b"passwd", RENAME_NOREPLACE).err(),
        Some(Errno::EEXIST)
    );
    dir.rename(b"a", &etc, b"passwd", RENAME_EXCHANGE).unwrap();
    assert_eq!(read_file(&walk(&root, "etc/passwd").unwrap()), b"aaa");
    assert_eq!(read_file(&walk(&root, "dir/a").unwrap()), b"root:x:0:0");
    dir.rename(b"a", &etc, b"passwd", 0).unwrap();
    assert_eq!(
        read_file(&walk(&root, "etc/passwd").unwrap()),
        b"root:x:0:0"
    );
    assert_eq!(dir.lookup(b"a").err(), Some(Errno::ENOENT));
    assert_eq!(names(&dir), [".", "..", "sub"]);
    assert_eq!(
        dir.rename(b"sub", &etc, b"passwd", 0).err(),
        Some(Errno::ENOTDIR)
    );
    assert_eq!(
        dir.rename(b"nope", &etc, b"x", RENAME_EXCHANGE).err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(read_file(&walk(&lower, "dir/a").unwrap()), b"aaa");
    // A hard link of a lower file is linked in the upper layer: one inode, two names.
    let p = walk(&root, "etc/passwd").unwrap();
    etc.link(b"hard", &p).unwrap();
    let (s1, s2) = (
        p.stat().unwrap(),
        walk(&root, "etc/hard").unwrap().stat().unwrap(),
    );
    assert_eq!((s1.st_ino, s1.st_nlink), (s2.st_ino, 2));
    write_file(&walk(&root, "etc/hard").unwrap(), b"both");
    assert_eq!(read_file(&p), b"both");
}

#[test]
fn copy_up_keeps_extended_attributes_and_special_files() {
    use rvisor_syscalls::flags::mode::S_IFIFO;
    let (lower, root) = setup();
    let passwd = walk(&lower, "etc/passwd").unwrap();
    passwd.setxattr(b"user.origin", b"lower", 0).unwrap();
    lower.mknod(b"fifo", S_IFIFO | 0o640, 0, 0, 0).unwrap();
    let p = walk(&root, "etc/passwd").unwrap();
    assert_eq!(p.getxattr(b"user.origin").unwrap(), b"lower");
    p.setxattr(b"user.new", b"upper", 0).unwrap();
    let mut names = p.listxattr().unwrap();
    names.sort();
    assert_eq!(names, [b"user.new".to_vec(), b"user.origin".to_vec()]);
    assert_eq!(passwd.listxattr().unwrap(), [b"user.origin".to_vec()]);
    let fifo = walk(&root, "fifo").unwrap();
    fifo.setattr(&SetAttr {
        mode: Some(0o600),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(fifo.stat().unwrap().st_mode, S_IFIFO | 0o600);
    assert_eq!(
        walk(&lower, "fifo").unwrap().stat().unwrap().st_mode,
        S_IFIFO | 0o640
    );
    let made = root.mknod(b"fifo2", S_IFIFO | 0o644, 0, 0, 0).unwrap();
    assert_eq!(made.file_type(), S_IFIFO);
    assert_eq!(
        walk(&root, "fifo2").unwrap().stat().unwrap().st_mode,
        S_IFIFO | 0o644
    );
}
