//! Loader tests: ELF images built in memory, corrupt images, the initial stack, a real
//! binary when the host has one, and `#!` parsing.

use std::collections::HashMap;
use std::sync::Arc;

use rvisor_platform::Perms;
use rvisor_syscalls::flags::auxv::*;
use rvisor_syscalls::Errno;

use super::elf::{EM_X86_64, ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR};
use super::*;
use crate::mm::testutil::{new_mm, MemFile, MAX_ADDR};
use crate::mm::{MemoryManager, PAGE_SIZE};

/// One PT_LOAD of a test image: link-time address offset from the image base, flags,
/// file contents and memory size.
struct Seg {
    vaddr: u64,
    flags: u32,
    data: Vec<u8>,
    memsz: u64,
}

/// Builds an ELF64 image whose first PT_LOAD (at `base`, file offset 0) holds the headers
/// and the PT_INTERP string, followed by `segs`, then a page of 0xAA filler (so bytes past
/// a segment's p_filesz are not zero in the file).
fn build_elf(e_type: u16, base: u64, entry: u64, segs: &[Seg], interp: Option<&[u8]>, pt_phdr: bool) -> Vec<u8> {
    let nph = 1 + segs.len() + pt_phdr as usize + interp.is_some() as usize + 1;
    let ph_end = 64 + nph * 56;
    let interp_off = ph_end;
    let hdr_len = ph_end + interp.map_or(0, |i| i.len() + 1);
    let mut f = vec![0u8; hdr_len];
    if let Some(i) = interp {
        f[interp_off..interp_off + i.len()].copy_from_slice(i);
    }
    let mut phdrs: Vec<[u64; 7]> = vec![]; // type|flags<<32, offset, vaddr, paddr, filesz, memsz, align
    let mut ph = |t: u32, fl: u32, off: u64, va: u64, fs: u64, ms: u64, al: u64| {
        phdrs.push([t as u64 | (fl as u64) << 32, off, va, va, fs, ms, al]);
    };
    if pt_phdr {
        ph(PT_PHDR, PF_R, 64, base + 64, (nph * 56) as u64, (nph * 56) as u64, 8);
    }
    if let Some(i) = interp {
        ph(PT_INTERP, PF_R, interp_off as u64, base + interp_off as u64, i.len() as u64 + 1, i.len() as u64 + 1, 1);
    }
    ph(PT_LOAD, PF_R, 0, base, hdr_len as u64, hdr_len as u64, PAGE_SIZE);
    let mut offs = vec![];
    for s in segs {
        let cur = f.len() as u64;
        let off = ((cur + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)) + s.vaddr % PAGE_SIZE;
        f.resize(off as usize, 0);
        f.extend_from_slice(&s.data);
        offs.push(off);
    }
    for (s, off) in segs.iter().zip(offs) {
        ph(PT_LOAD, s.flags, off, base + s.vaddr, s.data.len() as u64, s.memsz, PAGE_SIZE);
    }
    ph(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16);
    f.extend(std::iter::repeat_n(0xAA, PAGE_SIZE as usize));
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    f[16..18].copy_from_slice(&e_type.to_le_bytes());
    f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&(base + entry).to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&(nph as u16).to_le_bytes());
    for (i, p) in phdrs.iter().enumerate() {
        let at = 64 + i * 56;
        f[at..at + 4].copy_from_slice(&(p[0] as u32).to_le_bytes());
        f[at + 4..at + 8].copy_from_slice(&((p[0] >> 32) as u32).to_le_bytes());
        for (j, v) in p[1..].iter().enumerate() {
            f[at + 8 + j * 8..at + 16 + j * 8].copy_from_slice(&v.to_le_bytes());
        }
    }
    f
}

fn static_exec() -> Vec<u8> {
    let code = vec![0x90u8; 0x80];
    build_elf(ET_EXEC, 0x40_0000, 0x1000, &[Seg { vaddr: 0x1000, flags: PF_R | PF_X, data: code, memsz: 0x80 }], None, false)
}

