//! Per-process interval timers: real time (alarm(2), ITIMER_REAL → SIGALRM) and CPU time
//! (ITIMER_VIRTUAL → SIGVTALRM, ITIMER_PROF → SIGPROF), served by one timer thread per
//! sandbox. CPU timers are checked every 10 ms against the process's CPU time (the ptrace
//! platform cannot tell user from system time, so both count the whole).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::signal::{SIGALRM, SIGPROF, SIGVTALRM};

use super::signal::{send_to_group, SignalInfo};
use super::thread_group::ThreadGroup;
use super::Kernel;

struct RealTimer {
    deadline: Instant,
    interval: Duration,
    tg: Weak<ThreadGroup>,
}

/// Which CPU-time timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuTimerKind {
    Virtual,
    Prof,
}

struct CpuTimer {
    /// Fires when the group's CPU time reaches this many ns.
    deadline_ns: u64,
    interval_ns: u64,
    tg: Weak<ThreadGroup>,
}

/// How often armed CPU-time timers are checked.
const CPU_TICK: Duration = Duration::from_millis(10);

#[derive(Default)]
struct State {
    timers: HashMap<i32, RealTimer>,
    cpu_timers: HashMap<(i32, CpuTimerKind), CpuTimer>,
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
        self.start_thread(&mut st, k);
        cv.notify_all();
        old
    }

    /// Arms or disarms a CPU-time timer of the group; returns the old remaining CPU time and
    /// interval.
    pub fn set_cpu(&self, k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, kind: CpuTimerKind, value: Duration, interval: Duration) -> (Duration, Duration) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        let used = tg.cpu_time_ns();
        let old = st
            .cpu_timers
            .remove(&(tg.tgid, kind))
            .map(|t| (Duration::from_nanos(t.deadline_ns.saturating_sub(used)), Duration::from_nanos(t.interval_ns)))
            .unwrap_or_default();
        if !value.is_zero() {
            let timer = CpuTimer { deadline_ns: used + value.as_nanos() as u64, interval_ns: interval.as_nanos() as u64, tg: Arc::downgrade(tg) };
            st.cpu_timers.insert((tg.tgid, kind), timer);
        }
        self.start_thread(&mut st, k);
        cv.notify_all();
        old
    }

    /// The remaining CPU time and interval of a CPU-time timer (zero when disarmed).
    pub fn get_cpu(&self, tg: &ThreadGroup, kind: CpuTimerKind) -> (Duration, Duration) {
        let st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        st.cpu_timers
            .get(&(tg.tgid, kind))
            .map(|t| (Duration::from_nanos(t.deadline_ns.saturating_sub(tg.cpu_time_ns())), Duration::from_nanos(t.interval_ns)))
            .unwrap_or_default()
    }

    fn start_thread(&self, st: &mut State, k: &Arc<Kernel>) {
        if st.kernel.is_none() {
            st.kernel = Some(Arc::downgrade(k));
        }
        if !st.thread_started {
            let shared = self.shared.clone();
            if std::thread::Builder::new().name("itimer".into()).spawn(move || timer_thread(shared)).is_ok() {
                st.thread_started = true;
            }
        }
    }

    /// The remaining time and interval of the group's timer (zero when disarmed).
    pub fn get_real(&self, tgid: i32) -> (Duration, Duration) {
        let st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        st.timers.get(&tgid).map(|t| (t.deadline.saturating_duration_since(Instant::now()), t.interval)).unwrap_or_default()
    }

    /// Drops the timers of an exited group.
    pub fn remove(&self, tgid: i32) {
        let mut st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        st.timers.remove(&tgid);
        st.cpu_timers.retain(|(g, _), _| *g != tgid);
    }
}

fn timer_thread(shared: Arc<(Mutex<State>, Condvar)>) {
    let (lock, cv) = &*shared;
    let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        let mut fire: Vec<(Arc<ThreadGroup>, u32)> = Vec::new();
        let mut next: Option<Instant> = None;
        st.cpu_timers.retain(|&(_, kind), t| {
            let Some(tg) = t.tg.upgrade() else { return false };
            if tg.cpu_time_ns() < t.deadline_ns {
                return true;
            }
            let sig = match kind {
                CpuTimerKind::Virtual => SIGVTALRM,
                CpuTimerKind::Prof => SIGPROF,
            };
            fire.push((tg, sig));
            if t.interval_ns == 0 {
                return false;
            }
            t.deadline_ns += t.interval_ns;
            true
        });
        if !st.cpu_timers.is_empty() {
            next = Some(now + CPU_TICK);
        }
        st.timers.retain(|_, t| {
            if t.deadline <= now {
                if let Some(tg) = t.tg.upgrade() {
                    fire.push((tg, SIGALRM));
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
                for (tg, sig) in fire {
                    send_to_group(&k, &tg, SignalInfo::kernel(sig), false);
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
