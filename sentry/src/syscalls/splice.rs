//! Copies between files inside the sentry: sendfile(2), splice(2), tee(2) and
//! copy_file_range(2).
//!
//! Data moves through a bounce buffer of at most [`CHUNK`] bytes per step. A pipe source is
//! peeked and only the bytes the destination accepted are consumed, and a seekable source
//! is read at an explicit offset that advances by what was written, so a short write loses
//! nothing. (A stream source that is not a pipe, such as a socket, is read destructively:
//! bytes a full destination refuses after that are lost, so such sources are read at most
//! a page at a time once the destination pipe is full.)

use std::sync::Arc;

use rvisor_syscalls::flags::limits::{MAX_RW_COUNT, PIPE_BUF};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFMT, S_IFREG};
use rvisor_syscalls::flags::open::{O_APPEND, O_NONBLOCK};
use rvisor_syscalls::flags::seek::{SEEK_CUR, SEEK_SET};
use rvisor_syscalls::flags::splice::{SPLICE_F_GIFT, SPLICE_F_MORE, SPLICE_F_MOVE, SPLICE_F_NONBLOCK};
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::pipe::{Pipe, PipeEnd};
use crate::vfs::FileDescription;

/// Largest step of one copy.
const CHUNK: usize = 64 << 10;

/// The pipe behind `f`, if it is one.
fn pipe_of(f: &FileDescription) -> Option<Arc<Pipe>> {
    let any = f.imp().clone().into_any()?;
    any.downcast::<PipeEnd>().ok().map(|e| e.pipe().clone())
}

/// Where bytes come from.
enum Source<'a> {
    Pipe(Arc<Pipe>),
    /// A seekable file read at `pos`; `own_pos` moves the description's position too.
    File {
        f: &'a FileDescription,
        pos: u64,
        own_pos: bool,
    },
    /// Any other readable stream (socket, terminal): reads consume.
    Stream(&'a FileDescription),
}

impl Source<'_> {
    fn new(f: &FileDescription, off: Option<u64>) -> Result<Source<'_>, Errno> {
        if !f.readable() {
            return Err(Errno::EBADF);
        }
        if let Some(p) = pipe_of(f) {
            return if off.is_some() { Err(Errno::ESPIPE) } else { Ok(Source::Pipe(p)) };
        }
        if f.imp().is_stream() {
            return if off.is_some() { Err(Errno::ESPIPE) } else { Ok(Source::Stream(f)) };
        }
        if f.dentry().is_some_and(|d| d.inode().is_dir()) {
            return Err(Errno::EISDIR);
        }
        Ok(match off {
            Some(pos) => Source::File { f, pos, own_pos: false },
            None => Source::File { f, pos: f.seek(0, SEEK_CUR)?, own_pos: true },
        })
    }

    fn peek(&mut self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        match self {
            Source::Pipe(p) => p.peek(buf, nonblock),
            Source::File { f, pos, .. } => f.pread(buf, *pos),
            Source::Stream(f) => f.read(buf),
        }
    }

    /// `n` bytes of the last peek were delivered.
    fn commit(&mut self, n: usize) -> Result<(), Errno> {
        match self {
            Source::Pipe(p) => {
                p.discard(n);
            }
            Source::File { f, pos, own_pos } => {
                *pos += n as u64;
                if *own_pos {
                    f.seek(*pos as i64, SEEK_SET)?;
                }
            }
            Source::Stream(_) => {}
        }
        Ok(())
    }
}

/// Where bytes go.
enum Sink<'a> {
    Pipe(Arc<Pipe>),
    /// A seekable file written at `pos` (explicit offset).
    At {
        f: &'a FileDescription,
        pos: u64,
    },
    /// The description's own position (or a stream).
    Own(&'a FileDescription),
}