/// An ET_DYN with text and a data segment that straddles a page and has a 8 KiB bss.
fn pie(interp: Option<&[u8]>) -> Vec<u8> {
    build_elf(
        ET_DYN,
        0,
        0x1010,
        &[
            Seg { vaddr: 0x1000, flags: PF_R | PF_X, data: vec![0xC3; 0x80], memsz: 0x80 },
            Seg { vaddr: 0x2ff0, flags: PF_R | PF_W, data: (1..=0x20).collect(), memsz: 0x2000 },
        ],
        interp,
        true,
    )
}

fn args() -> ExecArgs {
    ExecArgs {
        argv: vec![b"prog".to_vec(), b"arg one".to_vec(), b"".to_vec()],
        envp: vec![b"A=1".to_vec(), b"PATH=/bin".to_vec()],
        execfn: b"/usr/bin/prog".to_vec(),
        uid: 1000,
        euid: 1001,
        gid: 100,
        egid: 101,
        secure: false,
    }
}

fn no_interp(_: &[u8]) -> Result<Arc<dyn FileSource>, Errno> {
    Err(Errno::ENOENT)
}

fn load_bytes(mm: &MemoryManager, bytes: Vec<u8>) -> Result<LoadedImage, LoadError> {
    load(mm, Arc::new(MemFile(bytes)), &args(), &mut no_interp)
}

fn mm_no_aslr() -> MemoryManager {
    let (mm, _, _) = new_mm();
    mm.set_aslr(false);
    mm
}

fn read_u64(mm: &MemoryManager, addr: u64) -> u64 {
    mm.read_obj::<u64>(addr).unwrap()
}

fn vmas(mm: &MemoryManager) -> Vec<(u64, u64, Perms, Option<String>)> {
    mm.vmas_snapshot().into_iter().map(|v| (v.start, v.end, v.perms, v.name.map(|n| n.to_string()))).collect()
}

/// argv, envp and auxv as found on a stack.
type StackContents = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<(u64, u64)>);

/// Parses the initial stack at `sp`: argc, argv, envp and auxv.
fn parse_stack(mm: &MemoryManager, sp: u64) -> StackContents {
    let argc = read_u64(mm, sp);
    let mut p = sp + 8;
    let mut argv = vec![];
    for _ in 0..argc {
        argv.push(mm.copy_in_cstring(read_u64(mm, p), 1 << 17).unwrap());
        p += 8;
    }
    assert_eq!(read_u64(mm, p), 0, "argv is NULL-terminated");
    p += 8;
    let mut envp = vec![];
    loop {
        let e = read_u64(mm, p);
        p += 8;
        if e == 0 {
            break;
        }
        envp.push(mm.copy_in_cstring(e, 1 << 17).unwrap());
    }
    let mut auxv = vec![];
    loop {
        let (k, v) = (read_u64(mm, p), read_u64(mm, p + 8));
        p += 16;
        if k == AT_NULL {
            break;
        }
        auxv.push((k, v));
    }
    (argv, envp, auxv)
}

#[test]
fn static_exec_is_loaded_at_its_addresses() {
    let mm = mm_no_aslr();
    let img = load_bytes(&mm, static_exec()).unwrap();
    assert_eq!(img.entry, 0x40_1000);
    assert_eq!(img.phdr, 0x40_0040, "computed from the PT_LOAD holding e_phoff");
    assert_eq!(img.phnum, 3);
    assert_eq!(img.base, 0);
    assert_eq!(img.brk_base, 0x40_2000);
    let v = vmas(&mm);
    assert_eq!(v[0], (0x40_0000, 0x40_1000, Perms::R, None));
    assert_eq!(v[1], (0x40_1000, 0x40_2000, Perms::RX, None));
    let stack = v.last().unwrap();
    assert_eq!(stack.3.as_deref(), Some("[stack]"));
    assert_eq!(stack.1, MAX_ADDR);
    assert!(mm.vmas_snapshot().last().unwrap().growsdown);
    let mut code = [0u8; 4];
    mm.copy_in(img.entry, &mut code).unwrap();
    assert_eq!(code, [0x90; 4]);
    assert_eq!(mm.brk(0), 0x40_2000);
}

