//! `rvisor`: the OCI runtime CLI, plus the hidden `boot` (sandbox) and `gofer` (file proxy)
//! subcommands it re-executes itself as.

mod commands;
mod confine;
mod container;
mod logging;
mod net;
mod oci;
mod sandbox;
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
    /// Network mode: sandbox (the sandbox's own TCP/IP stack takes over the container's
    /// network namespace), host (guest sockets are host sockets in that namespace) or none
    /// (loopback only).
    #[arg(long, global = true, default_value = "sandbox")]
    pub network: rvisor_sentry::net::NetworkMode,
    /// Root filesystem overlay: `memory` (the default: the sandbox's writes to its root
    /// land in memory and the host tree is never changed) or `none` (writes go through the
    /// gofer to the host tree).
    #[arg(long, global = true, default_value = "memory", num_args = 0..=1, require_equals = true, default_missing_value = "memory")]
    pub overlay: String,
    /// runsc's spelling of --overlay: `root:memory`, `all:memory` or `none`.
    #[arg(long, global = true, value_name = "MOUNTS:MEDIUM")]
    pub overlay2: Option<String>,
    /// Accepted for runc compatibility (cgroups are managed directly, not through systemd).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility: true, false or auto.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Tests only: sandboxes serve debug control requests (e.g. make a host syscall).
    #[arg(long = "debug-control", global = true, hide = true)]
    pub debug_control: bool,
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
    /// Create a container from a bundle; its process waits for `start`.
    Create(commands::create::CreateArgs),
    /// Start the process of a created container.
    Start(commands::start::StartArgs),
    /// Create and start a container (and wait for it unless --detach).
    Run(commands::run::RunArgs),
    /// Print a container's state as JSON.
    State(commands::state::StateArgs),
    /// List containers.
    List(commands::list::ListArgs),
    /// Send a signal to a container's process (default SIGTERM).
    Kill(commands::kill::KillArgs),
    /// Delete a container and everything it holds.
    Delete(commands::delete::DeleteArgs),
    /// Run a new process in a running container.
    Exec(commands::exec::ExecArgs),
    /// Wait for a container's process and print its exit status.
    Wait(commands::wait::WaitArgs),
    /// List a container's processes.
    Ps(commands::ps::PsArgs),
    /// Print a container's resource statistics.
    Events(commands::events::EventsArgs),
    /// Suspend every process of a container.
    Pause(commands::pause::PauseArgs),
    /// Resume a paused container.
    Resume(commands::pause::PauseArgs),
    /// Write a default config.json into a bundle.
    Spec(commands::spec::SpecArgs),
    /// Print what this runtime supports, as JSON.
    Features,
    /// Register rvisor with Docker and print the containerd configuration.
    Install(commands::install::InstallArgs),
    /// Not supported.
    #[command(hide = true)]
    Checkpoint(commands::unsupported::AnyArgs),
    /// Not supported.
    #[command(hide = true)]
    Restore(commands::unsupported::AnyArgs),
    /// Not supported.
    #[command(hide = true)]
    Update(commands::unsupported::AnyArgs),
    /// Internal: the host process standing for a detached exec.
    #[command(hide = true, name = "exec-wait")]
    ExecWait(commands::exec::ExecWaitArgs),
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
        Command::Create(args) => commands::create::run(&cli.global, args),
        Command::Start(args) => commands::start::run(&cli.global, args),
        Command::Run(args) => commands::run::run(&cli.global, args),
        Command::State(args) => commands::state::run(&cli.global, args),
        Command::List(args) => commands::list::run(&cli.global, args),
        Command::Kill(args) => commands::kill::run(&cli.global, args),
        Command::Delete(args) => commands::delete::run(&cli.global, args),
        Command::Exec(args) => commands::exec::run(&cli.global, args),
        Command::Wait(args) => commands::wait::run(&cli.global, args),
        Command::Ps(args) => commands::ps::run(&cli.global, args),
        Command::Events(args) => commands::events::run(&cli.global, args),
        Command::Pause(args) => commands::pause::pause(&cli.global, args),
        Command::Resume(args) => commands::pause::resume(&cli.global, args),
        Command::Spec(args) => commands::spec::run(&cli.global, args),
        Command::Features => commands::features::run(),
        Command::Install(args) => commands::install::run(&cli.global, args),
        Command::Checkpoint(args) => commands::unsupported::run("checkpoint", args),
        Command::Restore(args) => commands::unsupported::run("restore", args),
        Command::Update(args) => commands::unsupported::run("update", args),
        Command::ExecWait(args) => commands::exec::wait_run(&cli.global, args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rvisor: {e:#}");
            logging::log_error(&cli.global, &format!("{e:#}"));
            std::process::exit(1);
        }
    }
}
