//! The files of /proc/PID and /proc/PID/task/TID: stat, status, statm, cmdline, environ,
//! comm, mounts, mountinfo, cgroup, limits.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use rvisor_syscalls::flags::capability::CAP_SYS_RESOURCE;
use rvisor_syscalls::flags::oom::OOM_SCORE_ADJ_MIN;
use rvisor_syscalls::flags::rlimit::*;
use rvisor_syscalls::flags::signal::SIG_IGN;
use rvisor_syscalls::types::Rlimit;
use rvisor_syscalls::Errno;

use super::{maps, resolve, Target, TaskFile};
use crate::kernel::task::TaskProcInfo;
use crate::kernel::thread_group::TgState;
use crate::kernel::{Kernel, TaskHandle, ThreadGroup};

/// Clock ticks per second of the times /proc shows (USER_HZ).
pub const CLK_TCK: u64 = 100;
/// The most of a process's argument or environment area cmdline/environ return.
const MAX_ARG_AREA: u64 = 1 << 20;
const PAGE_KB: u64 = 4;

/// Generates `f` for `target`.
pub fn generate(k: &Arc<Kernel>, target: Target, f: TaskFile) -> Result<Vec<u8>, Errno> {
    let (tg, h) = resolve(k, target).ok_or(Errno::ENOENT)?;
    let info = h.as_ref().map(|h| h.proc_info()).unwrap_or_else(|| TaskProcInfo {
        // A zombie: only its name is left.
        comm: tg.exited_comm.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        ..TaskProcInfo::default()
    });
    Ok(match f {
        TaskFile::Stat => stat(k, &tg, h.as_ref(), &info, target).into_bytes(),
        TaskFile::Status => status(k, &tg, h.as_ref(), &info, target).into_bytes(),
        TaskFile::Statm => statm(&info).into_bytes(),
        TaskFile::Cmdline => arg_area(&info, info.args.arg_start, info.args.arg_end),
        TaskFile::Environ => arg_area(&info, info.args.env_start, info.args.env_end),
        TaskFile::Comm => {
            let mut c = info.comm.clone();
            c.push(b'\n');
            c
        }
        TaskFile::Maps => maps::maps(&info),
        TaskFile::Smaps => maps::smaps(&info),
        TaskFile::Mounts => with_root(k, &info, |root| k.vfs.mounts().render_mounts(root)),
        TaskFile::MountInfo => with_root(k, &info, |root| k.vfs.mounts().render_mountinfo(root)),
        TaskFile::Cgroup => b"0::/\n".to_vec(),
        TaskFile::Limits => limits(&info).into_bytes(),
        TaskFile::OomScoreAdj => format!("{}\n", tg.oom_score_adj.load(Ordering::Relaxed)).into_bytes(),
        TaskFile::OomScore => format!("{}\n", oom_score(k, &tg, &info)).into_bytes(),
        TaskFile::LoginUid => b"4294967295".to_vec(),
    })
}

fn with_root(k: &Kernel, info: &TaskProcInfo, f: impl FnOnce(&Arc<crate::vfs::Dentry>) -> Vec<u8>) -> Vec<u8> {
    let root = match &info.fs {
        Some(fs) => fs.lock().unwrap_or_else(|p| p.into_inner()).root.clone(),
        None => k.vfs.root().clone(),
    };
    f(&root)
}

