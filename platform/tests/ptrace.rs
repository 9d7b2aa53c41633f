//! The ptrace platform running real x86_64 machine code.
//!
//! Each test runs on its own thread (libtest's), which becomes the tracer of the stub
//! threads it makes by using an address space; some tests use more host threads.

mod common;
use common::*;

#[test]
fn syscall_round_trip_reports_number_and_resumes_with_result() {
    // mov eax, 39; syscall; mov rdi, rax; mov eax, 60; syscall
    let c = code(&[&mov_eax(39), &SYSCALL, &MOV_RDI_RAX, &mov_eax(60), &SYSCALL]);
    let mut g = Guest::new(&c);
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 39);
    assert_eq!(g.regs.rip, CODE + 7);
    g.regs.rax = 1234;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 60);
    assert_eq!(g.regs.rdi, 1234);
    assert_eq!(g.regs.rip, CODE + c.len() as u64);
}

#[test]
fn guest_syscalls_are_never_executed_on_the_host() {
    // exit_group(3); mmap(DATA, 4096, RW, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
    // mov al, [DATA]
    let c = code(&[
        &mov_eax(231),
        &mov_edi(3),
        &SYSCALL,
        &mov_eax(9),
        &mov_edi(DATA as u32),
        &[0xbe, 0x00, 0x10, 0, 0],                   // mov esi, 0x1000
        &[0xba, 3, 0, 0, 0],                         // mov edx, 3
        &[0x41, 0xba, 0x32, 0, 0, 0],                // mov r10d, 0x32
        &[0x49, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff], // mov r8, -1
        &[0x45, 0x31, 0xc9],                         // xor r9d, r9d
        &SYSCALL,
        &[0x8a, 0x04, 0x25],
        &(DATA as u32).to_le_bytes(), // mov al, [DATA]
    ]);
    let mut g = Guest::new(&c);
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!((g.regs.orig_rax, g.regs.rdi), (231, 3));
    // The stub is still alive and continues.
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 9);
    assert_eq!(
        (g.regs.rdi, g.regs.rsi, g.regs.rdx, g.regs.r10, g.regs.r8, g.regs.r9),
        (DATA, 0x1000, 3, 0x32, u64::MAX, 0)
    );
    g.regs.rax = DATA;
    // The mmap never happened: the page is still unmapped.
    assert_eq!(
        g.switch(),
        Event::Fault {
            addr: DATA,
            access: AccessType::Read,
            code: FaultCode::NotMapped
        }
    );
}

#[test]
fn syscall_instruction_in_the_stub_page_is_emulated_too() {
    // Jump to the stub's injection site (`syscall; int3`) with eax = 39.
    let c = code(&[
        &mov_eax(39),
        &[0x48, 0xb9],
        &(STUB_ADDR + 0x80).to_le_bytes(),
        &[0xff, 0xe1],
    ]);
    let mut g = Guest::new(&c);
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!((g.regs.orig_rax, g.regs.rip), (39, STUB_ADDR + 0x82));
    match g.switch() {
        Event::Signal { signo, .. } => assert_eq!(signo, libc::SIGTRAP),
        e => panic!("expected SIGTRAP, got {e:?}"),
    }
}

#[test]
fn write_to_unmapped_page_faults_then_resumes_once_mapped() {
    let mut g = Guest::new(&store_code());
    assert_eq!(
        g.switch(),
        Event::Fault {
            addr: DATA,
            access: AccessType::Read,
            code: FaultCode::NotMapped
        }
    );
    assert_eq!(g.regs.rip, CODE);
    g.space.map(DATA, 0x1000, DATA_OFF, Perms::RW).expect("map");
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 39);
    assert_eq!(g.read(DATA_OFF, 1), vec![0x5a]);
}

#[test]
fn write_to_read_only_page_is_a_protection_write_fault() {
    let mut g = Guest::new(&store_code());
    g.space.map(DATA, 0x1000, DATA_OFF, Perms::R).expect("map");
    assert_eq!(
        g.switch(),
        Event::Fault {
            addr: DATA,
            access: AccessType::Write,
            code: FaultCode::Protection
        }
    );
    assert_eq!(g.read(DATA_OFF, 1), vec![0]);
    g.space
        .map(DATA, 0x1000, DATA_OFF, Perms::RW)
        .expect("remap");
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.read(DATA_OFF, 1), vec![0x5a]);
}

#[test]
fn read_of_unmapped_page_is_a_not_mapped_read_fault() {
    let c = code(&[&[0x8a, 0x04, 0x25], &0x700010u32.to_le_bytes()]);
    let mut g = Guest::new(&c);
    assert_eq!(
        g.switch(),
        Event::Fault {
            addr: 0x700010,
            access: AccessType::Read,
            code: FaultCode::NotMapped
        }
    );
}

