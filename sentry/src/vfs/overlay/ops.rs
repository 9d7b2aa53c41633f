//! Namespace changes: create, link, unlink, rmdir and rename over the two layers.

use std::sync::Arc;

use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use rvisor_syscalls::Errno;

use super::{lock, Link, OverlayInode};
use crate::vfs::inode::rename_flags::{RENAME_EXCHANGE, RENAME_NOREPLACE};

/// What [`OverlayInode::add_child`] makes besides the type in its mode.
#[derive(Clone, Copy)]
pub(super) enum NewNode<'a> {
    /// A regular file or a directory.
    Plain,
    Symlink(&'a [u8]),
    /// mknod(2) with this device number.
    Node(u64),
}

impl OverlayInode {
    /// Creates the child `name` of type and permissions `mode` in the upper layer (`what`
    /// says a symlink's target or a device number). Over a hidden lower name it is a new
    /// object: a new directory does not merge with the hidden lower one.
    pub(super) fn add_child(
        self: &Arc<Self>,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        what: NewNode<'_>,
    ) -> Result<Arc<OverlayInode>, Errno> {
        let ns = self.fs.ns();
        if self.is_detached() {
            return Err(Errno::ENOENT);
        }
        match self.lookup_child(name, Some(&ns)) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let dir = self.copy_up(true, &ns)?.clone();
        let perm = mode & 0o7777;
        let up = match (mode & S_IFMT, what) {
            (S_IFDIR, _) => dir.mkdir(name, perm, uid, gid)?,
            (S_IFLNK, NewNode::Symlink(target)) => dir.symlink(name, target, uid, gid)?,
            (S_IFREG, NewNode::Plain) => dir.create(name, perm, uid, gid)?,
            (t, NewNode::Node(rdev)) => dir.mknod(name, t | perm, rdev, uid, gid)?,
            _ => return Err(Errno::EINVAL),
        };
        let ftype = up.file_type();
        let node = OverlayInode::new(
            &self.fs,
            ftype,
            None,
            Link::Named {
                parent: self.clone(),
                name: name.to_vec(),
            },
        );
        node.set_upper(up)?;
        let mut c = lock(&self.children);
        c.generation += 1;
        c.insert(name, &node);
        Ok(node)
    }

    /// A regular file without a name (O_TMPFILE), created in the upper layer: this
    /// directory is copied up first, as for any file created in it.
    pub(super) fn add_unnamed(
        self: &Arc<Self>,
        perm: u32,
        uid: u32,
        gid: u32,
        linkable: bool,
    ) -> Result<Arc<OverlayInode>, Errno> {
        let ns = self.fs.ns();
        if self.is_detached() {
            return Err(Errno::ENOENT);
        }
        let dir = self.copy_up(true, &ns)?.clone();
        let up = dir.create_unnamed(perm, uid, gid, linkable)?;
        let node = OverlayInode::new(&self.fs, S_IFREG, None, Link::Detached);
        node.set_upper(up)?;
        Ok(node)
    }

    /// Adds the name `name` for `target` (copied up first: hard links of lower files are
    /// separate copies per name until linked in the upper layer).
    pub(super) fn add_link(
        self: &Arc<Self>,
        name: &[u8],
        target: &Arc<OverlayInode>,
    ) -> Result<(), Errno> {
        if target.ftype == S_IFDIR {
            return Err(Errno::EPERM);
        }
        let ns = self.fs.ns();
        if self.is_detached() || (target.is_detached() && target.upper.get().is_none()) {
            return Err(Errno::ENOENT);
        }
        match self.lookup_child(name, Some(&ns)) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let up = target.copy_up(true, &ns)?.clone();
        let dir = self.copy_up(true, &ns)?.clone();
        dir.link(name, &up)?;
        let node = OverlayInode::new(
            &self.fs,
            target.ftype,
            None,
            Link::Named {
                parent: self.clone(),
                name: name.to_vec(),
            },
        );
        node.set_upper(up)?;
        let mut c = lock(&self.children);
        c.generation += 1;
        c.insert(name, &node);
        Ok(())
    }

    /// unlink (`want_dir` false) or rmdir (`want_dir` true) of the child `name`: its upper
    /// object goes, and a lower object of that name is hidden.
    pub(super) fn remove_child(self: &Arc<Self>, name: &[u8], want_dir: bool) -> Result<(), Errno> {
        let ns = self.fs.ns();
        let child = self.lookup_child(name, Some(&ns))?;
        let is_dir = child.ftype == S_IFDIR;
        if want_dir && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !want_dir && is_dir {
            return Err(Errno::EISDIR);
        }
        if is_dir && !child.merged_is_empty()? {
            return Err(Errno::ENOTEMPTY);
        }
        let hide = self.lower_has(name)?;
        let dir = self.copy_up(true, &ns)?.clone();
        if let Some(u) = child.upper.get() {
            if is_dir {
                dir.rmdir(name)?;
                lock(&self.fs.meta).remove(&u.ino);
            } else {
                dir.unlink(name)?;
            }
        }
        if hide {
            self.fs.hide(self.upper.get().ok_or(Errno::EIO)?.ino, name);
        }
        child.set_link(Link::Detached);
        lock(&self.children).remove(name);
        Ok(())
    }

