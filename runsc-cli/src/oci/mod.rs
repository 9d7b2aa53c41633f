//! OCI bundles: config.json read ([`config`]) and turned into what the sandbox runs
//! ([`Plan`]: the BootSpec, the root and bind-mount sources the gofers serve, the cgroup,
//! hooks), and runc's default spec ([`default_spec`]).

pub mod config;
pub mod default_spec;

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use config::{Config, Hooks, Process, Resources};

/// A bind mount: the host source its gofer serves.
#[derive(Debug, Clone)]
pub struct BindSource {
    pub source: PathBuf,
    pub read_only: bool,
}

/// Everything `create` needs from a bundle.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: Config,
    /// The BootSpec, as JSON (see rvisor_sentry::boot::BootSpec).
    pub spec: serde_json::Value,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub root_read_only: bool,
    /// The i-th serves the mount with `Bind { gofer: i }`.
    pub binds: Vec<BindSource>,
    pub netns: Option<String>,
    /// The network namespace the sandbox takes over (or joins, in host mode).
    pub netns_request: crate::net::NetnsRequest,
    pub cgroups_path: Option<String>,
    pub resources: Option<Resources>,
    pub hooks: Hooks,
    pub terminal: bool,
    pub process: Process,
}

/// Reads `<bundle>/config.json`.
pub fn load_config(bundle: &Path) -> anyhow::Result<Config> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("bundle {}: config.json", bundle.display()))?;
    config::parse(&text).with_context(|| format!("bundle {}: config.json", bundle.display()))
}

