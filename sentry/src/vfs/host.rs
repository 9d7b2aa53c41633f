//! Files backed by host file descriptors: regular files donated by the gofer and the
//! sandbox's stdin/stdout/stderr imported from the host.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use rvisor_syscalls::flags::ioctl as io;
use rvisor_syscalls::types::{Stat, Termios, Winsize};
use rvisor_syscalls::{Errno, Pod};

use super::file::FileImpl;

use crate::mm::{FileSource, MemoryFile, MemoryManager, SharedMemory};

/// The errno of the last failed host call.
pub(crate) fn last_errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// fstat(2) of a host fd, in the guest's layout (the gofer's conversion).
pub(crate) fn host_fstat(fd: &OwnedFd) -> Result<Stat, Errno> {
    rvisor_gofer::host_fstat(fd.as_fd())
}

/// fallocate(2) on a host fd (the guest's mode bits are the host's).
pub(crate) fn host_fallocate(fd: &OwnedFd, mode: u32, offset: u64, len: u64) -> Result<(), Errno> {
    let off = i64::try_from(offset).map_err(|_| Errno::EFBIG)?;
    let len = i64::try_from(len).map_err(|_| Errno::EFBIG)?;
    loop {
        // SAFETY: fallocate takes only integers and an owned, open descriptor.
        let r = unsafe { libc::fallocate64(fd.as_raw_fd(), mode as i32, off, len) };
        if r == 0 {
            return Ok(());
        }
        let e = last_errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// The set-user-ID and set-group-ID bits.
const SET_ID: u32 = rvisor_syscalls::flags::mode::S_ISUID | rvisor_syscalls::flags::mode::S_ISGID;

/// Keeps a file's set-ID bits across changes the sentry makes to it itself, through a host
/// fd the gofer donated.
///
/// On a write, a fallocate or a truncation the host kernel clears S_ISUID (and S_ISGID
/// when group execute is on, or when the writer is not in the file's group) unless the
/// writer has CAP_FSETID in the host's *initial* user namespace, which the sentry, in its
/// own user namespace, never has. The guest's rules are the sentry's to apply: a caller
/// without CAP_FSETID already had the bits cleared (`permission::remove_privs`), so bits
/// still in the sandbox's cached mode are bits the guest keeps. The gofer, host root with
/// CAP_FOWNER and CAP_FSETID, sets them back.
pub trait SetIdKeeper: Send + Sync {
    /// Whether the sandbox's cached mode of the file has a set-ID bit (no host call).
    fn cached_set_id(&self) -> bool;
    /// The host cleared `lost` (set-ID bits) in a change by the sentry, leaving `host`:
    /// put them back and make the cached mode agree with the file's. With `lost` 0 the
    /// file had no set-ID bit to lose: only the cached mode is corrected.
    fn restore(&self, host: &Stat, lost: u32);
}

/// Runs `op`, a change of the host file `fd` made with the sentry's own credentials, and
/// has `keeper` put back the set-ID bits the host cleared in it. A file whose cached mode
/// has no set-ID bit (almost every file) costs one look at it; a set-ID one costs an fstat
/// before and after, and a gofer round trip when the host did clear bits.
pub(crate) fn keeping_set_id<R>(fd: &OwnedFd, keeper: Option<&dyn SetIdKeeper>, op: impl FnOnce() -> R) -> R {
    let Some(keeper) = keeper.filter(|k| k.cached_set_id()) else {
        return op();
    };
    // The host's bits before, not the cached ones: the cache may be stale (the file
    // changed on the host), and bits the file did not have are never added.
    let before = match host_fstat(fd) {
        Ok(st) => st,
        Err(_) => return op(),
    };
    let r = op();
    if before.st_mode & SET_ID == 0 {
        keeper.restore(&before, 0);
        return r;
    }
    match host_fstat(fd) {
        Ok(after) => {
            let lost = before.st_mode & SET_ID & !after.st_mode;
            if lost != 0 {
                keeper.restore(&after, lost);
            }
        }
        Err(e) => tracing::warn!(error = %e, "fstat after a write to a set-ID file failed"),
    }
    r
}

fn pread_host(fd: &OwnedFd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    let off = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
    loop {
        // SAFETY: `buf` is a live exclusive slice; the kernel writes at most `buf.len()` bytes.
        let n = unsafe { libc::pread64(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = last_errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// A regular host file opened by the gofer on the guest's behalf.
pub struct HostRegularFile {
    fd: Arc<OwnedFd>,
    /// The file's page cache for shared mappings, for a file nobody can write through the
    /// sandbox (read-only opens of a read-only root).
    cache: Option<PageCache>,
    /// For a writable file of a host tree: keeps its set-ID bits across writes.
    keeper: Option<Weak<dyn SetIdKeeper>>,
}

/// Where a file keeps its page cache while anything maps it shared.
#[derive(Clone)]
pub struct PageCache {
    pub memory: Arc<MemoryFile>,
    pub slot: Arc<Mutex<Weak<SharedMemory>>>,
}

impl HostRegularFile {
    pub fn new(fd: OwnedFd) -> HostRegularFile {
        HostRegularFile { fd: Arc::new(fd), cache: None, keeper: None }
    }

    /// A read-only file whose shared mappings go through `cache`.
    pub fn with_page_cache(fd: OwnedFd, cache: PageCache) -> HostRegularFile {
        HostRegularFile { fd: Arc::new(fd), cache: Some(cache), keeper: None }
    }

    /// A file the guest may write, whose set-ID bits `keeper` keeps across writes.
    pub fn with_set_id_keeper(fd: OwnedFd, keeper: Weak<dyn SetIdKeeper>) -> HostRegularFile {
        HostRegularFile { fd: Arc::new(fd), cache: None, keeper: Some(keeper) }
    }
}

/// A host fd read with pread, as a page-cache source.
struct HostFdSource(Arc<OwnedFd>);

impl FileSource for HostFdSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        pread_host(&self.0, buf, offset)
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(host_fstat(&self.0)?.st_size.max(0) as u64)
    }
}

impl FileImpl for HostRegularFile {
    fn read(&self, buf: &mut [u8], offset: u64, _flags: u32) -> Result<usize, Errno> {
        pread_host(&self.fd, buf, offset)
    }

    fn write(&self, buf: &[u8], offset: u64, _flags: u32) -> Result<usize, Errno> {
        let off = i64::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let keeper = self.keeper.as_ref().and_then(Weak::upgrade);
        keeping_set_id(&self.fd, keeper.as_deref(), || {
            // SAFETY: `buf` is a live slice; the kernel only reads `buf.len()` bytes from it.
            let n = unsafe { libc::pwrite64(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), off) };
            if n < 0 {
                return Err(last_errno());
            }
            Ok(n as usize)
        })
    }

    fn stat(&self) -> Result<Stat, Errno> {
        host_fstat(&self.fd)
    }

    fn shared_page_cache(&self) -> Option<Arc<SharedMemory>> {
        let cache = self.cache.as_ref()?;
        let mut slot = cache.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(obj) = slot.upgrade() {
            return Some(obj);
        }
        let size = host_fstat(&self.fd).ok()?.st_size.max(0) as u64;
        let obj = SharedMemory::new_file_backed(cache.memory.clone(), size, Arc::new(HostFdSource(self.fd.clone())));
        *slot = Arc::downgrade(&obj);
        Some(obj)
    }

    fn sync(&self) -> Result<(), Errno> {
        // SAFETY: fsync on an owned, open descriptor.
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } < 0 {
            return Err(last_errno());
        }
        Ok(())
    }
}

impl FileSource for HostRegularFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        pread_host(&self.fd, buf, offset)
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(host_fstat(&self.fd)?.st_size.max(0) as u64)
    }
}

