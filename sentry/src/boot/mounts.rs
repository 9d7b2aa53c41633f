//! The container's mounts from config.json, applied on the sandbox's root after the
//! default ones: tmpfs, proc, sysfs, devpts, mqueue, cgroup and gofer-served bind mounts,
//! then maskedPaths and readonlyPaths.

use std::sync::Arc;

use rvisor_gofer::GoferClient;
use rvisor_syscalls::flags::mount::{MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_RELATIME};
use rvisor_syscalls::Errno;

use super::{MountKind, MountSpec};
use crate::kernel::Kernel;
use crate::vfs::gofer::GoferInode;
use crate::vfs::mount::MountSpec as VfsMount;
use crate::vfs::proc::{ProcFs, PROC_DEV};
use crate::vfs::synthetic::{self, Node};
use crate::vfs::tmpfs::Tmpfs;
use crate::vfs::{Dentry, Inode, Lookup};

/// A failed mount, for a person.
#[derive(Debug, thiserror::Error)]
#[error("mount {destination}: {reason}")]
pub struct MountError {
    pub destination: String,
    pub reason: String,
}

fn merr(dest: &str, reason: impl std::fmt::Display) -> MountError {
    MountError {
        destination: dest.to_string(),
        reason: reason.to_string(),
    }
}

/// Per-mount flags from config.json's options.
fn mount_flags(options: &[String]) -> u64 {
    let mut f = 0;
    for o in options {
        match o.as_str() {
            "ro" => f |= MS_RDONLY,
            "rw" => f &= !MS_RDONLY,
            "nosuid" => f |= MS_NOSUID,
            "nodev" => f |= MS_NODEV,
            "noexec" => f |= MS_NOEXEC,
            "relatime" => f |= MS_RELATIME,
            _ => {}
        }
    }
    f
}

/// A size like "65536k", "64m", "1g" or plain bytes.
fn parse_size(v: &str) -> Option<u64> {
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1u64 << 10),
        'm' | 'M' => (&v[..v.len() - 1], 1 << 20),
        'g' | 'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// The filesystem options (data) of `options`: everything that is not a per-mount flag.
fn fs_options(options: &[String]) -> String {
    options
        .iter()
        .filter(|o| {
            !matches!(
                o.as_str(),
                "ro" | "rw"
                    | "nosuid"
                    | "nodev"
                    | "noexec"
                    | "relatime"
                    | "bind"
                    | "rbind"
                    | "private"
                    | "rprivate"
                    | "slave"
                    | "rslave"
                    | "shared"
                    | "rshared"
            )
        })
        .cloned()
        .collect::<Vec<_>>()
        .join(",")
}

