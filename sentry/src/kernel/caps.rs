//! Capability sets of a task (capabilities(7)), emulated by the sentry.

use rvisor_syscalls::flags::capability::{
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_FULL_SET,
    CAP_LINUX_IMMUTABLE, CAP_MAC_OVERRIDE, CAP_MKNOD, CAP_NAMES, CAP_SETPCAP,
};
use rvisor_syscalls::Errno;

use super::task::Creds;

/// The capabilities that follow the filesystem uid: a move of the fsuid away from 0 drops
/// them from the effective set, a move back raises them from the permitted set.
pub const FS_CAPS: u64 = 1 << CAP_CHOWN
    | 1 << CAP_DAC_OVERRIDE
    | 1 << CAP_DAC_READ_SEARCH
    | 1 << CAP_FOWNER
    | 1 << CAP_FSETID
    | 1 << CAP_LINUX_IMMUTABLE
    | 1 << CAP_MKNOD
    | 1 << CAP_MAC_OVERRIDE;

impl Creds {
    /// Whether the task holds `cap` in its effective set (Linux's `capable`): one bit test.
    #[inline]
    pub fn capable(&self, cap: u32) -> bool {
        self.caps.has(cap)
    }

    /// The credentials access(2) checks with (Linux's `access_override_creds`): the real
    /// ids as filesystem ids, and the permitted set as effective for a real root, an empty
    /// effective set for anyone else.
    pub fn for_access(&self) -> Creds {
        let mut c = Creds {
            fsuid: self.uid,
            fsgid: self.gid,
            ..self.clone()
        };
        c.caps.effective = if self.uid == 0 {
            self.caps.permitted
        } else {
            0
        };
        c
    }

    /// Whether [`Creds::for_access`] differs from these credentials.
    pub fn access_differs(&self) -> bool {
        let eff = if self.uid == 0 {
            self.caps.permitted
        } else {
            0
        };
        self.fsuid != self.uid || self.fsgid != self.gid || self.caps.effective != eff
    }
}

/// The five capability sets, as bit masks by capability number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
    /// PR_SET_KEEPCAPS: leaving uid 0 keeps the permitted set (cleared by execve).
    pub keep_caps: bool,
}

impl CapSets {
    /// What a process of uid `uid` starts with when nobody chose: root has everything,
    /// others nothing (the bounding set stays full).
    pub fn for_uid(uid: u32) -> CapSets {
        let all = if uid == 0 { CAP_FULL_SET } else { 0 };
        CapSets {
            inheritable: 0,
            permitted: all,
            effective: all,
            bounding: CAP_FULL_SET,
            ambient: 0,
            keep_caps: false,
        }
    }

    /// Whether `cap` is in the effective set.
    pub fn has(&self, cap: u32) -> bool {
        cap < 64 && self.effective & (1 << cap) != 0
    }
}

/// How a uid change moves capabilities (capabilities(7), "Effect of user ID changes on
/// capabilities", without PR_SET_KEEPCAPS): leaving uid 0 everywhere drops the permitted,
/// effective and ambient sets; a move of the effective uid away from 0 clears the
/// effective set, and back to 0 restores it from the permitted set.
pub fn after_setuid(caps: &mut CapSets, old: (u32, u32, u32), new: (u32, u32, u32)) {
    let had_root = old.0 == 0 || old.1 == 0 || old.2 == 0;
    if had_root && new.0 != 0 && new.1 != 0 && new.2 != 0 {
        if !caps.keep_caps {
            caps.permitted = 0;
        }
        caps.effective = 0;
        caps.ambient = 0;
    }
    if old.1 == 0 && new.1 != 0 {
        caps.effective = 0;
    }
    if old.1 != 0 && new.1 == 0 {
        caps.effective = caps.permitted;
    }
}

/// setfsuid's effect (capabilities(7)): leaving fsuid 0 drops the filesystem capabilities
/// from the effective set; returning to 0 raises those of them that are permitted.
pub fn after_setfsuid(caps: &mut CapSets, old_fsuid: u32, new_fsuid: u32) {
    if old_fsuid == 0 && new_fsuid != 0 {
        caps.effective &= !FS_CAPS;
    }
    if old_fsuid != 0 && new_fsuid == 0 {
        caps.effective |= caps.permitted & FS_CAPS;
    }
}

/// The sets after an execve of a file without file capabilities and without set-ID bits
/// (Linux's `cap_bprm_creds_from_file` with the root fix-up): a real or effective root
/// gets `bounding | inheritable` as permitted, an effective root also as effective;
/// everyone keeps the ambient set, which joins the permitted set and, for a non-root, is
/// the whole effective set.
pub fn on_exec(caps: &mut CapSets, uid: u32, euid: u32) {
    let mut permitted = 0;
    if uid == 0 || euid == 0 {
        permitted = caps.bounding | caps.inheritable;
    }
    permitted |= caps.ambient;
    caps.permitted = permitted;
    caps.effective = if euid == 0 { permitted } else { caps.ambient };
    caps.keep_caps = false;
}

