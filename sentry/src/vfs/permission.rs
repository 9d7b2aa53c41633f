//! Unix permission checks with the guest's credentials.
//!
//! The guest's root is root only inside the sandbox: every check here compares the
//! guest's ids (from [`Creds`]) with the guest-visible owner and mode of a file, never the
//! host's. Capabilities override the mode bits as in Linux: CAP_DAC_OVERRIDE reads and
//! writes anything, searches every directory and executes a file with at least one
//! execute bit; CAP_DAC_READ_SEARCH reads any file and reads and searches any directory;
//! CAP_FSETID keeps set-ID bits across writes. Each is one bit test of the effective set.
//!
//! Path walks check search permission on every directory they cross
//! ([`may_search`], called by [`super::Vfs::resolve`] when the [`super::Lookup`] carries
//! credentials). Syscall-layer walks always pass the caller's credentials; kernel-internal
//! walks (the boot-time working directory, the init process's executable) pass `None`.
//! The check reads the dentry's cached attributes, so a walk costs no gofer round trip, and
//! a caller with CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE skips it altogether.

use std::sync::Arc;

use rvisor_syscalls::flags::capability::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FSETID};
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFMT, S_IFREG, S_ISGID, S_ISUID};
use rvisor_syscalls::flags::mount::MS_NOEXEC;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::dentry::Dentry;
use super::inode::SetAttr;
use crate::kernel::task::Creds;

/// Execute (search, for directories) permission.
pub const MAY_EXEC: u32 = 1;
/// Write permission.
pub const MAY_WRITE: u32 = 2;
/// Read permission.
pub const MAY_READ: u32 = 4;

/// Group execute: makes S_ISGID on a regular file mean "set-group-ID on execution" (without
/// it the bit means mandatory locking, which writes do not clear).
const S_IXGRP: u32 = 0o010;

/// Which of a task's ids a check uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// The filesystem ids (fsuid/fsgid): every check but access(2)'s.
    Fs,
    /// The real ids (uid/gid): access(2) and faccessat(2) without AT_EACCESS.
    Real,
}

