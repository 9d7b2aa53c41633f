//! `linux.resources` end to end: a memory limit ends a guest that goes over it with the OOM
//! killer's SIGKILL (exit status 137, and `run`, `state` and `events` say so); a pids limit
//! makes fork fail with EAGAIN while the host stays usable. Where runc is installed (and
//! we are root) the same bundle runs under runc too and must behave alike.

use std::path::Path;
use std::time::{Duration, Instant};

use rvisor_tests::oci::Bundle;
use rvisor_tests::{run_native, Cmd, Outcome};
use serde_json::json;

const MEMHOG: &str = env!("RVISOR_TEST_PROG_MEMHOG");
const FORKBOMB: &str = env!("RVISOR_TEST_PROG_FORKBOMB");
const MIB: u64 = 1 << 20;

/// A bundle running `args`, with memhog and forkbomb in its /bin and the given limits.
fn limited_bundle(name: &str, args: &[&str], memory: Option<u64>, pids: Option<u64>) -> Bundle {
    let b = Bundle::new(name, args);
    for (prog, to) in [(MEMHOG, "bin/memhog"), (FORKBOMB, "bin/forkbomb")] {
        std::fs::copy(prog, b.rootfs().join(to)).unwrap();
    }
    b.edit(|c| {
        let r = &mut c["linux"]["resources"];
        if let Some(m) = memory {
            r["memory"] = json!({ "limit": m });
        }
        if let Some(p) = pids {
            r["pids"] = json!({ "limit": p });
        }
    });
    b
}

/// The last "MiB N" line memhog printed.
fn last_mib(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("MiB "))
        .filter_map(|n| n.trim().parse().ok())
        .last()
}

/// `runc --root DIR run --bundle B ID`, if runc is installed and we are root.
fn runc_run(b: &Bundle, id: &str) -> Option<Outcome> {
    if !Path::new("/usr/sbin/runc").exists() && !Path::new("/usr/bin/runc").exists() {
        eprintln!("runc is not installed: no comparison");
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no runc comparison");
        return None;
    }
    let root = b.tmp.path().join("runc-state");
    let o = run_native(
        &Cmd::new("runc")
            .arg(format!("--root={}", root.display()))
            .args(["run", "--bundle", b.dir().to_str().unwrap(), id]),
    );
    let _ = run_native(
        &Cmd::new("runc")
            .arg(format!("--root={}", root.display()))
            .args(["delete", "--force", id]),
    );
    Some(o)
}

/// Polls `f` until it returns something, failing the test after the harness's timeout.
#[track_caller]
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + rvisor_tests::timeout();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn memory_limit_kills_a_hog_with_sigkill_and_reports_oom() {
    let b = limited_bundle("lim-memhog", &["/bin/memhog"], Some(64 * MIB), None);
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "hog"]);
    o.assert_code(137);
    let out = o.stdout_str();
    let reached =
        last_mib(&out).unwrap_or_else(|| panic!("memhog printed no progress\n{}", o.dump()));
    // Killed near the limit: not before half of it, never near the 256 MiB it wants.
    assert!(
        (32..=96).contains(&reached),
        "memhog reached {reached} MiB under a 64 MiB limit\n{}",
        o.dump()
    );
    assert!(!out.contains("done"), "{}", o.dump());
    assert!(
        o.stderr_str().contains("OOM killer"),
        "run does not report the OOM kill\n{}",
        o.dump()
    );
    assert!(
        b.leftovers().is_empty(),
        "state left behind: {:?}",
        b.leftovers()
    );

    if let Some(r) = runc_run(&b, "hog-runc") {
        assert_eq!(
            r.shell_status(),
            137,
            "runc: memhog was not OOM-killed\n{}",
            r.dump()
        );
        assert!(
            last_mib(&r.stdout_str()).is_some_and(|m| m < 256),
            "{}",
            r.dump()
        );
    }
}

#[test]
fn oom_kill_of_a_child_leaves_init_running() {
    // The OOM killer picks the biggest process: the hog, not the shell that started it.
    let b = limited_bundle(
        "lim-child",
        &["sh", "-c", "/bin/memhog >/dev/null; echo status=$?"],
        Some(64 * MIB),
        None,
    );
    let o = b.rv(&[
        "run",
        "--keep",
        "--bundle",
        b.dir().to_str().unwrap(),
        "child",
    ]);
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "status=137\n", "{}", o.dump());
    // Kept: the state remembers the OOM kill after the sandbox is gone.
    let st = b.state("child");
    assert_eq!(st["status"], json!("stopped"), "{st}");
    assert_eq!(st["oomKilled"], json!(true), "{st}");
    let ev = b.rv(&["events", "child"]);
    ev.assert_code(0);
    assert!(ev.stdout_str().contains(r#""type":"oom""#), "{}", ev.dump());
    b.rv(&["delete", "child"]).assert_code(0);

    if let Some(r) = runc_run(&b, "child-runc") {
        assert_eq!(r.code(), Some(0), "{}", r.dump());
        assert_eq!(r.stdout_str(), "status=137\n", "{}", r.dump());
    }
}

#[test]
fn host_cgroup_headroom_lets_the_sandbox_oom_killer_act_first() {
    // One memset over 256 MiB outruns a polling watcher if anything does; the host cgroup
    // (limit + headroom) must still leave the sentry alive to kill the hog and go on.
    let b = limited_bundle(
        "lim-bulk",
        &["sh", "-c", "/bin/memhog 256 bulk; echo status=$?"],
        Some(64 * MIB),
        None,
    );
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "bulk"]);
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "status=137\n", "{}", o.dump());
}

