//! procfs: the sandbox's processes and system state as files, generated from sentry state.
//!
//! Every node is a [`ProcInode`]: a small description ([`Node`]) of what it shows — a pid
//! directory, one of a task's files, a system file, a magic link — resolved against the
//! kernel's tables each time it is used, so a node never holds a process alive and a node
//! of a process that is gone answers ENOENT. Files are generated when opened (a snapshot,
//! like Linux's seq_file) and read at offsets of that snapshot.
//!
//! Only the sandbox's own processes exist here, under their sandbox pids; `/proc` lists
//! thread-group leaders, and every thread is under `/proc/PID/task/TID`.
//!
//! `/proc/self` and `/proc/thread-self` depend on who asks: they read the calling task from
//! [`crate::kernel::task::current_task`] (a per-host-thread record; see there why).

mod fd;
mod maps;
mod net;
pub(crate) mod system;
mod task;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, Weak};

use rvisor_syscalls::flags::dirent::{DT_DIR, DT_LNK, DT_REG};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFREG};
use rvisor_syscalls::flags::open::{O_ACCMODE, O_RDONLY};
use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

use super::synthetic::SynthFileData;
use super::file::FileImpl;
use super::inode::{DirEntry, Inode};
use super::Dentry;
use crate::kernel::{Kernel, TaskHandle, ThreadGroup};

/// The device number procfs instances report.
pub const PROC_DEV: u64 = 0x15;

/// One procfs instance (the boot mount, or a `mount -t proc` in the sandbox).
pub struct ProcFs {
    kernel: OnceLock<Weak<Kernel>>,
    dev: u64,
}

impl ProcFs {
    /// A procfs with no kernel yet (boot mounts it before the kernel exists).
    pub fn new(dev: u64) -> Arc<ProcFs> {
        Arc::new(ProcFs { kernel: OnceLock::new(), dev })
    }

    /// A procfs of `k` (mount(2) in the sandbox).
    pub fn with_kernel(k: &Arc<Kernel>, dev: u64) -> Arc<ProcFs> {
        let fs = ProcFs::new(dev);
        fs.set_kernel(k);
        fs
    }

    /// Binds the instance to the kernel whose state it shows.
    pub fn set_kernel(&self, k: &Arc<Kernel>) {
        let _ = self.kernel.set(Arc::downgrade(k));
    }

    fn kernel(&self) -> Result<Arc<Kernel>, Errno> {
        self.kernel.get().and_then(Weak::upgrade).ok_or(Errno::ENOENT)
    }

    /// The root directory.
    pub fn root(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(ProcInode {
            fs: self.clone(),
            node: Node::Root,
        })
    }

    fn inode(self: &Arc<Self>, node: Node) -> Arc<dyn Inode> {
        Arc::new(ProcInode { fs: self.clone(), node })
    }
}

/// Whose files a per-task node shows: a process (its leader's view) or one thread of it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Target {
    Group(i32),
    Thread { tgid: i32, tid: i32 },
}

impl Target {
    fn tgid(self) -> i32 {
        match self {
            Target::Group(g) => g,
            Target::Thread { tgid, .. } => tgid,
        }
    }
}

/// The files of a pid (or tid) directory.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TaskFile {
    Stat,
    Status,
    Statm,
    Cmdline,
    Environ,
    Comm,
    Maps,
    Smaps,
    Mounts,
    MountInfo,
    Cgroup,
    Limits,
    OomScore,
    OomScoreAdj,
    LoginUid,
}

/// The magic links of a pid directory.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TaskLink {
    Exe,
    Cwd,
    Root,
    Fd(i32),
}

