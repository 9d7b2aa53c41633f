//! `rvisor run` in the foreground forwards the signals it gets to the container's init (as
//! runc does) and still exits with the container's status.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use rvisor_tests::oci::Bundle;

/// Waits for the line `want` from the container's output; panics on EOF or timeout.
fn wait_for_line(lines: &mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) {
    loop {
        match lines.recv_timeout(rvisor_tests::timeout()) {
            Ok(l) => {
                let done = l == want;
                seen.push(l);
                if done {
                    return;
                }
            }
            Err(e) => panic!("no {want:?} from the container ({e}); output so far: {seen:?}"),
        }
    }
}

#[test]
fn foreground_run_forwards_signals_to_the_init_and_exits_with_its_status() {
    let script = "trap 'echo got USR1' USR1; trap 'echo got INT' INT; trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 1; done";
    let b = Bundle::new("oci-run-signals", &["sh", "-c", script]);
    let err = b.tmp.path().join("run.err");
    let mut child = Command::new(rvisor_tests::rvisor_bin())
        .arg(format!("--root={}", b.state_root().display()))
        .args(["run", "--bundle", b.dir().to_str().unwrap(), "sig1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("starting rvisor run");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let pid = child.id() as libc::pid_t;
    let mut seen = Vec::new();
    wait_for_line(&lines, "ready", &mut seen);
    // SAFETY: kill takes integers; `pid` is our child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    wait_for_line(&lines, "got USR1", &mut seen);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    wait_for_line(&lines, "got INT", &mut seen);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    wait_for_line(&lines, "got TERM", &mut seen);
    let deadline = std::time::Instant::now() + rvisor_tests::timeout();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("rvisor run did not exit after the container's init did");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(status.code(), Some(3), "status {status:?}; stderr: {stderr}");
    assert_eq!(seen, ["ready", "got USR1", "got INT", "got TERM"], "stderr: {stderr}");
    assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
}
