//! OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each runs on the host with
//! the container's state JSON on its stdin, in order, with its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::oci::config::Hook;

/// Runs `hooks` of stage `stage` in order; the first failure stops them and is returned.
pub fn run(stage: &str, hooks: &[Hook], state_json: &str) -> anyhow::Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json).with_context(|| format!("{stage} hook #{i} ({})", h.path))?;
    }
    Ok(())
}

/// Runs `hooks` and only logs failures (poststart, poststop: the spec says to warn).
pub fn run_warn(stage: &str, hooks: &[Hook], state_json: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state_json) {
            tracing::warn!("{stage} hook #{i} ({}): {e:#}", h.path);
            eprintln!("rvisor: warning: {stage} hook #{i} ({}): {e:#}", h.path);
        }
    }
}

fn run_one(h: &Hook, state_json: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new(&h.path);
    if let Some((argv0, rest)) = h.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in &h.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().context("cannot run it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h.timeout.filter(|&t| t > 0).map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("failed: {status}");
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s", h.timeout.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        Hook { path: "/bin/sh".into(), args: vec!["sh".into(), "-c".into(), script.into()], env: vec![], timeout }
    }

    #[test]
    fn hooks_get_the_state_on_stdin_and_fail_on_nonzero() {
        run("prestart", &[hook("grep -q '\"id\":\"x\"'", None)], r#"{"id":"x"}"#).unwrap();
        assert!(run("prestart", &[hook("exit 3", None)], "{}").is_err());
    }

    #[test]
    fn hook_timeout_kills_it() {
        let e = run("prestart", &[hook("sleep 30", Some(1))], "{}").unwrap_err();
        assert!(format!("{e:#}").contains("timed out"));
    }
}
