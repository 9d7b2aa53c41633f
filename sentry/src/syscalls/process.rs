//! Process identity, limits and lifetime syscalls.

use rvisor_syscalls::flags::arch_prctl::*;
use rvisor_syscalls::flags::prctl::*;
use rvisor_syscalls::flags::rlimit::{RLIMIT_NOFILE, RLIM_NLIMITS};
use rvisor_syscalls::types::{Rlimit, Rusage, Tms};
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::fdtable::NR_OPEN;
use crate::kernel::task::{Creds, ExitStatus};
use crate::kernel::Task;

/// The lowest non-canonical user address: fs/gs bases must stay below it.
const TASK_SIZE_MAX: u64 = 0x0000_7fff_ffff_f000;

pub fn exit(t: &mut Task, a: &Args) -> SysResult {
    // The only thread of its group: its exit ends the group (threads come later).
    t.exit_group(ExitStatus::Exited(a[0] as i32 & 0xff));
    Ok(0)
}

pub fn exit_group(t: &mut Task, a: &Args) -> SysResult {
    t.exit_group(ExitStatus::Exited(a[0] as i32 & 0xff));
    Ok(0)
}

pub fn getpid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.tgid as u64)
}

pub fn getppid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.ppid as u64)
}

pub fn gettid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.tid as u64)
}

pub fn getuid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.creds.uid as u64)
}

pub fn geteuid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.creds.euid as u64)
}

pub fn getgid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.creds.gid as u64)
}

pub fn getegid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.creds.egid as u64)
}

pub fn getresuid(t: &mut Task, a: &Args) -> SysResult {
    t.write_obj(a[0], &t.creds.uid)?;
    t.write_obj(a[1], &t.creds.euid)?;
    t.write_obj(a[2], &t.creds.suid)?;
    Ok(0)
}

pub fn getresgid(t: &mut Task, a: &Args) -> SysResult {
    t.write_obj(a[0], &t.creds.gid)?;
    t.write_obj(a[1], &t.creds.egid)?;
    t.write_obj(a[2], &t.creds.sgid)?;
    Ok(0)
}

/// setuid(2): root sets all ids; others may only switch to their real or saved id.
pub fn setuid(t: &mut Task, a: &Args) -> SysResult {
    let uid = u32::try_from(a[0]).ok().filter(|&u| u != u32::MAX).ok_or(Errno::EINVAL)?;
    let c = &mut t.creds;
    if c.euid == 0 {
        c.uid = uid;
        c.suid = uid;
    } else if uid != c.uid && uid != c.suid {
        return Err(Errno::EPERM);
    }
    c.euid = uid;
    c.fsuid = uid;
    Ok(0)
}

pub fn setgid(t: &mut Task, a: &Args) -> SysResult {
    let gid = u32::try_from(a[0]).ok().filter(|&g| g != u32::MAX).ok_or(Errno::EINVAL)?;
    let c = &mut t.creds;
    if c.euid == 0 {
        c.gid = gid;
        c.sgid = gid;
    } else if gid != c.gid && gid != c.sgid {
        return Err(Errno::EPERM);
    }
    c.egid = gid;
    c.fsgid = gid;
    Ok(0)
}

pub fn getgroups(t: &mut Task, a: &Args) -> SysResult {
    let size = a[0] as i32;
    let n = t.creds.groups.len();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(n as u64);
    }
    if (size as usize) < n {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = t.creds.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    t.mm.copy_out(a[1], &bytes)?;
    Ok(n as u64)
}

pub fn setgroups(t: &mut Task, a: &Args) -> SysResult {
    const NGROUPS_MAX: u64 = 65536;
    if a[0] > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    if t.creds.euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; a[0] as usize * 4];
    t.mm.copy_in(a[1], &mut raw)?;
    let groups = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    t.creds = Creds { groups, ..t.creds.clone() };
    Ok(0)
}

fn is_self(t: &Task, pid: u64) -> bool {
    let pid = pid as i32;
    pid == 0 || pid == t.tgid
}

pub fn getpgrp(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.pgid as u64)
}

pub fn getpgid(t: &mut Task, a: &Args) -> SysResult {
    if !is_self(t, a[0]) {
        return Err(Errno::ESRCH);
    }
    Ok(t.pgid as u64)
}

pub fn getsid(t: &mut Task, a: &Args) -> SysResult {
    if !is_self(t, a[0]) {
        return Err(Errno::ESRCH);
    }
    Ok(t.sid as u64)
}

pub fn setpgid(t: &mut Task, a: &Args) -> SysResult {
    let pgid = a[1] as i32;
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    if !is_self(t, a[0]) {
        return Err(Errno::ESRCH);
    }
    // A session leader cannot change its process group.
    if t.sid == t.tgid {
        return Err(Errno::EPERM);
    }
    let pgid = if pgid == 0 { t.tgid } else { pgid };
    if pgid != t.tgid && pgid != t.pgid {
        return Err(Errno::EPERM);
    }
    t.pgid = pgid;
    Ok(0)
}

