//! `rvisor wait`: waits for the container's init (or `--pid`) and prints its status.

use anyhow::bail;
use rvisor_sentry::control::protocol::{Request, Response};

use crate::container::{control, state, util};

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The sandbox pid to wait for (default: init).
    #[arg(long, default_value_t = 1)]
    pid: i32,
    /// The container id.
    id: String,
}

pub fn run(g: &crate::GlobalFlags, args: WaitArgs) -> anyhow::Result<i32> {
    let st = state::load(&g.root, &args.id)?;
    if st.status() == state::Status::Stopped {
        bail!("container not running");
    }
    match control::call(&g.root, &args.id, &Request::Wait { pid: args.pid })? {
        Response::Exited { status } => {
            let code = util::status_code(status);
            println!("{}", serde_json::json!({ "id": args.id, "exitStatus": code }));
            Ok(code)
        }
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    }
}
