//! The set*id calls beyond setuid/setgid: setreuid, setregid, setresuid, setresgid,
//! setfsuid and setfsgid.
//!
//! A task with CAP_SETUID (CAP_SETGID for the group ids) may set any id; others may only
//! move among the ids they already hold, as Linux allows. The filesystem id follows the
//! effective one on every change but setfs*id's own. Changes of the user ids move the
//! capability sets as capabilities(7) says (`kernel::caps`).

use rvisor_syscalls::Errno;

use rvisor_syscalls::flags::capability::{CAP_SETGID, CAP_SETUID};

use super::{Args, SysResult};
use crate::kernel::task::Creds;
use crate::kernel::Task;

/// The id argument, `None` for -1 ("leave unchanged").
fn id_arg(v: u64) -> Option<u32> {
    let id = v as u32;
    (id != u32::MAX).then_some(id)
}

/// Real, effective and saved ids of one kind (user or group) plus the filesystem id.
struct Ids {
    real: u32,
    effective: u32,
    saved: u32,
    fs: u32,
}

fn user_ids(c: &Creds) -> Ids {
    Ids {
        real: c.uid,
        effective: c.euid,
        saved: c.suid,
        fs: c.fsuid,
    }
}

fn group_ids(c: &Creds) -> Ids {
    Ids {
        real: c.gid,
        effective: c.egid,
        saved: c.sgid,
        fs: c.fsgid,
    }
}

fn set_user_ids(c: &mut Creds, ids: Ids) {
    let old = (c.uid, c.euid, c.suid);
    (c.uid, c.euid, c.suid, c.fsuid) = (ids.real, ids.effective, ids.saved, ids.fs);
    crate::kernel::caps::after_setuid(&mut c.caps, old, (c.uid, c.euid, c.suid));
}

fn may_setuid(t: &Task) -> bool {
    t.creds.capable(CAP_SETUID)
}

fn may_setgid(t: &Task) -> bool {
    t.creds.capable(CAP_SETGID)
}

fn set_group_ids(c: &mut Creds, ids: Ids) {
    (c.gid, c.egid, c.sgid, c.fsgid) = (ids.real, ids.effective, ids.saved, ids.fs);
}

/// setresuid/setresgid: each given id must be one the task holds unless it is privileged.
fn set_res(
    old: &Ids,
    privileged: bool,
    r: Option<u32>,
    e: Option<u32>,
    s: Option<u32>,
) -> Result<Ids, Errno> {
    let held = |id: u32| id == old.real || id == old.effective || id == old.saved;
    if !privileged && [r, e, s].into_iter().flatten().any(|id| !held(id)) {
        return Err(Errno::EPERM);
    }
    let effective = e.unwrap_or(old.effective);
    Ok(Ids {
        real: r.unwrap_or(old.real),
        effective,
        saved: s.unwrap_or(old.saved),
        fs: effective,
    })
}

/// setreuid/setregid: the real id may become the effective one, the effective id the real
/// or saved one; the saved id follows the new effective id when the real id is set or the
/// effective id moves away from the old real one.
fn set_re(old: &Ids, privileged: bool, r: Option<u32>, e: Option<u32>) -> Result<Ids, Errno> {
    if !privileged {
        if r.is_some_and(|id| id != old.real && id != old.effective) {
            return Err(Errno::EPERM);
        }
        if e.is_some_and(|id| id != old.real && id != old.effective && id != old.saved) {
            return Err(Errno::EPERM);
        }
    }
    let real = r.unwrap_or(old.real);
    let effective = e.unwrap_or(old.effective);
    let saved = if r.is_some() || e.is_some_and(|id| id != old.real) {
        effective
    } else {
        old.saved
    };
    Ok(Ids {
        real,
        effective,
        saved,
        fs: effective,
    })
}

/// setfsuid/setfsgid: the new id if the task may use it (privileged, or one of the ids it
/// holds), else the old one.
fn set_fs(old: &Ids, privileged: bool, id: u32) -> u32 {
    if privileged || [old.real, old.effective, old.saved, old.fs].contains(&id) {
        id
    } else {
        old.fs
    }
}

