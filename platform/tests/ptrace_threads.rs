//! The ptrace platform with several host threads: address spaces used from any thread,
//! stub-thread lifetimes, and stubs never outliving the sentry.

mod common;
use common::*;

#[test]
fn two_threads_run_guest_code_concurrently_in_one_address_space_and_share_memory() {
    // loop: inc qword [rbx]; mov rdi, [rbp]; mov eax, 39; syscall; jmp loop
    let c = code(&[
        &[0x48, 0xff, 0x03],
        &[0x48, 0x8b, 0x7d, 0x00],
        &mov_eax(39),
        &SYSCALL,
        &[0xeb, 0xf0],
    ]);
    let g = Guest::new(&c);
    g.space.map(DATA, 0x1000, DATA_OFF, Perms::RW).expect("map");
    const N: u64 = 2000;
    let barrier = Barrier::new(2);
    let (platform, space, barrier) = (&g.platform, &g.space, &barrier);
    let results: Vec<(u64, i32)> = std::thread::scope(|s| {
        let runners: Vec<_> = (0..2u64)
            .map(|i| {
                s.spawn(move || {
                    let mut ctx = platform.new_context().expect("context");
                    let mut regs = initial_regs(CODE, 0);
                    regs.rbx = DATA + 8 * i;
                    regs.rbp = DATA + 8 * (1 - i);
                    barrier.wait();
                    // Each stop follows one increment of our counter; rdi holds the other
                    // thread's counter as our guest code read it. Run until both reached N.
                    let mut mine = 0;
                    loop {
                        assert_eq!(
                            ctx.switch(space, &mut regs).expect("switch"),
                            Event::Syscall
                        );
                        mine += 1;
                        if mine >= N && regs.rdi >= N {
                            break;
                        }
                        assert!(mine < 100_000_000, "the other thread made no progress");
                    }
                    let tid = ptrace_space(space).current_stub_tid().expect("stub thread");
                    (mine, tid)
                })
            })
            .collect();
        runners
            .into_iter()
            .map(|r| r.join().expect("runner"))
            .collect()
    });
    let counters = g.read(DATA_OFF, 16);
    let c0 = u64::from_le_bytes(counters[..8].try_into().expect("8 bytes"));
    let c1 = u64::from_le_bytes(counters[8..].try_into().expect("8 bytes"));
    assert_eq!((c0, c1), (results[0].0, results[1].0));
    // Two stub threads of the same stub process, neither its first thread.
    let pid = g.stub_pid();
    assert_ne!(results[0].1, results[1].1);
    assert!(results.iter().all(|&(_, tid)| tid != pid));
}

#[test]
fn mappings_made_on_one_thread_are_seen_by_guest_code_on_another() {
    // loop: mov rdi, [DATA]; mov eax, 39; syscall; jmp loop
    let c = code(&[
        &[0x48, 0x8b, 0x3c, 0x25],
        &(DATA as u32).to_le_bytes(),
        &mov_eax(39),
        &SYSCALL,
        &[0xeb, 0xef],
    ]);
    let mut g = Guest::new(&c);
    g.write(DATA_OFF, &0x1111u64.to_le_bytes());
    g.write(DATA_OFF + 0x1000, &0x2222u64.to_le_bytes());
    let space = g.space.clone();
    let on_another_thread = |f: &(dyn Fn(&dyn AddressSpace) + Sync)| {
        std::thread::scope(|s| {
            s.spawn(|| f(&*space)).join().expect("mapping thread");
        })
    };
    on_another_thread(&|space| space.map(DATA, 0x1000, DATA_OFF, Perms::R).expect("map"));
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.rdi, 0x1111);
    on_another_thread(&|space| space.unmap(DATA, 0x1000).expect("unmap"));
    assert_eq!(
        g.switch(),
        Event::Fault {
            addr: DATA,
            access: AccessType::Read,
            code: FaultCode::NotMapped
        }
    );
    on_another_thread(&|space| {
        space
            .map(DATA, 0x1000, DATA_OFF + 0x1000, Perms::R)
            .expect("map")
    });
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.rdi, 0x2222);
}

