//! AF_UNIX addresses and the sandbox's name tables.
//!
//! A socket bound to a path has a socket node (S_IFSOCK) in the VFS; the table here maps
//! that node's identity (st_dev, st_ino) to the bound socket, so connect(2) resolves the
//! path with the caller's credentials and then looks the node up. Abstract names
//! (`sun_path[0] == 0`) live only in the abstract table: the name is every byte the
//! caller's address length covers. One sentry serves one sandbox, so both tables are
//! process-wide. Entries hold `Weak` references; a closing socket removes its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rvisor_syscalls::Errno;

use super::UnixSocket;

/// `AF_UNIX`.
pub const AF_UNIX: u16 = 1;

/// A bound AF_UNIX name, as getsockname(2) reports it after the family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A filesystem path (without the terminating NUL).
    Path(Vec<u8>),
    /// An abstract name: the bytes after the leading NUL.
    Abstract(Vec<u8>),
}

impl Addr {
    /// The `struct sockaddr_un` bytes (family first) and thus the reported address length:
    /// a path gets its NUL counted, as Linux does; an abstract name is exact.
    pub fn sockaddr(&self) -> Vec<u8> {
        let mut v = AF_UNIX.to_le_bytes().to_vec();
        match self {
            Addr::Path(p) => {
                v.extend_from_slice(p);
                v.push(0);
            }
            Addr::Abstract(n) => {
                v.push(0);
                v.extend_from_slice(n);
            }
        }
        v
    }
}

/// What a guest `sockaddr_un` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requested {
    /// Only the family: autobind (bind) / EINVAL elsewhere.
    Unnamed,
    Named(Addr),
}

/// Parses the bytes of a guest `sockaddr_un` (length already checked to be 2..=110).
pub fn parse(raw: &[u8]) -> Result<Requested, Errno> {
    if raw.len() < 2 || u16::from_le_bytes([raw[0], raw[1]]) != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &raw[2..];
    match path.first() {
        None => Ok(Requested::Unnamed),
        Some(0) => Ok(Requested::Named(Addr::Abstract(path[1..].to_vec()))),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            Ok(Requested::Named(Addr::Path(path[..end].to_vec())))
        }
    }
}

type Table<K> = Mutex<Option<HashMap<K, Weak<UnixSocket>>>>;

static ABSTRACT: Table<Vec<u8>> = Mutex::new(None);
static PATHS: Table<(u64, u64)> = Mutex::new(None);
static NEXT_AUTOBIND: AtomicU32 = AtomicU32::new(0);

fn lock<K>(t: &'static Table<K>) -> MutexGuard<'static, Option<HashMap<K, Weak<UnixSocket>>>> {
    // A map of weak references: a panic elsewhere leaves it usable.
    t.lock().unwrap_or_else(|p| p.into_inner())
}

fn insert<K: std::hash::Hash + Eq>(
    t: &'static Table<K>,
    key: K,
    s: &Arc<UnixSocket>,
) -> Result<(), Errno> {
    let mut g = lock(t);
    let m = g.get_or_insert_with(HashMap::new);
    if m.get(&key).is_some_and(|w| w.strong_count() > 0) {
        return Err(Errno::EADDRINUSE);
    }
    m.insert(key, Arc::downgrade(s));
    Ok(())
}

fn find<K: std::hash::Hash + Eq>(t: &'static Table<K>, key: &K) -> Option<Arc<UnixSocket>> {
    lock(t).as_ref()?.get(key)?.upgrade()
}

fn remove<K: std::hash::Hash + Eq>(t: &'static Table<K>, key: &K, s: *const UnixSocket) {
    let mut g = lock(t);
    if let Some(m) = g.as_mut() {
        if m.get(key).is_some_and(|w| std::ptr::eq(w.as_ptr(), s)) {
            m.remove(key);
        }
    }
}

/// Claims abstract name `name` for `s` (EADDRINUSE if a live socket holds it).
pub fn bind_abstract(name: &[u8], s: &Arc<UnixSocket>) -> Result<(), Errno> {
    insert(&ABSTRACT, name.to_vec(), s)
}

/// Claims an unused autobind name (`\0` + 5 hex digits, as Linux).
pub fn autobind(s: &Arc<UnixSocket>) -> Result<Addr, Errno> {
    for _ in 0..0x10_0000u32 {
        let n = NEXT_AUTOBIND.fetch_add(1, Ordering::Relaxed) & 0xf_ffff;
        let name = format!("{n:05x}").into_bytes();
        if bind_abstract(&name, s).is_ok() {
            return Ok(Addr::Abstract(name));
        }
    }
    Err(Errno::ENOSPC)
}

/// The live socket bound to abstract `name`.
pub fn find_abstract(name: &[u8]) -> Option<Arc<UnixSocket>> {
    find(&ABSTRACT, &name.to_vec())
}

/// Records `s` as bound to the socket node `(dev, ino)`, which bind(2) has just created:
/// an older entry with the same identity belongs to a node since removed (a host
/// filesystem may reuse inode numbers), so the new binding replaces it.
pub fn bind_node(dev: u64, ino: u64, s: &Arc<UnixSocket>) {
    lock(&PATHS)
        .get_or_insert_with(HashMap::new)
        .insert((dev, ino), Arc::downgrade(s));
}

/// The live socket bound to the node `(dev, ino)`.
pub fn find_node(dev: u64, ino: u64) -> Option<Arc<UnixSocket>> {
    find(&PATHS, &(dev, ino))
}

/// Where a socket is registered, to unregister it when it closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    Abstract(Vec<u8>),
    Node(u64, u64),
}

/// Removes `s`'s entry (only if it is still `s`'s).
pub fn unregister(r: &Registration, s: *const UnixSocket) {
    match r {
        Registration::Abstract(n) => remove(&ABSTRACT, n, s),
        Registration::Node(d, i) => remove(&PATHS, &(*d, *i), s),
    }
}
