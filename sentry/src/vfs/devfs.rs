//! A minimal devfs mounted at /dev: the memory character devices (null, zero, full,
//! random, urandom), and `shm`, where a tmpfs is mounted. The guest never reaches the
//! host's device nodes.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::dirent::{DT_CHR, DT_DIR};
use rvisor_syscalls::flags::mode::{S_IFCHR, S_IFDIR};
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
        DEVICES
            .iter()
            .enumerate()
            .find(|(_, (n, _, _))| n.as_bytes() == name)
            .map(|(i, &(_, kind, minor))| Arc::new(DevNode { kind, ino: i as u64 + 2, minor, created: self.created }) as Arc<dyn Inode>)
            .ok_or(Errno::ENOENT)
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
        // The mount point of the tmpfs at /dev/shm (boot.rs mounts it).
        let n = DEVICES.len() as u64;
        all.push(DirEntry { ino: n + 2, next_offset: n + 3, d_type: DT_DIR, name: b"shm".to_vec() });
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