    /// rename(2) of the child `old_name` to `new_name` of `nd`. A directory is first
    /// copied up whole (see [`Self::copy_up_tree`]); the old name's lower object is hidden.
    pub(super) fn rename_child(
        self: &Arc<Self>,
        old_name: &[u8],
        nd: &Arc<OverlayInode>,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
            // RENAME_WHITEOUT (and unknown flags): whiteouts are the overlay's own business.
            return Err(Errno::EINVAL);
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        let ns = self.fs.ns();
        if self.is_detached() || nd.is_detached() {
            return Err(Errno::ENOENT);
        }
        let src = self.lookup_child(old_name, Some(&ns))?;
        let dst = match nd.lookup_child(new_name, Some(&ns)) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        match &dst {
            Some(d) => {
                let same_upper = matches!((src.upper.get(), d.upper.get()), (Some(a), Some(b)) if a.ino == b.ino);
                if Arc::ptr_eq(&src, d) || same_upper {
                    // Two names of one file: nothing to do (POSIX).
                    return Ok(());
                }
                if flags & RENAME_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
            }
            None if exchange => return Err(Errno::ENOENT),
            None => {}
        }
        let src_dir = src.ftype == S_IFDIR;
        let dst_dir = dst.as_ref().is_some_and(|d| d.ftype == S_IFDIR);
        if src_dir && src.is_ancestor_of(nd) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = &dst {
            if exchange {
                if dst_dir && d.is_ancestor_of(self) {
                    return Err(Errno::EINVAL);
                }
            } else if src_dir && !dst_dir {
                return Err(Errno::ENOTDIR);
            } else if !src_dir && dst_dir {
                return Err(Errno::EISDIR);
            } else if dst_dir && (d.is_ancestor_of(self) || !d.merged_is_empty()?) {
                return Err(Errno::ENOTEMPTY);
            }
        }
        let hide_old = self.lower_has(old_name)?;
        let hide_new = nd.lower_has(new_name)?;
        let old_upper = self.copy_up(true, &ns)?.clone();
        let new_upper = nd.copy_up(true, &ns)?.clone();
        src.copy_up_tree(&ns)?;
        if let (true, Some(d)) = (exchange, &dst) {
            d.copy_up_tree(&ns)?;
        }
        // A target that exists only in the lower layer has no upper name to replace: the
        // upper rename creates the name, and hiding the lower one completes the replacement.
        old_upper.rename(old_name, &new_upper, new_name, flags)?;
        let (old_ino, new_ino) = (
            self.upper.get().ok_or(Errno::EIO)?.ino,
            nd.upper.get().ok_or(Errno::EIO)?.ino,
        );
        if hide_old {
            self.fs.hide(old_ino, old_name);
        }
        if hide_new {
            self.fs.hide(new_ino, new_name);
        }
        if let (false, Some(d)) = (exchange, &dst) {
            if let (true, Some(u)) = (dst_dir, d.upper.get()) {
                lock(&self.fs.meta).remove(&u.ino);
            }
            d.set_link(Link::Detached);
        }
        self.move_cached(
            old_name,
            nd,
            new_name,
            &src,
            if exchange { dst.as_ref() } else { None },
        );
        Ok(())
    }

    /// Updates the child caches and links after a rename of `src` (swapped with
    /// `exchanged`).
    fn move_cached(
        self: &Arc<Self>,
        old_name: &[u8],
        nd: &Arc<OverlayInode>,
        new_name: &[u8],
        src: &Arc<OverlayInode>,
        exchanged: Option<&Arc<OverlayInode>>,
    ) {
        {
            let mut oc = lock(&self.children);
            oc.remove(old_name);
            if Arc::ptr_eq(self, nd) {
                oc.remove(new_name);
                oc.insert(new_name, src);
                if let Some(d) = exchanged {
                    oc.insert(old_name, d);
                }
            } else {
                if let Some(d) = exchanged {
                    oc.insert(old_name, d);
                }
                drop(oc);
                let mut nc = lock(&nd.children);
                nc.remove(new_name);
                nc.insert(new_name, src);
            }
        }
        src.set_link(Link::Named {
            parent: nd.clone(),
            name: new_name.to_vec(),
        });
        if let Some(d) = exchanged {
            d.set_link(Link::Named {
                parent: self.clone(),
                name: old_name.to_vec(),
            });
        }
    }
}
