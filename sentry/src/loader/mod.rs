//! Loading executables into a fresh address space: ELF64 static and dynamic executables
//! (with their PT_INTERP), PIE, the initial stack, and `#!` script parsing.
//!
//! The caller (execve) creates a new [`MemoryManager`], calls [`load`], and starts the
//! task with `rip = entry`, `rsp = stack_pointer`, every other register zero (`rdx = 0`:
//! no atexit function for the program).

pub mod elf;
pub mod stack;

use std::sync::Arc;

use rvisor_syscalls::Errno;

use crate::mm::{layout, page_up, FileSource, MemoryManager};

/// Errors from loading an executable into a new address space.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a loadable ELF64 x86_64 executable: {0}")]
    BadFormat(&'static str),
    #[error("program header {index} is malformed: {what}")]
    BadSegment { index: usize, what: &'static str },
    #[error("segment {index} lies outside the address space")]
    SegmentOutOfRange { index: usize },
    #[error("bad ELF interpreter: {0}")]
    BadInterpreter(Box<LoadError>),
    #[error("opening the ELF interpreter failed: {0}")]
    OpenInterpreter(Errno),
    #[error("reading the executable failed: {0}")]
    Io(Errno),
    #[error("argument list too long")]
    ArgsTooLong,
    #[error("mapping the image failed: {0}")]
    Map(Errno),
    #[error("writing the initial stack failed: {0}")]
    Stack(Errno),
}

impl LoadError {
    /// The errno execve returns.
    pub fn errno(&self) -> Errno {
        match self {
            LoadError::BadFormat(_) | LoadError::BadSegment { .. } => Errno::ENOEXEC,
            // Linux: a segment beyond TASK_SIZE or an entry point out of range is EINVAL.
            LoadError::SegmentOutOfRange { .. } => Errno::EINVAL,
            LoadError::BadInterpreter(inner) => match **inner {
                LoadError::BadFormat(_) => Errno::ELIBBAD,
                ref other => other.errno(),
            },
            LoadError::OpenInterpreter(e) => *e,
            LoadError::Io(e) => {
                if *e == Errno::EACCES || *e == Errno::ENOMEM {
                    *e
                } else {
                    Errno::EIO
                }
            }
            LoadError::ArgsTooLong => Errno::E2BIG,
            LoadError::Map(e) | LoadError::Stack(e) => *e,
        }
    }
}

/// What execve passes to the new program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecArgs {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The path given to execve (AT_EXECFN).
    pub execfn: Vec<u8>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// AT_SECURE (setuid/setgid or capability gain).
    pub secure: bool,
}

/// The result of loading: where the task starts, and what the kernel keeps about the
/// image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// Initial rip: the interpreter's entry if there is one, else the executable's.
    pub entry: u64,
    /// Initial rsp (16-byte aligned, pointing at argc).
    pub stack_pointer: u64,
    /// AT_PHDR / AT_PHNUM of the executable.
    pub phdr: u64,
    pub phnum: u64,
    /// AT_BASE: load address of the interpreter, or 0.
    pub base: u64,
    /// Start of the heap (already set in the memory manager).
    pub brk_base: u64,
    /// The auxiliary vector as written to the stack (for /proc/pid/auxv), without AT_NULL.
    pub auxv: Vec<(u64, u64)>,
    /// Where the argv and envp strings lie (for /proc/pid/cmdline and environ).
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// Opens the PT_INTERP path (as written in the executable, without the NUL) and returns
/// the interpreter file.
pub type OpenInterp<'a> = dyn FnMut(&[u8]) -> Result<Arc<dyn FileSource>, Errno> + 'a;