#[test]
fn state_and_events_of_a_running_container_show_the_oom_kill() {
    let b = limited_bundle(
        "lim-state",
        &[
            "sh",
            "-c",
            "/bin/memhog >/dev/null; echo hog-ended; sleep 1000",
        ],
        Some(64 * MIB),
        None,
    );
    let d = b.rv_detached(
        "run",
        &[
            "run",
            "--detach",
            "--bundle",
            b.dir().to_str().unwrap(),
            "st",
        ],
    );
    assert_eq!(d.code, Some(0), "run -d: {}", d.stderr);
    let st0 = b.state("st");
    assert_eq!(st0["status"], json!("running"), "{st0}");
    wait_for("the hog to be killed", || {
        std::fs::read_to_string(&d.out)
            .ok()
            .filter(|s| s.contains("hog-ended"))
    });
    let st = b.state("st");
    assert_eq!(st["status"], json!("running"), "{st}");
    assert_eq!(st["oomKilled"], json!(true), "{st}");
    // A running container's events: stats, then the oom event; they end with the container.
    let ev_out = b.tmp.path().join("events.out");
    let mut ev = std::process::Command::new(rvisor_tests::rvisor_bin())
        .arg(format!("--root={}", b.state_root().display()))
        .args(["events", "--interval", "50ms", "st"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&ev_out).unwrap())
        .spawn()
        .unwrap();
    let seen = wait_for("an oom event", || {
        std::fs::read_to_string(&ev_out)
            .ok()
            .filter(|s| s.contains(r#""type":"oom""#))
    });
    assert!(
        seen.lines()
            .next()
            .is_some_and(|l| l.contains(r#""type":"stats""#)),
        "{seen}"
    );
    b.rv(&["kill", "st", "KILL"]).assert_code(0);
    let status = wait_for("events to end with the container", || {
        ev.try_wait().unwrap()
    });
    assert!(status.success(), "events: {status}");
    let all = std::fs::read_to_string(&ev_out).unwrap();
    assert_eq!(all.matches(r#""type":"oom""#).count(), 1, "{all}");
    b.rv(&["delete", "--force", "st"]).assert_code(0);
}

#[test]
fn container_under_its_memory_limit_is_not_oom_killed() {
    let b = limited_bundle("lim-fits", &["/bin/memhog", "16"], Some(64 * MIB), None);
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "fits"]);
    o.assert_code(0);
    assert!(o.stdout_str().ends_with("MiB 16\ndone\n"), "{}", o.dump());
    assert!(!o.stderr_str().contains("OOM"), "{}", o.dump());
}

/// forkbomb's three report lines: forks made, the failure's errno name, children reaped.
fn forkbomb_report(stdout: &str) -> (u64, String) {
    let mut forks = None;
    let mut error = None;
    for l in stdout.lines() {
        if let Some(n) = l.strip_prefix("forks ") {
            forks = n.trim().parse().ok();
        }
        if let Some(e) = l.strip_prefix("error ") {
            error = Some(e.trim().to_string());
        }
    }
    (
        forks.unwrap_or_else(|| panic!("no forks line in {stdout:?}")),
        error.unwrap_or_default(),
    )
}

#[test]
fn pids_limit_stops_a_fork_bomb_with_eagain() {
    let b = limited_bundle("lim-forkbomb", &["/bin/forkbomb"], None, Some(32));
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "bomb"]);
    o.assert_code(0);
    let (forks, error) = forkbomb_report(&o.stdout_str());
    assert_eq!(error, "EAGAIN", "{}", o.dump());
    // The bomb itself is one of the 32.
    assert!(
        (1..32).contains(&forks),
        "{forks} forks under a pids limit of 32\n{}",
        o.dump()
    );
    assert!(
        o.stdout_str().ends_with(&format!("reaped {forks}\n")),
        "{}",
        o.dump()
    );

    if let Some(r) = runc_run(&b, "bomb-runc") {
        // runc counts host pids, rvisor guest tasks: with one process per task they agree.
        r.assert_code(0);
        assert_eq!(
            r.stdout_str(),
            o.stdout_str(),
            "runc and rvisor differ\nrunc: {}\nrvisor: {}",
            r.dump(),
            o.dump()
        );
    }
}

#[test]
fn host_stays_responsive_while_a_fork_bomb_holds_its_limit() {
    let b = limited_bundle("lim-hold", &["/bin/forkbomb", "hold"], None, Some(32));
    let d = b.rv_detached(
        "run",
        &[
            "run",
            "--detach",
            "--bundle",
            b.dir().to_str().unwrap(),
            "hold",
        ],
    );
    assert_eq!(d.code, Some(0), "run -d: {}", d.stderr);
    let out = wait_for("the fork bomb to hit its limit", || {
        std::fs::read_to_string(&d.out)
            .ok()
            .filter(|s| s.contains("holding"))
    });
    let (forks, error) = forkbomb_report(&out);
    assert_eq!(error, "EAGAIN", "{out}");
    assert!(forks < 32, "{out}");
    // The host answers while the container sits at its limit.
    let host = run_native(&Cmd::new("sh").args(["-c", "echo ok"]));
    host.assert_code(0);
    assert_eq!(host.stdout_str(), "ok\n");
    // So does the sandbox, but it has no room for another process.
    let ex = b.rv(&["exec", "hold", "/bin/true"]);
    assert_ne!(
        ex.code(),
        Some(0),
        "exec beyond the pids limit succeeded\n{}",
        ex.dump()
    );
    b.rv(&["kill", "hold", "KILL"]).assert_code(0);
    b.rv(&["delete", "--force", "hold"]).assert_code(0);
}
