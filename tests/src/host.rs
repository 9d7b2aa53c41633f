//! Host processes as `/proc` shows them, for checking that a sandbox leaves nothing behind:
//! the process tree under a pid, processes carrying a marker in their environment, and
//! waiting (bounded, on pidfds) for processes to be gone.

use std::time::{Duration, Instant};

/// One host process. The pid and the start time together name it even after the pid has been
/// reused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostProcess {
    pub pid: i32,
    pub ppid: i32,
    /// Field 22 of `/proc/PID/stat`: clock ticks after boot.
    pub start_time: u64,
    /// The state letter (R, S, D, Z, T, ...).
    pub state: char,
    /// The command line with spaces for NULs (at most 200 bytes), or `[comm]` when it is
    /// empty (kernel threads, and rvisor's stubs, which unmap their whole memory).
    pub cmdline: String,
    /// Where `/proc/PID/exe` points, if it can be read.
    pub exe: String,
}

impl HostProcess {
    /// `/proc/PID` now, or `None` if there is no such process.
    pub fn read(pid: i32) -> Option<HostProcess> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = &stat[open + 1..close];
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // rest[0] is field 3 (state), so field N is rest[N - 3].
        let state = rest.first()?.chars().next()?;
        let ppid = rest.get(1)?.parse().ok()?;
        let start_time = rest.get(22 - 3)?.parse().ok()?;
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut cmdline: String = String::from_utf8_lossy(&raw[..raw.len().min(200)])
            .trim_end_matches('\0')
            .replace('\0', " ");
        if cmdline.is_empty() {
            cmdline = format!("[{comm}]");
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Some(HostProcess {
            pid,
            ppid,
            start_time,
            state,
            cmdline,
            exe,
        })
    }

    /// Whether this same process (pid and start time) exists and has not exited: a zombie
    /// has exited.
    pub fn is_alive(&self) -> bool {
        HostProcess::read(self.pid)
            .is_some_and(|p| p.start_time == self.start_time && !matches!(p.state, 'Z' | 'X' | 'x'))
    }

    /// SIGKILL for this process if it is still the same one (for cleaning up after a failed
    /// check; the test started it, through the sandbox).
    pub fn kill(&self) {
        if self.is_alive() {
            // SAFETY: kill(2) with a pid just checked to name this process (its start time
            // matched); no memory is involved.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }
}

impl std::fmt::Display for HostProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} (parent {}, state {}, exe {}): {}",
            self.pid,
            self.ppid,
            self.state,
            if self.exe.is_empty() { "?" } else { &self.exe },
            self.cmdline
        )
    }
}

/// Every process in `/proc` now.
pub fn host_processes() -> Vec<HostProcess> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<HostProcess> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(HostProcess::read)
        .collect();
    v.sort_by_key(|p| p.pid);
    v
}

/// `root` and all its descendants (by parent pid) as of one scan of `/proc`.
pub fn process_tree(root: i32) -> Vec<HostProcess> {
    let all = host_processes();
    let mut tree: Vec<HostProcess> = all.iter().filter(|p| p.pid == root).cloned().collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].pid;
        for p in &all {
            if p.ppid == parent && !tree.iter().any(|t| t.pid == p.pid) {
                tree.push(p.clone());
            }
        }
        i += 1;
    }
    tree
}

/// Live (not zombie) processes whose environment holds `NAME=VALUE`.
pub fn processes_with_env(name: &str, value: &str) -> Vec<HostProcess> {
    let needle = format!("{name}={value}");
    host_processes()
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .filter(HostProcess::is_alive)
        .collect()
}

/// Waits at most `limit` for every process in `procs` to exit and returns those still alive
/// then. Waits on pidfds (which work for processes that are not our children).
pub fn wait_all_gone(procs: &[HostProcess], limit: Duration) -> Vec<HostProcess> {
    let deadline = Instant::now() + limit;
    for p in procs {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, p.pid, 0) } as i32;
        if fd < 0 {
            // ESRCH: gone. Otherwise (no pidfds), fall back to looking again until the deadline.
            while p.is_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        // The pidfd names whatever has the pid now: wait only if that is still our process.
        if p.is_alive() {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is a live pollfd for the descriptor opened above; nfds is 1.
            unsafe {
                libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32);
            }
        }
        // SAFETY: `fd` was returned by pidfd_open above and is closed once, here.
        unsafe {
            libc::close(fd);
        }
    }
    procs.iter().filter(|p| p.is_alive()).cloned().collect()
}

/// The processes as lines, for failure messages.
pub fn describe(procs: &[HostProcess]) -> String {
    if procs.is_empty() {
        return "  (none)".into();
    }
    procs
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_finds_it_in_its_parents_tree() {
        let me = HostProcess::read(std::process::id() as i32).expect("/proc/self");
        assert!(me.is_alive());
        assert!(me.start_time > 0);
        let tree = process_tree(me.ppid);
        assert!(tree.iter().any(|p| p.pid == me.pid), "{}", describe(&tree));
    }

    #[test]
    fn a_reaped_child_is_gone_and_wait_all_gone_returns_promptly() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "read x"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let p = HostProcess::read(child.id() as i32).unwrap();
        assert!(p.is_alive());
        assert_eq!(
            wait_all_gone(std::slice::from_ref(&p), Duration::from_millis(50)),
            vec![p.clone()]
        );
        drop(child.stdin.take());
        child.wait().unwrap();
        let start = Instant::now();
        assert!(wait_all_gone(std::slice::from_ref(&p), Duration::from_secs(10)).is_empty());
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
