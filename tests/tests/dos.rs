//! Denial of service between sandboxes (issue 8, acceptance 5): while sandbox A runs a fork
//! bomb, a memory bomb and an fd bomb at once under the limits containerd would give it
//! (256 MiB, 64 pids, RLIMIT_NOFILE 1024:1048576), sandbox B on the same machine keeps
//! answering requests and the host keeps spawning processes; killing and deleting A removes
//! its host processes and cgroups and gives its memory back.
//!
//! The bounds are sanity bounds (a request or a host spawn within seconds), not speed asserts;
//! the latencies are printed (idle and under load, with their ratio) for the report.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rvisor_tests::oci::Bundle;
use serde_json::json;

const BOMBS: &str = env!("RVISOR_TEST_PROG_BOMBS");
const MIB: u64 = 1 << 20;
/// Requests per measurement.
const REQUESTS: usize = 15;
/// The most one request to B (or one host spawn) may take, idle or not.
const BOUND: Duration = Duration::from_secs(2);
/// How far below its value before A the host's MemAvailable may stay after A is gone
/// (other work on the machine moves it too; A itself held about 300 MiB).
const MEM_MARGIN: u64 = 128 * MIB;
/// The cgroup controllers whose directories rvisor makes on cgroup v1.
const V1_CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "cpuacct", "freezer"];

/// Polls `f` until it returns something, failing after `limit`.
#[track_caller]
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sandbox B: a shell loop that answers each line on stdin by running /bin/echo (a fork
/// and an exec in the sandbox per request).
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    served: usize,
}

impl Server {
    fn start(b: &Bundle) -> Server {
        let mut child = Command::new(rvisor_tests::rvisor_bin())
            .arg(format!("--root={}", b.state_root().display()))
            .args(["run", "--bundle", b.dir().to_str().unwrap(), "srv"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting sandbox B");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Server { child, stdin, stdout, served: 0 }
    }

    /// One request; its round-trip time.
    fn request(&mut self) -> Duration {
        self.served += 1;
        let n = self.served;
        let t = Instant::now();
        writeln!(self.stdin, "req {n}").expect("writing to sandbox B");
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reading from sandbox B");
        let took = t.elapsed();
        assert_eq!(line, format!("got req {n}\n"), "sandbox B answered wrongly");
        took
    }

    /// `REQUESTS` requests, each within `BOUND`; their sorted times.
    fn measure(&mut self, when: &str) -> Vec<Duration> {
        let mut v: Vec<Duration> = (0..REQUESTS)
            .map(|_| {
                let d = self.request();
                assert!(d < BOUND, "sandbox B took {d:?} for a request {when}");
                d
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a host `true` takes to spawn and finish.
fn host_spawn() -> Duration {
    let t = Instant::now();
    let s = Command::new("true").status().expect("spawning true on the host");
    assert!(s.success());
    t.elapsed()
}

fn mem_available() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("MemAvailable in /proc/meminfo")
}

/// The cgroup directories rvisor makes for an absolute cgroupsPath `rel` (v1 or v2).
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.join(rel)];
    }
    V1_CONTROLLERS
        .iter()
        .map(|c| root.join(c))
        .filter(|d| d.join("cgroup.procs").exists())
        .map(|d| d.join(rel))
        .collect()
}

/// Host pids in A's cgroups, with their start times (so a reused pid is not taken for one
/// of A's).
fn cgroup_procs(dirs: &[PathBuf]) -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| t.lines().filter_map(|l| l.trim().parse::<i32>().ok()).collect::<Vec<_>>())
        .filter_map(|p| start_time(p).map(|s| (p, s)))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Field 22 of /proc/PID/stat (start time), if PID lives (and is not a zombie).
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19).map(|s| s.to_string())
}

fn median(v: &[Duration]) -> Duration {
    v[v.len() / 2]
}

