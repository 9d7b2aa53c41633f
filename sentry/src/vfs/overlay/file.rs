//! Open overlay files: upper files (reporting the overlay's identity) and merged
//! directory listings.

use std::sync::{Arc, Mutex};

use rvisor_syscalls::flags::dirent::DT_DIR;
use rvisor_syscalls::types::{Stat, DIRENT64_NAME_OFFSET};
use rvisor_syscalls::Errno;

use super::{lock, OverlayInode};
use crate::mm::MemoryManager;
use crate::vfs::file::FileImpl;
use crate::vfs::inode::{DirEntry, Inode};

/// An open upper-layer file: everything is the upper file's, except the identity that
/// fstat reports.
pub(super) struct OverlayFile {
    node: Arc<OverlayInode>,
    inner: Arc<dyn FileImpl>,
}

impl OverlayFile {
    pub(super) fn new(node: Arc<OverlayInode>, inner: Arc<dyn FileImpl>) -> OverlayFile {
        OverlayFile { node, inner }
    }
}

impl FileImpl for OverlayFile {
    fn read(&self, buf: &mut [u8], offset: u64, flags: u32) -> Result<usize, Errno> {
        self.inner.read(buf, offset, flags)
    }

    fn write(&self, buf: &[u8], offset: u64, flags: u32) -> Result<usize, Errno> {
        self.inner.write(buf, offset, flags)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.node.fix_stat(self.inner.stat()?))
    }

    fn is_stream(&self) -> bool {
        self.inner.is_stream()
    }

    fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        self.inner.seek(offset, whence)
    }

    fn getdents(&self, offset: u64, max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        self.inner.getdents(offset, max_bytes)
    }

    fn ioctl(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        self.inner.ioctl(mm, cmd, arg)
    }

    fn is_tty(&self) -> bool {
        self.inner.is_tty()
    }

    fn readiness(&self) -> u32 {
        self.inner.readiness()
    }

    fn wait_queue(&self) -> Option<&crate::kernel::wait::WaitQueue> {
        self.inner.wait_queue()
    }

    fn sync(&self) -> Result<(), Errno> {
        self.inner.sync()
    }

    fn shared_page_cache(&self) -> Option<Arc<crate::mm::SharedMemory>> {
        self.inner.shared_page_cache()
    }

    fn shared_memory(&self) -> Option<Arc<crate::mm::SharedMemory>> {
        self.inner.shared_memory()
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.inner.clone().into_any()
    }

    fn pipe_size(&self) -> Option<usize> {
        self.inner.pipe_size()
    }

    fn set_pipe_size(&self, size: u32) -> Result<usize, Errno> {
        self.inner.set_pipe_size(size)
    }
}

/// An open overlay directory. The merged listing is taken when reading starts (offset 0)
/// and read on from that snapshot, so cookies stay valid while the directory changes
/// (`rm -rf` removes entries between reads).
pub(super) struct OverlayDirFile {
    node: Arc<OverlayInode>,
    snapshot: Mutex<Option<Arc<Vec<DirEntry>>>>,
}

impl OverlayDirFile {
    pub(super) fn new(node: Arc<OverlayInode>) -> OverlayDirFile {
        OverlayDirFile {
            node,
            snapshot: Mutex::new(None),
        }
    }

    /// The listing with `.` and `..` first; each entry's cookie is its index + 1.
    fn listing(&self, offset: u64) -> Result<Arc<Vec<DirEntry>>, Errno> {
        let mut snap = lock(&self.snapshot);
        if let (false, Some(s)) = (offset == 0, snap.as_ref()) {
            return Ok(s.clone());
        }
        let (_, ino) = self.node.identity()?;
        let (_, parent_ino) = self.node.parent_identity()?;
        let mut all = vec![
            DirEntry {
                ino,
                next_offset: 0,
                d_type: DT_DIR,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: parent_ino,
                next_offset: 0,
                d_type: DT_DIR,
                name: b"..".to_vec(),
            },
        ];
        all.extend(self.node.merged_entries()?);
        for (i, e) in all.iter_mut().enumerate() {
            e.next_offset = i as u64 + 1;
        }
        let s = Arc::new(all);
        *snap = Some(s.clone());
        Ok(s)
    }
}

impl FileImpl for OverlayDirFile {
    fn read(&self, _: &mut [u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _: &[u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        self.node.stat()
    }

    fn getdents(&self, offset: u64, max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        let all = self.listing(offset)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for e in all.iter().skip(start) {
            bytes += (DIRENT64_NAME_OFFSET + e.name.len() + 1 + 7) & !7;
            // Always return one entry, so a too-small buffer is reported as EINVAL.
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }
}
