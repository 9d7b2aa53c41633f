//! tmpfs directories: the entry table, the namespace changes and directory listings.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, MutexGuard, Weak};

use rvisor_syscalls::flags::dirent::{DT_DIR, DT_LNK, DT_REG, DT_UNKNOWN};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use rvisor_syscalls::types::{Stat, DIRENT64_NAME_OFFSET};
use rvisor_syscalls::Errno;

use super::{lock, now, TmpfsInode};
use crate::vfs::file::FileImpl;
use crate::vfs::inode::rename_flags::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use crate::vfs::inode::{DirEntry, Inode};

/// getdents cookies: `.` ends at 1, `..` at 2, entries carry their insertion number (> 2).
const FIRST_COOKIE: u64 = 3;

/// A directory's entries. Each entry has an insertion number that is its getdents cookie,
/// so a listing continues correctly while entries are added and removed (`rm -rf` reads a
/// directory while it empties it).
#[derive(Default)]
pub(super) struct DirData {
    entries: HashMap<Vec<u8>, (u64, Arc<TmpfsInode>)>,
    order: BTreeMap<u64, Vec<u8>>,
    next_cookie: u64,
    /// Removed (rmdir, or replaced by rename): nothing can be created in it any more.
    dead: bool,
}

impl DirData {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get(&self, name: &[u8]) -> Option<Arc<TmpfsInode>> {
        self.entries.get(name).map(|(_, n)| n.clone())
    }

    fn insert(&mut self, name: &[u8], node: Arc<TmpfsInode>) {
        self.remove(name);
        let cookie = self.next_cookie.max(FIRST_COOKIE);
        self.next_cookie = cookie + 1;
        self.order.insert(cookie, name.to_vec());
        self.entries.insert(name.to_vec(), (cookie, node));
    }

    fn remove(&mut self, name: &[u8]) -> Option<Arc<TmpfsInode>> {
        let (cookie, node) = self.entries.remove(name)?;
        self.order.remove(&cookie);
        Some(node)
    }
}

/// The table a rename's new name lives in: the old directory's own or the other one's.
fn table<'a>(old: &'a mut DirData, new: &'a mut Option<MutexGuard<'_, DirData>>) -> &'a mut DirData {
    match new {
        Some(g) => g,
        None => old,
    }
}

impl TmpfsInode {
    /// Adds a new inode of `mode` (type and permissions) called `name`; `target` is a
    /// symlink's.
    pub(super) fn add_node(&self, name: &[u8], mode: u32, uid: u32, gid: u32, target: Option<&[u8]>) -> Result<Arc<TmpfsInode>, Errno> {
        let _ns = self.fs.ns();
        let mut d = lock(self.dir()?);
        if d.dead {
            return Err(Errno::ENOENT);
        }
        if d.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        self.fs.acct.may_add_inode(self.fs.inodes.load(std::sync::atomic::Ordering::Relaxed))?;
        let is_dir = mode & S_IFMT == S_IFDIR;
        let parent = if is_dir { self.me.clone() } else { Weak::new() };
        let node = self.fs.new_inode(mode, uid, gid, parent, target.unwrap_or_default());
        d.insert(name, node.clone());
        let mut m = self.meta();
        if is_dir {
            m.nlink += 1;
        }
        m.modified();
        Ok(node)
    }

    /// A new regular file of `mode` that no directory names (O_TMPFILE): it lives while
    /// open, and linkat may name it if `linkable`.
    pub(super) fn add_unnamed(&self, mode: u32, uid: u32, gid: u32, linkable: bool) -> Result<Arc<TmpfsInode>, Errno> {
        let _ns = self.fs.ns();
        let d = lock(self.dir()?);
        if d.dead {
            return Err(Errno::ENOENT);
        }
        self.fs.acct.may_add_inode(self.fs.inodes.load(std::sync::atomic::Ordering::Relaxed))?;
        let node = self.fs.new_inode(mode, uid, gid, Weak::new(), b"");
        {
            let mut m = node.meta();
            m.nlink = 0;
            m.linkable = linkable;
        }
        Ok(node)
    }