#[test]
fn pie_with_bss_is_loaded_near_elf_et_dyn_base() {
    let mm = mm_no_aslr();
    let img = load_bytes(&mm, pie(None)).unwrap();
    let base = 0x5555_5555_4000;
    assert_eq!(img.entry, base + 0x1010);
    assert_eq!(img.phdr, base + 64, "from PT_PHDR");
    assert_eq!(img.brk_base, base + 0x5000);
    let v = vmas(&mm);
    assert_eq!(
        v[..3],
        [
            (base, base + 0x1000, Perms::R, None),
            (base + 0x1000, base + 0x2000, Perms::RX, None),
            (base + 0x2000, base + 0x4000, Perms::RW, None),
        ]
    );
    assert_eq!(v[3], (base + 0x4000, base + 0x5000, Perms::RW, None), "bss beyond the file pages");
    assert_eq!(v[4].3.as_deref(), Some("[stack]"));
    assert_eq!(v.len(), 5);
    // File data, then zeros to the end of the last file page (the file has 0xAA there),
    // then the anonymous bss.
    let mut data = vec![0u8; 0x3000];
    mm.copy_in(base + 0x2000, &mut data).unwrap();
    assert!(data[..0xff0].iter().all(|&b| b == 0));
    assert_eq!(&data[0xff0..0x1010], &(1..=0x20).collect::<Vec<u8>>()[..]);
    assert!(data[0x1010..].iter().all(|&b| b == 0), "bss and the tail of the file page are zero");
    let sp = img.stack_pointer;
    let (_, _, auxv) = parse_stack(&mm, sp);
    let aux: HashMap<u64, u64> = auxv.into_iter().collect();
    assert_eq!(aux[&AT_ENTRY], base + 0x1010);
    assert_eq!(aux[&AT_BASE], 0);
}

#[test]
fn aslr_randomises_pie_stack_and_brk() {
    let (mm1, _, _) = new_mm();
    let (mm2, _, _) = new_mm();
    mm1.set_aslr(true);
    mm2.set_aslr(true);
    let a = load_bytes(&mm1, pie(None)).unwrap();
    let b = load_bytes(&mm2, pie(None)).unwrap();
    assert_ne!((a.entry, a.stack_pointer, a.brk_base), (b.entry, b.stack_pointer, b.brk_base));
    for img in [&a, &b] {
        assert_eq!((img.entry - 0x1010) % PAGE_SIZE, 0);
        assert!(img.entry > 0x5555_0000_0000 && img.entry < 0x5655_6000_0000);
        assert!(img.brk_base >= img.entry - 0x1010 + 0x5000);
        assert!(img.brk_base < img.entry + 0x5000 + (32 << 20));
        assert_eq!(img.stack_pointer % 16, 0);
        assert!(img.stack_pointer > MAX_ADDR - (16u64 << 30) - (1 << 20));
    }
}

