//! The sandbox process confines itself (issue 8): pid 1 of its own PID namespace, its own
//! user namespace where it is host nobody (unless `--network=host` or it writes host files
//! itself), its own mount, IPC and UTS namespaces, an empty read-only root, capabilities
//! dropped, no_new_privs and a seccomp allow-list whose default action kills. A sandbox
//! booted with `--debug-control` can be made to attempt a host syscall itself: a forbidden
//! one kills it with SIGSYS, and `rvisor run` says so; without the flag the request is
//! refused.

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

/// Where `/proc/PID/ns/NS` points (`pid` may be "self").
fn ns_of(pid: &str, ns: &str) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap()
}

/// Every host process whose PID namespace is `ns`.
fn processes_in_pid_ns(ns: &Path) -> Vec<rvisor_tests::HostProcess> {
    rvisor_tests::host_processes()
        .into_iter()
        .filter(|p| std::fs::read_link(format!("/proc/{}/ns/pid", p.pid)).is_ok_and(|n| n == ns))
        .collect()
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
fn boot_process_has_no_new_privs_seccomp_no_capabilities_and_its_own_root_and_namespaces() {
    let id = &format!("cf-status-{}", std::process::id());
    let b = Bundle::new("confine-status", &["sleep", "1000"]);
    let created = b.create(id);
    let pid = b.state(id)["pid"].as_i64().unwrap() as i32;

    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "Seccomp"), "2", "seccomp filter mode");
    // The test runs as root with every capability; the sandbox, in its own user namespace,
    // keeps none (its one need, set-ID bits on donated host files, goes through the gofer).
    assert_ne!(
        status_field(std::process::id() as i32, "CapEff"),
        "0000000000000000",
        "the test must run as root"
    );
    assert_eq!(status_field(pid, "CapEff"), "0000000000000000");
    assert_eq!(status_field(pid, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(pid, "CapBnd"), "0000000000000000");
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

    for ns in ["mnt", "ipc", "uts", "pid", "user"] {
        assert_ne!(
            ns_of("self", ns),
            ns_of(&pid.to_string(), ns),
            "{ns} namespace shared with the host"
        );
    }
    // pid 1 of its PID namespace; host nobody/nogroup through its user namespace's map of
    // uid and gid 0, without supplementary groups.
    assert_eq!(status_field(pid, "NSpid"), format!("{pid}\t1"));
    assert_eq!(status_field(pid, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(pid, "Gid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(pid, "Groups"), "");
    for map in ["uid_map", "gid_map"] {
        let m = std::fs::read_to_string(format!("/proc/{pid}/{map}")).unwrap();
        assert_eq!(
            m.split_whitespace().collect::<Vec<_>>(),
            ["0", "65534", "1"],
            "{map}: {m}"
        );
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
    assert_ne!(pid, 1);
    // getpid in the sandbox process answers 1: it is pid 1 of its own PID namespace.
    assert_eq!(r, json!({"Value": 1}));
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

#[test]
fn the_sandbox_pid_namespace_holds_only_the_sentry_and_its_stubs_and_dies_with_it() {
    let id = &format!("cf-pidns-{}", std::process::id());
    // Two guest processes: two stubs.
    let b = Bundle::new(
        "confine-pidns",
        &["sh", "-c", "sleep 1000 & exec sleep 1001"],
    );
    b.create(id);
    b.rv(&["start", id]).assert_code(0);
    let deadline = Instant::now() + rvisor_tests::timeout();
    while !b.rv(&["ps", id]).stdout_str().contains("1001") {
        assert!(
            Instant::now() < deadline,
            "the container never ran its two sleeps"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = b.state(id)["pid"].as_i64().unwrap() as i32;
    let ns = ns_of(&pid.to_string(), "pid");
    assert_ne!(ns, ns_of("self", "pid"));
    let members = processes_in_pid_ns(&ns);
    // The sentry and at least the stubs of its two guest processes.
    assert!(
        members.len() >= 3,
        "{}",
        rvisor_tests::describe_processes(&members)
    );
    for p in &members {
        // Every member descends from the sandbox process, within the namespace.
        let mut q = p.clone();
        while q.pid != pid {
            q = members
                .iter()
                .find(|m| m.pid == q.ppid)
                .unwrap_or_else(|| {
                    panic!("{} ({}) is in the sandbox's PID namespace but not under its pid 1 {pid}:\n{}", q.pid, q.cmdline, rvisor_tests::describe_processes(&members))
                })
                .clone();
        }
    }
    // SIGKILL from the host ends pid 1, and the kernel ends every other member with it.
    // SAFETY: kill takes integers; `pid` is the running sandbox process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let left = rvisor_tests::wait_all_gone(&members, rvisor_tests::timeout());
    assert!(
        left.is_empty(),
        "left behind: {}",
        rvisor_tests::describe_processes(&left)
    );
    // Nothing but zombies (the sandbox process itself, until the host reaps it).
    let live: Vec<_> = processes_in_pid_ns(&ns)
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .collect();
    assert!(
        live.is_empty(),
        "{}",
        rvisor_tests::describe_processes(&live)
    );
    b.rv(&["delete", "--force", id]).assert_code(0);
}

#[test]
fn sigterm_from_the_host_still_ends_the_sandbox_process_though_it_is_pid_1() {
    // pid 1 of a namespace ignores signals it has no handler for; the sandbox process
    // handles the terminating ones like their default action would (exit 128 + signal).
    let id = &format!("cf-term-{}", std::process::id());
    let b = Bundle::new("confine-term", &["sleep", "1000"]);
    b.create(id);
    let pid = b.state(id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(status_field(pid, "NSpid"), format!("{pid}\t1"));
    let members = processes_in_pid_ns(&ns_of(&pid.to_string(), "pid"));
    // SAFETY: kill takes integers; `pid` is the running sandbox process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let left = rvisor_tests::wait_all_gone(&members, rvisor_tests::timeout());
    assert!(
        left.is_empty(),
        "left behind: {}",
        rvisor_tests::describe_processes(&left)
    );
    assert_eq!(b.state(id)["status"], json!("stopped"));
    b.rv(&["delete", id]).assert_code(0);
}

/// Creates container `id` of `b` with extra global flags and returns its sandbox pid.
fn create_with(b: &Bundle, id: &str, flags: &[&str]) -> i32 {
    let dir = b.dir();
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["create", "--bundle", dir.to_str().unwrap(), id]);
    let d = b.rv_detached(id, &args);
    assert_eq!(d.code, Some(0), "create {flags:?}: {}", d.stderr);
    b.state(id)["pid"].as_i64().unwrap() as i32
}

#[test]
fn host_network_keeps_the_host_user_namespace_and_writable_host_trees_get_their_own() {
    // With --network=host the sentry needs CAP_NET_RAW/CAP_NET_BIND_SERVICE over the
    // host's network namespace: it stays host root, in its own PID namespace. Writing host
    // files itself (a writable root without the overlay, a writable bind mount) it is host
    // nobody in its own user namespace like any other sandbox: the set-ID bits a
    // privileged guest keeps on those writes are put back through the gofer (perms.rs).
    let bind_src = rvisor_tests::TempDir::new("confine-hostns-bind");
    let writable_bind = |c: &mut Value| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind",
            "source": bind_src.path(), "options": ["rbind", "rw"]
        }))
    };
    let writable_root = |c: &mut Value| c["root"]["readonly"] = json!(false);
    // (runtime flags, config edit, own user namespace, CapEff)
    let cases: [(&[&str], &dyn Fn(&mut Value), bool, &str); 3] = [
        (&["--network=host"], &|_| {}, false, "0000000000002410"),
        (&["--overlay=none"], &writable_root, true, "0000000000000000"),
        (&[], &writable_bind, true, "0000000000000000"),
    ];
    for (i, (flags, edit, own_userns, cap_eff)) in cases.into_iter().enumerate() {
        let b = Bundle::new(&format!("confine-hostns{i}"), &["sleep", "1000"]);
        b.edit(edit);
        let id = &format!("cf-hostns{i}-{}", std::process::id());
        let pid = create_with(&b, id, flags);
        let shares_host_userns = ns_of("self", "user") == ns_of(&pid.to_string(), "user");
        assert_eq!(shares_host_userns, !own_userns, "case {i} {flags:?}");
        assert_ne!(
            ns_of("self", "pid"),
            ns_of(&pid.to_string(), "pid"),
            "{flags:?}"
        );
        assert_eq!(status_field(pid, "NSpid"), format!("{pid}\t1"));
        let (host_ids, map) = if own_userns {
            ("65534\t65534\t65534\t65534", vec!["0", "65534", "1"])
        } else {
            ("0\t0\t0\t0", vec!["0", "0", "4294967295"])
        };
        assert_eq!(status_field(pid, "Uid"), host_ids, "case {i} {flags:?}");
        assert_eq!(status_field(pid, "Gid"), host_ids, "case {i} {flags:?}");
        for file in ["uid_map", "gid_map"] {
            let m = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
            assert_eq!(m.split_whitespace().collect::<Vec<_>>(), map, "case {i} {flags:?} {file}: {m}");
        }
        assert_eq!(status_field(pid, "CapEff"), cap_eff, "{flags:?}");
        assert_eq!(status_field(pid, "Seccomp"), "2");
        b.rv(&["start", id]).assert_code(0);
        let exec = b.rv(&["exec", id, "echo", "ok"]);
        assert_eq!(exec.stdout_str(), "ok\n", "{flags:?}: {}", exec.dump());
        if i == 2 {
            // The guest's root still writes the bind mount, and the file the gofer creates
            // has the guest's owner (root), not the sandbox process's host nobody.
            let w = b.rv(&["exec", id, "sh", "-c", "echo data > /data/f && cat /data/f"]);
            assert_eq!(w.stdout_str(), "data\n", "{}", w.dump());
            let meta = std::fs::metadata(bind_src.path().join("f")).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!((meta.uid(), meta.gid()), (0, 0));
        }
        b.rv(&["delete", "--force", id]).assert_code(0);
    }
}