/// The bytes of `[start, end)` of the task's memory (argv or envp strings).
fn arg_area(info: &TaskProcInfo, start: u64, end: u64) -> Vec<u8> {
    let Some(mm) = &info.mm else { return Vec::new() };
    if end <= start {
        return Vec::new();
    }
    let len = (end - start).min(MAX_ARG_AREA) as usize;
    let mut buf = vec![0u8; len];
    match mm.copy_in(start, &mut buf) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// The one-letter state of ps and /proc/PID/stat, and its status name.
fn state(k: &Kernel, tg: &ThreadGroup) -> (char, &'static str) {
    let g = tg.lock();
    match g.state {
        TgState::Zombie(_) | TgState::Dead => ('Z', "zombie"),
        _ if g.stopped => ('T', "stopped"),
        _ => {
            // The only task known to be running is the one reading this file; the others
            // are in guest code or blocked, which the sentry does not tell apart cheaply.
            let me = crate::kernel::task::current_task();
            let _ = k;
            if me.is_some_and(|m| m.tg.tgid == tg.tgid) {
                ('R', "running")
            } else {
                ('S', "sleeping")
            }
        }
    }
}

/// Signal masks: pending (thread), shared pending, blocked, ignored, caught.
struct SigMasks {
    pending: u64,
    shared: u64,
    blocked: u64,
    ignored: u64,
    caught: u64,
}

fn sig_bit(sig: u32) -> u64 {
    1u64.checked_shl(sig.wrapping_sub(1)).unwrap_or(0)
}

fn sig_masks(tg: &ThreadGroup, h: Option<&Arc<TaskHandle>>) -> SigMasks {
    let handlers = *tg.handlers().lock().unwrap_or_else(|p| p.into_inner());
    let (mut ignored, mut caught) = (0u64, 0u64);
    for (i, a) in handlers.iter().enumerate() {
        let bit = 1u64 << i;
        match a.handler {
            0 => {}
            SIG_IGN => ignored |= bit,
            _ => caught |= bit,
        }
    }
    let shared = tg.lock().shared_pending.iter().fold(0, |m, s| m | sig_bit(s.signo));
    let (pending, blocked) = match h {
        Some(h) => {
            let s = h.signals();
            (s.pending.iter().fold(0, |m, si| m | sig_bit(si.signo)), s.mask.0)
        }
        None => (0, 0),
    };
    SigMasks {
        pending,
        shared,
        blocked,
        ignored,
        caught,
    }
}

/// Memory figures in pages: (size, resident, data+stack, stack, exe).
struct MemFigures {
    vm_pages: u64,
    rss_pages: u64,
    data_pages: u64,
    stack_pages: u64,
    exe_pages: u64,
    start_code: u64,
    end_code: u64,
    start_stack: u64,
    start_brk: u64,
}

fn mem_figures(info: &TaskProcInfo) -> MemFigures {
    let mut f = MemFigures {
        vm_pages: 0,
        rss_pages: 0,
        data_pages: 0,
        stack_pages: 0,
        exe_pages: 0,
        start_code: 0,
        end_code: 0,
        start_stack: 0,
        start_brk: 0,
    };
    let Some(mm) = &info.mm else { return f };
    for v in mm.vmas_snapshot() {
        let pages = (v.end - v.start) / 4096;
        f.vm_pages += pages;
        if v.name.as_deref() == Some("[stack]") {
            f.stack_pages += pages;
            f.start_stack = info.args.arg_start;
        } else if v.perms.write && !v.shared {
            f.data_pages += pages;
        }
        if v.perms.exec && v.file_offset.is_some() && f.end_code == 0 {
            f.exe_pages += pages;
            f.start_code = v.start;
            f.end_code = v.end;
        }
    }
    f.rss_pages = mm.realised_bytes() / 4096;
    f.start_brk = mm.brk_base();
    f
}

fn ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / CLK_TCK)
}

/// /proc/PID/stat (proc(5)'s 52 fields).
fn stat(k: &Kernel, tg: &ThreadGroup, h: Option<&Arc<TaskHandle>>, info: &TaskProcInfo, target: Target) -> String {
    let pid = match target {
        Target::Group(g) => g,
        Target::Thread { tid, .. } => tid,
    };
    let (st, _) = state(k, tg);
    let ppid = tg.parent().map_or(0, |p| p.tgid);
    let (pgid, sid, threads, exit_signal, exit_code) = {
        let g = tg.lock();
        let code = match g.state {
            TgState::Zombie(s) => s.wait_status(),
            _ => 0,
        };
        (g.pgid, g.sid, g.threads.len(), g.exit_signal, code)
    };
    let utime = ticks(tg.cpu_time_ns());
    let cutime = ticks(tg.children_cpu_ns.load(std::sync::atomic::Ordering::Relaxed));
    let start = h.map_or(0, |h| ticks(h.start_time.saturating_duration_since(k.boot_time).as_nanos() as u64));
    let m = mem_figures(info);
    let rsslim = info
        .rlimits
        .as_ref()
        .map_or(RLIM_INFINITY, |r| r.lock().unwrap_or_else(|p| p.into_inner())[RLIMIT_RSS as usize].rlim_cur);
    let s = sig_masks(tg, h);
    let a = info.args;
    let comm = String::from_utf8_lossy(&info.comm);
    format!(
        "{pid} ({comm}) {st} {ppid} {pgid} {sid} 0 -1 4194304 0 0 0 0 {utime} 0 {cutime} 0 20 0 {threads} 0 {start} {vsize} {rss} {rsslim} \
         {sc} {ec} {ss} 0 0 {pend} {blk} {ign} {cgt} 0 0 0 {exit_signal} 0 0 0 0 0 0 0 0 {sb} {args} {arge} {envs} {enve} {exit_code}\n",
        vsize = m.vm_pages * 4096,
        rss = m.rss_pages,
        sc = m.start_code,
        ec = m.end_code,
        ss = m.start_stack,
        pend = s.pending | s.shared,
        blk = s.blocked,
        ign = s.ignored,
        cgt = s.caught,
        sb = m.start_brk,
        args = a.arg_start,
        arge = a.arg_end,
        envs = a.env_start,
        enve = a.env_end,
    )
}

