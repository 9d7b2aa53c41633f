//! Capabilities: capget(2), capset(2) and the capability operations of prctl(2)
//! (PR_CAPBSET_READ/DROP, PR_CAP_AMBIENT). The rules live in `kernel::caps`; this file
//! reads and checks the guest's arguments.

use rvisor_syscalls::flags::capability::{
    CAP_LAST_CAP, CAP_SETPCAP, LINUX_CAPABILITY_VERSION_1, LINUX_CAPABILITY_VERSION_2,
    LINUX_CAPABILITY_VERSION_3, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_IS_SET, PR_CAP_AMBIENT_LOWER, PR_CAP_AMBIENT_RAISE,
};
use rvisor_syscalls::flags::prctl::PR_CAPBSET_READ;
use rvisor_syscalls::types::{CapUserData, CapUserHeader};
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::caps::CapSets;
use crate::kernel::Task;

/// How many 32-bit data structs a header's version asks for; an unknown version is
/// answered with the preferred one written back and EINVAL (Linux's `cap_validate_magic`).
fn data_count(t: &Task, header: u64) -> Result<(CapUserHeader, usize), Errno> {
    let mut h: CapUserHeader = t.read_obj(header)?;
    let n = match h.version {
        LINUX_CAPABILITY_VERSION_1 => 1,
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => 2,
        _ => {
            h.version = LINUX_CAPABILITY_VERSION_3;
            t.write_obj(header, &h)?;
            return Err(Errno::EINVAL);
        }
    };
    Ok((h, n))
}

/// The capability sets of the task `pid` names (0: the caller).
fn sets_of(t: &Task, pid: i32) -> Result<CapSets, Errno> {
    if pid == 0 || pid == t.tid() {
        return Ok(t.creds.caps);
    }
    let h = t.kernel.task(pid).ok_or(Errno::ESRCH)?;
    Ok(h.proc_info().creds.caps)
}

/// capget(2).
pub fn capget(t: &mut Task, a: &Args) -> SysResult {
    let (h, n) = match data_count(t, a[0]) {
        // A version probe: a null data pointer with an unknown version succeeds.
        Err(Errno::EINVAL) if a[1] == 0 => return Ok(0),
        r => r?,
    };
    if a[1] == 0 {
        return Ok(0);
    }
    if h.pid < 0 {
        return Err(Errno::EINVAL);
    }
    let c = sets_of(t, h.pid)?;
    let mut data = [CapUserData::default(); 2];
    for (i, d) in data.iter_mut().enumerate().take(n) {
        let shift = 32 * i;
        *d = CapUserData {
            effective: (c.effective >> shift) as u32,
            permitted: (c.permitted >> shift) as u32,
            inheritable: (c.inheritable >> shift) as u32,
        };
    }
    if n == 1 {
        t.write_obj(a[1], &data[0])?;
    } else {
        t.write_obj(a[1], &data)?;
    }
    Ok(0)
}

/// capset(2): only the caller's own sets may change.
pub fn capset(t: &mut Task, a: &Args) -> SysResult {
    let (h, n) = data_count(t, a[0])?;
    if h.pid != 0 && h.pid != t.tid() {
        return Err(Errno::EPERM);
    }
    let data: [CapUserData; 2] = if n == 1 {
        [t.read_obj(a[1])?, CapUserData::default()]
    } else {
        t.read_obj(a[1])?
    };
    let valid = rvisor_syscalls::flags::capability::CAP_FULL_SET;
    let join = |f: fn(&CapUserData) -> u32| {
        (u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32) & valid
    };
    let new = crate::kernel::caps::capset(
        &t.creds.caps,
        join(|d| d.effective),
        join(|d| d.permitted),
        join(|d| d.inheritable),
    )?;
    t.creds.caps = new;
    t.publish_proc_info();
    Ok(0)
}

/// The capability number in a prctl argument (EINVAL beyond the last one).
fn cap_arg(v: u64) -> Result<u32, Errno> {
    u32::try_from(v)
        .ok()
        .filter(|&c| c <= CAP_LAST_CAP)
        .ok_or(Errno::EINVAL)
}

/// The capability options of prctl(2); `None` for any other option.
pub fn prctl(t: &mut Task, a: &Args) -> Option<SysResult> {
    let r = match a[0] as u32 {
        PR_CAPBSET_READ => cap_arg(a[1]).map(|c| (t.creds.caps.bounding >> c) & 1),
        PR_CAPBSET_DROP => capbset_drop(t, a[1]),
        PR_CAP_AMBIENT => ambient(t, a),
        _ => return None,
    };
    Some(r)
}

fn capbset_drop(t: &mut Task, cap: u64) -> SysResult {
    if !t.creds.capable(CAP_SETPCAP) {
        return Err(Errno::EPERM);
    }
    let cap = cap_arg(cap)?;
    t.creds.caps.bounding &= !(1u64 << cap);
    t.publish_proc_info();
    Ok(0)
}

fn ambient(t: &mut Task, a: &Args) -> SysResult {
    if a[1] == PR_CAP_AMBIENT_CLEAR_ALL {
        if a[2] != 0 || a[3] != 0 || a[4] != 0 {
            return Err(Errno::EINVAL);
        }
        t.creds.caps.ambient = 0;
        t.publish_proc_info();
        return Ok(0);
    }
    if a[3] != 0 || a[4] != 0 {
        return Err(Errno::EINVAL);
    }
    let bit = 1u64 << cap_arg(a[2])?;
    let c = &mut t.creds.caps;
    match a[1] {
        PR_CAP_AMBIENT_IS_SET => return Ok(u64::from(c.ambient & bit != 0)),
        PR_CAP_AMBIENT_RAISE => {
            if c.permitted & bit == 0 || c.inheritable & bit == 0 {
                return Err(Errno::EPERM);
            }
            c.ambient |= bit;
        }
        PR_CAP_AMBIENT_LOWER => c.ambient &= !bit,
        _ => return Err(Errno::EINVAL),
    }
    t.publish_proc_info();
    Ok(0)
}
