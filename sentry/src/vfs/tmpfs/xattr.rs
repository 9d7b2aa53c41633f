//! Extended attributes of tmpfs inodes: the `user.` namespace only, as Linux 6.6's tmpfs
//! offers unprivileged users; values live in the sentry's memory, bounded per inode.

use std::collections::BTreeMap;

use rvisor_syscalls::flags::xattr::{XATTR_CREATE, XATTR_REPLACE, XATTR_USER_PREFIX};
use rvisor_syscalls::Errno;

/// Bytes of names and values one inode may hold (Linux bounds tmpfs xattrs by the inode
/// space too); ENOSPC beyond.
const MAX_BYTES_PER_INODE: usize = 128 * 1024;

/// The attributes of one inode.
#[derive(Default)]
pub(super) struct Xattrs {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

/// EOPNOTSUPP for a namespace other than `user.`; EINVAL for the bare prefix.
fn check(name: &[u8]) -> Result<(), Errno> {
    if !name.starts_with(XATTR_USER_PREFIX) {
        return Err(Errno::EOPNOTSUPP);
    }
    if name.len() == XATTR_USER_PREFIX.len() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl Xattrs {
    pub(super) fn get(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        check(name)?;
        self.map.get(name).cloned().ok_or(Errno::ENODATA)
    }

    pub(super) fn set(&mut self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        check(name)?;
        let old = self.map.get(name).map(|v| name.len() + v.len());
        match (old.is_some(), flags) {
            (true, XATTR_CREATE) => return Err(Errno::EEXIST),
            (false, XATTR_REPLACE) => return Err(Errno::ENODATA),
            _ => {}
        }
        let bytes = self.bytes - old.unwrap_or(0) + name.len() + value.len();
        if bytes > MAX_BYTES_PER_INODE {
            return Err(Errno::ENOSPC);
        }
        self.bytes = bytes;
        self.map.insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    pub(super) fn list(&self) -> Vec<Vec<u8>> {
        self.map.keys().cloned().collect()
    }

    pub(super) fn remove(&mut self, name: &[u8]) -> Result<(), Errno> {
        check(name)?;
        let value = self.map.remove(name).ok_or(Errno::ENODATA)?;
        self.bytes -= name.len() + value.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_replace_remove_and_namespaces_follow_linux() {
        let mut x = Xattrs::default();
        assert_eq!(x.get(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(x.set(b"user.a", b"1", XATTR_REPLACE), Err(Errno::ENODATA));
        x.set(b"user.a", b"1", XATTR_CREATE).unwrap();
        assert_eq!(x.set(b"user.a", b"2", XATTR_CREATE), Err(Errno::EEXIST));
        x.set(b"user.a", b"22", XATTR_REPLACE).unwrap();
        x.set(b"user.b", b"", 0).unwrap();
        assert_eq!(x.get(b"user.a").unwrap(), b"22");
        assert_eq!(x.get(b"user.b").unwrap(), b"");
        assert_eq!(x.list(), vec![b"user.a".to_vec(), b"user.b".to_vec()]);
        x.remove(b"user.a").unwrap();
        assert_eq!(x.remove(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(x.set(b"trusted.a", b"1", 0), Err(Errno::EOPNOTSUPP));
        assert_eq!(x.get(b"security.a"), Err(Errno::EOPNOTSUPP));
        assert_eq!(x.set(b"user.", b"1", 0), Err(Errno::EINVAL));
    }

    #[test]
    fn an_inode_holds_a_bounded_number_of_bytes() {
        let mut x = Xattrs::default();
        let big = vec![0u8; 60 * 1024];
        x.set(b"user.1", &big, 0).unwrap();
        x.set(b"user.2", &big, 0).unwrap();
        assert_eq!(x.set(b"user.3", &big, 0), Err(Errno::ENOSPC));
        // Replacing a value counts the new size, not both.
        x.set(b"user.2", &big, 0).unwrap();
        x.remove(b"user.1").unwrap();
        x.set(b"user.3", &big, 0).unwrap();
    }
}