/// /proc/PID/statm: size resident shared text lib data dt, in pages.
fn statm(info: &TaskProcInfo) -> String {
    let m = mem_figures(info);
    format!("{} {} 0 {} 0 {} 0\n", m.vm_pages, m.rss_pages, m.exe_pages, m.data_pages + m.stack_pages)
}

fn kb(pages: u64) -> String {
    format!("{:>8} kB", pages * PAGE_KB)
}

/// /proc/PID/status.
fn status(k: &Kernel, tg: &ThreadGroup, h: Option<&Arc<TaskHandle>>, info: &TaskProcInfo, target: Target) -> String {
    let pid = match target {
        Target::Group(g) => g,
        Target::Thread { tid, .. } => tid,
    };
    let (st, st_name) = state(k, tg);
    let ppid = tg.parent().map_or(0, |p| p.tgid);
    let (pgid, sid, threads) = {
        let g = tg.lock();
        (g.pgid, g.sid, g.threads.len())
    };
    let c = &info.creds;
    let umask = info.fs.as_ref().map_or(0o022, |fs| fs.lock().unwrap_or_else(|p| p.into_inner()).umask);
    let fd_size = info
        .fds
        .as_ref()
        .map_or(0, |f| f.lock().unwrap_or_else(|p| p.into_inner()).fds().last().map_or(0, |l| l + 1));
    let fd_size = (fd_size.max(64) as u64).next_power_of_two();
    let m = mem_figures(info);
    let s = sig_masks(tg, h);
    let ncpus = crate::syscalls::online_cpus();
    let nproc = info
        .rlimits
        .as_ref()
        .map_or(0, |r| r.lock().unwrap_or_else(|p| p.into_inner())[RLIMIT_SIGPENDING as usize].rlim_cur);
    let cpus_mask = if ncpus >= 64 { u64::MAX } else { (1u64 << ncpus) - 1 };
    let cpus_list = if ncpus <= 1 { "0".to_string() } else { format!("0-{}", ncpus - 1) };
    let groups: Vec<String> = c.groups.iter().map(|g| g.to_string()).collect();
    let mut o = String::new();
    let _ = writeln!(o, "Name:\t{}", String::from_utf8_lossy(&info.comm));
    let _ = writeln!(o, "Umask:\t{umask:04o}");
    let _ = writeln!(o, "State:\t{st} ({st_name})");
    let _ = writeln!(o, "Tgid:\t{}", tg.tgid);
    let _ = writeln!(o, "Ngid:\t0");
    let _ = writeln!(o, "Pid:\t{pid}");
    let _ = writeln!(o, "PPid:\t{ppid}");
    let _ = writeln!(o, "TracerPid:\t0");
    let _ = writeln!(o, "Uid:\t{}\t{}\t{}\t{}", c.uid, c.euid, c.suid, c.fsuid);
    let _ = writeln!(o, "Gid:\t{}\t{}\t{}\t{}", c.gid, c.egid, c.sgid, c.fsgid);
    let _ = writeln!(o, "FDSize:\t{fd_size}");
    let _ = writeln!(o, "Groups:\t{} ", groups.join(" "));
    let _ = writeln!(o, "NStgid:\t{}", tg.tgid);
    let _ = writeln!(o, "NSpid:\t{pid}");
    let _ = writeln!(o, "NSpgid:\t{pgid}");
    let _ = writeln!(o, "NSsid:\t{sid}");
    let _ = writeln!(o, "Kthread:\t0");
    for (key, pages) in [
        ("VmPeak", m.vm_pages),
        ("VmSize", m.vm_pages),
        ("VmLck", 0),
        ("VmPin", 0),
        ("VmHWM", m.rss_pages),
        ("VmRSS", m.rss_pages),
        ("RssAnon", m.rss_pages),
        ("RssFile", 0),
        ("RssShmem", 0),
        ("VmData", m.data_pages),
        ("VmStk", m.stack_pages),
        ("VmExe", m.exe_pages),
        ("VmLib", 0),
        ("VmPTE", 0),
        ("VmSwap", 0),
        ("HugetlbPages", 0),
    ] {
        let _ = writeln!(o, "{key}:\t{}", kb(pages));
    }
    let _ = writeln!(o, "CoreDumping:\t0");
    let _ = writeln!(o, "THP_enabled:\t1");
    let _ = writeln!(o, "untag_mask:\t0xffffffffffffffff");
    let _ = writeln!(o, "Threads:\t{threads}");
    let _ = writeln!(o, "SigQ:\t0/{nproc}");
    let _ = writeln!(o, "SigPnd:\t{:016x}", s.pending);
    let _ = writeln!(o, "ShdPnd:\t{:016x}", s.shared);
    let _ = writeln!(o, "SigBlk:\t{:016x}", s.blocked);
    let _ = writeln!(o, "SigIgn:\t{:016x}", s.ignored);
    let _ = writeln!(o, "SigCgt:\t{:016x}", s.caught);
    let _ = writeln!(o, "CapInh:\t{:016x}", c.caps.inheritable);
    let _ = writeln!(o, "CapPrm:\t{:016x}", c.caps.permitted);
    let _ = writeln!(o, "CapEff:\t{:016x}", c.caps.effective);
    let _ = writeln!(o, "CapBnd:\t{:016x}", c.caps.bounding);
    let _ = writeln!(o, "CapAmb:\t{:016x}", c.caps.ambient);
    let _ = writeln!(o, "NoNewPrivs:\t{}", u8::from(info.no_new_privs));
    let _ = writeln!(o, "Seccomp:\t0");
    let _ = writeln!(o, "Seccomp_filters:\t0");
    let _ = writeln!(o, "Speculation_Store_Bypass:\tthread vulnerable");
    let _ = writeln!(o, "SpeculationIndirectBranch:\tconditional enabled");
    let _ = writeln!(o, "Cpus_allowed:\t{cpus_mask:x}");
    let _ = writeln!(o, "Cpus_allowed_list:\t{cpus_list}");
    let _ = writeln!(o, "Mems_allowed:\t{}00000001", "00000000,".repeat(31));
    let _ = writeln!(o, "Mems_allowed_list:\t0");
    let _ = writeln!(o, "voluntary_ctxt_switches:\t0");
    let _ = writeln!(o, "nonvoluntary_ctxt_switches:\t0");
    o
}

