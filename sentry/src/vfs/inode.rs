//! Filesystem objects.

use std::any::Any;
use std::sync::Arc;

use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT};
use rvisor_syscalls::types::{Stat, Statfs, Timespec};
use rvisor_syscalls::Errno;

use super::file::FileImpl;

/// One directory entry as `getdents64` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    /// The cookie that continues the listing after this entry.
    pub next_offset: u64,
    pub d_type: u8,
    pub name: Vec<u8>,
}

/// A new timestamp for [`SetAttr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// The filesystem's current time.
    Now,
    At(Timespec),
}

/// Attribute changes of chmod, chown and utimes (Linux's `struct iattr`): `None` leaves a
/// field alone; any change also sets the change time (ctime) to now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (`0o7777`); the file type never changes.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
}

/// rename(2) flags understood by [`Inode::rename`] (renameat2's `RENAME_*`).
pub mod rename_flags {
    /// Fail with EEXIST rather than replace the target.
    pub const RENAME_NOREPLACE: u32 = 1;
    /// Swap the two names atomically (both must exist).
    pub const RENAME_EXCHANGE: u32 = 2;
    /// Leave a whiteout at the old name (overlay filesystems).
    pub const RENAME_WHITEOUT: u32 = 4;
}

/// fallocate(2) modes understood by [`Inode::fallocate`].
pub mod falloc_flags {
    pub const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
    pub const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
}

