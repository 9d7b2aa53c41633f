//! rvisor's runc-compatible CLI on OCI bundles with a busybox root: `spec`, the lifecycle
//! (create → start → state → kill/wait → delete), `run`, `exec`, `list`, `ps`, config.json
//! honoured inside (hostname, ids, capabilities, rlimits, env, mounts, oomScoreAdj, UTS
//! sysctls), `pause`/`resume`, `events --stats` and bad input.

use rvisor_tests::oci::Bundle;
use rvisor_tests::{assert_clean_error, TempDir};
use serde_json::json;

#[test]
fn spec_writes_runc_default_config_and_refuses_to_overwrite() {
    let t = TempDir::new("oci-spec");
    let b = t.path().to_str().unwrap();
    let o = rvisor_tests::run_rvisor_cli(&["spec", "--bundle", b]);
    o.assert_code(0);
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(t.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["root"]["path"], json!("rootfs"));
    assert_eq!(c["process"]["terminal"], json!(true));
    assert!(c["linux"]["maskedPaths"].as_array().unwrap().contains(&json!("/proc/kcore")));
    let again = rvisor_tests::run_rvisor_cli(&["spec", "--bundle", b]);
    assert_clean_error(&again);
    assert!(again.stderr_str().contains("exists"), "{}", again.dump());
}

