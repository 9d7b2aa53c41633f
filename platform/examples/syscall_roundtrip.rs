//! Measures the ptrace platform's guest syscall round trip (switch → Event::Syscall →
//! switch), and what a new host thread pays to get (and later retire) its stub thread in an
//! existing address space: `cargo run --release -p rvisor-platform --example
//! syscall_roundtrip [N] [THREADS]`.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use rvisor_platform::ptrace::{initial_regs, pin_current_thread, PtracePlatform};
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

    // New host threads in the same address space, one after the other: first all on this
    // thread's CPU, then each pinned to the next CPU in turn (as the sentry spreads tasks).
    let threads: u32 = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    for spread in [false, true] {
        let (mut first, mut retire) = (0.0, 0.0);
        for _ in 0..threads {
            let (platform, space) = (&platform, &space);
            let (f, r) = std::thread::scope(|s| {
                s.spawn(move || -> Result<(f64, f64), String> {
                    if spread {
                        pin_current_thread(None).map_err(|e| e.to_string())?;
                    }
                    let mut ctx = platform.new_context().map_err(|e| e.to_string())?;
                    let mut regs = initial_regs(0x400000, 0);
                    let t0 = std::time::Instant::now();
                    ctx.switch(space, &mut regs).map_err(|e| e.to_string())?;
                    let t1 = std::time::Instant::now();
                    ctx.switch(space, &mut regs).map_err(|e| e.to_string())?;
                    let t2 = std::time::Instant::now();
                    drop(ctx);
                    let t3 = std::time::Instant::now();
                    let secs = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64();
                    Ok((secs(t0, t1) - secs(t1, t2), secs(t2, t3)))
                })
                .join()
                .map_err(|_| "thread panicked".to_string())
            })??;
            first += f;
            retire += r;
        }
        let n = threads.max(1) as f64;
        println!(
            "new host thread ({}): stub thread made in {:.0} µs, retired in {:.0} µs (mean of {threads})",
            if spread { "CPUs in turn" } else { "same CPU" },
            first * 1e6 / n,
            retire * 1e6 / n
        );
    }
    // New address spaces (a stub process and its master thread each), made, used once by
    // this thread and dropped.
    let (mut make, mut first_use, mut drop_time) = (0.0, 0.0, 0.0);
    let spaces = 50;
    for _ in 0..spaces {
        let t0 = std::time::Instant::now();
        let space = platform.new_address_space()?;
        let t1 = std::time::Instant::now();
        space.map(0x400000, 0x1000, 0, Perms::RX)?;
        let t2 = std::time::Instant::now();
        drop(space);
        let t3 = std::time::Instant::now();
        make += (t1 - t0).as_secs_f64();
        first_use += (t2 - t1).as_secs_f64();
        drop_time += (t3 - t2).as_secs_f64();
    }
    let n = spaces as f64;
    println!(
        "new address space: made in {:.0} µs, first map (with its stub thread) {:.0} µs, dropped in {:.0} µs (mean of {spaces})",
        make * 1e6 / n,
        first_use * 1e6 / n,
        drop_time * 1e6 / n
    );
    Ok(())
}
