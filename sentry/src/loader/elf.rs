//! ELF64 parsing and mapping. The file is hostile: every field is bounds-checked before
//! use and no arithmetic on it may overflow.

use std::sync::Arc;

use rvisor_platform::Perms;
use rvisor_syscalls::flags::limits::PATH_MAX;
use rvisor_syscalls::Errno;

use super::LoadError;
use crate::mm::{page_down, page_up, Backing, FileSource, MapRequest, MemoryManager, Placement, PAGE_SIZE};

pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const EM_X86_64: u16 = 62;
pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// Size of the ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header.
pub const PHDR_SIZE: usize = 56;
/// Linux reads at most this many bytes of program headers (ELF_MIN_ALIGN).
const MAX_PHDRS_BYTES: usize = 4096;

/// One program header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramHeader {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

impl ProgramHeader {
    /// Mapping permissions of a PT_LOAD.
    pub fn perms(&self) -> Perms {
        Perms { read: self.p_flags & PF_R != 0, write: self.p_flags & PF_W != 0, exec: self.p_flags & PF_X != 0 }
    }
}

/// A validated ELF executable or shared object.
#[derive(Clone, Debug)]
pub struct Elf {
    pub e_type: u16,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u16,
    pub phdrs: Vec<ProgramHeader>,
    /// PT_INTERP path without its NUL.
    pub interp: Option<Vec<u8>>,
    /// PT_GNU_STACK asks for an executable stack (parsed; ignored like x86_64 Linux does
    /// for 64-bit programs by default).
    pub exec_stack: bool,
    /// Lowest page of any PT_LOAD and end of the highest (link-time addresses).
    pub lo: u64,
    pub hi: u64,
    /// Largest PT_LOAD p_align (≥ PAGE_SIZE).
    pub max_align: u64,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Reads exactly `buf.len()` bytes at `offset`; a short file is `short`.
pub fn read_exact(file: &dyn FileSource, offset: u64, buf: &mut [u8], short: LoadError) -> Result<(), LoadError> {
    let mut done = 0;
    while done < buf.len() {
        let pos = offset.checked_add(done as u64).ok_or(LoadError::BadFormat("offset overflows"))?;
        let n = file.read_at(pos, &mut buf[done..]).map_err(LoadError::Io)?;
        if n == 0 {
            return Err(short);
        }
        done += n.min(buf.len() - done);
    }
    Ok(())
}

/// Parses and validates the headers of `file`. `max_addr` bounds the addresses of an
/// ET_EXEC (an ET_DYN is checked once it is placed).
pub fn parse(file: &dyn FileSource, max_addr: u64) -> Result<Elf, LoadError> {
    let size = file.size().map_err(LoadError::Io)?;
    let mut eh = [0u8; EHDR_SIZE];
    read_exact(file, 0, &mut eh, LoadError::BadFormat("truncated ELF header"))?;
    if eh[..4] != *b"\x7fELF" {
        return Err(LoadError::BadFormat("no ELF magic"));
    }
    if eh[4] != 2 {
        return Err(LoadError::BadFormat("not ELFCLASS64"));
    }
    if eh[5] != 1 {
        return Err(LoadError::BadFormat("not little-endian"));
    }
    let e_type = u16_at(&eh, 16);
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Err(LoadError::BadFormat("not ET_EXEC or ET_DYN"));
    }
    if u16_at(&eh, 18) != EM_X86_64 {
        return Err(LoadError::BadFormat("not EM_X86_64"));
    }
    let entry = u64_at(&eh, 24);
    let phoff = u64_at(&eh, 32);
    let phentsize = u16_at(&eh, 54) as usize;
    let phnum = u16_at(&eh, 56);
    if phentsize != PHDR_SIZE {
        return Err(LoadError::BadFormat("bad e_phentsize"));
    }
    let ph_bytes = phnum as usize * PHDR_SIZE;
    if ph_bytes == 0 || ph_bytes > MAX_PHDRS_BYTES {
        return Err(LoadError::BadFormat("bad e_phnum"));
    }
    match phoff.checked_add(ph_bytes as u64) {
        Some(end) if end <= size => {}
        _ => return Err(LoadError::BadFormat("program headers beyond end of file")),
    }
    let mut raw = vec![0u8; ph_bytes];
    read_exact(file, phoff, &mut raw, LoadError::BadFormat("program headers beyond end of file"))?;

