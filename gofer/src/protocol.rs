//! The gofer wire protocol: message codes, the fixed header, a bounds-checked little-endian
//! encoder/decoder, and the request and response messages.
//!
//! Every message is one SEQPACKET datagram:
//!
//! ```text
//! +----------------+----------------+------------------------+
//! | code: u32 (LE) | len: u32 (LE)  | body: `len` bytes      |
//! +----------------+----------------+------------------------+
//! ```
//!
//! A request's code is its [`Op`]. A successful response's code is `REPLY_BIT | op` (the op it
//! answers); an error response's code is [`R_ERROR`] with a body of one positive `i32` errno.
//! At most one file descriptor rides along a response as `SCM_RIGHTS` (the answer to
//! [`Op::Open`]); requests never carry one.
//!
//! Everything decoded here may come from a hostile peer: decoding never panics, checks every
//! length against what is left and against the protocol's bounds, and rejects trailing bytes.

use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

/// A file id: the server's handle for one node of the served tree.
pub type Fid = u64;

/// Size of the fixed message header.
pub const HEADER_LEN: usize = 8;
/// Largest message (header + body) either side sends or accepts.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Largest body.
pub const MAX_BODY: usize = MAX_MESSAGE - HEADER_LEN;
/// Longest file name in a walk or directory entry (`NAME_MAX`).
pub const MAX_NAME: usize = 255;
/// Longest symlink target (`PATH_MAX`).
pub const MAX_SYMLINK: usize = 4096;
/// Largest `max_bytes` a getdents request is served with (larger requests are clamped), so
/// that a full answer always fits in one message.
pub const MAX_GETDENTS_BYTES: u32 = 60 * 1024;
/// Set in the code of every response.
pub const REPLY_BIT: u32 = 0x8000_0000;
/// Code of an error response; the body is one `i32` errno.
pub const R_ERROR: u32 = REPLY_BIT;
/// Size of one encoded directory entry without its name.
const DIRENT_FIXED_LEN: usize = 8 + 8 + 1 + 2;
/// Encoded size of a [`Stat`].
pub const STAT_LEN: usize = 8 * 3 + 4 * 3 + 8 * 10;
/// Encoded size of a [`Statfs`].
pub const STATFS_LEN: usize = 8 * 7 + 4 * 2 + 8 * 3;

/// Operation codes. Codes are stable: new operations take new numbers.
///
/// Reserved for operations to come: 9 create, 10 mkdir, 11 mknod, 12 symlink, 13 link,
/// 14 unlink, 15 rename, 16 setstat, 17 getxattr, 18 setxattr, 19 listxattr,
/// 20 removexattr, 21 connect (host unix sockets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Op {
    Attach = 1,
    Walk = 2,
    Stat = 3,
    Open = 4,
    Readlink = 5,
    Getdents = 6,
    Clunk = 7,
    Statfs = 8,
}

impl Op {
    /// The op with this code, if it is one this version knows.
    pub fn from_code(code: u32) -> Option<Op> {
        Some(match code {
            1 => Op::Attach,
            2 => Op::Walk,
            3 => Op::Stat,
            4 => Op::Open,
            5 => Op::Readlink,
            6 => Op::Getdents,
            7 => Op::Clunk,
            8 => Op::Statfs,
            _ => return None,
        })
    }

    /// The request code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The code of a successful response to this op.
    pub fn reply_code(self) -> u32 {
        REPLY_BIT | self as u32
    }
}

/// A malformed or out-of-bounds message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message of {0} bytes is shorter than the header")]
    ShortHeader(usize),
    #[error("header says {declared} body bytes but {actual} arrived")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("message larger than {MAX_MESSAGE} bytes")]
    Oversized,
    #[error("body truncated")]
    Truncated,
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("unknown operation code {0:#x}")]
    UnknownOp(u32),
    #[error("unknown response code {0:#x}")]
    UnknownReply(u32),
    #[error("invalid errno {0} in an error response")]
    BadErrno(i32),
    #[error("invalid {0}")]
    Invalid(&'static str),
}

