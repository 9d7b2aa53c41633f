//! Path walks.

use std::collections::VecDeque;
use std::sync::Arc;

use rvisor_syscalls::flags::limits::{NAME_MAX, SYMLOOP_MAX};
use rvisor_syscalls::Errno;

use super::dentry::Dentry;

/// The mount tree of a sandbox (one root filesystem for now).
pub struct Vfs {
    root: Arc<Dentry>,
    mounts: super::mount::MountTable,
}

/// Where a walk starts and what it may not climb out of.
pub struct Lookup<'a> {
    /// The task's root: `/` and the ceiling for `..`.
    pub root: &'a Arc<Dentry>,
    /// The directory relative paths start from (cwd or a dirfd's directory).
    pub start: &'a Arc<Dentry>,
    /// Whether a symlink in the last component is followed.
    pub follow_last: bool,
    /// Whose search permission every directory crossed is checked against (EACCES): the
    /// calling task's credentials for every walk a syscall asks for, `None` for the
    /// kernel's own walks. See [`super::permission`].
    pub creds: Option<&'a crate::kernel::task::Creds>,
}

impl Vfs {
    /// A mount tree whose root mount is `root` (described as "rootfs" until
    /// [`super::mount::MountTable::set_root_spec`] says more).
    pub fn new(root: Arc<Dentry>) -> Vfs {
        let mounts = super::mount::MountTable::new(root.clone(), super::mount::MountSpec::new("rootfs", "none", 0));
        Vfs { root, mounts }
    }

    /// The mount table.
    pub fn mounts(&self) -> &super::mount::MountTable {
        &self.mounts
    }

    /// The root of the mount tree.
    pub fn root(&self) -> &Arc<Dentry> {
        &self.root
    }

    /// Resolves `path` to a dentry, following symlinks in every component but the last
    /// (and in the last too when `follow_last` is set or the path ends with `/`).
    pub fn resolve(&self, at: &Lookup<'_>, path: &[u8]) -> Result<Arc<Dentry>, Errno> {
        self.resolve_scoped(at, path, 0)
    }

    /// [`Self::resolve`] with openat2's `RESOLVE_*` restrictions (RESOLVE_IN_ROOT is the
    /// caller's: it passes the start directory as the root).
    pub fn resolve_scoped(&self, at: &Lookup<'_>, path: &[u8], resolve: u64) -> Result<Arc<Dentry>, Errno> {
        use rvisor_syscalls::flags::resolve::*;
        let beneath = resolve & RESOLVE_BENEATH != 0;
        let no_xdev = resolve & RESOLVE_NO_XDEV != 0;
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if beneath && path[0] == b'/' {
            return Err(Errno::EXDEV);
        }
        let trailing_slash = path.ends_with(b"/");
        let mut cur = if path[0] == b'/' { at.root.clone() } else { at.start.clone() };
        let mut parts: VecDeque<Vec<u8>> = split(path)?;
        let mut links = 0u32;
        while let Some(name) = parts.pop_front() {
            if !cur.inode().is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if name.is_empty() {
                // A trailing `/` carried over from a symlink's target: the result must be
                // a directory, and nothing is looked up in it.
                continue;
            }
            if let Some(creds) = at.creds {
                super::permission::may_search(creds, &cur)?;
            }
            if name == b"." {
                continue;
            }
            if name == b".." {
                if beneath && Arc::ptr_eq(&cur, at.start) {
                    return Err(Errno::EXDEV);
                }
                if !Arc::ptr_eq(&cur, at.root) {
                    if no_xdev && cur.is_mount_root() {
                        return Err(Errno::EXDEV);
                    }
                    if let Some(p) = cur.parent() {
                        cur = p;
                    }
                }
                continue;
            }
            let child = cur.child(&name)?;
            if no_xdev && child.is_mount_root() {
                return Err(Errno::EXDEV);
            }
            let last = parts.is_empty();
            if child.inode().is_symlink() && (!last || at.follow_last || trailing_slash) {
                links += 1;
                if links > SYMLOOP_MAX || resolve & RESOLVE_NO_SYMLINKS != 0 {
                    return Err(Errno::ELOOP);
                }
                if let Some(d) = child.inode().follow_link_dentry() {
                    if resolve & RESOLVE_NO_MAGICLINKS != 0 {
                        return Err(Errno::ELOOP);
                    }
                    let d = d?;
                    if beneath || resolve & RESOLVE_IN_ROOT != 0 || (no_xdev && !Arc::ptr_eq(&mount_of(&d), &mount_of(&cur))) {
                        return Err(Errno::EXDEV);
                    }
                    cur = d;
                    if trailing_slash && last {
                        parts.push_back(Vec::new());
                    }
                    continue;
                }
                let target = child.inode().readlink()?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                if target[0] == b'/' {
                    if beneath || (no_xdev && !Arc::ptr_eq(&mount_of(at.root), &mount_of(&cur))) {
                        return Err(Errno::EXDEV);
                    }
                    cur = at.root.clone();
                }
                let mut expanded = split(&target)?;
                if target.ends_with(b"/") && last {
                    expanded.push_back(Vec::new());
                }
                expanded.extend(parts.drain(..));
                parts = expanded;
                continue;
            }
            cur = child;
        }
        if trailing_slash && !cur.inode().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }
}

/// The root of the mount `d` belongs to (or the root of the tree).
fn mount_of(d: &Arc<Dentry>) -> Arc<Dentry> {
    let mut cur = d.clone();
    while !cur.is_mount_root() {
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    cur
}

/// Splits a path into its non-empty components, checking NAME_MAX.
fn split(path: &[u8]) -> Result<VecDeque<Vec<u8>>, Errno> {
    let mut out = VecDeque::new();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if c.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        out.push_back(c.to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_skips_empty_components_and_checks_name_length() {
        let parts = split(b"//a//b/").unwrap();
        assert_eq!(parts, VecDeque::from(vec![b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(split(&[b'x'; 256]).unwrap_err(), Errno::ENAMETOOLONG);
    }
}
