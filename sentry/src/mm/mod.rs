//! Guest memory: the memory file, per-address-space memory managers, demand paging and
//! the copy routines syscalls use to reach guest memory.
//!
//! # Model
//! - [`MemoryFile`]: every page of guest memory is a page of one memfd, which the sentry
//!   maps once into itself.
//! - [`MemoryManager`]: one per guest address space. It keeps
//!   - the VMAs ([`vma::VmaSet`]): what the guest mapped, with permissions and backing;
//!   - the realised pages ([`pma::PmaSet`]): guest page runs → memory-file ranges.
//!
//!   Nothing is allocated at mmap time: the first touch (a guest page fault reported by the
//!   platform, or a syscall copy) realises pages.
//! - Invariant: the platform's [`AddressSpace`] maps only realised pages, with the
//!   permissions of their VMA. So before realised pages are released they are unmapped from
//!   the address space, and where no page is realised nothing needs unmapping.
//!
//! # Sharing pages: reference counts, fork and copy-on-write
//! - Memory-file pages are reference counted ([`MemoryFile::inc_ref`],
//!   [`MemoryFile::release`] drops one reference): every realised run in a `PmaSet` holds
//!   one reference per page, and so does every [`SharedMemory`] object for its pages. A
//!   page returns to the file when its last reference goes.
//! - MAP_SHARED anonymous memory is a [`SharedMemory`] object ([`Backing::Shared`]); each
//!   address space that touches one of its pages records the object's page in its own
//!   `PmaSet`, so all of them use the same memory.
//! - [`MemoryManager::fork`] copies the VMAs (except MADV_DONTFORK ones) and the realised
//!   runs, taking a reference for the child. In a private VMA a page with more than one
//!   reference is copy-on-write: it is only ever mapped read-only, and the parent's
//!   writable mappings of private pages are removed at fork. A write (a write fault, or a
//!   syscall copy into guest memory) to such a page first copies it into a fresh page
//!   (`cow.rs`); a page whose count has dropped back to 1 is simply taken over. Pages of
//!   shared VMAs are never copied.
//! - Invariant, extended: the platform address space maps only pages this memory manager
//!   holds a reference to, and maps a page writable only if its VMA is shared or this is
//!   the page's only reference.

mod cow;
mod error;
mod fault;
mod fork;
mod futex;
mod io;
pub mod layout;
mod memfile;
mod mmap;
pub mod pma;
mod refs;
mod remap;
mod residency;
mod shm;
pub mod vma;

use std::sync::{Arc, Mutex, MutexGuard};

use rvisor_platform::{AddressSpace, Perms};
use rvisor_syscalls::Errno;

pub use error::{FaultError, MmError};
pub use futex::{FutexKey, MmId};
pub use residency::{MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT};
pub use shm::SharedMemory;
pub use memfile::{MemoryFile, DEFAULT_WINDOW};
pub use mmap::{MapRequest, Placement};
pub use vma::{permits, Backing, Vma};

/// The guest page size.
pub const PAGE_SIZE: u64 = 4096;
/// Lowest address mmap hands out or accepts with MAP_FIXED (Linux's `mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x10000;
/// Default RLIMIT_STACK.
pub const DEFAULT_STACK_LIMIT: u64 = 8 << 20;
/// Linux's `stack_guard_gap`: nothing is placed, and no stack grows, this close below a
/// growing stack.
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
/// Pages realised and mapped together on a fault (an aligned window around the fault).
pub const FAULT_AROUND_PAGES: u64 = 16;

/// `x` rounded up to a page boundary, or None on overflow.
pub fn page_up(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// `x` rounded down to a page boundary.
pub fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// A file whose contents can back private mappings (implemented by the VFS's files).
///
/// `read_at` is called with the address-space lock of the [`MemoryManager`] held (when a
/// fault or a syscall copy realises file pages), so it must not call back into that
/// memory manager (e.g. a procfs file generating its contents from this address space
/// should snapshot them at open time).
pub trait FileSource: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at end of file).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Current size of the file in bytes.
    fn size(&self) -> Result<u64, Errno>;
}

