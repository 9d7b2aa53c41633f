//! Acceptance 1 of the OCI runtime: Debian's containerd, with a root, state and socket of
//! the test's own, runs containers through its stock runc shim with rvisor as the runc
//! binary (`ctr --runc-binary`), from a busybox OCI image built here with umoci.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rvisor_tests::TempDir;

struct Containerd {
    child: Child,
    sock: String,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctr(d: &Containerd, args: &[&str]) -> std::process::Output {
    let out = Command::new("timeout").arg("60").arg("ctr").arg("-a").arg(&d.sock).args(args).stdin(Stdio::null()).output().unwrap();
    eprintln!("ctr {args:?} -> {:?}\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// A child's output, read on a thread so the test can wait for a line while it runs.
fn output_channel(mut from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `cmd` with its stdin a pipe of the test's: once its output shows `until`, types a
/// newline and closes the pipe; returns its status and all its output.
///
/// The containers' programs print, then wait for that line before they exit: Debian's ctr
/// (containerd 1.6) sometimes drops the whole output of a process that exits at once, with
/// runc as with rvisor (here, under load, a few times in a few hundred `ctr task exec`s, tty
/// or not; its exit status still arrives). Output that reached the test has been read by ctr.
fn run_typed(mut cmd: Command, until: &str) -> (std::process::ExitStatus, Vec<u8>) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = output_channel(child.stdout.take().unwrap());
    let err = output_channel(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let deadline = Instant::now() + rvisor_tests::timeout();
    while !String::from_utf8_lossy(&seen).contains(until) {
        match out.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => break,
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"\n");
    drop(stdin);
    let status = child.wait().unwrap();
    seen.extend(out.iter().flatten());
    seen.extend(err.iter().flatten());
    (status, seen)
}

/// `ctr args`, typed at as [`run_typed`] does.
fn ctr_typed(d: &Containerd, args: &[&str], until: &str) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new("timeout");
    cmd.arg("60").arg("ctr").arg("-a").arg(&d.sock).args(args);
    let (status, out) = run_typed(cmd, until);
    let text = String::from_utf8_lossy(&out).into_owned();
    eprintln!("ctr {args:?} -> {status:?}\n{text}");
    (status, text)
}

/// `command` (a ctr command line) under script(1), so that ctr's stdio is a terminal, typed
/// at as [`run_typed`] does.
fn ctr_on_terminal(command: &str, until: &str) -> (std::process::ExitStatus, Vec<u8>) {
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "script", "-qfec", command, "/dev/null"]);
    let (status, out) = run_typed(cmd, until);
    eprintln!("{command} -> {status:?}\n{}", String::from_utf8_lossy(&out));
    (status, out)
}

/// What a hung exec left behind, for the failure message: the container's processes as
/// its shim sees them and the exec-wait processes still waiting.
fn diagnose(d: &Containerd, id: &str) -> String {
    let ps = Command::new("timeout").args(["10", "ctr", "-a", &d.sock, "task", "ps", id]).output().unwrap();
    let waiting: Vec<_> = rvisor_tests::host_processes().into_iter().filter(|p| p.exe.ends_with("/rvisor") && p.cmdline.contains(" exec-wait ")).collect();
    format!(
        "ctr task ps {id} ({:?}):\n{}{}\nexec-wait processes:\n{}",
        ps.status,
        String::from_utf8_lossy(&ps.stdout),
        String::from_utf8_lossy(&ps.stderr),
        rvisor_tests::describe_processes(&waiting)
    )
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd} failed: {st}");
}

