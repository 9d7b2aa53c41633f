//! `rvisor help [TOPIC]`.

use anyhow::bail;

#[derive(Debug, clap::Args)]
pub struct HelpArgs {
    /// `syscalls`: every x86_64 syscall with its support level in rvisor.
    topic: Option<String>,
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
        None => {
            use clap::CommandFactory;
            crate::Cli::command().print_help()?;
            Ok(0)
        }
        Some(other) => bail!("help: unknown topic {other:?}; topics: syscalls"),
    }
}
