//! /proc/PID/fd, fdinfo and the magic links exe, cwd, root.
//!
//! A magic link reads as a path but is followed to the object itself: the walk continues
//! from the task's root, working directory, executable or open file's dentry (see
//! [`crate::vfs::Inode::follow_link_dentry`]), never from a path string, so
//! `/proc/1/root/..` is the sandbox root and an open file reached through fd/N is the same
//! file even after it was renamed or unlinked.

use std::sync::Arc;

use rvisor_syscalls::flags::mode::{S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK};
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

use super::{resolve, Target, TaskLink};
use crate::kernel::task::TaskProcInfo;
use crate::kernel::Kernel;
use crate::vfs::file::FileImpl;
use crate::vfs::inode::Inode;
use crate::vfs::{Dentry, FileDescription};

fn info(k: &Kernel, target: Target) -> Result<TaskProcInfo, Errno> {
    let (_, h) = resolve(k, target).ok_or(Errno::ENOENT)?;
    Ok(h.ok_or(Errno::ENOENT)?.proc_info())
}

/// The open fds of the task.
pub fn list(k: &Kernel, target: Target) -> Result<Vec<i32>, Errno> {
    let info = info(k, target)?;
    Ok(match &info.fds {
        Some(f) => f.lock().unwrap_or_else(|p| p.into_inner()).fds().collect(),
        None => Vec::new(),
    })
}

/// The file behind the task's fd `n`.
pub fn file_of(k: &Kernel, target: Target, n: i32) -> Result<Arc<FileDescription>, Errno> {
    let info = info(k, target)?;
    let fds = info.fds.as_ref().ok_or(Errno::ENOENT)?;
    let f = fds.lock().unwrap_or_else(|p| p.into_inner()).get(n).map_err(|_| Errno::ENOENT);
    f
}

/// The root the reader sees paths from.
fn reader_root(k: &Kernel) -> Arc<Dentry> {
    crate::kernel::task::current_task()
        .and_then(|h| h.proc_info().fs)
        .map(|fs| fs.lock().unwrap_or_else(|p| p.into_inner()).root.clone())
        .unwrap_or_else(|| k.vfs.root().clone())
}

fn path_of(k: &Kernel, d: &Arc<Dentry>) -> Vec<u8> {
    d.path_from(&reader_root(k)).or_else(|| d.path_from(k.vfs.root())).unwrap_or_else(|| d.name())
}

/// What fd/N reads as: the path of a file with a name (` (deleted)` once it has no link
/// left; `/NAME` for a file of an unmounted filesystem, such as a memfd), `pipe:[ino]`,
/// `socket:[ino]` or `anon_inode:...` for the others.
fn describe(k: &Kernel, f: &FileDescription) -> Vec<u8> {
    if let Some(d) = f.dentry() {
        let mut p = d.path_from(&reader_root(k)).or_else(|| d.path_from(k.vfs.root())).unwrap_or_else(|| {
            let mut p = b"/".to_vec();
            p.extend_from_slice(&d.name());
            p
        });
        if d.inode().stat().is_ok_and(|st| st.st_nlink == 0) {
            p.extend_from_slice(b" (deleted)");
        }
        return p;
    }
    if let Some(name) = f.imp().anon_name() {
        return format!("anon_inode:{name}").into_bytes();
    }
    let st = f.imp().stat().unwrap_or_default();
    match st.st_mode & S_IFMT {
        S_IFIFO => format!("pipe:[{}]", st.st_ino).into_bytes(),
        S_IFSOCK => format!("socket:[{}]", st.st_ino).into_bytes(),
        0 => b"anon_inode:[anon]".to_vec(),
        S_IFCHR => {
            let (major, minor) = ((st.st_rdev >> 8) & 0xfff, (st.st_rdev & 0xff) | ((st.st_rdev >> 12) & 0xfff00));
            match (major, minor) {
                (1, 3) => b"/dev/null".to_vec(),
                (1, 5) => b"/dev/zero".to_vec(),
                (5, 0) => b"/dev/tty".to_vec(),
                (136..=143, n) => format!("/dev/pts/{}", (major - 136) * 256 + n).into_bytes(),
                _ => format!("/dev/char/{major}:{minor}").into_bytes(),
            }
        }
        _ => format!("anon_inode:[{}]", st.st_ino).into_bytes(),
    }
}

/// readlink of a magic link.
pub fn readlink(k: &Kernel, target: Target, link: TaskLink) -> Result<Vec<u8>, Errno> {
    match link {
        TaskLink::Fd(n) => {
            let f = file_of(k, target, n)?;
            Ok(describe(k, &f))
        }
        _ => Ok(path_of(k, &follow(k, target, link)?)),
    }
}

/// Where a magic link leads.
pub fn follow(k: &Kernel, target: Target, link: TaskLink) -> Result<Arc<Dentry>, Errno> {
    if let TaskLink::Fd(n) = link {
        let f = file_of(k, target, n)?;
        return Ok(match f.dentry() {
            Some(d) => d.clone(),
            // A file without a name (pipe, socket, terminal): a detached dentry whose
            // inode reopens the same object.
            None => Dentry::new_root(Arc::new(OpenFileInode(f))),
        });
    }
    let info = info(k, target)?;
    match link {
        TaskLink::Exe => info.exe.clone().ok_or(Errno::ENOENT),
        TaskLink::Cwd | TaskLink::Root => {
            let fs = info.fs.as_ref().ok_or(Errno::ENOENT)?;
            let fs = fs.lock().unwrap_or_else(|p| p.into_inner());
            Ok(if link == TaskLink::Cwd { fs.cwd.clone() } else { fs.root.clone() })
        }
        TaskLink::Fd(_) => Err(Errno::ENOENT),
    }
}

/// /proc/PID/fdinfo/N.
pub fn fdinfo(k: &Kernel, target: Target, n: i32) -> Result<Vec<u8>, Errno> {
    let f = file_of(k, target, n)?;
    let info = info(k, target)?;
    let cloexec = info
        .fds
        .as_ref()
        .and_then(|t| t.lock().unwrap_or_else(|p| p.into_inner()).cloexec(n).ok())
        .unwrap_or(false);
    let flags = f.flags() | if cloexec { rvisor_syscalls::flags::open::O_CLOEXEC } else { 0 };
    let pos = if f.imp().is_stream() {
        0
    } else {
        f.seek(0, rvisor_syscalls::flags::seek::SEEK_CUR).unwrap_or(0)
    };
    let st = f.imp().stat().unwrap_or_default();
    let mnt_id = f.dentry().and_then(|d| k.vfs.mounts().mount_containing(d)).map_or(0, |m| m.id);
    Ok(format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{}\n", st.st_ino).into_bytes())
}

/// An open file without a name, seen as an inode: opening it through /proc/PID/fd/N gives
/// the same object (a pipe end, a socket, a terminal).
struct OpenFileInode(Arc<FileDescription>);

impl Inode for OpenFileInode {
    fn stat(&self) -> Result<Stat, Errno> {
        self.0.imp().stat()
    }

    fn file_type(&self) -> u32 {
        self.0.imp().stat().map_or(0, |s| s.st_mode & S_IFMT)
    }

    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        Ok(self.0.imp().clone())
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Err(Errno::ENOSYS)
    }
}
