//! The x86_64 Linux ABI as a guest sees it: syscall numbers and names, errno values,
//! flags, and `#[repr(C)]` structs. Plain data: no host calls, no policy.

pub mod errno;
pub mod fdkinds;
pub mod flags;
pub mod netlink;
pub mod nr;
pub mod pod;
pub mod signal;
pub mod types;

pub use errno::Errno;
pub use pod::Pod;
