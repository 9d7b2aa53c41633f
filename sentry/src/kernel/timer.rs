//! Per-process real-time interval timers (alarm(2), setitimer(ITIMER_REAL)), served by one
//! timer thread per sandbox that sends SIGALRM when a timer expires.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::signal::SIGALRM;

use super::signal::{send_to_group, SignalInfo};
use super::thread_group::ThreadGroup;
use super::Kernel;

struct RealTimer {
    deadline: Instant,
    interval: Duration,
    tg: Weak<ThreadGroup>,
}

#[derive(Default)]
struct State {
    timers: HashMap<i32, RealTimer>,
    kernel: Option<Weak<Kernel>>,
    thread_started: bool,
}

/// The sandbox's ITIMER_REAL timers, by thread group id.
#[derive(Default)]
pub struct Timers {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl Timers {
    pub fn new() -> Timers {
        Timers::default()
    }

    /// Arms (`value` non-zero) or disarms the group's timer; returns the old remaining
    /// time and interval.
    pub fn set_real(&self, k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, value: Duration, interval: Duration) -> (Duration, Duration) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let old = st
            .timers
            .remove(&tg.tgid)
            .map(|t| (t.deadline.saturating_duration_since(now), t.interval))
            .unwrap_or_default();
        if !value.is_zero() {
            st.timers.insert(tg.tgid, RealTimer { deadline: now + value, interval, tg: Arc::downgrade(tg) });
        }
        if st.kernel.is_none() {
            st.kernel = Some(Arc::downgrade(k));
        }
        if !st.thread_started {
            let shared = self.shared.clone();
            if std::thread::Builder::new().name("itimer".into()).spawn(move || timer_thread(shared)).is_ok() {
                st.thread_started = true;
            }
        }
        cv.notify_all();
        old
    }

    /// The remaining time and interval of the group's timer (zero when disarmed).
    pub fn get_real(&self, tgid: i32) -> (Duration, Duration) {
        let st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        st.timers.get(&tgid).map(|t| (t.deadline.saturating_duration_since(Instant::now()), t.interval)).unwrap_or_default()
    }

    /// Drops the timer of an exited group.
    pub fn remove(&self, tgid: i32) {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner()).timers.remove(&tgid);
    }
}

fn timer_thread(shared: Arc<(Mutex<State>, Condvar)>) {
    let (lock, cv) = &*shared;
    let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        let mut fire: Vec<Arc<ThreadGroup>> = Vec::new();
        let mut next: Option<Instant> = None;
        st.timers.retain(|_, t| {
            if t.deadline <= now {
                if let Some(tg) = t.tg.upgrade() {
                    fire.push(tg);
                }
                if t.interval.is_zero() {
                    return false;
                }
                t.deadline = now + t.interval;
            }
            next = Some(next.map_or(t.deadline, |n| n.min(t.deadline)));
            true
        });
        if !fire.is_empty() {
            let k = st.kernel.as_ref().and_then(Weak::upgrade);
            drop(st);
            if let Some(k) = k {
                for tg in fire {
                    send_to_group(&k, &tg, SignalInfo::kernel(SIGALRM), false);
                }
            }
            st = lock.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        st = match next {
            None => cv.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(d) => cv.wait_timeout(st, d.saturating_duration_since(now)).unwrap_or_else(|p| p.into_inner()).0,
        };
    }
}
