//! Log setup: per-process files under `--debug-log`, otherwise nothing (the guest's
//! stderr is the user's, so the sandbox stays quiet there; `RVISOR_LOG` turns stderr logs on).

use std::fs::OpenOptions;

use tracing_subscriber::EnvFilter;

use crate::GlobalFlags;

/// Installs the global subscriber for a process playing `role` ("do", "boot", "gofer").
pub fn init(g: &GlobalFlags, role: &str) {
    let default_level = if g.debug { "debug" } else { "info" };
    let filter = || EnvFilter::try_from_env("RVISOR_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = g.log_format == "json";
    if let Some(dir) = &g.debug_log {
        let _ = std::fs::create_dir_all(dir);
        let path = format!("{}/rvisor.{}.{}.log", dir.trim_end_matches('/'), role, crate::spawn::host_pid().unwrap_or_else(|_| std::process::id()));
        if let Ok(file) = OpenOptions::new().create(true).append(true).open(&path) {
            let b = tracing_subscriber::fmt().with_env_filter(filter()).with_ansi(false).with_writer(std::sync::Mutex::new(file));
            let _ = if json { b.json().try_init() } else { b.try_init() };
            return;
        }
    }
    if let Some(path) = g.log.as_ref().filter(|_| role == "do") {
        if let Ok(file) = OpenOptions::new().create(true).append(true).open(path) {
            let b = tracing_subscriber::fmt().with_env_filter(filter()).with_ansi(false).with_writer(std::sync::Mutex::new(file));
            let _ = if json { b.json().try_init() } else { b.try_init() };
            return;
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("RVISOR_LOG").unwrap_or_else(|_| EnvFilter::new("off")))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Appends a failed command's error to `--log` (JSON with `--log-format json`), where
/// containerd's runc shim looks for the reason a runtime command failed.
pub fn log_error(g: &GlobalFlags, msg: &str) {
    let Some(path) = &g.log else { return };
    let time = crate::container::util::rfc3339(std::time::SystemTime::now());
    let line = if g.log_format == "json" {
        serde_json::json!({ "level": "error", "msg": msg, "time": time }).to_string()
    } else {
        format!("time=\"{time}\" level=error msg={msg:?}")
    };
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        use std::io::Write;
        let _ = writeln!(f, "{line}");
    }
}
