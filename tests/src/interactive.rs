//! A run the test drives step by step: start a command (natively or in `rvisor do`), wait for
//! something on its stdout, look at the host's processes meanwhile, write to its stdin, then
//! wait for it to exit. Every wait is bounded; a run dropped before it was waited for is
//! killed with its process group.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{kill_group, rvisor_bin, shell_quote, truncate, Cmd, Outcome};

#[derive(Default)]
struct Stream {
    data: Vec<u8>,
    closed: bool,
}

type Shared = Arc<(Mutex<Stream>, Condvar)>;

/// A started command with piped stdin, stdout and stderr, in its own process group.
pub struct Interactive {
    what: String,
    pid: i32,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Shared,
    stderr: Shared,
    started: Instant,
}

impl Interactive {
    /// Starts `cmd` natively (cwd `/`).
    pub fn native(cmd: &Cmd) -> Interactive {
        let mut c = Command::new(&cmd.program);
        c.args(&cmd.args);
        apply_env(cmd, &mut c);
        Interactive::spawn(c, format!("native `{}`", cmd.display()))
    }

    /// Starts `rvisor GLOBAL_FLAGS... do CMD` (cwd `/`).
    pub fn rvisor(global_flags: &[&str], cmd: &Cmd) -> Interactive {
        let mut c = Command::new(rvisor_bin());
        c.args(global_flags)
            .arg("do")
            .arg(&cmd.program)
            .args(&cmd.args);
        apply_env(cmd, &mut c);
        let flags: String = global_flags
            .iter()
            .map(|f| format!("{} ", shell_quote(f.as_ref())))
            .collect();
        Interactive::spawn(c, format!("`rvisor {flags}do {}`", cmd.display()))
    }

    fn spawn(mut c: Command, what: String) -> Interactive {
        c.current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        Interactive {
            what,
            pid: child.id() as i32,
            stdin: child.stdin.take(),
            child: Some(child),
            stdout,
            stderr,
            started: Instant::now(),
        }
    }

    /// The host pid of the started process (rvisor itself, for a sandboxed run).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// How the run was started (for messages).
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Waits at most `limit` until stdout contains `text`; fails the test (killing the run)
    /// if it does not, or if stdout closes first.
    #[track_caller]
    pub fn wait_for_stdout(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        let (lock, cond) = &*self.stdout;
        let mut s = lock.lock().unwrap();
        loop {
            if contains(&s.data, text.as_bytes()) {
                return;
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                let why = if s.closed {
                    "its stdout closed"
                } else {
                    "the time ran out"
                };
                drop(s);
                let dump = self.dump();
                self.kill();
                panic!(
                    "{} did not print {text:?} within {limit:?} ({why})\n{dump}",
                    self.what
                );
            }
            s = cond.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    /// Writes `data` to the run's stdin.
    #[track_caller]
    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin
            .write_all(data)
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write to the stdin of {}: {e}", self.what));
    }

    /// Closes the run's stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits at most `limit` for the process to exit (else kills its process group and fails
    /// the test), then at most 10 s for its stdout and stderr to close (else the same: a
    /// process it started outlived it). `Outcome::elapsed` counts from the start.
    #[track_caller]
    pub fn wait(mut self, limit: Duration) -> Outcome {
        let mut child = self.child.take().expect("waited twice");
        self.stdin = None;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(limit) {
            Ok(status) => status.unwrap_or_else(|e| panic!("waiting for {}: {e}", self.what)),
            Err(_) => {
                kill_group(self.pid);
                let _ = rx.recv_timeout(Duration::from_secs(10));
                panic!(
                    "{} did not exit within {limit:?}; killed its process group\n{}",
                    self.what,
                    self.dump()
                );
            }
        };
        let elapsed = self.started.elapsed();
        for stream in [&self.stdout, &self.stderr] {
            let (lock, cond) = &**stream;
            let (s, timeout) = cond
                .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(10), |s| !s.closed)
                .unwrap();
            if timeout.timed_out() {
                drop(s);
                kill_group(self.pid);
                panic!(
                    "{} exited ({status:?}) but its stdout/stderr were still open 10 s later: \
                     a process it started outlived it (its process group was killed)\n{}",
                    self.what,
                    self.dump()
                );
            }
        }
        let take = |stream: &Shared| std::mem::take(&mut stream.0.lock().unwrap().data);
        Outcome {
            what: self.what.clone(),
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
            status,
            elapsed,
        }
    }

    /// stdout and stderr so far, for failure messages.
    pub fn dump(&self) -> String {
        let get =
            |stream: &Shared| String::from_utf8_lossy(&stream.0.lock().unwrap().data).into_owned();
        format!(
            "--- stdout so far:\n{}\n--- stderr so far:\n{}\n---",
            truncate(&get(&self.stdout), 8000),
            truncate(&get(&self.stderr), 8000)
        )
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(self.pid);
            let _ = child.wait();
        }
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        self.kill();
    }
}

fn apply_env(cmd: &Cmd, c: &mut Command) {
    for k in &cmd.env_remove {
        c.env_remove(k);
    }
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn reader(mut pipe: impl Read + Send + 'static) -> Shared {
    let shared: Shared = Arc::default();
    let sink = Arc::clone(&shared);
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            let n = match pipe.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            let (lock, cond) = &*sink;
            let mut s = lock.lock().unwrap();
            if n == 0 {
                s.closed = true;
            } else {
                s.data.extend_from_slice(&chunk[..n]);
            }
            cond.notify_all();
            if n == 0 {
                break;
            }
        }
    });
    shared
}
