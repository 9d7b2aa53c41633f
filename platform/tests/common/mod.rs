//! Helpers shared by the ptrace platform integration tests.
#![allow(dead_code, unused_imports)]

pub use std::io::{BufRead, BufReader, Write};
pub use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
pub use std::sync::{Arc, Barrier};

pub use rvisor_platform::ptrace::{initial_regs, PtraceAddressSpace, PtracePlatform, STUB_ADDR};
pub use rvisor_platform::{
    AccessType, AddressSpace, Context, Event, FaultCode, Perms, Platform, PlatformError, Regs,
};

pub const CODE: u64 = 0x400000;
pub const STACK: u64 = 0x600000;
pub const DATA: u64 = 0x500000;
pub const CODE_OFF: u64 = 0;
pub const STACK_OFF: u64 = 0x1000;
pub const DATA_OFF: u64 = 0x2000;

/// A platform with a 1 MiB memory file, an address space with `code` mapped RX at
/// [`CODE`] and a RW stack page at [`STACK`], and a context.
pub struct Guest {
    pub memfd: OwnedFd,
    pub platform: PtracePlatform,
    pub space: Arc<dyn AddressSpace>,
    pub ctx: Box<dyn Context>,
    pub regs: Regs,
}

impl Guest {
    pub fn new(code: &[u8]) -> Guest {
        // SAFETY: memfd_create reads a NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"rvisor-test-mem".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor we own.
        let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate on our own fd.
        assert_eq!(unsafe { libc::ftruncate(memfd.as_raw_fd(), 1 << 20) }, 0);
        let platform = PtracePlatform::new(memfd.as_fd()).expect("platform");
        assert_eq!(platform.name(), "ptrace");
        assert_eq!(platform.max_user_address(), STUB_ADDR);
        let space = platform.new_address_space().expect("address space");
        let ctx = platform.new_context().expect("context");
        let g = Guest {
            memfd,
            platform,
            space,
            ctx,
            regs: initial_regs(CODE, STACK + 0x1000),
        };
        g.write(CODE_OFF, code);
        g.space
            .map(CODE, 0x1000, CODE_OFF, Perms::RX)
            .expect("map code");
        g.space
            .map(STACK, 0x1000, STACK_OFF, Perms::RW)
            .expect("map stack");
        g
    }

    pub fn write(&self, offset: u64, bytes: &[u8]) {
        // SAFETY: pwrite reads `bytes.len()` bytes from a live slice.
        let n = unsafe {
            libc::pwrite(
                self.memfd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                offset as i64,
            )
        };
        assert_eq!(n as usize, bytes.len());
    }

    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        // SAFETY: pread writes at most `len` bytes into a live buffer of that size.
        let n = unsafe {
            libc::pread(
                self.memfd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                len,
                offset as i64,
            )
        };
        assert_eq!(n as usize, len);
        buf
    }

    pub fn switch(&mut self) -> Event {
        self.ctx
            .switch(&self.space, &mut self.regs)
            .expect("switch")
    }

    pub fn stub_pid(&self) -> i32 {
        ptrace_space(&self.space).stub_pid()
    }

    /// The stub thread traced by the calling thread.
    pub fn stub_tid(&self) -> i32 {
        ptrace_space(&self.space)
            .current_stub_tid()
            .expect("the calling thread has a stub thread")
    }
}

pub fn ptrace_space(space: &Arc<dyn AddressSpace>) -> &PtraceAddressSpace {
    space
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .expect("ptrace address space")
}

// A few x86_64 instructions, encoded by hand.
pub fn mov_eax(imm: u32) -> Vec<u8> {
    [&[0xb8][..], &imm.to_le_bytes()].concat()
}
pub fn mov_edi(imm: u32) -> Vec<u8> {
    [&[0xbf][..], &imm.to_le_bytes()].concat()
}
pub fn mov_rax_imm64(imm: u64) -> Vec<u8> {
    [&[0x48, 0xb8][..], &imm.to_le_bytes()].concat()
}
pub const SYSCALL: [u8; 2] = [0x0f, 0x05];
pub const MOV_RDI_RAX: [u8; 3] = [0x48, 0x89, 0xc7];
pub const JMP_RAX: [u8; 2] = [0xff, 0xe0];
pub const JMP_SELF: [u8; 2] = [0xeb, 0xfe];
pub const UD2: [u8; 2] = [0x0f, 0x0b];

pub fn code(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `mov byte [DATA], 0x5a; mov eax, 39; syscall`
pub fn store_code() -> Vec<u8> {
    code(&[
        &[0xc6, 0x04, 0x25],
        &(DATA as u32).to_le_bytes(),
        &[0x5a],
        &mov_eax(39),
        &SYSCALL,
    ])
}

/// The state letter in /proc/<pid>/task/<tid>/stat ('R' running, 't' tracing stop, 'Z'
/// zombie, ...).
pub fn task_state(pid: i32, tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// The threads of process `pid`, sorted.
pub fn task_tids(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

/// Whether process `pid` is gone (reaped; a zombie still exists).
pub fn is_gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// `loop: mov eax, 39; syscall; jmp loop`
pub fn syscall_loop_code() -> Vec<u8> {
    code(&[&mov_eax(39), &SYSCALL, &[0xeb, 0xf7]])
}

/// `movq rdi, xmm0; movq xmm0, rsi; mov eax, 39; syscall`
pub fn swap_xmm0_code() -> Vec<u8> {
    code(&[
        &[0x66, 0x48, 0x0f, 0x7e, 0xc7],
        &[0x66, 0x48, 0x0f, 0x6e, 0xc6],
        &mov_eax(39),
        &SYSCALL,
    ])
}