    let mut phdrs = Vec::with_capacity(phnum as usize);
    for chunk in raw.chunks_exact(PHDR_SIZE) {
        phdrs.push(ProgramHeader {
            p_type: u32_at(chunk, 0),
            p_flags: u32_at(chunk, 4),
            p_offset: u64_at(chunk, 8),
            p_vaddr: u64_at(chunk, 16),
            p_filesz: u64_at(chunk, 32),
            p_memsz: u64_at(chunk, 40),
            p_align: u64_at(chunk, 48),
        });
    }

    let mut interp = None;
    let mut exec_stack = false;
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    let mut prev_end = 0u64;
    let mut max_align = PAGE_SIZE;
    let mut loads = 0;
    for (index, ph) in phdrs.iter().enumerate() {
        match ph.p_type {
            PT_LOAD => {
                let bad = |what| LoadError::BadSegment { index, what };
                if ph.p_filesz > ph.p_memsz {
                    return Err(bad("p_filesz > p_memsz"));
                }
                match ph.p_offset.checked_add(ph.p_filesz) {
                    Some(end) if end <= size => {}
                    _ => return Err(bad("file range beyond end of file")),
                }
                if ph.p_align > 1 && !ph.p_align.is_power_of_two() {
                    return Err(bad("p_align not a power of two"));
                }
                if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
                    return Err(bad("p_vaddr and p_offset not congruent modulo the page size"));
                }
                let end = ph
                    .p_vaddr
                    .checked_add(ph.p_memsz)
                    .and_then(page_up)
                    .ok_or(bad("address range overflows"))?;
                if ph.p_vaddr < prev_end {
                    return Err(bad("PT_LOAD segments overlap or are out of order"));
                }
                prev_end = ph.p_vaddr + ph.p_memsz;
                if e_type == ET_EXEC && end > max_addr {
                    return Err(LoadError::SegmentOutOfRange { index });
                }
                lo = lo.min(page_down(ph.p_vaddr));
                hi = hi.max(end);
                max_align = max_align.max(ph.p_align);
                loads += 1;
            }
            PT_INTERP if interp.is_none() => {
                if ph.p_filesz < 2 || ph.p_filesz > PATH_MAX as u64 {
                    return Err(LoadError::BadFormat("bad PT_INTERP size"));
                }
                match ph.p_offset.checked_add(ph.p_filesz) {
                    Some(end) if end <= size => {}
                    _ => return Err(LoadError::BadFormat("PT_INTERP beyond end of file")),
                }
                let mut path = vec![0u8; ph.p_filesz as usize];
                read_exact(file, ph.p_offset, &mut path, LoadError::BadFormat("PT_INTERP beyond end of file"))?;
                if path.last() != Some(&0) {
                    return Err(LoadError::BadFormat("PT_INTERP not NUL-terminated"));
                }
                let nul = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                path.truncate(nul);
                interp = Some(path);
            }
            PT_GNU_STACK => exec_stack = ph.p_flags & PF_X != 0,
            _ => {}
        }
    }
    if loads == 0 {
        return Err(LoadError::BadFormat("no PT_LOAD segment"));
    }
    if hi - lo > max_addr {
        return Err(LoadError::BadFormat("image larger than the address space"));
    }
    Ok(Elf { e_type, entry, phoff, phnum, phdrs, interp, exec_stack, lo, hi, max_align })
}

/// Where an image went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Added to every link-time address.
    pub bias: u64,
    /// Entry point in memory.
    pub entry: u64,
    /// Address of the program headers in memory (0 if they are not loaded).
    pub phdr: u64,
    /// End of the highest segment in memory (start of the heap before rounding).
    pub end: u64,
}

