//! Open file descriptions.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rvisor_syscalls::flags::open::{O_ACCMODE, O_APPEND, O_RDONLY, O_RDWR, O_WRONLY};
use rvisor_syscalls::flags::seek::{SEEK_CUR, SEEK_END, SEEK_SET};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::dentry::Dentry;
use super::inode::DirEntry;
use crate::mm::MemoryManager;

/// What an open file of one kind does. Offsets are managed by [`FileDescription`] for
/// seekable files; stream files (pipes, terminals, host stdio) ignore `offset`.
pub trait FileImpl: Send + Sync {
    /// Reads at `offset` (seekable files) or from the stream. `flags` are the open file
    /// description's status flags (O_NONBLOCK decides whether an empty stream blocks).
    fn read(&self, buf: &mut [u8], offset: u64, flags: u32) -> Result<usize, Errno>;
    /// Writes at `offset` (seekable files) or to the stream (`flags` as for `read`).
    fn write(&self, buf: &[u8], offset: u64, flags: u32) -> Result<usize, Errno>;
    /// Attributes of the open file.
    fn stat(&self) -> Result<Stat, Errno>;
    /// Whether the file keeps its own position (no pread/pwrite; lseek goes to [`Self::seek`]).
    fn is_stream(&self) -> bool {
        false
    }
    /// lseek(2) on a stream file.
    fn seek(&self, _offset: i64, _whence: u32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }
    /// Directory entries from cookie `offset`, at most about `max_bytes` of records.
    fn getdents(&self, _offset: u64, _max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// ioctl(2) requests this file understands.
    fn ioctl(&self, _mm: &MemoryManager, _cmd: u32, _arg: u64) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }
    /// Whether this is a terminal.
    fn is_tty(&self) -> bool {
        false
    }
    /// The poll(2) events (`POLLIN`, `POLLOUT`, `POLLHUP`, ...) that hold now.
    /// Regular files and directories are always ready.
    fn readiness(&self) -> u32 {
        use rvisor_syscalls::flags::poll::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
        POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM
    }
    /// The queue notified whenever [`Self::readiness`] may have changed; `None` for files
    /// whose readiness never changes.
    fn wait_queue(&self) -> Option<&crate::kernel::wait::WaitQueue> {
        None
    }
    /// fsync(2)/fdatasync(2).
    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// The shared-memory object holding the file's pages, for files whose contents live in
    /// the memory file (tmpfs): mmap maps the object itself (file offset = object offset),
    /// so MAP_SHARED mappings and read/write see the same memory. `None`: mmap reads the
    /// file into private pages through [`file_source`].
    /// The socket operations of an IP or netlink socket (`None` for every other file).
    fn as_net_socket(&self) -> Option<&dyn crate::net::NetSocket> {
        None
    }
    /// The concrete object, for the few callers that need a specific kind (epoll, sockets).
    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
    fn shared_page_cache(&self) -> Option<Arc<crate::mm::SharedMemory>> {
        None
    }
    /// For files whose pages are memory (tmpfs): the object every mapping maps.
    fn shared_memory(&self) -> Option<Arc<crate::mm::SharedMemory>> {
        None
    }
    /// For an anonymous-inode file (eventfd, epoll, ...): what /proc/PID/fd/N reads as
    /// after `anon_inode:`, as Linux names it (`[eventfd]`, `inotify`, ...).
    fn anon_name(&self) -> Option<&'static str> {
        None
    }
    /// F_GETPIPE_SZ: the capacity in bytes of a pipe; `None` (EBADF) for other files.
    fn pipe_size(&self) -> Option<usize> {
        None
    }
    /// F_SETPIPE_SZ with the argument as Linux truncates it (`unsigned int`); returns the
    /// new capacity. EBADF for files that are not pipes.
    fn set_pipe_size(&self, _size: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
}

/// An open file: the kind-specific implementation plus the status flags and file offset
/// shared by every fd that refers to it (after dup or fork).
pub struct FileDescription {
    imp: Arc<dyn FileImpl>,
    dentry: Option<Arc<Dentry>>,
    flags: AtomicU32,
    pos: Mutex<u64>,
}

impl FileDescription {
    pub fn new(imp: Arc<dyn FileImpl>, dentry: Option<Arc<Dentry>>, flags: u32) -> Arc<FileDescription> {
        Arc::new(FileDescription { imp, dentry, flags: AtomicU32::new(flags), pos: Mutex::new(0) })
    }

    pub fn imp(&self) -> &Arc<dyn FileImpl> {
        &self.imp
    }

    pub fn dentry(&self) -> Option<&Arc<Dentry>> {
        self.dentry.as_ref()
    }

    /// Access mode and status flags (F_GETFL).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Replaces the changeable status flags (F_SETFL): O_APPEND, O_NONBLOCK, O_ASYNC,
    /// O_DIRECT, O_NOATIME.
    pub fn set_status_flags(&self, new: u32) {
        use rvisor_syscalls::flags::open::{O_ASYNC, O_DIRECT, O_NOATIME, O_NONBLOCK};
        let changeable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
        let old = self.flags();
        self.flags.store((old & !changeable) | (new & changeable), Ordering::Relaxed);
    }