#[test]
fn jumps_to_data_or_nothing_are_exec_faults() {
    let c = code(&[&mov_rax_imm64(DATA), &JMP_RAX]);
    let mut g = Guest::new(&c);
    g.space.map(DATA, 0x1000, DATA_OFF, Perms::RW).expect("map");
    assert_eq!(
        g.switch(),
        Event::Fault {
            addr: DATA,
            access: AccessType::Exec,
            code: FaultCode::Protection
        }
    );
    g.space.unmap(DATA, 0x1000).expect("unmap");
    assert_eq!(
        g.switch(),
        Event::Fault {
            addr: DATA,
            access: AccessType::Exec,
            code: FaultCode::NotMapped
        }
    );
}

#[test]
fn undefined_instruction_is_reported_as_sigill() {
    let mut g = Guest::new(&UD2);
    match g.switch() {
        Event::Signal { signo, addr, .. } => assert_eq!((signo, addr), (libc::SIGILL, CODE)),
        e => panic!("expected SIGILL, got {e:?}"),
    }
    // The signal was not delivered to the stub: it is still there and faults again.
    assert!(matches!(
        g.switch(),
        Event::Signal {
            signo: libc::SIGILL,
            ..
        }
    ));
}

#[test]
fn interrupt_stops_a_guest_spinning_forever() {
    // 0x400000: jmp $        0x400010: mov eax, 39; syscall
    let mut c = JMP_SELF.to_vec();
    c.resize(0x10, 0x90);
    c.extend(code(&[&mov_eax(39), &SYSCALL]));
    let mut g = Guest::new(&c);
    let (pid, tid) = (g.stub_pid(), g.stub_tid());
    let interrupter = g.ctx.interrupter();
    let helper = std::thread::spawn(move || {
        // Wait until the guest really runs, then interrupt it.
        while task_state(pid, tid) != Some('R') {
            std::thread::yield_now();
        }
        interrupter.interrupt();
    });
    assert_eq!(g.switch(), Event::Interrupted);
    helper.join().expect("helper");
    assert_eq!(g.regs.rip, CODE);
    // The interrupt was consumed: the guest runs on normally.
    g.regs.rip = CODE + 0x10;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 39);
}

#[test]
fn interrupt_stops_only_the_context_it_belongs_to() {
    // 0x400000: jmp $        0x400010: loop: mov eax, 39; syscall; jmp loop
    let mut c = JMP_SELF.to_vec();
    c.resize(0x10, 0x90);
    c.extend(syscall_loop_code());
    let mut g = Guest::new(&c);
    g.regs.rip = CODE + 0x10;
    let Guest {
        platform,
        space,
        ctx: main_ctx,
        regs: main_regs,
        ..
    } = &mut g;
    let (platform, space) = (&*platform, &*space);
    let mut main_switch = || main_ctx.switch(space, main_regs).expect("switch");
    let pid = ptrace_space(space).stub_pid();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let spinner = s.spawn(move || {
            let mut ctx = platform.new_context().expect("context");
            let mut regs = initial_regs(CODE + 0x10, 0);
            assert_eq!(
                ctx.switch(space, &mut regs).expect("switch"),
                Event::Syscall
            );
            let tid = ptrace_space(space).current_stub_tid().expect("stub thread");
            tx.send((tid, ctx.interrupter())).expect("send");
            regs.rip = CODE;
            let event = ctx.switch(space, &mut regs).expect("switch");
            (event, regs.rip)
        });
        let (tid, interrupter) = rx.recv().expect("spinner's stub thread");
        while task_state(pid, tid) != Some('R') {
            // Meanwhile this thread's guest runs on undisturbed.
            assert_eq!(main_switch(), Event::Syscall);
        }
        for _ in 0..100 {
            assert_eq!(main_switch(), Event::Syscall);
        }
        interrupter.interrupt();
        assert_eq!(spinner.join().expect("spinner"), (Event::Interrupted, CODE));
    });
    assert_eq!(main_switch(), Event::Syscall);
}

#[test]
fn interrupt_before_switch_returns_at_once_without_running_the_guest() {
    let mut g = Guest::new(&code(&[&mov_eax(39), &SYSCALL]));
    g.ctx.interrupter().interrupt();
    let before = g.regs;
    assert_eq!(g.switch(), Event::Interrupted);
    assert_eq!(g.regs.rip, before.rip);
    assert_eq!(g.switch(), Event::Syscall);
}