/// Maps the PT_LOAD segments of `elf` with `bias` added to their addresses (which must
/// all lie in `[MMAP_MIN_ADDR, max_addr)` after adding it), like Linux's `elf_load`.
pub fn map_segments(mm: &MemoryManager, file: &Arc<dyn FileSource>, elf: &Elf, bias: u64) -> Result<Placed, LoadError> {
    let max = mm.max_addr();
    let mut end_max = 0;
    for (index, ph) in elf.phdrs.iter().enumerate() {
        if ph.p_type != PT_LOAD {
            continue;
        }
        let out = || LoadError::SegmentOutOfRange { index };
        let vaddr = ph.p_vaddr.checked_add(bias).ok_or_else(out)?;
        let vend = vaddr.checked_add(ph.p_memsz).filter(|&e| e <= max).ok_or_else(out)?;
        let page = page_down(vaddr);
        let page_off = vaddr - page;
        let perms = ph.perms();
        let mut zero_start = page;
        if ph.p_filesz > 0 {
            let file_end = vaddr + ph.p_filesz;
            // The file offset of `page`; congruence was checked by `parse`.
            let offset = ph.p_offset - page_off;
            let len = page_up(file_end).ok_or_else(out)? - page;
            mm.map(MapRequest {
                backing: Backing::File { source: file.clone(), offset },
                ..MapRequest::anonymous(page, len, perms, Placement::Fixed)
            })
            .map_err(LoadError::Map)?;
            zero_start = file_end;
            if ph.p_memsz > ph.p_filesz {
                // Zero the rest of the last file page; ignored if it is not writable.
                let tail = page_up(file_end).ok_or_else(out)? - file_end;
                if let Err(e) = mm.zero(file_end, tail) {
                    if perms.write {
                        return Err(LoadError::Map(e));
                    }
                }
            }
        }
        if ph.p_memsz > ph.p_filesz {
            // bss: anonymous zero pages, writable like Linux's vm_brk_flags.
            let zs = page_up(zero_start).ok_or_else(out)?;
            let ze = page_up(vend).ok_or_else(out)?;
            if ze > zs {
                let bss_perms = Perms { read: true, write: true, exec: perms.exec };
                mm.map(MapRequest::anonymous(zs, ze - zs, bss_perms, Placement::Fixed)).map_err(LoadError::Map)?;
            }
        }
        end_max = end_max.max(vend);
    }
    let entry = elf.entry.checked_add(bias).filter(|&e| e < max).ok_or(LoadError::BadFormat("entry point out of range"))?;
    Ok(Placed { bias, entry, phdr: phdr_address(elf, bias), end: end_max })
}

/// AT_PHDR: PT_PHDR if present, else computed from the PT_LOAD whose file range holds
/// the program headers (Linux ≥ 5.18), else 0.
fn phdr_address(elf: &Elf, bias: u64) -> u64 {
    if let Some(ph) = elf.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        return ph.p_vaddr.wrapping_add(bias);
    }
    elf.phdrs
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.p_offset <= elf.phoff && elf.phoff - p.p_offset < p.p_filesz)
        .map_or(0, |p| (elf.phoff - p.p_offset).wrapping_add(p.p_vaddr).wrapping_add(bias))
}

/// Reserves `elf`'s whole span (aligned to its largest p_align) where mmap would put it
/// and returns the bias that loads it there (the interpreter's placement in Linux).
pub fn choose_mmap_bias(mm: &MemoryManager, elf: &Elf) -> Result<u64, LoadError> {
    let span = elf.hi - elf.lo;
    let align = elf.max_align.min(1 << 30);
    let reserve_len = span.checked_add(align - PAGE_SIZE).ok_or(LoadError::Map(Errno::ENOMEM))?;
    let at = mm
        .map(MapRequest::anonymous(0, reserve_len, Perms::NONE, Placement::Hint))
        .map_err(LoadError::Map)?;
    mm.munmap(at, reserve_len).map_err(LoadError::Map)?;
    let start = at.checked_add(align - 1).ok_or(LoadError::Map(Errno::ENOMEM))? & !(align - 1);
    Ok(start.wrapping_sub(elf.lo))
}