/// Loads the ELF executable `exe` (and its PT_INTERP, opened through `open_interp`) into
/// the empty address space `mm`, sets its heap start, and builds the initial stack.
/// Format, argument-size and interpreter errors are found before anything is mapped; on a
/// later error `mm` is left partly populated and should be dropped.
pub fn load(
    mm: &MemoryManager,
    exe: Arc<dyn FileSource>,
    args: &ExecArgs,
    open_interp: &mut OpenInterp<'_>,
) -> Result<LoadedImage, LoadError> {
    let max = mm.max_addr();
    let aslr = mm.aslr();
    let image = elf::parse(exe.as_ref(), max)?;
    // Check the argument sizes and the interpreter before mapping anything.
    stack::check_args(args, mm.stack_limit())?;
    let interp = match &image.interp {
        Some(path) => {
            let file = open_interp(path).map_err(LoadError::OpenInterpreter)?;
            let ielf = elf::parse(file.as_ref(), max).map_err(|e| LoadError::BadInterpreter(Box::new(e)))?;
            Some((file, ielf))
        }
        None => None,
    };

    let bias = if image.e_type == elf::ET_DYN {
        let base = layout::et_dyn_base(max, aslr, image.max_align.min(1 << 30));
        base.saturating_sub(image.lo)
    } else {
        0
    };
    let placed = elf::map_segments(mm, &exe, &image, bias)?;

    let (entry, base) = match &interp {
        Some((file, ielf)) => {
            let ibias = if ielf.e_type == elf::ET_DYN { elf::choose_mmap_bias(mm, ielf)? } else { 0 };
            let ip = elf::map_segments(mm, file, ielf, ibias).map_err(|e| LoadError::BadInterpreter(Box::new(e)))?;
            (ip.entry, ip.bias)
        }
        None => (placed.entry, 0),
    };

    let brk_rnd = if aslr { layout::random_below(layout::BRK_RANDOM_MAX) } else { 0 };
    let brk_base = page_up(placed.end)
        .and_then(|b| b.checked_add(brk_rnd))
        .filter(|&b| b < max)
        .ok_or(LoadError::SegmentOutOfRange { index: 0 })?;
    mm.set_brk_base(brk_base);

    let aux = stack::AuxInputs {
        phdr: placed.phdr,
        phnum: image.phnum as u64,
        base,
        entry: placed.entry,
    };
    let st = stack::setup(mm, args, &aux)?;
    Ok(LoadedImage {
        entry,
        stack_pointer: st.sp,
        phdr: placed.phdr,
        phnum: image.phnum as u64,
        base,
        brk_base,
        auxv: st.auxv,
        arg_start: st.arg_start,
        arg_end: st.arg_end,
        env_start: st.env_start,
        env_end: st.env_end,
    })
}

/// Linux's BINPRM_BUF_SIZE: how much of a file's start execve looks at.
pub const BINPRM_BUF_SIZE: usize = 256;

/// Parses a `#!` line like Linux's binfmt_script: `head` is the start of the file (only
/// the first [`BINPRM_BUF_SIZE`] bytes count). Returns the interpreter path and the
/// optional single argument (everything after the path up to the end of the line, minus
/// surrounding spaces/tabs; it may contain spaces), or None if this is not a script or the
/// line is unusable (Linux: ENOEXEC).
pub fn parse_shebang(head: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let mut buf = [0u8; BINPRM_BUF_SIZE];
    let n = head.len().min(BINPRM_BUF_SIZE);
    buf[..n].copy_from_slice(&head[..n]);
    if buf[0] != b'#' || buf[1] != b'!' {
        return None;
    }
    let spacetab = |c: u8| c == b' ' || c == b'\t';
    let non_spacetab = |from: usize, to: usize| (from..to).find(|&i| !spacetab(buf[i]));
    let terminator = |from: usize, to: usize| (from..to).find(|&i| spacetab(buf[i]) || buf[i] == 0);
    let buf_end = BINPRM_BUF_SIZE - 1;
    let mut i_end = match buf.iter().position(|&c| c == b'\n') {
        Some(i) => i,
        None => {
            // No newline: only go on if the interpreter path is not truncated.
            let first = non_spacetab(2, buf_end)?;
            terminator(first, buf_end)?;
            buf_end
        }
    };
    while i_end > 2 && spacetab(buf[i_end - 1]) {
        i_end -= 1;
    }
    let i_name = non_spacetab(2, i_end)?;
    let i_sep = terminator(i_name, i_end);
    let i_arg = match i_sep {
        Some(s) if buf[s] != 0 => non_spacetab(s, i_end),
        _ => None,
    };
    // Both strings end at a NUL too, as the kernel copies them as C strings.
    let cstr = |from: usize, to: usize| {
        let s = &buf[from..to];
        s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())].to_vec()
    };
    let name = cstr(i_name, i_sep.unwrap_or(i_end));
    let arg = i_arg.map(|a| cstr(a, i_end));
    Some((name, arg))
}

#[cfg(test)]
mod tests;
