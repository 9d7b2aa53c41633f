//! tmpfs: an in-memory filesystem (mounted at /tmp and /dev/shm).
//!
//! A regular file's data lives in a [`SharedMemory`] object of the sentry's memory file,
//! so `mmap(MAP_SHARED)` of the file maps the very pages read(2) and write(2) use
//! ([`FileImpl::shared_memory`]) and processes sharing a file share its memory, as POSIX
//! shared memory and semaphores (`shm_open`, `sem_open`) need.
//!
//! # Locking
//! - `Tmpfs::ns` serialises every change of the namespace (create, link, unlink, rmdir,
//!   rename), so such a change may lock several directories' tables without deadlock;
//!   lookups and listings lock one table at a time and never take `ns`.
//! - Order: `ns` → directory tables → a regular file's data → any inode's attributes
//!   (`meta`) and a directory's parent pointer, which are leaves.

mod dir;
mod limits;
mod regular;
mod xattr;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::fsmagic::TMPFS_MAGIC;
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use rvisor_syscalls::flags::open::O_TRUNC;
use rvisor_syscalls::types::{Stat, Statfs, Timespec};
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use super::inode::{Inode, SetAttr, TimeSet};
use super::pipe::Pipe;
use crate::mm::{MemoryFile, SharedMemory};
use dir::{DirData, TmpfsDirFile};
use regular::{RegularData, TmpfsFile};

/// The size Linux's tmpfs counts per directory entry in a directory's `st_size`.
const BOGO_DIRENT_SIZE: i64 = 20;
/// Largest file size (Linux's MAX_LFS_FILESIZE).
const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Inodes a tmpfs reports in statfs (it enforces no limit).
const MAX_INODES: u64 = 1 << 20;
/// statfs `f_flags`: ST_VALID.
const ST_VALID: i64 = 0x20;

/// Device numbers of tmpfs mounts: anonymous devices 0:N, one per mount.
static NEXT_MINOR: AtomicU64 = AtomicU64::new(0x30);

fn now() -> Timespec {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as i64 }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave the tables in a memory-unsafe state: carry on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One mounted tmpfs.
pub struct Tmpfs {
    dev: u64,
    mf: Arc<MemoryFile>,
    next_ino: AtomicU64,
    /// Live inodes, for statfs.
    inodes: AtomicU64,
    /// Serialises namespace changes (see the module docs).
    ns: Mutex<()>,
    /// Pages and inodes used and allowed (`size=`, `nr_inodes=`).
    acct: Arc<limits::Accounting>,
}

impl Tmpfs {
    /// A new tmpfs whose regular files keep their pages in `mf`; returns its root
    /// directory, with permission bits `mode` (e.g. `0o1777` for /tmp) and owner `uid:gid`.
    pub fn new_root(mf: Arc<MemoryFile>, mode: u32, uid: u32, gid: u32) -> Arc<TmpfsInode> {
        let minor = NEXT_MINOR.fetch_add(1, Ordering::Relaxed);
        let fs = Arc::new(Tmpfs {
            dev: ((minor & 0xffffff00) << 12) | (minor & 0xff),
            mf,
            next_ino: AtomicU64::new(1),
            inodes: AtomicU64::new(0),
            ns: Mutex::new(()),
            acct: Arc::default(),
        });
        fs.new_inode(S_IFDIR | (mode & 0o7777), uid, gid, Weak::new(), b"")
    }

    /// Sets the `size=` (bytes) and `nr_inodes=` limits of the filesystem whose root is
    /// `root` (`None`: unchanged, 0: unlimited); EINVAL if more is in use than the new limits allow, or
    /// if `root` is not a tmpfs inode.
    pub fn set_limits(root: &Arc<dyn Inode>, max_bytes: Option<u64>, max_inodes: Option<u64>) -> Result<(), Errno> {
        let node = root.as_any().and_then(|a| a.downcast_ref::<TmpfsInode>()).ok_or(Errno::EINVAL)?;
        node.fs.acct.set_limits(max_bytes, max_inodes, node.fs.inodes.load(Ordering::Relaxed))
    }

    fn ns(&self) -> MutexGuard<'_, ()> {
        lock(&self.ns)
    }

    /// A new inode of type and permissions `mode`; a directory's `..` is `parent` (its
    /// own inode when `parent` is dangling, as for the root).
    /// `target` is a symlink's.
    fn new_inode(self: &Arc<Self>, mode: u32, uid: u32, gid: u32, parent: Weak<TmpfsInode>, target: &[u8]) -> Arc<TmpfsInode> {
        let ftype = mode & S_IFMT;
        let t = now();
        let (kind, nlink) = match ftype {
            S_IFDIR => (Kind::Dir(Mutex::new(DirData::default())), 2),
            S_IFREG => (Kind::Regular(RwLock::new(RegularData::new(SharedMemory::new(self.mf.clone(), 0), self.acct.clone()))), 1),
            S_IFLNK => (Kind::Symlink(target.to_vec()), 1),
            S_IFIFO => (Kind::Fifo(Pipe::new(uid, gid)), 1),
            _ => (Kind::Socket, 1),
        };
        self.inodes.fetch_add(1, Ordering::Relaxed);
        Arc::new_cyclic(|me| TmpfsInode {
            fs: self.clone(),
            me: me.clone(),
            ino: self.next_ino.fetch_add(1, Ordering::Relaxed),
            ftype,
            parent: Mutex::new(parent),
            meta: Mutex::new(Meta { mode, uid, gid, nlink, linkable: false, atime: t, mtime: t, ctime: t }),
            xattrs: Mutex::new(xattr::Xattrs::default()),
            kind,
        })
    }
}