impl ProtocolError {
    /// The errno a server answers a request that failed to decode with.
    pub fn errno(&self) -> Errno {
        match self {
            ProtocolError::UnknownOp(_) => Errno::ENOSYS,
            _ => Errno::EINVAL,
        }
    }
}

/// Builds a message body: little-endian integers and length-prefixed byte strings.
#[derive(Debug)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An encoder for a message with `code`; the header's length is filled in by
    /// [`Encoder::finish`].
    pub fn new(code: u32) -> Encoder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&code.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        Encoder { buf }
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A byte string with a `u16` length prefix, at most `max` bytes.
    pub fn bytes16(
        &mut self,
        what: &'static str,
        v: &[u8],
        max: usize,
    ) -> Result<&mut Self, ProtocolError> {
        let len = u16::try_from(v.len())
            .ok()
            .filter(|&l| usize::from(l) <= max);
        let len = len.ok_or(ProtocolError::TooLong {
            what,
            len: v.len(),
            max,
        })?;
        self.u16(len);
        self.buf.extend_from_slice(v);
        Ok(self)
    }

    /// The finished message (header + body), or an error if it exceeds [`MAX_MESSAGE`].
    pub fn finish(mut self) -> Result<Vec<u8>, ProtocolError> {
        if self.buf.len() > MAX_MESSAGE {
            return Err(ProtocolError::Oversized);
        }
        let body_len = (self.buf.len() - HEADER_LEN) as u32;
        self.buf[4..HEADER_LEN].copy_from_slice(&body_len.to_le_bytes());
        Ok(self.buf)
    }
}

/// Reads a message body; every read checks the bytes left.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(body: &'a [u8]) -> Decoder<'a> {
        Decoder { buf: body }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(ProtocolError::Truncated)?;
        self.buf = rest;
        Ok(*head)
    }

    pub fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.take().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.take().map(u32::from_le_bytes)
    }
    pub fn i32(&mut self) -> Result<i32, ProtocolError> {
        self.take().map(i32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.take().map(u64::from_le_bytes)
    }
    pub fn i64(&mut self) -> Result<i64, ProtocolError> {
        self.take().map(i64::from_le_bytes)
    }

    /// A byte string with a `u16` length prefix, at most `max` bytes.
    pub fn bytes16(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], ProtocolError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(ProtocolError::TooLong { what, len, max });
        }
        if len > self.buf.len() {
            return Err(ProtocolError::Truncated);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// Checks that the whole body was read.
    pub fn finish(self) -> Result<(), ProtocolError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(ProtocolError::TrailingBytes(n)),
        }
    }
}

/// Splits a received datagram into its code and body, checking the header.
pub fn parse_frame(msg: &[u8]) -> Result<(u32, &[u8]), ProtocolError> {
    if msg.len() > MAX_MESSAGE {
        return Err(ProtocolError::Oversized);
    }
    let (header, body) = msg
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(ProtocolError::ShortHeader(msg.len()))?;
    let [c0, c1, c2, c3, l0, l1, l2, l3] = *header;
    let code = u32::from_le_bytes([c0, c1, c2, c3]);
    let declared = u32::from_le_bytes([l0, l1, l2, l3]);
    if usize::try_from(declared).ok() != Some(body.len()) {
        return Err(ProtocolError::LengthMismatch {
            declared,
            actual: body.len(),
        });
    }
    Ok((code, body))
}

/// One directory entry of a getdents answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// The cookie that continues the listing after this entry (the host's `d_off`).
    pub next_offset: u64,
    /// `DT_*` type.
    pub d_type: u8,
    /// The name: 1..=255 bytes, no `/` or NUL.
    pub name: Vec<u8>,
}

