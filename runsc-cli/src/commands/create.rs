//! `rvisor create`: sets up a container from a bundle; its init waits for `start`.

use std::path::PathBuf;

use crate::container::lifecycle::{self, InitStdio};

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's pid (the sandbox process) into.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master to (process.terminal).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (the sandbox has its own root).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Accepted for runc compatibility (extra fds are not passed in).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
}

pub fn run(g: &crate::GlobalFlags, args: CreateArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "create");
    let stdio = match &args.console_socket {
        Some(p) => InitStdio::ConsoleSocket(p),
        None => InitStdio::Inherit,
    };
    lifecycle::create(g, &args.id, &args.bundle, args.pid_file.as_deref(), stdio)?;
    Ok(0)
}
