//! File descriptor tables, and the sandbox-wide cap on open fds.
//!
//! Every fd costs sentry memory (the slot, and usually an open file description behind it),
//! and RLIMIT_NOFILE is per process, so many processes could each hold a million. Like
//! Linux's `fs.file-max`, a sandbox-wide cap bounds them all: an fd that would take a new
//! slot beyond it fails with ENFILE. The cap scales with the sandbox's memory limit
//! ([`set_memory_limit`]; one sentry serves one sandbox, so the count is a process global).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rvisor_syscalls::Errno;

use crate::vfs::FileDescription;

/// The default RLIMIT_NOFILE soft limit.
pub const DEFAULT_NOFILE: u64 = 1024;
/// The hard ceiling of any fd table (the kernel's nr_open default).
pub const NR_OPEN: u64 = 1 << 20;

/// The sandbox-wide cap without a memory limit.
pub const DEFAULT_FILE_MAX: u64 = 1 << 21;
/// Memory limit per fd of the cap: 16384 fds for 256 MiB (Linux's file-max, a tenth of RAM
/// in 1 KiB files, would allow 26214; the sentry's host cgroup headroom must hold them, a
/// pipe's minimal buffer each, beside the pipes' own cap).
const BYTES_PER_FILE: u64 = 16 * 1024;
/// The smallest cap, whatever the memory limit.
const MIN_FILE_MAX: u64 = 8192;

/// A count with a cap: fds open in all the sandbox's tables.
struct Budget {
    open: AtomicU64,
    max: AtomicU64,
}

impl Budget {
    const fn new(max: u64) -> Budget {
        Budget { open: AtomicU64::new(0), max: AtomicU64::new(max) }
    }

