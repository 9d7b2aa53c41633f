//! memfd_create(2): anonymous files whose pages are memory.
//!
//! A memfd is a tmpfs regular file with no name in any mounted directory: it lives in a
//! private tmpfs of its own, created and unlinked at once, so that `mmap(MAP_SHARED)`, fork
//! and fd passing share its pages like any tmpfs file. Its dentry is called `memfd:NAME`
//! under that private root, which `/proc/PID/fd` shows as `/memfd:NAME (deleted)`.
//! Seals (F_ADD_SEALS, F_GET_SEALS) are kept by the tmpfs file ([`TmpfsInode::add_seals`]).

use std::sync::Arc;

use rvisor_syscalls::flags::fcntl::{F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE};
use rvisor_syscalls::flags::memfd::MFD_NAME_MAX;
use rvisor_syscalls::flags::open::{O_LARGEFILE, O_RDWR};
use rvisor_syscalls::Errno;

use super::tmpfs::{Tmpfs, TmpfsInode};
use super::{Dentry, FileDescription};
use crate::mm::MemoryFile;

/// F_SEAL_EXEC: the mode's execute bits can no longer change.
pub const F_SEAL_EXEC: u32 = 0x0020;
/// Every seal F_ADD_SEALS knows.
pub const ALL_SEALS: u32 = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// How a new memfd starts.
#[derive(Clone, Copy, Debug)]
pub struct MemfdOptions {
    /// MFD_ALLOW_SEALING: seals may be added (otherwise the file is born with F_SEAL_SEAL).
    pub allow_sealing: bool,
    /// MFD_NOEXEC_SEAL: mode 0666 and F_SEAL_EXEC (sealing allowed).
    pub noexec_seal: bool,
    pub uid: u32,
    pub gid: u32,
}

/// A new memfd called `name` (without the `memfd:` prefix), opened read-write.
pub fn create(mf: Arc<MemoryFile>, name: &[u8], opts: MemfdOptions) -> Result<Arc<FileDescription>, Errno> {
    if name.len() > MFD_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let mode = if opts.noexec_seal { 0o666 } else { 0o777 };
    let root = Tmpfs::new_root(mf, 0o700, opts.uid, opts.gid);
    let inode = super::Inode::create(&*root, b"memfd", mode, opts.uid, opts.gid)?;
    super::Inode::unlink(&*root, b"memfd")?;
    let node = inode.as_any().and_then(|a| a.downcast_ref::<TmpfsInode>()).ok_or(Errno::EIO)?;
    let seals = if opts.noexec_seal {
        F_SEAL_EXEC
    } else if opts.allow_sealing {
        0
    } else {
        F_SEAL_SEAL
    };
    node.set_initial_seals(seals)?;
    let imp = inode.open(O_RDWR)?;
    let mut dname = b"memfd:".to_vec();
    dname.extend_from_slice(name);
    let root_dentry = Dentry::new_root(root);
    let dentry = root_dentry.instantiate(&dname, inode);
    Ok(FileDescription::new(imp, Some(dentry), O_RDWR | O_LARGEFILE))
}

/// The tmpfs file behind `f`, for the seal commands (EINVAL for other files).
fn tmpfs_node(f: &FileDescription) -> Result<&TmpfsInode, Errno> {
    let d = f.dentry().ok_or(Errno::EINVAL)?;
    d.inode().as_any().and_then(|a| a.downcast_ref::<TmpfsInode>()).ok_or(Errno::EINVAL)
}

/// fcntl F_GET_SEALS.
pub fn get_seals(f: &FileDescription) -> Result<u32, Errno> {
    tmpfs_node(f)?.seals()
}

/// fcntl F_ADD_SEALS.
pub fn add_seals(f: &FileDescription, seals: u32) -> Result<(), Errno> {
    let node = tmpfs_node(f)?;
    if !f.writable() {
        return Err(Errno::EPERM);
    }
    if seals & !ALL_SEALS != 0 {
        return Err(Errno::EINVAL);
    }
    node.add_seals(seals)
}

/// Whether a new mapping of `f` may be shared and writable: EPERM once the file is sealed
/// against writes (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE).
pub fn check_shared_writable_map(f: &FileDescription) -> Result<(), Errno> {
    match tmpfs_node(f).and_then(TmpfsInode::seals) {
        Ok(s) if s & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 => Err(Errno::EPERM),
        _ => Ok(()),
    }
}