#[test]
fn bad_input_is_one_clear_error_and_leaves_no_state() {
    let b = Bundle::new("oci-bad", &["true"]);
    let bundle = b.dir();
    let bundle = bundle.to_str().unwrap();
    // A missing bundle.
    assert_clean_error(&b.rv(&["create", "--bundle", "/nonexistent/bundle", "c1"]));
    // An invalid id.
    assert_clean_error(&b.rv(&["create", "--bundle", bundle, "bad/id"]));
    // Commands on an unknown container.
    for args in [&["start", "nope"][..], &["kill", "nope", "KILL"], &["state", "nope"], &["delete", "nope"], &["exec", "nope", "true"]] {
        let o = b.rv(args);
        assert_clean_error(&o);
        assert_eq!(o.code(), Some(1), "{}", o.dump());
    }
    // Malformed JSON.
    std::fs::write(b.dir().join("config.json"), "{\"process\": ").unwrap();
    let o = b.rv(&["create", "--bundle", bundle, "c1"]);
    assert_clean_error(&o);
    assert!(o.stderr_str().contains("config.json"), "{}", o.dump());
    // A field of the wrong type.
    std::fs::write(b.dir().join("config.json"), r#"{"ociVersion":"1.0.2","process":{"args":"sh","cwd":"/"},"root":{"path":"rootfs"}}"#).unwrap();
    assert_clean_error(&b.rv(&["create", "--bundle", bundle, "c1"]));
    // Another container's pid namespace.
    std::fs::write(
        b.dir().join("config.json"),
        r#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid","path":"/proc/1/ns/pid"}]}}"#,
    )
    .unwrap();
    let o = b.rv(&["create", "--bundle", bundle, "c1"]);
    assert_clean_error(&o);
    assert!(o.stderr_str().contains("pid namespace is not supported"), "{}", o.dump());
    assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
    // An unknown signal.
    assert_clean_error(&b.rv(&["kill", "nope", "SIGNOPE"]));
}

#[test]
fn lifecycle_create_start_kill_delete() {
    let b = Bundle::new("oci-life", &["sh", "-c", "echo started; trap 'echo got TERM; exit 7' TERM; sleep 1000 & wait"]);
    let pid_file = b.tmp.path().join("pid");
    let d = b.rv_detached("c1", &["create", "--bundle", b.dir().to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), "c1"]);
    assert_eq!(d.code, Some(0), "create: {}", d.stderr);
    let st = b.state("c1");
    assert_eq!(st["status"], json!("created"), "{st}");
    assert_eq!(st["id"], json!("c1"));
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(st["pid"], json!(pid));
    assert_eq!(st["bundle"], json!(b.dir().to_str().unwrap()));
    // Nothing ran yet.
    assert_eq!(std::fs::read_to_string(&d.out).unwrap(), "");
    // A second container with the same id.
    let dup = b.rv(&["create", "--bundle", b.dir().to_str().unwrap(), "c1"]);
    assert_clean_error(&dup);
    assert!(dup.stderr_str().contains("container with id exists: c1"), "{}", dup.dump());

    b.rv(&["start", "c1"]).assert_code(0);
    assert_eq!(b.state("c1")["status"], json!("running"));
    assert_clean_error(&b.rv(&["start", "c1"]));
    let del = b.rv(&["delete", "c1"]);
    assert_clean_error(&del);
    assert!(del.stderr_str().contains("not stopped"), "{}", del.dump());

    let list = b.rv(&["list"]);
    list.assert_code(0);
    let lines: Vec<String> = list.stdout_str().lines().map(String::from).collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("PID") && lines[0].contains("STATUS") && lines[0].contains("OWNER"), "{}", list.dump());
    assert!(lines[1].starts_with("c1 ") && lines[1].contains("running"), "{}", list.dump());
    let q = b.rv(&["list", "-q"]);
    assert_eq!(q.stdout_str(), "c1\n");
    let js: serde_json::Value = serde_json::from_slice(&b.rv(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(js[0]["id"], json!("c1"));

    b.rv(&["kill", "c1", "TERM"]).assert_code(0);
    let w = b.rv(&["wait", "c1"]);
    // The process may already be gone when wait connects; either way it ends stopped.
    if w.code() == Some(7) {
        assert!(w.stdout_str().contains("\"exitStatus\":7"), "{}", w.dump());
    }
    rvisor_tests::wait_all_gone(&rvisor_tests::HostProcess::read(pid as i32).into_iter().collect::<Vec<_>>(), std::time::Duration::from_secs(20));
    assert_eq!(b.state("c1")["status"], json!("stopped"));
    let out = std::fs::read_to_string(&d.out).unwrap();
    assert_eq!(out, "started\ngot TERM\n");
    b.rv(&["delete", "c1"]).assert_code(0);
    assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
    assert!(!std::path::Path::new("/sys/fs/cgroup/memory/rvisor/c1").exists());
}

#[test]
fn run_honours_hostname_ids_capabilities_rlimits_env() {
    let b = Bundle::new("oci-run", &["sh", "-c", "hostname; id; grep -i cap /proc/self/status; ulimit -n; echo $FOO; pwd"]);
    b.edit(|c| {
        c["hostname"] = json!("box1");
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1001, "additionalGids": [10] });
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 321, "hard": 654 }]);
    });
    let d = b.rv_detached("run", &["run", "--bundle", b.dir().to_str().unwrap(), "r1"]);
    assert_eq!(d.code, Some(0), "run: {}", d.stderr);
    let out = std::fs::read_to_string(&d.out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box1", "{out}");
    assert!(lines[1].starts_with("uid=1000 gid=1001") && lines[1].contains("10"), "{out}");
    // CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE: rvisor spec's default set.
    assert!(out.contains("CapBnd:\t0000000020000420"), "{out}");
    assert!(lines.contains(&"321"), "{out}");
    assert!(lines.contains(&"bar baz"), "{out}");
    assert_eq!(lines.last(), Some(&"/tmp"), "{out}");
    // `run` without --detach deletes the container.
    assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
}

#[test]
fn run_exit_status_is_the_containers() {
    let b = Bundle::new("oci-status", &["sh", "-c", "exit 42"]);
    let d = b.rv_detached("run", &["run", "--bundle", b.dir().to_str().unwrap(), "s1"]);
    assert_eq!(d.code, Some(42), "{}", d.stderr);
}