#[test]
fn initial_stack_has_linux_layout() {
    let mm = mm_no_aslr();
    let img = load_bytes(&mm, static_exec()).unwrap();
    let sp = img.stack_pointer;
    assert_eq!(sp % 16, 0, "rsp is 16-byte aligned at entry");
    let (argv, envp, auxv) = parse_stack(&mm, sp);
    assert_eq!(argv, args().argv);
    assert_eq!(envp, args().envp);
    let keys: Vec<u64> = auxv.iter().map(|&(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            AT_MINSIGSTKSZ, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS, AT_ENTRY,
            AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_PLATFORM
        ]
    );
    assert_eq!(auxv, img.auxv);
    let aux: HashMap<u64, u64> = auxv.into_iter().collect();
    assert_eq!(aux[&AT_PAGESZ], 4096);
    assert_eq!(aux[&AT_CLKTCK], 100);
    assert_eq!(aux[&AT_PHDR], 0x40_0040);
    assert_eq!(aux[&AT_PHENT], 56);
    assert_eq!(aux[&AT_PHNUM], 3);
    assert_eq!(aux[&AT_ENTRY], 0x40_1000);
    assert_eq!((aux[&AT_UID], aux[&AT_EUID], aux[&AT_GID], aux[&AT_EGID]), (1000, 1001, 100, 101));
    assert_eq!(aux[&AT_SECURE], 0);
    assert!(aux[&AT_MINSIGSTKSZ] >= 2048);
    assert_eq!(aux[&AT_HWCAP2] & !2, 0);
    assert_ne!(aux[&AT_HWCAP], 0);
    // Strings: execfn at the very top (below 8 zero bytes), AT_PLATFORM, 16 random bytes.
    let execfn = aux[&AT_EXECFN];
    assert_eq!(execfn, MAX_ADDR - 8 - 14);
    assert_eq!(mm.copy_in_cstring(execfn, 4096).unwrap(), b"/usr/bin/prog");
    assert_eq!(read_u64(&mm, MAX_ADDR - 8), 0);
    assert_eq!(mm.copy_in_cstring(aux[&AT_PLATFORM], 16).unwrap(), b"x86_64");
    let random = aux[&AT_RANDOM];
    assert_eq!(random + 16, aux[&AT_PLATFORM]);
    let mut rnd = [0u8; 16];
    mm.copy_in(random, &mut rnd).unwrap();
    assert_ne!(rnd, [0; 16]);
    // argv strings are contiguous, argv[0] lowest, then envp, then execfn.
    assert_eq!((img.arg_start, img.env_end), (read_u64(&mm, sp + 8), execfn));
    let mut all = vec![0u8; (img.env_end - img.arg_start) as usize];
    mm.copy_in(img.arg_start, &mut all).unwrap();
    assert_eq!(all, b"prog\0arg one\0\0A=1\0PATH=/bin\0");
    assert_eq!(img.env_start - img.arg_start, 14);
}

#[test]
fn interpreter_is_loaded_in_the_mmap_area_and_gets_control() {
    let mm = mm_no_aslr();
    let ld = build_elf(
        ET_DYN,
        0,
        0x1234,
        &[Seg { vaddr: 0x1000, flags: PF_R | PF_X, data: vec![0xCC; 0x300], memsz: 0x300 }],
        None,
        false,
    );
    let mut opened = vec![];
    let mut open = |p: &[u8]| -> Result<Arc<dyn FileSource>, Errno> {
        opened.push(p.to_vec());
        Ok(Arc::new(MemFile(ld.clone())))
    };
    let img = load(&mm, Arc::new(MemFile(pie(Some(b"/lib/ld-test.so")))), &args(), &mut open).unwrap();
    assert_eq!(opened, [b"/lib/ld-test.so".to_vec()]);
    assert_ne!(img.base, 0);
    assert_eq!(img.base % PAGE_SIZE, 0);
    assert!(img.base + 0x2000 <= mm.mmap_base());
    assert_eq!(img.entry, img.base + 0x1234);
    let (_, _, auxv) = parse_stack(&mm, img.stack_pointer);
    let aux: HashMap<u64, u64> = auxv.into_iter().collect();
    assert_eq!(aux[&AT_BASE], img.base);
    assert_eq!(aux[&AT_ENTRY], 0x5555_5555_4000 + 0x1010);
    let mut b = [0u8; 1];
    mm.copy_in(img.entry, &mut b).unwrap();
    assert_eq!(b, [0xCC]);
    assert!(vmas(&mm).iter().any(|v| v.0 == img.base && v.2 == Perms::R));
}

#[test]
fn interpreter_errors_map_to_linux_errnos() {
    let mm = mm_no_aslr();
    let e = load(&mm, Arc::new(MemFile(pie(Some(b"/missing")))), &args(), &mut no_interp).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
    let mm = mm_no_aslr();
    let mut garbage = |_: &[u8]| -> Result<Arc<dyn FileSource>, Errno> { Ok(Arc::new(MemFile(b"#!/bin/sh\n".to_vec()))) };
    let e = load(&mm, Arc::new(MemFile(pie(Some(b"/lib/ld.so")))), &args(), &mut garbage).unwrap_err();
    assert_eq!(e.errno(), Errno::ELIBBAD);
    assert!(mm.vmas_snapshot().is_empty(), "nothing is mapped when the interpreter is bad");
}

