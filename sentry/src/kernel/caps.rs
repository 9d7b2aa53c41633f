//! Capability sets of a task (capabilities(7)), emulated by the sentry.

use rvisor_syscalls::flags::capability::{CAP_FULL_SET, CAP_NAMES};

/// The five capability sets, as bit masks by capability number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
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
        caps.permitted = 0;
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
    fn root_has_all_others_none() {
        assert!(CapSets::for_uid(0).has(21));
        assert!(!CapSets::for_uid(1000).has(0));
    }
}