impl DirEntry {
    /// Size of this entry as a `linux_dirent64` record; getdents' `max_bytes` counts these.
    pub fn dirent64_len(&self) -> usize {
        dirent64_reclen(self.name.len())
    }
}

/// Size of a `linux_dirent64` record whose name has `name_len` bytes (header, name, NUL,
/// padded to 8).
pub fn dirent64_reclen(name_len: usize) -> usize {
    (rvisor_syscalls::types::DIRENT64_NAME_OFFSET + name_len + 1 + 7) & !7
}

/// Checks a name a walk (or a later create, mkdir, ...) may carry: 1..=255 bytes, no `/`,
/// no NUL, not `.` or `..`.
pub fn validate_name(name: &[u8]) -> Result<(), Errno> {
    if name.len() > MAX_NAME {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&b| b == b'/' || b == 0)
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// A request, sentry → gofer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A new fid for the root of the served tree.
    Attach,
    /// A new fid for the child `name` of directory `dir`.
    Walk { dir: Fid, name: Vec<u8> },
    /// The node's attributes.
    Stat { fid: Fid },
    /// Open the node with open(2) `flags`; the answer donates the host fd.
    Open { fid: Fid, flags: u32 },
    /// A symlink's target.
    Readlink { fid: Fid },
    /// Entries of directory `dir` from cookie `offset`, at most `max_bytes` of
    /// `linux_dirent64` records.
    Getdents {
        dir: Fid,
        offset: u64,
        max_bytes: u32,
    },
    /// Forget a fid.
    Clunk { fid: Fid },
    /// statfs(2) of the filesystem holding the node.
    Statfs { fid: Fid },
}

impl Request {
    pub fn op(&self) -> Op {
        match self {
            Request::Attach => Op::Attach,
            Request::Walk { .. } => Op::Walk,
            Request::Stat { .. } => Op::Stat,
            Request::Open { .. } => Op::Open,
            Request::Readlink { .. } => Op::Readlink,
            Request::Getdents { .. } => Op::Getdents,
            Request::Clunk { .. } => Op::Clunk,
            Request::Statfs { .. } => Op::Statfs,
        }
    }

    /// The whole message (header + body).
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut e = Encoder::new(self.op().code());
        match self {
            Request::Attach => {}
            Request::Walk { dir, name } => {
                e.u64(*dir).bytes16("name", name, MAX_NAME)?;
            }
            Request::Stat { fid }
            | Request::Readlink { fid }
            | Request::Clunk { fid }
            | Request::Statfs { fid } => {
                e.u64(*fid);
            }
            Request::Open { fid, flags } => {
                e.u64(*fid).u32(*flags);
            }
            Request::Getdents {
                dir,
                offset,
                max_bytes,
            } => {
                e.u64(*dir).u64(*offset).u32(*max_bytes);
            }
        }
        e.finish()
    }

    /// Decodes a request with `code` and `body` (see [`parse_frame`]).
    pub fn decode(code: u32, body: &[u8]) -> Result<Request, ProtocolError> {
        let op = Op::from_code(code).ok_or(ProtocolError::UnknownOp(code))?;
        let mut d = Decoder::new(body);
        let req = match op {
            Op::Attach => Request::Attach,
            Op::Walk => {
                let dir = d.u64()?;
                let name = d.bytes16("name", MAX_NAME)?.to_vec();
                Request::Walk { dir, name }
            }
            Op::Stat => Request::Stat { fid: d.u64()? },
            Op::Open => Request::Open {
                fid: d.u64()?,
                flags: d.u32()?,
            },
            Op::Readlink => Request::Readlink { fid: d.u64()? },
            Op::Getdents => Request::Getdents {
                dir: d.u64()?,
                offset: d.u64()?,
                max_bytes: d.u32()?,
            },
            Op::Clunk => Request::Clunk { fid: d.u64()? },
            Op::Statfs => Request::Statfs { fid: d.u64()? },
        };
        d.finish()?;
        Ok(req)
    }
}

