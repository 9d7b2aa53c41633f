//! Encodings of attributes: `struct stat`, `struct statfs`, and setattr changes.

use rvisor_syscalls::types::{Stat, Statfs};

use super::{Decoder, Encoder, ProtocolError};

/// Which fields of a [`SetAttrMsg`] apply.
pub mod setattr_valid {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    /// Set the access time to `atime`.
    pub const ATIME: u32 = 1 << 4;
    /// Set the access time to the current time.
    pub const ATIME_NOW: u32 = 1 << 5;
    pub const MTIME: u32 = 1 << 6;
    pub const MTIME_NOW: u32 = 1 << 7;
    /// Every known bit.
    pub const ALL: u32 = (1 << 8) - 1;
}

/// The attribute changes of a setattr request; fields not named in `valid` are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttrMsg {
    /// [`setattr_valid`] bits.
    pub valid: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_sec: i64,
    pub atime_nsec: i64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
}

impl SetAttrMsg {
    pub(super) fn put(&self, e: &mut Encoder) {
        e.u32(self.valid).u32(self.mode).u32(self.uid).u32(self.gid);
        e.u64(self.size);
        e.i64(self.atime_sec).i64(self.atime_nsec);
        e.i64(self.mtime_sec).i64(self.mtime_nsec);
    }

    pub(super) fn get(d: &mut Decoder<'_>) -> Result<SetAttrMsg, ProtocolError> {
        use setattr_valid::*;
        let m = SetAttrMsg {
            valid: d.u32()?,
            mode: d.u32()?,
            uid: d.u32()?,
            gid: d.u32()?,
            size: d.u64()?,
            atime_sec: d.i64()?,
            atime_nsec: d.i64()?,
            mtime_sec: d.i64()?,
            mtime_nsec: d.i64()?,
        };
        let nsec_ok = |n: i64| (0..1_000_000_000).contains(&n);
        if m.valid & !ALL != 0
            || m.valid & (ATIME | ATIME_NOW) == ATIME | ATIME_NOW
            || m.valid & (MTIME | MTIME_NOW) == MTIME | MTIME_NOW
        {
            return Err(ProtocolError::Invalid("setattr fields"));
        }
        if m.valid & MODE != 0 && m.mode & !0o7777 != 0 {
            return Err(ProtocolError::Invalid("setattr mode"));
        }
        if (m.valid & ATIME != 0 && !nsec_ok(m.atime_nsec))
            || (m.valid & MTIME != 0 && !nsec_ok(m.mtime_nsec))
        {
            return Err(ProtocolError::Invalid("setattr time"));
        }
        if m.valid & SIZE != 0 && i64::try_from(m.size).is_err() {
            return Err(ProtocolError::Invalid("setattr size"));
        }
        Ok(m)
    }
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

pub(super) fn put_stat(e: &mut Encoder, s: &Stat) {
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

pub(super) fn get_stat(d: &mut Decoder<'_>) -> Result<Stat, ProtocolError> {
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

pub(super) fn put_statfs(e: &mut Encoder, s: &Statfs) {
    e.i64(s.f_type).i64(s.f_bsize);
    e.u64(s.f_blocks)
        .u64(s.f_bfree)
        .u64(s.f_bavail)
        .u64(s.f_files)
        .u64(s.f_ffree);
    e.i32(s.f_fsid[0]).i32(s.f_fsid[1]);
    e.i64(s.f_namelen).i64(s.f_frsize).i64(s.f_flags);
}

pub(super) fn get_statfs(d: &mut Decoder<'_>) -> Result<Statfs, ProtocolError> {
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
