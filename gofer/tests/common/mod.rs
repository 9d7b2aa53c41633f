//! A temporary directory tree served by a gofer server on a thread.
#![allow(dead_code)]

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use rvisor_gofer::{serve, socketpair, GoferClient, GoferError, ServerOptions};

/// A directory under the system temp dir, removed on drop.
pub struct TempTree {
    pub path: PathBuf,
}

impl TempTree {
    /// An empty directory.
    pub fn empty() -> TempTree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "rvisor-gofer-test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir(&path).unwrap();
        TempTree { path }
    }

    /// The standard test tree:
    /// ```text
    /// hello.txt      "hello, gofer\n"
    /// empty          (empty file)
    /// subdir/inner.txt "inner\n"
    /// subdir/deeper/
    /// rel_link    -> ../../../../../../../../etc/passwd
    /// abs_link    -> /etc/passwd
    /// dir_link    -> /etc
    /// fifo        (a named pipe)
    /// sock        (a bound unix socket)
    /// many/       60 files with long names
    /// ```
    pub fn standard() -> TempTree {
        let t = TempTree::empty();
        fs::write(t.join("hello.txt"), b"hello, gofer\n").unwrap();
        fs::write(t.join("empty"), b"").unwrap();
        fs::create_dir(t.join("subdir")).unwrap();
        fs::write(t.join("subdir/inner.txt"), b"inner\n").unwrap();
        fs::create_dir(t.join("subdir/deeper")).unwrap();
        symlink("../../../../../../../../etc/passwd", t.join("rel_link")).unwrap();
        symlink("/etc/passwd", t.join("abs_link")).unwrap();
        symlink("/etc", t.join("dir_link")).unwrap();
        nix::unistd::mkfifo(
            &t.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let listener = std::os::unix::net::UnixListener::bind(t.join("sock")).unwrap();
        drop(listener);
        fs::create_dir(t.join("many")).unwrap();
        for i in 0..60 {
            fs::write(
                t.join(&format!("many/file-with-a-rather-long-name-{i:03}")),
                format!("{i}"),
            )
            .unwrap();
        }
        t
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// An `O_PATH|O_DIRECTORY` descriptor of the tree's root.
    pub fn root_fd(&self) -> OwnedFd {
        open_dir_path(&self.path)
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub fn open_dir_path(path: &Path) -> OwnedFd {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .unwrap();
    OwnedFd::from(f)
}

/// A server on a thread serving a tree, and a client connected to it.
pub struct Fixture {
    pub tree: TempTree,
    client: Option<GoferClient>,
    server: Option<JoinHandle<Result<(), GoferError>>>,
}

impl Fixture {
    pub fn new(opts: ServerOptions) -> Fixture {
        Fixture::serve(TempTree::standard(), opts)
    }

    pub fn serve(tree: TempTree, opts: ServerOptions) -> Fixture {
        let (server_sock, client_sock) = socketpair().unwrap();
        let root = tree.root_fd();
        let server = std::thread::spawn(move || serve(server_sock, root, opts));
        Fixture {
            tree,
            client: Some(GoferClient::new(client_sock)),
            server: Some(server),
        }
    }

    pub fn client(&self) -> &GoferClient {
        self.client.as_ref().unwrap()
    }

    /// Closes the client and checks that the server returned `Ok` (it did not panic or fail).
    pub fn finish(mut self) {
        self.client = None;
        let result = self
            .server
            .take()
            .unwrap()
            .join()
            .expect("server thread panicked");
        assert!(result.is_ok(), "server failed: {result:?}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.client = None;
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}
