//! Copy-on-write: mapping realised pages with the permissions their sharing allows, and
//! giving an address space its own copy of pages it shares before it writes them.

use rvisor_platform::{AddressSpace, Perms};

use super::pma::{Pma, PmaSet};
use super::vma::Vma;
use super::{MemoryFile, MmError};

/// How pages of a private VMA with `perms` that other owners share are mapped: never
/// writable, but readable when the VMA is writable (x86 write implies read, and a
/// PROT_NONE mapping of a write-only VMA would fault forever as a "read").
pub(super) fn cow_perms(perms: Perms) -> Perms {
    Perms { read: perms.read || perms.write, write: false, exec: perms.exec }
}

/// Maps the realised `run` (inside `vma`) into `as_`. Pages of a private, writable VMA
/// that have other owners are mapped read-only so the first write faults and copies them;
/// when the run mixes such pages with exclusive ones only the part inside `window` is
/// mapped (one platform call per piece).
pub(super) fn map_run(
    mf: &MemoryFile,
    as_: &dyn AddressSpace,
    vma: &Vma,
    run: Pma,
    window: (u64, u64),
) -> Result<(), MmError> {
    let len = run.end - run.start;
    if vma.shared || !vma.perms.write {
        as_.map(run.start, len, run.offset, vma.perms)?;
        return Ok(());
    }
    let shared = mf.shared_ranges(run.offset, len);
    if shared.is_empty() {
        as_.map(run.start, len, run.offset, vma.perms)?;
        return Ok(());
    }
    let (s, e) = (run.start.max(window.0), run.end.min(window.1));
    let ro = cow_perms(vma.perms);
    let mut cur = s;
    for (fs, fe) in shared {
        let gs = (run.start + (fs - run.offset)).max(s);
        let ge = (run.start + (fe - run.offset)).min(e);
        if gs >= ge {
            continue;
        }
        if cur < gs {
            as_.map(cur, gs - cur, run.offset_of(cur), vma.perms)?;
        }
        as_.map(gs, ge - gs, run.offset_of(gs), ro)?;
        cur = ge;
    }
    if cur < e {
        as_.map(cur, e - cur, run.offset_of(cur), vma.perms)?;
    }
    Ok(())
}

/// Gives this address space its own copy of every page in `[start, end)` (page-aligned,
/// inside the private VMA `vma`) that is realised and has other owners: each such piece is
/// copied into fresh pages, which replace it in `pmas` and are mapped into `as_` with the
/// VMA's permissions (replacing a read-only mapping of the shared page). Exclusive pages
/// are left alone: writing them in place is what "taking over" a page means. Returns
/// whether anything was copied.
pub(super) fn break_cow(
    mf: &MemoryFile,
    pmas: &mut PmaSet,
    as_: &dyn AddressSpace,
    vma: &Vma,
    start: u64,
    end: u64,
) -> Result<bool, MmError> {
    debug_assert!(!vma.shared);
    let mut pieces = Vec::new();
    for run in pmas.runs_in(start, end) {
        for (fs, fe) in mf.shared_ranges(run.offset, run.end - run.start) {
            pieces.push((run.start + (fs - run.offset), fe - fs, fs));
        }
    }
    for &(addr, len, old) in &pieces {
        let new = mf.allocate(len)?;
        if let Err(e) = mf.copy(old, new, len) {
            mf.release(new, len);
            return Err(e);
        }
        // The address space must stop mapping the old pages before this address space's
        // reference to them goes: map the copy over them, or at least unmap them.
        let mapped = as_.map(addr, len, new, vma.perms);
        let old_unmapped = mapped.is_ok() || as_.unmap(addr, len).is_ok();
        pmas.remove_range(addr, addr + len, |_, _| {});
        pmas.insert(addr, addr + len, new);
        if old_unmapped {
            mf.release(old, len);
        } else {
            tracing::error!(addr, len, "copy-on-write: unmapping the shared page failed; leaking it");
        }
        mapped?;
    }
    Ok(!pieces.is_empty())
}
