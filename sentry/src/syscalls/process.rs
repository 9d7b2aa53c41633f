//! Process identity, limits and lifetime syscalls.

use rvisor_syscalls::flags::arch_prctl::*;
use rvisor_syscalls::flags::prctl::*;
use rvisor_syscalls::flags::rlimit::{RLIMIT_NOFILE, RLIM_NLIMITS};
use rvisor_syscalls::types::{Rlimit, Rusage, Timeval, Tms};
use rvisor_syscalls::Errno;

use std::sync::Arc;

use super::{Args, SysResult};
use crate::kernel::clone::CloneArgs;
use crate::kernel::exit::{do_wait, WaitTarget};
use crate::kernel::fdtable::NR_OPEN;
use crate::kernel::signal::{group_exit, SignalInfo};
use crate::kernel::task::{Creds, ExitStatus};
use crate::kernel::thread_group::{TgState, ThreadGroup};
use crate::kernel::Task;

/// The lowest non-canonical user address: fs/gs bases must stay below it.
const TASK_SIZE_MAX: u64 = 0x0000_7fff_ffff_f000;

/// exit(2): ends the calling thread; the last thread's exit ends the process.
pub fn exit(t: &mut Task, a: &Args) -> SysResult {
    t.exit = Some(ExitStatus::Exited(a[0] as i32 & 0xff));
    Ok(0)
}

pub fn exit_group(t: &mut Task, a: &Args) -> SysResult {
    let (k, tg) = (t.kernel.clone(), t.tg().clone());
    group_exit(&k, &tg, ExitStatus::Exited(a[0] as i32 & 0xff));
    Ok(0)
}

pub fn getpid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.tgid() as u64)
}

pub fn getppid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.tg().parent().map_or(0, |p| p.tgid) as u64)
}

pub fn gettid(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.tid() as u64)
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
    let old = (c.uid, c.euid, c.suid);
    if c.capable(rvisor_syscalls::flags::capability::CAP_SETUID) {
        c.uid = uid;
        c.suid = uid;
    } else if uid != c.uid && uid != c.suid {
        return Err(Errno::EPERM);
    }
    c.euid = uid;
    c.fsuid = uid;
    crate::kernel::caps::after_setuid(&mut c.caps, old, (c.uid, c.euid, c.suid));
    t.publish_proc_info();
    Ok(0)
}

pub fn setgid(t: &mut Task, a: &Args) -> SysResult {
    let gid = u32::try_from(a[0]).ok().filter(|&g| g != u32::MAX).ok_or(Errno::EINVAL)?;
    let c = &mut t.creds;
    if c.capable(rvisor_syscalls::flags::capability::CAP_SETGID) {
        c.gid = gid;
        c.sgid = gid;
    } else if gid != c.gid && gid != c.sgid {
        return Err(Errno::EPERM);
    }
    c.egid = gid;
    c.fsgid = gid;
    t.publish_proc_info();
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
    if !t.creds.capable(rvisor_syscalls::flags::capability::CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; a[0] as usize * 4];
    t.mm.copy_in(a[1], &mut raw)?;
    let groups = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    t.creds = Creds { groups, ..t.creds.clone() };
    t.publish_proc_info();
    Ok(0)
}

fn is_self(t: &Task, pid: u64) -> bool {
    let pid = pid as i32;
    pid == 0 || pid == t.tgid()
}

/// The thread group `pid` names (0: the caller's).
fn group_of(t: &Task, pid: u64) -> Result<Arc<ThreadGroup>, Errno> {
    let pid = i32::try_from(pid as i64).map_err(|_| Errno::ESRCH)?;
    if pid == 0 || pid == t.tgid() {
        return Ok(t.tg().clone());
    }
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    t.kernel.group(pid).filter(|g| !matches!(g.lock().state, TgState::Dead)).ok_or(Errno::ESRCH)
}

pub fn getpgrp(t: &mut Task, _: &Args) -> SysResult {
    Ok(t.tg().pgid() as u64)
}

pub fn getpgid(t: &mut Task, a: &Args) -> SysResult {
    Ok(group_of(t, a[0])?.pgid() as u64)
}

pub fn getsid(t: &mut Task, a: &Args) -> SysResult {
    Ok(group_of(t, a[0])?.sid() as u64)
}

/// setpgid(2): the caller or one of its children joins or creates a process group in its
/// session.
pub fn setpgid(t: &mut Task, a: &Args) -> SysResult {
    let pgid = a[1] as i32;
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = group_of(t, a[0])?;
    let me = t.tg().clone();
    if !Arc::ptr_eq(&target, &me) && !target.parent().is_some_and(|p| Arc::ptr_eq(&p, &me)) {
        return Err(Errno::ESRCH);
    }
    let my_sid = me.sid();
    let (tsid, tgid) = (target.sid(), target.tgid);
    if tsid != my_sid {
        return Err(Errno::EPERM);
    }
    // A session leader cannot change its process group.
    if tsid == tgid {
        return Err(Errno::EPERM);
    }
    let pgid = if pgid == 0 { tgid } else { pgid };
    if pgid != tgid {
        let exists = t.kernel.all_groups().iter().any(|g| {
            let g = g.lock();
            g.pgid == pgid && g.sid == my_sid && !matches!(g.state, TgState::Dead | TgState::Zombie(_))
        });
        if !exists {
            return Err(Errno::EPERM);
        }
    }
    target.lock().pgid = pgid;
    Ok(0)
}

