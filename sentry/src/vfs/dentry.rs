//! The dentry cache: a tree of named inodes.
//!
//! The cache holds positive entries only (no negative lookups), so creating a name needs no
//! invalidation. Removing or renaming one must update the parent's cache
//! ([`Dentry::forget`], [`Dentry::move_child`]) after the filesystem changed. Each
//! directory's cache has a generation, bumped by every such update, so that a lookup that
//! raced with a change does not cache what it found before the change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rvisor_syscalls::flags::mount::MS_RDONLY;

use rvisor_syscalls::Errno;

use super::inode::Inode;

/// A name in the tree bound to an inode. The root's parent is itself (as `/..` is `/`).
pub struct Dentry {
    /// The name in the parent and the parent; both change when the dentry is renamed.
    link: Mutex<Link>,
    inode: Arc<dyn Inode>,
    /// Whether this is the root of a filesystem mounted on a name of its parent.
    mount_root: bool,
    /// The per-mount flags (`MS_RDONLY`, `MS_NODEV`, ...) of the mount this dentry is on:
    /// one cell per mount, created with the mount's root and shared by every dentry below
    /// it, so checking a mount flag costs one load, not a walk up the tree.
    mnt_flags: Arc<AtomicU64>,
    children: Mutex<Children>,
}

struct Link {
    name: Vec<u8>,
    parent: Option<Weak<Dentry>>,
}

#[derive(Default)]
struct Children {
    map: HashMap<Vec<u8>, Arc<Dentry>>,
    /// Bumped whenever a name is forgotten or moved.
    generation: u64,
}