    pub fn readable(&self) -> bool {
        matches!(self.flags() & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    pub fn writable(&self) -> bool {
        matches!(self.flags() & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    /// read(2): at the file position, which advances.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if self.imp.is_stream() {
            return self.imp.read(buf, 0, self.flags());
        }
        let mut pos = self.pos.lock().map_err(|_| Errno::EIO)?;
        let n = self.imp.read(buf, *pos, self.flags())?;
        *pos += n as u64;
        self.notify(rvisor_syscalls::fdkinds::inotify::IN_ACCESS, n);
        Ok(n)
    }

    /// write(2): at the file position (or the end with O_APPEND), which advances.
    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if self.imp.is_stream() {
            return self.imp.write(buf, 0, self.flags());
        }
        let mut pos = self.pos.lock().map_err(|_| Errno::EIO)?;
        if self.flags() & O_APPEND != 0 {
            *pos = self.imp.stat()?.st_size.max(0) as u64;
        }
        let n = self.imp.write(buf, *pos, self.flags())?;
        *pos += n as u64;
        self.notify(rvisor_syscalls::fdkinds::inotify::IN_MODIFY, n);
        Ok(n)
    }

    /// pread64(2).
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if self.imp.is_stream() {
            return Err(Errno::ESPIPE);
        }
        let n = self.imp.read(buf, offset, self.flags())?;
        self.notify(rvisor_syscalls::fdkinds::inotify::IN_ACCESS, n);
        Ok(n)
    }

    /// Reports an inotify event on the file after a transfer of `n` bytes (none for 0).
    fn notify(&self, mask: u32, n: usize) {
        if let (Some(d), true) = (&self.dentry, n > 0 && super::inotify::active()) {
            super::inotify::file_event(d, mask);
        }
    }

    /// pwrite64(2).
    pub fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if self.imp.is_stream() {
            return Err(Errno::ESPIPE);
        }
        let n = self.imp.write(buf, offset, self.flags())?;
        self.notify(rvisor_syscalls::fdkinds::inotify::IN_MODIFY, n);
        Ok(n)
    }

    /// lseek(2).
    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        if self.imp.is_stream() {
            return self.imp.seek(offset, whence);
        }
        let mut pos = self.pos.lock().map_err(|_| Errno::EIO)?;
        let base: i64 = match whence {
            SEEK_SET => 0,
            SEEK_CUR => *pos as i64,
            SEEK_END => self.imp.stat()?.st_size,
            _ => return Err(Errno::EINVAL),
        };
        let new = base.checked_add(offset).ok_or(Errno::EOVERFLOW)?;
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *pos = new as u64;
        Ok(*pos)
    }

    /// getdents64(2) support: entries from the current position; the caller reports how
    /// many it consumed through [`Self::set_dir_offset`].
    pub fn dir_entries(&self, max_bytes: usize) -> Result<(u64, Vec<DirEntry>), Errno> {
        let pos = *self.pos.lock().map_err(|_| Errno::EIO)?;
        Ok((pos, self.imp.getdents(pos, max_bytes)?))
    }

    pub fn set_dir_offset(&self, offset: u64) -> Result<(), Errno> {
        *self.pos.lock().map_err(|_| Errno::EIO)? = offset;
        Ok(())
    }
}

impl Drop for FileDescription {
    /// The last fd (or other reference) of the description is gone: its OFD and flock
    /// locks go with it.
    fn drop(&mut self) {
        super::lock::description_closed(self as *const FileDescription as usize);
        let path_only = self.flags() & rvisor_syscalls::flags::open::O_PATH != 0;
        if let (Some(d), true) = (&self.dentry, super::inotify::active() && !path_only) {
            use rvisor_syscalls::fdkinds::inotify::{IN_CLOSE_NOWRITE, IN_CLOSE_WRITE};
            super::inotify::file_event(d, if self.writable() { IN_CLOSE_WRITE } else { IN_CLOSE_NOWRITE });
        }
        if let Some(d) = &self.dentry {
            super::inotify::closed(d);
        }
    }
}

/// A seekable open file read through its [`FileImpl`]: the byte source of mmap and exec.
struct DescriptionSource(Arc<dyn FileImpl>);

impl crate::mm::FileSource for DescriptionSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read(buf, offset, 0)
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(self.0.stat()?.st_size.max(0) as u64)
    }
}

/// The file's contents as a [`crate::mm::FileSource`] (ENODEV for streams, which cannot be
/// mapped).
pub fn file_source(f: &FileDescription) -> Result<Arc<dyn crate::mm::FileSource>, Errno> {
    source_of_impl(f.imp().clone())
}

/// Like [`file_source`] for a bare implementation.
pub fn source_of_impl(imp: Arc<dyn FileImpl>) -> Result<Arc<dyn crate::mm::FileSource>, Errno> {
    if imp.is_stream() {
        return Err(Errno::ENODEV);
    }
    Ok(Arc::new(DescriptionSource(imp)))
}
