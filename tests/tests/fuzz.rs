//! Random syscalls from a guest (tests/c/fuzz.c): the sentry must neither panic nor hang nor
//! leak host resources, and the guest's processes must only die of the signals bad calls
//! deserve.
//!
//! - `regression_seeds_do_not_break_the_sentry`: a fixed list of seeds, run every time
//!   (seeds that once found a sentry bug are added to [`REGRESSION_SEEDS`]).
//! - `timed_fuzz_keeps_the_sentry_alive_without_leaks`: fuzzes for `RVISOR_FUZZ_SECS`
//!   seconds (default 60 when `CI=true`, 20 otherwise; 600 for the 10-minute local run) in
//!   a long-lived OCI container, and compares the sandbox process's host fds and threads
//!   before the fuzzing with after it (once every fuzz process is reaped).

use std::path::Path;
use std::time::{Duration, Instant};

use rvisor_tests::oci::Bundle;
use rvisor_tests::*;

/// Seeds run on every test run (8 batches each).
const REGRESSION_SEEDS: &[&str] = &["1", "7", "4242"];
/// Batch seeds (from the driver's "odd death: batch seed N" lines) of past findings, each
/// replayed as one batch: add every crash the fuzzer finds here.
/// - 825612210829481290: kill(0, 38) from a call's child reached the batch child through
///   their shared process group (a driver bug: now each call's child has its own group).
const REGRESSION_BATCHES: &[&str] = &["825612210829481290"];

/// Host fds and threads the sandbox process may gain over a fuzz run (lazily started
/// helpers, caches); a leak per call or per process is far beyond this.
const FD_MARGIN: usize = 8;
const THREAD_MARGIN: usize = 4;

#[test]
fn regression_seeds_do_not_break_the_sentry() {
    let run = |mode: &[&str], inputs: &[&str], batches: usize| {
        let mut args = mode.to_vec();
        args.extend_from_slice(inputs);
        let o = run_rvisor_do(&[], &["--cwd", "/dev/shm"], &Cmd::new(progs::FUZZ).args(&args));
        assert!(!looks_like_panic(&o.stderr), "{}", o.dump());
        o.assert_code(0);
        let want = format!("batches done: {batches}, odd deaths: 0, stuck: 0\n");
        assert_eq!(o.stdout_str(), want, "{}", o.dump());
    };
    run(&["seeds", "8"], REGRESSION_SEEDS, 8 * REGRESSION_SEEDS.len());
    run(&["batch"], REGRESSION_BATCHES, REGRESSION_BATCHES.len());
}

/// The fuzzing budget in seconds.
fn fuzz_secs() -> u64 {
    if let Some(s) = std::env::var("RVISOR_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        60
    } else {
        20
    }
}

/// The host threads' names of process `proc_dir`, for the failure message.
fn thread_names(proc_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(proc_dir.join("task"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| rd.count())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The first 16 MiB of `path` (a runaway guest must not make the test read gigabytes).
fn read_head(path: &Path) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(16 << 20).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Waits until `out` has a line starting with `prefix`; returns that line.
fn wait_line(out: &Path, prefix: &str, limit: Duration, what: &dyn Fn() -> String) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = read_head(out);
        if let Some(l) = text.lines().find(|l| l.starts_with(prefix)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix:?} line within {limit:?} (a hang?): {}\nstdout: {text}",
            what()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Found by this test: task threads and address-space master threads lingered after a run
/// (5 -> 16 host threads) because a thread reaping a killed stub thread it did not trace
/// slept in `waitpid` after the kernel released that thread silently on its tracer's exit
/// (platform `stub::reap_killed` now polls).
#[test]
fn timed_fuzz_keeps_the_sentry_alive_without_leaks() {
    let secs = fuzz_secs();
    let seed = std::env::var("RVISOR_FUZZ_SEED").unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string()
    });
    eprintln!("fuzzing for {secs} s with seed {seed} (set RVISOR_FUZZ_SEED to replay)");
    let secs_s = secs.to_string();
    let b = Bundle::new(
        "fuzz",
        &["/bin/fuzz", "timed", &secs_s, &seed, "/dev/shm/go"],
    );
    std::fs::copy(progs::FUZZ, b.rootfs().join("bin/fuzz")).unwrap();
    b.edit(|c| c["process"]["cwd"] = "/dev/shm".into());
    let d = b.create("fz");
    let err = d.out.with_extension("err");
    let what = || format!("stderr: {}", read_head(&err));
    b.rv(&["start", "fz"]).assert_code(0);
    wait_line(&d.out, "ready", timeout(), &what);

    let pid = b.state("fz")["pid"].as_i64().expect("state has a pid");
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let names0 = thread_names(&proc_dir);
    let (fds0, threads0) = (
        count_entries(&proc_dir.join("fd")),
        count_entries(&proc_dir.join("task")),
    );

    b.rv(&["exec", "fz", "/bin/touch", "/dev/shm/go"])
        .assert_code(0);
    // The driver's own limits: 6 s per batch, 10 s per SIGKILL, plus reaping at the end.
    let done = wait_line(&d.out, "done:", Duration::from_secs(secs + 60), &what);
    assert!(proc_dir.exists(), "the sandbox process died: {}", what());
    let stderr = read_head(&err);
    assert!(
        !looks_like_panic(stderr.as_bytes()),
        "sentry panic: {stderr}"
    );
    assert!(
        done.ends_with("odd deaths: 0, stuck: 0"),
        "{done}\n{}",
        read_head(&d.out)
    );
    let batches: u64 = done
        .strip_prefix("done: batches ")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {done:?}"));
    assert!(batches > 0, "{done}");

    // Settle: exited tasks' host threads and fds go away asynchronously.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (fds1, threads1) = loop {
        let now = (
            count_entries(&proc_dir.join("fd")),
            count_entries(&proc_dir.join("task")),
        );
        if (now.0 <= fds0 + FD_MARGIN && now.1 <= threads0 + THREAD_MARGIN)
            || Instant::now() > deadline
        {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let names1 = thread_names(&proc_dir);
    eprintln!("{done}; host fds {fds0} -> {fds1}, threads {threads0} -> {threads1} ({names0:?} -> {names1:?})");
    assert!(
        fds1 <= fds0 + FD_MARGIN,
        "host fds leaked: {fds0} before fuzzing, {fds1} after ({done})"
    );
    assert!(
        threads1 <= threads0 + THREAD_MARGIN,
        "host threads leaked: {threads0} before, {threads1} after ({done}): {names0:?} -> {names1:?}"
    );

    // The container still works.
    let o = b.rv(&["exec", "fz", "/bin/echo", "alive"]);
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "alive\n");
    b.rv(&["kill", "fz", "KILL"]).assert_code(0);
    let _ = b.rv(&["delete", "--force", "fz"]);
    let stderr = read_head(&err);
    assert!(
        !looks_like_panic(stderr.as_bytes()),
        "sentry panic: {stderr}"
    );
}
