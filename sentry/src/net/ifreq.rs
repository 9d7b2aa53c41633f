//! The interface ioctls (SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, ...) every socket answers,
//! from the sandbox's [`super::NetworkSpec`].

use rvisor_syscalls::Errno;

use crate::mm::MemoryManager;

/// Answers an interface ioctl on any socket; ENOTTY for other requests.
pub fn ioctl(_mm: &MemoryManager, _cmd: u32, _arg: u64) -> Result<u64, Errno> {
    Err(Errno::ENOTTY)
}