/// One of the sandbox's standard streams, imported from the host (a terminal, pipe or file).
/// It keeps the host's file position, so output redirected to a host file lands in order.
pub struct HostStream {
    fd: OwnedFd,
    tty: bool,
}

impl HostStream {
    pub fn new(fd: OwnedFd) -> HostStream {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(fd.as_raw_fd()) } == 1;
        HostStream { fd, tty }
    }

    /// A host ioctl whose argument is a struct of type `T` read from the host and copied out.
    fn ioctl_out<T: Pod>(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        let mut v = T::zeroed();
        // SAFETY: `v` is a properly sized, writable `T` matching what `cmd` writes (the
        // commands routed here are TCGETS → termios, TIOCGWINSZ → winsize, FIONREAD → int).
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), cmd as _, &mut v as *mut T) } < 0 {
            return Err(last_errno());
        }
        mm.write_obj(arg, &v)?;
        Ok(0)
    }

    /// A host ioctl whose argument is a struct of type `T` copied in from the guest.
    fn ioctl_in<T: Pod>(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        let v: T = mm.read_obj(arg)?;
        // SAFETY: `v` is a valid `T` matching what `cmd` reads (TCSETS* → termios,
        // TIOCSWINSZ → winsize); the host only reads it.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), cmd as _, &v as *const T) } < 0 {
            return Err(last_errno());
        }
        Ok(0)
    }
}

impl FileImpl for HostStream {
    fn read(&self, buf: &mut [u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        // SAFETY: `buf` is a live exclusive slice; the kernel writes at most `buf.len()` bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(last_errno());
        }
        Ok(n as usize)
    }

