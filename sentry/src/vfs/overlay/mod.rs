//! overlay: the sandbox's root filesystem as a writable in-memory upper layer (a tmpfs)
//! over a read-only lower layer (the gofer's view of the host tree).
//!
//! The host tree is never changed: every change lands in the upper layer.
//! - **Lookup** merges the layers: an upper entry wins; a *hidden* name (a whiteout) hides
//!   the lower entry of that name; a directory existing in both layers is *merged* (its
//!   listing is both listings, deduplicated), unless it is *opaque*.
//! - **Copy-up**: the first change of a lower object (open for writing, truncate, chmod,
//!   chown, utimes, link, rename, creating or removing a child of a lower directory) first
//!   copies it, and its parent chain, into the upper layer, keeping mode, owner and
//!   atime/mtime; a regular file's data is streamed in bounded chunks (holes stay holes).
//! - **Whiteouts and opaque flags** are kept in memory per upper directory (keyed by its
//!   upper inode number), not as character devices in the upper layer: the upper layer
//!   lives exactly as long as the sandbox, so nothing has to persist them.
//! - **Renaming a lower directory** copies its whole subtree up, renames it in the upper
//!   layer, hides the old name and marks the moved directory opaque.
//! - **Identity**: a copied-up object keeps reporting the `st_dev`/`st_ino` of the lower
//!   object it came from, so a program that stat'ed a file and then wrote it sees the same
//!   inode. Objects that exist only in the upper layer report the lower root's `st_dev`
//!   (so `find -xdev`, `du -x` and `rm --one-file-system` treat the root as one filesystem)
//!   and their upper inode number with bit 63 set, which lower filesystems do not use.
//!   Merged directories report `st_nlink` 1, as Linux's overlayfs does, so that tools do
//!   not derive subdirectory counts from it.
//! - **Hard links** of lower files are copied up per name: after a write through one name,
//!   the other names still show the old contents (Linux's overlayfs without `index=on`
//!   behaves the same).
//! - **Open files**: a read-only open of a lower-only file opens the lower file (the gofer's
//!   read path, page cache and mmap); a write open copies up and opens the upper file. A
//!   description opened before a copy-up keeps reading the lower file.
//! - **statfs** reports the upper layer's space (where writes land), with overlayfs's magic.
//! - Special files (fifos, sockets, devices) of the lower layer cannot be copied up (the
//!   upper tmpfs has none): changing them fails with EPERM.
//!
//! # Locking
//! `Overlay::ns` serialises every namespace change and every copy-up, so they see and
//! change both layers consistently. Lookups do not take it: they resolve without locks and
//! cache the result only if the directory's generation did not move meanwhile, retrying
//! under `ns` otherwise. Order: `ns` → a directory's child cache → the leaf tables
//! (`meta`, `origins`) and an inode's link.

mod copy_up;
mod file;
mod lookup;
mod ops;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use rvisor_syscalls::flags::fsmagic::OVERLAYFS_SUPER_MAGIC;
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use rvisor_syscalls::flags::open::{O_ACCMODE, O_APPEND, O_CREAT, O_RDONLY, O_TRUNC};
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use super::inode::{Inode, SetAttr};
use super::tmpfs::Tmpfs;
use crate::mm::MemoryFile;
use file::{OverlayDirFile, OverlayFile};
use ops::NewNode;

/// Bit set in the inode numbers of objects that exist only in the upper layer.
const UPPER_INO_BIT: u64 = 1 << 63;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every table stays structurally valid if a holder panicked: carry on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the overlay remembers about one upper directory.
#[derive(Default)]
struct DirMeta {
    /// Names whose lower entries are hidden (whiteouts). A name may also exist in the
    /// upper layer: it is then a new object, unrelated to the lower one.
    hidden: HashSet<Vec<u8>>,
    /// The lower directory is not merged at all.
    opaque: bool,
}

/// One overlay mount.
pub struct Overlay {
    /// The lower root's device, reported by objects that exist only in the upper layer.
    lower_dev: u64,
    upper_root: Arc<dyn Inode>,
    /// Serialises namespace changes and copy-ups (see the module docs).
    ns: Mutex<()>,
    /// Whiteouts and opaque flags, by upper directory inode number.
    meta: Mutex<HashMap<u64, DirMeta>>,
    /// The lower (st_dev, st_ino) of each copied-up object, by upper inode number.
    origins: Mutex<HashMap<u64, (u64, u64)>>,
    /// Names of temporary copies of unlinked files.
    temp_seq: AtomicU64,
}

