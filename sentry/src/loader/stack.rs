//! The initial stack of a new program, laid out exactly like Linux's `create_elf_tables`:
//!
//! ```text
//! top     8 zero bytes
//!         execfn string                         ← AT_EXECFN
//!         envp strings, argv strings (argv[0] lowest)
//!         up to 8 KiB random padding, 16-byte aligned
//!         "x86_64\0"                            ← AT_PLATFORM
//!         16 random bytes                       ← AT_RANDOM
//!         padding to 16 bytes
//!         auxv pairs ending with AT_NULL
//!         NULL, envp pointers
//!         NULL, argv pointers
//! rsp →   argc                                  (16-byte aligned)
//! ```

use std::sync::Arc;

use rvisor_platform::Perms;
use rvisor_syscalls::flags::auxv::*;
use rvisor_syscalls::flags::limits::MAX_ARG_STRLEN;

use super::{ExecArgs, LoadError};
use crate::mm::{layout, page_down, MapRequest, MemoryManager, Placement, PAGE_SIZE};

/// The stack VMA is this much larger than what the strings and tables need (Linux's
/// `stack_expand`); it grows down on demand beyond that.
pub const STACK_EXPAND: u64 = 128 << 10;
/// Linux's `_STK_LIM`.
const STK_LIM: u64 = 8 << 20;
/// Linux's ARG_MAX (the floor of the argument space).
const ARG_MAX: u64 = 32 * PAGE_SIZE;
/// AT_PLATFORM.
pub const PLATFORM: &[u8] = b"x86_64\0";
/// Linux's HWCAP2_FSGSBASE.
pub const HWCAP2_FSGSBASE: u64 = 1 << 1;

/// Auxiliary-vector values that come from the loaded images.
#[derive(Clone, Copy, Debug)]
pub struct AuxInputs {
    pub phdr: u64,
    pub phnum: u64,
    pub base: u64,
    pub entry: u64,
}