/// A VMA as /proc/pid/maps shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    pub start: u64,
    pub end: u64,
    pub perms: Perms,
    pub shared: bool,
    pub growsdown: bool,
    /// File offset of `start` for file-backed VMAs.
    pub file_offset: Option<u64>,
    pub name: Option<Arc<str>>,
}

/// Mutable state of a [`MemoryManager`].
pub(crate) struct MmState {
    vmas: vma::VmaSet,
    pmas: pma::PmaSet,
    /// Start of the heap (page-aligned) and the current, unaligned program break.
    brk_start: u64,
    brk: u64,
    /// Top-down mmap placement starts below this.
    mmap_base: u64,
    /// RLIMIT_STACK: the most a growsdown VMA may grow to.
    stack_limit: u64,
    /// Address-space layout randomisation (off with personality ADDR_NO_RANDOMIZE).
    aslr: bool,
    /// mlockall(MCL_FUTURE): new mappings are locked.
    lock_future: bool,
    /// mlockall(MCL_FUTURE | MCL_ONFAULT): ... without populating them.
    lock_future_onfault: bool,
    /// RLIMIT_MEMLOCK for unprivileged callers; None without a limit (CAP_IPC_LOCK).
    memlock_limit: Option<u64>,
}

impl MmState {
    fn new(mmap_base: u64) -> MmState {
        MmState {
            vmas: vma::VmaSet::default(),
            pmas: pma::PmaSet::default(),
            brk_start: 0,
            brk: 0,
            mmap_base,
            stack_limit: DEFAULT_STACK_LIMIT,
            aslr: true,
            lock_future: false,
            lock_future_onfault: false,
            memlock_limit: None,
        }
    }
}

/// The memory of one guest address space.
pub struct MemoryManager {
    id: MmId,
    mf: Arc<MemoryFile>,
    as_: Arc<dyn AddressSpace>,
    max_addr: u64,
    state: Mutex<MmState>,
}

impl std::fmt::Debug for MemoryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("MemoryManager")
            .field("max_addr", &format_args!("{:#x}", self.max_addr))
            .field("vmas", &st.vmas.len())
            .field("realised", &st.pmas.realised_bytes())
            .finish()
    }
}

impl MemoryManager {
    /// An empty address space whose mappings all lie below `max_addr` (the platform's
    /// `max_user_address`), with layout randomisation on.
    pub fn new(mf: Arc<MemoryFile>, as_: Arc<dyn AddressSpace>, max_addr: u64) -> MemoryManager {
        let max_addr = page_down(max_addr);
        let mmap_base = layout::mmap_base(max_addr, DEFAULT_STACK_LIMIT, true);
        Self::with_state(mf, as_, max_addr, MmState::new(mmap_base))
    }

    /// What an exiting task holds once it let go of its memory (Linux's `exit_mm`): no
    /// mappings and no address space; every access fails with EFAULT.
    pub fn exited(mf: Arc<MemoryFile>) -> MemoryManager {
        Self::with_state(mf, Arc::new(DroppedAddressSpace), 0, MmState::new(0))
    }

    fn with_state(mf: Arc<MemoryFile>, as_: Arc<dyn AddressSpace>, max_addr: u64, st: MmState) -> MemoryManager {
        MemoryManager { id: MmId::next(), mf, as_, max_addr, state: Mutex::new(st) }
    }