impl Overlay {
    /// An overlay of a new tmpfs (pages in `mf`) over `lower`, a directory that the overlay
    /// never changes. Returns the root.
    pub fn new_root(
        lower: Arc<dyn Inode>,
        mf: Arc<MemoryFile>,
    ) -> Result<Arc<OverlayInode>, Errno> {
        if !lower.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let st = lower.stat()?;
        let upper_root: Arc<dyn Inode> =
            Tmpfs::new_root(mf, st.st_mode & 0o7777, st.st_uid, st.st_gid);
        let upper_ino = upper_root.stat()?.st_ino;
        let fs = Arc::new(Overlay {
            lower_dev: st.st_dev,
            upper_root: upper_root.clone(),
            ns: Mutex::new(()),
            meta: Mutex::new(HashMap::new()),
            origins: Mutex::new(HashMap::from([(upper_ino, (st.st_dev, st.st_ino))])),
            temp_seq: AtomicU64::new(0),
        });
        let root = OverlayInode::new(&fs, S_IFDIR, Some(lower), Link::Root);
        let _ = root.upper.set(Upper {
            inode: upper_root,
            ino: upper_ino,
        });
        Ok(root)
    }

    fn ns(&self) -> MutexGuard<'_, ()> {
        lock(&self.ns)
    }

    /// Whether the lower entry `name` of the upper directory `upper_ino` is hidden, and
    /// whether that directory is opaque.
    fn hidden(&self, upper_ino: u64, name: &[u8]) -> (bool, bool) {
        lock(&self.meta)
            .get(&upper_ino)
            .map_or((false, false), |m| (m.hidden.contains(name), m.opaque))
    }

    fn opaque(&self, upper_ino: u64) -> bool {
        lock(&self.meta).get(&upper_ino).is_some_and(|m| m.opaque)
    }

    fn hide(&self, upper_ino: u64, name: &[u8]) {
        lock(&self.meta)
            .entry(upper_ino)
            .or_default()
            .hidden
            .insert(name.to_vec());
    }

    fn set_opaque(&self, upper_ino: u64) {
        lock(&self.meta).entry(upper_ino).or_default().opaque = true;
    }

    /// The (st_dev, st_ino) an upper object reports.
    fn identity_of_upper(&self, upper_ino: u64) -> (u64, u64) {
        lock(&self.origins)
            .get(&upper_ino)
            .copied()
            .unwrap_or((self.lower_dev, UPPER_INO_BIT | upper_ino))
    }
}

/// An object's upper-layer inode, once it has one.
struct Upper {
    inode: Arc<dyn Inode>,
    /// Its inode number in the upper tmpfs (the key of the overlay's tables).
    ino: u64,
}

/// Where an overlay object is in the tree: the copy-up chain follows it.
#[derive(Clone)]
enum Link {
    Root,
    Named {
        parent: Arc<OverlayInode>,
        name: Vec<u8>,
    },
    /// Removed (unlinked, rmdir'ed or replaced by a rename).
    Detached,
}

/// A directory's cache of the overlay objects of its children, so that one name has one
/// object (its copy-up state) while anything holds it.
#[derive(Default)]
struct Children {
    map: HashMap<Vec<u8>, Weak<OverlayInode>>,
    /// Bumped by every namespace change in the directory.
    generation: u64,
    /// The map's size after the last pruning of dead entries.
    pruned_len: usize,
}

impl Children {
    fn live(&self, name: &[u8]) -> Option<Arc<OverlayInode>> {
        self.map.get(name).and_then(Weak::upgrade)
    }

    fn insert(&mut self, name: &[u8], node: &Arc<OverlayInode>) {
        if self.map.len() >= 64 && self.map.len() >= 2 * self.pruned_len {
            self.map.retain(|_, w| w.strong_count() > 0);
            self.pruned_len = self.map.len();
        }
        self.map.insert(name.to_vec(), Arc::downgrade(node));
    }

    fn remove(&mut self, name: &[u8]) {
        self.generation += 1;
        self.map.remove(name);
    }
}

