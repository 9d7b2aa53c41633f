//! Path walks.

use std::collections::VecDeque;
use std::sync::Arc;

use rvisor_syscalls::flags::limits::{NAME_MAX, SYMLOOP_MAX};
use rvisor_syscalls::Errno;

use super::dentry::Dentry;

/// The mount tree of a sandbox (one root filesystem for now).
pub struct Vfs {
    root: Arc<Dentry>,
}

/// Where a walk starts and what it may not climb out of.
pub struct Lookup<'a> {
    /// The task's root: `/` and the ceiling for `..`.
    pub root: &'a Arc<Dentry>,
    /// The directory relative paths start from (cwd or a dirfd's directory).
    pub start: &'a Arc<Dentry>,
    /// Whether a symlink in the last component is followed.
    pub follow_last: bool,
}

impl Vfs {
    pub fn new(root: Arc<Dentry>) -> Vfs {
        Vfs { root }
    }

    /// The root of the mount tree.
    pub fn root(&self) -> &Arc<Dentry> {
        &self.root
    }

    /// Resolves `path` to a dentry, following symlinks in every component but the last
    /// (and in the last too when `follow_last` is set or the path ends with `/`).
    pub fn resolve(&self, at: &Lookup<'_>, path: &[u8]) -> Result<Arc<Dentry>, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trailing_slash = path.ends_with(b"/");
        let mut cur = if path[0] == b'/' { at.root.clone() } else { at.start.clone() };
        let mut parts: VecDeque<Vec<u8>> = split(path)?;
        let mut links = 0u32;
        while let Some(name) = parts.pop_front() {
            if !cur.inode().is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if name == b"." {
                continue;
            }
            if name == b".." {
                if !Arc::ptr_eq(&cur, at.root) {
                    if let Some(p) = cur.parent() {
                        cur = p;
                    }
                }
                continue;
            }
            let child = cur.child(&name)?;
            let last = parts.is_empty();
            if child.inode().is_symlink() && (!last || at.follow_last || trailing_slash) {
                links += 1;
                if links > SYMLOOP_MAX {
                    return Err(Errno::ELOOP);
                }
                let target = child.inode().readlink()?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                if target[0] == b'/' {
                    cur = at.root.clone();
                }
                let mut expanded = split(&target)?;
                if target.ends_with(b"/") && last {
                    expanded.push_back(b".".to_vec());
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
