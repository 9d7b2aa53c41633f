//! AF_NETLINK sockets: NETLINK_ROUTE dumps of links, addresses and routes.

use std::sync::Arc;

use rvisor_syscalls::Errno;

use crate::vfs::file::FileImpl;

/// socket(AF_NETLINK, ty, protocol).
pub fn socket(_ty: i32, _protocol: i32) -> Result<Arc<dyn FileImpl>, Errno> {
    Err(Errno::EAFNOSUPPORT)
}