/// Offset of field `f` of program header `i` in a `build_elf` image.
fn ph_field(i: usize, f: usize) -> usize {
    64 + i * 56 + f
}

#[test]
fn corrupt_images_are_enoexec_and_never_panic() {
    let good = static_exec();
    type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Corrupt, Errno)> = vec![
        ("empty file", Box::new(|f| f.clear()), Errno::ENOEXEC),
        ("truncated header", Box::new(|f| f.truncate(40)), Errno::ENOEXEC),
        ("bad magic", Box::new(|f| f[1] = b'X'), Errno::ENOEXEC),
        ("32-bit class", Box::new(|f| f[4] = 1), Errno::ENOEXEC),
        ("big endian", Box::new(|f| f[5] = 2), Errno::ENOEXEC),
        ("wrong machine", Box::new(|f| f[18] = 3), Errno::ENOEXEC),
        ("ET_REL", Box::new(|f| f[16] = 1), Errno::ENOEXEC),
        ("phentsize", Box::new(|f| f[54] = 32), Errno::ENOEXEC),
        ("phnum 0", Box::new(|f| f[56..58].copy_from_slice(&[0, 0])), Errno::ENOEXEC),
        ("phnum 0xffff", Box::new(|f| f[56..58].copy_from_slice(&[0xff, 0xff])), Errno::ENOEXEC),
        ("phoff out of range", Box::new(|f| f[32..40].copy_from_slice(&0x10_0000u64.to_le_bytes())), Errno::ENOEXEC),
        ("phoff overflow", Box::new(|f| f[32..40].copy_from_slice(&(u64::MAX - 8).to_le_bytes())), Errno::ENOEXEC),
        (
            "filesz > memsz",
            Box::new(|f| f[ph_field(1, 40)..ph_field(1, 48)].copy_from_slice(&0x10u64.to_le_bytes())),
            Errno::ENOEXEC,
        ),
        (
            "p_offset beyond the file",
            Box::new(|f| f[ph_field(1, 8)..ph_field(1, 16)].copy_from_slice(&0x10_0000u64.to_le_bytes())),
            Errno::ENOEXEC,
        ),
        (
            "p_offset + p_filesz overflows",
            Box::new(|f| f[ph_field(1, 8)..ph_field(1, 16)].copy_from_slice(&(!0xfffu64).to_le_bytes())),
            Errno::ENOEXEC,
        ),
        (
            "p_align not a power of two",
            Box::new(|f| f[ph_field(1, 48)..ph_field(1, 56)].copy_from_slice(&0x3000u64.to_le_bytes())),
            Errno::ENOEXEC,
        ),
        (
            "vaddr + memsz overflows",
            Box::new(|f| {
                f[ph_field(1, 16)..ph_field(1, 24)].copy_from_slice(&(!0xfffu64).to_le_bytes());
                f[ph_field(1, 40)..ph_field(1, 48)].copy_from_slice(&0x2000u64.to_le_bytes());
            }),
            Errno::ENOEXEC,
        ),
        (
            "unordered PT_LOADs",
            Box::new(|f| f[ph_field(1, 16)..ph_field(1, 24)].copy_from_slice(&0x3f_f000u64.to_le_bytes())),
            Errno::ENOEXEC,
        ),
        (
            "vaddr not congruent with offset",
            Box::new(|f| f[ph_field(1, 16)..ph_field(1, 24)].copy_from_slice(&0x40_1800u64.to_le_bytes())),
            Errno::ENOEXEC,
        ),
        (
            "segment beyond the address space",
            Box::new(|f| f[ph_field(1, 16)..ph_field(1, 24)].copy_from_slice(&0x7fff_ffff_f000u64.to_le_bytes())),
            Errno::EINVAL,
        ),
        (
            "no PT_LOAD",
            Box::new(|f| {
                f[ph_field(0, 0)] = 4;
                f[ph_field(1, 0)] = 4;
            }),
            Errno::ENOEXEC,
        ),
        (
            "entry out of range",
            Box::new(|f| f[24..32].copy_from_slice(&u64::MAX.to_le_bytes())),
            Errno::ENOEXEC,
        ),
    ];
    for (what, corrupt, errno) in cases {
        let mut f = good.clone();
        corrupt(&mut f);
        let mm = mm_no_aslr();
        match load_bytes(&mm, f) {
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => assert_eq!(e.errno(), errno, "{what}: {e}"),
        }
    }
    // PT_INTERP without NUL / absurd size.
    let mut f = pie(Some(b"/lib/ld.so"));
    let interp_ph = 1; // after PT_PHDR
    let off = u64::from_le_bytes(f[ph_field(interp_ph, 8)..ph_field(interp_ph, 16)].try_into().unwrap()) as usize;
    f[off + 10] = b'x';
    assert_eq!(load_bytes(&mm_no_aslr(), f.clone()).unwrap_err().errno(), Errno::ENOEXEC);
    f[ph_field(interp_ph, 32)..ph_field(interp_ph, 40)].copy_from_slice(&0x10_0000u64.to_le_bytes());
    assert_eq!(load_bytes(&mm_no_aslr(), f).unwrap_err().errno(), Errno::ENOEXEC);
}