impl Sink<'_> {
    fn new(f: &FileDescription, off: Option<u64>) -> Result<Sink<'_>, Errno> {
        if !f.writable() {
            return Err(Errno::EBADF);
        }
        if let Some(p) = pipe_of(f) {
            return if off.is_some() { Err(Errno::ESPIPE) } else { Ok(Sink::Pipe(p)) };
        }
        match off {
            Some(_) if f.imp().is_stream() => Err(Errno::ESPIPE),
            Some(pos) => Ok(Sink::At { f, pos }),
            None => Ok(Sink::Own(f)),
        }
    }

    fn write(&mut self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        match self {
            Sink::Pipe(p) => p.write(buf, nonblock, false),
            Sink::At { f, pos } => {
                let n = f.pwrite(buf, *pos)?;
                *pos += n as u64;
                Ok(n)
            }
            Sink::Own(f) => f.write(buf),
        }
    }

    /// Room a pipe has now (`None` for other sinks).
    fn room(&self) -> Option<usize> {
        match self {
            Sink::Pipe(p) => Some(p.size().saturating_sub(p.readable_bytes())),
            _ => None,
        }
    }
}

/// Moves up to `len` bytes. `nonblock`: pipe operations do not block; `settle`: once some
/// bytes moved, neither side blocks any more (splice's rule; sendfile keeps going).
fn transfer(src: &mut Source<'_>, dst: &mut Sink<'_>, len: usize, nonblock: bool, settle: bool) -> Result<usize, Errno> {
    let len = len.min(MAX_RW_COUNT);
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0usize;
    while done < len {
        let nb = nonblock || (settle && done > 0);
        let mut want = (len - done).min(CHUNK);
        if let (Source::Stream(_), Some(room)) = (&*src, dst.room()) {
            want = want.min(if room == 0 { PIPE_BUF } else { room });
        }
        let n = match src.peek(&mut buf[..want], nonblock || done > 0) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        let w = match dst.write(&buf[..n], nb) {
            Ok(w) => w,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        src.commit(w)?;
        done += w;
        if w < n {
            break;
        }
    }
    Ok(done)
}

/// Reads a guest `loff_t` offset (EINVAL if negative); `None` for a null pointer.
fn read_offset(t: &Task, addr: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let v: i64 = t.read_obj(addr)?;
    u64::try_from(v).map(Some).map_err(|_| Errno::EINVAL)
}

fn write_offset(t: &Task, addr: u64, v: u64) -> Result<(), Errno> {
    if addr != 0 {
        t.write_obj(addr, &(v as i64))?;
    }
    Ok(())
}

/// A pipe write that failed with EPIPE raises SIGPIPE, as for write(2).
fn sigpipe(t: &Task, r: SysResult) -> SysResult {
    if r == Err(Errno::EPIPE) {
        let info = crate::kernel::signal::SignalInfo::user(rvisor_syscalls::flags::signal::SIGPIPE, 0, t.tgid(), t.creds.uid);
        crate::kernel::signal::send_to_thread(&t.kernel, &t.handle, info, false);
    }
    r
}

fn final_pos(src: &Source<'_>) -> u64 {
    match src {
        Source::File { pos, .. } => *pos,
        _ => 0,
    }
}

/// sendfile(2): `count` bytes from `in_fd` (at `*offset`, or its position) to `out_fd`.
pub fn sendfile(t: &mut Task, a: &Args) -> SysResult {
    let (out, inp) = (t.file(a[0] as i32)?, t.file(a[1] as i32)?);
    let off = read_offset(t, a[2])?;
    if out.flags() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut src = Source::new(&inp, off)?;
    let mut dst = Sink::new(&out, None)?;
    super::fs::remove_privs_before_write(t, &out, a[3])?;
    let nonblock = out.flags() & O_NONBLOCK != 0;
    let r = transfer(&mut src, &mut dst, a[3] as usize, nonblock, false);
    if off.is_some() {
        write_offset(t, a[2], final_pos(&src))?;
    }
    sigpipe(t, r.map(|n| n as u64))
}

/// splice(2): between a pipe and a file, socket or another pipe.
pub fn splice(t: &mut Task, a: &Args) -> SysResult {
    let (inp, out) = (t.file(a[0] as i32)?, t.file(a[2] as i32)?);
    let flags = a[5] as u32;
    if flags & !(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (pin, pout) = (pipe_of(&inp), pipe_of(&out));
    if pin.is_none() && pout.is_none() {
        return Err(Errno::EINVAL);
    }
    if let (Some(a), Some(b)) = (&pin, &pout) {
        if Arc::ptr_eq(a, b) {
            return Err(Errno::EINVAL);
        }
    }
    if !inp.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    if out.flags() & O_APPEND != 0 && pout.is_none() {
        return Err(Errno::EINVAL);
    }
    let off_in = if pin.is_some() && a[1] != 0 { return Err(Errno::ESPIPE) } else { read_offset(t, a[1])? };
    let off_out = if pout.is_some() && a[3] != 0 { return Err(Errno::ESPIPE) } else { read_offset(t, a[3])? };
    let len = a[4] as usize;
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || (inp.flags() | out.flags()) & O_NONBLOCK != 0;
    let mut src = Source::new(&inp, off_in)?;
    let mut dst = Sink::new(&out, off_out)?;
    super::fs::remove_privs_before_write(t, &out, len as u64)?;
    let r = transfer(&mut src, &mut dst, len, nonblock, true);
    if off_in.is_some() {
        write_offset(t, a[1], final_pos(&src))?;
    }
    if let (Some(_), Sink::At { pos, .. }) = (off_out, &dst) {
        write_offset(t, a[3], *pos)?;
    }
    sigpipe(t, r.map(|n| n as u64))
}

/// tee(2): copies up to `len` bytes from one pipe to another without consuming them.
pub fn tee(t: &mut Task, a: &Args) -> SysResult {
    let (inp, out) = (t.file(a[0] as i32)?, t.file(a[1] as i32)?);
    let (len, flags) = (a[2] as usize, a[3] as u32);
    if flags & !(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (Some(pin), Some(pout)) = (pipe_of(&inp), pipe_of(&out)) else {
        return Err(Errno::EINVAL);
    };
    if Arc::ptr_eq(&pin, &pout) {
        return Err(Errno::EINVAL);
    }
    if !inp.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || (inp.flags() | out.flags()) & O_NONBLOCK != 0;
    let mut buf = vec![0u8; len.min(CHUNK)];
    let n = pin.peek(&mut buf, nonblock)?;
    if n == 0 {
        return Ok(0);
    }
    sigpipe(t, pout.write(&buf[..n], nonblock, false).map(|n| n as u64))
}

/// copy_file_range(2): between two regular files, through the sentry.
pub fn copy_file_range(t: &mut Task, a: &Args) -> SysResult {
    let (inp, out) = (t.file(a[0] as i32)?, t.file(a[2] as i32)?);
    let (len, flags) = (a[4] as usize, a[5] as u32);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    if !inp.readable() || !out.writable() || out.flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    // Files the sentry reads as streams (host stdio, even when redirected to a host file)
    // have no position to copy at: EINVAL, as for a non-regular file, so that callers
    // (coreutils cat, cp) fall back to read and write.
    if inp.imp().is_stream() || out.imp().is_stream() {
        return Err(Errno::EINVAL);
    }
    let (sin, sout) = (inp.imp().stat()?, out.imp().stat()?);
    for st in [&sin, &sout] {
        match st.st_mode & S_IFMT {
            S_IFREG => {}
            S_IFDIR => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
    }
    let off_in = read_offset(t, a[1])?;
    let off_out = read_offset(t, a[3])?;
    let pos_in = match off_in {
        Some(p) => p,
        None => inp.seek(0, SEEK_CUR)?,
    };
    let pos_out = match off_out {
        Some(p) => p,
        None => out.seek(0, SEEK_CUR)?,
    };
    let len = len.min(MAX_RW_COUNT);
    pos_in.checked_add(len as u64).filter(|&e| e <= i64::MAX as u64).ok_or(Errno::EOVERFLOW)?;
    pos_out.checked_add(len as u64).filter(|&e| e <= i64::MAX as u64).ok_or(Errno::EFBIG)?;
    let same = (sin.st_dev, sin.st_ino) == (sout.st_dev, sout.st_ino);
    if same && pos_in < pos_out + len as u64 && pos_out < pos_in + len as u64 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let mut src = Source::File { f: &inp, pos: pos_in, own_pos: off_in.is_none() };
    let mut dst = Sink::At { f: &out, pos: pos_out };
    super::fs::remove_privs_before_write(t, &out, len as u64)?;
    let n = transfer(&mut src, &mut dst, len, false, false)?;
    if off_in.is_some() {
        write_offset(t, a[1], pos_in + n as u64)?;
    }
    match off_out {
        Some(_) => write_offset(t, a[3], pos_out + n as u64)?,
        None => {
            out.seek((pos_out + n as u64) as i64, SEEK_SET)?;
        }
    }
    Ok(n as u64)
}