    /// This address space's identity (private futex keys); never reused.
    pub fn id(&self) -> MmId {
        self.id
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, MmState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // breaks memory safety; carry on rather than propagate the poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The platform address space these mappings go to.
    pub fn address_space(&self) -> &Arc<dyn AddressSpace> {
        &self.as_
    }

    /// The memory file pages come from.
    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    /// One past the highest mappable address.
    pub fn max_addr(&self) -> u64 {
        self.max_addr
    }

    /// Whether layout randomisation is on.
    pub fn aslr(&self) -> bool {
        self.lock().aslr
    }

    /// Turns layout randomisation on or off (personality ADDR_NO_RANDOMIZE) and recomputes
    /// the mmap base; call before anything is mapped (i.e. before loading).
    pub fn set_aslr(&self, on: bool) {
        let mut st = self.lock();
        st.aslr = on;
        st.mmap_base = layout::mmap_base(self.max_addr, st.stack_limit, on);
    }

    /// Where top-down mmap placement starts.
    pub fn mmap_base(&self) -> u64 {
        self.lock().mmap_base
    }

    /// RLIMIT_STACK (the most the stack VMA grows to).
    pub fn stack_limit(&self) -> u64 {
        self.lock().stack_limit
    }

    /// Sets RLIMIT_STACK; before loading it also moves the mmap base like Linux.
    pub fn set_stack_limit(&self, limit: u64) {
        let mut st = self.lock();
        st.stack_limit = limit;
        if st.vmas.is_empty() {
            st.mmap_base = layout::mmap_base(self.max_addr, limit, st.aslr);
        }
    }

    /// The VMAs, for /proc/pid/maps.
    pub fn vmas_snapshot(&self) -> Vec<VmaInfo> {
        let st = self.lock();
        st.vmas
            .iter()
            .map(|v| VmaInfo {
                start: v.start,
                end: v.end,
                perms: v.perms,
                shared: v.shared,
                growsdown: v.growsdown,
                file_offset: match &v.backing {
                    Backing::File { offset, .. } => Some(*offset),
                    Backing::Anonymous | Backing::Shared { .. } => None,
                },
                name: v.name.clone(),
            })
            .collect()
    }

    /// Bytes of guest memory realised in this address space (resident set).
    pub fn realised_bytes(&self) -> u64 {
        self.lock().pmas.realised_bytes()
    }

    /// Unmaps realised pages in `[start, end)` from the address space and releases them
    /// (drops this address space's reference; pages shared with others stay). If the
    /// platform cannot unmap them, they are leaked rather than handed to someone else while
    /// still visible to this guest.
    fn release_pages(&self, st: &mut MmState, start: u64, end: u64) {
        if !st.pmas.any_in(start, end) {
            return;
        }
        match self.as_.unmap(start, end - start) {
            Ok(()) => st.pmas.remove_range(start, end, |off, len| self.mf.release(off, len)),
            Err(e) => {
                tracing::error!(start, end, error = %e, "unmapping guest pages failed; leaking them");
                st.pmas.remove_range(start, end, |_, _| {});
            }
        }
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        let as_ = std::mem::replace(&mut self.as_, Arc::new(DroppedAddressSpace));
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&as_) == 1 && Arc::weak_count(&as_) == 0 {
            // We hold the last reference: dropping it tears the address space down (the
            // ptrace platform kills and reaps its stub), so no mapping of our pages is left.
            drop(as_);
        } else {
            // Someone else keeps the address space: unmap first, VMA by VMA (never one huge
            // range: the platform's stub code lives in the address space too), so no stale
            // mapping of a page survives into its next owner.
            let mut unmapped = true;
            for v in st.vmas.iter() {
                if st.pmas.any_in(v.start, v.end) && as_.unmap(v.start, v.len()).is_err() {
                    unmapped = false;
                }
            }
            if !unmapped {
                tracing::error!("unmapping a dying address space failed; leaking its pages");
                return;
            }
        }
        let pmas = std::mem::take(&mut st.pmas);
        for r in pmas.runs_in(0, u64::MAX) {
            self.mf.release(r.offset, r.end - r.start);
        }
    }
}

/// Stands in for the address space while a [`MemoryManager`] is dropped.
struct DroppedAddressSpace;

impl AddressSpace for DroppedAddressSpace {
    fn map(&self, addr: u64, len: u64, _: u64, _: Perms) -> Result<(), rvisor_platform::PlatformError> {
        Err(rvisor_platform::PlatformError::BadRange { addr, len })
    }
    fn unmap(&self, _: u64, _: u64) -> Result<(), rvisor_platform::PlatformError> {
        Ok(())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
pub(crate) mod testutil;
