//! Test helpers: a recording address space and in-memory files.

use std::any::Any;
use std::sync::{Arc, Mutex};

use rvisor_platform::{AddressSpace, Perms, PlatformError};
use rvisor_syscalls::Errno;

use super::{FileSource, MemoryFile, MemoryManager};

/// One call made to [`MockAddressSpace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsCall {
    Map { addr: u64, len: u64, offset: u64, perms: Perms },
    Unmap { addr: u64, len: u64 },
}

/// An address space that records calls instead of mapping anything.
#[derive(Default)]
pub struct MockAddressSpace {
    pub calls: Mutex<Vec<AsCall>>,
}

impl MockAddressSpace {
    pub fn take(&self) -> Vec<AsCall> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl AddressSpace for MockAddressSpace {
    fn map(&self, addr: u64, len: u64, offset: u64, perms: Perms) -> Result<(), PlatformError> {
        assert!(addr % 4096 == 0 && len % 4096 == 0 && offset % 4096 == 0 && len > 0);
        self.calls.lock().unwrap().push(AsCall::Map { addr, len, offset, perms });
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        assert!(addr % 4096 == 0 && len % 4096 == 0 && len > 0);
        self.calls.lock().unwrap().push(AsCall::Unmap { addr, len });
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A read-only file held in memory.
pub struct MemFile(pub Vec<u8>);

impl FileSource for MemFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let Ok(off) = usize::try_from(offset) else { return Ok(0) };
        if off >= self.0.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(self.0.len() as u64)
    }
}

/// The x86_64 user address limit.
pub const MAX_ADDR: u64 = 0x7fff_ffff_f000;

/// A memory manager over a fresh memory file and a recording address space.
pub fn new_mm() -> (MemoryManager, Arc<MockAddressSpace>, Arc<MemoryFile>) {
    let mf = MemoryFile::with_window(4 << 30).unwrap();
    let as_ = Arc::new(MockAddressSpace::default());
    let mm = MemoryManager::new(mf.clone(), as_.clone(), MAX_ADDR);
    // Deterministic layout: fault-around windows are aligned, so results must not depend
    // on where a randomised mmap base happens to fall.
    mm.set_aslr(false);
    (mm, as_, mf)
}
