//! Copy-up: bringing lower objects into the upper layer before they change.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFREG};
use rvisor_syscalls::flags::open::{O_RDONLY, O_WRONLY};
use rvisor_syscalls::types::Timespec;
use rvisor_syscalls::Errno;

use super::lookup::list_dir;
use super::{lock, Link, OverlayInode, Upper};
use crate::vfs::inode::{Inode, SetAttr, TimeSet};

/// Bytes copied per read/write while copying a file's data up.
const COPY_CHUNK: usize = 1 << 20;

/// Copies the data of the regular file `lower` into the empty regular file `upper`.
/// Chunks of zeros are skipped, so holes stay holes (and cost no memory).
fn copy_data(lower: &Arc<dyn Inode>, upper: &Arc<dyn Inode>) -> Result<(), Errno> {
    let src = lower.open(O_RDONLY)?;
    let dst = upper.open(O_WRONLY)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut offset = 0u64;
    loop {
        let n = src.read(&mut buf, offset, 0)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).ok_or(Errno::EIO)?;
        if chunk.iter().any(|&b| b != 0) {
            let mut done = 0usize;
            while done < n {
                let w = dst.write(&chunk[done..], offset + done as u64, 0)?;
                if w == 0 {
                    return Err(Errno::ENOSPC);
                }
                done += w;
            }
        }
        offset += n as u64;
    }
    // A trailing run of zeros was skipped: the size says where the file ends.
    upper.truncate(offset)
}

/// Copies the extended attributes the lower object shows to the upper one, as far as the
/// upper layer keeps them (tmpfs: `user.` names).
fn copy_xattrs(lower: &Arc<dyn Inode>, upper: &Arc<dyn Inode>) {
    let Ok(names) = lower.listxattr() else { return };
    for name in names {
        if let Ok(value) = lower.getxattr(&name) {
            if let Err(e) = upper.setxattr(&name, &value, 0) {
                tracing::debug!(name = %String::from_utf8_lossy(&name), errno = ?e, "overlay: xattr not copied up");
            }
        }
    }
}

impl OverlayInode {
    /// Copies this object, and the directories above it that are not yet in the upper
    /// layer, into the upper layer; a regular file's data only when `data` (an open with
    /// O_TRUNC, or a truncate to 0, does not need it). Returns the upper inode.
    pub(super) fn copy_up<'a>(
        self: &'a Arc<Self>,
        data: bool,
        _ns: &MutexGuard<'_, ()>,
    ) -> Result<&'a Arc<dyn Inode>, Errno> {
        if let Some(u) = self.upper.get() {
            return Ok(&u.inode);
        }
        let mut chain = vec![self.clone()];
        while let Some(Link::Named { parent, .. }) = chain.last().map(|n| n.link()) {
            if parent.upper.get().is_some() {
                break;
            }
            chain.push(parent);
        }
        for node in chain.iter().rev() {
            node.copy_up_one(data || !Arc::ptr_eq(node, self))?;
        }
        self.upper_inode().ok_or(Errno::EIO)
    }

    /// Copies this object up; its parent is in the upper layer already.
    fn copy_up_one(&self, data: bool) -> Result<(), Errno> {
        if self.upper.get().is_some() {
            return Ok(());
        }
        // An object without an upper inode always has a lower one.
        let lower = self.lower.as_ref().ok_or(Errno::EIO)?;
        let (dir, name, temporary) = match self.link() {
            Link::Named { parent, name } => {
                (parent.upper_inode().ok_or(Errno::EIO)?.clone(), name, false)
            }
            // An unlinked object still open somewhere: its copy gets no name.
            Link::Detached => {
                let n = self.fs.temp_seq.fetch_add(1, Ordering::Relaxed);
                (
                    self.fs.upper_root.clone(),
                    format!(".rvisor-overlay-copy-{n}").into_bytes(),
                    true,
                )
            }
            Link::Root => return Err(Errno::EIO),
        };
        if !temporary {
            match dir.lookup(&name) {
                // Another object of this name was copied up meanwhile: the same file.
                Ok(u) if u.file_type() == self.ftype => return self.set_upper(u),
                Ok(_) => return Err(Errno::ESTALE),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        let st = lower.stat()?;
        let perm = st.st_mode & 0o7777;
        let up = match self.ftype {
            S_IFREG => {
                let u = dir.create(&name, perm, st.st_uid, st.st_gid)?;
                if data {
                    if let Err(e) = copy_data(lower, &u) {
                        let _ = dir.unlink(&name);
                        return Err(e);
                    }
                }
                u
            }
            S_IFDIR => dir.mkdir(&name, perm, st.st_uid, st.st_gid)?,
            S_IFLNK => dir.symlink(&name, &lower.readlink()?, st.st_uid, st.st_gid)?,
            // Fifos and sockets; the upper tmpfs refuses devices (EPERM).
            t => dir.mknod(&name, t | perm, st.st_rdev, st.st_uid, st.st_gid)?,
        };
        copy_xattrs(lower, &up);
        let times = SetAttr {
            atime: Some(TimeSet::At(Timespec {
                tv_sec: st.st_atime,
                tv_nsec: st.st_atime_nsec,
            })),
            mtime: Some(TimeSet::At(Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec,
            })),
            ..Default::default()
        };
        up.setattr(&times)?;
        if temporary {
            if self.ftype == S_IFDIR {
                dir.rmdir(&name)?;
            } else {
                dir.unlink(&name)?;
            }
        }
        let ino = up.stat()?.st_ino;
        lock(&self.fs.origins).insert(ino, (st.st_dev, st.st_ino));
        self.upper
            .set(Upper { inode: up, ino })
            .map_err(|_| Errno::EIO)
    }

    /// Makes `up` this object's upper inode.
    pub(super) fn set_upper(&self, up: Arc<dyn Inode>) -> Result<(), Errno> {
        let ino = up.stat()?.st_ino;
        self.upper
            .set(Upper { inode: up, ino })
            .map_err(|_| Errno::EIO)
    }

    /// Copies this object and, for a directory, everything below it into the upper layer,
    /// and marks the copied directories opaque: the subtree no longer depends on the
    /// lower layer, so it can move anywhere (rename of a lower directory).
    pub(super) fn copy_up_tree(self: &Arc<Self>, ns: &MutexGuard<'_, ()>) -> Result<(), Errno> {
        self.copy_up(true, ns)?;
        if self.ftype != S_IFDIR {
            return Ok(());
        }
        let mut stack = vec![self.clone()];
        while let Some(dir) = stack.pop() {
            dir.copy_up(true, ns)?;
            let Some(lower) = dir.merged_lower().cloned() else {
                continue;
            };
            let hidden = dir.hidden_names();
            for e in list_dir(&lower)? {
                if hidden.contains(&e.name) {
                    continue;
                }
                let child = dir.lookup_child(&e.name, Some(ns))?;
                child.copy_up(true, ns)?;
                if child.ftype == S_IFDIR {
                    stack.push(child);
                }
            }
            let ino = dir.upper.get().ok_or(Errno::EIO)?.ino;
            self.fs.set_opaque(ino);
        }
        Ok(())
    }
}