#[test]
fn randomly_mutated_headers_never_panic() {
    let good = pie(Some(b"/lib/ld.so"));
    let hdr_len = 64 + 6 * 56;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..1000 {
        let mut f = good.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() % hdr_len as u64) as usize;
            f[at] = next() as u8;
        }
        if next() % 8 == 0 {
            f.truncate((next() % f.len() as u64) as usize);
        }
        let mm = mm_no_aslr();
        let ld = pie(None);
        let mut open = |_: &[u8]| -> Result<Arc<dyn FileSource>, Errno> { Ok(Arc::new(MemFile(ld.clone()))) };
        if let Err(e) = load(&mm, Arc::new(MemFile(f)), &args(), &mut open) {
            let _ = e.errno();
        }
    }
}

#[test]
fn oversized_arguments_are_e2big() {
    let mm = mm_no_aslr();
    let mut a = args();
    a.argv.push(vec![b'x'; 128 << 10]);
    let e = load(&mm, Arc::new(MemFile(static_exec())), &a, &mut no_interp).unwrap_err();
    assert_eq!(e.errno(), Errno::E2BIG);
    assert!(mm.vmas_snapshot().is_empty());
    let mut a = args();
    a.envp = (0..20).map(|_| vec![b'y'; 120 << 10]).collect();
    let e = load(&mm, Arc::new(MemFile(static_exec())), &a, &mut no_interp).unwrap_err();
    assert_eq!(e.errno(), Errno::E2BIG);
    // Just below the per-string limit, a large environment fits and the stack VMA grows
    // to hold it.
    let mut a = args();
    a.envp = (0..8).map(|_| vec![b'z'; (128 << 10) - 1]).collect();
    let img = load(&mm, Arc::new(MemFile(static_exec())), &a, &mut no_interp).unwrap();
    let (_, envp, _) = parse_stack(&mm, img.stack_pointer);
    assert_eq!(envp, a.envp);
}

/// A host file read with pread.
struct HostFile(std::fs::File);

impl FileSource for HostFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        use std::os::unix::fs::FileExt;
        self.0.read_at(buf, offset).map_err(|e| Errno(e.raw_os_error().unwrap_or(5)))
    }
    fn size(&self) -> Result<u64, Errno> {
        self.0.metadata().map(|m| m.len()).map_err(|e| Errno(e.raw_os_error().unwrap_or(5)))
    }
}