/// Attributes every inode has.
#[derive(Clone, Copy, Debug)]
struct Meta {
    /// Type and permission bits.
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    /// An unnamed file (O_TMPFILE without O_EXCL) that linkat may still give a name.
    linkable: bool,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

impl Meta {
    /// mtime and ctime become now (the contents changed).
    fn modified(&mut self) {
        let t = now();
        self.mtime = t;
        self.ctime = t;
    }

    /// relatime: atime moves on an access when it is not after the last change, or a day old.
    fn accessed(&mut self) {
        let t = now();
        let key = |ts: Timespec| (ts.tv_sec, ts.tv_nsec);
        if key(self.atime) <= key(self.mtime) || key(self.atime) <= key(self.ctime) || t.tv_sec - self.atime.tv_sec >= 24 * 3600 {
            self.atime = t;
        }
    }
}

enum Kind {
    Dir(Mutex<DirData>),
    Regular(RwLock<RegularData>),
    Symlink(Vec<u8>),
    /// A named pipe: the pipe its opens share.
    Fifo(Arc<Pipe>),
    /// A unix socket's name (binding to it is the socket layer's business).
    Socket,
}

/// A file, directory or symlink of a tmpfs.
pub struct TmpfsInode {
    fs: Arc<Tmpfs>,
    /// This inode, for handing out `Arc`s of it (links, rename).
    me: Weak<TmpfsInode>,
    ino: u64,
    ftype: u32,
    /// A directory's parent (`..`); changes on rename, under `fs.ns`.
    parent: Mutex<Weak<TmpfsInode>>,
    meta: Mutex<Meta>,
    /// `user.` extended attributes.
    xattrs: Mutex<xattr::Xattrs>,
    kind: Kind,
}

impl Drop for TmpfsInode {
    fn drop(&mut self) {
        self.fs.inodes.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TmpfsInode {
    fn meta(&self) -> MutexGuard<'_, Meta> {
        lock(&self.meta)
    }

    fn arc(&self) -> Result<Arc<TmpfsInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    fn dir(&self) -> Result<&Mutex<DirData>, Errno> {
        match &self.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn regular(&self) -> Result<&RwLock<RegularData>, Errno> {
        match &self.kind {
            Kind::Regular(r) => Ok(r),
            Kind::Dir(_) => Err(Errno::EISDIR),
            Kind::Symlink(_) | Kind::Fifo(_) | Kind::Socket => Err(Errno::EINVAL),
        }
    }

    /// The inode number of `..`.
    fn parent_ino(&self) -> u64 {
        lock(&self.parent).upgrade().map_or(self.ino, |p| p.ino)
    }

    /// `other` as an inode of this same filesystem, else EXDEV.
    fn same_fs<'a>(&self, other: &'a Arc<dyn Inode>) -> Result<&'a TmpfsInode, Errno> {
        match other.as_any().and_then(|a| a.downcast_ref::<TmpfsInode>()) {
            Some(t) if Arc::ptr_eq(&t.fs, &self.fs) => Ok(t),
            _ => Err(Errno::EXDEV),
        }
    }