    /// Adds the name `name` for the existing non-directory `target`.
    pub(super) fn add_link(&self, name: &[u8], target: Arc<TmpfsInode>) -> Result<(), Errno> {
        if target.ftype == S_IFDIR {
            return Err(Errno::EPERM);
        }
        let _ns = self.fs.ns();
        let mut d = lock(self.dir()?);
        if d.dead {
            return Err(Errno::ENOENT);
        }
        if d.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        {
            let mut m = target.meta();
            if m.nlink == 0 && !m.linkable {
                // An unlinked file cannot get a name back; an O_TMPFILE file can, once.
                return Err(Errno::ENOENT);
            }
            m.linkable = false;
            m.nlink += 1;
            m.ctime = now();
        }
        d.insert(name, target);
        self.meta().modified();
        Ok(())
    }

    /// unlink (`want_dir` false) or rmdir (`want_dir` true) of `name`.
    pub(super) fn remove(&self, name: &[u8], want_dir: bool) -> Result<(), Errno> {
        let _ns = self.fs.ns();
        let mut d = lock(self.dir()?);
        let node = d.get(name).ok_or(Errno::ENOENT)?;
        let is_dir = node.ftype == S_IFDIR;
        if want_dir && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !want_dir && is_dir {
            return Err(Errno::EISDIR);
        }
        if is_dir {
            let mut child = lock(node.dir()?);
            if child.len() > 0 {
                return Err(Errno::ENOTEMPTY);
            }
            child.dead = true;
        }
        d.remove(name);
        {
            let mut m = node.meta();
            m.nlink = if is_dir { 0 } else { m.nlink.saturating_sub(1) };
            m.ctime = now();
        }
        let mut m = self.meta();
        if is_dir {
            m.nlink = m.nlink.saturating_sub(1);
        }
        m.modified();
        Ok(())
    }

    /// rename(2) from this directory to `nd` (both of this filesystem).
    pub(super) fn rename_in(&self, old_name: &[u8], nd: &TmpfsInode, new_name: &[u8], flags: u32) -> Result<(), Errno> {
        let _ns = self.fs.ns();
        let same = self.ino == nd.ino;
        let mut od = lock(self.dir()?);
        let mut ng = if same { None } else { Some(lock(nd.dir()?)) };
        if od.dead || table(&mut od, &mut ng).dead {
            return Err(Errno::ENOENT);
        }
        let src = od.get(old_name).ok_or(Errno::ENOENT)?;
        let dst = table(&mut od, &mut ng).get(new_name);
        let exchange = flags & RENAME_EXCHANGE != 0;
        if let Some(dst) = &dst {
            if Arc::ptr_eq(&src, dst) {
                // Two names of one file: nothing to do (POSIX).
                return Ok(());
            }
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
        } else if exchange {
            return Err(Errno::ENOENT);
        }
        let src_dir = src.ftype == S_IFDIR;
        if src_dir && src.is_ancestor_of(nd) {
            return Err(Errno::EINVAL);
        }
        let dst_dir = dst.as_ref().is_some_and(|d| d.ftype == S_IFDIR);
        let mut dst_table = None;
        if let Some(dst) = &dst {
            if exchange {
                if dst_dir && dst.is_ancestor_of(self) {
                    return Err(Errno::EINVAL);
                }
            } else if src_dir && !dst_dir {
                return Err(Errno::ENOTDIR);
            } else if !src_dir && dst_dir {
                return Err(Errno::EISDIR);
            } else if dst_dir {
                if dst.is_ancestor_of(self) {
                    return Err(Errno::ENOTEMPTY);
                }
                let t = lock(dst.dir()?);
                if t.len() > 0 {
                    return Err(Errno::ENOTEMPTY);
                }
                dst_table = Some(t);
            }
        }
        // Checked: now change the tables, links, parents and times.
        let t = now();
        od.remove(old_name);
        let replaced = table(&mut od, &mut ng).remove(new_name);
        table(&mut od, &mut ng).insert(new_name, src.clone());
        if exchange {
            if let Some(dst) = &replaced {
                od.insert(old_name, dst.clone());
            }
        }
        if src_dir && !same {
            *lock(&src.parent) = nd.me.clone();
        }
        if exchange && dst_dir && !same {
            if let Some(dst) = &replaced {
                *lock(&dst.parent) = self.me.clone();
            }
        }
        // Directory link counts: each subdirectory links its parent through `..`.
        let (mut old_links, mut new_links) = (0i64, 0i64);
        if !same {
            let moved_in = src_dir as i64;
            let moved_back = (exchange && dst_dir) as i64;
            old_links += moved_back - moved_in;
            new_links += moved_in - moved_back;
        }
        if let (false, Some(dst)) = (exchange, &replaced) {
            let mut m = dst.meta();
            if dst_dir {
                m.nlink = 0;
                new_links -= 1;
            } else {
                m.nlink = m.nlink.saturating_sub(1);
            }
            m.ctime = t;
        }
        if let Some(mut dt) = dst_table {
            dt.dead = true;
        }
        if let (true, Some(dst)) = (exchange, &replaced) {
            dst.meta().ctime = t;
        }
        src.meta().ctime = t;
        let adjust = |n: &TmpfsInode, delta: i64| {
            let mut m = n.meta();
            m.nlink = m.nlink.saturating_add_signed(delta);
            m.mtime = t;
            m.ctime = t;
        };
        if same {
            adjust(self, old_links + new_links);
        } else {
            adjust(self, old_links);
            adjust(nd, new_links);
        }
        Ok(())
    }
}

