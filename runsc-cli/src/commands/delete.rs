//! `rvisor delete`: removes a container (with --force also a running one).

use anyhow::bail;

use crate::container::lifecycle;
use crate::container::state::{self, Status};

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Kill the container if it still runs.
    #[arg(long, short = 'f')]
    force: bool,
    /// The container id.
    id: String,
}

pub fn run(g: &crate::GlobalFlags, args: DeleteArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "delete");
    crate::container::util::check_id(&args.id)?;
    let (locked, st) = match state::lock(&g.root, &args.id) {
        Ok(x) => x,
        Err(_) if args.force => {
            // A half-made state directory (no state.json) goes too.
            let _ = std::fs::remove_dir_all(state::dir(&g.root, &args.id));
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    match st.status() {
        Status::Stopped | Status::Created => {}
        s if args.force => tracing::debug!(status = s.as_str(), "delete --force of a live container"),
        s => bail!("cannot delete container {} that is not stopped: {}", args.id, s.as_str()),
    }
    lifecycle::destroy(g, locked, &st)?;
    Ok(0)
}