    /// Whether this directory is `other` or one of its ancestors (under `fs.ns`).
    fn is_ancestor_of(&self, other: &TmpfsInode) -> bool {
        if self.ino == other.ino {
            return true;
        }
        let mut cur = lock(&other.parent).upgrade();
        while let Some(d) = cur {
            if d.ino == self.ino {
                return true;
            }
            let next = lock(&d.parent).upgrade();
            cur = next;
        }
        false
    }
}

impl Inode for TmpfsInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (size, blocks) = match &self.kind {
            Kind::Regular(r) => {
                let r = r.read().unwrap_or_else(|p| p.into_inner());
                (r.size as i64, (r.obj.realised_bytes() / 512) as i64)
            }
            Kind::Dir(d) => ((lock(d).len() as i64 + 2) * BOGO_DIRENT_SIZE, 0),
            Kind::Symlink(t) => (t.len() as i64, 0),
            Kind::Fifo(_) | Kind::Socket => (0, 0),
        };
        let m = *self.meta();
        Ok(Stat {
            st_dev: self.fs.dev,
            st_ino: self.ino,
            st_nlink: m.nlink,
            st_mode: m.mode,
            st_uid: m.uid,
            st_gid: m.gid,
            st_size: size,
            st_blksize: 4096,
            st_blocks: blocks,
            st_atime: m.atime.tv_sec,
            st_atime_nsec: m.atime.tv_nsec,
            st_mtime: m.mtime.tv_sec,
            st_mtime_nsec: m.mtime.tv_nsec,
            st_ctime: m.ctime.tv_sec,
            st_ctime_nsec: m.ctime.tv_nsec,
            ..Default::default()
        })
    }

    fn file_type(&self) -> u32 {
        self.ftype
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let node = lock(self.dir()?).get(name).ok_or(Errno::ENOENT)?;
        Ok(node)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        let me = self.arc()?;
        match &self.kind {
            Kind::Dir(_) => Ok(Arc::new(TmpfsDirFile::new(me))),
            Kind::Regular(_) => {
                if flags & O_TRUNC != 0 {
                    self.truncate(0)?;
                }
                Ok(Arc::new(TmpfsFile::new(me)))
            }
            Kind::Symlink(_) => Err(Errno::ELOOP),
            Kind::Fifo(pipe) => Ok(open_fifo(pipe, flags)?),
            Kind::Socket => Err(Errno::ENXIO),
        }
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        let (total, free) = self.fs.acct.blocks();
        let files = self.fs.inodes.load(Ordering::Relaxed);
        let (f_files, f_ffree) = self.fs.acct.inodes(files).unwrap_or((MAX_INODES.max(files), MAX_INODES.saturating_sub(files)));
        Ok(Statfs {
            f_type: TMPFS_MAGIC,
            f_bsize: 4096,
            f_blocks: total,
            f_bfree: free,
            f_bavail: free,
            f_files,
            f_ffree,
            f_namelen: 255,
            f_frsize: 4096,
            f_flags: ST_VALID,
            ..Default::default()
        })
    }

    fn read_only(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.add_node(name, S_IFREG | (mode & 0o7777), uid, gid, None)?)
    }

    fn create_unnamed(&self, mode: u32, uid: u32, gid: u32, linkable: bool) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.add_unnamed(S_IFREG | (mode & 0o7777), uid, gid, linkable)?)
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.add_node(name, S_IFDIR | (mode & 0o7777), uid, gid, None)?)
    }

    fn symlink(&self, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.add_node(name, S_IFLNK | 0o777, uid, gid, Some(target))?)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let target = self.same_fs(target)?.arc()?;
        self.add_link(name, target)
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.remove(name, false)
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.remove(name, true)
    }

    fn rename(&self, old_name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8], flags: u32) -> Result<(), Errno> {
        let new_dir = self.same_fs(new_dir)?;
        self.rename_in(old_name, new_dir, new_name, flags)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let r = self.regular()?;
        let mut data = r.write().unwrap_or_else(|p| p.into_inner());
        data.truncate(size)?;
        self.meta().modified();
        Ok(())
    }

    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<(), Errno> {
        let r = self.regular()?;
        let mut data = r.write().unwrap_or_else(|p| p.into_inner());
        if data.fallocate(mode, offset, len)? {
            self.meta().modified();
        }
        Ok(())
    }

    fn mknod(&self, name: &[u8], mode: u32, _rdev: u64, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        match mode & S_IFMT {
            S_IFREG | S_IFIFO | S_IFSOCK => Ok(self.add_node(name, mode & (S_IFMT | 0o7777), uid, gid, None)?),
            0 => Ok(self.add_node(name, S_IFREG | (mode & 0o7777), uid, gid, None)?),
            // Device nodes would need a device switch; none is reachable through tmpfs.
            _ => Err(Errno::EPERM),
        }
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        lock(&self.xattrs).get(name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        lock(&self.xattrs).set(name, value, flags)?;
        self.meta().ctime = now();
        Ok(())
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(lock(&self.xattrs).list())
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        lock(&self.xattrs).remove(name)?;
        self.meta().ctime = now();
        Ok(())
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        let mut m = self.meta();
        let t = now();
        if let Some(mode) = attr.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = attr.uid {
            m.uid = uid;
        }
        if let Some(gid) = attr.gid {
            m.gid = gid;
        }
        let at = |ts: TimeSet| match ts {
            TimeSet::Now => t,
            TimeSet::At(ts) => ts,
        };
        if let Some(a) = attr.atime {
            m.atime = at(a);
        }
        if let Some(mt) = attr.mtime {
            m.mtime = at(mt);
        }
        m.ctime = t;
        Ok(())
    }
}

/// Opens an end of a named pipe (see [`Pipe::open_fifo`]: a blocking open waits for the
/// other end).
pub(crate) fn open_fifo(pipe: &Arc<Pipe>, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
    Ok(pipe.open_fifo(flags)?)
}

#[cfg(test)]
mod tests;
