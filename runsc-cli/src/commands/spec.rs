//! `rvisor spec`: writes runc's default config.json into the bundle.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{bail, Context};

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into.
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
}

pub fn run(g: &crate::GlobalFlags, args: SpecArgs) -> anyhow::Result<i32> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let spec = crate::oci::default_spec::default_spec(g.rootless.as_deref().is_some_and(|r| r != "false"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
        .with_context(|| format!("spec: {}", path.display()))?;
    f.write_all(serde_json::to_string_pretty(&spec)?.as_bytes()).with_context(|| format!("spec: {}", path.display()))?;
    Ok(0)
}