#[test]
fn address_space_is_used_and_dropped_on_another_thread_after_its_creator_exited() {
    let g = Guest::new(&JMP_SELF);
    let Guest {
        memfd, platform, ..
    } = g;
    let platform = &platform;
    let space = std::thread::scope(|s| {
        s.spawn(|| platform.new_address_space().expect("address space"))
            .join()
            .expect("creator thread")
    });
    let pid = ptrace_space(&space).stub_pid();
    // The creator is gone; the stub is not (its first thread waits for its master).
    assert_eq!(task_state(pid, pid), Some('t'));
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut code_bytes = syscall_loop_code();
            code_bytes.resize(0x1000, 0);
            // SAFETY: pwrite reads from a live buffer.
            let n = unsafe {
                libc::pwrite(
                    memfd.as_raw_fd(),
                    code_bytes.as_ptr().cast(),
                    code_bytes.len(),
                    CODE_OFF as i64,
                )
            };
            assert_eq!(n, 0x1000);
            space.map(CODE, 0x1000, CODE_OFF, Perms::RX).expect("map");
            let mut ctx = platform.new_context().expect("context");
            let mut regs = initial_regs(CODE, 0);
            assert_eq!(
                ctx.switch(&space, &mut regs).expect("switch"),
                Event::Syscall
            );
            assert_eq!(regs.orig_rax, 39);
            drop(ctx);
            drop(space);
            assert!(is_gone(pid), "stub {pid} still exists");
        })
        .join()
        .expect("user thread")
    });
}

#[test]
fn exiting_host_thread_retires_its_stub_thread_and_the_stub_lives_on() {
    let mut g = Guest::new(&syscall_loop_code());
    assert_eq!(g.switch(), Event::Syscall);
    let pid = g.stub_pid();
    let before = task_tids(pid);
    assert_eq!(before, {
        let mut v = vec![pid, g.stub_tid()];
        v.sort_unstable();
        v
    });
    let (platform, space) = (&g.platform, &g.space);
    // The context leaves the thread with its result, so only the thread's exit can retire
    // its stub thread.
    let (ctx, tid) = std::thread::scope(|s| {
        s.spawn(move || {
            let mut ctx = platform.new_context().expect("context");
            let mut regs = initial_regs(CODE, 0);
            assert_eq!(
                ctx.switch(space, &mut regs).expect("switch"),
                Event::Syscall
            );
            let tid = ptrace_space(space).current_stub_tid().expect("stub thread");
            assert!(task_tids(pid).contains(&tid));
            assert_eq!(task_tids(pid).len(), 3);
            (ctx, tid)
        })
        .join()
        .expect("thread")
    });
    assert_eq!(task_tids(pid), before, "stub thread {tid} left behind");
    // Dropping that context here (not its tracer's thread) touches nothing of ours.
    drop(ctx);
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(task_tids(pid), before);
}

#[test]
fn dropping_a_context_retires_its_stub_thread() {
    let mut g = Guest::new(&syscall_loop_code());
    assert_eq!(g.switch(), Event::Syscall);
    let pid = g.stub_pid();
    let before = task_tids(pid);
    let (platform, space, before_ref) = (&g.platform, &g.space, &before);
    std::thread::scope(|s| {
        s.spawn(move || {
            let before = before_ref;
            let mut ctx = platform.new_context().expect("context");
            let mut regs = initial_regs(CODE, 0);
            assert_eq!(
                ctx.switch(space, &mut regs).expect("switch"),
                Event::Syscall
            );
            let tid = ptrace_space(space).current_stub_tid().expect("stub thread");
            // A second context on this thread shares the stub thread and keeps it alive.
            let mut other = platform.new_context().expect("context");
            let mut regs2 = initial_regs(CODE, 0);
            assert_eq!(
                other.switch(space, &mut regs2).expect("switch"),
                Event::Syscall
            );
            drop(other);
            assert_eq!(ptrace_space(space).current_stub_tid(), Some(tid));
            drop(ctx);
            assert_eq!(ptrace_space(space).current_stub_tid(), None);
            assert_eq!(&task_tids(pid), before);
            // The thread can come back (a new stub thread).
            let mut ctx = platform.new_context().expect("context");
            assert_eq!(
                ctx.switch(space, &mut regs).expect("switch"),
                Event::Syscall
            );
            assert_eq!(task_tids(pid).len(), before.len() + 1);
        })
        .join()
        .expect("thread")
    });
    assert_eq!(task_tids(pid), before);
}

#[test]
fn released_stub_thread_is_replaced_at_the_next_switch_with_the_fp_state() {
    let mut g = Guest::new(&swap_xmm0_code());
    g.regs.rsi = 0xabcd;
    assert_eq!(g.switch(), Event::Syscall);
    let (pid, old) = (g.stub_pid(), g.stub_tid());
    g.space.release_current_thread();
    assert!(!task_tids(pid).contains(&old));
    assert_eq!(task_tids(pid), vec![pid]);
    g.regs.rip = CODE;
    assert_eq!(g.switch(), Event::Syscall);
    assert_eq!(g.regs.rdi, 0xabcd, "xmm0 survived the move");
    assert_ne!(g.stub_tid(), old);
}