/// Serialises [`Dentry::move_child`], the only code that holds two directories' cache
/// locks at once, so that it cannot deadlock with itself.
static MOVE_LOCK: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The cache stays structurally valid if a holder panicked: carry on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dentry {
    fn new(name: &[u8], parent: Option<Weak<Dentry>>, inode: Arc<dyn Inode>, mount_root: bool, mnt_flags: Arc<AtomicU64>) -> Arc<Dentry> {
        Arc::new(Dentry {
            link: Mutex::new(Link { name: name.to_vec(), parent }),
            inode,
            mount_root,
            mnt_flags,
            children: Mutex::new(Children::default()),
        })
    }

    /// A new root dentry.
    pub fn new_root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Dentry::new(b"/", None, inode, false, Arc::default())
    }

    /// The per-mount flags of the mount this dentry is on (0 outside the mount table).
    pub fn mount_flags(&self) -> u64 {
        self.mnt_flags.load(Ordering::Relaxed)
    }

    /// Sets the per-mount flags of the mount whose root this dentry is (the mount table
    /// calls this when it mounts or remounts).
    pub fn set_mount_flags(&self, flags: u64) {
        self.mnt_flags.store(flags, Ordering::Relaxed);
    }

    /// Whether `self` and `other` are on the same mount.
    pub fn same_mount_as(&self, other: &Dentry) -> bool {
        Arc::ptr_eq(&self.mnt_flags, &other.mnt_flags)
    }

    /// Whether changing this file is refused with EROFS: its filesystem is read-only or
    /// it is on a read-only mount (Linux's `mnt_want_write`).
    pub fn read_only(&self) -> bool {
        self.mount_flags() & MS_RDONLY != 0 || self.inode.read_only()
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    /// The current name in the parent.
    pub fn name(&self) -> Vec<u8> {
        lock(&self.link).name.clone()
    }

    /// The parent, or `None` at the root of the tree.
    pub fn parent(&self) -> Option<Arc<Dentry>> {
        lock(&self.link).parent.as_ref().and_then(Weak::upgrade)
    }

    /// Whether a filesystem is mounted here (its root hides the parent's entry).
    pub fn is_mount_root(&self) -> bool {
        self.mount_root
    }

    /// The child `name`, from the cache or looked up in the filesystem.
    pub fn child(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Dentry>, Errno> {
        let generation = {
            let c = lock(&self.children);
            if let Some(d) = c.map.get(name) {
                return Ok(d.clone());
            }
            c.generation
        };
        let inode = self.inode.lookup(name)?;
        let d = Dentry::new(name, Some(Arc::downgrade(self)), inode, false, self.mnt_flags.clone());
        // Parents hold their children strongly (the cache); children point back weakly.
        let mut c = lock(&self.children);
        if let Some(existing) = c.map.get(name) {
            return Ok(existing.clone());
        }
        if c.generation == generation && self.inode.cache_children() {
            c.map.insert(name.to_vec(), d.clone());
        }
        Ok(d)
    }

    /// The cached child `name`, without asking the filesystem.
    pub fn cached_child(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        lock(&self.children).map.get(name).cloned()
    }

    /// Caches `inode`, just created as `name` in this directory, and returns its dentry.
    pub fn instantiate(self: &Arc<Self>, name: &[u8], inode: Arc<dyn Inode>) -> Arc<Dentry> {
        let d = Dentry::new(name, Some(Arc::downgrade(self)), inode, false, self.mnt_flags.clone());
        let mut c = lock(&self.children);
        c.generation += 1;
        c.map.insert(name.to_vec(), d.clone());
        d
    }

    /// A dentry for `inode`, a file of this directory that no name leads to (O_TMPFILE):
    /// its path reads as this directory's plus `name`, and the cache never holds it.
    pub fn unnamed(self: &Arc<Self>, name: &[u8], inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Dentry::new(name, Some(Arc::downgrade(self)), inode, false, self.mnt_flags.clone())
    }

    /// Drops the cached child `name` (after the filesystem removed or replaced it). Open
    /// files keep their dentries; they are just no longer found by name.
    pub fn forget(&self, name: &[u8]) {
        let mut c = lock(&self.children);
        c.generation += 1;
        c.map.remove(name);
    }

    /// Updates the cache after the filesystem renamed `old_name` of `old_parent` to
    /// `new_name` of `new_parent` (swapped the two with `exchange`): a cached dentry of the
    /// old name moves with its whole subtree, so open directories and working directories
    /// inside it report their new paths; whatever the new name held before is forgotten.
    pub fn move_child(old_parent: &Arc<Dentry>, old_name: &[u8], new_parent: &Arc<Dentry>, new_name: &[u8], exchange: bool) {
        let _serial = lock(&MOVE_LOCK);
        let same = Arc::ptr_eq(old_parent, new_parent);
        let mut old_c = lock(&old_parent.children);
        let mut new_guard = if same { None } else { Some(lock(&new_parent.children)) };
        old_c.generation += 1;
        let moved = old_c.map.remove(old_name);
        let new_c: &mut Children = match new_guard.as_mut() {
            Some(g) => g,
            None => &mut old_c,
        };
        new_c.generation += 1;
        let displaced = new_c.map.remove(new_name);
        if let Some(d) = moved {
            *lock(&d.link) = Link { name: new_name.to_vec(), parent: Some(Arc::downgrade(new_parent)) };
            new_c.map.insert(new_name.to_vec(), d);
        }
        if let (true, Some(d)) = (exchange, displaced) {
            *lock(&d.link) = Link { name: old_name.to_vec(), parent: Some(Arc::downgrade(old_parent)) };
            old_c.map.insert(old_name.to_vec(), d);
        }
    }

    /// Mounts a filesystem whose root is `inode` on the child `name`, hiding what the
    /// parent's filesystem has there. The mount root's parent is this dentry, so `..` and
    /// path names work across the mount.
    pub fn mount_child(self: &Arc<Self>, name: &[u8], inode: Arc<dyn Inode>) -> Arc<Dentry> {
        let d = Dentry::new(name, Some(Arc::downgrade(self)), inode, true, Arc::default());
        let mut c = lock(&self.children);
        c.generation += 1;
        c.map.insert(name.to_vec(), d.clone());
        d
    }

    /// Puts back `d`, a mount root hidden by a mount on the same name that was just
    /// unmounted.
    pub fn restore_child(&self, name: &[u8], d: Arc<Dentry>) {
        let mut c = lock(&self.children);
        c.generation += 1;
        c.map.insert(name.to_vec(), d);
    }

    /// Whether `self` is `other` or one of its ancestors.
    pub fn is_ancestor_of(self: &Arc<Self>, other: &Arc<Dentry>) -> bool {
        let mut cur = Some(other.clone());
        while let Some(d) = cur {
            if Arc::ptr_eq(&d, self) {
                return true;
            }
            cur = d.parent();
        }
        false
    }

    /// The absolute path of this dentry below `root`, or `None` if it is not under `root`.
    pub fn path_from(self: &Arc<Self>, root: &Arc<Dentry>) -> Option<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = self.clone();
        while !Arc::ptr_eq(&cur, root) {
            let (name, parent) = {
                let l = lock(&cur.link);
                (l.name.clone(), l.parent.as_ref().and_then(Weak::upgrade))
            };
            parts.push(name);
            cur = parent?;
        }
        if parts.is_empty() {
            return Some(b"/".to_vec());
        }
        let mut path = Vec::new();
        for p in parts.iter().rev() {
            path.push(b'/');
            path.extend_from_slice(p);
        }
        Some(path)
    }
}
