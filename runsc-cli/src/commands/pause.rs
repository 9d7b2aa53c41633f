//! `rvisor pause` / `rvisor resume`: stops and continues every task of the sandbox.

use anyhow::bail;
use rvisor_sentry::control::protocol::Request;

use crate::container::state::{self, Status};
use crate::container::control;

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// The container id.
    id: String,
}

pub fn pause(g: &crate::GlobalFlags, args: PauseArgs) -> anyhow::Result<i32> {
    let (locked, mut st) = state::lock(&g.root, &args.id)?;
    match st.status() {
        Status::Running => {}
        Status::Paused => bail!("container already paused"),
        _ => bail!("container not running"),
    }
    control::call(&g.root, &args.id, &Request::Pause)?;
    st.paused = true;
    locked.save(&st)?;
    Ok(0)
}

pub fn resume(g: &crate::GlobalFlags, args: PauseArgs) -> anyhow::Result<i32> {
    let (locked, mut st) = state::lock(&g.root, &args.id)?;
    if st.status() != Status::Paused {
        bail!("container not paused");
    }
    control::call(&g.root, &args.id, &Request::Resume)?;
    st.paused = false;
    locked.save(&st)?;
    Ok(0)
}