    /// Takes one, or ENFILE at the cap.
    fn charge_one(&self) -> Result<(), Errno> {
        let max = self.max.load(Ordering::Relaxed);
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1))
            .map(|_| ())
            .map_err(|_| Errno::ENFILE)
    }

    /// Takes `n` without a check (fork's copy of a table).
    fn charge(&self, n: u64) {
        self.open.fetch_add(n, Ordering::Relaxed);
    }

    fn uncharge(&self, n: u64) {
        if n > 0 {
            self.open.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

static FDS: Budget = Budget::new(DEFAULT_FILE_MAX);

/// The fd cap for a memory limit in bytes (0: none).
pub fn file_max_for(memory_limit: u64) -> u64 {
    if memory_limit == 0 {
        DEFAULT_FILE_MAX
    } else {
        (memory_limit / BYTES_PER_FILE).clamp(MIN_FILE_MAX, DEFAULT_FILE_MAX)
    }
}

/// Scales the sandbox-wide fd cap to the memory limit (0: none).
pub fn set_memory_limit(memory_limit: u64) {
    FDS.max.store(file_max_for(memory_limit), Ordering::Relaxed);
}

/// (fds open in the sandbox, the cap).
pub fn open_fds() -> (u64, u64) {
    (FDS.open.load(Ordering::Relaxed), FDS.max.load(Ordering::Relaxed))
}

fn charge_one() -> Result<(), Errno> {
    FDS.charge_one()
}

fn uncharge(n: u64) {
    FDS.uncharge(n)
}

#[derive(Clone)]
struct Entry {
    file: Arc<FileDescription>,
    cloexec: bool,
}

/// A process's fd → open file mapping.
#[derive(Default)]
pub struct FdTable {
    slots: Vec<Option<Entry>>,
}

impl Clone for FdTable {
    /// fork's copy: its fds count against the cap too (a copy is never refused, as Linux's
    /// fork does not fail on file-max; the next fd anyone opens is).
    fn clone(&self) -> FdTable {
        let slots = self.slots.clone();
        FDS.charge(slots.iter().filter(|s| s.is_some()).count() as u64);
        FdTable { slots }
    }
}

impl Drop for FdTable {
    fn drop(&mut self) {
        uncharge(self.slots.iter().filter(|s| s.is_some()).count() as u64);
    }
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable::default()
    }

    /// The file behind `fd`.
    pub fn get(&self, fd: i32) -> Result<Arc<FileDescription>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots.get(i).and_then(|s| s.as_ref()).map(|e| e.file.clone()).ok_or(Errno::EBADF)
    }

    /// Whether `fd` has FD_CLOEXEC.
    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots.get(i).and_then(|s| s.as_ref()).map(|e| e.cloexec).ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&mut self, fd: i32, cloexec: bool) -> Result<(), Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        let e = self.slots.get_mut(i).and_then(|s| s.as_mut()).ok_or(Errno::EBADF)?;
        e.cloexec = cloexec;
        Ok(())
    }

    /// Installs `file` at the lowest free fd ≥ `min` below `limit` (RLIMIT_NOFILE).
    pub fn install(&mut self, file: Arc<FileDescription>, cloexec: bool, min: i32, limit: u64) -> Result<i32, Errno> {
        let limit = limit.min(NR_OPEN) as usize;
        let start = usize::try_from(min).map_err(|_| Errno::EINVAL)?;
        if start >= limit {
            return Err(Errno::EMFILE);
        }
        let free = (start..self.slots.len()).find(|&i| self.slots[i].is_none()).unwrap_or(self.slots.len().max(start));
        if free >= limit {
            return Err(Errno::EMFILE);
        }
        charge_one()?;
        if free >= self.slots.len() {
            self.slots.resize(free + 1, None);
        }
        self.slots[free] = Some(Entry { file, cloexec });
        Ok(free as i32)
    }

    /// Installs `file` at exactly `fd`, returning what was there (dup2/dup3).
    pub fn install_at(&mut self, fd: i32, file: Arc<FileDescription>, cloexec: bool, limit: u64) -> Result<Option<Arc<FileDescription>>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if i as u64 >= limit.min(NR_OPEN) {
            return Err(Errno::EBADF);
        }
        if !matches!(self.slots.get(i), Some(Some(_))) {
            charge_one()?;
        }
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        Ok(self.slots[i].replace(Entry { file, cloexec }).map(|e| e.file))
    }

    /// Removes `fd`, returning its file.
    pub fn remove(&mut self, fd: i32) -> Result<Arc<FileDescription>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        let e = self.slots.get_mut(i).and_then(Option::take).ok_or(Errno::EBADF)?;
        uncharge(1);
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(e.file)
    }

    /// Closes every fd in `[first, last]` (close_range without flags), or marks them
    /// close-on-exec.
    pub fn close_range(&mut self, first: u32, last: u32, only_cloexec: bool) {
        let end = (last as usize).saturating_add(1).min(self.slots.len());
        let mut closed = 0;
        for i in (first as usize).min(end)..end {
            if let Some(e) = self.slots[i].as_mut() {
                if only_cloexec {
                    e.cloexec = true;
                } else {
                    self.slots[i] = None;
                    closed += 1;
                }
            }
        }
        uncharge(closed);
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
    }

    /// Drops every close-on-exec fd (execve), returning their files (whose POSIX locks the
    /// caller releases once the table is unlocked).
    pub fn close_on_exec(&mut self) -> Vec<Arc<FileDescription>> {
        let mut closed = Vec::new();
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|e| e.cloexec) {
                closed.extend(s.take().map(|e| e.file));
            }
        }
        uncharge(closed.len() as u64);
        closed
    }

    /// Open fds in ascending order.
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.slots.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| i as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::FileImpl;
    use rvisor_syscalls::types::Stat;

    struct Dummy;
    impl FileImpl for Dummy {
        fn read(&self, _: &mut [u8], _: u64, _flags: u32) -> Result<usize, Errno> {
            Ok(0)
        }
        fn write(&self, b: &[u8], _: u64, _flags: u32) -> Result<usize, Errno> {
            Ok(b.len())
        }
        fn stat(&self) -> Result<Stat, Errno> {
            Ok(Stat::default())
        }
    }

    fn file() -> Arc<FileDescription> {
        FileDescription::new(Arc::new(Dummy), None, 0)
    }

    #[test]
    fn install_picks_lowest_free_fd_and_respects_limit() {
        let mut t = FdTable::new();
        assert_eq!(t.install(file(), false, 0, 3).unwrap(), 0);
        assert_eq!(t.install(file(), false, 0, 3).unwrap(), 1);
        assert_eq!(t.install(file(), true, 0, 3).unwrap(), 2);
        assert_eq!(t.install(file(), false, 0, 3).unwrap_err(), Errno::EMFILE);
        t.remove(1).unwrap();
        assert_eq!(t.install(file(), false, 0, 3).unwrap(), 1);
        assert_eq!(t.install(file(), false, 10, 64).unwrap(), 10);
        assert!(t.cloexec(2).unwrap());
        t.close_on_exec();
        assert_eq!(t.get(2).err(), Some(Errno::EBADF));
        assert_eq!(t.get(-1).err(), Some(Errno::EBADF));
    }

    #[test]
    fn file_max_scales_with_the_memory_limit() {
        assert_eq!(file_max_for(0), DEFAULT_FILE_MAX);
        assert_eq!(file_max_for(1 << 20), MIN_FILE_MAX);
        assert_eq!(file_max_for(256 << 20), 16384);
        assert_eq!(file_max_for(u64::MAX), DEFAULT_FILE_MAX);
    }

    #[test]
    fn the_budget_refuses_with_enfile_at_its_cap_and_frees_on_uncharge() {
        let b = Budget::new(2);
        b.charge_one().unwrap();
        b.charge_one().unwrap();
        assert_eq!(b.charge_one(), Err(Errno::ENFILE));
        b.uncharge(1);
        b.charge_one().unwrap();
        b.charge(3); // a fork's copy may go over; nothing more fits until it is back under
        assert_eq!(b.charge_one(), Err(Errno::ENFILE));
        b.uncharge(4);
        b.charge_one().unwrap();
    }

    #[test]
    fn tables_keep_their_fds_charged_until_closed() {
        // Other tests open fds at the same time, so only lower bounds hold on the global.
        let mut t = FdTable::new();
        for _ in 0..10 {
            t.install(file(), false, 0, 64).unwrap();
        }
        assert!(open_fds().0 >= 10);
        let copy = t.clone();
        assert!(open_fds().0 >= 20);
        t.install_at(3, file(), false, 64).unwrap();
        t.close_range(0, 4, false);
        t.remove(5).unwrap();
        assert_eq!(t.fds().count(), 4);
        drop(copy);
        drop(t);
    }
}