/// A response, gofer → sentry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The request failed with this errno.
    Error(Errno),
    Attach {
        fid: Fid,
        attr: Stat,
    },
    Walk {
        fid: Fid,
        attr: Stat,
    },
    Stat {
        attr: Stat,
    },
    /// The opened host fd rides along as `SCM_RIGHTS`.
    Open,
    Readlink {
        target: Vec<u8>,
    },
    /// An empty list means the end of the directory.
    Getdents {
        entries: Vec<DirEntry>,
    },
    Clunk,
    Statfs {
        statfs: Statfs,
    },
}

impl Response {
    /// The op this response answers (`None` for an error).
    pub fn op(&self) -> Option<Op> {
        Some(match self {
            Response::Error(_) => return None,
            Response::Attach { .. } => Op::Attach,
            Response::Walk { .. } => Op::Walk,
            Response::Stat { .. } => Op::Stat,
            Response::Open => Op::Open,
            Response::Readlink { .. } => Op::Readlink,
            Response::Getdents { .. } => Op::Getdents,
            Response::Clunk => Op::Clunk,
            Response::Statfs { .. } => Op::Statfs,
        })
    }

    /// The header code of this response.
    pub fn code(&self) -> u32 {
        self.op().map_or(R_ERROR, Op::reply_code)
    }

    /// The whole message (header + body).
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut e = Encoder::new(self.code());
        match self {
            Response::Error(errno) => {
                e.i32(errno.0);
            }
            Response::Attach { fid, attr } | Response::Walk { fid, attr } => {
                e.u64(*fid);
                put_stat(&mut e, attr);
            }
            Response::Stat { attr } => put_stat(&mut e, attr),
            Response::Open | Response::Clunk => {}
            Response::Readlink { target } => {
                e.bytes16("symlink target", target, MAX_SYMLINK)?;
            }
            Response::Getdents { entries } => {
                let count = u32::try_from(entries.len()).map_err(|_| ProtocolError::Oversized)?;
                e.u32(count);
                for ent in entries {
                    e.u64(ent.ino).u64(ent.next_offset).u8(ent.d_type);
                    e.bytes16("name", &ent.name, MAX_NAME)?;
                }
            }
            Response::Statfs { statfs } => put_statfs(&mut e, statfs),
        }
        e.finish()
    }

    /// Decodes a response with `code` and `body` (see [`parse_frame`]).
    pub fn decode(code: u32, body: &[u8]) -> Result<Response, ProtocolError> {
        let mut d = Decoder::new(body);
        if code == R_ERROR {
            let errno = d.i32()?;
            d.finish()?;
            if !(1..4096).contains(&errno) {
                return Err(ProtocolError::BadErrno(errno));
            }
            return Ok(Response::Error(Errno(errno)));
        }
        if code & REPLY_BIT == 0 {
            return Err(ProtocolError::UnknownReply(code));
        }
        let op = Op::from_code(code & !REPLY_BIT).ok_or(ProtocolError::UnknownReply(code))?;
        let resp = match op {
            Op::Attach => Response::Attach {
                fid: d.u64()?,
                attr: get_stat(&mut d)?,
            },
            Op::Walk => Response::Walk {
                fid: d.u64()?,
                attr: get_stat(&mut d)?,
            },
            Op::Stat => Response::Stat {
                attr: get_stat(&mut d)?,
            },
            Op::Open => Response::Open,
            Op::Readlink => {
                let target = d.bytes16("symlink target", MAX_SYMLINK)?;
                if target.is_empty() || target.contains(&0) {
                    return Err(ProtocolError::Invalid("symlink target"));
                }
                Response::Readlink {
                    target: target.to_vec(),
                }
            }
            Op::Getdents => {
                let count = d.u32()?;
                // Each entry takes at least DIRENT_FIXED_LEN + 1 bytes: a count the body
                // cannot hold is rejected before anything is allocated for it.
                let count = usize::try_from(count).map_err(|_| ProtocolError::Truncated)?;
                if count > d.remaining() / (DIRENT_FIXED_LEN + 1) {
                    return Err(ProtocolError::Truncated);
                }
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let ino = d.u64()?;
                    let next_offset = d.u64()?;
                    let d_type = d.u8()?;
                    let name = d.bytes16("name", MAX_NAME)?;
                    if name.is_empty() || name.iter().any(|&b| b == b'/' || b == 0) {
                        return Err(ProtocolError::Invalid("directory entry name"));
                    }
                    entries.push(DirEntry {
                        ino,
                        next_offset,
                        d_type,
                        name: name.to_vec(),
                    });
                }
                Response::Getdents { entries }
            }
            Op::Clunk => Response::Clunk,
            Op::Statfs => Response::Statfs {
                statfs: get_statfs(&mut d)?,
            },
        };
        d.finish()?;
        Ok(resp)
    }
}

