//! System information: uname, sysinfo, getrandom.

use rvisor_syscalls::flags::random::*;
use rvisor_syscalls::types::{Sysinfo, Utsname};
use rvisor_syscalls::{Errno, Pod};

use super::{Args, SysResult};
use crate::kernel::Task;

fn fill(field: &mut [u8; 65], s: &str) {
    let n = s.len().min(64);
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

pub fn uname(t: &mut Task, a: &Args) -> SysResult {
    let mut u = Utsname::zeroed();
    {
        let uts = t.kernel.uts.lock().unwrap_or_else(|p| p.into_inner());
        fill(&mut u.sysname, &uts.sysname);
        fill(&mut u.nodename, &uts.nodename);
        fill(&mut u.release, &uts.release);
        fill(&mut u.version, &uts.version);
        fill(&mut u.machine, &uts.machine);
        fill(&mut u.domainname, &uts.domainname);
    }
    t.write_obj(a[0], &u)?;
    Ok(0)
}

/// sysinfo(2): memory figures are the host's (the sandbox has no memory limit of its own
/// yet), uptime and process count are the sandbox's.
pub fn sysinfo(t: &mut Task, a: &Args) -> SysResult {
    // SAFETY: `host` is a plain C struct that sysinfo fills on success.
    let mut host: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::sysinfo(&mut host) };
    let info = Sysinfo {
        uptime: t.kernel.boot_time.elapsed().as_secs() as i64,
        loads: [0; 3],
        totalram: host.totalram,
        freeram: host.freeram,
        sharedram: host.sharedram,
        bufferram: host.bufferram,
        totalswap: host.totalswap,
        freeswap: host.freeswap,
        procs: 1,
        mem_unit: host.mem_unit,
        ..Default::default()
    };
    t.write_obj(a[0], &info)?;
    Ok(0)
}

pub fn getrandom(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, flags) = (a[0], a[1] as usize, a[2] as u32);
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0 || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE) {
        return Err(Errno::EINVAL);
    }
    let len = len.min(i32::MAX as usize).min(1 << 20);
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        // SAFETY: the destination is the unfilled tail of `buf`, of the length passed.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), len - done, 0) };
        if n <= 0 {
            return Err(Errno::EAGAIN);
        }
        done += n as usize;
    }
    t.mm.copy_out(addr, &buf)?;
    Ok(len as u64)
}
