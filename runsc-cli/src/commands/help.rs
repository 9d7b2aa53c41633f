//! `rvisor help [TOPIC]`.

use anyhow::bail;

#[derive(Debug, clap::Args)]
pub struct HelpArgs {
    /// `syscalls`: every x86_64 syscall with its support level in rvisor; `seccomp`: the
    /// host syscalls the sandbox process may make, and why.
    topic: Option<String>,
    /// With `seccomp`: print the table as Markdown (docs/seccomp-sentry.md).
    #[arg(long)]
    markdown: bool,
}

pub fn run(args: HelpArgs) -> anyhow::Result<i32> {
    match args.topic.as_deref() {
        Some("syscalls") => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for (nr, name, level) in rvisor_sentry::syscalls::support_table() {
                writeln!(out, "{nr:>3} {name:<24} {}", level.as_str())?;
            }
            Ok(0)
        }
        Some("seccomp") => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            if args.markdown {
                write!(out, "{}", crate::confine::seccomp::render_markdown())?;
            } else {
                write!(out, "{}", crate::confine::seccomp::render_text())?;
                writeln!(out, "Capabilities kept: {} (in its own user namespace); with --network=host: {}.", crate::confine::caps::kept_list(false), crate::confine::caps::kept_list(true))?;
            }
            Ok(0)
        }
        None => {
            use clap::CommandFactory;
            crate::Cli::command().print_help()?;
            Ok(0)
        }
        Some(other) => bail!("help: unknown topic {other:?}; topics: syscalls, seccomp"),
    }
}
