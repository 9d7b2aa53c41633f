//! rvisor-bench: the same workloads natively, in `rvisor do` and, when installed, in gVisor's
//! `runsc do`; prints one table of times and ratios from a single run. Nothing here asserts
//! anything about speed.
//!
//! Workloads (C programs in bench/c, built with `gcc -static -O2` into the target folder;
//! each times its own loop with CLOCK_MONOTONIC and prints `ns_per_op=`):
//! - `getppid`: a raw syscall round trip;
//! - `open+fstat+read4k+close`: four file syscalls on a 16 KiB file the bench creates;
//! - `/bin/true startup`: median wall time of the whole command over `--runs` runs;
//! - `fork+exec+wait`: a guest spawning `/bin/true` and `python3 -c pass` and waiting;
//! - `create+write4k+close+unlink`: file creation in /tmp and in a directory of the root
//!   filesystem (the overlay's upper layer in rvisor by default);
//! - `stat`: a path lookup of a file of the root filesystem;
//! - `container run /bin/true`: `RUNTIME run --bundle B ID` of an OCI bundle whose process
//!   is a static `/bin/true`, median wall time of the whole invocation; its "native" column
//!   is runc (see `container.rs`).
//! - `nginx 4KiB req/s` and `p99`: nginx in a network namespace loaded by wrk from the host
//!   side, natively, in runc, runsc and rvisor (both network modes); its own table (see
//!   `nginx.rs`; needs root, nginx and wrk).
//!
//! Usage: `cargo run --release -p rvisor-bench [-- --iterations N] [--runs M]`

mod container;
mod nginx;

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEFAULT_ITERATIONS: u64 = 10_000;
const DEFAULT_RUNS: usize = 10;
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const RUNSC: &str = "/usr/bin/runsc";

struct Options {
    iterations: u64,
    runs: usize,
    /// Only the nginx table.
    nginx_only: bool,
}

