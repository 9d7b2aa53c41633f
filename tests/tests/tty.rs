//! Terminals: pseudo-terminals opened by programs (`c/pty.c`: line discipline, signals
//! from ^C/^Z/^\, window size, job-control ioctls, compared with native runs as pid 1), and
//! `rvisor do --tty` driven like a person at a terminal: the test allocates a pty, runs
//! an interactive bash on its replica (natively, and under rvisor with `--tty`), types at
//! the master and waits for the expected output.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rvisor_tests::*;

const PTY: &str = env!("RVISOR_TEST_PROG_PTY");

#[test]
fn canonical_mode_edits_lines_echoes_and_maps_newlines_like_native() {
    assert_section_same_as_init(PTY, "canon");
}

#[test]
fn raw_mode_vmin_vtime_nonblocking_and_flush_match_native() {
    assert_section_same_as_init(PTY, "raw");
}

#[test]
fn interrupt_suspend_and_quit_characters_signal_the_foreground_group() {
    assert_section_same_as_init(PTY, "isig");
}

#[test]
fn window_size_change_sends_sigwinch() {
    assert_section_same_as_init(PTY, "winch");
}

#[test]
fn controlling_terminal_and_foreground_process_group_rules_match_native() {
    assert_section_same_as_init(PTY, "pgrp");
}

#[test]
fn attributes_round_trip_lock_and_hangup_match_native() {
    assert_section_same_as_init(PTY, "attrs");
}

/// A pty allocated by the test: the master to type at and read from, and a program
/// running on the replica.
struct Session {
    master: std::fs::File,
    child: std::process::Child,
    output: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    /// The command line, for failure messages.
    what: String,
}

impl Session {
    fn start(program: &str, args: &[&str]) -> Session {
        let (mut m, mut r) = (0, 0);
        let ws = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: `m` and `r` are valid out-pointers; the name pointer may be null; the
        // termios pointer is null (defaults) and `ws` is a valid winsize.
        let rc = unsafe { libc::openpty(&mut m, &mut r, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty just created both descriptors; nobody else owns them.
        let (master, replica) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(r)) };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("PATH", SYSTEM_PATH)
            .env("TERM", "dumb")
            .env("PS1", "PROMPT$ ")
            .env_remove("PROMPT_COMMAND");
        cmd.stdin(Stdio::from(replica.try_clone().unwrap()));
        cmd.stdout(Stdio::from(replica.try_clone().unwrap()));
        cmd.stderr(Stdio::from(replica));
        // The program's own session, with the replica as its controlling terminal.
        // SAFETY: setsid and ioctl are async-signal-safe and touch no parent memory.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                // As a login would: default dispositions (a test run in the background
                // inherits SIGINT and SIGQUIT ignored, which bash would pass on to its jobs).
                for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn the terminal program");
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the replica is closed everywhere.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Session {
            master,
            child,
            output: rx,
            seen: Vec::new(),
            what: format!("{program} {}", args.join(" ")),
        }
    }

    /// Waits until the output since the last wait contains `what`; returns that output.
    #[track_caller]
    fn wait_for(&mut self, what: &str) -> String {
        match self.wait_within(what, timeout()) {
            Some(text) => text,
            None => panic!(
                "`{}`: timed out waiting for {what:?}; the terminal showed:\n{}",
                self.what,
                String::from_utf8_lossy(&self.seen)
            ),
        }
    }

    /// Like [`Self::wait_for`], giving up (`None`) after `limit`.
    fn wait_within(&mut self, what: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = find(&self.seen, what.as_bytes()) {
                let end = i + what.len();
                let text = String::from_utf8_lossy(&self.seen[..end]).into_owned();
                self.seen.drain(..end);
                return Some(text);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => return None,
            }
        }
    }

    /// Types `key` (^C, ^Z) until `what` shows up. A job that printed its first line may
    /// still be in the window after fork where bash's own handlers are installed (natively
    /// too), so a single ^C can be lost; a real user types it again.
    #[track_caller]
    fn signal_until(&mut self, key: &str, what: &str) -> String {
        for _ in 0..10 {
            self.type_keys(key);
            if let Some(text) = self.wait_within(what, Duration::from_secs(3)) {
                return text;
            }
        }
        self.wait_for(what)
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Types `exit` and waits for the program to end.
    fn finish(mut self) -> std::process::ExitStatus {
        self.type_keys("exit\r");
        let deadline = Instant::now() + timeout();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "the terminal program did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Runs one interactive bash session natively or under `rvisor do --tty`, typing the same
/// keys, and returns the transcript pieces the test compares.
fn bash_session(sandboxed: bool) -> Vec<String> {
    require_program("/bin/bash", "bash");
    let rvisor = rvisor_bin();
    let bash_args = ["--norc", "--noprofile", "-i"];
    let mut s = if sandboxed {
        let mut a = vec!["do", "--tty", "/bin/bash"];
        a.extend(bash_args);
        Session::start(&rvisor.to_string_lossy(), &a)
    } else {
        Session::start("/bin/bash", &bash_args)
    };
    let mut pieces = Vec::new();
    s.wait_for("PROMPT$ ");
    // stty -a: everything but the line discipline number is the terminal's own state.
    s.type_keys("stty -a; echo END-STTY\r");
    s.wait_for("END-STTY\r\n");
    pieces.push(s.wait_for("END-STTY\r\n"));
    s.wait_for("PROMPT$ ");
    // ^C interrupts a foreground sleep; $? is 130. The job says when it runs in the
    // foreground (bash gives it the terminal before it runs), so ^C is not typed too early.
    s.type_keys("(echo started; exec sleep 100)\r");
    s.wait_for("started\r\n");
    s.signal_until("\x03", "PROMPT$ ");
    s.type_keys("echo status=$?\r");
    pieces.push(s.wait_for("PROMPT$ ").lines().filter(|l| l.starts_with("status=")).collect());
    // ^Z stops a job; fg resumes it in the foreground (its terminal reads work again: a
    // background cat would be stopped by SIGTTIN); ^C then ends it.
    s.type_keys("(echo started; exec cat)\r");
    s.wait_for("started\r\n");
    pieces.push(
        s.signal_until("\x1a", "PROMPT$ ")
            .lines()
            .filter(|l| l.contains("Stopped"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    s.type_keys("fg\r");
    pieces.push(s.wait_for("exec cat )\r\n").lines().last().unwrap_or_default().to_string());
    s.type_keys("hello\r");
    s.wait_for("hello\r\nhello\r\n");
    s.signal_until("\x03", "PROMPT$ ");
    s.type_keys("echo status=$?\r");
    pieces.push(s.wait_for("PROMPT$ ").lines().filter(|l| l.starts_with("status=")).collect());
    let st = s.finish();
    assert!(st.success(), "bash exited with {st:?}");
    pieces
}

#[test]
fn interactive_bash_under_do_tty_behaves_like_native_for_stty_ctrl_c_and_job_control() {
    let native = bash_session(false);
    let sandboxed = bash_session(true);
    assert_eq!(native[1], "status=130", "native: {native:?}");
    assert!(native[2].contains("Stopped"), "native: {native:?}");
    assert_eq!(sandboxed, native, "rvisor do --tty and native bash differ");
}
