//! The kernel: global sandbox state, tasks, and the run loop.

pub mod exec;
pub mod fdtable;
pub mod run;
pub mod signal;
pub mod task;
pub mod wait;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rvisor_platform::Platform;
use rvisor_syscalls::nr::MAX_NR;

use crate::mm::MemoryFile;
use crate::vfs::Vfs;

pub use task::Task;

/// The kernel release `uname -r` shows unless the user overrides it. rvisor's own, never
/// the host's.
pub const DEFAULT_KERNEL_RELEASE: &str = "6.6.0-rvisor";
/// The kernel version string `uname -v` shows.
pub const DEFAULT_KERNEL_VERSION: &str = "#1 SMP PREEMPT_DYNAMIC rvisor";

/// What the sandbox reports about itself through uname(2).
#[derive(Clone, Debug)]
pub struct UtsInfo {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

impl Default for UtsInfo {
    fn default() -> Self {
        UtsInfo {
            sysname: "Linux".into(),
            nodename: "localhost".into(),
            release: DEFAULT_KERNEL_RELEASE.into(),
            version: DEFAULT_KERNEL_VERSION.into(),
            machine: "x86_64".into(),
            domainname: "(none)".into(),
        }
    }
}

/// State shared by every task of one sandbox.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    pub vfs: Vfs,
    pub uts: std::sync::Mutex<UtsInfo>,
    /// When the sandbox booted (CLOCK_MONOTONIC/BOOTTIME origin for uptime).
    pub boot_time: Instant,
    next_tid: AtomicI32,
    unimplemented_logged: Vec<AtomicBool>,
}

impl Kernel {
    pub fn new(platform: Arc<dyn Platform>, memory: Arc<MemoryFile>, vfs: Vfs, uts: UtsInfo) -> Arc<Kernel> {
        Arc::new(Kernel {
            platform,
            memory,
            vfs,
            uts: std::sync::Mutex::new(uts),
            boot_time: Instant::now(),
            next_tid: AtomicI32::new(1),
            unimplemented_logged: (0..=MAX_NR).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    /// A fresh thread id in the sandbox's pid namespace (the first is 1).
    pub fn alloc_tid(&self) -> i32 {
        self.next_tid.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs an unimplemented syscall, once per number.
    pub fn report_unimplemented(&self, nr: u64, comm: &[u8]) {
        let name = rvisor_syscalls::nr::name(nr).unwrap_or("unknown");
        let first = match self.unimplemented_logged.get(nr as usize) {
            Some(flag) => !flag.swap(true, Ordering::Relaxed),
            None => true,
        };
        if first {
            tracing::warn!(nr, name, program = %String::from_utf8_lossy(comm), "unimplemented syscall {name}");
        }
    }
}
