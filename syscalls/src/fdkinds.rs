//! ABI of the notification file kinds: timerfd(2), signalfd(2) and inotify(7).

use crate::pod::{pod, Pod};
use crate::types::Timespec;

/// timerfd_create(2) and timerfd_settime(2) flags.
pub mod tfd {
    pub const TFD_CLOEXEC: u32 = 0o2000000;
    pub const TFD_NONBLOCK: u32 = 0o4000;
    pub const TFD_TIMER_ABSTIME: u32 = 1;
    pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;
}

/// signalfd4(2) flags.
pub mod sfd {
    pub const SFD_CLOEXEC: u32 = 0o2000000;
    pub const SFD_NONBLOCK: u32 = 0o4000;
}

/// inotify(7) event bits and flags.
pub mod inotify {
    pub const IN_ACCESS: u32 = 0x1;
    pub const IN_MODIFY: u32 = 0x2;
    pub const IN_ATTRIB: u32 = 0x4;
    pub const IN_CLOSE_WRITE: u32 = 0x8;
    pub const IN_CLOSE_NOWRITE: u32 = 0x10;
    pub const IN_OPEN: u32 = 0x20;
    pub const IN_MOVED_FROM: u32 = 0x40;
    pub const IN_MOVED_TO: u32 = 0x80;
    pub const IN_CREATE: u32 = 0x100;
    pub const IN_DELETE: u32 = 0x200;
    pub const IN_DELETE_SELF: u32 = 0x400;
    pub const IN_MOVE_SELF: u32 = 0x800;
    pub const IN_UNMOUNT: u32 = 0x2000;
    pub const IN_Q_OVERFLOW: u32 = 0x4000;
    pub const IN_IGNORED: u32 = 0x8000;
    pub const IN_CLOSE: u32 = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE;
    pub const IN_MOVE: u32 = IN_MOVED_FROM | IN_MOVED_TO;
    pub const IN_ALL_EVENTS: u32 = 0xfff;
    pub const IN_ONLYDIR: u32 = 0x0100_0000;
    pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
    pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
    pub const IN_MASK_CREATE: u32 = 0x1000_0000;
    pub const IN_MASK_ADD: u32 = 0x2000_0000;
    pub const IN_ISDIR: u32 = 0x4000_0000;
    pub const IN_ONESHOT: u32 = 0x8000_0000;
    pub const IN_CLOEXEC: u32 = 0o2000000;
    pub const IN_NONBLOCK: u32 = 0o4000;
    /// The default of /proc/sys/fs/inotify/max_queued_events.
    pub const MAX_QUEUED_EVENTS: usize = 16384;
    /// The default of /proc/sys/fs/inotify/max_user_watches (per instance here).
    pub const MAX_WATCHES: usize = 8192;
}

/// `struct itimerspec`
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Itimerspec {
    pub it_interval: Timespec,
    pub it_value: Timespec,
}

/// `struct signalfd_siginfo` (128 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalfdSiginfo {
    pub ssi_signo: u32,
    pub ssi_errno: i32,
    pub ssi_code: i32,
    pub ssi_pid: u32,
    pub ssi_uid: u32,
    pub ssi_fd: i32,
    pub ssi_tid: u32,
    pub ssi_band: u32,
    pub ssi_overrun: u32,
    pub ssi_trapno: u32,
    pub ssi_status: i32,
    pub ssi_int: i32,
    pub ssi_ptr: u64,
    pub ssi_utime: u64,
    pub ssi_stime: u64,
    pub ssi_addr: u64,
    pub ssi_addr_lsb: u16,
    pub pad2: u16,
    pub ssi_syscall: i32,
    pub ssi_call_addr: u64,
    pub ssi_arch: u32,
    pub pad: [u8; 28],
}

/// The fixed head of `struct inotify_event`; `len` bytes of NUL-padded name follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InotifyEvent {
    pub wd: i32,
    pub mask: u32,
    pub cookie: u32,
    pub len: u32,
}

pod!(Itimerspec, SignalfdSiginfo, InotifyEvent);

const _: () = assert!(core::mem::size_of::<Itimerspec>() == 32);
const _: () = assert!(core::mem::size_of::<SignalfdSiginfo>() == 128);
const _: () = assert!(core::mem::size_of::<InotifyEvent>() == 16);
