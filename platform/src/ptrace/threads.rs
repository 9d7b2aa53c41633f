//! Which stub threads each host thread traces, and retiring them when the host thread exits.
//!
//! A host thread that runs guest code (or maps memory) in an address space traces a stub
//! thread of that address space's stub process. The stub thread must not outlive its tracer
//! in a running state: when a tracer exits, the kernel detaches its tracees, and a detached
//! stub thread would run guest code untraced (its first guest syscall then kills the whole
//! stub process through the seccomp filter). Nor should it take the stub process down,
//! which `PTRACE_O_EXITKILL` (set on every stub thread as the last line of defence) would.
//! So each host thread keeps a thread-local list of the stub threads it traces, and the
//! list's destructor — run when the thread exits — retires those whose address space is
//! still alive by injecting `exit(0)`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use super::stub::{self, StubThread};

/// A number naming the calling host thread, never reused within the process (unlike host
/// tids). Stub threads record their tracer by it.
pub fn current_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        // No destructor: readable until the very end of the thread, also from other
        // thread-local destructors.
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

/// The stub threads of one address space, by tracer. Shared (weakly) with the host
/// threads' lists and contexts, which must not keep the address space itself alive.
#[derive(Debug)]
pub struct SpaceThreads {
    /// False once the address space is being dropped (the drop then reaps every stub thread
    /// itself). Held for reading while a stub thread is retired, so the two never overlap.
    alive: RwLock<bool>,
    by_tracer: Mutex<HashMap<u64, Arc<StubThread>>>,
}

impl SpaceThreads {
    pub fn new() -> SpaceThreads {
        SpaceThreads {
            alive: RwLock::new(true),
            by_tracer: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u64, Arc<StubThread>>> {
        self.by_tracer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stub thread traced by the calling thread, if any.
    pub fn current(&self) -> Option<Arc<StubThread>> {
        self.map().get(&current_token()).cloned()
    }

    /// Records `thread`, just made for (and traced by) the calling thread.
    pub fn insert(self: &Arc<Self>, thread: Arc<StubThread>) {
        self.map().insert(thread.tracer, thread.clone());
        register(Arc::downgrade(self), thread);
    }

    /// Retires stub thread `t` (see [`stub::retire`]) and forgets it. Only its tracer may,
    /// and only while the address space lives; otherwise this does nothing.
    pub fn retire(&self, t: &Arc<StubThread>) {
        if t.tracer != current_token() {
            tracing::debug!(
                tid = t.tid,
                "not retiring a stub thread traced by another thread"
            );
            return;
        }
        let alive = self.alive.read().unwrap_or_else(|e| e.into_inner());
        if !*alive {
            return;
        }
        {
            let mut map = self.map();
            if map.get(&t.tracer).is_some_and(|x| Arc::ptr_eq(x, t)) {
                map.remove(&t.tracer);
            }
        }
        unregister(t);
        stub::retire(t);
    }

    /// Retires the calling thread's stub thread `t` unless a context still uses it.
    pub fn retire_if_unused(&self, t: &Arc<StubThread>) {
        if t.users.load(Ordering::SeqCst) == 0 && !t.is_retired() {
            self.retire(t);
        }
    }

    /// The address space is being dropped: no more retirements; returns every stub thread
    /// (for the drop to kill and reap).
    pub fn close(&self) -> Vec<Arc<StubThread>> {
        let mut alive = self.alive.write().unwrap_or_else(|e| e.into_inner());
        *alive = false;
        std::mem::take(&mut *self.map()).into_values().collect()
    }
}

/// The stub threads the calling host thread traces, with their address spaces.
#[derive(Default)]
struct Traced {
    entries: Vec<(Weak<SpaceThreads>, Arc<StubThread>)>,
}

impl Drop for Traced {
    /// The host thread is exiting: retire its stub threads in the address spaces still
    /// alive (the others were reaped when their address space was dropped).
    fn drop(&mut self) {
        for (space, thread) in std::mem::take(&mut self.entries) {
            if let Some(space) = space.upgrade() {
                space.retire(&thread);
            }
        }
    }
}

thread_local! {
    static TRACED: RefCell<Traced> = RefCell::new(Traced::default());
}

/// Records that the calling thread traces `thread` of `space`. Forgets entries of address
/// spaces that are gone.
fn register(space: Weak<SpaceThreads>, thread: Arc<StubThread>) {
    let r = TRACED.try_with(|t| {
        let mut t = t.borrow_mut();
        t.entries.retain(|(s, _)| s.strong_count() > 0);
        t.entries.push((space, thread));
    });
    if r.is_err() {
        // Only during the thread's own exit, when nothing creates stub threads.
        tracing::warn!("stub thread created while its host thread exits; it is not tracked");
    }
}

/// Forgets `thread` (retired). Does nothing once the list is being destroyed.
fn unregister(thread: &Arc<StubThread>) {
    let _ = TRACED.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            t.entries.retain(|(_, th)| !Arc::ptr_eq(th, thread));
        }
    });
}

/// How many live stub threads the calling thread traces (for tests).
#[cfg(test)]
pub fn traced_count() -> usize {
    TRACED.with(|t| {
        t.borrow()
            .entries
            .iter()
            .filter(|(s, th)| {
                s.upgrade()
                    .is_some_and(|s| *s.alive.read().unwrap_or_else(|e| e.into_inner()))
                    && !th.is_retired()
            })
            .count()
    })
}
