//! The master thread of an address space: a host thread that owns the stub process.
//!
//! ptrace relationships belong to host threads, and the sentry's threads come and go (one
//! per guest task), so no task thread can own a stub process: the stub would die with it
//! (`PR_SET_PDEATHSIG` and `PTRACE_O_EXITKILL` follow the *thread*). Instead
//! `new_address_space` starts a master thread that
//! - has the platform's zygote fork the stub process and seizes it, so it is the tracer of
//!   the stub's first thread (with `PTRACE_O_EXITKILL`: no stub outlives its master, hence
//!   the sentry);
//! - blocks every signal of that first thread, which never runs guest code;
//! - makes new stub threads on request ([`Master::new_thread`]) by injecting `clone` into
//!   the first thread; the requesting host thread then attaches to the new thread itself
//!   (`stub::attach_new_thread`);
//! - at the end ([`Master::shutdown`]) kills the stub process if it still lives and reaps
//!   the first thread, then exits.
//!
//! The zygote has a master thread of its own (made once per platform, [`Origin::Sentry`]):
//! it forks the zygote from the sentry and serves [`Master::fork_stub`] requests.
//!
//! Why not `CLONE_PTRACE` and `PTRACE_DETACH` with `SIGSTOP` as gVisor does: a `SIGSTOP`
//! delivered to an untraced thread starts a group stop of the whole stub process, which
//! every other stub thread then reports to its tracer once. A new thread that starts
//! untraced in a `pause` loop with every signal blocked is just as safe, and the attaching
//! thread stops it with `PTRACE_INTERRUPT`, which touches no other thread.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cpu;
use super::fp::FpKind;
use super::stub::{self, StubThread};
use super::sys;
use crate::PlatformError;

/// Every signal (bit `sig - 1`); SIGKILL and SIGSTOP cannot be blocked anyway.
const ALL_SIGNALS: u64 = u64::MAX;

/// How long a requester waits for the master before checking that the stub still lives.
const REPLY_PATIENCE: Duration = Duration::from_millis(500);

enum Request {
    /// Make a new stub thread; reply with its tid. With a CPU, the master first moves
    /// itself and the first thread there (the requester's CPU: every wake-up between the
    /// three of them and the new thread then stays on one CPU).
    NewThread {
        cpu: Option<usize>,
        reply: SyncSender<Result<i32, PlatformError>>,
    },
    /// (The zygote's master.) Fork a new stub; reply with its pid. With a CPU, the master
    /// first moves itself and the zygote there (the requester's CPU, which the new stub
    /// then inherits).
    Fork {
        cpu: Option<usize>,
        reply: SyncSender<Result<i32, PlatformError>>,
    },
    /// Kill the stub if needed, reap the first thread and exit.
    Shutdown,
}

/// Where a master's stub process comes from.
pub enum Origin {
    /// Forked from the sentry, holding this memory file: the zygote.
    Sentry(OwnedFd),
    /// Forked from the zygote that this master serves.
    Zygote(Arc<Master>),
}

/// Handle on a running master thread.
#[derive(Debug)]
pub struct Master {
    requests: Mutex<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    /// Host pid of the stub process.
    pub tgid: i32,
    /// How the stub threads' FPU state is transferred (the same for all of them).
    pub fp_kind: FpKind,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::NewThread { .. } => f.write_str("NewThread"),
            Request::Fork { .. } => f.write_str("Fork"),
            Request::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl Master {
    /// Starts the master thread and waits until its stub process is ready. A zygote's
    /// memory file becomes its (and every stub's) [`super::STUB_MEMFD`]; the master closes
    /// its copy once the zygote is forked.
    pub fn start(origin: Origin) -> Result<Master, PlatformError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (tx, rx) = mpsc::channel();
        let name = match origin {
            Origin::Sentry(_) => "rvisor-zygote",
            Origin::Zygote(_) => "rvisor-stub",
        };
        let mut job = Some(move || master_main(origin, rx, ready_tx));
        let thread = retry_eagain(|| {
            // A failed spawn drops its closure, so hand it one that takes the job only
            // when it runs, and keep the job for the next attempt otherwise.
            let slot = std::sync::Arc::new(Mutex::new(job.take()));
            let theirs = slot.clone();
            let r = std::thread::Builder::new()
                .name(name.into())
                .stack_size(256 << 10)
                .spawn(move || {
                    if let Some(f) = theirs.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        f()
                    }
                });
            if r.is_err() {
                job = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
            r.map_err(|source| PlatformError::Host {
                call: "spawn (stub master thread)",
                source,
            })
        })?;
        match ready_rx.recv() {
            Ok(Ok((tgid, fp_kind))) => Ok(Master {
                requests: Mutex::new(tx),
                thread: Some(thread),
                tgid,
                fp_kind,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(PlatformError::StubDied {
                    pid: 0,
                    reason: "the stub master thread ended during set-up".into(),
                })
            }
        }
    }

    fn send(&self, r: Request) -> Result<(), PlatformError> {
        let tx = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        tx.send(r).map_err(|_| self.master_gone())
    }

    fn master_gone(&self) -> PlatformError {
        PlatformError::StubDied {
            pid: self.tgid,
            reason: "its master thread is gone".into(),
        }
    }

    /// Has the master make a new, untraced stub thread (waiting in the blob's `pause`
    /// loop, on `cpu` if given) and returns its tid.
    pub fn new_thread(&self, cpu: Option<usize>) -> Result<i32, PlatformError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Request::NewThread { cpu, reply })?;
        loop {
            match answer.recv_timeout(REPLY_PATIENCE) {
                Ok(r) => return r,
                Err(RecvTimeoutError::Disconnected) => return Err(self.master_gone()),
                Err(RecvTimeoutError::Timeout) => {
                    // The master waits for the first thread, which cannot be reaped (nor
                    // report anything) while killed sibling threads are not reaped yet by
                    // their tracers. Do not wait for that.
                    if process_is_dead(self.tgid) {
                        return Err(PlatformError::StubDied {
                            pid: self.tgid,
                            reason: "killed while a stub thread was being made".into(),
                        });
                    }
                    tracing::warn!(pid = self.tgid, "stub master is slow to make a thread");
                }
            }
        }
    }

    /// Has the zygote's master fork a new stub process (untraced, waiting in the blob's
    /// `pause` loop, on `cpu` if given) and returns its pid.
    pub fn fork_stub(&self, cpu: Option<usize>) -> Result<i32, PlatformError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Request::Fork { cpu, reply })?;
        answer.recv().map_err(|_| self.master_gone())?
    }

    /// Makes the master kill the stub process (if it still lives), reap its first thread
    /// and exit; waits for that. The caller must have reaped the other stub threads
    /// ([`stub::reap_killed`]) — the first thread cannot be reaped before them.
    pub fn shutdown(&mut self) {
        let _ = self.send(Request::Shutdown);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(pid = self.tgid, "stub master thread panicked");
            }
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long a host fork or clone that fails with EAGAIN is retried. The sandbox's host pids
/// cgroup has room for every guest task's host threads and stubs, but an exited guest
/// process's stub and threads are torn down asynchronously: under a fork bomb the host
/// count can touch the limit for a moment after the guest count has dropped.
const EAGAIN_PATIENCE: Duration = Duration::from_secs(2);