/// Normalises a path inside the container: `..` never climbs above `/`.
pub fn clean_container_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in Path::new(p).components() {
        match comp {
            Component::Normal(c) => parts.push(c.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

fn mount_kind(m: &config::Mount) -> Option<&str> {
    let bind = m.options.iter().any(|o| o == "bind" || o == "rbind");
    match m.kind.as_deref() {
        _ if bind => Some("bind"),
        Some("none") | None => None,
        Some(k) => Some(k),
    }
}

/// Builds the plan for container `id` from a bundle.
pub fn plan(g: &crate::GlobalFlags, bundle: &Path, id: &str) -> anyhow::Result<Plan> {
    let bundle = std::path::absolute(bundle).with_context(|| format!("bundle {}", bundle.display()))?;
    if !bundle.is_dir() {
        bail!("bundle {}: not a directory", bundle.display());
    }
    let cfg = load_config(&bundle)?;
    let process = cfg.process.clone().context("config.json: missing \"process\"")?;
    if process.args.is_empty() {
        bail!("config.json: process.args must not be empty");
    }
    if !process.cwd.starts_with('/') {
        bail!("config.json: process.cwd {:?} must be an absolute path", process.cwd);
    }
    let root = cfg.root.clone().context("config.json: missing \"root\"")?;
    if root.path.is_empty() {
        bail!("config.json: root.path must not be empty");
    }
    let rootfs = if Path::new(&root.path).is_absolute() { PathBuf::from(&root.path) } else { bundle.join(&root.path) };

    let mut rlimits = Vec::new();
    for r in &process.rlimits {
        let res = config::rlimit_resource(&r.kind).with_context(|| format!("config.json: unknown rlimit {:?}", r.kind))?;
        if r.soft > r.hard {
            bail!("config.json: rlimit {}: soft limit {} above the hard limit {}", r.kind, r.soft, r.hard);
        }
        rlimits.push((res, r.soft, r.hard));
    }

    let linux = cfg.linux.clone().unwrap_or_default();
    let mut netns = None;
    let mut netns_request = crate::net::NetnsRequest::Shared;
    for ns in &linux.namespaces {
        match (ns.kind.as_str(), ns.path.as_deref().filter(|p| !p.is_empty())) {
            ("pid", Some(p)) => bail!("config.json: joining another container's pid namespace is not supported (linux.namespaces: pid at {p})"),
            ("network", Some(p)) => {
                netns = Some(p.to_string());
                netns_request = crate::net::NetnsRequest::Path(p.to_string());
            }
            ("network", None) => netns_request = crate::net::NetnsRequest::Fresh,
            (_, Some(p)) => tracing::debug!(kind = %ns.kind, path = p, "namespace path ignored: the sandbox has its own"),
            _ => {}
        }
        if !matches!(ns.kind.as_str(), "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup" | "time") {
            bail!("config.json: unknown namespace type {:?}", ns.kind);
        }
    }

    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for m in &cfg.mounts {
        let destination = clean_container_path(&m.destination);
        let kind = match mount_kind(m) {
            Some("bind") => {
                let src = m.source.as_deref().filter(|s| !s.is_empty()).with_context(|| format!("config.json: bind mount {destination} has no source"))?;
                let src = if Path::new(src).is_absolute() { PathBuf::from(src) } else { bundle.join(src) };
                if !src.exists() {
                    bail!("config.json: mount {destination}: source {} does not exist", src.display());
                }
                binds.push(BindSource { source: src, read_only: m.options.iter().any(|o| o == "ro") });
                json!({ "Bind": { "gofer": binds.len() - 1 } })
            }
            Some("tmpfs") => json!("Tmpfs"),
            Some("proc") => json!("Proc"),
            Some("sysfs") => json!("Sysfs"),
            Some("devpts") => json!("Devpts"),
            Some("mqueue") => json!("Mqueue"),
            Some("cgroup") | Some("cgroup2") => json!("Cgroup"),
            Some(other) => bail!("config.json: mount {destination}: type {other:?} is not supported"),
            None => bail!("config.json: mount {destination}: no type"),
        };
        mounts.push(json!({ "destination": destination, "kind": kind, "options": m.options }));
    }

    let resources = linux.resources.clone();
    let pids_limit = resources.as_ref().and_then(|r| r.pids.as_ref()).map(|p| p.limit).filter(|&l| l > 0);
    let memory_limit = resources.as_ref().and_then(|r| r.memory.as_ref()).and_then(|m| m.limit).filter(|&l| l > 0);
    let overlay = g.root_overlay()? && !root.readonly;
    let hostname = cfg.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| {
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
    });
    let spec = json!({
        "args": process.args,
        "env": process.env,
        "cwd": process.cwd,
        "uid": process.user.uid,
        "gid": process.user.gid,
        "additional_gids": process.user.additional_gids,
        "hostname": hostname,
        "kernel_release": g.kernel_release,
        "root_read_only": root.readonly,
        "tty": process.terminal,
        "overlay": overlay,
        "rlimits": rlimits,
        "wait_for_start": true,
        "create_cwd": true,
        "umask": process.user.umask.unwrap_or(0o022),
        "no_new_privs": process.no_new_privileges,
        // The spec's absent capabilities are the empty set.
        "capabilities": process.capabilities.clone().unwrap_or_default(),
        "mounts": mounts,
        "masked_paths": linux.masked_paths,
        "readonly_paths": linux.readonly_paths,
        "sysctl": linux.sysctl.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>(),
        "pids_limit": pids_limit,
        "memory_limit": memory_limit,
        "oom_score_adj": process.oom_score_adj,
        // What the namespace holds is filled in by `create` (crate::net::prepare).
        "network": rvisor_sentry::net::NetworkSpec::loopback_only(g.network),
    });
    // The sandbox's own parser must accept it: a mismatch is caught here, not at boot.
    serde_json::from_value::<rvisor_sentry::boot::BootSpec>(spec.clone()).context("internal: the boot spec does not parse")?;
    let _ = id;
    Ok(Plan {
        spec,
        bundle,
        rootfs,
        root_read_only: root.readonly,
        binds,
        netns,
        netns_request,
        cgroups_path: linux.cgroups_path.clone(),
        resources,
        hooks: cfg.hooks.clone().unwrap_or_default(),
        terminal: process.terminal,
        process,
        config: cfg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotdot_stays_inside_the_root() {
        assert_eq!(clean_container_path("/../../etc/x"), "/etc/x");
        assert_eq!(clean_container_path("a/../b/./c"), "/b/c");
        assert_eq!(clean_container_path("/"), "/");
    }
}