/// /proc/PID/limits.
fn limits(info: &TaskProcInfo) -> String {
    let r: [Rlimit; RLIM_NLIMITS] = match &info.rlimits {
        Some(r) => *r.lock().unwrap_or_else(|p| p.into_inner()),
        None => crate::kernel::task::default_rlimits(),
    };
    const ROWS: [(&str, &str); RLIM_NLIMITS] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let show = |v: u64| if v == RLIM_INFINITY { "unlimited".to_string() } else { v.to_string() };
    let mut o = format!("{:<25} {:<20} {:<20} {:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    for (i, (name, unit)) in ROWS.iter().enumerate() {
        let _ = writeln!(o, "{:<25} {:<20} {:<20} {:<10}", name, show(r[i].rlim_cur), show(r[i].rlim_max), unit);
    }
    o
}

/// /proc/PID/oom_score: Linux's badness on its 0..=2000 scale — 1000, plus the share of
/// memory the process holds (per mille of the sandbox's limit, or of the host's memory),
/// plus oom_score_adj; 0 for a process the OOM killer never picks (adj -1000).
fn oom_score(k: &Kernel, tg: &ThreadGroup, info: &TaskProcInfo) -> i64 {
    let adj = tg.oom_score_adj.load(Ordering::Relaxed);
    if adj == OOM_SCORE_ADJ_MIN {
        return 0;
    }
    let limit = k.control.memory_limit.load(Ordering::Relaxed);
    let total = if limit != 0 { limit } else { super::system::host_memory()[0] }.max(1);
    let rss = info.mm.as_ref().map_or(0, |mm| mm.realised_bytes());
    let share = (u128::from(rss) * 1000 / u128::from(total)).min(1000) as i64;
    (1000 + share + i64::from(adj)).clamp(0, 2000)
}