#[test]
fn bind_mount_read_only_and_tmpfs() {
    let b = Bundle::new("oci-mounts", &["sh", "-c", "cat /data/hello; echo x > /data/new 2>/dev/null || echo EROFS; echo y > /scratch/f && cat /scratch/f; ls /data"]);
    let host = b.tmp.path().join("host-data");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hello"), "hi from host\n").unwrap();
    let src = host.to_str().unwrap().to_string();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({ "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro"] }));
        m.push(json!({ "destination": "/../scratch", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777", "size=1m"] }));
    });
    std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
    std::fs::create_dir_all(b.rootfs().join("scratch")).unwrap();
    let d = b.rv_detached("run", &["run", "--bundle", b.dir().to_str().unwrap(), "m1"]);
    assert_eq!(d.code, Some(0), "run: {}", d.stderr);
    let out = std::fs::read_to_string(&d.out).unwrap();
    assert_eq!(out, "hi from host\nEROFS\ny\nhello\n");
    let names: Vec<_> = std::fs::read_dir(&host).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("hello")], "the host directory changed");
    assert!(!b.rootfs().join("scratch/f").exists());
}

#[test]
fn exec_ps_and_detached_exec() {
    let b = Bundle::new("oci-exec", &["sleep", "1000"]);
    b.create("e1");
    b.rv(&["start", "e1"]).assert_code(0);
    let o = b.rv(&["exec", "--env", "X=1", "e1", "sh", "-c", "echo $X; exit 3"]);
    assert_eq!(o.code(), Some(3), "{}", o.dump());
    assert_eq!(o.stdout_str(), "1\n");
    let ps = b.rv(&["ps", "e1"]);
    ps.assert_code(0);
    assert!(ps.stdout_str().contains("sleep"), "{}", ps.dump());
    let js: serde_json::Value = serde_json::from_slice(&b.rv(&["ps", "--format", "json", "e1"]).stdout).unwrap();
    assert!(!js.as_array().unwrap().is_empty());
    // Detached: a host process stands for it and exits with its status.
    let pid_file = b.tmp.path().join("exec.pid");
    let d = b.rv_detached("exec", &["exec", "--detach", "--pid-file", pid_file.to_str().unwrap(), "e1", "sh", "-c", "exit 5"]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(pid > 0);
    b.rv(&["kill", "e1", "KILL"]).assert_code(0);
    b.rv(&["delete", "--force", "e1"]).assert_code(0);
    assert!(b.leftovers().is_empty());
}

#[test]
fn oom_score_adj_from_the_spec_inherited_and_guarded_like_linux() {
    let b = Bundle::new("oci-oom-adj", &["sleep", "1000"]);
    // rvisor spec's default capabilities lack CAP_SYS_RESOURCE.
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(100));
    b.create("o1");
    b.rv(&["start", "o1"]).assert_code(0);
    // Raising is free; going back down to the value the runtime set is allowed, below it is
    // not (EACCES); out of range is EINVAL. A fork inherits the value.
    let script = "cat /proc/1/oom_score_adj /proc/self/oom_score_adj; \
                  echo 500 > /proc/self/oom_score_adj; cat /proc/self/oom_score_adj; \
                  echo 100 > /proc/self/oom_score_adj && echo back-to-floor; \
                  (echo 99 > /proc/self/oom_score_adj) 2>&1; \
                  (echo 1001 > /proc/self/oom_score_adj) 2>&1; \
                  cat /proc/self/oom_score_adj";
    let o = b.rv(&["exec", "o1", "sh", "-c", script]);
    o.assert_code(0);
    let out = o.stdout_str();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["100", "100", "500", "back-to-floor"], "{}", o.dump());
    assert!(lines[4].contains("Permission denied"), "{}", o.dump());
    assert!(lines[5].contains("Invalid argument"), "{}", o.dump());
    assert_eq!(lines[6..], ["100"], "{}", o.dump());
    // An exec'd process gets its own process.oomScoreAdj; -1000 means never chosen: score 0.
    let mut p = b.config()["process"].clone();
    p["args"] = json!(["cat", "/proc/self/oom_score_adj", "/proc/self/oom_score"]);
    p["oomScoreAdj"] = json!(-1000);
    let pf = b.tmp.path().join("process.json");
    std::fs::write(&pf, serde_json::to_vec(&p).unwrap()).unwrap();
    let o = b.rv(&["exec", "--process", pf.to_str().unwrap(), "o1"]);
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "-1000\n0\n", "{}", o.dump());
    // oom_score is on Linux's 0..=2000 scale: 1000 + memory share + adj.
    let o = b.rv(&["exec", "o1", "cat", "/proc/self/oom_score"]);
    let score: i64 = o.stdout_str().trim().parse().unwrap_or_else(|_| panic!("{}", o.dump()));
    assert!((1100..=2000).contains(&score), "{}", o.dump());
    b.rv(&["kill", "o1", "KILL"]).assert_code(0);
    b.rv(&["delete", "--force", "o1"]).assert_code(0);
}

