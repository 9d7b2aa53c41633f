//! devpts: pseudo-terminals. /dev/ptmx opens a new pair's master; /dev/pts/N is its
//! replica, a terminal with a real line discipline (termios, canonical and raw mode,
//! echo, signals from ^C/^\/^Z to the foreground process group), window size, and the
//! job-control state of the session it controls. The sandbox has one devpts instance
//! (in the [`crate::kernel::Kernel`]), mounted at /dev/pts.

pub mod console;
mod ioctl;
pub mod jobctl;
pub mod ldisc;
pub mod terminal;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use rvisor_syscalls::flags::dirent::{DT_CHR, DT_DIR};
use rvisor_syscalls::flags::mode::{S_IFCHR, S_IFDIR};
use rvisor_syscalls::flags::open::O_NOCTTY;
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

pub use ioctl::ioctl;
pub use terminal::{PtyMaster, PtyReplica, Terminal};

use super::file::FileImpl;
use super::inode::{DirEntry, Inode};
use crate::kernel::task::{current_kernel, current_task};
use crate::kernel::Kernel;
use terminal::{makedev, now, DEVPTS_DEV};

/// The most pseudo-terminals a sandbox may have at once (Linux's default
/// /proc/sys/kernel/pty/max).
pub const MAX_PTYS: u32 = 4096;
/// devpts's magic number (statfs).
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// The sandbox's pseudo-terminals by index.
pub struct DevPts {
    ptys: Mutex<BTreeMap<u32, Weak<Terminal>>>,
    /// The console of `rvisor do --tty` (/dev/console).
    console: Mutex<Option<Arc<Terminal>>>,
    created: (i64, i64),
}