/// Where things went on the new stack.
#[derive(Clone, Debug)]
pub struct StackSetup {
    pub sp: u64,
    pub auxv: Vec<(u64, u64)>,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// Space argv, envp and execfn may take: Linux's `bprm_stack_limits`.
fn arg_limit(stack_limit: u64) -> u64 {
    (STK_LIM / 4 * 3).min(stack_limit / 4).max(ARG_MAX)
}

/// E2BIG checks of execve: each string (with its NUL) at most MAX_ARG_STRLEN, and all of
/// them plus the pointer arrays within a quarter of the stack limit.
pub fn check_args(args: &ExecArgs, stack_limit: u64) -> Result<(), LoadError> {
    let limit = arg_limit(stack_limit);
    let ptrs = (args.argv.len().max(1) as u64).saturating_add(args.envp.len() as u64).saturating_mul(8);
    if ptrs >= limit {
        return Err(LoadError::ArgsTooLong);
    }
    let mut total = 0u64;
    for s in args.argv.iter().chain(&args.envp).chain(std::iter::once(&args.execfn)) {
        let len = s.len() as u64 + 1;
        if len > MAX_ARG_STRLEN as u64 {
            return Err(LoadError::ArgsTooLong);
        }
        total = total.saturating_add(len);
    }
    if total > limit - ptrs {
        return Err(LoadError::ArgsTooLong);
    }
    Ok(())
}

/// Writes `s` and a NUL into `img` (which represents guest memory `[base, top)`) at `addr`.
fn put_str(img: &mut [u8], base: u64, addr: u64, s: &[u8]) {
    let at = (addr - base) as usize;
    img[at..at + s.len()].copy_from_slice(s);
    img[at + s.len()] = 0;
}

fn put_u64(img: &mut [u8], base: u64, addr: u64, v: u64) {
    let at = (addr - base) as usize;
    img[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Creates the "[stack]" VMA below `mm.max_addr()` (top randomised) and writes the
/// initial stack for `args`.
pub fn setup(mm: &MemoryManager, args: &ExecArgs, aux: &AuxInputs) -> Result<StackSetup, LoadError> {
    check_args(args, mm.stack_limit())?;
    let aslr = mm.aslr();
    let max = page_down(mm.max_addr());
    let top = max - if aslr { layout::random_below(layout::stack_random_max(max)) } else { 0 };

    // Strings, from the top down (Linux copies execfn first, then envp and argv backwards).
    let mut p = top - 8;
    p -= args.execfn.len() as u64 + 1;
    let execfn_addr = p;
    let mut env_addrs = vec![0u64; args.envp.len()];
    for (i, s) in args.envp.iter().enumerate().rev() {
        p -= s.len() as u64 + 1;
        env_addrs[i] = p;
    }
    let mut arg_addrs = vec![0u64; args.argv.len()];
    for (i, s) in args.argv.iter().enumerate().rev() {
        p -= s.len() as u64 + 1;
        arg_addrs[i] = p;
    }
    let strings_start = p;
    // arch_align_stack
    if aslr {
        p -= layout::random_u64() % 8192;
    }
    p &= !15;
    p -= PLATFORM.len() as u64;
    let platform_addr = p;
    p -= 16;
    let random_addr = p;
    let mut random = [0u8; 16];
    layout::random_bytes(&mut random);

    let auxv = auxv(args, aux, random_addr, execfn_addr, platform_addr);
    let items = (args.argv.len() as u64 + 1) + (args.envp.len() as u64 + 1) + 1;
    let sp = (p - (auxv.len() as u64 + 1) * 16 - items * 8) & !15;

    // The VMA: everything above plus room to grow, growsdown for the rest.
    let vma_start = page_down(sp).saturating_sub(STACK_EXPAND);
    let mut req = MapRequest::anonymous(vma_start, top - vma_start, Perms::RW, Placement::Fixed);
    req.growsdown = true;
    req.name = Some(Arc::from("[stack]"));
    mm.map(req).map_err(LoadError::Map)?;

    // Build [sp, top) in sentry memory and copy it out once.
    let mut img = vec![0u8; (top - sp) as usize];
    put_str(&mut img, sp, execfn_addr, &args.execfn);
    for (s, &a) in args.envp.iter().zip(&env_addrs) {
        put_str(&mut img, sp, a, s);
    }
    for (s, &a) in args.argv.iter().zip(&arg_addrs) {
        put_str(&mut img, sp, a, s);
    }
    let at = (platform_addr - sp) as usize;
    img[at..at + PLATFORM.len()].copy_from_slice(PLATFORM);
    let at = (random_addr - sp) as usize;
    img[at..at + 16].copy_from_slice(&random);
    let mut w = sp;
    let mut push = |img: &mut [u8], v: u64| {
        put_u64(img, sp, w, v);
        w += 8;
    };
    push(&mut img, args.argv.len() as u64);
    for &a in &arg_addrs {
        push(&mut img, a);
    }
    push(&mut img, 0);
    for &a in &env_addrs {
        push(&mut img, a);
    }
    push(&mut img, 0);
    for &(k, v) in &auxv {
        push(&mut img, k);
        push(&mut img, v);
    }
    push(&mut img, AT_NULL);
    push(&mut img, 0);
    mm.copy_out(sp, &img).map_err(LoadError::Stack)?;

    let env_start = env_addrs.first().copied().unwrap_or(execfn_addr);
    Ok(StackSetup {
        sp,
        auxv,
        arg_start: strings_start,
        arg_end: env_start,
        env_start,
        env_end: execfn_addr,
    })
}

/// The auxiliary vector in Linux's order (without AT_NULL). AT_SYSINFO_EHDR is omitted
/// until there is a vDSO.
fn auxv(args: &ExecArgs, aux: &AuxInputs, random: u64, execfn: u64, platform: u64) -> Vec<(u64, u64)> {
    vec![
        (AT_MINSIGSTKSZ, host::minsigstksz()),
        (AT_HWCAP, host::hwcap()),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, 100),
        (AT_PHDR, aux.phdr),
        (AT_PHENT, super::elf::PHDR_SIZE as u64),
        (AT_PHNUM, aux.phnum),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, args.uid as u64),
        (AT_EUID, args.euid as u64),
        (AT_GID, args.gid as u64),
        (AT_EGID, args.egid as u64),
        (AT_SECURE, args.secure as u64),
        (AT_RANDOM, random),
        (AT_HWCAP2, host::hwcap2()),
        (AT_EXECFN, execfn),
        (AT_PLATFORM, platform),
    ]
}

/// CPU facts the guest sees (the guest runs on the host CPU).
mod host {
    use std::arch::x86_64::{CpuidResult, __cpuid_count};

    use super::HWCAP2_FSGSBASE;

    fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
        // SAFETY: CPUID exists on every x86_64 CPU and only reads identification registers.
        #[allow(unused_unsafe)]
        unsafe {
            __cpuid_count(leaf, sub)
        }
    }

    /// AT_HWCAP on x86_64: CPUID.1:EDX.
    pub fn hwcap() -> u64 {
        cpuid(1, 0).edx as u64
    }

    /// AT_HWCAP2: only FSGSBASE, and only if the host kernel enabled it for user space
    /// (its own AT_HWCAP2 says so) — the guest's code runs on this host.
    pub fn hwcap2() -> u64 {
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let host = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        host & HWCAP2_FSGSBASE
    }

    /// AT_MINSIGSTKSZ: the host kernel's value if it reports one (it depends on the
    /// enabled XSAVE features, which the guest shares), else an estimate from CPUID's XSAVE
    /// area size plus the signal frame, never below 2048.
    pub fn minsigstksz() -> u64 {
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let host = unsafe { libc::getauxval(51) };
        if host != 0 {
            return host;
        }
        let xsave = if cpuid(0, 0).eax >= 0xd { cpuid(0xd, 0).ebx as u64 } else { 512 };
        // rt_sigframe + siginfo + ucontext ≈ 1 KiB, plus FP state alignment.
        (xsave + 1024 + 64).max(2048)
    }
}