/// A file, directory or symlink of an overlay.
pub struct OverlayInode {
    fs: Arc<Overlay>,
    me: Weak<OverlayInode>,
    ftype: u32,
    /// The lower object at this name when the object was looked up (`None`: upper only).
    lower: Option<Arc<dyn Inode>>,
    /// Set once, by a copy-up or when the object is created in the upper layer.
    upper: OnceLock<Upper>,
    link: Mutex<Link>,
    children: Mutex<Children>,
    /// Names the lower directory was found not to have. The lower layer never changes
    /// under the sandbox, so creating, removing and missing names in a directory of the
    /// root cost no gofer round trip after the first (bounded: cleared when it fills).
    lower_missing: Mutex<HashSet<Vec<u8>>>,
}

/// Most names one directory remembers as missing from the lower layer.
const MAX_LOWER_MISSING: usize = 4096;

impl OverlayInode {
    fn new(
        fs: &Arc<Overlay>,
        ftype: u32,
        lower: Option<Arc<dyn Inode>>,
        link: Link,
    ) -> Arc<OverlayInode> {
        Arc::new_cyclic(|me| OverlayInode {
            fs: fs.clone(),
            me: me.clone(),
            ftype,
            lower,
            upper: OnceLock::new(),
            link: Mutex::new(link),
            children: Mutex::new(Children::default()),
            lower_missing: Mutex::new(HashSet::new()),
        })
    }

    fn arc(&self) -> Result<Arc<OverlayInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    fn link(&self) -> Link {
        lock(&self.link).clone()
    }

    fn set_link(&self, link: Link) {
        *lock(&self.link) = link;
    }

    fn is_detached(&self) -> bool {
        matches!(*lock(&self.link), Link::Detached)
    }

    fn upper_inode(&self) -> Option<&Arc<dyn Inode>> {
        self.upper.get().map(|u| &u.inode)
    }

    /// The lower directory merged into this one: `None` for upper-only and opaque
    /// directories.
    fn merged_lower(&self) -> Option<&Arc<dyn Inode>> {
        let lower = self.lower.as_ref()?;
        if let Some(u) = self.upper.get() {
            if self.fs.opaque(u.ino) {
                return None;
            }
        }
        Some(lower)
    }

    /// The (st_dev, st_ino) this object reports.
    fn identity(&self) -> Result<(u64, u64), Errno> {
        match (self.upper.get(), &self.lower) {
            (Some(u), _) => Ok(self.fs.identity_of_upper(u.ino)),
            (None, Some(l)) => {
                let st = l.cached_stat()?;
                Ok((st.st_dev, st.st_ino))
            }
            (None, None) => Err(Errno::EIO),
        }
    }

    /// An upper object's attributes as the overlay reports them.
    fn fix_stat(&self, mut st: Stat) -> Stat {
        if let Some(u) = self.upper.get() {
            (st.st_dev, st.st_ino) = self.fs.identity_of_upper(u.ino);
            if self.ftype == S_IFDIR && self.merged_lower().is_some() {
                st.st_nlink = 1;
            }
        }
        st
    }

    /// The parent's identity, for `..` in listings.
    fn parent_identity(&self) -> Result<(u64, u64), Errno> {
        match self.link() {
            Link::Named { parent, .. } => parent.identity(),
            _ => self.identity(),
        }
    }
}

impl Inode for OverlayInode {
    fn stat(&self) -> Result<Stat, Errno> {
        match (self.upper.get(), &self.lower) {
            (Some(u), _) => Ok(self.fix_stat(u.inode.stat()?)),
            (None, Some(l)) => l.stat(),
            (None, None) => Err(Errno::EIO),
        }
    }

    fn cached_stat(&self) -> Result<Stat, Errno> {
        match (self.upper.get(), &self.lower) {
            (Some(u), _) => Ok(self.fix_stat(u.inode.stat()?)),
            (None, Some(l)) => l.cached_stat(),
            (None, None) => Err(Errno::EIO),
        }
    }

