//! OCI containers on the host side: state on disk, cgroups, hooks, the control connection
//! to a running sandbox and the console socket.

pub mod cgroup;
pub mod console_socket;
pub mod control;
pub mod hooks;
pub mod lifecycle;
pub mod state;
pub mod util;