fn put_stat(e: &mut Encoder, s: &Stat) {
    e.u64(s.st_dev).u64(s.st_ino).u64(s.st_nlink);
    e.u32(s.st_mode).u32(s.st_uid).u32(s.st_gid);
    e.u64(s.st_rdev)
        .i64(s.st_size)
        .i64(s.st_blksize)
        .i64(s.st_blocks);
    e.i64(s.st_atime).i64(s.st_atime_nsec);
    e.i64(s.st_mtime).i64(s.st_mtime_nsec);
    e.i64(s.st_ctime).i64(s.st_ctime_nsec);
}

fn get_stat(d: &mut Decoder<'_>) -> Result<Stat, ProtocolError> {
    Ok(Stat {
        st_dev: d.u64()?,
        st_ino: d.u64()?,
        st_nlink: d.u64()?,
        st_mode: d.u32()?,
        st_uid: d.u32()?,
        st_gid: d.u32()?,
        __pad0: 0,
        st_rdev: d.u64()?,
        st_size: d.i64()?,
        st_blksize: d.i64()?,
        st_blocks: d.i64()?,
        st_atime: d.i64()?,
        st_atime_nsec: d.i64()?,
        st_mtime: d.i64()?,
        st_mtime_nsec: d.i64()?,
        st_ctime: d.i64()?,
        st_ctime_nsec: d.i64()?,
        __unused: [0; 3],
    })
}

fn put_statfs(e: &mut Encoder, s: &Statfs) {
    e.i64(s.f_type).i64(s.f_bsize);
    e.u64(s.f_blocks)
        .u64(s.f_bfree)
        .u64(s.f_bavail)
        .u64(s.f_files)
        .u64(s.f_ffree);
    e.i32(s.f_fsid[0]).i32(s.f_fsid[1]);
    e.i64(s.f_namelen).i64(s.f_frsize).i64(s.f_flags);
}

