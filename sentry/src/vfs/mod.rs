//! The virtual file system: dentries, inodes, open file descriptions and path walks.
//!
//! A filesystem provides [`Inode`]s; the VFS caches them in a [`Dentry`] tree, walks paths
//! component by component (symlinks, `..`, trailing slashes) and turns an opened inode
//! into a [`FileDescription`] whose kind-specific behaviour is a [`FileImpl`].

pub mod dentry;
pub mod epoll;
pub mod eventfd;
pub mod devfs;
pub mod devpts;
pub mod file;
pub mod gofer;
pub mod host;
pub mod inode;
pub mod inotify;
pub mod mount;
pub mod proc;
pub mod lock;
pub mod memfd;
pub mod overlay;
pub mod path;
pub mod permission;
pub mod signalfd;
pub mod synthetic;
pub mod timerfd;
pub mod pipe;
pub mod unix;
pub mod tmpfs;

pub use dentry::Dentry;
pub use file::{FileDescription, FileImpl};
pub use inode::{DirEntry, Inode, SetAttr, TimeSet};
pub use path::{Lookup, Vfs};