/// A file, directory, symlink or special file of some filesystem.
///
/// Namespace and attribute changes (`create` ... `fallocate`) have default implementations
/// that refuse them: EROFS on a read-only filesystem, EPERM otherwise. The VFS checks the
/// caller's permissions, the names (one component, never `.` or `..`) and what the names
/// refer to before calling them; a filesystem re-checks what can change in between
/// (EEXIST, ENOENT, ENOTEMPTY, ...) under its own locks. Callers keep the dentry cache in
/// step ([`super::Dentry::forget`], [`super::Dentry::move_child`]).
pub trait Inode: Send + Sync {
    /// Current attributes.
    fn stat(&self) -> Result<Stat, Errno>;
    /// Attributes for permission checks: may come from a cache filled by the lookup
    /// (ownership and mode rarely change, and a stale answer only affects an access check
    /// that the host re-checks on open).
    fn cached_stat(&self) -> Result<Stat, Errno> {
        self.stat()
    }
    /// The file type bits (`S_IFMT` part of `st_mode`), which never change.
    fn file_type(&self) -> u32;
    /// The child called `name` (one component, never `.` or `..`).
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno>;
    /// A symlink's target.
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }
    /// Where following this symlink leads, for "magic" links that name an object rather
    /// than a path (procfs's /proc/pid/{exe,cwd,root,fd/N}): `None` for ordinary symlinks,
    /// whose target [`Self::readlink`] gives. The path walk continues from the returned
    /// dentry, so `/proc/1/root/..` stays inside the task's root.
    fn follow_link_dentry(&self) -> Option<Result<Arc<super::Dentry>, Errno>> {
        None
    }
    /// Whether the dentry cache may keep this directory's children. Directories whose
    /// entries come and go with processes (procfs) answer false, so their lookups are
    /// always fresh and the cache does not grow with every pid ever seen.
    fn cache_children(&self) -> bool {
        true
    }
    /// Opens the object with open(2) `flags` (access mode and status flags).
    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno>;
    /// statfs(2) of the filesystem holding this inode.
    fn statfs(&self) -> Result<Statfs, Errno>;
    /// Whether writes are refused because the filesystem is mounted read-only.
    fn read_only(&self) -> bool {
        true
    }

    /// The concrete inode, for filesystems whose operations take another inode of the same
    /// filesystem (link, rename). `None` for inodes that are never downcast.
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }

    /// The error of a change this filesystem does not support.
    fn refuse(&self) -> Errno {
        if self.read_only() {
            Errno::EROFS
        } else {
            Errno::EPERM
        }
    }

    /// Creates the regular file `name` in this directory with permission bits `mode`
    /// (umask applied) and owner `uid`/`gid`. EEXIST if the name exists.
    fn create(&self, _name: &[u8], _mode: u32, _uid: u32, _gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Err(self.refuse())
    }
    /// Creates an unnamed regular file in this directory (open(2) with O_TMPFILE), with
    /// permission bits `mode` (umask applied), owner `uid`/`gid` and no links. `linkable`:
    /// linkat may give it a name later (O_TMPFILE without O_EXCL; Linux's I_LINKABLE).
    /// EOPNOTSUPP on filesystems without unnamed files.
    fn create_unnamed(&self, _mode: u32, _uid: u32, _gid: u32, _linkable: bool) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates the directory `name` (as [`Self::create`]).
    fn mkdir(&self, _name: &[u8], _mode: u32, _uid: u32, _gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Err(self.refuse())
    }
    /// Creates the symlink `name` pointing to `target`.
    fn symlink(&self, _name: &[u8], _target: &[u8], _uid: u32, _gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Err(self.refuse())
    }
    /// Adds the name `name` for `target` (not a directory), in this directory. EXDEV if
    /// `target` belongs to another filesystem.
    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(self.refuse())
    }
    /// Removes the name `name` of a non-directory. EISDIR for a directory.
    fn unlink(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(self.refuse())
    }
    /// Removes the empty directory `name`. ENOTDIR, ENOTEMPTY.
    fn rmdir(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(self.refuse())
    }
    /// Renames `old_name` of this directory to `new_name` of `new_dir` with `flags`
    /// ([`rename_flags`]), replacing a target of a compatible type (ENOTDIR, EISDIR,
    /// ENOTEMPTY otherwise). EXDEV if `new_dir` belongs to another filesystem.
    fn rename(&self, _old_name: &[u8], _new_dir: &Arc<dyn Inode>, _new_name: &[u8], _flags: u32) -> Result<(), Errno> {
        Err(self.refuse())
    }
    /// Changes a regular file's size (truncate, ftruncate, O_TRUNC). EFBIG beyond the
    /// filesystem's largest file.
    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        Err(self.refuse())
    }
    /// fallocate(2) on a regular file: `mode` 0 or FALLOC_FL_KEEP_SIZE allocates,
    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE zeroes; anything else EOPNOTSUPP.
    fn fallocate(&self, _mode: u32, _offset: u64, _len: u64) -> Result<(), Errno> {
        Err(if self.read_only() { Errno::EROFS } else { Errno::EOPNOTSUPP })
    }
    /// Changes mode, owner or timestamps.
    fn setattr(&self, _attr: &SetAttr) -> Result<(), Errno> {
        Err(self.refuse())
    }
    /// Creates the node `name` of type and permission bits `mode` (`S_IFREG`, `S_IFIFO`,
    /// `S_IFSOCK`, or a device with number `rdev`), as [`Self::create`].
    fn mknod(&self, _name: &[u8], _mode: u32, _rdev: u64, _uid: u32, _gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Err(self.refuse())
    }

    /// The value of the extended attribute `name` (a full name such as `user.foo`, 1..=255
    /// bytes). ENODATA if the node has no such attribute, EOPNOTSUPP for a namespace this
    /// filesystem does not keep.
    fn getxattr(&self, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Sets the extended attribute `name`; `flags` is 0, XATTR_CREATE (EEXIST if set) or
    /// XATTR_REPLACE (ENODATA if not set).
    fn setxattr(&self, _name: &[u8], _value: &[u8], _flags: u32) -> Result<(), Errno> {
        Err(if self.read_only() { Errno::EROFS } else { Errno::EOPNOTSUPP })
    }
    /// The names of the node's extended attributes the caller may see.
    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(Vec::new())
    }
    /// Removes the extended attribute `name` (ENODATA if not set).
    fn removexattr(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(if self.read_only() { Errno::EROFS } else { Errno::EOPNOTSUPP })
    }

    fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
}

/// The `S_IFMT` bits of a mode.
pub fn file_type_of(mode: u32) -> u32 {
    mode & S_IFMT
}
