//! The sandbox process confines itself (issue 8): its own mount, IPC and UTS namespaces,
//! an empty read-only root, capabilities dropped, no_new_privs and a seccomp allow-list
//! whose default action kills. A sandbox booted with `--debug-control` can be made to
//! attempt a host syscall itself: a forbidden one kills it with SIGSYS, and `rvisor run`
//! says so; without the flag the request is refused.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rvisor_tests::oci::Bundle;
use serde_json::{json, Value};

/// Sends one control request (u32 little-endian length + JSON) and reads the answer;
/// `None` when the sandbox closes the connection instead of answering.
fn control_call(sock: &Path, req: &Value) -> Option<Value> {
    let mut s =
        UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
    s.set_read_timeout(Some(rvisor_tests::timeout())).unwrap();
    let body = serde_json::to_vec(req).unwrap();
    s.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return None;
    }
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(serde_json::from_slice(&buf).unwrap())
}

fn control_socket(b: &Bundle, id: &str) -> std::path::PathBuf {
    b.state_root().join(id).join("control.sock")
}

fn status_field(pid: i32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Waits until `rvisor state` says `status` (the sandbox runs in the background).
fn wait_status(b: &Bundle, id: &str, status: &str) {
    let deadline = Instant::now() + rvisor_tests::timeout();
    loop {
        let o = b.rv(&["state", id]);
        if o.code() == Some(0) {
            let st: Value = serde_json::from_slice(&o.stdout).unwrap();
            if st["status"] == json!(status) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "container {id} never became {status}: {}",
            o.dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn boot_process_has_no_new_privs_seccomp_only_cap_fsetid_and_its_own_root_and_namespaces() {
    let id = &format!("cf-status-{}", std::process::id());
    let b = Bundle::new("confine-status", &["sleep", "1000"]);
    let created = b.create(id);
    let pid = b.state(id)["pid"].as_i64().unwrap() as i32;

    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "Seccomp"), "2", "seccomp filter mode");
    // The test runs as root with every capability; the sandbox keeps only CAP_FSETID (bit
    // 4: its writes to donated host files must not clear set-user-ID bits the guest keeps).
    assert_ne!(
        status_field(std::process::id() as i32, "CapEff"),
        "0000000000000000",
        "the test must run as root"
    );
    assert_eq!(status_field(pid, "CapEff"), "0000000000000010");
    assert_eq!(status_field(pid, "CapPrm"), "0000000000000010");
    assert_eq!(status_field(pid, "CapBnd"), "0000000000000010");
    assert_eq!(status_field(pid, "CapInh"), "0000000000000000");
    assert_eq!(status_field(pid, "CapAmb"), "0000000000000000");

    // Its root is an empty tmpfs holding only the /proc mount point, not the host's root.
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["proc".to_string()]);
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root_line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("a mount at /");
    assert!(
        root_line.contains(" - tmpfs ")
            && root_line
                .split(' ')
                .nth(5)
                .is_some_and(|o| o.starts_with("ro")),
        "{mountinfo}"
    );
    assert_eq!(
        mountinfo.lines().count(),
        2,
        "only / and /proc: {mountinfo}"
    );
    // Writing to its root fails even for root.
    assert!(std::fs::write(format!("/proc/{pid}/root/x"), b"x").is_err());

    for ns in ["mnt", "ipc", "uts"] {
        let mine = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let its = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(mine, its, "{ns} namespace shared with the host");
    }
    // The container still works.
    b.rv(&["start", id]).assert_code(0);
    let exec = b.rv(&["exec", id, "echo", "confined"]);
    assert_eq!(
        exec.code(),
        Some(0),
        "{}\nsandbox output: {:?}\nsandbox stderr: {:?}",
        exec.dump(),
        std::fs::read_to_string(&created.out),
        std::fs::read_to_string(created.out.with_extension("err"))
    );
    assert_eq!(exec.stdout_str(), "confined\n");
    b.rv(&["delete", "--force", id]).assert_code(0);
}

#[test]
fn debug_host_syscall_is_refused_without_the_debug_flag() {
    let id = &format!("cf-nodebug-{}", std::process::id());
    let b = Bundle::new("confine-nodebug", &["sleep", "1000"]);
    b.create(id);
    let r = control_call(
        &control_socket(&b, id),
        &json!({"DebugHostSyscall": {"nr": libc::SYS_getpid}}),
    )
    .expect("an answer");
    assert_eq!(r["Error"]["errno"], json!(libc::EPERM), "{r}");
    assert!(
        r["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("--debug-control"),
        "{r}"
    );
    // A forbidden syscall is refused just the same, and the sandbox lives on.
    let r = control_call(
        &control_socket(&b, id),
        &json!({"DebugHostSyscall": {"nr": libc::SYS_kexec_load}}),
    )
    .expect("an answer");
    assert_eq!(r["Error"]["errno"], json!(libc::EPERM), "{r}");
    assert_eq!(b.state(id)["status"], json!("created"));
    b.rv(&["delete", "--force", id]).assert_code(0);
}

/// Starts `rvisor --debug-control run ID` in the background and waits until it runs.
fn run_in_background(b: &Bundle, id: &str) -> std::process::Child {
    let child = std::process::Command::new(rvisor_tests::rvisor_bin())
        .arg(format!("--root={}", b.state_root().display()))
        .args([
            "--debug-control",
            "run",
            "--bundle",
            b.dir().to_str().unwrap(),
            id,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting rvisor run");
    wait_status(b, id, "running");
    child
}

#[test]
fn a_forbidden_host_syscall_kills_the_sandbox_with_sigsys_and_run_reports_it() {
    let id = &format!("cf-sigsys-{}", std::process::id());
    let b = Bundle::new("confine-sigsys", &["sleep", "1000"]);
    let run = run_in_background(&b, id);
    let sock = control_socket(&b, id);
    let pid = b.state(id)["pid"].as_i64().unwrap();
    // An allowed syscall answers (the debug request itself works)...
    let r = control_call(
        &sock,
        &json!({"DebugHostSyscall": {"nr": libc::SYS_getpid}}),
    )
    .expect("an answer");
    assert_eq!(r, json!({"Value": pid}));
    // ...a forbidden one kills the sandbox instead of answering.
    assert_eq!(
        control_call(
            &sock,
            &json!({"DebugHostSyscall": {"nr": libc::SYS_kexec_load}})
        ),
        None
    );
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("SIGSYS") && stderr.contains("seccomp"),
        "run's report: {stderr}"
    );
    assert!(
        b.leftovers().is_empty(),
        "state left behind: {:?}",
        b.leftovers()
    );
}

#[test]
fn mount_and_ptrace_attach_from_the_sandbox_process_kill_it_too() {
    for (i, (nr, args)) in [
        (libc::SYS_mount, vec![0u64; 5]),
        (libc::SYS_ptrace, vec![libc::PTRACE_ATTACH as u64, 1]),
    ]
    .into_iter()
    .enumerate()
    {
        let b = Bundle::new(&format!("confine-kill{i}"), &["sleep", "1000"]);
        let id = format!("cf-kill{i}-{}", std::process::id());
        let d = b.rv_detached(
            &id,
            &[
                "--debug-control",
                "create",
                "--bundle",
                b.dir().to_str().unwrap(),
                &id,
            ],
        );
        assert_eq!(d.code, Some(0), "create: {}", d.stderr);
        let pid = b.state(&id)["pid"].as_i64().unwrap() as i32;
        assert_eq!(
            control_call(
                &control_socket(&b, &id),
                &json!({"DebugHostSyscall": {"nr": nr, "args": args}})
            ),
            None,
            "syscall {nr}"
        );
        rvisor_tests::wait_all_gone(
            &rvisor_tests::HostProcess::read(pid)
                .into_iter()
                .collect::<Vec<_>>(),
            rvisor_tests::timeout(),
        );
        assert_eq!(b.state(&id)["status"], json!("stopped"));
        b.rv(&["delete", &id]).assert_code(0);
    }
}
