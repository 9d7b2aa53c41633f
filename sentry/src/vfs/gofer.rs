//! The gofer filesystem: the container's files, served by the gofer process.

use std::any::Any;
use std::os::fd::OwnedFd;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use rvisor_gofer::client::{setattr_valid as sv, SetAttrMsg};
use rvisor_gofer::{Fid, GoferClient, GoferError};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_ISGID, S_ISUID};
use rvisor_syscalls::flags::open::{
    O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_EXCL, O_DIRECTORY, O_LARGEFILE, O_NOATIME, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_RDONLY,
    O_RDWR, O_TRUNC, O_WRONLY,
};
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use super::host::{host_fallocate, keeping_set_id, HostRegularFile, PageCache, SetIdKeeper};
use crate::mm::MemoryFile;
use super::inode::{DirEntry, Inode, SetAttr, TimeSet};
use super::pipe::Pipe;

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
    attr: Mutex<Stat>,
    /// A read-only host fd of this file, shared by every read-only open: reads use
    /// pread at the description's own offset, so sharing is invisible to the guest, and it
    /// saves a gofer round trip per open.
    shared_ro: Mutex<Option<Arc<HostRegularFile>>>,
    /// The page cache shared mappings of this file use, while any exists.
    page_cache: PageCache,
    /// A symlink's target, kept once read when the tree is read-only.
    link_target: std::sync::OnceLock<Vec<u8>>,
    /// The read-write host fd the gofer donated when it created this file, for the open
    /// that follows the creation (saves a round trip).
    created_fd: Mutex<Option<OwnedFd>>,
    file_type: u32,
    read_only: bool,
    /// This inode, for the files opened from it to reach it without keeping it alive
    /// (they put back set-ID bits through it, see [`SetIdKeeper`]).
    me: Weak<GoferInode>,
}

impl GoferInode {
    /// The root of the served tree.
    pub fn attach(client: Arc<GoferClient>, memory: Arc<MemoryFile>, read_only: bool) -> Result<Arc<GoferInode>, Errno> {
        let (fid, st) = client.attach().map_err(errno)?;
        Ok(Arc::new_cyclic(|me| GoferInode {
            me: me.clone(),
            client,
            fid,
            attr: Mutex::new(st),
            shared_ro: Default::default(),
            page_cache: PageCache { memory, slot: Default::default() },
            link_target: Default::default(),
            created_fd: Mutex::new(None),
            file_type: st.st_mode & S_IFMT,
            read_only,
        }))
    }

    /// The inode of a child fid of this directory with attributes `st`.
    fn child(&self, fid: Fid, st: Stat, created_fd: Option<OwnedFd>) -> Arc<GoferInode> {
        Arc::new_cyclic(|me| GoferInode {
            me: me.clone(),
            client: self.client.clone(),
            fid,
            attr: Mutex::new(st),
            shared_ro: Default::default(),
            page_cache: PageCache { memory: self.page_cache.memory.clone(), slot: Default::default() },
            link_target: Default::default(),
            created_fd: Mutex::new(created_fd),
            file_type: st.st_mode & S_IFMT,
            read_only: self.read_only,
        })
    }

    /// Refreshes the cached attributes after a change made through the gofer (a failure
    /// leaves the old ones: the next stat asks again).
    fn refresh(&self) {
        let _ = self.stat();
    }

