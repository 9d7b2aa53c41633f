//! `rvisor`: the OCI runtime CLI, plus the hidden `boot` (sandbox) and `gofer` (file proxy)
//! subcommands it re-executes itself as.

mod commands;
mod logging;
mod spawn;

use clap::{Parser, Subcommand};

/// Global flags, runc/runsc style.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalFlags {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/rvisor")]
    pub root: String,
    /// Verbose logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Directory to write per-process debug logs into.
    #[arg(long = "debug-log", global = true)]
    pub debug_log: Option<String>,
    /// Log file of the CLI itself.
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// How guest code is run and trapped.
    #[arg(long, global = true, default_value = "ptrace")]
    pub platform: String,
    /// Network mode: sandbox, host or none.
    #[arg(long, global = true, default_value = "sandbox")]
    pub network: String,
    /// Root filesystem overlay: `memory` (the default: the sandbox's writes to its root
    /// land in memory and the host tree is never changed) or `none` (writes go through the
    /// gofer to the host tree).
    #[arg(long, global = true, default_value = "memory", num_args = 0..=1, require_equals = true, default_missing_value = "memory")]
    pub overlay: String,
    /// runsc's spelling of --overlay: `root:memory`, `all:memory` or `none`.
    #[arg(long, global = true, value_name = "MOUNTS:MEDIUM")]
    pub overlay2: Option<String>,
    /// The kernel release the sandbox reports through uname(2).
    #[arg(long = "kernel-release", global = true, default_value = rvisor_sentry::DEFAULT_KERNEL_RELEASE)]
    pub kernel_release: String,
}

impl GlobalFlags {
    /// Whether the root filesystem gets a memory-backed overlay (`--overlay2` wins over
    /// `--overlay`).
    pub fn root_overlay(&self) -> anyhow::Result<bool> {
        if let Some(v) = &self.overlay2 {
            return match v.as_str() {
                "none" => Ok(false),
                "root:memory" | "all:memory" => Ok(true),
                other => anyhow::bail!("--overlay2={other}: expected root:memory, all:memory or none"),
            };
        }
        match self.overlay.as_str() {
            "memory" | "root:memory" | "all:memory" | "true" => Ok(true),
            "none" | "false" => Ok(false),
            other => anyhow::bail!("--overlay={other}: expected memory or none"),
        }
    }
}

#[derive(Debug, Parser)]
#[command(name = "rvisor", version, about = "A gVisor-style sandbox runtime for Linux containers", disable_help_subcommand = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command in a new sandbox over the host's root (or --rootfs), no bundle needed.
    Do(commands::run_do::DoArgs),
    /// Show help on a topic: `rvisor help syscalls`.
    Help(commands::help::HelpArgs),
    /// Internal: the sandbox process (sentry).
    #[command(hide = true)]
    Boot(commands::boot::BootArgs),
    /// Internal: the file proxy process.
    #[command(hide = true)]
    Gofer(commands::gofer::GoferArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            // One clear line rather than clap's multi-line report.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            eprintln!("rvisor: {first} (see `rvisor --help`)");
            std::process::exit(2);
        }
    };
    let result = match cli.command {
        Command::Do(args) => commands::run_do::run(&cli.global, args),
        Command::Help(args) => commands::help::run(args),
        Command::Boot(args) => commands::boot::run(&cli.global, args),
        Command::Gofer(args) => commands::gofer::run(&cli.global, args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rvisor: {e:#}");
            std::process::exit(1);
        }
    }
}