/// /proc/PID/oom_score_adj opened for writing: a write sets the process's value (a decimal
/// number, surrounding whitespace allowed), reads show the current one.
pub struct OomScoreAdjFile {
    pub kernel: Weak<Kernel>,
    pub target: Target,
    pub stat: rvisor_syscalls::types::Stat,
}

impl OomScoreAdjFile {
    fn group(&self) -> Result<Arc<ThreadGroup>, Errno> {
        let k = self.kernel.upgrade().ok_or(Errno::ESRCH)?;
        resolve(&k, self.target).map(|(tg, _)| tg).ok_or(Errno::ESRCH)
    }
}

/// Parses what a write to oom_score_adj holds: an optionally signed decimal integer.
fn parse_adj(buf: &[u8]) -> Result<i32, Errno> {
    let text = std::str::from_utf8(buf).map_err(|_| Errno::EINVAL)?.trim();
    if text.is_empty() || text.len() > 12 {
        return Err(Errno::EINVAL);
    }
    text.parse::<i32>().map_err(|_| Errno::EINVAL)
}

impl crate::vfs::file::FileImpl for OomScoreAdjFile {
    fn read(&self, buf: &mut [u8], offset: u64, _flags: u32) -> Result<usize, Errno> {
        let data = format!("{}\n", self.group()?.oom_score_adj.load(Ordering::Relaxed)).into_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write(&self, buf: &[u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        let adj = parse_adj(buf)?;
        let tg = self.group()?;
        if tg.exit_status().is_some() {
            return Err(Errno::ESRCH);
        }
        let privileged = crate::kernel::task::current_task().is_some_and(|h| h.proc_info().creds.capable(CAP_SYS_RESOURCE));
        tg.set_oom_score_adj(adj, privileged)?;
        Ok(buf.len())
    }

    fn stat(&self) -> Result<rvisor_syscalls::types::Stat, Errno> {
        Ok(self.stat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_score_adj_writes_parse_signed_decimals_only() {
        assert_eq!(parse_adj(b"500\n"), Ok(500));
        assert_eq!(parse_adj(b" -1000 "), Ok(-1000));
        assert_eq!(parse_adj(b"+7"), Ok(7));
        assert_eq!(parse_adj(b""), Err(Errno::EINVAL));
        assert_eq!(parse_adj(b"12x"), Err(Errno::EINVAL));
        assert_eq!(parse_adj(b"99999999999999"), Err(Errno::EINVAL));
    }

    #[test]
    fn oom_score_adj_range_and_floor_follow_linux() {
        let tg = ThreadGroup::new(5, Weak::new(), 5, 5, 0, Arc::new(std::sync::Mutex::new([Default::default(); 64])));
        assert_eq!(tg.set_oom_score_adj(1001, true), Err(Errno::EINVAL));
        assert_eq!(tg.set_oom_score_adj(-1001, true), Err(Errno::EINVAL));
        tg.set_oom_score_adj(100, true).unwrap();
        tg.set_oom_score_adj(300, false).unwrap();
        // Back down to what a privileged writer set is allowed; below it is not.
        tg.set_oom_score_adj(100, false).unwrap();
        assert_eq!(tg.set_oom_score_adj(99, false), Err(Errno::EACCES));
        tg.set_oom_score_adj(-500, true).unwrap();
        assert_eq!(tg.oom_score_adj.load(Ordering::Relaxed), -500);
    }
}