/// Runs `f` again (after a short, growing pause) while it fails with a host EAGAIN, for at
/// most [`EAGAIN_PATIENCE`].
fn retry_eagain<T>(mut f: impl FnMut() -> Result<T, PlatformError>) -> Result<T, PlatformError> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match f() {
            Err(PlatformError::Host { source, .. })
                if source.raw_os_error() == Some(libc::EAGAIN) && start.elapsed() < EAGAIN_PATIENCE =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// Whether process `pid` is a zombie or gone, as far as `/proc` tells (false if it cannot).
fn process_is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x')),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

fn master_main(
    origin: Origin,
    requests: Receiver<Request>,
    ready: SyncSender<Result<(i32, FpKind), PlatformError>>,
) {
    let made = match origin {
        Origin::Sentry(memfd) => retry_eagain(|| stub::spawn_zygote(memfd.as_fd())),
        Origin::Zygote(zygote) => zygote
            .fork_stub(cpu::current_cpu())
            .and_then(|pid| stub::attach_new_process(pid, zygote.fp_kind)),
    };
    let leader = match made {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let tgid = leader.tgid;
    {
        let mut st = leader.lock();
        // New stub threads inherit this mask: they must not take any signal before their
        // tracer is attached (the default action of most would kill the stub).
        if let Err(e) = sys::set_sigmask(leader.tid, ALL_SIGNALS) {
            let e = st.ptrace_failed("ptrace(PTRACE_SETSIGMASK)", leader.tid, e);
            drop(st);
            finish(&leader);
            let _ = ready.send(Err(e));
            return;
        }
        let _ = ready.send(Ok((tgid, st.fp_kind)));
    }
    tracing::debug!(
        pid = tgid,
        master = sys::current_tid(),
        "ptrace stub master ready"
    );
    while let Ok(request) = requests.recv() {
        match request {
            Request::NewThread { cpu, reply } => {
                let _ = reply.send(clone_on(&leader, cpu, stub::clone_thread));
            }
            Request::Fork { cpu, reply } => {
                let _ = reply.send(clone_on(&leader, cpu, stub::fork_stub));
            }
            Request::Shutdown => break,
        }
    }
    finish(&leader);
}

/// Makes a new stub thread or process with `make` injected into `leader`, after moving the
/// master and `leader` to `cpu` if given (best effort: only speed is at stake).
fn clone_on(
    leader: &StubThread,
    cpu: Option<usize>,
    make: fn(&StubThread) -> Result<i32, PlatformError>,
) -> Result<i32, PlatformError> {
    if let Some(cpu) = cpu {
        let _ = cpu::set_thread_affinity(0, cpu);
        let _ = cpu::set_thread_affinity(leader.tid, cpu);
    }
    let r = retry_eagain(|| make(leader));
    if let Err(e) = &r {
        tracing::debug!(pid = leader.tgid, error = %e, "cannot make a stub thread or process");
    }
    r
}

/// Kills the stub process unless its first thread is known to be gone, and reaps that
/// thread.
fn finish(leader: &StubThread) {
    let mut st = leader.lock();
    if st.exited.is_some() {
        return;
    }
    // SAFETY: kill takes integers; the first thread is our unreaped child (the zygote) or
    // tracee (a stub), so its pid cannot have been recycled.
    unsafe { libc::kill(leader.tgid, libc::SIGKILL) };
    loop {
        match sys::wait(leader.tid, 0) {
            Ok(Some(s)) if s.is_exit() => break,
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    st.exited = Some("address space dropped".into());
    tracing::debug!(pid = leader.tgid, "ptrace stub killed");
}
