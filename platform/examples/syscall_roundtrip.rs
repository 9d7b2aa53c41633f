//! Measures the ptrace platform's guest syscall round trip (switch → Event::Syscall →
//! switch): `cargo run --release -p rvisor-platform --example syscall_roundtrip [N]`.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use rvisor_platform::ptrace::{initial_regs, PtracePlatform};
use rvisor_platform::{Event, Perms, Platform};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    // SAFETY: memfd_create reads a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"rvisor-bench-mem".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // loop: mov eax, 39; syscall; jmp loop
    let code: [u8; 9] = [0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];
    // SAFETY: ftruncate/pwrite on our own fd; pwrite reads from a live array.
    unsafe {
        if libc::ftruncate(memfd.as_raw_fd(), 0x1000) != 0
            || libc::pwrite(memfd.as_raw_fd(), code.as_ptr().cast(), code.len(), 0)
                != code.len() as isize
        {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    let platform = PtracePlatform::new(memfd.as_fd())?;
    let space = platform.new_address_space()?;
    let mut ctx = platform.new_context()?;
    space.map(0x400000, 0x1000, 0, Perms::RX)?;
    let mut regs = initial_regs(0x400000, 0);
    for _ in 0..1000 {
        ctx.switch(&space, &mut regs)?;
    }
    let start = std::time::Instant::now();
    for i in 0..n {
        let event = ctx.switch(&space, &mut regs)?;
        if event != Event::Syscall || regs.orig_rax != 39 {
            return Err(format!("unexpected {event:?} (orig_rax {})", regs.orig_rax).into());
        }
        regs.rax = i;
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("ptrace syscall round trip: {per:.2} µs/call over {n} calls");
    Ok(())
}
