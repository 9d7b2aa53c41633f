//! `#[repr(C)]` structs of the x86_64 Linux ABI, laid out exactly as the kernel does.

use crate::pod::{pod, Pod};

/// `struct timespec`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// `struct timeval`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// `struct timezone`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timezone {
    pub tz_minuteswest: i32,
    pub tz_dsttime: i32,
}

/// `struct stat` (x86_64 `newstat`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub __pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub __unused: [i64; 3],
}

/// `struct statx_timestamp`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
    pub __reserved: i32,
}

/// `struct statx`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub __spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_attributes_mask: u64,
    pub stx_atime: StatxTimestamp,
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
    pub stx_mnt_id: u64,
    pub stx_dio_mem_align: u32,
    pub stx_dio_offset_align: u32,
    pub __spare3: [u64; 12],
}

/// `struct new_utsname`: six fields of 65 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}

impl Default for Utsname {
    fn default() -> Self {
        Self::zeroed()
    }
}

/// `struct rlimit` / `struct rlimit64`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rlimit {
    pub rlim_cur: u64,
    pub rlim_max: u64,
}

/// `struct sysinfo`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub __pad1: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub __pad2: u32,
}

/// `struct iovec`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Iovec {
    pub iov_base: u64,
    pub iov_len: u64,
}

/// The fixed header of `struct linux_dirent64`; the NUL-terminated name follows and the
/// record is padded to a multiple of 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinuxDirent64Header {
    pub d_ino: u64,
    pub d_off: i64,
    pub d_reclen: u16,
    pub d_type: u8,
    pub __pad: [u8; 5],
}

/// Offset of `d_name` in `struct linux_dirent64`.
pub const DIRENT64_NAME_OFFSET: usize = 19;

/// A signal set as the kernel stores it (64 signals, bit `n-1` for signal `n`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SigSet(pub u64);

impl SigSet {
    /// The set with only `sig` (1..=64).
    pub fn of(sig: u32) -> SigSet {
        SigSet(1u64.checked_shl(sig.wrapping_sub(1)).unwrap_or(0))
    }
    pub fn contains(self, sig: u32) -> bool {
        self.0 & SigSet::of(sig).0 != 0
    }
}

/// `struct sigaction` as rt_sigaction(2) passes it (kernel layout, not glibc's).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: SigSet,
}

/// `stack_t`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAltStack {
    pub ss_sp: u64,
    pub ss_flags: i32,
    pub __pad: u32,
    pub ss_size: u64,
}

/// `struct tms`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tms {
    pub tms_utime: i64,
    pub tms_stime: i64,
    pub tms_cutime: i64,
    pub tms_cstime: i64,
}

/// `struct rusage`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rusage {
    pub ru_utime: Timeval,
    pub ru_stime: Timeval,
    pub rest: [i64; 14],
}

/// `struct winsize`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}

/// The kernel's `struct termios` (TCGETS), not glibc's larger one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; 19],
}

/// `struct statfs`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

/// `struct pollfd`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

pod!(
    Timespec, Timeval, Timezone, Stat, StatxTimestamp, Statx, Utsname, Rlimit, Sysinfo, Iovec,
    LinuxDirent64Header, SigSet, SigAction, SigAltStack, Tms, Rusage, Winsize, Termios, Statfs,
    PollFd,
);

/// `struct flock` (fcntl record locks).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub __pad: u32,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
    pub __pad2: u32,
}

/// `struct open_how` (openat2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    pub resolve: u64,
}

pod!(Flock, OpenHow);

const _: () = {
    assert!(core::mem::size_of::<Flock>() == 32);
    assert!(core::mem::size_of::<OpenHow>() == 24);
};

// The ABI sizes; a mismatch here is a layout bug that would corrupt guest memory.
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<Timespec>() == 16);
    assert!(size_of::<Stat>() == 144);
    assert!(size_of::<StatxTimestamp>() == 16);
    assert!(size_of::<Statx>() == 256);
    assert!(size_of::<Utsname>() == 390);
    assert!(size_of::<Sysinfo>() == 112);
    assert!(size_of::<LinuxDirent64Header>() == 24);
    assert!(size_of::<SigAction>() == 32);
    assert!(size_of::<SigAltStack>() == 24);
    assert!(size_of::<Rusage>() == 144);
    assert!(size_of::<Termios>() == 36);
    assert!(size_of::<Statfs>() == 120);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_round_trips_through_bytes() {
        let s = Stat { st_ino: 42, st_mode: 0o100644, st_size: 7, ..Default::default() };
        let back = Stat::from_bytes(s.as_bytes()).unwrap();
        assert_eq!(back, s);
        assert!(Stat::from_bytes(&[0u8; 10]).is_none());
    }

    #[test]
    fn sigset_bits_follow_signal_numbers() {
        assert_eq!(SigSet::of(1).0, 1);
        assert!(SigSet::of(64).contains(64));
        assert_eq!(SigSet::of(0).0, 0);
        assert_eq!(SigSet::of(65).0, 0);
    }
}

/// The user_cap_header_struct of capget/capset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CapUserHeader {
    pub version: u32,
    pub pid: i32,
}

/// One 32-bit slice of the three capability sets (user_cap_data_struct).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CapUserData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

const _: () = assert!(core::mem::size_of::<CapUserHeader>() == 8 && core::mem::size_of::<CapUserData>() == 12);
pod!(CapUserHeader, CapUserData);
