//! Filesystem objects.

use std::sync::Arc;

use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT};
use rvisor_syscalls::types::{Stat, Statfs};
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

/// A file, directory, symlink or special file of some filesystem.
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
    /// Opens the object with open(2) `flags` (access mode and status flags).
    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno>;
    /// statfs(2) of the filesystem holding this inode.
    fn statfs(&self) -> Result<Statfs, Errno>;
    /// Whether writes are refused because the filesystem is mounted read-only.
    fn read_only(&self) -> bool {
        true
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