fn d_type(ftype: u32) -> u8 {
    match ftype {
        S_IFDIR => DT_DIR,
        S_IFREG => DT_REG,
        S_IFLNK => DT_LNK,
        _ => DT_UNKNOWN,
    }
}

/// An open tmpfs directory.
pub(super) struct TmpfsDirFile {
    node: Arc<TmpfsInode>,
}

impl TmpfsDirFile {
    pub(super) fn new(node: Arc<TmpfsInode>) -> TmpfsDirFile {
        TmpfsDirFile { node }
    }
}

impl FileImpl for TmpfsDirFile {
    fn read(&self, _: &mut [u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _: &[u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        self.node.stat()
    }

    fn getdents(&self, offset: u64, max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        let mut out = Vec::new();
        {
            let d = lock(self.node.dir()?);
            if d.dead {
                return Ok(out);
            }
            let mut bytes = 0usize;
            let mut push = |e: DirEntry, out: &mut Vec<DirEntry>| {
                bytes += (DIRENT64_NAME_OFFSET + e.name.len() + 1 + 7) & !7;
                // Always return one entry, so a too-small buffer is reported as EINVAL.
                let fits = out.is_empty() || bytes <= max_bytes;
                if fits {
                    out.push(e);
                }
                fits
            };
            if offset < 1 && !push(DirEntry { ino: self.node.ino, next_offset: 1, d_type: DT_DIR, name: b".".to_vec() }, &mut out) {
                return Ok(out);
            }
            if offset < 2 && !push(DirEntry { ino: self.node.parent_ino(), next_offset: 2, d_type: DT_DIR, name: b"..".to_vec() }, &mut out) {
                return Ok(out);
            }
            for (&cookie, name) in d.order.range(offset.max(FIRST_COOKIE - 1) + 1..) {
                let Some((_, node)) = d.entries.get(name) else { continue };
                let e = DirEntry { ino: node.ino, next_offset: cookie, d_type: d_type(node.ftype), name: name.clone() };
                if !push(e, &mut out) {
                    break;
                }
            }
        }
        self.node.meta().accessed();
        Ok(out)
    }
}
