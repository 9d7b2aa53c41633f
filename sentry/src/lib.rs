//! The sentry: rvisor's user-space Linux kernel.

pub mod boot;
pub mod control;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod syscalls;
pub mod vfs;

pub use kernel::{DEFAULT_KERNEL_RELEASE, DEFAULT_KERNEL_VERSION};