    /// Another gofer inode of the same connection (EXDEV otherwise).
    fn same_fs<'a>(&self, other: &'a Arc<dyn Inode>) -> Result<&'a GoferInode, Errno> {
        let other = other.as_any().and_then(|a| a.downcast_ref::<GoferInode>()).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.client, &other.client) {
            return Err(Errno::EXDEV);
        }
        Ok(other)
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// Opens this file and returns the host-backed implementation, for exec.
    pub fn open_host(&self, flags: u32) -> Result<Arc<HostRegularFile>, Errno> {
        // The VFS has resolved O_CREAT/O_EXCL already: the file exists.
        let fd = self.client.open(self.fid, flags & !(O_CREAT | O_EXCL)).map_err(errno)?;
        Ok(self.host_file(fd, flags & O_ACCMODE != O_RDONLY))
    }

    /// The implementation of an open of this file through host fd `fd`; one the guest may
    /// write (`writable`) keeps the file's set-ID bits across the sentry's writes.
    fn host_file(&self, fd: OwnedFd, writable: bool) -> Arc<HostRegularFile> {
        if writable && self.file_type == S_IFREG && !self.read_only {
            let me: Weak<dyn SetIdKeeper> = self.me.clone();
            Arc::new(HostRegularFile::with_set_id_keeper(fd, me))
        } else {
            Arc::new(HostRegularFile::new(fd))
        }
    }

    fn set_cached_mode(&self, mode: u32) {
        let mut attr = self.attr.lock().unwrap_or_else(|p| p.into_inner());
        attr.st_mode = (attr.st_mode & S_IFMT) | (mode & 0o7777);
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
        if self.read_only {
            // Nothing in the sandbox can change a read-only tree: the attributes of the
            // walk stay true (like the page cache, they do not follow host changes).
            return self.cached_stat();
        }
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
        Ok(self.child(fid, st, None))
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if let Some(t) = self.link_target.get() {
            return Ok(t.clone());
        }
        let target = self.client.readlink(self.fid).map_err(errno)?;
        if self.read_only {
            let _ = self.link_target.set(target.clone());
        }
        Ok(target)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        let writes = flags & O_ACCMODE != O_RDONLY || flags & (O_TRUNC | O_APPEND | O_CREAT) != 0;
        if self.file_type == S_IFDIR {
            if flags & O_ACCMODE != O_RDONLY {
                return Err(Errno::EISDIR);
            }
            return Ok(Arc::new(GoferDir { client: self.client.clone(), fid: self.fid }));
        }
        if self.file_type == S_IFIFO {
            // The gofer never opens a host fifo: processes in the sandbox meet in a pipe
            // of the sentry's, one per host fifo.
            let st = self.cached_stat()?;
            return super::tmpfs::open_fifo(&fifo_pipe(st.st_dev, st.st_ino, st.st_uid, st.st_gid), flags);
        }
        if writes && self.read_only {
            return Err(Errno::EROFS);
        }
        if let Some(fd) = self.created_fd.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // The open right after a create: the sentry's description enforces the access
            // mode and O_APPEND, so the read-write host fd serves any of them.
            return Ok(self.host_file(fd, true));
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

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.writable()?;
        let (fid, st, fd) = self.client.create(self.fid, name, O_RDWR, mode & 0o7777, (uid, gid)).map_err(errno)?;
        Ok(self.child(fid, st, Some(fd)))
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.writable()?;
        let (fid, st) = self.client.mkdir(self.fid, name, mode & 0o7777, (uid, gid)).map_err(errno)?;
        Ok(self.child(fid, st, None))
    }

    fn symlink(&self, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.writable()?;
        let (fid, st) = self.client.symlink(self.fid, name, target, (uid, gid)).map_err(errno)?;
        Ok(self.child(fid, st, None))
    }

    fn mknod(&self, name: &[u8], mode: u32, _rdev: u64, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.writable()?;
        let (fid, st) = self.client.mknod(self.fid, name, mode, (uid, gid)).map_err(errno)?;
        Ok(self.child(fid, st, None))
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        self.writable()?;
        let target = self.same_fs(target)?;
        self.client.link(target.fid, self.fid, name).map_err(errno)?;
        target.refresh();
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        self.client.unlink(self.fid, name, false).map_err(errno)
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        self.client.unlink(self.fid, name, true).map_err(errno)
    }

    fn rename(&self, old_name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8], flags: u32) -> Result<(), Errno> {
        self.writable()?;
        let new_dir = self.same_fs(new_dir)?;
        self.client.rename(self.fid, old_name, new_dir.fid, new_name, flags).map_err(errno)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        self.writable()?;
        if i64::try_from(size).is_err() {
            return Err(Errno::EFBIG);
        }
        let msg = SetAttrMsg { valid: sv::SIZE, size, ..Default::default() };
        self.client.setattr(self.fid, msg).map_err(errno)?;
        self.refresh();
        Ok(())
    }

    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<(), Errno> {
        self.writable()?;
        if self.file_type != S_IFREG {
            return Err(Errno::ENODEV);
        }
        let fd = self.client.open(self.fid, O_WRONLY).map_err(errno)?;
        keeping_set_id(&fd, Some(self), || host_fallocate(&fd, mode, offset, len))?;
        self.refresh();
        Ok(())
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        self.writable()?;
        let mut msg = SetAttrMsg::default();
        if let Some(mode) = attr.mode {
            msg.valid |= sv::MODE;
            msg.mode = mode & 0o7777;
        }
        if let Some(uid) = attr.uid {
            msg.valid |= sv::UID;
            msg.uid = uid;
        }
        if let Some(gid) = attr.gid {
            msg.valid |= sv::GID;
            msg.gid = gid;
        }
        match attr.atime {
            Some(TimeSet::Now) => msg.valid |= sv::ATIME_NOW,
            Some(TimeSet::At(ts)) => {
                msg.valid |= sv::ATIME;
                (msg.atime_sec, msg.atime_nsec) = (ts.tv_sec, ts.tv_nsec);
            }
            None => {}
        }
        match attr.mtime {
            Some(TimeSet::Now) => msg.valid |= sv::MTIME_NOW,
            Some(TimeSet::At(ts)) => {
                msg.valid |= sv::MTIME;
                (msg.mtime_sec, msg.mtime_nsec) = (ts.tv_sec, ts.tv_nsec);
            }
            None => {}
        }
        if msg.valid == 0 {
            // Only the change time moves: the host does that for an owner "change" to the
            // current owner.
            msg.valid = sv::UID;
            msg.uid = self.cached_stat()?.st_uid;
        }
        self.client.setattr(self.fid, msg).map_err(errno)?;
        if msg.valid & sv::MODE != 0 {
            // Right even if the refresh fails: a write must not put back set-ID bits
            // this change cleared.
            self.set_cached_mode(msg.mode);
        }
        self.refresh();
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.client.getxattr(self.fid, name).map_err(errno)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        self.writable()?;
        self.client.setxattr(self.fid, name, value, flags).map_err(errno)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        let names = self.client.listxattr(self.fid).map_err(errno)?;
        Ok(names.split(|&b| b == 0).filter(|n| !n.is_empty()).map(<[u8]>::to_vec).collect())
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        self.client.removexattr(self.fid, name).map_err(errno)
    }
}

