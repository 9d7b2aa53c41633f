//! File descriptor tables.

use std::sync::Arc;

use rvisor_syscalls::Errno;

use crate::vfs::FileDescription;

/// The default RLIMIT_NOFILE soft limit.
pub const DEFAULT_NOFILE: u64 = 1024;
/// The hard ceiling of any fd table (the kernel's nr_open default).
pub const NR_OPEN: u64 = 1 << 20;

#[derive(Clone)]
struct Entry {
    file: Arc<FileDescription>,
    cloexec: bool,
}

/// A process's fd → open file mapping.
#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<Entry>>,
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
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        Ok(self.slots[i].replace(Entry { file, cloexec }).map(|e| e.file))
    }

    /// Removes `fd`, returning its file.
    pub fn remove(&mut self, fd: i32) -> Result<Arc<FileDescription>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        let e = self.slots.get_mut(i).and_then(Option::take).ok_or(Errno::EBADF)?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(e.file)
    }

    /// Closes every fd in `[first, last]` (close_range without flags), or marks them
    /// close-on-exec.
    pub fn close_range(&mut self, first: u32, last: u32, only_cloexec: bool) {
        let end = (last as usize).saturating_add(1).min(self.slots.len());
        for i in (first as usize).min(end)..end {
            if let Some(e) = self.slots[i].as_mut() {
                if only_cloexec {
                    e.cloexec = true;
                } else {
                    self.slots[i] = None;
                }
            }
        }
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
}
