//! Acceptance 1 of the OCI runtime: Debian's containerd, with a root, state and socket of
//! the test's own, runs containers through its stock runc shim with rvisor as the runc
//! binary (`ctr --runc-binary`), from a busybox OCI image built here with umoci.

use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    let o = ctr(&d, &["run", "--rm", "--runc-binary", rv, img, "c1", "uname", "-r"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("rvisor"));

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
    let o = ctr(&d, &["task", "exec", "--exec-id", "e1", "c2", "sh", "-c", "echo $$"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().is_ok());
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
    // process's stdio is a pty of the sandbox, its output reaches ctr's terminal, and its
    // exit status is ctr's.
    let o = Command::new("timeout")
        .args(["60", "script", "-qfec", &format!("ctr -a {} task exec -t --exec-id e2 c4 sh -c 'tty; echo done; exit 3'", d.sock), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("/dev/pts/") && text.contains("done"), "{text}");
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert!(!o.stdout.contains(&0), "a NUL byte on the terminal: {:?}", text);
    assert!(ctr(&d, &["task", "kill", "-s", "SIGKILL", "c4"]).status.success());
    let deadline = std::time::Instant::now() + rvisor_tests::timeout();
    while task_state(&d).as_deref() != Some("STOPPED") {
        assert!(std::time::Instant::now() < deadline, "c4 never showed STOPPED: {:?}", task_state(&d));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ctr(&d, &["task", "rm", "c4"]).status.success());
    assert!(ctr(&d, &["container", "rm", "c4"]).status.success());

    // 3. A terminal, under script(1).
    let o = Command::new("timeout")
        .args(["60", "script", "-qfec", &format!("ctr -a {} run --rm -t --runc-binary {rv} {img} c3 sh -c 'tty; echo done'", d.sock), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && text.contains("/dev/pts/") && text.contains("done"), "{text}");
    // The console carries only the program's output: no stray byte (the sandbox's readiness
    // byte once leaked onto it as a NUL).
    assert!(!o.stdout.contains(&0), "a NUL byte on the terminal: {:?}", text);

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
