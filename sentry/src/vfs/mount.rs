//! The mount table of a mount namespace: which filesystem is mounted where, with which
//! options, as /proc/pid/mounts and mountinfo show it and as mount(2)/umount2(2) change it.
//!
//! A mount is dentry-level: the mounted filesystem's root becomes a child dentry of the
//! mount point's parent ([`Dentry::mount_child`]), hiding what the parent's filesystem has
//! under that name. The table records each mount with what it hid (an earlier mount stacked
//! at the same name), so an unmount restores it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rvisor_syscalls::flags::mount::*;
use rvisor_syscalls::Errno;

use super::dentry::Dentry;
use super::inode::Inode;

/// What a new mount is, as mount(2) describes it.
#[derive(Clone, Debug)]
pub struct MountSpec {
    /// Filesystem type name ("tmpfs", "proc", ...).
    pub fs_type: String,
    /// The source field ("tmpfs", "proc", a path for a bind mount).
    pub source: String,
    /// Per-mount flags: `MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, `MS_NOATIME`,
    /// `MS_NODIRATIME`, `MS_RELATIME`.
    pub flags: u64,
    /// Filesystem options as mountinfo's last field shows them, after "rw"/"ro"
    /// ("size=1024k,mode=755"); may be empty.
    pub fs_options: String,
    /// The path, inside the mounted filesystem, of the mount's root ("/" unless a bind
    /// mount of a subdirectory).
    pub fs_root: Vec<u8>,
}

impl MountSpec {
    /// A mount of a whole filesystem of type `fs_type` from `source`.
    pub fn new(fs_type: &str, source: &str, flags: u64) -> MountSpec {
        MountSpec {
            fs_type: fs_type.into(),
            source: source.into(),
            flags,
            fs_options: String::new(),
            fs_root: b"/".to_vec(),
        }
    }

    /// With filesystem options.
    pub fn options(mut self, opts: &str) -> MountSpec {
        self.fs_options = opts.into();
        self
    }
}

/// One entry of the table.
pub struct Mount {
    pub id: u32,
    /// The root dentry of the mounted tree.
    pub root: Arc<Dentry>,
    spec: Mutex<MountSpec>,
    /// The mount root this one hid (stacked on the same name), restored on unmount.
    covered: Option<Arc<Dentry>>,
}

