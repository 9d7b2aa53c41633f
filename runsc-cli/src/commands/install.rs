//! `rvisor install`: registers rvisor as a Docker runtime (daemon.json `runtimes.rvisor`)
//! and prints the containerd configuration that does the same.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Docker's daemon configuration file.
    #[arg(long = "config-file", default_value = "/etc/docker/daemon.json")]
    config_file: PathBuf,
    /// Path of the rvisor binary (default: this one).
    #[arg(long)]
    path: Option<PathBuf>,
    /// The runtime's name in daemon.json.
    #[arg(long, default_value = "rvisor")]
    runtime: String,
    /// Extra arguments Docker passes to rvisor (e.g. "--debug-log=/tmp/rvisor/").
    #[arg(long = "runtime-args", num_args = 0.., allow_hyphen_values = true)]
    runtime_args: Vec<String>,
    /// Only print the containerd snippet.
    #[arg(long = "containerd-only")]
    containerd_only: bool,
}

/// daemon.json with the runtime entry added or replaced; other keys are kept.
pub fn add_runtime(mut cfg: Value, name: &str, path: &str, args: &[String]) -> anyhow::Result<Value> {
    let obj = cfg.as_object_mut().context("daemon.json is not a JSON object")?;
    let runtimes = obj.entry("runtimes").or_insert_with(|| json!({}));
    let runtimes = runtimes.as_object_mut().context("daemon.json: \"runtimes\" is not an object")?;
    let mut entry = json!({ "path": path });
    if !args.is_empty() {
        entry["runtimeArgs"] = json!(args);
    }
    runtimes.insert(name.to_string(), entry);
    Ok(cfg)
}

/// The containerd (CRI, config version 2) snippet for a runtime using rvisor.
pub fn containerd_snippet(path: &str) -> String {
    format!(
        r#"# /etc/containerd/config.toml
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rvisor]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rvisor.options]
  BinaryName = "{path}"
"#
    )
}

pub fn run(_g: &crate::GlobalFlags, args: InstallArgs) -> anyhow::Result<i32> {
    let path = match args.path {
        Some(p) => p,
        None => std::env::current_exe()?,
    };
    let path = path.to_str().context("the binary's path is not UTF-8")?.to_string();
    if !args.containerd_only {
        let cfg = match std::fs::read_to_string(&args.config_file) {
            Ok(t) if t.trim().is_empty() => json!({}),
            Ok(t) => serde_json::from_str(&t).with_context(|| format!("{}", args.config_file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(e) => return Err(e).with_context(|| format!("{}", args.config_file.display())),
        };
        if args.runtime.is_empty() {
            bail!("--runtime must not be empty");
        }
        let cfg = add_runtime(cfg, &args.runtime, &path, &args.runtime_args)?;
        if let Some(dir) = args.config_file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        }
        crate::container::state::write_atomic(&args.config_file, (serde_json::to_string_pretty(&cfg)? + "\n").as_bytes())?;
        eprintln!("rvisor: added runtime {:?} to {}; restart dockerd to use it (docker run --runtime={})", args.runtime, args.config_file.display(), args.runtime);
    }
    print!("{}", containerd_snippet(&path));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_keeps_other_keys_and_is_idempotent() {
        let cfg = json!({ "debug": true, "runtimes": { "other": { "path": "/x" } } });
        let once = add_runtime(cfg, "rvisor", "/bin/rvisor", &["--debug".into()]).unwrap();
        let twice = add_runtime(once.clone(), "rvisor", "/bin/rvisor", &["--debug".into()]).unwrap();
        assert_eq!(once, twice);
        assert_eq!(once["debug"], json!(true));
        assert_eq!(once["runtimes"]["other"]["path"], json!("/x"));
        assert_eq!(once["runtimes"]["rvisor"]["runtimeArgs"], json!(["--debug"]));
        assert!(add_runtime(json!([1]), "rvisor", "/b", &[]).is_err());
    }
}
