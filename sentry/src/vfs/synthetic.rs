//! Small read-only trees of fixed files, built by the sentry (the first pieces of sysfs;
//! empty directories over host pseudo filesystems the gofer must never expose).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::dirent::{DT_DIR, DT_REG};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFREG};
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use super::inode::{DirEntry, Inode};

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

fn now() -> (i64, i64) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

fn attrs(dev: u64, mode: u32, nlink: u64, size: i64) -> Stat {
    let (s, ns) = now();
    Stat {
        st_dev: dev,
        st_ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        st_nlink: nlink,
        st_mode: mode,
        st_size: size,
        st_blksize: 4096,
        st_atime: s,
        st_atime_nsec: ns,
        st_mtime: s,
        st_mtime_nsec: ns,
        st_ctime: s,
        st_ctime_nsec: ns,
        ..Default::default()
    }
}

/// A node of a synthetic tree, as a builder describes it.
pub enum Node {
    Dir(Vec<(&'static str, Node)>),
    File(Vec<u8>),
}

/// Builds the tree `node` as inodes of a filesystem with device `dev` and magic `fs_magic`.
pub fn build(dev: u64, fs_magic: i64, node: Node) -> Arc<dyn Inode> {
    match node {
        Node::File(content) => Arc::new(SynthFile { stat: attrs(dev, S_IFREG | 0o444, 1, content.len() as i64), content: Arc::new(content), fs_magic }),
        Node::Dir(children) => {
            let children: Vec<(Vec<u8>, Arc<dyn Inode>)> =
                children.into_iter().map(|(n, c)| (n.as_bytes().to_vec(), build(dev, fs_magic, c))).collect();
            let subdirs = children.iter().filter(|(_, c)| c.is_dir()).count() as u64;
            Arc::new(SynthDir { stat: attrs(dev, S_IFDIR | 0o555, 2 + subdirs, 0), children: Arc::new(children), fs_magic })
        }
    }
}

fn statfs(magic: i64) -> Statfs {
    Statfs { f_type: magic, f_bsize: 4096, f_namelen: 255, f_frsize: 4096, ..Default::default() }
}

struct SynthDir {
    stat: Stat,
    children: Arc<Vec<(Vec<u8>, Arc<dyn Inode>)>>,
    fs_magic: i64,
}

impl Inode for SynthDir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }

    fn file_type(&self) -> u32 {
        S_IFDIR
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        self.children.iter().find(|(n, _)| n == name).map(|(_, c)| c.clone()).ok_or(Errno::ENOENT)
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        Ok(Arc::new(SynthDirFile { stat: self.stat, children: self.children.clone() }))
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs(self.fs_magic))
    }
}

struct SynthDirFile {
    stat: Stat,
    children: Arc<Vec<(Vec<u8>, Arc<dyn Inode>)>>,
}

impl FileImpl for SynthDirFile {
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
        let ino = self.stat.st_ino;
        let mut all = vec![
            DirEntry { ino, next_offset: 1, d_type: DT_DIR, name: b".".to_vec() },
            DirEntry { ino, next_offset: 2, d_type: DT_DIR, name: b"..".to_vec() },
        ];
        for (i, (name, c)) in self.children.iter().enumerate() {
            let st = c.stat()?;
            let d_type = if c.is_dir() { DT_DIR } else { DT_REG };
            all.push(DirEntry { ino: st.st_ino, next_offset: i as u64 + 3, d_type, name: name.clone() });
        }
        Ok(all.into_iter().skip(offset as usize).collect())
    }
}

struct SynthFile {
    stat: Stat,
    content: Arc<Vec<u8>>,
    fs_magic: i64,
}

impl Inode for SynthFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }

    fn file_type(&self) -> u32 {
        S_IFREG
    }

    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        Ok(Arc::new(SynthFileData { stat: self.stat, content: self.content.clone() }))
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(statfs(self.fs_magic))
    }
}

/// An open read-only file whose contents are a fixed buffer (synthetic files, and procfs
/// files as generated at open).
pub(crate) struct SynthFileData {
    stat: Stat,
    content: Arc<Vec<u8>>,
}

impl SynthFileData {
    pub(crate) fn new(stat: Stat, content: Vec<u8>) -> SynthFileData {
        SynthFileData { stat, content: Arc::new(content) }
    }
}

impl FileImpl for SynthFileData {
    fn read(&self, buf: &mut [u8], offset: u64, _flags: u32) -> Result<usize, Errno> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.content.len());
        let n = buf.len().min(self.content.len() - start);
        buf[..n].copy_from_slice(&self.content[start..start + n]);
        Ok(n)
    }

    fn write(&self, _: &[u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EACCES)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
}

/// The sandbox's sysfs: the CPU topology files glibc's `get_nprocs` and `nproc` read, and
/// /sys/fs/cgroup as a mount point for a container's cgroup mount.
pub fn sysfs(ncpus: usize) -> Arc<dyn Inode> {
    let range = if ncpus <= 1 { "0\n".to_string() } else { format!("0-{}\n", ncpus - 1) };
    let cpu = Node::Dir(vec![
        ("online", Node::File(range.clone().into_bytes())),
        ("possible", Node::File(range.clone().into_bytes())),
        ("present", Node::File(range.into_bytes())),
    ]);
    let tree = Node::Dir(vec![
        ("devices", Node::Dir(vec![("system", Node::Dir(vec![("cpu", cpu)]))])),
        ("fs", Node::Dir(vec![("cgroup", Node::Dir(vec![]))])),
    ]);
    build(0x8, rvisor_syscalls::flags::fsmagic::SYSFS_MAGIC, tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_shows_the_cpu_range() {
        let root = sysfs(2);
        let online = root.lookup(b"devices").unwrap().lookup(b"system").unwrap().lookup(b"cpu").unwrap().lookup(b"online").unwrap();
        let f = online.open(0).unwrap();
        let mut buf = [0u8; 16];
        let n = f.read(&mut buf, 0, 0).unwrap();
        assert_eq!(&buf[..n], b"0-1\n");
        assert_eq!(f.read(&mut buf, 4, 0).unwrap(), 0);
        assert!(root.lookup(b"nope").is_err());
    }
}