    fn file_type(&self) -> u32 {
        self.ftype
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.arc()?.lookup_child(name, None)?)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match (self.upper_inode(), &self.lower) {
            (Some(u), _) => u.readlink(),
            (None, Some(l)) => l.readlink(),
            (None, None) => Err(Errno::EIO),
        }
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        let me = self.arc()?;
        if self.ftype == S_IFDIR {
            return Ok(Arc::new(OverlayDirFile::new(me)));
        }
        let writes = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
        if self.upper.get().is_none() && writes && self.ftype == S_IFREG {
            let ns = self.fs.ns();
            // The data is copied unless the open truncates it anyway.
            me.copy_up(flags & O_TRUNC == 0, &ns)?;
        }
        match (self.upper_inode(), &self.lower) {
            (Some(u), _) => Ok(Arc::new(OverlayFile::new(me.clone(), u.open(flags)?))),
            // A plain read (or a special file): the lower file itself.
            (None, Some(l)) => l.open(flags & !(O_APPEND | O_CREAT | O_TRUNC)),
            (None, None) => Err(Errno::EIO),
        }
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        let mut s = self.fs.upper_root.statfs()?;
        s.f_type = OVERLAYFS_SUPER_MAGIC;
        Ok(s)
    }

    fn read_only(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self
            .arc()?
            .add_child(name, S_IFREG | (mode & 0o7777), uid, gid, NewNode::Plain)?)
    }

    fn create_unnamed(&self, mode: u32, uid: u32, gid: u32, linkable: bool) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.arc()?.add_unnamed(mode & 0o7777, uid, gid, linkable)?)
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self
            .arc()?
            .add_child(name, S_IFDIR | (mode & 0o7777), uid, gid, NewNode::Plain)?)
    }

    fn symlink(
        &self,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self
            .arc()?
            .add_child(name, S_IFLNK | 0o777, uid, gid, NewNode::Symlink(target))?)
    }

    fn mknod(
        &self,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        let mode = if mode & S_IFMT == 0 {
            mode | S_IFREG
        } else {
            mode
        };
        let what = if mode & S_IFMT == S_IFREG {
            NewNode::Plain
        } else {
            NewNode::Node(rdev)
        };
        if mode & S_IFMT == S_IFDIR || mode & S_IFMT == S_IFLNK {
            return Err(Errno::EINVAL);
        }
        Ok(self.arc()?.add_child(name, mode, uid, gid, what)?)
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        match (self.upper_inode(), &self.lower) {
            (Some(u), _) => u.getxattr(name),
            (None, Some(l)) => l.getxattr(name),
            (None, None) => Err(Errno::EIO),
        }
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        self.upper_for_change(true)?.setxattr(name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        match (self.upper_inode(), &self.lower) {
            (Some(u), _) => u.listxattr(),
            (None, Some(l)) => l.listxattr(),
            (None, None) => Err(Errno::EIO),
        }
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        self.upper_for_change(true)?.removexattr(name)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let target = self.same_fs(target)?.arc()?;
        self.arc()?.add_link(name, &target)
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.arc()?.remove_child(name, false)
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.arc()?.remove_child(name, true)
    }

    fn rename(
        &self,
        old_name: &[u8],
        new_dir: &Arc<dyn Inode>,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let nd = self.same_fs(new_dir)?.arc()?;
        self.arc()?.rename_child(old_name, &nd, new_name, flags)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        self.upper_for_change(size != 0)?.truncate(size)
    }

    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<(), Errno> {
        self.upper_for_change(true)?.fallocate(mode, offset, len)
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        self.upper_for_change(true)?.setattr(attr)
    }
}

impl OverlayInode {
    /// `other` as an object of this same overlay, else EXDEV.
    fn same_fs<'a>(&self, other: &'a Arc<dyn Inode>) -> Result<&'a OverlayInode, Errno> {
        match other
            .as_any()
            .and_then(|a| a.downcast_ref::<OverlayInode>())
        {
            Some(o) if Arc::ptr_eq(&o.fs, &self.fs) => Ok(o),
            _ => Err(Errno::EXDEV),
        }
    }

    /// The upper inode to change, copying this object up first (with its data when
    /// `data`).
    fn upper_for_change(&self, data: bool) -> Result<Arc<dyn Inode>, Errno> {
        if let Some(u) = self.upper_inode() {
            return Ok(u.clone());
        }
        let me = self.arc()?;
        let ns = self.fs.ns();
        Ok(me.copy_up(data, &ns)?.clone())
    }
}

#[cfg(test)]
mod tests;
