//! Looking up names in merged directories and listing them.

use std::collections::HashSet;
use std::sync::{Arc, MutexGuard};

use rvisor_syscalls::flags::mode::S_IFDIR;
use rvisor_syscalls::flags::open::O_RDONLY;
use rvisor_syscalls::Errno;

use super::{lock, Link, OverlayInode, Upper, MAX_LOWER_MISSING};
use crate::vfs::inode::{DirEntry, Inode};

/// Bytes of records asked for per getdents while listing a whole layer directory.
const LIST_CHUNK: usize = 64 * 1024;
/// The most entries a layer directory may list (a guard against a lower layer that never
/// reaches its end).
const MAX_LIST_ENTRIES: usize = 1 << 24;

/// Every entry of the layer directory `dir`, without `.` and `..`.
pub(super) fn list_dir(dir: &Arc<dyn Inode>) -> Result<Vec<DirEntry>, Errno> {
    let f = dir.open(O_RDONLY)?;
    let mut out = Vec::new();
    let mut offset = 0u64;
    loop {
        let batch = f.getdents(offset, LIST_CHUNK)?;
        let Some(last) = batch.last() else { break };
        if last.next_offset == offset {
            break;
        }
        offset = last.next_offset;
        out.extend(
            batch
                .into_iter()
                .filter(|e| e.name != b"." && e.name != b".."),
        );
        if out.len() > MAX_LIST_ENTRIES {
            return Err(Errno::EIO);
        }
    }
    Ok(out)
}

impl OverlayInode {
    /// The child `name`: the live object of that name, or a new one resolved from the
    /// layers. `ns`: the caller holds the overlay's namespace lock.
    pub(super) fn lookup_child(
        self: &Arc<Self>,
        name: &[u8],
        ns: Option<&MutexGuard<'_, ()>>,
    ) -> Result<Arc<OverlayInode>, Errno> {
        if self.ftype != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let generation = {
            let c = lock(&self.children);
            if let Some(n) = c.live(name) {
                return Ok(n);
            }
            c.generation
        };
        if ns.is_some() {
            return self.resolve_and_cache(name);
        }
        let found = self.resolve(name);
        {
            let mut c = lock(&self.children);
            if let Some(n) = c.live(name) {
                return Ok(n);
            }
            if c.generation == generation {
                let n = found?;
                c.insert(name, &n);
                return Ok(n);
            }
        }
        // The directory changed while we looked: look again with changes excluded.
        let _ns = self.fs.ns();
        self.resolve_and_cache(name)
    }

    /// Resolves and caches `name` (under the namespace lock).
    fn resolve_and_cache(self: &Arc<Self>, name: &[u8]) -> Result<Arc<OverlayInode>, Errno> {
        if let Some(n) = lock(&self.children).live(name) {
            return Ok(n);
        }
        let n = self.resolve(name)?;
        let mut c = lock(&self.children);
        if let Some(existing) = c.live(name) {
            return Ok(existing);
        }
        c.insert(name, &n);
        Ok(n)
    }

    /// A new object for the child `name` from the two layers.
    fn resolve(self: &Arc<Self>, name: &[u8]) -> Result<Arc<OverlayInode>, Errno> {
        if self.is_detached() {
            return Err(Errno::ENOENT);
        }
        let link = Link::Named {
            parent: self.clone(),
            name: name.to_vec(),
        };
        let mut hidden = false;
        if let Some(u) = self.upper.get() {
            let (h, opaque) = self.fs.hidden(u.ino, name);
            hidden = h || opaque;
            match u.inode.lookup(name) {
                Ok(child) => {
                    let ftype = child.file_type();
                    let ino = child.stat()?.st_ino;
                    // Only directories merge with the lower layer; a copied-up file's
                    // identity comes from the origin table.
                    let lower = if ftype == S_IFDIR && !hidden && !self.fs.opaque(ino) {
                        self.lower_child(name)?.filter(|l| l.is_dir())
                    } else {
                        None
                    };
                    let node = OverlayInode::new(&self.fs, ftype, lower, link);
                    let _ = node.upper.set(Upper { inode: child, ino });
                    return Ok(node);
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        if hidden {
            return Err(Errno::ENOENT);
        }
        let lower = self.lower_child(name)?.ok_or(Errno::ENOENT)?;
        Ok(OverlayInode::new(
            &self.fs,
            lower.file_type(),
            Some(lower),
            link,
        ))
    }

    /// The lower directory's child `name`, if any (whether hidden or not).
    pub(super) fn lower_child(&self, name: &[u8]) -> Result<Option<Arc<dyn Inode>>, Errno> {
        let Some(l) = &self.lower else {
            return Ok(None);
        };
        if lock(&self.lower_missing).contains(name) {
            return Ok(None);
        }
        match l.lookup(name) {
            Ok(c) => Ok(Some(c)),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                let mut missing = lock(&self.lower_missing);
                if missing.len() >= MAX_LOWER_MISSING {
                    missing.clear();
                }
                missing.insert(name.to_vec());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the merged lower directory has `name` (so that removing or replacing the
    /// name must hide it).
    pub(super) fn lower_has(&self, name: &[u8]) -> Result<bool, Errno> {
        if self.merged_lower().is_none() {
            return Ok(false);
        }
        Ok(self.lower_child(name)?.is_some())
    }

    /// The hidden names of this (upper) directory.
    pub(super) fn hidden_names(&self) -> HashSet<Vec<u8>> {
        let Some(u) = self.upper.get() else {
            return HashSet::new();
        };
        lock(&self.fs.meta)
            .get(&u.ino)
            .map(|m| m.hidden.clone())
            .unwrap_or_default()
    }

    /// The merged listing, without `.` and `..`: upper entries first, then the lower
    /// entries that are neither hidden nor shadowed by an upper entry.
    pub(super) fn merged_entries(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut out = Vec::new();
        if self.is_detached() {
            return Ok(out);
        }
        let mut names = HashSet::new();
        if let Some(u) = self.upper.get() {
            for mut e in list_dir(&u.inode)? {
                e.ino = self.fs.identity_of_upper(e.ino).1;
                names.insert(e.name.clone());
                out.push(e);
            }
        }
        if let Some(l) = self.merged_lower() {
            let hidden = self.hidden_names();
            for e in list_dir(l)? {
                if !hidden.contains(&e.name) && !names.contains(&e.name) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Whether this directory has no entry in the merged view (rmdir, rename over it).
    pub(super) fn merged_is_empty(&self) -> Result<bool, Errno> {
        if let Some(u) = self.upper.get() {
            if !list_dir(&u.inode)?.is_empty() {
                return Ok(false);
            }
        }
        if let Some(l) = self.merged_lower() {
            let hidden = self.hidden_names();
            if list_dir(l)?.iter().any(|e| !hidden.contains(&e.name)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether this directory is `other` or one of its ancestors.
    pub(super) fn is_ancestor_of(self: &Arc<Self>, other: &Arc<OverlayInode>) -> bool {
        let mut cur = other.clone();
        loop {
            if Arc::ptr_eq(&cur, self) {
                return true;
            }
            match cur.link() {
                Link::Named { parent, .. } => cur = parent,
                _ => return false,
            }
        }
    }
}