impl DevPts {
    pub fn new() -> Arc<DevPts> {
        Arc::new(DevPts {
            ptys: Mutex::new(BTreeMap::new()),
            console: Mutex::new(None),
            created: now(),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Weak<Terminal>>> {
        self.ptys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The root directory, to mount at /dev/pts.
    pub fn root(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(PtsDir { pts: self.clone() })
    }

    /// A new pair (locked, as after open(/dev/ptmx)); its master end. ENOSPC when the
    /// sandbox has [`MAX_PTYS`] terminals.
    pub fn new_pair(&self, kernel: Weak<Kernel>, uid: u32, gid: u32) -> Result<Arc<PtyMaster>, Errno> {
        let mut map = self.map();
        map.retain(|_, w| w.strong_count() > 0);
        let index = (0..MAX_PTYS).find(|i| !map.contains_key(i)).ok_or(Errno::ENOSPC)?;
        let tty = Terminal::new(index, kernel, uid, gid);
        map.insert(index, Arc::downgrade(&tty));
        Ok(Arc::new(PtyMaster { tty }))
    }

    /// The terminal /dev/pts/`index` names (its master still open).
    pub fn get(&self, index: u32) -> Option<Arc<Terminal>> {
        self.map().get(&index).and_then(Weak::upgrade).filter(|t| t.master_open())
    }

    /// The controlling terminal of session `sid`, while its leader lives.
    pub fn controlling_terminal(&self, k: &Kernel, sid: i32) -> Option<Arc<Terminal>> {
        if sid <= 0 {
            return None;
        }
        let ttys: Vec<Arc<Terminal>> = self.map().values().filter_map(Weak::upgrade).collect();
        let tty = ttys.into_iter().find(|t| t.session_and_pgrp().0 == sid)?;
        jobctl::session_alive(k, sid).then_some(tty)
    }

    /// Makes `tty` the sandbox's console.
    pub fn set_console(&self, tty: Arc<Terminal>) {
        *self.console.lock().unwrap_or_else(|p| p.into_inner()) = Some(tty);
    }

    fn console(&self) -> Option<Arc<Terminal>> {
        self.console.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn live_indices(&self) -> Vec<u32> {
        self.map()
            .iter()
            .filter(|(_, w)| w.upgrade().is_some_and(|t| t.master_open()))
            .map(|(i, _)| *i)
            .collect()
    }
}

/// The kernel and task running on this host thread.
pub(crate) fn current() -> Option<(Arc<Kernel>, Arc<crate::kernel::TaskHandle>)> {
    Some((current_kernel()?, current_task()?))
}

/// Opens the replica of `tty` for the calling task: EIO while locked or after the master
/// closed; a session leader without a controlling terminal acquires it unless O_NOCTTY.
pub fn open_replica(tty: &Arc<Terminal>, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
    if tty.locked() || !tty.master_open() {
        return Err(Errno::EIO);
    }
    let r = PtyReplica::open(tty);
    if flags & O_NOCTTY == 0 {
        if let Some((k, h)) = current() {
            jobctl::maybe_acquire(&k, &h, tty);
        }
    }
    Ok(r)
}

/// open(/dev/ptmx): a new pair for the calling task.
pub fn open_ptmx() -> Result<Arc<dyn FileImpl>, Errno> {
    let (k, h) = current().ok_or(Errno::ENXIO)?;
    let _ = h;
    let (uid, gid) = replica_owner();
    Ok(k.devpts.new_pair(Arc::downgrade(&k), uid, gid)?)
}

/// The owner of new replicas. Tasks' credentials are not reachable below the syscall
/// layer, so replicas belong to the sandbox user that `rvisor do` runs as.
pub(super) fn replica_owner() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// open(/dev/tty): the caller's controlling terminal (ENXIO without one).
pub fn open_controlling(flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
    let (k, h) = current().ok_or(Errno::ENXIO)?;
    let sid = h.tg.sid();
    let tty = k.devpts.controlling_terminal(&k, sid).ok_or(Errno::ENXIO)?;
    open_replica(&tty, flags | O_NOCTTY)
}

/// open(/dev/console): the console's replica (ENXIO without `--tty`).
pub fn open_console(flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
    let k = current_kernel().ok_or(Errno::ENXIO)?;
    let tty = k.devpts.console().ok_or(Errno::ENXIO)?;
    open_replica(&tty, flags)
}

fn statfs() -> Statfs {
    Statfs {
        f_type: DEVPTS_SUPER_MAGIC,
        f_bsize: 4096,
        f_namelen: 255,
        f_frsize: 4096,
        ..Default::default()
    }
}

/// /dev/pts.
struct PtsDir {
    pts: Arc<DevPts>,
}

impl PtsDir {
    fn dir_stat(&self) -> Stat {
        let t = self.pts.created;
        Stat {
            st_dev: DEVPTS_DEV,
            st_ino: 1,
            st_nlink: 2,
            st_mode: S_IFDIR | 0o755,
            st_blksize: 1024,
            st_atime: t.0,
            st_atime_nsec: t.1,
            st_mtime: t.0,
            st_mtime_nsec: t.1,
            st_ctime: t.0,
            st_ctime_nsec: t.1,
            ..Default::default()
        }
    }
}

impl Inode for PtsDir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.dir_stat())
    }

    fn file_type(&self) -> u32 {
        S_IFDIR
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if name == b"ptmx" {
            return Ok(Arc::new(PtmxNode {
                created: self.pts.created,
                dev: DEVPTS_DEV,
                ino: 2,
                mode: 0o000,
            }));
        }
        let s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Errno::ENOENT);
        }
        let index: u32 = s.parse().map_err(|_| Errno::ENOENT)?;
        let tty = self.pts.get(index).ok_or(Errno::ENOENT)?;
        Ok(Arc::new(PtsNode { tty }))
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        let mut entries = vec![
            DirEntry {
                ino: 1,
                next_offset: 1,
                d_type: DT_DIR,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: 1,
                next_offset: 2,
                d_type: DT_DIR,
                name: b"..".to_vec(),
            },
            DirEntry {
                ino: 2,
                next_offset: 3,
                d_type: DT_CHR,
                name: b"ptmx".to_vec(),
            },
        ];
        for i in self.pts.live_indices() {
            let next = entries.len() as u64 + 1;
            entries.push(DirEntry {
                ino: i as u64 + 3,
                next_offset: next,
                d_type: DT_CHR,
                name: i.to_string().into_bytes(),
            });
        }
        Ok(Arc::new(PtsDirFile {
            stat: self.dir_stat(),
            entries,
        }))
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs())
    }

    fn read_only(&self) -> bool {
        false
    }
}

struct PtsDirFile {
    stat: Stat,
    entries: Vec<DirEntry>,
}

impl FileImpl for PtsDirFile {
    fn read(&self, _: &mut [u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _: &[u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }

    fn getdents(&self, offset: u64, _max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        Ok(self.entries.iter().skip(offset as usize).cloned().collect())
    }
}

/// A ptmx node (/dev/ptmx or /dev/pts/ptmx): each open makes a new pair.
pub struct PtmxNode {
    pub created: (i64, i64),
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
}

impl Inode for PtmxNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let t = self.created;
        Ok(Stat {
            st_dev: self.dev,
            st_ino: self.ino,
            st_nlink: 1,
            st_mode: S_IFCHR | self.mode,
            st_rdev: makedev(5, 2),
            st_blksize: 4096,
            st_atime: t.0,
            st_mtime: t.0,
            st_ctime: t.0,
            ..Default::default()
        })
    }

    fn file_type(&self) -> u32 {
        S_IFCHR
    }

    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        open_ptmx()
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs())
    }

    fn read_only(&self) -> bool {
        false
    }
}

/// /dev/pts/N.
struct PtsNode {
    tty: Arc<Terminal>,
}

impl Inode for PtsNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.tty.replica_stat())
    }

    fn file_type(&self) -> u32 {
        S_IFCHR
    }

    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        open_replica(&self.tty, flags)
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs())
    }

    fn read_only(&self) -> bool {
        false
    }
}