/// Linux's `generic_permission`: whether `creds` may access a file with attributes `st` in
/// the ways `mask` (`MAY_READ | MAY_WRITE | MAY_EXEC`) asks. EACCES if not.
pub fn check(creds: &Creds, ids: Ids, st: &Stat, mask: u32) -> Result<(), Errno> {
    // access(2) with the real ids also uses the capabilities a real root would have:
    // the permitted set for uid 0, none otherwise (Linux's access_override_creds).
    let (uid, gid, caps) = match ids {
        Ids::Fs => (creds.fsuid, creds.fsgid, creds.caps.effective),
        Ids::Real => (
            creds.uid,
            creds.gid,
            if creds.uid == 0 {
                creds.caps.permitted
            } else {
                0
            },
        ),
    };
    let mask = mask & 7;
    if mode_allows(creds, uid, gid, st, mask) {
        return Ok(());
    }
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if st.st_mode & S_IFMT == S_IFDIR {
        if (mask & MAY_WRITE == 0 && has(CAP_DAC_READ_SEARCH)) || has(CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        return Err(Errno::EACCES);
    }
    if mask == MAY_READ && has(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    // Reads and writes are always overridable; execution only with an execute bit set.
    if (mask & MAY_EXEC == 0 || st.st_mode & 0o111 != 0) && has(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    Err(Errno::EACCES)
}

/// Whether the owner, group or other bits that apply to `uid`/`gid` grant `mask`.
fn mode_allows(creds: &Creds, uid: u32, gid: u32, st: &Stat, mask: u32) -> bool {
    let bits = if st.st_uid == uid {
        (st.st_mode >> 6) & 7
    } else if st.st_gid == gid || creds.groups.contains(&st.st_gid) {
        (st.st_mode >> 3) & 7
    } else {
        st.st_mode & 7
    };
    bits & mask == mask
}

/// Search permission on the directory `dir`, to look a name up in it during a path walk.
/// CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE search every directory; others need the
/// execute bit that applies to them.
pub fn may_search(creds: &Creds, dir: &Dentry) -> Result<(), Errno> {
    const OVERRIDE: u64 = 1 << CAP_DAC_READ_SEARCH | 1 << CAP_DAC_OVERRIDE;
    if creds.caps.effective & OVERRIDE != 0 {
        return Ok(());
    }
    check(creds, Ids::Fs, &dir.inode().cached_stat()?, MAY_EXEC)
}

/// execve's check of the file itself: a regular file (EACCES otherwise) that the caller
/// may execute (root needs one execute bit set anywhere).
pub fn may_exec(creds: &Creds, st: &Stat) -> Result<(), Errno> {
    if st.st_mode & S_IFMT != S_IFREG {
        return Err(Errno::EACCES);
    }
    check(creds, Ids::Fs, st, MAY_EXEC)
}

/// Whether `d` lies on a mount with `noexec` (execve and access(X_OK) refuse its regular
/// files with EACCES).
pub fn on_noexec_mount(_vfs: &super::Vfs, d: &Arc<Dentry>) -> bool {
    d.mount_flags() & MS_NOEXEC != 0
}

/// The set-ID bits a write or truncation by a caller without CAP_FSETID clears from a
/// regular file's `mode` (Linux's `should_remove_suid`): set-user-ID always, set-group-ID
/// when group execute is on.
pub fn privs_to_remove(mode: u32) -> u32 {
    let mut kill = mode & S_ISUID;
    if mode & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP) {
        kill |= S_ISGID;
    }
    kill
}

/// The set-ID bits a write or truncation by `creds` (without CAP_FSETID) clears from a
/// regular file with attributes `st`: [`privs_to_remove`], and since Linux 6.2 also a
/// set-group-ID bit without group execute when the caller is not in the file's group
/// (`setattr_should_drop_sgid`).
pub fn privs_to_remove_for(creds: &Creds, st: &Stat) -> u32 {
    let mut kill = privs_to_remove(st.st_mode);
    if st.st_mode & S_ISGID != 0 && kill & S_ISGID == 0 && creds.fsgid != st.st_gid && !creds.groups.contains(&st.st_gid) {
        kill |= S_ISGID;
    }
    kill
}

/// Linux's `file_remove_privs`: before a write, truncation or allocation changes a
/// regular file, a caller without CAP_FSETID clears its set-ID bits. For such a caller —
/// and for every file without those bits — this is a bit test and a look at the cached
/// mode, so it is cheap enough for every write.
pub fn remove_privs(creds: &Creds, d: &Dentry) -> Result<(), Errno> {
    if creds.capable(CAP_FSETID) {
        return Ok(());
    }
    let inode = d.inode();
    if inode.file_type() != S_IFREG {
        return Ok(());
    }
    let st = inode.cached_stat()?;
    let mode = st.st_mode;
    let kill = privs_to_remove_for(creds, &st);
    if kill == 0 {
        return Ok(());
    }
    inode.setattr(&SetAttr {
        mode: Some(mode & 0o7777 & !kill),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds::new(uid, gid, groups)
    }

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        Stat {
            st_mode: mode,
            st_uid: uid,
            st_gid: gid,
            ..Default::default()
        }
    }

    #[test]
    fn owner_group_and_other_bits_apply_in_that_order() {
        let u = user(1000, 100, vec![200]);
        // The owner class applies even when it grants less than the others.
        assert_eq!(
            check(&u, Ids::Fs, &st(0o100077, 1000, 0), MAY_READ),
            Err(Errno::EACCES)
        );
        assert!(check(&u, Ids::Fs, &st(0o100040, 0, 100), MAY_READ).is_ok());
        assert!(
            check(&u, Ids::Fs, &st(0o100040, 0, 200), MAY_READ).is_ok(),
            "a supplementary group"
        );
        assert_eq!(
            check(&u, Ids::Fs, &st(0o100604, 0, 200), MAY_READ),
            Err(Errno::EACCES),
            "group bits, not other"
        );
        assert!(check(&u, Ids::Fs, &st(0o100006, 0, 0), MAY_READ | MAY_WRITE).is_ok());
        assert_eq!(
            check(&u, Ids::Fs, &st(0o100004, 0, 0), MAY_READ | MAY_WRITE),
            Err(Errno::EACCES)
        );
    }

    #[test]
    fn root_may_do_anything_but_execute_a_file_without_execute_bits() {
        let root = user(0, 0, vec![]);
        assert!(check(&root, Ids::Fs, &st(0o100000, 5, 5), MAY_READ | MAY_WRITE).is_ok());
        assert!(
            check(&root, Ids::Fs, &st(0o040000, 5, 5), MAY_EXEC).is_ok(),
            "search any directory"
        );
        assert_eq!(may_exec(&root, &st(0o100644, 0, 0)), Err(Errno::EACCES));
        assert!(may_exec(&root, &st(0o100001, 5, 5)).is_ok());
        assert_eq!(
            may_exec(&root, &st(0o040755, 0, 0)),
            Err(Errno::EACCES),
            "a directory"
        );
    }

    #[test]
    fn root_without_dac_capabilities_obeys_the_mode_bits() {
        let mut root = user(0, 0, vec![]);
        root.caps.effective &= !(1 << CAP_DAC_OVERRIDE);
        let other = st(0o100600, 5, 5);
        assert_eq!(check(&root, Ids::Fs, &other, MAY_WRITE), Err(Errno::EACCES));
        assert!(
            check(&root, Ids::Fs, &other, MAY_READ).is_ok(),
            "CAP_DAC_READ_SEARCH reads"
        );
        root.caps.effective &= !(1 << CAP_DAC_READ_SEARCH);
        assert_eq!(check(&root, Ids::Fs, &other, MAY_READ), Err(Errno::EACCES));
        assert_eq!(
            check(&root, Ids::Fs, &st(0o040700, 5, 5), MAY_EXEC),
            Err(Errno::EACCES)
        );
        assert!(
            check(&root, Ids::Fs, &st(0o100600, 0, 5), MAY_READ | MAY_WRITE).is_ok(),
            "owner"
        );
    }

    #[test]
    fn real_ids_are_used_only_when_asked() {
        let mut c = user(1000, 1000, vec![]);
        c.euid = 0;
        c.fsuid = 0;
        let secret = st(0o100600, 0, 0);
        assert!(check(&c, Ids::Fs, &secret, MAY_READ).is_ok());
        assert_eq!(check(&c, Ids::Real, &secret, MAY_READ), Err(Errno::EACCES));
    }

    #[test]
    fn writes_clear_set_user_id_and_set_group_id_only_with_group_execute() {
        assert_eq!(privs_to_remove(0o104755), S_ISUID);
        assert_eq!(privs_to_remove(0o106755), S_ISUID | S_ISGID);
        assert_eq!(
            privs_to_remove(0o102645),
            0,
            "mandatory-locking S_ISGID stays"
        );
        assert_eq!(privs_to_remove(0o100777), 0);
        // Set-group-ID without group execute: kept for a member of the file's group only.
        let member = user(1000, 50, vec![60]);
        assert_eq!(privs_to_remove_for(&member, &st(0o102644, 0, 50)), 0);
        assert_eq!(privs_to_remove_for(&member, &st(0o102644, 0, 60)), 0);
        assert_eq!(privs_to_remove_for(&member, &st(0o102644, 0, 70)), S_ISGID);
        assert_eq!(privs_to_remove_for(&member, &st(0o106644, 0, 70)), S_ISUID | S_ISGID);
    }
}