fn parse_options() -> Result<Options> {
    let mut o = Options {
        iterations: DEFAULT_ITERATIONS,
        runs: DEFAULT_RUNS,
        nginx_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--iterations" => {
                o.iterations = value("--iterations")?.parse().context("--iterations")?
            }
            "--runs" => o.runs = value("--runs")?.parse().context("--runs")?,
            "--nginx-only" => o.nginx_only = true,
            "-h" | "--help" => {
                println!(
                    "usage: rvisor-bench [--iterations N] [--runs M] [--nginx-only]\n  \
                     --iterations N  loop iterations of the syscall workloads (default {DEFAULT_ITERATIONS})\n  \
                     --runs M        runs of the /bin/true startup workload (default {DEFAULT_RUNS})\n  \
                     --nginx-only    only the nginx table\n\
                     env RVISOR_BIN: the rvisor binary (default: next to this one)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if o.iterations == 0 || o.runs == 0 {
        bail!("--iterations and --runs must be at least 1");
    }
    Ok(o)
}

/// How a workload command is run: natively or wrapped by a sandbox's command line.
#[derive(Clone)]
struct Runner {
    name: &'static str,
    prefix: Vec<String>,
}

impl Runner {
    fn command(&self, argv: &[String]) -> Command {
        let full: Vec<&String> = self.prefix.iter().chain(argv).collect();
        let mut c = Command::new(full[0]);
        c.args(&full[1..]);
        c
    }
}

/// Runs `c` to completion with a timeout; returns stdout, or why it failed.
fn run(mut c: Command) -> Result<String> {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = c
        .spawn()
        .with_context(|| format!("cannot start {:?}", c.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(out) => out?,
        Err(_) => {
            // SAFETY: kill(2) on the process group of a child that the waiter thread has not
            // reaped yet, so the id still names it.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            bail!("timed out after {RUN_TIMEOUT:?}");
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        bail!("{}: {}", out.status, first.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One measurement: ns per loop iteration, or wall time of a whole command.
type Measurement = Result<f64, String>;

fn ns_per_op(runner: &Runner, argv: &[String]) -> Measurement {
    let stdout = run(runner.command(argv)).map_err(|e| format!("{e:#}"))?;
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ns_per_op="))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no ns_per_op= in output {stdout:?}"))
}

fn median_wall_ns(runner: &Runner, argv: &[String], runs: usize) -> Measurement {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        run(runner.command(argv)).map_err(|e| format!("{e:#}"))?;
        times.push(start.elapsed().as_nanos() as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

fn build_workload(src: &Path, out_dir: &Path) -> Result<PathBuf> {
    let exe = out_dir.join(src.file_stem().unwrap());
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(src)
        .output()
        .context("cannot run gcc (install gcc and libc6-dev)")?;
    if !out.status.success() {
        bail!(
            "gcc failed for {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(exe)
}

/// The rvisor binary: $RVISOR_BIN, else next to this binary (target/release). Under
/// `cargo run` it is (re)built first, since `cargo run -p rvisor-bench` builds only the bench.
fn find_rvisor(exe_dir: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RVISOR_BIN") {
        return Ok(PathBuf::from(p));
    }
    let bin = exe_dir.join("rvisor");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let release = exe_dir.file_name().is_some_and(|n| n == "release");
        let mut c = Command::new(cargo);
        c.args(["build", "-p", "rvisor"]);
        if release {
            c.arg("--release");
        }
        eprintln!(
            "building rvisor ({})...",
            if release { "release" } else { "debug" }
        );
        match c.status() {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("`cargo build -p rvisor` failed ({s})")),
            Err(e) => return Err(format!("cannot run cargo: {e}")),
        }
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found; run `cargo build --release`",
            bin.display()
        ))
    }
}

/// Checks that a sandbox runs `/bin/true`; returns the reason if it does not.
fn probe(runner: &Runner) -> Result<(), String> {
    run(runner.command(&["/bin/true".to_string()]))
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

fn runsc_runner() -> Result<Runner, String> {
    if !Path::new(RUNSC).is_file() {
        return Err(format!("{RUNSC} not installed (Debian package runsc)"));
    }
    // runsc needs root for `do`; without root, --rootless may work. Try in order.
    let mut reasons = Vec::new();
    for extra in [&[][..], &["--rootless"][..], &["--ignore-cgroups"][..]] {
        let mut prefix = vec![RUNSC.to_string()];
        prefix.extend(extra.iter().map(|s| s.to_string()));
        prefix.extend(["--platform=ptrace", "--network=none", "do"].map(String::from));
        let r = Runner {
            name: "runsc",
            prefix,
        };
        match probe(&r) {
            Ok(()) => return Ok(r),
            Err(e) => reasons.push(if extra.is_empty() {
                e
            } else {
                format!("{}: {e}", extra.join(" "))
            }),
        }
    }
    Err(reasons.join("; "))
}

fn fmt_time(ns: f64, unit_ms: bool) -> String {
    if unit_ms {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 10_000.0 {
        format!("{:.1} µs/op", ns / 1e3)
    } else {
        format!("{ns:.0} ns/op")
    }
}

fn fmt_cell(m: &Option<Measurement>, unit_ms: bool) -> String {
    match m {
        None => "-".into(),
        Some(Ok(ns)) => fmt_time(*ns, unit_ms),
        Some(Err(_)) => "failed".into(),
    }
}

fn ratio(a: &Option<Measurement>, b: &Option<Measurement>) -> String {
    match (a, b) {
        (Some(Ok(a)), Some(Ok(b))) if *b > 0.0 => format!("{:.1}x", a / b),
        _ => "-".into(),
    }
}

struct Row {
    workload: String,
    unit_ms: bool,
    native: Option<Measurement>,
    rvisor: Option<Measurement>,
    runsc: Option<Measurement>,
}

fn print_table(rows: &[Row]) {
    let header = [
        "workload",
        "native",
        "rvisor",
        "runsc",
        "rvisor/native",
        "runsc/native",
        "runsc/rvisor",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.workload.clone(),
                fmt_cell(&r.native, r.unit_ms),
                fmt_cell(&r.rvisor, r.unit_ms),
                fmt_cell(&r.runsc, r.unit_ms),
                ratio(&r.rvisor, &r.native),
                ratio(&r.runsc, &r.native),
                ratio(&r.runsc, &r.rvisor),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap()
    };
    let widths: Vec<usize> = (0..7).map(width).collect();
    let line = |row: &[String]| {
        let parts: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i] - c.chars().count();
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&header.map(String::from));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for c in &cells {
        line(c);
    }
    for r in rows {
        for (name, m) in [
            ("native", &r.native),
            ("rvisor", &r.rvisor),
            ("runsc", &r.runsc),
        ] {
            if let Some(Err(e)) = m {
                println!("{}: {name} failed: {e}", r.workload);
            }
        }
    }
}

fn main() {
    if let Err(e) = try_main() {
        eprintln!("rvisor-bench: {e:#}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<()> {
    let opts = parse_options()?;
    let exe = std::env::current_exe()?;
    let exe_dir = exe
        .parent()
        .context("no folder for the bench binary")?
        .to_path_buf();
    let work_dir = exe_dir.join("bench-workloads");
    std::fs::create_dir_all(&work_dir)?;
    let c_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
    let getppid = build_workload(&c_dir.join("getppid.c"), &work_dir)?;
    let file_read = build_workload(&c_dir.join("file_read.c"), &work_dir)?;
    let spawn = build_workload(&c_dir.join("spawn.c"), &work_dir)?;
    let file_create = build_workload(&c_dir.join("file_create.c"), &work_dir)?;
    let stat = build_workload(&c_dir.join("stat.c"), &work_dir)?;
    let true_exe = build_workload(&c_dir.join("true.c"), &work_dir)?;

    // A 16 KiB file for the file workload, visible to both sandboxes (they see the host's /).
    let data_dir = std::env::temp_dir().join(format!("rvisor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir)?;
    let data = data_dir.join("data.bin");
    std::fs::write(
        &data,
        (0..16384u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>(),
    )?;
    // A directory of the root filesystem that is not /tmp, for file creation there.
    let root_dir = work_dir.join(format!("create-{}", std::process::id()));
    std::fs::create_dir_all(&root_dir)?;
    let w = Workloads {
        getppid,
        file_read,
        spawn,
        file_create,
        stat,
        true_exe,
    };
    let result = bench(&opts, &exe_dir, &w, &data, &root_dir);
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(&root_dir);
    result
}

/// The built C workloads.
struct Workloads {
    getppid: PathBuf,
    file_read: PathBuf,
    spawn: PathBuf,
    file_create: PathBuf,
    stat: PathBuf,
    true_exe: PathBuf,
}

/// How a workload is measured and shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The workload times its own loop and prints ns_per_op (shown in ns/µs).
    Loop,
    /// Like `Loop`, but each op is long (shown in ms).
    LoopMs,
    /// Median wall time of the whole command (shown in ms).
    Startup,
}

fn bench(
    opts: &Options,
    exe_dir: &Path,
    w: &Workloads,
    data: &Path,
    root_dir: &Path,
) -> Result<()> {
    if opts.nginx_only {
        nginx::bench(exe_dir, find_rvisor(exe_dir).ok().as_deref());
        return Ok(());
    }
    let (getppid, file_read, spawn) = (&w.getppid, &w.file_read, &w.spawn);
    let native = Runner {
        name: "native",
        prefix: vec![],
    };
    let rvisor_bin = find_rvisor(exe_dir);
    let rvisor = rvisor_bin.clone().and_then(|bin| {
        let r = Runner {
            name: "rvisor",
            prefix: vec![bin.display().to_string(), "do".into()],
        };
        probe(&r).map(|()| r)
    });
    let runsc = runsc_runner();
    match &rvisor {
        Ok(r) => println!("rvisor: {}", r.prefix.join(" ")),
        Err(e) => println!("rvisor: unavailable ({e})"),
    }
    match &runsc {
        Ok(r) => println!("runsc: {}", r.prefix.join(" ")),
        Err(e) => println!("runsc: unavailable ({e})"),
    }
    println!(
        "iterations: {}, startup runs: {}\n",
        opts.iterations, opts.runs
    );

    let n = opts.iterations.to_string();
    // Spawns cost milliseconds: fewer rounds.
    let spawns = (opts.iterations / 500).max(10).to_string();
    let py_spawns = (opts.iterations / 2000).max(5).to_string();
    let workloads: Vec<(&str, Vec<String>, Kind)> = vec![
        (
            "getppid",
            vec![getppid.display().to_string(), n.clone()],
            Kind::Loop,
        ),
        (
            "open+fstat+read4k+close",
            vec![
                file_read.display().to_string(),
                n.clone(),
                data.display().to_string(),
            ],
            Kind::Loop,
        ),
        (
            "/bin/true startup",
            vec!["/bin/true".to_string()],
            Kind::Startup,
        ),
        (
            "fork+exec+wait /bin/true",
            vec![spawn.display().to_string(), spawns, "/bin/true".to_string()],
            Kind::LoopMs,
        ),
        (
            "fork+exec+wait python3 -c pass",
            vec![
                spawn.display().to_string(),
                py_spawns,
                "/usr/bin/python3".to_string(),
                "-c".to_string(),
                "pass".to_string(),
            ],
            Kind::LoopMs,
        ),
        (
            "create+write4k+close+unlink /tmp",
            vec![
                w.file_create.display().to_string(),
                n.clone(),
                "/tmp".to_string(),
            ],
            Kind::Loop,
        ),
        (
            "create+write4k+close+unlink rootfs",
            vec![
                w.file_create.display().to_string(),
                n.clone(),
                root_dir.display().to_string(),
            ],
            Kind::Loop,
        ),
        (
            "stat /usr/bin/python3",
            vec![
                w.stat.display().to_string(),
                n.clone(),
                "/usr/bin/python3".to_string(),
            ],
            Kind::Loop,
        ),
    ];
    let mut rows = Vec::new();
    for (name, argv, kind) in workloads {
        let measure = |r: &Runner| {
            eprintln!("running {name} ({})...", r.name);
            match kind {
                Kind::Startup => median_wall_ns(r, &argv, opts.runs),
                Kind::Loop | Kind::LoopMs => ns_per_op(r, &argv),
            }
        };
        rows.push(Row {
            workload: name.to_string(),
            unit_ms: kind != Kind::Loop,
            native: Some(measure(&native)),
            rvisor: rvisor.as_ref().ok().map(measure),
            runsc: runsc.as_ref().ok().map(measure),
        });
    }
    rows.push(container_row(
        opts,
        exe_dir,
        rvisor_bin.as_deref().ok(),
        &w.true_exe,
    ));
    print_table(&rows);
    nginx::bench(exe_dir, rvisor_bin.as_deref().ok());
    Ok(())
}

/// The container-startup row: runc, rvisor and runsc each `run` the same bundle.
fn container_row(
    opts: &Options,
    exe_dir: &Path,
    rvisor_bin: Option<&Path>,
    true_exe: &Path,
) -> Row {
    let name = "container run /bin/true (native: runc)";
    let mut row = Row {
        workload: name.to_string(),
        unit_ms: true,
        native: None,
        rvisor: None,
        runsc: None,
    };
    let dir = exe_dir
        .join("bench-workloads")
        .join(format!("container-{}", std::process::id()));
    let bundle = match container::make_bundle(&dir, true_exe, rvisor_bin) {
        Ok(b) => b,
        Err(e) => {
            println!("{name}: no bundle: {e:#}");
            return row;
        }
    };
    let state = dir.join("state");
    let runtimes = [
        container::runc(&state, &bundle),
        rvisor_bin
            .ok_or_else(|| "rvisor unavailable".to_string())
            .and_then(|b| container::rvisor(b, &state, &bundle)),
        container::runsc(&state, &bundle),
    ];
    let slots = [
        ("runc", &mut row.native),
        ("rvisor", &mut row.rvisor),
        ("runsc", &mut row.runsc),
    ];
    for ((runtime, slot), rt) in slots.into_iter().zip(&runtimes) {
        match rt {
            Ok(rt) => {
                println!("{name}: {}", rt.describe());
                eprintln!("running {name} ({})...", rt.name);
                *slot = Some(container::median_run_ns(rt, &bundle, opts.runs));
            }
            Err(e) => println!("{name}: {runtime} unavailable: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    row
}
