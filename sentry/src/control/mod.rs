//! The sandbox's control server: the OCI CLI talks to a running sandbox over a unix socket
//! (start, exec, wait, signal, ps, stats, pause, resume). See [`protocol`].

pub mod caps;
pub mod oom;
pub mod protocol;
pub mod server;
pub mod spawn;

pub use protocol::{
    Capabilities, ControlClient, ProcessInfo, ProcessSpec, Request, Response, Stats,
};
pub mod state;

pub use state::KernelControl;