pub fn setsid(t: &mut Task, _: &Args) -> SysResult {
    let tgid = t.tgid();
    // Fails if the caller's pid already names a process group.
    let leader = t.kernel.all_groups().iter().any(|g| {
        let g = g.lock();
        g.pgid == tgid && !matches!(g.state, TgState::Dead)
    });
    if leader {
        return Err(Errno::EPERM);
    }
    let mut g = t.tg().lock();
    g.sid = tgid;
    g.pgid = tgid;
    Ok(tgid as u64)
}

pub fn set_tid_address(t: &mut Task, a: &Args) -> SysResult {
    t.clear_child_tid = a[0];
    Ok(t.tid() as u64)
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
    if a[0] != 0 && a[0] as i32 != t.tid() {
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
    if let Some(r) = super::caps::prctl(t, a) {
        return r;
    }
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
            t.publish_proc_info();
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
            t.handle.pdeath_signal.store(a[1] as u32, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let sig = t.handle.pdeath_signal.load(std::sync::atomic::Ordering::Relaxed) as i32;
            t.write_obj(a[1], &sig)?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if a[1] != 1 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            t.no_new_privs = true;
            t.publish_proc_info();
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(t.no_new_privs as u64),
        PR_SET_CHILD_SUBREAPER => {
            t.tg().lock().child_subreaper = a[1] != 0;
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let v = t.tg().lock().child_subreaper as i32;
            t.write_obj(a[1], &v)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE if a[1] <= 1 => Ok(0),
        PR_GET_KEEPCAPS => Ok(t.creds.caps.keep_caps as u64),
        PR_SET_KEEPCAPS if a[1] <= 1 => {
            t.creds.caps.keep_caps = a[1] == 1;
            Ok(0)
        }
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

/// getrusage(2): CPU time is the guest's, measured on the host process that runs its code
/// (all of it reported as user time; RUSAGE_THREAD reports the whole process's); the other
/// fields read zero.
pub fn getrusage(t: &mut Task, a: &Args) -> SysResult {
    const RUSAGE_SELF: i32 = 0;
    const RUSAGE_CHILDREN: i32 = -1;
    const RUSAGE_THREAD: i32 = 1;
    let ns = match a[0] as i32 {
        RUSAGE_SELF => t.tg().cpu_time_ns(),
        RUSAGE_CHILDREN => t.tg().children_cpu_ns.load(std::sync::atomic::Ordering::Relaxed),
        // Threads of a process share one host process: a thread's own share is not known.
        RUSAGE_THREAD => t.tg().cpu_time_ns(),
        _ => return Err(Errno::EINVAL),
    };
    let ru = Rusage { ru_utime: Timeval { tv_sec: (ns / 1_000_000_000) as i64, tv_usec: ((ns % 1_000_000_000) / 1000) as i64 }, ..Default::default() };
    t.write_obj(a[1], &ru)?;
    Ok(0)
}

/// times(2): the guest's CPU time in clock ticks (USER_HZ = 100), and ticks since boot.
pub fn times(t: &mut Task, a: &Args) -> SysResult {
    let ticks = |ns: u64| (ns / 10_000_000) as i64;
    if a[0] != 0 {
        let tms = Tms {
            tms_utime: ticks(t.tg().cpu_time_ns()),
            tms_stime: 0,
            tms_cutime: ticks(t.tg().children_cpu_ns.load(std::sync::atomic::Ordering::Relaxed)),
            tms_cstime: 0,
        };
        t.write_obj(a[0], &tms)?;
    }
    Ok((t.kernel.boot_time.elapsed().as_millis() / 10) as u64)
}

pub fn sched_yield(_t: &mut Task, _: &Args) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

/// The number of CPUs the sandbox shows: the host CPUs the sentry may use, read once at
/// boot, before task threads pin themselves to single CPUs.
pub fn online_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

pub fn sched_getaffinity(t: &mut Task, a: &Args) -> SysResult {
    if a[0] != 0 && t.kernel.task(a[0] as i32).is_none() {
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

/// wait4(2).
pub fn wait4(t: &mut Task, a: &Args) -> SysResult {
    use rvisor_syscalls::flags::wait::*;
    let (pid, status_addr, options, rusage) = (a[0] as i32, a[1], a[2] as u32, a[3]);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WCLONE | WALL) != 0 {
        return Err(Errno::EINVAL);
    }
    let target = match pid {
        -1 => WaitTarget::Any,
        0 => WaitTarget::Pgid(t.tg().pgid()),
        p if p < -1 => WaitTarget::Pgid(p.checked_neg().ok_or(Errno::ESRCH)?),
        p => WaitTarget::Pid(p),
    };
    let mut opts = options | WEXITED;
    if options & WUNTRACED != 0 {
        opts |= WSTOPPED;
    }
    match do_wait(t, target, opts)? {
        None => Ok(0),
        Some(r) => {
            if status_addr != 0 {
                t.write_obj(status_addr, &r.status)?;
            }
            if rusage != 0 {
                t.write_obj(rusage, &Rusage::default())?;
            }
            Ok(r.pid as u64)
        }
    }
}

/// waitid(2).
pub fn waitid(t: &mut Task, a: &Args) -> SysResult {
    use rvisor_syscalls::flags::wait::*;
    const P_ALL: u64 = 0;
    const P_PID: u64 = 1;
    const P_PGID: u64 = 2;
    let (idtype, id, infop, options, rusage) = (a[0], a[1] as i32, a[2], a[3] as u32, a[4]);
    if options & !(WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | WNOTHREAD | WCLONE | WALL) != 0
        || options & (WEXITED | WSTOPPED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let target = match idtype {
        P_ALL => WaitTarget::Any,
        P_PID if id > 0 => WaitTarget::Pid(id),
        P_PGID if id > 0 => WaitTarget::Pgid(id),
        P_PGID if id == 0 => WaitTarget::Pgid(t.tg().pgid()),
        _ => return Err(Errno::EINVAL),
    };
    let found = do_wait(t, target, options)?;
    if infop != 0 {
        let mut info = [0u8; 128];
        if let Some(r) = found {
            let si = SignalInfo {
                signo: rvisor_syscalls::flags::signal::SIGCHLD,
                code: r.code,
                pid: r.pid,
                uid: r.uid,
                status: r.si_status,
                ..Default::default()
            };
            info = si.to_bytes();
        }
        t.mm.copy_out(infop, &info)?;
    }
    if rusage != 0 {
        t.write_obj(rusage, &Rusage::default())?;
    }
    Ok(0)
}

fn do_clone_syscall(t: &mut Task, args: CloneArgs) -> SysResult {
    Ok(crate::kernel::clone::do_clone(t, args)? as u64)
}

/// clone(2): x86_64 argument order is (flags, stack, parent_tid, child_tid, tls).
pub fn clone(t: &mut Task, a: &Args) -> SysResult {
    use rvisor_syscalls::flags::clone::CSIGNAL;
    let args = CloneArgs {
        flags: a[0] & !CSIGNAL,
        stack: a[1],
        parent_tid: a[2],
        child_tid: a[3],
        tls: a[4],
        exit_signal: (a[0] & CSIGNAL) as u32,
    };
    do_clone_syscall(t, args)
}

pub fn fork(t: &mut Task, _: &Args) -> SysResult {
    do_clone_syscall(t, CloneArgs { exit_signal: rvisor_syscalls::flags::signal::SIGCHLD, ..Default::default() })
}

pub fn vfork(t: &mut Task, _: &Args) -> SysResult {
    use rvisor_syscalls::flags::clone::{CLONE_VFORK, CLONE_VM};
    let args = CloneArgs { flags: CLONE_VM | CLONE_VFORK, exit_signal: rvisor_syscalls::flags::signal::SIGCHLD, ..Default::default() };
    do_clone_syscall(t, args)
}

/// clone3(2): `struct clone_args` of 64 bytes or more (unknown trailing fields must be 0).
pub fn clone3(t: &mut Task, a: &Args) -> SysResult {
    use rvisor_syscalls::flags::clone::CSIGNAL;
    const CLONE_ARGS_SIZE_VER0: usize = 64;
    const CLONE_ARGS_SIZE_VER2: usize = 88;
    let size = a[1] as usize;
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; size];
    t.mm.copy_in(a[0], &mut raw)?;
    if raw.len() > CLONE_ARGS_SIZE_VER2 && raw[CLONE_ARGS_SIZE_VER2..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    raw.resize(CLONE_ARGS_SIZE_VER2, 0);
    let field = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let (flags, child_tid, parent_tid, exit_signal) = (field(0), field(2), field(3), field(4));
    let (stack, stack_size, tls, set_tid_size, cgroup) = (field(5), field(6), field(7), field(9), field(10));
    if exit_signal & !CSIGNAL != 0 || flags & CSIGNAL != 0 || set_tid_size != 0 || cgroup != 0 {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    let sp = if stack != 0 { stack.checked_add(stack_size).ok_or(Errno::EINVAL)? } else { 0 };
    do_clone_syscall(t, CloneArgs { flags, stack: sp, parent_tid, child_tid, tls, exit_signal: exit_signal as u32 })
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
    t.become_sole_thread()?;
    crate::kernel::caps::on_exec(&mut t.creds.caps, t.creds.uid, t.creds.euid);
    t.install_image(image);
    Ok(0)
}

/// execve(2): other threads of the process exit; CLOEXEC fds close; handlers reset.
pub fn execve(t: &mut Task, a: &Args) -> SysResult {
    do_execveat(t, rvisor_syscalls::flags::at::AT_FDCWD, a[0], a[1], a[2], 0)
}

pub fn execveat(t: &mut Task, a: &Args) -> SysResult {
    do_execveat(t, a[0] as i32, a[1], a[2], a[3], a[4] as u32)
}