#[test]
fn fs_base_set_in_regs_is_used_by_guest_code() {
    // mov rdi, fs:[8]; mov eax, 39; syscall
    let c = code(&[
        &[0x64, 0x48, 0x8b, 0x3c, 0x25, 8, 0, 0, 0],
        &mov_eax(39),
        &SYSCALL,
    ]);
    let mut g = Guest::new(&c);
    g.write(DATA_OFF + 8, &0x1122_3344_5566_7788u64.to_le_bytes());
    g.space.map(DATA, 0x1000, DATA_OFF, Perms::RW).expect("map");
    g.regs.fs_base = DATA;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.rdi, 0x1122_3344_5566_7788);
    assert_eq!(g.regs.fs_base, DATA);
}

#[test]
fn fp_state_round_trips_through_guest_code() {
    // movq rdi, xmm0; movq xmm1, rsi; mov eax, 39; syscall
    let c = code(&[
        &[0x66, 0x48, 0x0f, 0x7e, 0xc7],
        &[0x66, 0x48, 0x0f, 0x6e, 0xce],
        &mov_eax(39),
        &SYSCALL,
    ]);
    let mut g = Guest::new(&c);
    let mut fp = g.ctx.fp_state().expect("fp state");
    assert_eq!(&fp.bytes[24..28], &0x1f80u32.to_le_bytes(), "initial MXCSR");
    fp.bytes[160..168].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes()); // xmm0
    g.ctx.set_fp_state(&fp).expect("set fp state");
    g.regs.rsi = 0xfeed_face_cafe_beef;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.rdi, 0x0123_4567_89ab_cdef);
    let after = g.ctx.fp_state().expect("fp state");
    assert!(after.bytes.len() >= 512);
    assert_eq!(
        &after.bytes[176..184],
        &0xfeed_face_cafe_beefu64.to_le_bytes()
    ); // xmm1
    assert_eq!(
        &after.bytes[160..168],
        &0x0123_4567_89ab_cdefu64.to_le_bytes()
    );
    assert_eq!(&after.bytes[0..2], &0x037fu16.to_le_bytes(), "FCW");
}

#[test]
fn stub_holds_nothing_but_the_stub_page_guest_mappings_and_the_memory_file() {
    let g = Guest::new(&JMP_SELF);
    let pid = g.stub_pid();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let starts: Vec<&str> = maps.lines().filter_map(|l| l.split('-').next()).collect();
    assert_eq!(
        starts,
        vec!["00400000", "00600000", "7ffffffe0000", "ffffffffff600000"],
        "{maps}"
    );
    assert!(
        maps.lines()
            .next()
            .is_some_and(|l| l.contains("r-xs") && l.contains("memfd:rvisor-test-mem")),
        "{maps}"
    );
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(fds, vec!["3".to_string()]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('2')),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1')),
        "{status}"
    );
}

#[test]
fn stub_process_is_gone_after_the_address_space_is_dropped() {
    let g = Guest::new(&JMP_SELF);
    let pid = g.stub_pid();
    let Guest {
        space,
        ctx,
        platform,
        memfd,
        ..
    } = g;
    drop(space);
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    assert_eq!(
        (r, std::io::Error::last_os_error().raw_os_error()),
        (-1, Some(libc::ESRCH))
    );
    drop((ctx, platform, memfd));
}

#[test]
fn killed_stub_is_reported_as_stub_died() {
    let mut g = Guest::new(&JMP_SELF);
    // SAFETY: the stub is our own child.
    assert_eq!(unsafe { libc::kill(g.stub_pid(), libc::SIGKILL) }, 0);
    match g.ctx.switch(&g.space, &mut g.regs) {
        Err(PlatformError::StubDied { pid, .. }) => assert_eq!(pid, g.stub_pid()),
        r => panic!("expected StubDied, got {r:?}"),
    }
    assert!(matches!(
        g.space.map(DATA, 0x1000, 0, Perms::RW),
        Err(PlatformError::StubDied { .. })
    ));
}

#[test]
fn bad_ranges_are_rejected() {
    let g = Guest::new(&JMP_SELF);
    let bad = [
        (0x400001, 0x1000),
        (0x400000, 0x800),
        (0x400000, 0),
        (STUB_ADDR, 0x1000),
        (STUB_ADDR - 0x1000, 0x2000),
        (!0xfff, 0x2000),
    ];
    for (addr, len) in bad {
        assert!(
            matches!(
                g.space.map(addr, len, 0, Perms::RW),
                Err(PlatformError::BadRange { .. })
            ),
            "{addr:#x}+{len:#x}"
        );
        assert!(
            matches!(
                g.space.unmap(addr, len),
                Err(PlatformError::BadRange { .. })
            ),
            "{addr:#x}+{len:#x}"
        );
    }
    assert!(matches!(
        g.space.map(DATA, 0x1000, 0x10, Perms::RW),
        Err(PlatformError::BadRange { .. })
    ));
}