#[test]
fn second_sandbox_keeps_answering_while_the_first_runs_three_bombs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root (cgroups for sandbox A's limits)");
    }
    let b = Bundle::new("dos-b", &["sh", "-c", "while read l; do /bin/echo \"got $l\"; done"]);
    let mut srv = Server::start(&b);
    // The first answer also waits for B to boot.
    srv.request();
    let idle = srv.measure("while idle");
    let idle_spawn = host_spawn();

    let a = Bundle::new("dos-a", &["/bin/bombs"]);
    std::fs::copy(BOMBS, a.rootfs().join("bin/bombs")).unwrap();
    let cg_rel = format!("rvisor-dos-{}/a", std::process::id());
    a.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{cg_rel}"));
        let r = &mut c["linux"]["resources"];
        r["memory"] = json!({ "limit": 256 * MIB });
        r["pids"] = json!({ "limit": 64 });
        c["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1_048_576 }]);
    });
    let cg_dirs = cgroup_dirs(&cg_rel);
    let mem_before = mem_available();
    let d = a.rv_detached("a", &["run", "--detach", "--bundle", a.dir().to_str().unwrap(), "a"]);
    assert_eq!(d.code, Some(0), "run -d of the bombs: {}", d.stderr);
    let deadline = Instant::now() + Duration::from_secs(45);
    let raging = loop {
        let out = std::fs::read_to_string(&d.out).unwrap_or_default();
        if out.contains("fdbomb fds") && out.contains("forkbomb full") && out.contains("membomb killed") {
            break out;
        }
        assert!(Instant::now() < deadline, "the bombs did not all go off in A within 45 s; A said:\n{out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let fd_line = raging.lines().find(|l| l.starts_with("fdbomb")).unwrap_or_default().to_string();
    let a_procs = cgroup_procs(&cg_dirs);
    assert!(!a_procs.is_empty(), "no host processes in A's cgroups {cg_dirs:?}");

    let loaded = srv.measure("while A runs its bombs");
    let spawns: Vec<Duration> = (0..5).map(|_| host_spawn()).collect();
    for s in &spawns {
        assert!(*s < BOUND, "a host `true` took {s:?} while A runs its bombs");
    }
    // A still rages: its sandbox was not killed by the host for overrunning its cgroup.
    let st = a.state("a");
    assert_eq!(st["status"], json!("running"), "A died under its own bombs: {st}\n{}", d.stderr);
    let a_out = std::fs::read_to_string(&d.out).unwrap_or_default();
    // The fork bomb meets the guest's pids limit (fork fails with EAGAIN), never the host's
    // first: no guest process may be killed because its host stub could not be made.
    let a_err = std::fs::read_to_string(d.out.with_extension("err")).unwrap_or_default();
    assert!(
        !a_err.contains("sandbox task"),
        "A's tasks died of host failures under its bombs:\n{}",
        a_err.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    eprintln!(
        "B request latency: idle median {:?} max {:?}; under A's bombs median {:?} max {:?} \
         (ratio of medians {:.1}); host spawn idle {:?}, loaded max {:?}; A: {fd_line}, {} OOM kills",
        median(&idle),
        idle[idle.len() - 1],
        median(&loaded),
        loaded[loaded.len() - 1],
        median(&loaded).as_secs_f64() / median(&idle).as_secs_f64().max(1e-9),
        idle_spawn,
        spawns.iter().max().unwrap(),
        a_out.matches("membomb killed").count(),
    );

    a.rv(&["kill", "a", "KILL"]).assert_code(0);
    a.rv(&["delete", "--force", "a"]).assert_code(0);
    assert!(a.leftovers().is_empty(), "state left behind: {:?}", a.leftovers());
    // Every host process of A is gone, and so are its cgroups.
    wait_for("A's host processes to be gone", Duration::from_secs(10), || {
        a_procs.iter().all(|(p, s)| start_time(*p).as_ref() != Some(s)).then_some(())
    });
    for dir in &cg_dirs {
        assert!(!dir.exists(), "A's cgroup {} is still there", dir.display());
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    // The host got A's memory back.
    let got_back = wait_for("the host's memory to come back", Duration::from_secs(15), || {
        let now = mem_available();
        (now + MEM_MARGIN >= mem_before).then_some(now)
    });
    eprintln!("MemAvailable before A {} MiB, after A {} MiB", mem_before / MIB, got_back / MIB);

    // B is still fine.
    srv.measure("after A is gone");
}
