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
