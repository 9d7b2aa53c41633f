//! mount(2) and umount2(2): tmpfs, proc and sysfs mounts, bind mounts, remounts and
//! propagation changes (accepted; the sandbox has one mount namespace and no peers).

use std::sync::Arc;

use rvisor_syscalls::flags::at::AT_FDCWD;
use rvisor_syscalls::flags::mount::*;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::mount::MountSpec;
use crate::vfs::proc::{ProcFs, PROC_DEV};
use crate::vfs::tmpfs::Tmpfs;
use crate::vfs::{Dentry, Inode};

/// The most mount(2) copies of its `data` argument (a page, as Linux).
const DATA_MAX: usize = 4096;
/// Per-mount flags a new mount or a remount keeps.
const MOUNT_FLAGS: u64 = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME;
const PROPAGATION: u64 = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

fn copy_in_opt_string(t: &Task, addr: u64, max: usize) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    t.mm.copy_in_cstring(addr, max)
        .map(Some)
        .map_err(|e| if e == Errno::ENAMETOOLONG { Errno::EINVAL } else { e })
}

/// Options of a tmpfs mount.
#[derive(Debug, PartialEq, Eq)]
struct TmpfsOptions {
    mode: u32,
    uid: u32,
    gid: u32,
    /// `size=` in bytes (0: unlimited).
    size: Option<u64>,
    /// `nr_inodes=` (0: unlimited).
    nr_inodes: Option<u64>,
}

