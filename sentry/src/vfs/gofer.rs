//! The gofer filesystem: the container's files, served by the gofer process.

use std::sync::Arc;

use rvisor_gofer::{Fid, GoferClient, GoferError};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFMT, S_IFREG};
use rvisor_syscalls::flags::open::{
    O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_LARGEFILE, O_NOATIME, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_RDONLY,
    O_TRUNC,
};
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use super::host::{HostRegularFile, PageCache};
use crate::mm::MemoryFile;
use super::inode::{DirEntry, Inode};

/// Open flags that do not change how the host file is opened for reading (the sentry
/// keeps status flags in its own file description).
const SHAREABLE_FLAGS: u32 = O_CLOEXEC | O_LARGEFILE | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK | O_NOATIME | O_DIRECTORY;

fn errno(e: GoferError) -> Errno {
    e.errno()
}

/// A file of the gofer filesystem, named by a gofer fid.
pub struct GoferInode {
    client: Arc<GoferClient>,
    fid: Fid,
    /// Attributes as of the last walk or stat.
    attr: std::sync::Mutex<Stat>,
    /// A read-only host fd of this file, shared by every read-only open: reads use
    /// pread at the description's own offset, so sharing is invisible to the guest, and it
    /// saves a gofer round trip per open.
    shared_ro: std::sync::Mutex<Option<Arc<HostRegularFile>>>,
    /// The page cache shared mappings of this file use, while any exists.
    page_cache: PageCache,
    file_type: u32,
    read_only: bool,
}

impl GoferInode {
    /// The root of the served tree.
    pub fn attach(client: Arc<GoferClient>, memory: Arc<MemoryFile>, read_only: bool) -> Result<Arc<GoferInode>, Errno> {
        let (fid, st) = client.attach().map_err(errno)?;
        Ok(Arc::new(GoferInode {
            client,
            fid,
            attr: std::sync::Mutex::new(st),
            shared_ro: Default::default(),
            page_cache: PageCache { memory, slot: Default::default() },
            file_type: st.st_mode & S_IFMT,
            read_only,
        }))
    }

    /// Opens this file and returns the host-backed implementation, for exec.
    pub fn open_host(&self, flags: u32) -> Result<Arc<HostRegularFile>, Errno> {
        let fd = self.client.open(self.fid, flags).map_err(errno)?;
        Ok(Arc::new(HostRegularFile::new(fd)))
    }
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        if let Err(e) = self.client.clunk(self.fid) {
            tracing::debug!(fid = self.fid, error = %e, "gofer clunk failed");
        }
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let st = self.client.stat(self.fid).map_err(errno)?;
        *self.attr.lock().unwrap_or_else(|p| p.into_inner()) = st;
        Ok(st)
    }

    fn cached_stat(&self) -> Result<Stat, Errno> {
        Ok(*self.attr.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn file_type(&self) -> u32 {
        self.file_type
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if self.file_type != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let (fid, st) = self.client.walk(self.fid, name).map_err(errno)?;
        Ok(Arc::new(GoferInode {
            client: self.client.clone(),
            fid,
            attr: std::sync::Mutex::new(st),
            shared_ro: Default::default(),
            page_cache: PageCache { memory: self.page_cache.memory.clone(), slot: Default::default() },
            file_type: st.st_mode & S_IFMT,
            read_only: self.read_only,
        }))
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.client.readlink(self.fid).map_err(errno)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        let writes = flags & O_ACCMODE != O_RDONLY || flags & (O_TRUNC | O_APPEND | O_CREAT) != 0;
        if self.file_type == S_IFDIR {
            if flags & O_ACCMODE != O_RDONLY {
                return Err(Errno::EISDIR);
            }
            return Ok(Arc::new(GoferDir { client: self.client.clone(), fid: self.fid }));
        }
        if writes && self.read_only {
            return Err(Errno::EROFS);
        }
        let plain_read = flags & O_ACCMODE == O_RDONLY && flags & !(O_ACCMODE | SHAREABLE_FLAGS) == 0;
        if !plain_read || self.file_type != S_IFREG {
            return Ok(self.open_host(flags)?);
        }
        let mut shared = self.shared_ro.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = shared.as_ref() {
            return Ok(f.clone());
        }
        let fd = self.client.open(self.fid, O_RDONLY).map_err(errno)?;
        // Only a read-only root gets a page cache: nothing in the sandbox can change the
        // file behind its pages.
        let f = if self.read_only {
            Arc::new(HostRegularFile::with_page_cache(fd, self.page_cache.clone()))
        } else {
            Arc::new(HostRegularFile::new(fd))
        };
        *shared = Some(f.clone());
        Ok(f)
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        self.client.statfs(self.fid).map_err(errno)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

/// An open directory of the gofer filesystem. The fid stays valid while the owning inode
/// (held by the description's dentry) lives.
struct GoferDir {
    client: Arc<GoferClient>,
    fid: Fid,
}

impl FileImpl for GoferDir {
    fn read(&self, _buf: &mut [u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _buf: &[u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        self.client.stat(self.fid).map_err(errno)
    }

    fn getdents(&self, offset: u64, max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        let max = u32::try_from(max_bytes).unwrap_or(u32::MAX);
        let entries = self.client.getdents(self.fid, offset, max).map_err(errno)?;
        Ok(entries
            .into_iter()
            .map(|e| DirEntry { ino: e.ino, next_offset: e.next_offset, d_type: e.d_type, name: e.name })
            .collect())
    }
}
