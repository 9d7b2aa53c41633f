//! Address-space layout like Linux x86_64: where the mmap area, the stack, PIE executables
//! and the heap go, and how much each is randomised.

use super::{page_down, PAGE_SIZE, STACK_GUARD_GAP};

/// Most the stack top is moved down (Linux: STACK_RND_MASK 0x3fffff pages = 16 GiB),
/// capped for small address spaces.
pub fn stack_random_max(max_addr: u64) -> u64 {
    page_down((16u64 << 30).min(max_addr / 16))
}

/// Most the mmap base and a PIE base are moved (Linux: 28 random bits of pages = 1 TiB).
pub fn mmap_random_max(max_addr: u64) -> u64 {
    page_down((1u64 << 40).min(max_addr / 8))
}

/// Most the heap start is moved up (Linux: 32 MiB).
pub const BRK_RANDOM_MAX: u64 = 32 << 20;

/// Linux's `mmap_base()`: below the highest possible stack by the stack rlimit, the guard
/// gap and the stack's randomisation range (at least 128 MiB, at most 5/6 of the space),
/// then down by a random amount.
pub fn mmap_base(max_addr: u64, stack_limit: u64, aslr: bool) -> u64 {
    let pad = if aslr { stack_random_max(max_addr) } else { 0 } + STACK_GUARD_GAP;
    let gap = stack_limit.saturating_add(pad).clamp(128 << 20, (max_addr / 6 * 5).max(128 << 20));
    let rnd = if aslr { random_below(mmap_random_max(max_addr)) } else { 0 };
    page_down(max_addr.saturating_sub(gap).saturating_sub(rnd)).max(super::MMAP_MIN_ADDR)
}

/// Linux's ELF_ET_DYN_BASE: where PIE executables go, 2/3 of the way up, plus a random,
/// `align`-aligned offset.
pub fn et_dyn_base(max_addr: u64, aslr: bool, align: u64) -> u64 {
    let base = page_down(max_addr / 3 * 2);
    let rnd = if aslr { random_below(mmap_random_max(max_addr)) } else { 0 };
    (base + rnd) & !(align.max(PAGE_SIZE) - 1)
}

/// A page-aligned random value in `[0, max)` (0 if `max` is below a page).
pub fn random_below(max: u64) -> u64 {
    let pages = max / PAGE_SIZE;
    if pages == 0 {
        return 0;
    }
    (random_u64() % pages) * PAGE_SIZE
}

/// Random bytes from the host kernel.
pub fn random_bytes(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a live, exclusively borrowed buffer of `rest.len()` bytes;
        // getrandom writes at most that many and returns how many.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            done += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom does not fail once the pool is initialised; never hand out
            // predictable "random" bytes silently.
            tracing::error!("getrandom failed: {}", std::io::Error::last_os_error());
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            for (i, b) in rest.iter_mut().enumerate() {
                *b = (t.rotate_left(i as u32 * 8) as u8) ^ (i as u8);
            }
            return;
        }
    }
}

/// A random u64.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    random_bytes(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmap_base_lies_below_the_stack_area() {
        let max = 0x7fff_ffff_f000;
        for _ in 0..16 {
            let b = mmap_base(max, 8 << 20, true);
            assert_eq!(b % PAGE_SIZE, 0);
            assert!(b < max - stack_random_max(max) - (8 << 20));
            assert!(b > max - (2u64 << 40));
        }
        assert_eq!(mmap_base(max, 8 << 20, false), max - (128 << 20));
    }

    #[test]
    fn et_dyn_base_is_two_thirds_up_and_aligned() {
        let max = 0x7fff_ffff_f000;
        assert_eq!(et_dyn_base(max, false, PAGE_SIZE), 0x5555_5555_4000);
        let b = et_dyn_base(max, true, 1 << 21);
        assert_eq!(b % (1 << 21), 0);
        assert!((0x5555_5540_0000..0x5555_5555_4000 + (1u64 << 40)).contains(&b));
    }
}
