//! The sandbox's OOM killer for `memory_limit`: when the memory-file pages in use go over
//! the limit, the process with the most resident memory is killed with SIGKILL, as the
//! Linux OOM killer does inside a memory cgroup. The sentry's own caps that scale with the
//! limit (open fds, pipe and socket buffers) follow it here too, also when `update` changes it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rvisor_syscalls::flags::signal::SIGKILL;

use crate::kernel::signal::{send_to_group, SignalInfo};
use crate::kernel::Kernel;

/// How often usage is compared with the limit.
const PERIOD: Duration = Duration::from_millis(5);

/// Scales the sandbox-wide caps kept outside guest memory to the memory limit.
fn scale_caps(limit: u64) {
    crate::kernel::fdtable::set_memory_limit(limit);
    crate::vfs::pipe::set_memory_limit(limit);
    crate::kernel::membudget::set_memory_limit(limit);
}

/// Starts the watcher thread; it ends with the kernel.
pub fn start_monitor(kernel: &Arc<Kernel>) {
    let mut scaled_for = kernel.control.memory_limit.load(Ordering::Relaxed);
    scale_caps(scaled_for);
    let weak: Weak<Kernel> = Arc::downgrade(kernel);
    let spawned = std::thread::Builder::new()
        .name("oom".into())
        .spawn(move || loop {
            std::thread::sleep(PERIOD);
            let Some(k) = weak.upgrade() else { return };
            let limit = k.control.memory_limit.load(Ordering::Relaxed);
            if limit != scaled_for {
                scale_caps(limit);
                scaled_for = limit;
            }
            if limit == 0 || k.memory.allocated() <= limit {
                continue;
            }
            if let Some(victim) = largest_process(&k) {
                tracing::warn!(
                    pid = victim.tgid,
                    usage = k.memory.allocated(),
                    limit,
                    "memory limit exceeded: killing the largest process"
                );
                k.control.oom_killed.store(true, Ordering::SeqCst);
                send_to_group(&k, &victim, SignalInfo::kernel(SIGKILL), false);
                // Give the victim time to release its memory before looking again.
                for _ in 0..200 {
                    if victim.exit_status().is_some() && victim.lock().threads.is_empty() {
                        break;
                    }
                    std::thread::sleep(PERIOD);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the OOM watcher");
    }
}

/// The live process with the most resident guest memory.
fn largest_process(k: &Kernel) -> Option<Arc<crate::kernel::ThreadGroup>> {
    k.all_groups()
        .into_iter()
        .filter(|g| g.is_alive())
        .filter_map(|g| {
            let rss = g
                .lock()
                .threads
                .first()
                .and_then(|h| h.proc_info().mm)
                .map_or(0, |mm| mm.realised_bytes());
            Some((rss, g))
        })
        .max_by_key(|(rss, g)| (*rss, -g.tgid))
        .map(|(_, g)| g)
}