fn get_statfs(d: &mut Decoder<'_>) -> Result<Statfs, ProtocolError> {
    Ok(Statfs {
        f_type: d.i64()?,
        f_bsize: d.i64()?,
        f_blocks: d.u64()?,
        f_bfree: d.u64()?,
        f_bavail: d.u64()?,
        f_files: d.u64()?,
        f_ffree: d.u64()?,
        f_fsid: [d.i32()?, d.i32()?],
        f_namelen: d.i64()?,
        f_frsize: d.i64()?,
        f_flags: d.i64()?,
        f_spare: [0; 4],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_stat() -> Stat {
        Stat {
            st_dev: 0x803,
            st_ino: 1234567,
            st_nlink: 2,
            st_mode: 0o100644,
            st_uid: 1000,
            st_gid: 1001,
            st_rdev: 7,
            st_size: 4096,
            st_blksize: 4096,
            st_blocks: 8,
            st_atime: 1,
            st_atime_nsec: 2,
            st_mtime: 3,
            st_mtime_nsec: 4,
            st_ctime: -5,
            st_ctime_nsec: 999_999_999,
            ..Stat::default()
        }
    }

    fn sample_requests() -> Vec<Request> {
        vec![
            Request::Attach,
            Request::Walk {
                dir: 1,
                name: b"etc".to_vec(),
            },
            Request::Stat { fid: 2 },
            Request::Open { fid: 3, flags: 0o2 },
            Request::Readlink { fid: 4 },
            Request::Getdents {
                dir: 5,
                offset: u64::MAX,
                max_bytes: 4096,
            },
            Request::Clunk { fid: 6 },
            Request::Statfs { fid: 7 },
        ]
    }

    fn sample_responses() -> Vec<Response> {
        let statfs = Statfs {
            f_type: 0xef53,
            f_bsize: 4096,
            f_blocks: 10,
            f_fsid: [1, -2],
            f_namelen: 255,
            ..Statfs::default()
        };
        vec![
            Response::Error(Errno::ENOENT),
            Response::Attach {
                fid: 1,
                attr: sample_stat(),
            },
            Response::Walk {
                fid: 2,
                attr: sample_stat(),
            },
            Response::Stat {
                attr: sample_stat(),
            },
            Response::Open,
            Response::Readlink {
                target: b"/etc/passwd".to_vec(),
            },
            Response::Getdents {
                entries: vec![
                    DirEntry {
                        ino: 1,
                        next_offset: 10,
                        d_type: 4,
                        name: b".".to_vec(),
                    },
                    DirEntry {
                        ino: 2,
                        next_offset: u64::MAX,
                        d_type: 8,
                        name: vec![b'x'; 255],
                    },
                ],
            },
            Response::Getdents { entries: vec![] },
            Response::Clunk,
            Response::Statfs { statfs },
        ]
    }

    #[test]
    fn every_request_round_trips() {
        for req in sample_requests() {
            let msg = req.encode().unwrap();
            let (code, body) = parse_frame(&msg).unwrap();
            assert_eq!(code, req.op().code());
            assert_eq!(Request::decode(code, body).unwrap(), req);
        }
    }

    #[test]
    fn every_response_round_trips() {
        for resp in sample_responses() {
            let msg = resp.encode().unwrap();
            let (code, body) = parse_frame(&msg).unwrap();
            assert_eq!(Response::decode(code, body).unwrap(), resp);
        }
    }

    #[test]
    fn stat_and_statfs_encode_to_their_declared_sizes() {
        let msg = Response::Stat {
            attr: sample_stat(),
        }
        .encode()
        .unwrap();
        assert_eq!(msg.len(), HEADER_LEN + STAT_LEN);
        let msg = Response::Statfs {
            statfs: Statfs::default(),
        }
        .encode()
        .unwrap();
        assert_eq!(msg.len(), HEADER_LEN + STATFS_LEN);
    }

    #[test]
    fn every_truncation_of_every_message_is_an_error_not_a_panic() {
        for req in sample_requests() {
            let msg = req.encode().unwrap();
            let (code, body) = parse_frame(&msg).unwrap();
            for cut in 0..body.len() {
                assert!(
                    Request::decode(code, &body[..cut]).is_err(),
                    "{req:?} cut at {cut}"
                );
            }
        }
        for resp in sample_responses() {
            let msg = resp.encode().unwrap();
            let (code, body) = parse_frame(&msg).unwrap();
            for cut in 0..body.len() {
                assert!(
                    Response::decode(code, &body[..cut]).is_err(),
                    "{resp:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut msg = Request::Stat { fid: 1 }.encode().unwrap();
        msg.push(0);
        msg[4..8].copy_from_slice(&9u32.to_le_bytes());
        let (code, body) = parse_frame(&msg).unwrap();
        assert_eq!(
            Request::decode(code, body),
            Err(ProtocolError::TrailingBytes(1))
        );
    }

    #[test]
    fn header_length_must_match_the_datagram() {
        let mut msg = Request::Stat { fid: 1 }.encode().unwrap();
        msg[4..8].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            parse_frame(&msg),
            Err(ProtocolError::LengthMismatch { .. })
        ));
        assert!(matches!(
            parse_frame(&msg[..5]),
            Err(ProtocolError::ShortHeader(5))
        ));
        assert!(matches!(
            parse_frame(&vec![0; MAX_MESSAGE + 1]),
            Err(ProtocolError::Oversized)
        ));
    }

    #[test]
    fn unknown_ops_decode_to_enosys_class_errors() {
        for code in [0, 9, 100, u32::MAX, REPLY_BIT | 1] {
            let err = Request::decode(code, &[]).unwrap_err();
            assert_eq!(err, ProtocolError::UnknownOp(code));
            assert_eq!(err.errno(), Errno::ENOSYS);
        }
        assert!(Response::decode(1, &[]).is_err());
        assert!(Response::decode(REPLY_BIT | 99, &[]).is_err());
    }

    #[test]
    fn over_long_names_are_refused_both_ways() {
        let req = Request::Walk {
            dir: 1,
            name: vec![b'a'; 256],
        };
        assert!(matches!(req.encode(), Err(ProtocolError::TooLong { .. })));
        let mut e = Encoder::new(Op::Walk.code());
        e.u64(1).u16(256);
        let mut msg = e.finish().unwrap();
        msg.extend(vec![b'a'; 256]);
        let len = (msg.len() - HEADER_LEN) as u32;
        msg[4..8].copy_from_slice(&len.to_le_bytes());
        let (code, body) = parse_frame(&msg).unwrap();
        assert!(matches!(
            Request::decode(code, body),
            Err(ProtocolError::TooLong { .. })
        ));
    }

    #[test]
    fn getdents_count_larger_than_the_body_is_rejected_before_allocating() {
        let mut e = Encoder::new(Op::Getdents.reply_code());
        e.u32(u32::MAX);
        let msg = e.finish().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        assert_eq!(Response::decode(code, body), Err(ProtocolError::Truncated));
    }

    #[test]
    fn error_responses_need_a_positive_errno() {
        for bad in [0, -1, 4096, i32::MIN] {
            let mut e = Encoder::new(R_ERROR);
            e.i32(bad);
            let msg = e.finish().unwrap();
            let (code, body) = parse_frame(&msg).unwrap();
            assert_eq!(
                Response::decode(code, body),
                Err(ProtocolError::BadErrno(bad))
            );
        }
    }

    #[test]
    fn entry_names_with_slash_or_nul_are_rejected_by_the_client_decoder() {
        for name in [&b"a/b"[..], b"a\0", b""] {
            let mut e = Encoder::new(Op::Getdents.reply_code());
            e.u32(1).u64(1).u64(2).u8(8);
            e.bytes16("name", name, MAX_NAME).unwrap();
            let msg = e.finish().unwrap();
            let (code, body) = parse_frame(&msg).unwrap();
            assert!(Response::decode(code, body).is_err(), "{name:?}");
        }
    }

    #[test]
    fn validate_name_accepts_only_single_components() {
        assert_eq!(validate_name(b"passwd"), Ok(()));
        assert_eq!(validate_name(b"..."), Ok(()));
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b"] {
            assert_eq!(validate_name(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(validate_name(&[b'a'; 256]), Err(Errno::ENAMETOOLONG));
        assert_eq!(validate_name(&[b'a'; 255]), Ok(()));
    }

    #[test]
    fn dirent64_reclen_matches_the_kernel_layout() {
        assert_eq!(dirent64_reclen(1), 24);
        assert_eq!(dirent64_reclen(4), 24);
        assert_eq!(dirent64_reclen(5), 32);
        assert_eq!(dirent64_reclen(255), 280);
    }
}