pub fn setsid(t: &mut Task, _: &Args) -> SysResult {
    if t.pgid == t.tgid {
        return Err(Errno::EPERM);
    }
    t.sid = t.tgid;
    t.pgid = t.tgid;
    Ok(t.sid as u64)
}

pub fn set_tid_address(t: &mut Task, a: &Args) -> SysResult {
    t.clear_child_tid = a[0];
    Ok(t.tid as u64)
}

pub fn set_robust_list(t: &mut Task, a: &Args) -> SysResult {
    const ROBUST_LIST_HEAD_SIZE: u64 = 24;
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (a[0], a[1]);
    Ok(0)
}

pub fn get_robust_list(t: &mut Task, a: &Args) -> SysResult {
    if a[0] != 0 && a[0] as i32 != t.tid {
        return Err(Errno::ESRCH);
    }
    t.write_obj(a[1], &t.robust_list.0)?;
    t.write_obj(a[2], &t.robust_list.1)?;
    Ok(0)
}

pub fn arch_prctl(t: &mut Task, a: &Args) -> SysResult {
    match a[0] as u32 {
        ARCH_SET_FS | ARCH_SET_GS if a[1] >= TASK_SIZE_MAX => Err(Errno::EPERM),
        ARCH_SET_FS => {
            t.regs.fs_base = a[1];
            Ok(0)
        }
        ARCH_SET_GS => {
            t.regs.gs_base = a[1];
            Ok(0)
        }
        ARCH_GET_FS => {
            t.write_obj(a[1], &t.regs.fs_base)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            t.write_obj(a[1], &t.regs.gs_base)?;
            Ok(0)
        }
        ARCH_GET_CPUID => Ok(1),
        // CPUID faulting is not offered to guests.
        ARCH_SET_CPUID => Err(Errno::ENODEV),
        _ => Err(Errno::EINVAL),
    }
}

