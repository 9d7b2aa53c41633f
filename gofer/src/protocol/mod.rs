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
/// Largest message (header + body) either side sends or accepts: room for the largest
/// extended attribute value ([`MAX_XATTR_VALUE`]) with its header and fields.
pub const MAX_MESSAGE: usize = 72 * 1024;
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
/// Longest extended attribute name (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// Largest extended attribute value (`XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 * 1024;
/// Largest extended attribute name list (`XATTR_LIST_MAX`).
pub const MAX_XATTR_LIST: usize = 64 * 1024;
/// Size of one encoded directory entry without its name.
const DIRENT_FIXED_LEN: usize = 8 + 8 + 1 + 2;
/// Encoded size of a [`Stat`].
pub const STAT_LEN: usize = 8 * 3 + 4 * 3 + 8 * 10;
/// Encoded size of a [`Statfs`].
pub const STATFS_LEN: usize = 8 * 7 + 4 * 2 + 8 * 3;

/// Operation codes. Codes are stable: new operations take new numbers.
///
/// Reserved for operations to come: 21 connect (host unix sockets).
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
    Create = 9,
    Mkdir = 10,
    Mknod = 11,
    Symlink = 12,
    Link = 13,
    Unlink = 14,
    Rename = 15,
    Setattr = 16,
    Getxattr = 17,
    Setxattr = 18,
    Listxattr = 19,
    Removexattr = 20,
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
            9 => Op::Create,
            10 => Op::Mkdir,
            11 => Op::Mknod,
            12 => Op::Symlink,
            13 => Op::Link,
            14 => Op::Unlink,
            15 => Op::Rename,
            16 => Op::Setattr,
            17 => Op::Getxattr,
            18 => Op::Setxattr,
            19 => Op::Listxattr,
            20 => Op::Removexattr,
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

    /// A byte string with a `u32` length prefix, at most `max` bytes.
    pub fn bytes32(
        &mut self,
        what: &'static str,
        v: &[u8],
        max: usize,
    ) -> Result<&mut Self, ProtocolError> {
        let len = u32::try_from(v.len()).ok().filter(|&l| l as usize <= max);
        let len = len.ok_or(ProtocolError::TooLong {
            what,
            len: v.len(),
            max,
        })?;
        self.u32(len);
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

    /// A byte string with a `u32` length prefix, at most `max` bytes.
    pub fn bytes32(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], ProtocolError> {
        let len = self.u32()? as usize;
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
    /// Create the regular file `name` in `dir` (exclusively: EEXIST if the name exists),
    /// opened with open(2) access mode and status `flags`, permission bits `mode`, owned
    /// by `uid`/`gid`. The answer is a new fid and donates the opened host fd.
    Create {
        dir: Fid,
        name: Vec<u8>,
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Create the directory `name` in `dir`.
    Mkdir {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Create the fifo, socket or empty regular file `name` in `dir` (`mode` includes the
    /// type; devices are refused).
    Mknod {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    },
    /// Create the symlink `name` in `dir` pointing to `target`.
    Symlink {
        dir: Fid,
        name: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    /// Add the name `name` in `dir` for the node `target` (not a directory).
    Link {
        target: Fid,
        dir: Fid,
        name: Vec<u8>,
    },
    /// Remove `name` from `dir`; `flags` is 0 or `AT_REMOVEDIR`.
    Unlink { dir: Fid, name: Vec<u8>, flags: u32 },
    /// renameat2(2) of `old_name` in `old_dir` to `new_name` in `new_dir`; `flags` is a
    /// combination of [`RENAME_NOREPLACE`] or [`RENAME_EXCHANGE`].
    Rename {
        old_dir: Fid,
        old_name: Vec<u8>,
        new_dir: Fid,
        new_name: Vec<u8>,
        flags: u32,
    },
    /// Change the node's mode, owner, size or timestamps.
    Setattr { fid: Fid, attr: SetAttrMsg },
    /// The value of the extended attribute `name` (`user.` namespace only).
    Getxattr { fid: Fid, name: Vec<u8> },
    /// Set the extended attribute `name`; `flags` is 0, [`XATTR_CREATE`] or [`XATTR_REPLACE`].
    Setxattr {
        fid: Fid,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
    },
    /// The names of the node's extended attributes (`user.` namespace only).
    Listxattr { fid: Fid },
    /// Remove the extended attribute `name`.
    Removexattr { fid: Fid, name: Vec<u8> },
}

/// renameat2(2): fail rather than replace the target.
pub const RENAME_NOREPLACE: u32 = 1;
/// renameat2(2): swap the two names.
pub const RENAME_EXCHANGE: u32 = 2;
/// unlinkat(2): remove a directory.
pub const AT_REMOVEDIR: u32 = 0x200;
/// setxattr(2): fail if the attribute exists.
pub const XATTR_CREATE: u32 = 1;
/// setxattr(2): fail unless the attribute exists.
pub const XATTR_REPLACE: u32 = 2;

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
            Request::Create { .. } => Op::Create,
            Request::Mkdir { .. } => Op::Mkdir,
            Request::Mknod { .. } => Op::Mknod,
            Request::Symlink { .. } => Op::Symlink,
            Request::Link { .. } => Op::Link,
            Request::Unlink { .. } => Op::Unlink,
            Request::Rename { .. } => Op::Rename,
            Request::Setattr { .. } => Op::Setattr,
            Request::Getxattr { .. } => Op::Getxattr,
            Request::Setxattr { .. } => Op::Setxattr,
            Request::Listxattr { .. } => Op::Listxattr,
            Request::Removexattr { .. } => Op::Removexattr,
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
            | Request::Statfs { fid }
            | Request::Listxattr { fid } => {
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
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                e.u64(*dir).bytes16("name", name, MAX_NAME)?;
                e.u32(*flags).u32(*mode).u32(*uid).u32(*gid);
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                e.u64(*dir).bytes16("name", name, MAX_NAME)?;
                e.u32(*mode).u32(*uid).u32(*gid);
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
                uid,
                gid,
            } => {
                e.u64(*dir).bytes16("name", name, MAX_NAME)?;
                e.u32(*mode).u64(*rdev).u32(*uid).u32(*gid);
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                e.u64(*dir).bytes16("name", name, MAX_NAME)?;
                e.bytes16("symlink target", target, MAX_SYMLINK)?;
                e.u32(*uid).u32(*gid);
            }
            Request::Link { target, dir, name } => {
                e.u64(*target).u64(*dir).bytes16("name", name, MAX_NAME)?;
            }
            Request::Unlink { dir, name, flags } => {
                e.u64(*dir).bytes16("name", name, MAX_NAME)?.u32(*flags);
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                e.u64(*old_dir).bytes16("name", old_name, MAX_NAME)?;
                e.u64(*new_dir).bytes16("name", new_name, MAX_NAME)?;
                e.u32(*flags);
            }
            Request::Setattr { fid, attr } => {
                e.u64(*fid);
                attr.put(&mut e);
            }
            Request::Getxattr { fid, name } | Request::Removexattr { fid, name } => {
                e.u64(*fid).bytes16("xattr name", name, MAX_XATTR_NAME)?;
            }
            Request::Setxattr {
                fid,
                name,
                value,
                flags,
            } => {
                e.u64(*fid).bytes16("xattr name", name, MAX_XATTR_NAME)?;
                e.bytes32("xattr value", value, MAX_XATTR_VALUE)?
                    .u32(*flags);
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
            Op::Create => Request::Create {
                dir: d.u64()?,
                name: d.bytes16("name", MAX_NAME)?.to_vec(),
                flags: d.u32()?,
                mode: d.u32()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            Op::Mkdir => Request::Mkdir {
                dir: d.u64()?,
                name: d.bytes16("name", MAX_NAME)?.to_vec(),
                mode: d.u32()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            Op::Mknod => Request::Mknod {
                dir: d.u64()?,
                name: d.bytes16("name", MAX_NAME)?.to_vec(),
                mode: d.u32()?,
                rdev: d.u64()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            Op::Symlink => Request::Symlink {
                dir: d.u64()?,
                name: d.bytes16("name", MAX_NAME)?.to_vec(),
                target: d.bytes16("symlink target", MAX_SYMLINK)?.to_vec(),
                uid: d.u32()?,
                gid: d.u32()?,
            },
            Op::Link => Request::Link {
                target: d.u64()?,
                dir: d.u64()?,
                name: d.bytes16("name", MAX_NAME)?.to_vec(),
            },
            Op::Unlink => {
                let (dir, name, flags) = (d.u64()?, d.bytes16("name", MAX_NAME)?, d.u32()?);
                if flags & !AT_REMOVEDIR != 0 {
                    return Err(ProtocolError::Invalid("unlink flags"));
                }
                Request::Unlink {
                    dir,
                    name: name.to_vec(),
                    flags,
                }
            }
            Op::Rename => {
                let old_dir = d.u64()?;
                let old_name = d.bytes16("name", MAX_NAME)?.to_vec();
                let new_dir = d.u64()?;
                let new_name = d.bytes16("name", MAX_NAME)?.to_vec();
                let flags = d.u32()?;
                if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
                    || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
                {
                    return Err(ProtocolError::Invalid("rename flags"));
                }
                Request::Rename {
                    old_dir,
                    old_name,
                    new_dir,
                    new_name,
                    flags,
                }
            }
            Op::Setattr => Request::Setattr {
                fid: d.u64()?,
                attr: SetAttrMsg::get(&mut d)?,
            },
            Op::Getxattr => Request::Getxattr {
                fid: d.u64()?,
                name: d.bytes16("xattr name", MAX_XATTR_NAME)?.to_vec(),
            },
            Op::Setxattr => {
                let fid = d.u64()?;
                let name = d.bytes16("xattr name", MAX_XATTR_NAME)?.to_vec();
                let value = d.bytes32("xattr value", MAX_XATTR_VALUE)?.to_vec();
                let flags = d.u32()?;
                if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
                    return Err(ProtocolError::Invalid("setxattr flags"));
                }
                Request::Setxattr {
                    fid,
                    name,
                    value,
                    flags,
                }
            }
            Op::Listxattr => Request::Listxattr { fid: d.u64()? },
            Op::Removexattr => Request::Removexattr {
                fid: d.u64()?,
                name: d.bytes16("xattr name", MAX_XATTR_NAME)?.to_vec(),
            },
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
    /// A node made by [`Op::Create`] (which donates the opened fd), [`Op::Mkdir`],
    /// [`Op::Mknod`] or [`Op::Symlink`]: its new fid and attributes.
    New {
        op: Op,
        fid: Fid,
        attr: Stat,
    },
    /// Success of [`Op::Link`], [`Op::Unlink`], [`Op::Rename`], [`Op::Setattr`],
    /// [`Op::Setxattr`] or [`Op::Removexattr`], which answer nothing else.
    Done(Op),
    Getxattr {
        value: Vec<u8>,
    },
    /// NUL-terminated names, as listxattr(2) returns them.
    Listxattr {
        names: Vec<u8>,
    },
}

/// Whether `op` is answered with [`Response::New`].
fn answers_new(op: Op) -> bool {
    matches!(op, Op::Create | Op::Mkdir | Op::Mknod | Op::Symlink)
}

/// Whether `op` is answered with [`Response::Done`].
fn answers_done(op: Op) -> bool {
    matches!(
        op,
        Op::Link | Op::Unlink | Op::Rename | Op::Setattr | Op::Setxattr | Op::Removexattr
    )
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
            Response::New { op, .. } | Response::Done(op) => *op,
            Response::Getxattr { .. } => Op::Getxattr,
            Response::Listxattr { .. } => Op::Listxattr,
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
            Response::New { op, fid, attr } => {
                if !answers_new(*op) {
                    return Err(ProtocolError::Invalid("new-node answer op"));
                }
                e.u64(*fid);
                put_stat(&mut e, attr);
            }
            Response::Done(op) => {
                if !answers_done(*op) {
                    return Err(ProtocolError::Invalid("empty answer op"));
                }
            }
            Response::Getxattr { value } => {
                e.bytes32("xattr value", value, MAX_XATTR_VALUE)?;
            }
            Response::Listxattr { names } => {
                e.bytes32("xattr list", names, MAX_XATTR_LIST)?;
            }
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
            op if answers_new(op) => Response::New {
                op,
                fid: d.u64()?,
                attr: get_stat(&mut d)?,
            },
            op if answers_done(op) => Response::Done(op),
            Op::Getxattr => Response::Getxattr {
                value: d.bytes32("xattr value", MAX_XATTR_VALUE)?.to_vec(),
            },
            Op::Listxattr => {
                let names = d.bytes32("xattr list", MAX_XATTR_LIST)?;
                if names.last().is_some_and(|&b| b != 0) {
                    return Err(ProtocolError::Invalid("xattr list"));
                }
                Response::Listxattr {
                    names: names.to_vec(),
                }
            }
            // Every op is answered by one of the arms above.
            _ => return Err(ProtocolError::UnknownReply(code)),
        };
        d.finish()?;
        Ok(resp)
    }
}

mod attr;

use attr::{get_stat, get_statfs, put_stat, put_statfs};
pub use attr::{setattr_valid, SetAttrMsg};

#[cfg(test)]
mod tests;