fn start_containerd(t: &Path) -> Option<Containerd> {
    let sock = t.join("sock").to_str()?.to_string();
    let config = format!(
        "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{1}\"\n[ttrpc]\n  address = \"{1}.ttrpc\"\n[debug]\n  address = \"{0}/debug.sock\"\n",
        t.display(),
        sock
    );
    std::fs::write(t.join("config.toml"), config).unwrap();
    let log = std::fs::File::create(t.join("containerd.log")).unwrap();
    let child = Command::new("containerd").arg("--config").arg(t.join("config.toml")).stdout(log.try_clone().unwrap()).stderr(log).spawn().ok()?;
    let d = Containerd { child, sock };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if Command::new("ctr").args(["-a", &d.sock, "version"]).output().map(|o| o.status.success()).unwrap_or(false) {
            return Some(d);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("containerd did not start: {}", std::fs::read_to_string(t.join("containerd.log")).unwrap_or_default());
}

/// An OCI image (layout tarball) of a busybox root, built with umoci.
fn build_image(t: &Path) -> std::path::PathBuf {
    let img = t.join("img");
    let ub = t.join("unpacked");
    let (img_s, ub_s) = (img.to_str().unwrap(), ub.to_str().unwrap());
    sh(&format!("umoci init --layout {img_s} && umoci new --image {img_s}:latest && umoci unpack --image {img_s}:latest {ub_s} >/dev/null"));
    rvisor_tests::oci::busybox_rootfs(&ub.join("rootfs"));
    sh(&format!("umoci repack --image {img_s}:latest {ub_s} && umoci config --image {img_s}:latest --config.cmd sh --config.env PATH=/bin"));
    let tar = t.join("img.tar");
    sh(&format!("cd {img_s} && tar -cf {} .", tar.display()));
    tar
}

#[test]
fn containerd_runs_containers_through_the_runc_shim() {
    for tool in ["containerd", "ctr", "umoci", "script"] {
        if Command::new("sh").arg("-c").arg(format!("command -v {tool}")).stdout(Stdio::null()).status().map(|s| !s.success()).unwrap_or(true) {
            eprintln!("SKIPPED: {tool} is not installed (Debian packages containerd, umoci, bsdutils)");
            return;
        }
    }
    let t = TempDir::new("containerd");
    let tar = build_image(t.path());
    let d = start_containerd(t.path()).unwrap();
    let rv = std::fs::canonicalize(rvisor_tests::rvisor_bin()).unwrap();
    let rv = rv.to_str().unwrap();
    assert!(ctr(&d, &["image", "import", "--base-name", "localhost/bb", tar.to_str().unwrap()]).status.success());
    let img = "localhost/bb:latest";

    // 1. uname -r prints rvisor's release.
    let (st, text) = ctr_typed(&d, &["run", "--rm", "--runc-binary", rv, img, "c1", "sh", "-c", "uname -r; read line"], "\n");
    assert!(st.success(), "{text}");
    assert!(text.contains("rvisor"), "{text}");

    // 2. A running task (ctr run in the background), an exec in it, SIGTERM → 143.
    let mut runner = Command::new("ctr")
        .args(["-a", &d.sock, "run", "--runc-binary", rv, img, "c2", "sh", "-c", "trap 'exit 143' TERM; echo up; while true; do sleep 1; done"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(runner.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "up\n");
    }
    let ls = ctr(&d, &["task", "ls"]);
    assert!(String::from_utf8_lossy(&ls.stdout).lines().any(|l| l.starts_with("c2") && l.contains("RUNNING")));
    let (st, text) = ctr_typed(&d, &["task", "exec", "--exec-id", "e1", "c2", "sh", "-c", "echo $$; read line"], "\n");
    assert!(st.success(), "{text}");
    assert!(text.trim().parse::<u32>().is_ok(), "{text}");
    assert!(ctr(&d, &["task", "kill", "-s", "SIGTERM", "c2"]).status.success());
    assert_eq!(runner.wait().unwrap().code(), Some(143));
    // A foreground `ctr run` deletes its task when it ends; the container stays.
    let ls = ctr(&d, &["task", "ls"]);
    assert!(!String::from_utf8_lossy(&ls.stdout).lines().any(|l| l.starts_with("c2 ")), "{}", String::from_utf8_lossy(&ls.stdout));
    assert!(ctr(&d, &["container", "rm", "c2"]).status.success());

    // 2b. A detached task shows RUNNING, then STOPPED once killed, until it is deleted.
    let o = ctr(&d, &["run", "-d", "--runc-binary", rv, img, "c4", "sh", "-c", "while true; do sleep 1; done"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let task_state = |d: &Containerd| {
        let ls = ctr(d, &["task", "ls"]);
        String::from_utf8_lossy(&ls.stdout).lines().find(|l| l.starts_with("c4 ")).map(|l| l.split_whitespace().last().unwrap_or("").to_string())
    };
    assert_eq!(task_state(&d).as_deref(), Some("RUNNING"));
    // An exec with a terminal (`rvisor exec --tty --console-socket`), under script(1): the
    // process's stdio is a pty of the sandbox, its output reaches ctr's terminal, the line
    // typed reaches it, and its exit status is ctr's. (The sandbox once deadlocked when its
    // exec console's watcher polled the process in the middle of its exit: the process never
    // finished, so neither did ctr.)
    let (st, out) = ctr_on_terminal(&format!("ctr -a {} task exec -t --exec-id e2 c4 sh -c 'tty; echo done; read line; exit 3'", d.sock), "done");
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/") && text.contains("done"), "{text}");
    assert_eq!(st.code(), Some(3), "{text}\n{}", diagnose(&d, "c4"));
    assert!(!out.contains(&0), "a NUL byte on the terminal: {:?}", text);
    assert!(ctr(&d, &["task", "kill", "-s", "SIGKILL", "c4"]).status.success());
    let deadline = std::time::Instant::now() + rvisor_tests::timeout();
    while task_state(&d).as_deref() != Some("STOPPED") {
        assert!(std::time::Instant::now() < deadline, "c4 never showed STOPPED: {:?}", task_state(&d));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ctr(&d, &["task", "rm", "c4"]).status.success());
    assert!(ctr(&d, &["container", "rm", "c4"]).status.success());

    // 3. A terminal, under script(1).
    let (st, out) = ctr_on_terminal(&format!("ctr -a {} run --rm -t --runc-binary {rv} {img} c3 sh -c 'tty; echo done; read line'", d.sock), "done");
    let text = String::from_utf8_lossy(&out);
    assert!(st.success() && text.contains("/dev/pts/") && text.contains("done"), "{text}");
    // The console carries only the program's output: no stray byte (the sandbox's readiness
    // byte once leaked onto it as a NUL).
    assert!(!out.contains(&0), "a NUL byte on the terminal: {:?}", text);

    // Nothing left behind: no rvisor process started by this containerd, no cgroup.
    let c = ctr(&d, &["container", "ls", "-q"]);
    assert!(String::from_utf8_lossy(&c.stdout).trim().is_empty());
    let left: Vec<_> = rvisor_tests::host_processes()
        .into_iter()
        .filter(|p| p.exe.ends_with("/rvisor") && (p.cmdline.contains(" boot ") || p.cmdline.contains(" exec-wait ")))
        .filter(|p| std::fs::read_to_string(format!("/proc/{}/cgroup", p.pid)).is_ok_and(|c| c.contains("/default/c")))
        .collect();
    assert!(left.is_empty(), "{}", rvisor_tests::describe_processes(&left));
    for cg in ["memory", "pids", "cpu"] {
        for id in ["c1", "c2", "c3", "c4"] {
            assert!(!Path::new(&format!("/sys/fs/cgroup/{cg}/default/{id}")).exists(), "cgroup {cg}/default/{id} left");
        }
    }
}
