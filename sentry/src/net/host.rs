//! `--network=host`: guest sockets backed by host sockets the sentry creates.

use std::sync::Arc;

use rvisor_syscalls::Errno;

use super::{NetError, NetworkSpec, NetworkStack};
use crate::vfs::file::FileImpl;

pub struct HostNetwork {
    spec: NetworkSpec,
}

impl HostNetwork {
    pub fn new(spec: NetworkSpec) -> Result<Arc<HostNetwork>, NetError> {
        Ok(Arc::new(HostNetwork { spec }))
    }
}

impl NetworkStack for HostNetwork {
    fn socket(&self, _domain: i32, _ty: i32, _protocol: i32, _may_raw: bool) -> Result<Arc<dyn FileImpl>, Errno> {
        Err(Errno::EAFNOSUPPORT)
    }

    fn spec(&self) -> &NetworkSpec {
        &self.spec
    }
}
