//! CPU pinning of tracer threads.
//!
//! Every guest syscall is two wake-ups (stub → tracer, tracer → stub). On the project's
//! machines a wake-up across CPUs costs ~100 µs and one on the same CPU ~6 µs, so a tracer
//! thread and its stub run pinned to one CPU. A new stub process inherits the zygote's
//! affinity, which the zygote's master sets to the CPU of the requesting thread; a stub *thread* made for a host thread is pinned by that host
//! thread (its tracer) to the CPU the host thread is pinned to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::PlatformError;

fn empty_set() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    unsafe { std::mem::zeroed() }
}

/// The CPUs the calling thread may run on.
fn allowed_cpus() -> Result<Vec<usize>, PlatformError> {
    let mut set = empty_set();
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(PlatformError::last_os("sched_getaffinity"));
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET only reads the bit `cpu` < CPU_SETSIZE of a live set.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

fn set_affinity(cpu: usize) -> Result<(), PlatformError> {
    set_thread_affinity(0, cpu)
}

/// Pins host thread `tid` (0: the calling thread) to `cpu`. A tracer may do this to its
/// stub threads.
pub fn set_thread_affinity(tid: i32, cpu: usize) -> Result<(), PlatformError> {
    let mut set = empty_set();
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(PlatformError::Host {
            call: "sched_setaffinity",
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above); CPU_SET writes one bit of `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: sched_setaffinity reads size_of::<cpu_set_t>() bytes from a live set; `tid` is
    // a plain integer (0: the calling thread).
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(PlatformError::last_os("sched_setaffinity"));
    }
    Ok(())
}

/// The CPUs the sentry may use, as first seen before the platform pinned any thread (pinned
/// threads pass their single-CPU mask on to threads they spawn, so the current thread's mask
/// is not a good answer later). Set by [`note_allowed_cpus`] or on first use.
static PROCESS_CPUS: OnceLock<Vec<usize>> = OnceLock::new();

/// Records the CPUs the calling thread may use as the set [`pin_current_thread`] spreads
/// over (first call wins). Called when the platform is created.
pub fn note_allowed_cpus() {
    if PROCESS_CPUS.get().is_none() {
        if let Ok(cpus) = allowed_cpus() {
            let _ = PROCESS_CPUS.set(cpus);
        }
    }
}

/// Pins the calling thread to one CPU and returns it: `cpu` if given, else the next of the
/// CPUs the sentry could use when the platform was created, round-robin across calls, so the
/// sentry can spread task threads over the machine.
pub fn pin_current_thread(cpu: Option<usize>) -> Result<usize, PlatformError> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let cpu = match cpu {
        Some(c) => c,
        None => {
            note_allowed_cpus();
            let allowed = PROCESS_CPUS.get().map(Vec::as_slice).unwrap_or_default();
            if allowed.is_empty() {
                return Err(PlatformError::Host {
                    call: "sched_getaffinity",
                    source: std::io::Error::from_raw_os_error(libc::EINVAL),
                });
            }
            allowed[NEXT.fetch_add(1, Ordering::Relaxed) % allowed.len()]
        }
    };
    set_affinity(cpu)?;
    Ok(cpu)
}

/// The CPU the calling thread runs on now (None if the kernel cannot tell).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

/// Pins the calling thread to the CPU it runs on now, unless it already is pinned to a
/// single CPU. Returns the CPU.
pub fn pin_to_current_cpu_if_unpinned() -> Result<usize, PlatformError> {
    let allowed = allowed_cpus()?;
    if let [only] = allowed[..] {
        return Ok(only);
    }
    // SAFETY: sched_getcpu takes no arguments.
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 {
        return Err(PlatformError::last_os("sched_getcpu"));
    }
    set_affinity(cpu as usize)?;
    Ok(cpu as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_current_thread_round_robin_stays_within_allowed_cpus() {
        std::thread::spawn(|| {
            note_allowed_cpus();
            let process = PROCESS_CPUS.get().cloned().unwrap_or_default();
            let cpu = pin_current_thread(None).expect("pin");
            assert!(process.contains(&cpu));
            assert_eq!(allowed_cpus().expect("affinity"), vec![cpu]);
            // Already pinned: stays where it is.
            assert_eq!(pin_to_current_cpu_if_unpinned().expect("pin"), cpu);
        })
        .join()
        .expect("thread");
    }
}