/// Parses "size=10m,mode=755,uid=0,gid=0" (EINVAL for a malformed or unknown option).
fn parse_tmpfs_options(data: &[u8]) -> Result<TmpfsOptions, Errno> {
    let mut o = TmpfsOptions {
        mode: 0o1777,
        uid: 0,
        gid: 0,
        size: None,
        nr_inodes: None,
    };
    let s = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    for opt in s.split(',').filter(|x| !x.is_empty()) {
        let (key, val) = opt.split_once('=').unwrap_or((opt, ""));
        match key {
            "mode" => o.mode = u32::from_str_radix(val, 8).map_err(|_| Errno::EINVAL)? & 0o7777,
            "uid" => o.uid = val.parse().map_err(|_| Errno::EINVAL)?,
            "gid" => o.gid = val.parse().map_err(|_| Errno::EINVAL)?,
            "size" => o.size = Some(parse_size(val)?),
            "nr_blocks" => o.size = Some(parse_size(val)?.checked_mul(4096).ok_or(Errno::EINVAL)?),
            "nr_inodes" => o.nr_inodes = Some(parse_size(val)?),
            "inode64" | "inode32" | "huge" | "mpol" | "noswap" => {}
            // Per-mount flags spelled as options by some callers.
            "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime" | "noatime" | "strictatime" => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(o)
}

/// A tmpfs size: bytes with an optional k/m/g suffix, or a percentage of memory.
fn parse_size(v: &str) -> Result<u64, Errno> {
    let (num, mult) = match v.chars().last() {
        Some('k' | 'K') => (&v[..v.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&v[..v.len() - 1], 1 << 20),
        Some('g' | 'G') => (&v[..v.len() - 1], 1 << 30),
        Some('%') => {
            let pct: u64 = v[..v.len() - 1].parse().map_err(|_| Errno::EINVAL)?;
            // SAFETY: `s` is a plain C struct that sysinfo fills on success.
            let mut s: libc::sysinfo = unsafe { std::mem::zeroed() };
            // SAFETY: valid out-pointer.
            unsafe { libc::sysinfo(&mut s) };
            let total = (s.totalram as u64).saturating_mul(u64::from(s.mem_unit.max(1)));
            return Ok(total / 100 * pct.min(100));
        }
        _ => (v, 1),
    };
    num.parse::<u64>().map_err(|_| Errno::EINVAL)?.checked_mul(mult).ok_or(Errno::EINVAL)
}

impl TmpfsOptions {
    /// `size=` and `nr_inodes=` as the filesystem's limits (`None`: not given, 0:
    /// unlimited).
    fn limits(&self) -> (Option<u64>, Option<u64>) {
        (self.size, self.nr_inodes)
    }

    fn render(&self) -> String {
        let mut parts = Vec::new();
        if let Some(size) = self.size {
            parts.push(format!("size={}k", size.div_ceil(1024)));
        }
        if let Some(n) = self.nr_inodes {
            parts.push(format!("nr_inodes={n}"));
        }
        if self.mode != 0o1777 {
            parts.push(format!("mode={:o}", self.mode));
        }
        if self.uid != 0 {
            parts.push(format!("uid={}", self.uid));
        }
        if self.gid != 0 {
            parts.push(format!("gid={}", self.gid));
        }
        parts.join(",")
    }
}

/// mount(2).
pub fn mount(t: &mut Task, a: &Args) -> SysResult {
    if !t.creds.capable(rvisor_syscalls::flags::capability::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let mut flags = a[3];
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    let target_path = t.copy_in_path(a[1])?;
    let target = t.lookup_at(AT_FDCWD, &target_path, true)?;
    let mounts = t.kernel.vfs.mounts();
    if flags & MS_REMOUNT != 0 {
        let data = copy_in_opt_string(t, a[4], DATA_MAX)?;
        let m = mounts.mount_of_root(&target).ok_or(Errno::EINVAL)?;
        let opts = match (flags & MS_BIND, m.spec().fs_type.as_str(), data) {
            (0, "tmpfs", Some(d)) => {
                let o = parse_tmpfs_options(&d)?;
                let (size, inodes) = o.limits();
                Tmpfs::set_limits(m.root.inode(), size, inodes)?;
                Some(o.render())
            }
            _ => None,
        };
        mounts.remount(&target, flags & MOUNT_FLAGS, opts)?;
        return Ok(0);
    }
    if flags & PROPAGATION != 0 {
        // One mount namespace, no peers: propagation types change nothing observable.
        if mounts.mount_of_root(&target).is_none() {
            return Err(Errno::EINVAL);
        }
        return Ok(0);
    }
    if flags & MS_MOVE != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MS_BIND != 0 {
        let source_path = t.copy_in_path(a[0])?;
        let source = t.lookup_at(AT_FDCWD, &source_path, true)?;
        if source.inode().is_dir() != target.inode().is_dir() {
            return Err(if target.inode().is_dir() { Errno::ENOTDIR } else { Errno::EISDIR });
        }
        bind(t, &source, &target, flags)?;
        return Ok(0);
    }
    if !target.inode().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let fstype = copy_in_opt_string(t, a[2], 256)?.ok_or(Errno::EINVAL)?;
    let source = copy_in_opt_string(t, a[0], 4096)?.unwrap_or_else(|| b"none".to_vec());
    let source = String::from_utf8_lossy(&source).into_owned();
    let data = copy_in_opt_string(t, a[4], DATA_MAX)?.unwrap_or_default();
    let (inode, spec): (Arc<dyn Inode>, MountSpec) = match fstype.as_slice() {
        b"tmpfs" => {
            let o = parse_tmpfs_options(&data)?;
            let root = Tmpfs::new_root(t.kernel.memory.clone(), o.mode, o.uid, o.gid);
            let (size, inodes) = o.limits();
            let as_inode: Arc<dyn Inode> = root.clone();
            Tmpfs::set_limits(&as_inode, size, inodes)?;
            (root, MountSpec::new("tmpfs", &source, flags & MOUNT_FLAGS).options(&o.render()))
        }
        b"proc" => (
            ProcFs::with_kernel(&t.kernel, PROC_DEV).root(),
            MountSpec::new("proc", &source, flags & MOUNT_FLAGS),
        ),
        b"sysfs" => (
            crate::vfs::synthetic::sysfs(super::online_cpus()),
            MountSpec::new("sysfs", &source, flags & MOUNT_FLAGS),
        ),
        _ => return Err(Errno::ENODEV),
    };
    mounts.mount_on(&target, inode, spec)?;
    Ok(0)
}

/// A bind mount of `source` on `target`; with MS_REC, the mounts below `source` are
/// repeated below the new mount.
fn bind(t: &Task, source: &Arc<Dentry>, target: &Arc<Dentry>, flags: u64) -> Result<(), Errno> {
    let mounts = t.kernel.vfs.mounts();
    let src_mount = mounts.mount_containing(source).ok_or(Errno::EINVAL)?;
    let src_spec = src_mount.spec();
    let inner = source.path_from(&src_mount.root).ok_or(Errno::EINVAL)?;
    let mut fs_root = src_spec.fs_root.clone();
    if inner != b"/" {
        if fs_root.last() == Some(&b'/') {
            fs_root.pop();
        }
        fs_root.extend_from_slice(&inner);
    }
    let spec = MountSpec {
        fs_root,
        flags: flags & MOUNT_FLAGS,
        ..src_spec
    };
    // Submounts to repeat, found before the new mount exists (it may lie below `source`).
    let subs: Vec<_> = if flags & MS_REC != 0 {
        mounts
            .all()
            .into_iter()
            .filter(|m| !Arc::ptr_eq(&m.root, source) && source.is_ancestor_of(&m.root))
            .collect()
    } else {
        Vec::new()
    };
    let new_root = mounts.mount_on(target, source.inode().clone(), spec)?;
    for m in subs {
        let Some(rel) = m.root.path_from(source) else { continue };
        let mut parts: Vec<&[u8]> = rel.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect();
        let Some(name) = parts.pop() else { continue };
        let mut dir = new_root.clone();
        let mut ok = true;
        for p in parts {
            match dir.child(p) {
                Ok(d) => dir = d,
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            mounts.mount(&dir, name, m.root.inode().clone(), m.spec());
        }
    }
    Ok(())
}

/// Whether a task's working directory, root or an open file lies in the tree at `d`.
fn in_use(t: &Task, d: &Arc<Dentry>) -> bool {
    let handles: Vec<_> = t.kernel.tables().tasks.values().cloned().collect();
    for h in handles {
        let info = h.proc_info();
        if let Some(fs) = &info.fs {
            let fs = fs.lock().unwrap_or_else(|p| p.into_inner());
            if d.is_ancestor_of(&fs.cwd) || d.is_ancestor_of(&fs.root) {
                return true;
            }
        }
        if let Some(fds) = &info.fds {
            let fds = fds.lock().unwrap_or_else(|p| p.into_inner());
            for n in fds.fds().collect::<Vec<_>>() {
                if let Ok(f) = fds.get(n) {
                    if f.dentry().is_some_and(|fd| d.is_ancestor_of(fd)) {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// umount2(2).
pub fn umount2(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[1] as u32;
    if a[1] > u64::from(u32::MAX) || flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0 {
        return Err(Errno::EINVAL);
    }
    if !t.creds.capable(rvisor_syscalls::flags::capability::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let path = t.copy_in_path(a[0])?;
    let target = t.lookup_at(AT_FDCWD, &path, flags & UMOUNT_NOFOLLOW == 0)?;
    let mounts = t.kernel.vfs.mounts();
    if mounts.mount_of_root(&target).is_none() {
        return Err(Errno::EINVAL);
    }
    if flags & MNT_EXPIRE != 0 {
        return Err(Errno::EAGAIN);
    }
    if flags & MNT_DETACH == 0 && in_use(t, &target) {
        return Err(Errno::EBUSY);
    }
    mounts.unmount(&target, flags & MNT_DETACH != 0)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_options_parse_and_render_like_linux() {
        let o = parse_tmpfs_options(b"size=1m,mode=755").unwrap();
        assert_eq!(
            o,
            TmpfsOptions {
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: Some(1 << 20),
                nr_inodes: None,
            }
        );
        assert_eq!(o.render(), "size=1024k,mode=755");
        assert_eq!(parse_tmpfs_options(b"").unwrap().render(), "");
        assert_eq!(parse_tmpfs_options(b"mode=9").unwrap_err(), Errno::EINVAL);
        assert_eq!(parse_tmpfs_options(b"bogus=1").unwrap_err(), Errno::EINVAL);
        assert_eq!(parse_size("18446744073709551615k").unwrap_err(), Errno::EINVAL);
    }
}