pub fn prctl(t: &mut Task, a: &Args) -> SysResult {
    match a[0] as u32 {
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            // The name may sit at the end of a mapping: copy what is readable up to 16 bytes.
            let s = t.mm.copy_in_cstring(a[1], 16).or_else(|e| match e {
                Errno::ENAMETOOLONG => {
                    t.mm.copy_in(a[1], &mut name)?;
                    Ok(name[..15].to_vec())
                }
                e => Err(e),
            })?;
            t.comm = s.into_iter().take(15).collect();
            Ok(0)
        }
        PR_GET_NAME => {
            let mut name = [0u8; 16];
            name[..t.comm.len().min(15)].copy_from_slice(&t.comm[..t.comm.len().min(15)]);
            t.mm.copy_out(a[1], &name)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            t.pdeath_signal = a[1] as u32;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            t.write_obj(a[1], &(t.pdeath_signal as i32))?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if a[1] != 1 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            t.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(t.no_new_privs as u64),
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE if a[1] <= 1 => Ok(0),
        PR_GET_KEEPCAPS => Ok(0),
        PR_SET_KEEPCAPS if a[1] <= 1 => Ok(0),
        PR_CAPBSET_READ if a[1] <= 40 => Ok(1),
        PR_CAPBSET_READ => Err(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

fn do_prlimit(t: &mut Task, resource: u64, new: Option<Rlimit>) -> Result<Rlimit, Errno> {
    let r = usize::try_from(resource).ok().filter(|&r| r < RLIM_NLIMITS).ok_or(Errno::EINVAL)?;
    let mut limits = t.rlimits.lock().unwrap_or_else(|p| p.into_inner());
    let old = limits[r];
    if let Some(n) = new {
        if n.rlim_cur > n.rlim_max {
            return Err(Errno::EINVAL);
        }
        if n.rlim_max > old.rlim_max && t.creds.euid != 0 {
            return Err(Errno::EPERM);
        }
        if r == RLIMIT_NOFILE as usize && n.rlim_max > NR_OPEN {
            return Err(Errno::EPERM);
        }
        limits[r] = n;
    }
    Ok(old)
}

pub fn getrlimit(t: &mut Task, a: &Args) -> SysResult {
    let old = do_prlimit(t, a[0], None)?;
    t.write_obj(a[1], &old)?;
    Ok(0)
}

pub fn setrlimit(t: &mut Task, a: &Args) -> SysResult {
    let new: Rlimit = t.read_obj(a[1])?;
    do_prlimit(t, a[0], Some(new))?;
    Ok(0)
}

pub fn prlimit64(t: &mut Task, a: &Args) -> SysResult {
    if !is_self(t, a[0]) {
        return Err(Errno::ESRCH);
    }
    let new = if a[2] != 0 { Some(t.read_obj::<Rlimit>(a[2])?) } else { None };
    let old = do_prlimit(t, a[1], new)?;
    if a[3] != 0 {
        t.write_obj(a[3], &old)?;
    }
    Ok(0)
}

/// getrusage(2). CPU time is not accounted per guest task yet: the fields read zero.
pub fn getrusage(t: &mut Task, a: &Args) -> SysResult {
    let who = a[0] as i32;
    if !matches!(who, 0 | -1 | 1) {
        return Err(Errno::EINVAL);
    }
    t.write_obj(a[1], &Rusage::default())?;
    Ok(0)
}

/// times(2): clock ticks since boot; per-process CPU times are not accounted yet.
pub fn times(t: &mut Task, a: &Args) -> SysResult {
    if a[0] != 0 {
        t.write_obj(a[0], &Tms::default())?;
    }
    Ok((t.kernel.boot_time.elapsed().as_millis() / 10) as u64)
}

pub fn sched_yield(_t: &mut Task, _: &Args) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

/// The number of CPUs the sandbox shows (the host CPUs the sentry may use).
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub fn sched_getaffinity(t: &mut Task, a: &Args) -> SysResult {
    if !is_self(t, a[0]) && a[0] as i32 != t.tid {
        return Err(Errno::ESRCH);
    }
    let ncpu = online_cpus();
    let bytes = ncpu.div_ceil(64) * 8;
    let len = a[1] as usize;
    if len < bytes || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut mask = vec![0u8; bytes];
    for cpu in 0..ncpu {
        mask[cpu / 8] |= 1 << (cpu % 8);
    }
    t.mm.copy_out(a[2], &mask)?;
    Ok(bytes as u64)
}

pub fn getcpu(t: &mut Task, a: &Args) -> SysResult {
    if a[0] != 0 {
        t.write_obj(a[0], &0u32)?;
    }
    if a[1] != 0 {
        t.write_obj(a[1], &0u32)?;
    }
    Ok(0)
}

/// wait4(2): the sandbox has no child processes yet.
pub fn wait4(_t: &mut Task, _a: &Args) -> SysResult {
    Err(Errno::ECHILD)
}

/// Reads a NULL-terminated array of string pointers (argv/envp) from guest memory.
/// E2BIG when the strings exceed what one exec may pass.
fn copy_in_string_array(t: &Task, mut addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    use rvisor_syscalls::flags::limits::MAX_ARG_STRLEN;
    /// Linux bounds argv+envp by a quarter of the stack limit; rvisor's loader checks the
    /// exact figure, this only stops a hostile guest from making the sentry copy forever.
    const MAX_TOTAL: usize = 32 << 20;
    let mut out = Vec::new();
    let mut total = 0usize;
    if addr == 0 {
        return Ok(out);
    }
    loop {
        let p: u64 = t.read_obj(addr)?;
        if p == 0 {
            return Ok(out);
        }
        let s = t.mm.copy_in_cstring(p, MAX_ARG_STRLEN).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::E2BIG } else { e })?;
        total += s.len() + 1 + 8;
        if total > MAX_TOTAL {
            return Err(Errno::E2BIG);
        }
        out.push(s);
        addr = addr.checked_add(8).ok_or(Errno::EFAULT)?;
    }
}

fn do_execveat(t: &mut Task, dirfd: i32, path_addr: u64, argv: u64, envp: u64, flags: u32) -> SysResult {
    use rvisor_syscalls::flags::at::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.copy_in_path(path_addr)?;
    let argv = copy_in_string_array(t, argv)?;
    let envp = copy_in_string_array(t, envp)?;
    let (dentry, execfn) = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        let f = t.file(dirfd)?;
        (f.dentry().ok_or(Errno::EACCES)?.clone(), format!("/dev/fd/{dirfd}").into_bytes())
    } else {
        let d = t.lookup_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        if d.inode().is_symlink() {
            return Err(Errno::ELOOP);
        }
        (d, path)
    };
    let fs = t.fs().clone();
    let image = crate::kernel::exec::load_image(&t.kernel, &fs, &t.creds, dentry, execfn, argv, envp)?;
    t.install_image(image);
    Ok(0)
}

/// execve(2). Only the calling thread exists so far, so no other threads need killing.
pub fn execve(t: &mut Task, a: &Args) -> SysResult {
    do_execveat(t, rvisor_syscalls::flags::at::AT_FDCWD, a[0], a[1], a[2], 0)
}

pub fn execveat(t: &mut Task, a: &Args) -> SysResult {
    do_execveat(t, a[0] as i32, a[1], a[2], a[3], a[4] as u32)
}