#[test]
fn uts_sysctls_set_the_host_and_domain_names() {
    let b = Bundle::new(
        "oci-uts-sysctl",
        &["sh", "-c", "uname -n; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; \
                       echo other.dom > /proc/sys/kernel/domainname; echo box2 > /proc/sys/kernel/hostname; \
                       cat /proc/sys/kernel/domainname; uname -n; cat /proc/sys/kernel/msgmni"],
    );
    b.edit(|c| {
        c["hostname"] = json!("box1");
        c["linux"]["sysctl"] = json!({ "kernel.domainname": "oci.test", "kernel.hostname": "sysctl-host", "kernel.msgmni": "77" });
        // Writable /proc/sys, to check guest writes too.
        c["linux"]["readonlyPaths"] = json!([]);
    });
    let d = b.rv_detached("run", &["run", "--bundle", b.dir().to_str().unwrap(), "u1"]);
    assert_eq!(d.code, Some(0), "run: {}", d.stderr);
    let out = std::fs::read_to_string(&d.out).unwrap();
    // linux.sysctl is applied after the hostname, as runc does.
    assert_eq!(out, "sysctl-host\nsysctl-host\noci.test\nother.dom\nbox2\n77\n");
}

/// The size of `path` (0 while it does not exist).
fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Waits (up to the test timeout) until `path` is longer than `than` bytes.
#[track_caller]
fn wait_growth(path: &std::path::Path, than: u64) {
    let deadline = std::time::Instant::now() + rvisor_tests::timeout();
    while file_len(path) <= than {
        assert!(std::time::Instant::now() < deadline, "{} never grew past {than} bytes", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn pause_freezes_the_container_and_resume_continues_it() {
    let b = Bundle::new("oci-pause", &["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i >> /out/counter; usleep 50000; done"]);
    let host = b.tmp.path().join("out");
    std::fs::create_dir_all(&host).unwrap();
    let src = host.to_str().unwrap().to_string();
    b.edit(|c| c["mounts"].as_array_mut().unwrap().push(json!({ "destination": "/out", "type": "bind", "source": src, "options": ["rbind"] })));
    std::fs::create_dir_all(b.rootfs().join("out")).unwrap();
    let counter = host.join("counter");
    b.create("p1");
    b.rv(&["start", "p1"]).assert_code(0);
    wait_growth(&counter, 0);

    b.rv(&["pause", "p1"]).assert_code(0);
    assert_eq!(b.state("p1")["status"], json!("paused"));
    assert_clean_error(&b.rv(&["pause", "p1"]));
    assert_clean_error(&b.rv(&["exec", "p1", "true"]));
    // A write already inside the sentry when the pause came may still land; after that,
    // nothing (the loop writes every 50 ms when it runs).
    std::thread::sleep(std::time::Duration::from_millis(100));
    let frozen = file_len(&counter);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(file_len(&counter), frozen, "the counter grew while paused");

    b.rv(&["resume", "p1"]).assert_code(0);
    assert_eq!(b.state("p1")["status"], json!("running"));
    assert_clean_error(&b.rv(&["resume", "p1"]));
    wait_growth(&counter, frozen);
    // The numbers are consecutive: the loop was held, not restarted.
    let text = std::fs::read_to_string(&counter).unwrap();
    for (i, l) in text.lines().enumerate() {
        assert_eq!(l, (i + 1).to_string(), "{text}");
    }

    // A paused container can be killed, then deleted.
    b.rv(&["pause", "p1"]).assert_code(0);
    let pid = b.state("p1")["pid"].as_i64().unwrap() as i32;
    b.rv(&["kill", "p1", "KILL"]).assert_code(0);
    rvisor_tests::wait_all_gone(&rvisor_tests::HostProcess::read(pid).into_iter().collect::<Vec<_>>(), std::time::Duration::from_secs(20));
    assert_eq!(b.state("p1")["status"], json!("stopped"));
    b.rv(&["delete", "p1"]).assert_code(0);
    assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
}

#[test]
fn events_stats_reports_the_containers_processes() {
    let b = Bundle::new("oci-stats", &["sh", "-c", "sleep 1000 & sleep 1000 & echo > /out/ready; wait"]);
    let host = b.tmp.path().join("out");
    std::fs::create_dir_all(&host).unwrap();
    let src = host.to_str().unwrap().to_string();
    b.edit(|c| c["mounts"].as_array_mut().unwrap().push(json!({ "destination": "/out", "type": "bind", "source": src, "options": ["rbind"] })));
    std::fs::create_dir_all(b.rootfs().join("out")).unwrap();
    b.create("s1");
    b.rv(&["start", "s1"]).assert_code(0);
    // Both children exist once the shell has forked them and written the file.
    wait_growth(&host.join("ready"), 0);
    let o = b.rv(&["events", "--stats", "s1"]);
    o.assert_code(0);
    let text = o.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{}", o.dump());
    let ev: serde_json::Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", o.dump()));
    assert_eq!(ev["type"], json!("stats"));
    assert_eq!(ev["id"], json!("s1"));
    // sh and its two sleeps.
    assert_eq!(ev["data"]["pids"]["current"], json!(3), "{ev}");
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().is_some_and(|m| m > 0), "{ev}");
    assert!(ev["data"]["cpu"]["usage"]["total"].as_u64().is_some(), "{ev}");
    // A detached exec is one more.
    let d = b.rv_detached("exec", &["exec", "--detach", "s1", "sleep", "1000"]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let o = b.rv(&["events", "--stats", "s1"]);
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.dump()));
    assert_eq!(ev["data"]["pids"]["current"], json!(4), "{ev}");
    b.rv(&["kill", "s1", "KILL"]).assert_code(0);
    b.rv(&["delete", "--force", "s1"]).assert_code(0);
    // Stats of a stopped or unknown container: one clear error.
    assert_clean_error(&b.rv(&["events", "--stats", "s1"]));
}

/// `rvisor wait --pid` of a process that exited but that nobody reaps (its parent exec'd
/// `sleep`) reports its exit status, and the sandbox keeps answering afterwards (the control
/// server once deadlocked on the zombie's lock, hanging `wait`, `ps` and the zombie's exit).
#[test]
fn wait_for_an_unreaped_zombie_reports_its_status() {
    let b = Bundle::new("oci-zombie", &["sh", "-c", "sh -c 'exit 7' & echo $!; exec sleep 1000"]);
    let d = b.rv_detached("z1", &["create", "--bundle", b.dir().to_str().unwrap(), "z1"]);
    assert_eq!(d.code, Some(0), "create: {}", d.stderr);
    b.rv(&["start", "z1"]).assert_code(0);
    let deadline = std::time::Instant::now() + rvisor_tests::timeout();
    let pid = loop {
        let out = std::fs::read_to_string(&d.out).unwrap_or_default();
        if let Some(line) = out.lines().next() {
            break line.trim().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no pid printed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let w = b.rv(&["wait", "--pid", &pid, "z1"]);
    assert_eq!(w.code(), Some(7), "{}", w.dump());
    assert!(w.stdout_str().contains("\"exitStatus\":7"), "{}", w.dump());
    // Still answering: the zombie is listed by ps until its parent reaps it (never).
    let ps = b.rv(&["ps", "z1"]);
    ps.assert_code(0);
    assert!(ps.stdout_str().contains("sleep"), "{}", ps.dump());
    b.rv(&["kill", "z1", "KILL"]).assert_code(0);
    b.rv(&["delete", "--force", "z1"]).assert_code(0);
}
