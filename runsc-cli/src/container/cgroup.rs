//! The host cgroup holding a container's sandbox and gofers: one directory per v1
//! controller (memory, pids, cpu, cpuacct, freezer) or one in the v2 unified tree, with
//! linux.resources applied. The sandbox's host tasks (sentry threads, stub processes,
//! gofers) all count, so the host pids limit is a generous multiple of the guest's, which
//! the sentry enforces itself (BootSpec.pids_limit).

use std::ffi::CString;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::oci::config::Resources;

const MOUNT: &str = "/sys/fs/cgroup";
const V1_CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "cpuacct", "freezer"];
/// Room for the sentry's own memory above the guest's limit (its code, stacks, task and
/// file structures — the fd cap bounds those the guest can make).
pub const SENTRY_MEMORY_HEADROOM: u64 = 64 << 20;

/// The host cgroup's memory limit for a guest limit of `guest`: the sentry's own memory,
/// plus a quarter of the limit for what the guest may hold in the sentry's heap outside
/// guest memory — pipe buffers and socket buffers (unix, netlink, the network stack), each capped sandbox-wide at an
/// eighth of the limit (pipes may take a page per pipe beyond theirs, which the fixed
/// headroom covers) — so that the sandbox's own caps and OOM killer act before the host's.
pub fn host_memory_limit(guest: u64) -> u64 {
    guest.saturating_add(SENTRY_MEMORY_HEADROOM).saturating_add(guest / 4)
}

/// A container's cgroup directories.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cgroup {
    pub v2: bool,
    /// (controller, directory); for v2 one entry named "unified".
    pub dirs: Vec<(String, PathBuf)>,
    /// The memory cgroup's OOM-kill count when it was made.
    #[serde(default)]
    pub oom_kills_at_start: u64,
}

fn unified_root() -> Option<PathBuf> {
    if Path::new(MOUNT).join("cgroup.controllers").exists() {
        Some(PathBuf::from(MOUNT))
    } else {
        None
    }
}

/// This process's cgroup in hierarchy `key` ("memory", or "" for v2), from /proc/self/cgroup.
fn own_cgroup(key: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        if ctrls.split(',').any(|c| c == key) || (key.is_empty() && ctrls.is_empty()) {
            return path.to_string();
        }
    }
    "/".into()
}

/// Where the container's cgroup goes inside hierarchy `key`: an absolute cgroupsPath from
/// the hierarchy's root, a relative one (or the default `rvisor/<id>`) under our own cgroup;
/// systemd's `slice:prefix:name` becomes `/slice/prefix-name.scope`.
fn relative_path(key: &str, cgroups_path: Option<&str>, id: &str) -> PathBuf {
    let p = match cgroups_path {
        Some(p) if p.contains(':') && !p.starts_with('/') => {
            let parts: Vec<&str> = p.split(':').collect();
            let slice = if parts[0].is_empty() { "system.slice" } else { parts[0] };
            format!("/{slice}/{}-{}.scope", parts.get(1).unwrap_or(&"rvisor"), parts.get(2).unwrap_or(&id))
        }
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) if !p.is_empty() => format!("{}/{p}", own_cgroup(key).trim_end_matches('/')),
        _ => format!("{}/rvisor/{id}", own_cgroup(key).trim_end_matches('/')),
    };
    // No `..` may climb out of the hierarchy.
    p.split('/').filter(|c| !c.is_empty() && *c != "." && *c != "..").collect()
}

fn write(dir: &Path, file: &str, value: &str) -> anyhow::Result<()> {
    std::fs::write(dir.join(file), value).with_context(|| format!("cgroup: writing {value:?} to {}", dir.join(file).display()))
}

/// The v2 cpu.weight for v1 cpu shares (the conversion runc and crun use).
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// The host pids limit for a guest limit of `guest`. A guest task costs up to four host
/// tasks (its sentry thread and stub thread, and for a process the stub's first thread and
/// its master thread); the sentry's own threads and the gofers need a few more; and an
/// exited guest process's host tasks go away asynchronously, so under a fork bomb the host
/// count runs ahead of the guest's (the DoS test saw clone EAGAIN in stubs with 4x + 128).
pub fn host_pids_limit(guest: u64) -> u64 {
    guest.saturating_mul(6).saturating_add(256)
}

impl Cgroup {
    /// Creates the cgroup and applies `resources`.
    pub fn create(cgroups_path: Option<&str>, id: &str, resources: Option<&Resources>) -> anyhow::Result<Cgroup> {
        let mut cg = Cgroup::default();
        if let Some(root) = unified_root() {
            cg.v2 = true;
            let rel = relative_path("", cgroups_path, id);
            // Enable the controllers we use on every ancestor (best effort: some may be
            // unavailable, which only matters if a limit needs them).
            let mut cur = root.clone();
            for comp in rel.components() {
                let _ = std::fs::write(cur.join("cgroup.subtree_control"), "+memory +pids +cpu");
                cur.push(comp);
                let _ = std::fs::create_dir(&cur);
            }
            if !cur.is_dir() {
                anyhow::bail!("cgroup: cannot create {}", cur.display());
            }
            cg.dirs.push(("unified".into(), cur));
        } else {
            let mut seen = Vec::new();
            for ctrl in V1_CONTROLLERS {
                let base = Path::new(MOUNT).join(ctrl);
                let Ok(canon) = base.canonicalize() else { continue };
                if !base.join("cgroup.procs").exists() || seen.contains(&canon) {
                    continue;
                }
                seen.push(canon);
                let dir = base.join(relative_path(ctrl, cgroups_path, id));
                std::fs::create_dir_all(&dir).with_context(|| format!("cgroup: creating {}", dir.display()))?;
                cg.dirs.push((ctrl.to_string(), dir));
            }
        }
        cg.oom_kills_at_start = cg.oom_kills().unwrap_or(0);
        if let Some(r) = resources {
            if let Err(e) = cg.apply(r) {
                cg.remove();
                return Err(e);
            }
        }
        Ok(cg)
    }

