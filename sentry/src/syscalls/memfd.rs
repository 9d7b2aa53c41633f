//! memfd_create(2) and the seal commands of fcntl(2); the files live in
//! [`crate::vfs::memfd`].

use rvisor_syscalls::flags::memfd::*;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::memfd::{self, MemfdOptions};
use crate::vfs::FileDescription;

/// memfd_create(2). MFD_HUGETLB is refused with EINVAL (no huge pages in the sandbox).
pub fn memfd_create(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[1] as u32;
    let known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC;
    if flags & !known != 0 || (flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0) {
        return Err(Errno::EINVAL);
    }
    // One byte more than the longest name tells a too-long name from a fault.
    let name = t.mm.copy_in_cstring(a[0], MFD_NAME_MAX + 1).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::EINVAL } else { e })?;
    let opts =
        MemfdOptions { allow_sealing: flags & MFD_ALLOW_SEALING != 0, noexec_seal: flags & MFD_NOEXEC_SEAL != 0, uid: t.creds.fsuid, gid: t.creds.fsgid };
    let file = memfd::create(t.kernel.memory.clone(), &name, opts)?;
    Ok(t.install_fd(file, flags & MFD_CLOEXEC != 0)? as u64)
}

/// fcntl F_GET_SEALS.
pub(super) fn get_seals(f: &FileDescription) -> SysResult {
    Ok(memfd::get_seals(f)? as u64)
}

/// fcntl F_ADD_SEALS.
pub(super) fn add_seals(f: &FileDescription, seals: u64) -> SysResult {
    memfd::add_seals(f, seals as u32)?;
    Ok(0)
}