/// Resolves `path` (absolute, inside the sandbox), creating missing directories — and
/// the last component as an empty regular file when `file` — like runc does in the rootfs.
fn make_mount_point(k: &Kernel, path: &str, file: bool) -> Result<Arc<Dentry>, Errno> {
    let root = k.vfs.root().clone();
    let resolve = |p: &str| {
        k.vfs.resolve(
            &Lookup {
                root: &root,
                start: &root,
                follow_last: true,
                creds: None,
            },
            p.as_bytes(),
        )
    };
    if let Ok(d) = resolve(path) {
        return Ok(d);
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.iter().any(|c| *c == "..") || parts.is_empty() {
        return Err(Errno::EINVAL);
    }
    let mut cur = root.clone();
    let mut prefix = String::new();
    for (i, name) in parts.iter().enumerate() {
        prefix.push('/');
        prefix.push_str(name);
        cur = match resolve(&prefix) {
            Ok(d) => d,
            Err(Errno::ENOENT) => {
                let last = i + 1 == parts.len();
                // A filesystem that cannot hold the new node (a read-only root, devfs,
                // sysfs): the mount point exists only in the dentry tree, empty, under the
                // mount (runc makes it on the host before the root becomes read-only).
                let placeholder = |node| synthetic::build(0x7, rvisor_syscalls::flags::fsmagic::TMPFS_MAGIC, node);
                let made = if last && file {
                    cur.inode().create(name.as_bytes(), 0o644, 0, 0).map_err(|e| (e, Node::File(vec![])))
                } else {
                    cur.inode().mkdir(name.as_bytes(), 0o755, 0, 0).map_err(|e| (e, Node::Dir(vec![])))
                };
                let inode = match made {
                    Ok(inode) => inode,
                    Err((Errno::EPERM | Errno::EROFS | Errno::EOPNOTSUPP, node)) => placeholder(node),
                    Err((e, _)) => return Err(e),
                };
                cur.instantiate(name.as_bytes(), inode)
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Makes sure the directory `path` exists in the sandbox's root, creating it and its
/// parents if missing (a process's working directory).
pub(crate) fn make_dir(k: &Kernel, path: &str) -> Result<(), Errno> {
    let d = make_mount_point(k, path, false)?;
    if d.inode().is_dir() {
        Ok(())
    } else {
        Err(Errno::ENOTDIR)
    }
}

/// The sandbox's sysfs (see [`synthetic::sysfs`]).
pub fn sysfs() -> Arc<dyn Inode> {
    synthetic::sysfs(crate::syscalls::online_cpus())
}

/// The synthetic cgroupfs the container sees: its limits, read-only.
fn cgroupfs(memory_limit: Option<u64>, pids_limit: Option<u64>) -> Arc<dyn Inode> {
    let show = |v: Option<u64>| {
        v.map_or("max\n".to_string(), |n| format!("{n}\n"))
            .into_bytes()
    };
    let tree = Node::Dir(vec![
        (
            "cgroup.controllers",
            Node::File(b"cpu memory pids\n".to_vec()),
        ),
        ("cgroup.procs", Node::File(Vec::new())),
        ("memory.max", Node::File(show(memory_limit))),
        ("pids.max", Node::File(show(pids_limit))),
    ]);
    synthetic::build(
        0x9,
        rvisor_syscalls::flags::fsmagic::CGROUP2_SUPER_MAGIC,
        tree,
    )
}

/// Applies `mounts` in order; `gofers` are the bind mounts' gofer connections.
pub fn apply(
    k: &Arc<Kernel>,
    mounts: &[MountSpec],
    gofers: &mut [Option<Arc<GoferClient>>],
    limits: (Option<u64>, Option<u64>),
) -> Result<(), MountError> {
    let table = k.vfs.mounts();
    for m in mounts {
        let dest = m.destination.as_str();
        if !dest.starts_with('/') {
            return Err(merr(dest, "the destination must be an absolute path"));
        }
        // The sandbox's /dev is already an in-memory devfs (listed as tmpfs, with the
        // standard devices, /dev/pts and /dev/shm), which is what runc builds from the
        // tmpfs every OCI spec mounts there: keep it rather than hide the devices.
        if matches!(m.kind, MountKind::Tmpfs) && dest.trim_end_matches('/') == "/dev" {
            tracing::debug!("keeping the sandbox's devfs at /dev");
            continue;
        }
        let flags = mount_flags(&m.options);
        let data = fs_options(&m.options);
        let (inode, spec, is_file): (Arc<dyn Inode>, VfsMount, bool) = match &m.kind {
            MountKind::Tmpfs | MountKind::Mqueue => {
                let mut mode = if matches!(m.kind, MountKind::Mqueue) {
                    0o1777
                } else {
                    0o1777
                };
                let mut size = None;
                for o in m.options.iter() {
                    if let Some(v) = o.strip_prefix("mode=") {
                        mode = u32::from_str_radix(v, 8)
                            .map_err(|_| merr(dest, format!("bad option {o}")))?
                            & 0o7777;
                    } else if let Some(v) = o.strip_prefix("size=") {
                        size = Some(
                            parse_size(v).ok_or_else(|| merr(dest, format!("bad option {o}")))?,
                        );
                    }
                }
                let root: Arc<dyn Inode> = Tmpfs::new_root(k.memory.clone(), mode, 0, 0);
                if size.is_some() {
                    Tmpfs::set_limits(&root, size, None).map_err(|e| merr(dest, e))?;
                }
                let (fs, src) = if matches!(m.kind, MountKind::Mqueue) {
                    ("mqueue", "mqueue")
                } else {
                    ("tmpfs", "tmpfs")
                };
                (root, VfsMount::new(fs, src, flags).options(&data), false)
            }
            MountKind::Proc => {
                let procfs = ProcFs::new(PROC_DEV);
                procfs.set_kernel(k);
                (procfs.root(), VfsMount::new("proc", "proc", flags), false)
            }
            MountKind::Sysfs => (
                sysfs(),
                VfsMount::new("sysfs", "sysfs", flags | MS_RDONLY),
                false,
            ),
            MountKind::Devpts => (
                k.devpts.root(),
                VfsMount::new("devpts", "devpts", flags).options(&data),
                false,
            ),
            MountKind::Cgroup => (
                cgroupfs(limits.0, limits.1),
                VfsMount::new("cgroup2", "cgroup", flags | MS_RDONLY),
                false,
            ),
            MountKind::Bind { gofer } => {
                let client = gofers
                    .get_mut(*gofer)
                    .and_then(Option::take)
                    .ok_or_else(|| merr(dest, format!("no gofer connection #{gofer}")))?;
                let ro = flags & MS_RDONLY != 0;
                let inode =
                    GoferInode::attach(client, k.memory.clone(), ro).map_err(|e| merr(dest, e))?;
                let is_file = !inode.is_dir();
                (
                    inode as Arc<dyn Inode>,
                    VfsMount::new("9p", "rvisor", flags),
                    is_file,
                )
            }
        };
        let target = make_mount_point(k, dest, is_file)
            .map_err(|e| merr(dest, format!("cannot create the mount point: {e}")))?;
        if target.inode().is_dir() == is_file {
            return Err(merr(
                dest,
                if is_file {
                    "a file cannot be mounted on a directory"
                } else {
                    "not a directory"
                },
            ));
        }
        table
            .mount_on(&target, inode, spec)
            .map_err(|e| merr(dest, e))?;
    }
    Ok(())
}

/// maskedPaths: files become empty and unreadable-to-change, folders empty and read-only.
/// Missing paths are skipped, as runc does.
pub fn mask(k: &Arc<Kernel>, paths: &[String]) {
    let root = k.vfs.root().clone();
    for p in paths {
        let Ok(target) = k.vfs.resolve(
            &Lookup {
                root: &root,
                start: &root,
                follow_last: true,
                creds: None,
            },
            p.as_bytes(),
        ) else {
            continue;
        };
        let (inode, spec) = if target.inode().is_dir() {
            (
                synthetic::build(
                    0xa,
                    rvisor_syscalls::flags::fsmagic::TMPFS_MAGIC,
                    Node::Dir(vec![]),
                ),
                VfsMount::new("tmpfs", "tmpfs", MS_RDONLY),
            )
        } else {
            (
                synthetic::build(
                    0xa,
                    rvisor_syscalls::flags::fsmagic::TMPFS_MAGIC,
                    Node::File(Vec::new()),
                ),
                VfsMount::new("tmpfs", "tmpfs", MS_RDONLY),
            )
        };
        if let Err(e) = k.vfs.mounts().mount_on(&target, inode, spec) {
            tracing::warn!(path = %p, error = %e, "cannot mask path");
        }
    }
}

/// readonlyPaths: each becomes a read-only mount (a remount when it is one already).
pub fn make_read_only(k: &Arc<Kernel>, paths: &[String]) {
    let root = k.vfs.root().clone();
    let table = k.vfs.mounts();
    for p in paths {
        let Ok(target) = k.vfs.resolve(
            &Lookup {
                root: &root,
                start: &root,
                follow_last: true,
                creds: None,
            },
            p.as_bytes(),
        ) else {
            continue;
        };
        let r = match table.mount_of_root(&target) {
            Some(m) => {
                let spec = m.spec();
                table.remount(&target, spec.flags | MS_RDONLY, None)
            }
            None => {
                let spec =
                    VfsMount::new("bind", "none", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
                table
                    .mount_on(&target, target.inode().clone(), spec)
                    .map(|_| ())
            }
        };
        if let Err(e) = r {
            tracing::warn!(path = %p, error = %e, "cannot make path read-only");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o: Vec<String> = ["rbind", "ro", "nosuid", "mode=755", "size=65536k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(mount_flags(&o), MS_RDONLY | MS_NOSUID);
        assert_eq!(fs_options(&o), "mode=755,size=65536k");
        assert_eq!(parse_size("65536k"), Some(64 << 20));
        assert_eq!(parse_size("x"), None);
    }
}