impl Mount {
    pub fn spec(&self) -> MountSpec {
        self.spec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the mount is read-only.
    pub fn read_only(&self) -> bool {
        self.spec().flags & MS_RDONLY != 0
    }
}

/// The mounts of one mount namespace, in mount order (parents before children).
pub struct MountTable {
    mounts: Mutex<Vec<Arc<Mount>>>,
    next_id: AtomicU32,
}

/// The per-mount flags mountinfo's sixth field shows.
const MOUNT_FLAGS: u64 = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME;

impl MountTable {
    /// A table whose first mount, `/`, is `root` described by `spec`.
    pub fn new(root: Arc<Dentry>, spec: MountSpec) -> MountTable {
        root.set_mount_flags(spec.flags & MOUNT_FLAGS);
        let first = Arc::new(Mount {
            id: 1,
            root,
            spec: Mutex::new(spec),
            covered: None,
        });
        MountTable {
            mounts: Mutex::new(vec![first]),
            next_id: AtomicU32::new(2),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Mount>>> {
        self.mounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every mount, in mount order.
    pub fn all(&self) -> Vec<Arc<Mount>> {
        self.lock().clone()
    }

    /// Redescribes the root mount (the root filesystem's assembly decides its type).
    pub fn set_root_spec(&self, spec: MountSpec) {
        if let Some(m) = self.lock().first() {
            m.root.set_mount_flags(spec.flags & MOUNT_FLAGS);
            *m.spec.lock().unwrap_or_else(|p| p.into_inner()) = spec;
        }
    }

    /// The mount whose root is `d`, if `d` is a mount root (or the tree's root).
    pub fn mount_of_root(&self, d: &Arc<Dentry>) -> Option<Arc<Mount>> {
        self.lock().iter().rev().find(|m| Arc::ptr_eq(&m.root, d)).cloned()
    }

    /// The mount `d` belongs to: the nearest ancestor (or `d` itself) that is a mount root.
    pub fn mount_containing(&self, d: &Arc<Dentry>) -> Option<Arc<Mount>> {
        let mounts = self.lock();
        let mut cur = Some(d.clone());
        while let Some(c) = cur {
            if let Some(m) = mounts.iter().rev().find(|m| Arc::ptr_eq(&m.root, &c)) {
                return Some(m.clone());
            }
            cur = c.parent();
        }
        None
    }

    /// The id of the mount `m` is mounted on (0 for the root mount).
    pub fn parent_id(&self, m: &Mount) -> u32 {
        match m.root.parent() {
            Some(p) if m.id != 1 => self.mount_containing(&p).map_or(0, |pm| pm.id),
            _ => 0,
        }
    }

    /// Mounts `inode` on the name `name` of directory `parent` and records it.
    pub fn mount(&self, parent: &Arc<Dentry>, name: &[u8], inode: Arc<dyn Inode>, spec: MountSpec) -> Arc<Dentry> {
        let mut mounts = self.lock();
        let covered = parent.cached_child(name).filter(|d| d.is_mount_root());
        let root = parent.mount_child(name, inode);
        root.set_mount_flags(spec.flags & MOUNT_FLAGS);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        mounts.push(Arc::new(Mount {
            id,
            root: root.clone(),
            spec: Mutex::new(spec),
            covered,
        }));
        root
    }

    /// Mounts `inode` on `target` (an existing directory, or a mount root to stack on).
    /// EBUSY for the tree's root, which has no parent to hang a mount on.
    pub fn mount_on(&self, target: &Arc<Dentry>, inode: Arc<dyn Inode>, spec: MountSpec) -> Result<Arc<Dentry>, Errno> {
        let parent = target.parent().ok_or(Errno::EBUSY)?;
        Ok(self.mount(&parent, &target.name(), inode, spec))
    }

    /// Changes the per-mount flags of the mount rooted at `target` (MS_REMOUNT).
    pub fn remount(&self, target: &Arc<Dentry>, flags: u64, fs_options: Option<String>) -> Result<(), Errno> {
        let m = self.mount_of_root(target).ok_or(Errno::EINVAL)?;
        let mut spec = m.spec.lock().unwrap_or_else(|p| p.into_inner());
        spec.flags = flags & MOUNT_FLAGS;
        m.root.set_mount_flags(spec.flags);
        if let Some(o) = fs_options {
            spec.fs_options = o;
        }
        Ok(())
    }

    /// Unmounts the mount rooted at `target`. Without `detach`, EBUSY if other mounts sit
    /// below it; with it, those go too. EINVAL if `target` is not a mount root, EBUSY for
    /// the root mount.
    pub fn unmount(&self, target: &Arc<Dentry>, detach: bool) -> Result<(), Errno> {
        let mut mounts = self.lock();
        let idx = mounts.iter().rposition(|m| Arc::ptr_eq(&m.root, target)).ok_or(Errno::EINVAL)?;
        if mounts[idx].id == 1 {
            return Err(Errno::EBUSY);
        }
        // A mount hidden under another one stacked on the same name is not reachable by path.
        let visible = target
            .parent()
            .and_then(|p| p.cached_child(&target.name()))
            .is_some_and(|d| Arc::ptr_eq(&d, target));
        if !visible {
            return Err(Errno::EINVAL);
        }
        let below: Vec<usize> = (0..mounts.len()).filter(|&i| i != idx && target.is_ancestor_of(&mounts[i].root)).collect();
        if !below.is_empty() && !detach {
            return Err(Errno::EBUSY);
        }
        // Children first (reverse mount order), then the mount itself.
        let mut gone: Vec<usize> = below;
        gone.push(idx);
        gone.sort_unstable();
        for &i in gone.iter().rev() {
            let m = mounts.remove(i);
            if let Some(parent) = m.root.parent() {
                let name = m.root.name();
                match &m.covered {
                    Some(c) => parent.restore_child(&name, c.clone()),
                    None => parent.forget(&name),
                }
            }
        }
        Ok(())
    }

    /// /proc/pid/mounts as seen from `root`: "source mountpoint type options 0 0" lines.
    pub fn render_mounts(&self, root: &Arc<Dentry>) -> Vec<u8> {
        let mut out = Vec::new();
        for m in self.all() {
            let Some(point) = m.root.path_from(root) else { continue };
            let spec = m.spec();
            out.extend_from_slice(&escape(spec.source.as_bytes()));
            out.push(b' ');
            out.extend_from_slice(&escape(&point));
            out.extend_from_slice(format!(" {} {} 0 0\n", spec.fs_type, all_options(&spec)).as_bytes());
        }
        out
    }

    /// /proc/pid/mountinfo as seen from `root` (proc(5)'s format, no optional fields).
    pub fn render_mountinfo(&self, root: &Arc<Dentry>) -> Vec<u8> {
        let mut out = Vec::new();
        for m in self.all() {
            let Some(point) = m.root.path_from(root) else { continue };
            let spec = m.spec();
            let dev = m.root.inode().stat().map(|s| s.st_dev).unwrap_or(0);
            let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
            out.extend_from_slice(format!("{} {} {major}:{minor} ", m.id, self.parent_id(&m)).as_bytes());
            out.extend_from_slice(&escape(&spec.fs_root));
            out.push(b' ');
            out.extend_from_slice(&escape(&point));
            out.extend_from_slice(format!(" {} - {} ", mount_options(spec.flags), spec.fs_type).as_bytes());
            out.extend_from_slice(&escape(spec.source.as_bytes()));
            out.extend_from_slice(format!(" {}\n", super_options(&spec)).as_bytes());
        }
        out
    }
}

/// The per-mount options ("rw,nosuid,relatime").
fn mount_options(flags: u64) -> String {
    let mut s = String::from(if flags & MS_RDONLY != 0 { "ro" } else { "rw" });
    for (bit, name) in [
        (MS_NOSUID, "nosuid"),
        (MS_NODEV, "nodev"),
        (MS_NOEXEC, "noexec"),
        (MS_NOATIME, "noatime"),
        (MS_NODIRATIME, "nodiratime"),
        (MS_RELATIME, "relatime"),
    ] {
        if flags & bit != 0 {
            s.push(',');
            s.push_str(name);
        }
    }
    s
}

/// The superblock options mountinfo's last field shows ("rw,size=1024k").
fn super_options(spec: &MountSpec) -> String {
    let rw = if spec.flags & MS_RDONLY != 0 { "ro" } else { "rw" };
    if spec.fs_options.is_empty() {
        rw.to_string()
    } else {
        format!("{rw},{}", spec.fs_options)
    }
}

/// /proc/mounts' options: the per-mount ones followed by the filesystem's.
fn all_options(spec: &MountSpec) -> String {
    let m = mount_options(spec.flags);
    if spec.fs_options.is_empty() {
        m
    } else {
        format!("{m},{}", spec.fs_options)
    }
}

/// Escapes space, tab, newline and backslash as octal, as the kernel's mangle does.
fn escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::synthetic::{build, Node};

    fn dir() -> Arc<dyn Inode> {
        build(0x42, 0, Node::Dir(vec![("mnt", Node::Dir(vec![])), ("f", Node::File(b"x".to_vec()))]))
    }

    #[test]
    fn mounts_stack_and_unmount_restores_what_was_hidden() {
        let root = Dentry::new_root(dir());
        let t = MountTable::new(root.clone(), MountSpec::new("9p", "none", 0));
        let a = t.mount(&root, b"mnt", dir(), MountSpec::new("tmpfs", "tmpfs", MS_NOSUID).options("mode=755"));
        assert!(Arc::ptr_eq(&root.child(b"mnt").unwrap(), &a));
        let b = t.mount_on(&a, dir(), MountSpec::new("proc", "proc", MS_RELATIME)).unwrap();
        assert!(Arc::ptr_eq(&root.child(b"mnt").unwrap(), &b));
        let info = String::from_utf8(t.render_mountinfo(&root)).unwrap();
        let lines: Vec<&str> = info.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("2 1 0:66 / /mnt rw,nosuid - tmpfs tmpfs rw,mode=755"), "{}", lines[1]);
        assert!(lines[2].starts_with("3 1 0:66 / /mnt rw,relatime - proc proc rw"), "{}", lines[2]);
        assert_eq!(t.unmount(&root, false), Err(Errno::EBUSY));
        assert_eq!(t.unmount(&root.child(b"f").unwrap(), false), Err(Errno::EINVAL));
        t.unmount(&b, false).unwrap();
        assert!(Arc::ptr_eq(&root.child(b"mnt").unwrap(), &a));
        t.unmount(&a, false).unwrap();
        assert!(!root.child(b"mnt").unwrap().is_mount_root());
        assert_eq!(t.all().len(), 1);
    }

    #[test]
    fn unmount_of_a_mount_with_submounts_needs_detach() {
        let root = Dentry::new_root(dir());
        let t = MountTable::new(root.clone(), MountSpec::new("9p", "none", 0));
        let a = t.mount(&root, b"mnt", dir(), MountSpec::new("tmpfs", "tmpfs", 0));
        t.mount(&a, b"mnt", dir(), MountSpec::new("tmpfs", "tmpfs", 0));
        assert_eq!(t.unmount(&a, false), Err(Errno::EBUSY));
        t.unmount(&a, true).unwrap();
        assert_eq!(t.all().len(), 1);
        let m = String::from_utf8(t.render_mounts(&root)).unwrap();
        assert_eq!(m, "none / 9p rw 0 0\n");
    }

    #[test]
    fn paths_are_escaped() {
        assert_eq!(escape(b"a b\\c"), b"a\\040b\\134c".to_vec());
    }
}
