//! A minimal devfs mounted at /dev: the memory character devices (null, zero, full,
//! random, urandom), the terminals (tty: the caller's controlling terminal; console: the
//! sandbox's console pty under `rvisor do --tty`; ptmx: a new pseudo-terminal), the
//! `fd`, `stdin`, `stdout`, `stderr` links into /proc/self, and the mount points `shm`
//! (a tmpfs) and `pts` (devpts). The guest never reaches the host's device nodes.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::dirent::{DT_CHR, DT_DIR, DT_LNK};
use rvisor_syscalls::flags::mode::{S_IFCHR, S_IFDIR, S_IFLNK};
use rvisor_syscalls::flags::fsmagic::TMPFS_MAGIC;
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use super::inode::{DirEntry, Inode};

/// The device number devfs reports for itself.
const DEVFS_DEV: u64 = 0x06;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemDev {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

const DEVICES: [(&str, MemDev, u32); 5] =
    [("full", MemDev::Full, 7), ("null", MemDev::Null, 3), ("random", MemDev::Random, 8), ("urandom", MemDev::Urandom, 9), ("zero", MemDev::Zero, 5)];

/// Entries of /dev besides the memory devices.
#[derive(Clone, Copy, Debug)]
enum Extra {
    Tty,
    Console,
    Ptmx,
    Link(&'static str),
    MountPoint,
}

const EXTRAS: [(&str, Extra); 9] = [
    ("console", Extra::Console),
    ("fd", Extra::Link("/proc/self/fd")),
    ("ptmx", Extra::Ptmx),
    ("pts", Extra::MountPoint),
    ("shm", Extra::MountPoint),
    ("stderr", Extra::Link("/proc/self/fd/2")),
    ("stdin", Extra::Link("/proc/self/fd/0")),
    ("stdout", Extra::Link("/proc/self/fd/1")),
    ("tty", Extra::Tty),
];

fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff)
}

fn now() -> (i64, i64) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

fn base_stat(ino: u64, mode: u32, nlink: u64, rdev: u64, time: (i64, i64)) -> Stat {
    Stat {
        st_dev: DEVFS_DEV,
        st_ino: ino,
        st_nlink: nlink,
        st_mode: mode,
        st_rdev: rdev,
        st_blksize: 4096,
        st_atime: time.0,
        st_atime_nsec: time.1,
        st_mtime: time.0,
        st_mtime_nsec: time.1,
        st_ctime: time.0,
        st_ctime_nsec: time.1,
        ..Default::default()
    }
}

fn statfs() -> Statfs {
    Statfs { f_type: TMPFS_MAGIC, f_bsize: 4096, f_namelen: 255, f_frsize: 4096, ..Default::default() }
}

/// The /dev directory.
pub struct DevDir {
    created: (i64, i64),
}

impl DevDir {
    pub fn new() -> Arc<DevDir> {
        Arc::new(DevDir { created: now() })
    }
}

impl Inode for DevDir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(1, S_IFDIR | 0o755, 2, 0, self.created))
    }

    fn file_type(&self) -> u32 {
        S_IFDIR
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if let Some((i, &(_, kind, minor))) = DEVICES.iter().enumerate().find(|(_, (n, _, _))| n.as_bytes() == name) {
            return Ok(Arc::new(DevNode { kind, ino: i as u64 + 2, minor, created: self.created }));
        }
        let (i, &(_, kind)) = EXTRAS.iter().enumerate().find(|(_, (n, _))| n.as_bytes() == name).ok_or(Errno::ENOENT)?;
        let ino = (DEVICES.len() + i) as u64 + 2;
        Ok(match kind {
            Extra::Tty => Arc::new(TtyNode { console: false, ino, created: self.created }),
            Extra::Console => Arc::new(TtyNode { console: true, ino, created: self.created }),
            Extra::Ptmx => Arc::new(super::devpts::PtmxNode { created: self.created, dev: DEVFS_DEV, ino, mode: 0o666 }),
            Extra::Link(target) => Arc::new(LinkNode { target, ino, created: self.created }),
            // Mount points: boot.rs mounts their filesystems over them.
            Extra::MountPoint => return Err(Errno::ENOENT),
        })
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        Ok(Arc::new(DevDirFile { stat: self.stat()? }))
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs())
    }

    fn read_only(&self) -> bool {
        false
    }
}