#[test]
fn contexts_and_host_threads_hold_no_reference_to_the_address_space() {
    // The sentry tells from the counts whether it holds the last reference.
    let mut g = Guest::new(&syscall_loop_code());
    assert_eq!(g.switch(), Event::Syscall);
    let (platform, space) = (&g.platform, &g.space);
    let other_ctx = std::thread::scope(|s| {
        s.spawn(move || {
            let mut ctx = platform.new_context().expect("context");
            let mut regs = initial_regs(CODE, 0);
            assert_eq!(
                ctx.switch(space, &mut regs).expect("switch"),
                Event::Syscall
            );
            space.map(DATA, 0x1000, DATA_OFF, Perms::RW).expect("map");
            ctx
        })
        .join()
        .expect("thread")
    });
    assert_eq!(
        (Arc::strong_count(&g.space), Arc::weak_count(&g.space)),
        (1, 0)
    );
    drop(other_ctx);
}

#[test]
fn creating_and_retiring_200_threads_leaves_no_stub_thread_or_zombie() {
    let mut g = Guest::new(&syscall_loop_code());
    assert_eq!(g.switch(), Event::Syscall);
    let pid = g.stub_pid();
    let before = task_tids(pid);
    let (platform, space) = (&g.platform, &g.space);
    let start = std::time::Instant::now();
    for _ in 0..20 {
        std::thread::scope(|s| {
            for _ in 0..10 {
                s.spawn(move || {
                    let mut ctx = platform.new_context().expect("context");
                    let mut regs = initial_regs(CODE, 0);
                    for _ in 0..3 {
                        assert_eq!(
                            ctx.switch(space, &mut regs).expect("switch"),
                            Event::Syscall
                        );
                    }
                });
            }
        });
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / 200.0;
    println!("stub thread made, used 3 times and retired: {per:.0} µs per host thread");
    let after = task_tids(pid);
    assert_eq!(after, before);
    for tid in after {
        assert_ne!(task_state(pid, tid), Some('Z'), "zombie stub thread {tid}");
    }
    assert_eq!(g.switch(), Event::Syscall);
    drop(g.ctx);
    drop(g.space);
    assert!(is_gone(pid));
}

#[test]
fn stub_outlives_the_thread_that_created_it_until_the_address_space_is_dropped() {
    let g = Guest::new(&JMP_SELF);
    let platform = &g.platform;
    let (space, pid) = std::thread::scope(|s| {
        s.spawn(|| {
            let space = platform.new_address_space().expect("address space");
            space.map(CODE, 0x1000, CODE_OFF, Perms::RX).expect("map");
            let pid = ptrace_space(&space).stub_pid();
            assert_eq!(task_tids(pid).len(), 2);
            (space, pid)
        })
        .join()
        .expect("thread")
    });
    // The creator's stub thread was retired with it; the stub lives on.
    assert_eq!(task_tids(pid), vec![pid]);
    drop(space);
    assert!(is_gone(pid));
}

const HELPER_ENV: &str = "RVISOR_PLATFORM_TEST_HELPER";

/// Not a test on its own: run by `stub_dies_with_the_sentry_process` in a child process.
#[test]
fn helper_process_that_dies_holding_an_address_space() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let mut g = Guest::new(&syscall_loop_code());
    assert_eq!(g.switch(), Event::Syscall);
    println!("stub pid {}", g.stub_pid());
    std::io::stdout().flush().expect("flush");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("read");
    // Die without dropping anything, as a crashing sentry would.
    // SAFETY: _exit ends the process at once.
    unsafe { libc::_exit(0) };
}

#[test]
fn stub_dies_with_the_sentry_process() {
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "helper_process_that_dies_holding_an_address_space",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("helper process");
    let stdout = child.stdout.take().expect("stdout");
    // The harness prints the test's name on the same line before running it.
    let pid: i32 = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("line"))
        .find_map(|l| {
            let (_, pid) = l.split_once("stub pid ")?;
            Some(pid.trim().parse().expect("pid"))
        })
        .expect("the helper printed its stub pid");
    // SAFETY: pidfd_open takes integers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    drop(child.stdin.take());
    let status = child.wait().expect("helper exit");
    assert!(status.success(), "{status:?}");
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Readable once the stub process has exited.
    // SAFETY: poll reads and writes one live pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, 60_000) };
    assert_eq!(r, 1, "the stub outlived the sentry");
}