    fn write(&self, buf: &[u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        // SAFETY: `buf` is a live slice; the kernel reads at most `buf.len()` bytes from it.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(last_errno());
        }
        Ok(n as usize)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        host_fstat(&self.fd)
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        if whence > rvisor_syscalls::flags::seek::SEEK_HOLE {
            return Err(Errno::EINVAL);
        }
        // SAFETY: lseek on an owned descriptor with a validated whence.
        let r = unsafe { libc::lseek64(self.fd.as_raw_fd(), offset, whence as i32) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(r as u64)
    }

    fn ioctl(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        // Only requests whose argument layout is known are passed to the host; process-group
        // and session requests are answered by the sentry (see syscalls::fs::ioctl).
        match cmd {
            io::FIONREAD => self.ioctl_out::<i32>(mm, cmd, arg),
            _ if !self.tty => Err(Errno::ENOTTY),
            io::TCGETS => self.ioctl_out::<Termios>(mm, cmd, arg),
            io::TCSETS | io::TCSETSW | io::TCSETSF => self.ioctl_in::<Termios>(mm, cmd, arg),
            io::TIOCGWINSZ => self.ioctl_out::<Winsize>(mm, cmd, arg),
            io::TIOCSWINSZ => self.ioctl_in::<Winsize>(mm, cmd, arg),
            io::TCFLSH => {
                // SAFETY: TCFLSH takes an integer argument by value.
                if unsafe { libc::ioctl(self.fd.as_raw_fd(), cmd as _, arg as libc::c_ulong) } < 0 {
                    return Err(last_errno());
                }
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn is_tty(&self) -> bool {
        self.tty
    }

    /// Asks the host with a zero-timeout poll(2). There is no wait queue behind a host
    /// stream, so poll/select re-check these files periodically while they wait.
    fn readiness(&self) -> u32 {
        use rvisor_syscalls::flags::poll::{POLLERR, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM};
        let events = POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLWRNORM;
        let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: events as i16, revents: 0 };
        // SAFETY: `p` is one valid, exclusively borrowed pollfd; a zero timeout never blocks.
        if unsafe { libc::poll(&mut p, 1, 0) } < 0 {
            return POLLERR;
        }
        // The host's poll bits are the guest's (same x86_64 ABI).
        p.revents as u16 as u32
    }

    fn sync(&self) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A keeper recording what it is asked, with a settable cached mode.
    struct Recorder {
        cached: u32,
        calls: Mutex<Vec<(u32, u32)>>,
    }

    impl SetIdKeeper for Recorder {
        fn cached_set_id(&self) -> bool {
            self.cached & SET_ID != 0
        }

        fn restore(&self, host: &Stat, lost: u32) {
            self.calls.lock().unwrap().push((host.st_mode & 0o7777, lost));
        }
    }

    fn file_with_mode(name: &str, mode: u32) -> (std::path::PathBuf, OwnedFd) {
        let path = std::env::temp_dir().join(format!("rvisor-setid-{name}-{}", std::process::id()));
        let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        f.set_permissions(std::fs::Permissions::from_mode(mode)).unwrap();
        (path, f.into())
    }

    /// The host's clearing, as it happens to a writer without CAP_FSETID of the host.
    fn clear_set_id(fd: &OwnedFd) {
        let mode = host_fstat(fd).unwrap().st_mode & 0o7777 & !SET_ID;
        // SAFETY: fchmod on an owned, open descriptor.
        assert_eq!(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }, 0);
    }

    #[test]
    fn set_id_bits_the_host_clears_are_handed_to_the_keeper_and_nothing_else() {
        let (path, fd) = file_with_mode("kept", 0o4755);
        // A file whose cached mode has no set-ID bit: the keeper is not asked.
        let plain = Recorder { cached: 0o100755, calls: Mutex::new(vec![]) };
        assert_eq!(keeping_set_id(&fd, Some(&plain), || 7), 7);
        assert!(plain.calls.lock().unwrap().is_empty());
        // The host clears the bit in the change: the keeper gets the bit to put back.
        let setid = Recorder { cached: 0o104755, calls: Mutex::new(vec![]) };
        keeping_set_id(&fd, Some(&setid), || clear_set_id(&fd));
        assert_eq!(*setid.calls.lock().unwrap(), vec![(0o755, 0o4000)]);
        // The cache is stale (the host file has no set-ID bit): nothing is added, the
        // keeper only corrects its cached mode.
        let stale = Recorder { cached: 0o106755, calls: Mutex::new(vec![]) };
        keeping_set_id(&fd, Some(&stale), || ());
        assert_eq!(*stale.calls.lock().unwrap(), vec![(0o755, 0)]);
        // Nothing cleared: nothing asked.
        let (path2, fd2) = file_with_mode("unchanged", 0o2755);
        let same = Recorder { cached: 0o102755, calls: Mutex::new(vec![]) };
        keeping_set_id(&fd2, Some(&same), || ());
        assert!(same.calls.lock().unwrap().is_empty());
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(path2);
    }
}
