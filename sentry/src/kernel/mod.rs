//! The kernel: global sandbox state, tasks, and the run loop.

pub mod caps;
pub mod clone;
pub mod deliver;
pub mod exec;
pub mod exit;
pub mod fdtable;
pub mod futex;
pub mod futex_hooks;
pub mod membudget;
pub mod run;
pub mod signal;
pub mod signal_frame;
pub mod task;
pub mod thread_group;
pub mod timer;
pub mod wait;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use rvisor_platform::Platform;
use rvisor_syscalls::nr::MAX_NR;

use crate::mm::MemoryFile;
use crate::vfs::Vfs;

pub use task::{ExitStatus, Task, TaskHandle};
pub use thread_group::ThreadGroup;

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

/// The UTS names a sysctl or a set*name call may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UtsName {
    /// `kernel.hostname`, sethostname(2), `uname -n`.
    Node,
    /// `kernel.domainname`, setdomainname(2).
    Domain,
}

/// The longest UTS name (Linux's `__NEW_UTS_LEN`).
pub const UTS_NAME_MAX: usize = 64;

impl UtsInfo {
    /// Sets a UTS name: EINVAL beyond [`UTS_NAME_MAX`] bytes or for bytes that are not
    /// UTF-8 (rvisor keeps names as text).
    pub fn set_name(&mut self, which: UtsName, value: &[u8]) -> Result<(), rvisor_syscalls::Errno> {
        if value.len() > UTS_NAME_MAX {
            return Err(rvisor_syscalls::Errno::EINVAL);
        }
        let v = std::str::from_utf8(value).map_err(|_| rvisor_syscalls::Errno::EINVAL)?.to_string();
        match which {
            UtsName::Node => self.nodename = v,
            UtsName::Domain => self.domainname = v,
        }
        Ok(())
    }
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
    tables: Mutex<Tables>,
    init_status: Mutex<Option<ExitStatus>>,
    init_cv: Condvar,
    pub timers: timer::Timers,
    pub futex: futex::KernelFutexTable,
    /// The sandbox's pseudo-terminals (mounted at /dev/pts; also the sessions' controlling
    /// terminals).
    pub devpts: Arc<crate::vfs::devpts::DevPts>,
    /// What the control server shares with the kernel (exit statuses, pause, limits).
    pub control: crate::control::KernelControl,
    /// The emulated writable sysctls (/proc/sys).
    pub sysctl: crate::vfs::proc::system::Sysctl,
    /// The network the IP sockets live in (set once at boot; none in unit tests).
    net: std::sync::OnceLock<Arc<dyn crate::net::NetworkStack>>,
}

/// The sandbox's pid namespace: live tasks by tid, thread groups by tgid (zombies
/// included until reaped).
#[derive(Default)]
pub struct Tables {
    pub tasks: HashMap<i32, Arc<TaskHandle>>,
    pub groups: HashMap<i32, Arc<ThreadGroup>>,
}

impl Kernel {
    /// Gives the sandbox its network (once, at boot).
    pub fn set_network(&self, net: Arc<dyn crate::net::NetworkStack>) {
        if self.net.set(net).is_err() {
            tracing::warn!("network already set");
        }
    }

    /// The sandbox's network, if it has one.
    pub fn network(&self) -> Option<&Arc<dyn crate::net::NetworkStack>> {
        self.net.get()
    }

    pub fn new(platform: Arc<dyn Platform>, memory: Arc<MemoryFile>, vfs: Vfs, uts: UtsInfo) -> Arc<Kernel> {
        Arc::new(Kernel {
            platform,
            memory,
            vfs,
            uts: std::sync::Mutex::new(uts),
            boot_time: Instant::now(),
            next_tid: AtomicI32::new(1),
            unimplemented_logged: (0..=MAX_NR).map(|_| AtomicBool::new(false)).collect(),
            tables: Mutex::new(Tables::default()),
            init_status: Mutex::new(None),
            init_cv: Condvar::new(),
            timers: timer::Timers::new(),
            futex: futex::KernelFutexTable::new(),
            devpts: crate::vfs::devpts::DevPts::new(),
            control: crate::control::KernelControl::default(),
            sysctl: Default::default(),
            net: std::sync::OnceLock::new(),
        })
    }

    /// The process tables. Lock order: tables before any thread group.
    pub fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn task(&self, tid: i32) -> Option<Arc<TaskHandle>> {
        self.tables().tasks.get(&tid).cloned()
    }

    pub fn group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.tables().groups.get(&tgid).cloned()
    }

    /// All thread groups (zombies included).
    pub fn all_groups(&self) -> Vec<Arc<ThreadGroup>> {
        self.tables().groups.values().cloned().collect()
    }

    /// The sandbox's init (pid 1), while it exists.
    pub fn init_group(&self) -> Option<Arc<ThreadGroup>> {
        self.group(1)
    }

    /// Records the exit of init: the sandbox ends, every other process is killed.
    pub fn init_exited(&self, status: ExitStatus) {
        for tg in self.all_groups() {
            if tg.tgid != 1 {
                signal::group_exit(self, &tg, ExitStatus::signaled(rvisor_syscalls::flags::signal::SIGKILL));
            }
        }
        *self.init_status.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        self.init_cv.notify_all();
    }

    /// Blocks until init has exited and returns its status.
    pub fn wait_for_init(&self) -> ExitStatus {
        let mut s = self.init_status.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(st) = *s {
                return st;
            }
            s = self.init_cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A fresh thread id in the sandbox's pid namespace (the first is 1).
    pub fn alloc_tid(&self) -> i32 {
        self.next_tid.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs a 32-bit syscall (int 0x80/sysenter), which rvisor does not emulate, once.
    pub fn report_legacy_syscall(&self, nr: u64, comm: &[u8]) {
        static LOGGED: AtomicBool = AtomicBool::new(false);
        if !LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(nr, program = %String::from_utf8_lossy(comm), "32-bit syscall (int 0x80/sysenter) refused with ENOSYS");
        }
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