pub fn setresuid(t: &mut Task, a: &Args) -> SysResult {
    let ids = set_res(
        &user_ids(&t.creds),
        may_setuid(t),
        id_arg(a[0]),
        id_arg(a[1]),
        id_arg(a[2]),
    )?;
    set_user_ids(&mut t.creds, ids);
    t.publish_proc_info();
    Ok(0)
}

pub fn setresgid(t: &mut Task, a: &Args) -> SysResult {
    let ids = set_res(
        &group_ids(&t.creds),
        may_setgid(t),
        id_arg(a[0]),
        id_arg(a[1]),
        id_arg(a[2]),
    )?;
    set_group_ids(&mut t.creds, ids);
    t.publish_proc_info();
    Ok(0)
}

pub fn setreuid(t: &mut Task, a: &Args) -> SysResult {
    let ids = set_re(
        &user_ids(&t.creds),
        may_setuid(t),
        id_arg(a[0]),
        id_arg(a[1]),
    )?;
    set_user_ids(&mut t.creds, ids);
    t.publish_proc_info();
    Ok(0)
}

pub fn setregid(t: &mut Task, a: &Args) -> SysResult {
    let ids = set_re(
        &group_ids(&t.creds),
        may_setgid(t),
        id_arg(a[0]),
        id_arg(a[1]),
    )?;
    set_group_ids(&mut t.creds, ids);
    t.publish_proc_info();
    Ok(0)
}

/// setfsuid(2): returns the previous filesystem uid, whether or not it changed.
pub fn setfsuid(t: &mut Task, a: &Args) -> SysResult {
    let old = t.creds.fsuid;
    t.creds.fsuid = set_fs(&user_ids(&t.creds), may_setuid(t), a[0] as u32);
    if t.creds.fsuid != old {
        crate::kernel::caps::after_setfsuid(&mut t.creds.caps, old, t.creds.fsuid);
        t.publish_proc_info();
    }
    Ok(old as u64)
}

/// setfsgid(2): returns the previous filesystem gid, whether or not it changed.
pub fn setfsgid(t: &mut Task, a: &Args) -> SysResult {
    let old = t.creds.fsgid;
    t.creds.fsgid = set_fs(&group_ids(&t.creds), may_setgid(t), a[0] as u32);
    if t.creds.fsgid != old {
        t.publish_proc_info();
    }
    Ok(old as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(real: u32, effective: u32, saved: u32) -> Ids {
        Ids {
            real,
            effective,
            saved,
            fs: effective,
        }
    }

    fn tuple(i: &Ids) -> (u32, u32, u32, u32) {
        (i.real, i.effective, i.saved, i.fs)
    }

    #[test]
    fn setres_lets_an_unprivileged_task_move_only_among_ids_it_holds() {
        let old = ids(1000, 1000, 0);
        assert_eq!(
            tuple(&set_res(&old, false, None, Some(0), None).unwrap()),
            (1000, 0, 0, 0)
        );
        assert_eq!(
            set_res(&old, false, Some(5), None, None).err(),
            Some(Errno::EPERM)
        );
        assert_eq!(
            tuple(&set_res(&ids(0, 0, 0), true, Some(7), Some(0), Some(0)).unwrap()),
            (7, 0, 0, 0)
        );
    }

    #[test]
    fn setre_updates_the_saved_id_like_linux() {
        let old = ids(1000, 1000, 1000);
        // Swapping real and effective as root: saved follows the new effective id.
        assert_eq!(
            tuple(&set_re(&ids(0, 0, 0), true, Some(1000), Some(0)).unwrap()),
            (1000, 0, 0, 0)
        );
        // Only the effective id, back to the real one: saved stays.
        assert_eq!(
            tuple(&set_re(&ids(1000, 0, 0), true, None, Some(1000)).unwrap()),
            (1000, 1000, 0, 1000)
        );
        assert_eq!(set_re(&old, false, Some(0), None).err(), Some(Errno::EPERM));
        assert_eq!(set_re(&old, false, None, Some(0)).err(), Some(Errno::EPERM));
    }

    #[test]
    fn setfs_ignores_an_id_the_task_may_not_use() {
        let old = ids(1000, 1000, 1000);
        assert_eq!(set_fs(&old, false, 0), 1000);
        assert_eq!(set_fs(&old, true, 0), 0);
        assert_eq!(set_fs(&ids(1000, 0, 0), false, 1000), 1000);
    }
}