/// capset(2)'s rules (Linux's `cap_capset`): the new inheritable set stays within the old
/// inheritable and permitted sets unless the task has CAP_SETPCAP, and within the old
/// inheritable and bounding sets always; permitted may only shrink; effective stays within
/// the new permitted. The ambient set loses whatever leaves permitted or inheritable.
pub fn capset(
    old: &CapSets,
    effective: u64,
    permitted: u64,
    inheritable: u64,
) -> Result<CapSets, Errno> {
    let subset = |a: u64, b: u64| a & !b == 0;
    let setpcap = old.effective & (1 << CAP_SETPCAP) != 0;
    if !setpcap && !subset(inheritable, old.inheritable | old.permitted) {
        return Err(Errno::EPERM);
    }
    if !subset(inheritable, old.inheritable | old.bounding)
        || !subset(permitted, old.permitted)
        || !subset(effective, permitted)
    {
        return Err(Errno::EPERM);
    }
    Ok(CapSets {
        inheritable,
        permitted,
        effective,
        bounding: old.bounding,
        ambient: old.ambient & permitted & inheritable,
        keep_caps: old.keep_caps,
    })
}

/// The mask of capability names like "CAP_CHOWN" (unknown names are skipped and returned).
pub fn mask_of(names: &[String]) -> (u64, Vec<String>) {
    let mut mask = 0u64;
    let mut unknown = Vec::new();
    for n in names {
        let up = n.to_ascii_uppercase();
        let up = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        match CAP_NAMES.iter().position(|c| *c == up) {
            Some(i) => mask |= 1 << i,
            None => unknown.push(n.clone()),
        }
    }
    (mask, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_bits() {
        let (m, unknown) = mask_of(&[
            "CAP_CHOWN".into(),
            "CAP_KILL".into(),
            "cap_sys_admin".into(),
            "CAP_BOGUS".into(),
        ]);
        assert_eq!(m, 1 | 1 << 5 | 1 << 21);
        assert_eq!(unknown, vec!["CAP_BOGUS".to_string()]);
    }

    #[test]
    fn dropping_root_drops_capabilities() {
        let mut c = CapSets::for_uid(0);
        after_setuid(&mut c, (0, 0, 0), (0, 1000, 0));
        assert_eq!(c.effective, 0);
        assert_ne!(c.permitted, 0);
        after_setuid(&mut c, (0, 1000, 0), (0, 0, 0));
        assert_eq!(c.effective, c.permitted);
        after_setuid(&mut c, (0, 0, 0), (1000, 1000, 1000));
        assert_eq!((c.permitted, c.effective), (0, 0));
    }

    #[test]
    fn capset_may_only_shrink_permitted_and_keep_effective_within_it() {
        let root = CapSets::for_uid(0);
        let c = capset(&root, 1, 1 | 2, 0).unwrap();
        assert_eq!((c.effective, c.permitted, c.bounding), (1, 3, CAP_FULL_SET));
        assert_eq!(
            capset(&c, 1, 1 | 4, 0).err(),
            Some(Errno::EPERM),
            "raise permitted"
        );
        assert_eq!(
            capset(&c, 4, 3, 0).err(),
            Some(Errno::EPERM),
            "effective beyond permitted"
        );
        // Without CAP_SETPCAP the inheritable set stays within inheritable | permitted.
        assert_eq!(capset(&c, 1, 3, 8).err(), Some(Errno::EPERM));
        assert_eq!(capset(&c, 1, 3, 2).unwrap().inheritable, 2);
        // With it, within inheritable | bounding.
        let mut b = root;
        b.bounding = 1;
        assert!(capset(&b, 0, root.permitted, 1).is_ok());
        assert_eq!(capset(&b, 0, root.permitted, 2).err(), Some(Errno::EPERM));
    }

    #[test]
    fn exec_gives_root_the_bounding_set_and_others_only_ambient() {
        let mut c = CapSets::for_uid(0);
        c.bounding = 0xff;
        c.permitted = 1;
        on_exec(&mut c, 0, 0);
        assert_eq!((c.permitted, c.effective), (0xff, 0xff));
        let mut u = CapSets {
            permitted: 6,
            effective: 6,
            inheritable: 4,
            ambient: 4,
            ..CapSets::for_uid(1000)
        };
        on_exec(&mut u, 1000, 1000);
        assert_eq!((u.permitted, u.effective, u.ambient), (4, 4, 4));
        let mut r = CapSets::for_uid(0);
        on_exec(&mut r, 0, 1000);
        assert_eq!((r.permitted, r.effective), (CAP_FULL_SET, 0));
    }

    #[test]
    fn fsuid_moves_only_the_filesystem_capabilities() {
        let mut c = CapSets::for_uid(0);
        after_setfsuid(&mut c, 0, 1000);
        assert_eq!(c.effective, CAP_FULL_SET & !FS_CAPS);
        after_setfsuid(&mut c, 1000, 0);
        assert_eq!(c.effective, CAP_FULL_SET);
    }

    #[test]
    fn root_has_all_others_none() {
        assert!(CapSets::for_uid(0).has(21));
        assert!(!CapSets::for_uid(1000).has(0));
    }
}