/// What a procfs inode shows.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Node {
    Root,
    /// `/proc/self` or `/proc/thread-self`.
    SelfLink {
        thread: bool,
    },
    /// `/proc/mounts` → `self/mounts`, and other fixed symlinks.
    FixedLink(&'static str),
    TaskDir(Target),
    /// `/proc/PID/task`.
    Threads(i32),
    /// `fd/` (or `fdinfo/` with `info`).
    FdDir {
        target: Target,
        info: bool,
    },
    FdInfo(Target, i32),
    TaskFile(Target, TaskFile),
    TaskLink(Target, TaskLink),
    /// A directory of the fixed system tree (`/proc/sys/...`), by its path.
    SysDir(&'static str),
    /// A system file, by its path below `/proc`.
    SysFile(&'static str),
    /// `/proc/PID/net` (`/proc/net` links to `self/net`).
    NetDir(Target),
    /// A file of a net directory, by name.
    NetFile(Target, &'static str),
}

/// The entries of a pid directory: name, node builder.
const TASK_FILES: &[(&str, TaskFile)] = &[
    ("cgroup", TaskFile::Cgroup),
    ("cmdline", TaskFile::Cmdline),
    ("comm", TaskFile::Comm),
    ("environ", TaskFile::Environ),
    ("limits", TaskFile::Limits),
    ("loginuid", TaskFile::LoginUid),
    ("maps", TaskFile::Maps),
    ("mountinfo", TaskFile::MountInfo),
    ("mounts", TaskFile::Mounts),
    ("oom_score", TaskFile::OomScore),
    ("oom_score_adj", TaskFile::OomScoreAdj),
    ("smaps", TaskFile::Smaps),
    ("stat", TaskFile::Stat),
    ("statm", TaskFile::Statm),
    ("status", TaskFile::Status),
];
const TASK_LINKS: &[(&str, TaskLink)] = &[("cwd", TaskLink::Cwd), ("exe", TaskLink::Exe), ("root", TaskLink::Root)];

/// A procfs inode.
pub struct ProcInode {
    fs: Arc<ProcFs>,
    node: Node,
}

fn parse_id(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || name[0] == b'0' || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// The thread group `tgid` and the task whose view stands for `target` (the leader, or
/// the first live thread once the leader has exited). `None` when the process is gone.
pub(crate) fn resolve(k: &Kernel, target: Target) -> Option<(Arc<ThreadGroup>, Option<Arc<TaskHandle>>)> {
    let tables = k.tables();
    let tg = tables.groups.get(&target.tgid())?.clone();
    match target {
        Target::Group(tgid) => {
            let h = tables.tasks.get(&tgid).filter(|h| h.tg.tgid == tgid).cloned();
            drop(tables);
            let h = h.or_else(|| tg.lock().threads.first().cloned());
            Some((tg, h))
        }
        Target::Thread { tgid, tid } => {
            let h = tables.tasks.get(&tid).filter(|h| h.tg.tgid == tgid)?.clone();
            Some((tg, Some(h)))
        }
    }
}

impl ProcInode {
    fn ino(&self) -> u64 {
        if self.node == Node::Root {
            return 1;
        }
        let mut h = DefaultHasher::new();
        self.node.hash(&mut h);
        h.finish() | 2
    }

    fn kernel(&self) -> Result<Arc<Kernel>, Errno> {
        self.fs.kernel()
    }

    /// The owner of per-task nodes: the task's effective ids (root for the rest).
    fn owner(&self) -> (u32, u32) {
        let target = match self.node {
            Node::TaskDir(t) | Node::FdDir { target: t, .. } | Node::FdInfo(t, _) | Node::TaskFile(t, _) | Node::TaskLink(t, _) => t,
            Node::Threads(g) => Target::Group(g),
            _ => return (0, 0),
        };
        let Ok(k) = self.kernel() else { return (0, 0) };
        match resolve(&k, target).and_then(|(_, h)| h) {
            Some(h) => {
                let c = h.proc_info().creds;
                (c.euid, c.egid)
            }
            None => (0, 0),
        }
    }

    /// Whether the process or thread this node belongs to still exists.
    fn check_alive(&self) -> Result<(), Errno> {
        let target = match self.node {
            Node::TaskDir(t) | Node::FdDir { target: t, .. } | Node::FdInfo(t, _) | Node::TaskFile(t, _) | Node::TaskLink(t, _) => t,
            Node::Threads(g) => Target::Group(g),
            _ => return Ok(()),
        };
        let k = self.kernel()?;
        resolve(&k, target).map(|_| ()).ok_or(Errno::ENOENT)
    }

    fn mode(&self) -> u32 {
        match self.node {
            Node::Root | Node::TaskDir(_) | Node::Threads(_) | Node::SysDir(_) | Node::NetDir(_) => S_IFDIR | 0o555,
            Node::FdDir { info: false, .. } => S_IFDIR | 0o500,
            Node::FdDir { info: true, .. } => S_IFDIR | 0o500,
            Node::SelfLink { .. } | Node::FixedLink(_) | Node::TaskLink(..) => S_IFLNK | 0o777,
            Node::TaskFile(_, TaskFile::Environ) => S_IFREG | 0o400,
            Node::TaskFile(_, TaskFile::Comm | TaskFile::OomScoreAdj | TaskFile::LoginUid) => S_IFREG | 0o644,
            Node::SysFile(p) if p.starts_with("sys/") => S_IFREG | 0o644,
            Node::TaskFile(..) | Node::FdInfo(..) | Node::SysFile(_) | Node::NetFile(..) => S_IFREG | 0o444,
        }
    }

    /// The directory's entries (without `.` and `..`).
    fn entries(&self) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
        let k = self.kernel()?;
        Ok(match self.node {
            Node::Root => {
                let mut out: Vec<(Vec<u8>, Node)> = system::ROOT_ENTRIES.iter().map(|(n, node)| (n.as_bytes().to_vec(), *node)).collect();
                out.push((b"self".to_vec(), Node::SelfLink { thread: false }));
                out.push((b"thread-self".to_vec(), Node::SelfLink { thread: true }));
                let mut pids: Vec<i32> = k.tables().groups.keys().copied().collect();
                pids.sort_unstable();
                out.extend(pids.into_iter().map(|p| (p.to_string().into_bytes(), Node::TaskDir(Target::Group(p)))));
                out
            }
            Node::TaskDir(target) => {
                let mut out: Vec<(Vec<u8>, Node)> = Vec::new();
                out.extend(TASK_FILES.iter().map(|(n, f)| (n.as_bytes().to_vec(), Node::TaskFile(target, *f))));
                out.extend(TASK_LINKS.iter().map(|(n, l)| (n.as_bytes().to_vec(), Node::TaskLink(target, *l))));
                out.push((b"fd".to_vec(), Node::FdDir { target, info: false }));
                out.push((b"fdinfo".to_vec(), Node::FdDir { target, info: true }));
                out.push((b"net".to_vec(), Node::NetDir(target)));
                if let Target::Group(g) = target {
                    out.push((b"task".to_vec(), Node::Threads(g)));
                }
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out
            }
            Node::Threads(tgid) => {
                let (tg, _) = resolve(&k, Target::Group(tgid)).ok_or(Errno::ENOENT)?;
                let mut tids: Vec<i32> = tg.lock().threads.iter().map(|h| h.tid()).collect();
                tids.sort_unstable();
                tids.into_iter()
                    .map(|tid| (tid.to_string().into_bytes(), Node::TaskDir(Target::Thread { tgid, tid })))
                    .collect()
            }
            Node::FdDir { target, info } => fd::list(&k, target)?
                .into_iter()
                .map(|n| {
                    (
                        n.to_string().into_bytes(),
                        if info {
                            Node::FdInfo(target, n)
                        } else {
                            Node::TaskLink(target, TaskLink::Fd(n))
                        },
                    )
                })
                .collect(),
            Node::SysDir(path) => system::sys_entries(path),
            Node::NetDir(target) => net::ENTRIES.iter().map(|n| (n.as_bytes().to_vec(), Node::NetFile(target, n))).collect(),
            _ => return Err(Errno::ENOTDIR),
        })
    }

    /// Whether the node is a file a guest may open for writing.
    fn writable(&self) -> bool {
        match self.node {
            Node::SysFile(path) => system::is_writable(path),
            Node::TaskFile(_, TaskFile::OomScoreAdj) => true,
            _ => false,
        }
    }

    /// Generates a file's contents.
    fn generate(&self) -> Result<Vec<u8>, Errno> {
        let k = self.kernel()?;
        match self.node {
            Node::TaskFile(target, f) => task::generate(&k, target, f),
            Node::FdInfo(target, n) => fd::fdinfo(&k, target, n),
            Node::SysFile(path) => system::generate(&k, path),
            Node::NetFile(_, name) => net::generate(&k, name),
            _ => Err(Errno::EISDIR),
        }
    }
}

impl Inode for ProcInode {
    fn stat(&self) -> Result<Stat, Errno> {
        self.check_alive()?;
        let (uid, gid) = self.owner();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let (s, ns) = (now.as_secs() as i64, now.subsec_nanos() as i64);
        let mode = self.mode();
        Ok(Stat {
            st_dev: self.fs.dev,
            st_ino: self.ino(),
            st_nlink: if mode & S_IFDIR != 0 { 2 } else { 1 },
            st_mode: mode,
            st_uid: uid,
            st_gid: gid,
            st_blksize: 1024,
            st_atime: s,
            st_atime_nsec: ns,
            st_mtime: s,
            st_mtime_nsec: ns,
            st_ctime: s,
            st_ctime_nsec: ns,
            ..Default::default()
        })
    }

    fn file_type(&self) -> u32 {
        self.mode() & rvisor_syscalls::flags::mode::S_IFMT
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let k = self.kernel()?;
        let node = match self.node {
            Node::Root => match parse_id(name) {
                Some(pid) => {
                    if !k.tables().groups.contains_key(&pid) {
                        return Err(Errno::ENOENT);
                    }
                    Node::TaskDir(Target::Group(pid))
                }
                None => self
                    .entries()?
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, node)| node)
                    .ok_or(Errno::ENOENT)?,
            },
            Node::Threads(tgid) => {
                let tid = parse_id(name).ok_or(Errno::ENOENT)?;
                let target = Target::Thread { tgid, tid };
                resolve(&k, target).ok_or(Errno::ENOENT)?;
                Node::TaskDir(target)
            }
            Node::FdDir { target, info } => {
                let n = parse_id(name).or_else(|| (name == b"0").then_some(0)).ok_or(Errno::ENOENT)?;
                fd::file_of(&k, target, n)?;
                if info {
                    Node::FdInfo(target, n)
                } else {
                    Node::TaskLink(target, TaskLink::Fd(n))
                }
            }
            Node::TaskDir(_) | Node::SysDir(_) | Node::NetDir(_) => {
                self.check_alive()?;
                self.entries()?
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, node)| node)
                    .ok_or(Errno::ENOENT)?
            }
            _ => return Err(Errno::ENOTDIR),
        };
        Ok(self.fs.inode(node))
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match self.node {
            Node::SelfLink { thread } => {
                let h = crate::kernel::task::current_task().ok_or(Errno::ENOENT)?;
                Ok(if thread {
                    format!("{}/task/{}", h.tg.tgid, h.tid())
                } else {
                    h.tg.tgid.to_string()
                }
                .into_bytes())
            }
            Node::FixedLink(target) => Ok(target.as_bytes().to_vec()),
            Node::TaskLink(target, link) => {
                let k = self.kernel()?;
                fd::readlink(&k, target, link)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn follow_link_dentry(&self) -> Option<Result<Arc<Dentry>, Errno>> {
        match self.node {
            Node::TaskLink(target, link) => Some(self.kernel().and_then(|k| fd::follow(&k, target, link))),
            _ => None,
        }
    }

    fn read_only(&self) -> bool {
        // Only the files a guest may write (writable sysctls, oom_score_adj) take writes.
        !self.writable()
    }

    fn cache_children(&self) -> bool {
        // Fixed system directories are the only ones whose entries never change.
        matches!(self.node, Node::SysDir(_))
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileImpl>, Errno> {
        self.check_alive()?;
        if self.mode() & S_IFDIR != 0 {
            let stat = self.stat()?;
            let inode = ProcInode {
                fs: self.fs.clone(),
                node: self.node,
            };
            return Ok(Arc::new(DirSnapshot {
                stat,
                inode,
                list: std::sync::Mutex::new(None),
            }));
        }
        if flags & O_ACCMODE != O_RDONLY {
            return match self.node {
                Node::SysFile(path) if self.writable() => {
                    Ok(Arc::new(system::SysctlFile { kernel: Arc::downgrade(&self.kernel()?), path, stat: self.stat()? }))
                }
                Node::TaskFile(target, TaskFile::OomScoreAdj) => {
                    Ok(Arc::new(task::OomScoreAdjFile { kernel: Arc::downgrade(&self.kernel()?), target, stat: self.stat()? }))
                }
                _ => Err(Errno::EACCES),
            };
        }
        let stat = self.stat()?;
        Ok(Arc::new(SynthFileData::new(stat, self.generate()?)))
    }

    fn statfs(&self) -> Result<Statfs, Errno> {
        Ok(Statfs {
            f_type: rvisor_syscalls::flags::fsmagic::PROC_SUPER_MAGIC,
            f_bsize: 4096,
            f_namelen: 255,
            f_frsize: 4096,
            ..Default::default()
        })
    }
}

impl ProcInode {
    /// The directory's entries as getdents reports them.
    fn dir_entries(&self, ino: u64) -> Result<Vec<DirEntry>, Errno> {
        let mut list = vec![
            DirEntry {
                ino,
                next_offset: 1,
                d_type: DT_DIR,
                name: b".".to_vec(),
            },
            DirEntry {
                ino,
                next_offset: 2,
                d_type: DT_DIR,
                name: b"..".to_vec(),
            },
        ];
        for (i, (name, node)) in self.entries()?.into_iter().enumerate() {
            let child = ProcInode { fs: self.fs.clone(), node };
            let d_type = match child.mode() & rvisor_syscalls::flags::mode::S_IFMT {
                S_IFDIR => DT_DIR,
                S_IFLNK => DT_LNK,
                _ => DT_REG,
            };
            list.push(DirEntry {
                ino: child.ino(),
                next_offset: i as u64 + 3,
                d_type,
                name,
            });
        }
        Ok(list)
    }
}

/// An open procfs directory: the entries as listed by the first getdents from the start
/// (so `ls /proc/self/fd` sees the fd of the directory it reads, like Linux).
struct DirSnapshot {
    stat: Stat,
    inode: ProcInode,
    list: std::sync::Mutex<Option<Vec<DirEntry>>>,
}

impl FileImpl for DirSnapshot {
    fn read(&self, _: &mut [u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _: &[u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }

    fn getdents(&self, offset: u64, _max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if offset == 0 || list.is_none() {
            *list = Some(self.inode.dir_entries(self.stat.st_ino)?);
        }
        let all = list.as_deref().unwrap_or_default();
        Ok(all.iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).cloned().collect())
    }
}