impl SetIdKeeper for GoferInode {
    fn cached_set_id(&self) -> bool {
        self.file_type == S_IFREG && self.attr.lock().unwrap_or_else(|p| p.into_inner()).st_mode & (S_ISUID | S_ISGID) != 0
    }

    fn restore(&self, host: &Stat, lost: u32) {
        if lost != 0 {
            let mode = (host.st_mode | lost) & 0o7777;
            let msg = SetAttrMsg { valid: sv::MODE, mode, ..Default::default() };
            match self.client.setattr(self.fid, msg) {
                Ok(()) => return self.set_cached_mode(mode),
                Err(e) => tracing::warn!(fid = self.fid, error = %e, "putting back set-ID bits the host cleared failed"),
            }
        }
        self.set_cached_mode(host.st_mode);
    }
}

/// The sentry pipe standing for the host fifo `dev:ino` while any end of it is open.
fn fifo_pipe(dev: u64, ino: u64, uid: u32, gid: u32) -> Arc<Pipe> {
    static FIFOS: Mutex<BTreeMap<(u64, u64), Weak<Pipe>>> = Mutex::new(BTreeMap::new());
    let mut fifos = FIFOS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pipe) = fifos.get(&(dev, ino)).and_then(Weak::upgrade) {
        return pipe;
    }
    fifos.retain(|_, w| w.strong_count() > 0);
    let pipe = Pipe::new(uid, gid);
    fifos.insert((dev, ino), Arc::downgrade(&pipe));
    pipe
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