struct DevDirFile {
    stat: Stat,
}

impl FileImpl for DevDirFile {
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
        let mut all = vec![
            DirEntry { ino: 1, next_offset: 1, d_type: DT_DIR, name: b".".to_vec() },
            DirEntry { ino: 1, next_offset: 2, d_type: DT_DIR, name: b"..".to_vec() },
        ];
        for (i, (name, _, _)) in DEVICES.iter().enumerate() {
            all.push(DirEntry { ino: i as u64 + 2, next_offset: i as u64 + 3, d_type: DT_CHR, name: name.as_bytes().to_vec() });
        }
        for (i, (name, kind)) in EXTRAS.iter().enumerate() {
            let ino = (DEVICES.len() + i) as u64 + 2;
            let d_type = match kind {
                Extra::Link(_) => DT_LNK,
                Extra::MountPoint => DT_DIR,
                _ => DT_CHR,
            };
            all.push(DirEntry { ino, next_offset: ino + 1, d_type, name: name.as_bytes().to_vec() });
        }
        Ok(all.into_iter().skip(offset as usize).collect())
    }
}

/// One memory device node.
struct DevNode {
    kind: MemDev,
    ino: u64,
    minor: u32,
    created: (i64, i64),
}

impl Inode for DevNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(self.ino, S_IFCHR | 0o666, 1, makedev(1, self.minor as u64), self.created))
    }

    fn file_type(&self) -> u32 {
        S_IFCHR
    }

    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        Ok(Arc::new(MemDevFile { kind: self.kind, stat: self.stat()? }))
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs())
    }

    fn read_only(&self) -> bool {
        false
    }
}

struct MemDevFile {
    kind: MemDev,
    stat: Stat,
}

impl FileImpl for MemDevFile {
    fn read(&self, buf: &mut [u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        match self.kind {
            MemDev::Null => Ok(0),
            MemDev::Zero | MemDev::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            MemDev::Random | MemDev::Urandom => {
                // SAFETY: `buf` is a live exclusive slice of the length passed.
                let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < 0 {
                    return Err(super::host::last_errno());
                }
                Ok(n as usize)
            }
        }
    }

    fn write(&self, buf: &[u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        match self.kind {
            MemDev::Full => Err(Errno::ENOSPC),
            _ => Ok(buf.len()),
        }
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
}

/// /dev/tty (the caller's controlling terminal) or /dev/console (the sandbox's console).
struct TtyNode {
    console: bool,
    ino: u64,
    created: (i64, i64),
}

impl Inode for TtyNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (mode, minor) = if self.console { (0o600, 1) } else { (0o666, 0) };
        Ok(base_stat(self.ino, S_IFCHR | mode, 1, makedev(5, minor), self.created))
    }

    fn file_type(&self) -> u32 {
        S_IFCHR
    }

    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        if self.console {
            super::devpts::open_console(flags)
        } else {
            super::devpts::open_controlling(flags)
        }
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs())
    }

    fn read_only(&self) -> bool {
        false
    }
}

/// A symbolic link of /dev (fd, stdin, stdout, stderr).
struct LinkNode {
    target: &'static str,
    ino: u64,
    created: (i64, i64),
}

impl Inode for LinkNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = base_stat(self.ino, S_IFLNK | 0o777, 1, 0, self.created);
        st.st_size = self.target.len() as i64;
        Ok(st)
    }

    fn file_type(&self) -> u32 {
        S_IFLNK
    }

    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Ok(self.target.as_bytes().to_vec())
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        Err(Errno::ELOOP)
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs())
    }
}