#[test]
fn loads_the_hosts_busybox() {
    let Ok(file) = std::fs::File::open("/bin/busybox") else {
        eprintln!("no /bin/busybox; skipped");
        return;
    };
    let bytes = std::fs::read("/bin/busybox").unwrap();
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let (e_type, e_entry, e_phoff, e_phnum) = (u16_at(16), u64_at(24), u64_at(32), u16_at(56));
    // What readelf -l shows: the PT_LOAD holding the program headers gives their address.
    let mut phdr = None;
    let mut interp = false;
    for i in 0..e_phnum as usize {
        let p = e_phoff as usize + i * 56;
        let t = u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
        let (off, va, fsz) = (u64_at(p + 8), u64_at(p + 16), u64_at(p + 32));
        interp |= t == PT_INTERP;
        if t == PT_LOAD && phdr.is_none() && off <= e_phoff && e_phoff < off + fsz {
            phdr = Some(e_phoff - off + va);
        }
    }
    let mm = mm_no_aslr();
    let ld: Option<Arc<dyn FileSource>> =
        std::fs::File::open("/lib64/ld-linux-x86-64.so.2").ok().map(|f| Arc::new(HostFile(f)) as Arc<dyn FileSource>);
    let mut open = |_: &[u8]| ld.clone().ok_or(Errno::ENOENT);
    let img = load(&mm, Arc::new(HostFile(file)), &args(), &mut open);
    if interp && ld.is_none() {
        assert_eq!(img.unwrap_err().errno(), Errno::ENOENT);
        return;
    }
    let img = img.unwrap();
    let bias = if e_type == ET_DYN { img.phdr - phdr.unwrap() } else { 0 };
    assert_eq!(img.phdr, phdr.unwrap() + bias);
    assert_eq!(img.phnum, e_phnum as u64);
    if !interp {
        assert_eq!(img.entry, e_entry + bias);
        // The code at the entry point is the file's.
        let mut code = [0u8; 16];
        mm.copy_in(img.entry, &mut code).unwrap();
        let mut ents = [0u8; 7];
        mm.copy_in(img.phdr, &mut ents).unwrap();
        assert_eq!(&ents[..4], &bytes[e_phoff as usize..e_phoff as usize + 4]);
        let text = (0..e_phnum as usize)
            .map(|i| e_phoff as usize + i * 56)
            .find(|&p| {
                let t = u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
                t == PT_LOAD && u64_at(p + 16) <= e_entry && e_entry < u64_at(p + 16) + u64_at(p + 32)
            })
            .unwrap();
        let file_off = (e_entry - u64_at(text + 16) + u64_at(text + 8)) as usize;
        assert_eq!(code, bytes[file_off..file_off + 16]);
    }
    let (argv, _, _) = parse_stack(&mm, img.stack_pointer);
    assert_eq!(argv, args().argv);
}

#[test]
fn shebang_lines_parse_like_linux() {
    let p = |s: &[u8]| parse_shebang(s);
    let owned = |a: &str, b: Option<&str>| Some((a.as_bytes().to_vec(), b.map(|b| b.as_bytes().to_vec())));
    assert_eq!(p(b"#!/bin/sh\necho hi\n"), owned("/bin/sh", None));
    assert_eq!(p(b"#! /usr/bin/env  python3 -u \t\nprint()\n"), owned("/usr/bin/env", Some("python3 -u")));
    assert_eq!(p(b"#!\t/bin/bash\t-e"), owned("/bin/bash", Some("-e")));
    assert_eq!(p(b"#!/bin/sh"), owned("/bin/sh", None));
    assert_eq!(p(b"#!/bin/sh \n"), owned("/bin/sh", None));
    assert_eq!(p(b"#!   \n"), None);
    // Linux execs the empty name (and open fails with ENOENT).
    assert_eq!(p(b"#!"), owned("", None));
    assert_eq!(p(b"\x7fELF"), None);
    assert_eq!(p(b"#"), None);
    assert_eq!(p(b""), None);
    // A path longer than the buffer would be truncated: refused.
    let mut long = b"#!/".to_vec();
    long.extend(std::iter::repeat_n(b'a', 300));
    assert_eq!(p(&long), None);
    // Long arguments are simply cut at the buffer's end.
    let mut long = b"#!/bin/sh ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 300));
    let (name, arg) = p(&long).unwrap();
    assert_eq!(name, b"/bin/sh");
    assert_eq!(arg.unwrap().len(), 255 - 10);
    // A newline beyond the first 256 bytes does not count.
    let mut late = b"#!/bin/sh x".to_vec();
    late.extend(std::iter::repeat_n(b' ', 300));
    late.push(b'\n');
    assert_eq!(p(&late), owned("/bin/sh", Some("x")));
}