    fn dir(&self, ctrl: &str) -> Option<&Path> {
        self.dirs.iter().find(|(c, _)| c == ctrl || c == "unified").map(|(_, d)| d.as_path())
    }

    fn apply(&self, r: &Resources) -> anyhow::Result<()> {
        if let Some(limit) = r.memory.as_ref().and_then(|m| m.limit).filter(|&l| l > 0) {
            let host = host_memory_limit(limit as u64).to_string();
            if let Some(d) = self.dir("memory") {
                write(d, if self.v2 { "memory.max" } else { "memory.limit_in_bytes" }, &host)?;
                if !self.v2 {
                    // No swap beyond the limit either, so an overrun is an OOM kill.
                    let _ = write(d, "memory.memsw.limit_in_bytes", &host);
                } else {
                    let _ = write(d, "memory.swap.max", "0");
                }
            }
        }
        if let Some(limit) = r.pids.as_ref().map(|p| p.limit).filter(|&l| l > 0) {
            if let Some(d) = self.dir("pids") {
                write(d, "pids.max", &host_pids_limit(limit as u64).to_string())?;
            }
        }
        if let (Some(cpu), Some(d)) = (&r.cpu, self.dir("cpu")) {
            if self.v2 {
                if let Some(s) = cpu.shares.filter(|&s| s > 0) {
                    write(d, "cpu.weight", &shares_to_weight(s).to_string())?;
                }
                if cpu.quota.is_some() || cpu.period.is_some() {
                    let period = cpu.period.filter(|&p| p > 0).unwrap_or(100_000);
                    let quota = match cpu.quota { Some(q) if q > 0 => q.to_string(), _ => "max".into() };
                    write(d, "cpu.max", &format!("{quota} {period}"))?;
                }
            } else {
                if let Some(s) = cpu.shares.filter(|&s| s > 0) {
                    write(d, "cpu.shares", &s.to_string())?;
                }
                if let Some(p) = cpu.period.filter(|&p| p > 0) {
                    write(d, "cpu.cfs_period_us", &p.to_string())?;
                }
                if let Some(q) = cpu.quota.filter(|&q| q != 0) {
                    write(d, "cpu.cfs_quota_us", &q.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a new process writes "0" to, to join the cgroup.
    pub fn procs_files(&self) -> Vec<CString> {
        self.dirs
            .iter()
            .filter_map(|(_, d)| CString::new(d.join("cgroup.procs").into_os_string().into_encoded_bytes()).ok())
            .collect()
    }

    /// The memory cgroup's count of OOM kills.
    pub fn oom_kills(&self) -> Option<u64> {
        let d = self.dir("memory")?;
        let text = std::fs::read_to_string(d.join(if self.v2 { "memory.events" } else { "memory.oom_control" })).ok()?;
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
    }

    /// Whether the OOM killer struck since the cgroup was made.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills().is_some_and(|n| n > self.oom_kills_at_start)
    }

    /// Memory in use, from the memory controller.
    pub fn memory_usage(&self) -> Option<u64> {
        let d = self.dir("memory")?;
        let f = if self.v2 { "memory.current" } else { "memory.usage_in_bytes" };
        std::fs::read_to_string(d.join(f)).ok()?.trim().parse().ok()
    }

    /// Pids still in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let mut v = Vec::new();
        for (_, d) in &self.dirs {
            if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
                v.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Kills whatever is left in the cgroup and removes its directories.
    pub fn remove(&self) {
        for _ in 0..200 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill takes integers; these pids are in the container's cgroup.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for (_, d) in &self.dirs {
            for _ in 0..100 {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
            // The default parent `rvisor/` goes too once no container uses it.
            if let Some(parent) = d.parent().filter(|p| p.file_name().is_some_and(|n| n == "rvisor")) {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_hierarchy() {
        assert_eq!(relative_path("memory", Some("/default/c1"), "c1"), PathBuf::from("default/c1"));
        assert_eq!(relative_path("memory", Some("/../../etc"), "c1"), PathBuf::from("etc"));
        assert_eq!(relative_path("memory", Some("system.slice:docker:abc"), "abc"), PathBuf::from("system.slice/docker-abc.scope"));
    }

    #[test]
    fn host_memory_limit_leaves_room_for_the_sentry_heap() {
        assert_eq!(host_memory_limit(256 << 20), (256 + 64 + 64) << 20);
        assert_eq!(host_memory_limit(u64::MAX), u64::MAX);
    }

    #[test]
    fn weights_from_shares() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
    }
}
