//! The dentry cache: a tree of named inodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use rvisor_syscalls::Errno;

use super::inode::Inode;

/// A name in the tree bound to an inode. The root's parent is itself (as `/..` is `/`).
pub struct Dentry {
    name: Vec<u8>,
    parent: Option<Weak<Dentry>>,
    inode: Arc<dyn Inode>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
}

impl Dentry {
    /// A new root dentry.
    pub fn new_root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry { name: b"/".to_vec(), parent: None, inode, children: Mutex::new(HashMap::new()) })
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The parent, or `None` at the root of the tree.
    pub fn parent(&self) -> Option<Arc<Dentry>> {
        self.parent.as_ref().and_then(Weak::upgrade)
    }

    /// The child `name`, from the cache or looked up in the filesystem.
    pub fn child(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Dentry>, Errno> {
        if let Some(d) = self.children.lock().map_err(|_| Errno::EIO)?.get(name) {
            return Ok(d.clone());
        }
        let inode = self.inode.lookup(name)?;
        let d = Arc::new(Dentry {
            name: name.to_vec(),
            parent: Some(Arc::downgrade(self)),
            inode,
            children: Mutex::new(HashMap::new()),
        });
        // Parents hold their children strongly (the cache); children point back weakly.
        let mut children = self.children.lock().map_err(|_| Errno::EIO)?;
        Ok(children.entry(name.to_vec()).or_insert(d).clone())
    }

    /// Mounts a filesystem whose root is `inode` on the child `name`, hiding what the
    /// parent's filesystem has there. The mount root's parent is this dentry, so `..` and
    /// path names work across the mount.
    pub fn mount_child(self: &Arc<Self>, name: &[u8], inode: Arc<dyn Inode>) -> Arc<Dentry> {
        let d = Arc::new(Dentry {
            name: name.to_vec(),
            parent: Some(Arc::downgrade(self)),
            inode,
            children: Mutex::new(HashMap::new()),
        });
        self.children.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_vec(), d.clone());
        d
    }

    /// The absolute path of this dentry below `root`, or `None` if it is not under `root`.
    pub fn path_from(self: &Arc<Self>, root: &Arc<Dentry>) -> Option<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = self.clone();
        while !Arc::ptr_eq(&cur, root) {
            parts.push(cur.name.clone());
            cur = cur.parent()?;
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
