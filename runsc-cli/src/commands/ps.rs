//! `rvisor ps`: the container's processes; `--format json` is the list of host pids, as
//! runc prints it.

use anyhow::bail;
use rvisor_sentry::control::protocol::{Request, Response};

use crate::container::{control, state};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// table or json.
    #[arg(long, short = 'f', default_value = "table")]
    format: String,
    /// The container id.
    id: String,
    /// ps(1) options (ignored: the table has fixed columns).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn run(g: &crate::GlobalFlags, args: PsArgs) -> anyhow::Result<i32> {
    let st = state::load(&g.root, &args.id)?;
    if st.status() == state::Status::Stopped {
        bail!("container not running");
    }
    let procs = match control::call(&g.root, &args.id, &Request::Ps)? {
        Response::Processes(p) => p,
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    };
    match args.format.as_str() {
        "json" => {
            // Processes without a host task of their own are stood for by the sandbox.
            let mut pids: Vec<i32> = procs.iter().map(|p| p.host_pid.unwrap_or(st.pid)).collect();
            pids.dedup();
            println!("{}", serde_json::to_string(&pids)?);
        }
        "table" => {
            let mut rows = vec![["UID", "PID", "PPID", "STAT", "CMD"].map(String::from).to_vec()];
            for p in &procs {
                rows.push(vec![p.uid.to_string(), p.pid.to_string(), p.ppid.to_string(), p.state.clone(), p.cmd.clone()]);
            }
            print!("{}", super::list::table(&rows));
        }
        other => bail!("invalid format option: {other}"),
    }
    Ok(0)
}
