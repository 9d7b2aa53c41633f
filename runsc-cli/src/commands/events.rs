//! `rvisor events`: the container's resource statistics as runc's JSON lines; `--stats`
//! prints one and exits, otherwise one every `--interval` until the container stops (with
//! an `oom` event when the OOM killer ended it).

use std::time::Duration;

use anyhow::{bail, Context};
use rvisor_sentry::control::protocol::{Request, Response};
use serde_json::json;

use crate::container::{control, state};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Print one statistics event and exit.
    #[arg(long)]
    stats: bool,
    /// Time between statistics events (Go duration: 5s, 500ms, 1m).
    #[arg(long, default_value = "5s")]
    interval: String,
    /// The container id.
    id: String,
}

/// Parses a Go-style duration (`5s`, `500ms`, `1m30s`).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        bail!("invalid duration {s:?}");
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().with_context(|| format!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => bail!("invalid duration {s:?}: unit {u:?}"),
        };
        total += Duration::from_secs_f64(n * secs);
        rest = &rest[unit_end..];
    }
    Ok(total)
}

/// A stats event, and whether the sandbox says its OOM killer acted.
fn stats_event(g: &crate::GlobalFlags, st: &state::State) -> anyhow::Result<(serde_json::Value, bool)> {
    let s = match control::call(&g.root, &st.id, &Request::Stats)? {
        Response::Stats(s) => s,
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    };
    let oom = s.oom_killed;
    let host_mem = st.cgroup.as_ref().and_then(|c| c.memory_usage());
    Ok((json!({
        "type": "stats",
        "id": st.id,
        "data": {
            "cpu": { "usage": { "total": s.cpu_ns, "user": 0, "kernel": 0 }, "throttling": {} },
            "memory": { "usage": { "usage": s.memory_bytes, "max": 0, "failcnt": 0, "limit": 0 }, "host_usage": host_mem },
            "pids": { "current": s.pids },
        }
    }), oom))
}

/// Prints runc's `oom` event once, and records the OOM kill in the container's state.
fn report_oom(g: &crate::GlobalFlags, id: &str, reported: &mut bool) {
    if *reported {
        return;
    }
    *reported = true;
    println!("{}", json!({ "type": "oom", "id": id }));
    if let Ok((locked, mut st)) = state::lock(&g.root, id) {
        if !st.oom_killed {
            st.oom_killed = true;
            let _ = locked.save(&st);
        }
    }
}

pub fn run(g: &crate::GlobalFlags, args: EventsArgs) -> anyhow::Result<i32> {
    let interval = parse_duration(&args.interval)?;
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let st = state::load(&g.root, &args.id)?;
    if args.stats {
        if st.status() == state::Status::Stopped {
            bail!("container not running");
        }
        println!("{}", stats_event(g, &st)?.0);
        return Ok(0);
    }
    let mut reported = false;
    loop {
        if st.status() == state::Status::Stopped {
            // The state on disk may have learned of an OOM kill since it was loaded.
            let st = state::load(&g.root, &args.id).unwrap_or(st);
            if st.oom_killed() {
                report_oom(g, &st.id, &mut reported);
            }
            return Ok(0);
        }
        match stats_event(g, &st) {
            Ok((ev, oom)) => {
                println!("{ev}");
                if oom {
                    report_oom(g, &st.id, &mut reported);
                }
            }
            Err(e) if st.status() == state::Status::Stopped => tracing::debug!("events: {e:#}"),
            Err(e) => return Err(e),
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