#[test]
fn syscall_round_trip_time() {
    // loop: mov eax, 39; syscall; jmp loop
    let c = code(&[&mov_eax(39), &SYSCALL, &[0xeb, 0xf7]]);
    let mut g = Guest::new(&c);
    let n = 20_000;
    let start = std::time::Instant::now();
    for i in 0..n {
        assert_eq!(g.switch(), Event::Syscall);
        g.regs.rax = i;
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("ptrace syscall round trip: {per:.2} µs/call over {n} calls");
}

#[test]
fn stray_interrupt_signals_are_suppressed_during_map_and_switch() {
    let mut g = Guest::new(&code(&[&mov_eax(39), &SYSCALL, &mov_eax(60), &SYSCALL]));
    // SAFETY: the stub is our own child; the signal is the platform's interrupt signal.
    assert_eq!(
        unsafe { libc::kill(g.stub_pid(), rvisor_platform::ptrace::INTERRUPT_SIGNAL) },
        0
    );
    g.space
        .map(DATA, 0x1000, DATA_OFF, Perms::RW)
        .expect("map with a signal pending");
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::kill(g.stub_pid(), rvisor_platform::ptrace::INTERRUPT_SIGNAL) },
        0
    );
    // No interrupt was requested through the interrupter: the guest just runs.
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 39);
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 60);
}

#[test]
fn fp_state_follows_the_context_into_another_address_space() {
    let mut g = Guest::new(&swap_xmm0_code());
    g.regs.rsi = 0xabcd;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.rdi, 0, "initial xmm0");
    // Same context, new address space (as after execve without an FPU reset).
    let other = g.platform.new_address_space().expect("address space");
    other.map(CODE, 0x1000, CODE_OFF, Perms::RX).expect("map");
    let mut regs = initial_regs(CODE, 0);
    assert_eq!(
        g.ctx.switch(&other, &mut regs).expect("switch"),
        Event::Syscall
    );
    assert_eq!(regs.rdi, 0xabcd);
}

#[test]
fn contexts_sharing_a_stub_thread_keep_their_own_fp_state() {
    let mut g = Guest::new(&swap_xmm0_code());
    let mut second = g.platform.new_context().expect("context");
    let mut regs2 = initial_regs(CODE, 0);
    g.regs.rsi = 1;
    regs2.rsi = 2;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(
        second.switch(&g.space, &mut regs2).expect("switch"),
        Event::Syscall
    );
    g.regs.rip = CODE;
    regs2.rip = CODE;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.rdi, 1);
    assert_eq!(
        second.switch(&g.space, &mut regs2).expect("switch"),
        Event::Syscall
    );
    assert_eq!(regs2.rdi, 2);
}

#[test]
fn address_space_dropped_on_another_thread_still_reaps_the_stub() {
    let g = Guest::new(&JMP_SELF);
    let pid = g.stub_pid();
    let Guest {
        space,
        ctx,
        platform,
        memfd,
        ..
    } = g;
    std::thread::spawn(move || drop(space))
        .join()
        .expect("thread");
    // SAFETY: signal 0 only checks for existence (a zombie would still exist).
    let r = unsafe { libc::kill(pid, 0) };
    assert_eq!(
        (r, std::io::Error::last_os_error().raw_os_error()),
        (-1, Some(libc::ESRCH))
    );
    drop((ctx, platform, memfd));
}

#[test]
fn vsyscall_call_is_reported_as_sigsys_and_not_executed() {
    // mov rax, 0xffffffffff600000 (vsyscall gettimeofday); call rax; mov eax, 39; syscall
    let c = code(&[
        &mov_rax_imm64(0xffff_ffff_ff60_0000),
        &[0xff, 0xd0],
        &mov_eax(39),
        &SYSCALL,
    ]);
    let mut g = Guest::new(&c);
    let rsp = g.regs.rsp;
    assert_eq!(
        g.switch(),
        Event::Signal {
            signo: libc::SIGSYS,
            code: 1,
            addr: 0xffff_ffff_ff60_0000
        }
    );
    // The kernel already "returned" from the vsyscall: the sentry only has to set rax.
    assert_eq!((g.regs.rip, g.regs.rsp, g.regs.rax), (CODE + 12, rsp, 96));
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 39);
}

#[test]
fn int80_stops_like_a_syscall_and_is_not_executed() {
    // mov eax, 1 (i386 exit); int 0x80; mov eax, 39; syscall
    let c = code(&[&mov_eax(1), &[0xcd, 0x80], &mov_eax(39), &SYSCALL]);
    let mut g = Guest::new(&c);
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!((g.regs.orig_rax, g.regs.rip), (1, CODE + 7));
    // What tells it apart from `syscall` (0f 05): the instruction bytes before rip.
    assert_eq!(g.read(CODE_OFF + 5, 2), vec![0xcd, 0x80]);
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.orig_rax, 39);
}
