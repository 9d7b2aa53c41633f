//! The sentry's TCP/IP stack (smoltcp) for `--network=sandbox` and `--network=none`.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use rvisor_syscalls::Errno;

use super::{NetError, NetworkSpec, NetworkStack};
use crate::vfs::file::FileImpl;

pub struct SandboxStack {
    spec: NetworkSpec,
}

impl SandboxStack {
    pub fn new(spec: NetworkSpec, fds: Vec<OwnedFd>) -> Result<Arc<SandboxStack>, NetError> {
        drop(fds);
        Ok(Arc::new(SandboxStack { spec }))
    }
}

impl NetworkStack for SandboxStack {
    fn socket(&self, _domain: i32, _ty: i32, _protocol: i32, _may_raw: bool) -> Result<Arc<dyn FileImpl>, Errno> {
        Err(Errno::EAFNOSUPPORT)
    }

    fn spec(&self) -> &NetworkSpec {
        &self.spec
    }
}
