//! `rvisor start`: runs the init of a created container.

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The container id.
    pub id: String,
}

pub fn run(g: &crate::GlobalFlags, args: StartArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "start");
    crate::container::lifecycle::start(g, &args.id)?;
    Ok(0)
}
