//! The container-startup workload: `RUNTIME run --bundle B ID` of a bundle whose process is
//! a static `/bin/true`, the whole invocation timed (create, start, wait, delete), under
//! runc (the "native" column), rvisor and runsc, with a state root of the bench's own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{run, Measurement, RUNSC};

/// A runtime's command line up to `run`'s arguments.
pub struct Runtime {
    pub name: &'static str,
    prefix: Vec<String>,
}

impl Runtime {
    fn command(&self, bundle: &Path, id: &str) -> Command {
        let mut c = Command::new(&self.prefix[0]);
        c.args(&self.prefix[1..])
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(id);
        c
    }

    /// The command line, for the header.
    pub fn describe(&self) -> String {
        format!("{} run --bundle B ID", self.prefix.join(" "))
    }
}

/// Makes the bundle in `dir`: rootfs/bin/true (the static `true_exe`) and a config.json
/// from `rvisor spec` (or `runc spec`) running it without a terminal.
pub fn make_bundle(dir: &Path, true_exe: &Path, rvisor: Option<&Path>) -> Result<PathBuf> {
    let bundle = dir.join("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy(true_exe, rootfs.join("bin/true")).context("copying true into the bundle")?;
    let spec = match rvisor {
        Some(bin) => Command::new(bin)
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .status(),
        None => Command::new("runc")
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .status(),
    };
    match spec {
        Ok(s) if s.success() => {}
        other => bail!("cannot write the bundle's config.json: {other:?}"),
    }
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path)?).context("config.json")?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    Ok(bundle)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `rt` runs the bundle; the reason if not.
fn probe(rt: &Runtime, bundle: &Path) -> Result<(), String> {
    run(rt.command(bundle, &format!("bench-probe-{}", std::process::id())))
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

/// runc, if installed and we are root (it needs root for cgroups and namespaces).
pub fn runc(state: &Path, bundle: &Path) -> Result<Runtime, String> {
    if !is_root() {
        return Err("not root".into());
    }
    let rt = Runtime {
        name: "runc",
        prefix: vec![
            "runc".into(),
            format!("--root={}", state.join("runc").display()),
        ],
    };
    probe(&rt, bundle).map(|()| rt)
}

/// rvisor's OCI CLI.
pub fn rvisor(bin: &Path, state: &Path, bundle: &Path) -> Result<Runtime, String> {
    let rt = Runtime {
        name: "rvisor",
        prefix: vec![
            bin.display().to_string(),
            format!("--root={}", state.join("rvisor").display()),
        ],
    };
    probe(&rt, bundle).map(|()| rt)
}

/// runsc with the flags this host needs (tried in order, like `runsc do`'s probe).
pub fn runsc(state: &Path, bundle: &Path) -> Result<Runtime, String> {
    if !Path::new(RUNSC).is_file() {
        return Err(format!("{RUNSC} not installed (Debian package runsc)"));
    }
    let mut reasons = Vec::new();
    for extra in [&[][..], &["--ignore-cgroups"][..], &["--rootless"][..]] {
        let mut prefix = vec![
            RUNSC.to_string(),
            format!("--root={}", state.join("runsc").display()),
        ];
        prefix.extend(extra.iter().map(|s| s.to_string()));
        prefix.extend(["--platform=ptrace", "--network=none"].map(String::from));
        let rt = Runtime {
            name: "runsc",
            prefix,
        };
        match probe(&rt, bundle) {
            Ok(()) => return Ok(rt),
            Err(e) => reasons.push(if extra.is_empty() {
                e
            } else {
                format!("{}: {e}", extra.join(" "))
            }),
        }
    }
    Err(reasons.join("; "))
}

/// Median wall time of `runs` whole `run` invocations, each with a new container id.
pub fn median_run_ns(rt: &Runtime, bundle: &Path, runs: usize) -> Measurement {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let id = format!("bench-{}-{i}", std::process::id());
        let start = Instant::now();
        run(rt.command(bundle, &id)).map_err(|e| format!("{e:#}"))?;
        times.push(start.elapsed().as_nanos() as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}
