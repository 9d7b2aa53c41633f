//! Space accounting of one tmpfs: the pages its regular files hold and its inodes, against
//! the `size=` and `nr_inodes=` limits of its mount (Linux's `shmem_sb_info` blocks and
//! inodes). Without a `size=` the filesystem reports half of the host's RAM, as Linux's
//! default, but refuses nothing itself: the memory file's own limit applies.

use std::sync::atomic::{AtomicU64, Ordering};

use rvisor_syscalls::Errno;

use crate::mm::PAGE_SIZE;

/// No limit.
const UNLIMITED: u64 = u64::MAX;

/// Pages and inodes in use and allowed.
#[derive(Debug)]
pub struct Accounting {
    used_pages: AtomicU64,
    max_pages: AtomicU64,
    max_inodes: AtomicU64,
}

impl Default for Accounting {
    fn default() -> Accounting {
        Accounting {
            used_pages: AtomicU64::new(0),
            max_pages: AtomicU64::new(UNLIMITED),
            max_inodes: AtomicU64::new(UNLIMITED),
        }
    }
}

/// Half of the host's RAM in pages (Linux's default tmpfs size).
fn default_pages() -> u64 {
    // SAFETY: `s` is a plain C struct that sysinfo only writes into.
    let mut s: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `s` is a valid, exclusively borrowed out-pointer.
    if unsafe { libc::sysinfo(&mut s) } != 0 {
        return 1 << 20;
    }
    (s.totalram as u64).saturating_mul(u64::from(s.mem_unit.max(1))) / 2 / PAGE_SIZE
}

impl Accounting {
    /// Sets the limits (`None`: unchanged, 0: unlimited). EINVAL if more is in use already
    /// than a new limit allows (as a Linux remount does).
    pub fn set_limits(
        &self,
        max_bytes: Option<u64>,
        max_inodes: Option<u64>,
        inodes_in_use: u64,
    ) -> Result<(), Errno> {
        let pages = match max_bytes {
            None => self.max_pages.load(Ordering::Relaxed),
            Some(0) => UNLIMITED,
            Some(b) => b.div_ceil(PAGE_SIZE),
        };
        let inodes = match max_inodes {
            None => self.max_inodes.load(Ordering::Relaxed),
            Some(0) => UNLIMITED,
            Some(n) => n,
        };
        if self.used_pages.load(Ordering::Relaxed) > pages || inodes_in_use > inodes {
            return Err(Errno::EINVAL);
        }
        self.max_pages.store(pages, Ordering::Relaxed);
        self.max_inodes.store(inodes, Ordering::Relaxed);
        Ok(())
    }

    /// Pages not yet used below the limit (`u64::MAX` when unlimited).
    pub fn available(&self) -> u64 {
        let max = self.max_pages.load(Ordering::Relaxed);
        if max == UNLIMITED {
            return UNLIMITED;
        }
        max.saturating_sub(self.used_pages.load(Ordering::Relaxed))
    }

    /// Takes `n` pages, or ENOSPC if that would pass the limit.
    pub fn charge(&self, n: u64) -> Result<(), Errno> {
        let max = self.max_pages.load(Ordering::Relaxed);
        self.used_pages
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| max == UNLIMITED || t <= max)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    /// Gives back `n` pages.
    pub fn uncharge(&self, n: u64) {
        let _ = self
            .used_pages
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// ENOSPC if a new inode would pass `nr_inodes=` (`in_use` counts the live ones).
    pub fn may_add_inode(&self, in_use: u64) -> Result<(), Errno> {
        if in_use >= self.max_inodes.load(Ordering::Relaxed) {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    /// statfs' `(f_blocks, f_bfree)` in pages.
    pub fn blocks(&self) -> (u64, u64) {
        let max = self.max_pages.load(Ordering::Relaxed);
        let total = if max == UNLIMITED {
            default_pages()
        } else {
            max
        };
        (
            total,
            total.saturating_sub(self.used_pages.load(Ordering::Relaxed)),
        )
    }

    /// statfs' `(f_files, f_ffree)`, or `None` without a limit.
    pub fn inodes(&self, in_use: u64) -> Option<(u64, u64)> {
        let max = self.max_inodes.load(Ordering::Relaxed);
        (max != UNLIMITED).then(|| (max, max.saturating_sub(in_use)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_limit_and_limits_cannot_drop_below_use() {
        let a = Accounting::default();
        a.charge(1000).unwrap();
        a.set_limits(Some(1024 * PAGE_SIZE), Some(10), 3).unwrap();
        assert_eq!(a.available(), 24);
        assert_eq!(a.charge(25), Err(Errno::ENOSPC));
        a.charge(24).unwrap();
        assert_eq!(a.blocks(), (1024, 0));
        assert_eq!(a.set_limits(Some(PAGE_SIZE), None, 0), Err(Errno::EINVAL));
        a.set_limits(Some(2048 * PAGE_SIZE), None, 3).unwrap();
        assert_eq!(a.inodes(4), Some((10, 6)), "nr_inodes kept");
        a.set_limits(Some(1024 * PAGE_SIZE), None, 3).unwrap();
        a.uncharge(1024);
        assert_eq!(a.blocks(), (1024, 1024));
        assert_eq!(a.may_add_inode(10), Err(Errno::ENOSPC));
        assert_eq!(a.inodes(4), Some((10, 6)));
    }
}
