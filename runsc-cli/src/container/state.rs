//! A container's state on disk: `<root>/<id>/state.json` (written atomically: a temporary
//! file renamed over it) beside the sandbox's `control.sock`, and a lock (flock on the
//! state directory) that serialises commands on one container.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::util::{alive, rfc3339, user_name};
use crate::oci::config::{Hooks, Process};

/// The OCI runtime-spec version rvisor implements.
pub const OCI_VERSION: &str = "1.0.2";

/// What rvisor remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the sandbox process (the container's init as the host sees it).
    pub pid: i32,
    /// Its start time in clock ticks, to tell a recycled pid from it.
    pub pid_start: u64,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Whether `start` ran.
    #[serde(default)]
    pub started: bool,
    #[serde(default)]
    pub paused: bool,
    /// Host pids (and start times) of the gofers.
    #[serde(default)]
    pub gofers: Vec<(i32, u64)>,
    /// The cgroup directories holding the sandbox, and the OOM-kill count at create.
    #[serde(default)]
    pub cgroup: Option<super::cgroup::Cgroup>,
    #[serde(default)]
    pub hooks: Hooks,
    /// config.json's process: the defaults of `exec`.
    #[serde(default)]
    pub process: Process,
    /// The network namespace path of config.json, if any (the sandbox runs in it).
    #[serde(default)]
    pub netns: Option<String>,
    #[serde(default)]
    pub network: String,
    /// Set once the CLI learned that the sandbox's own OOM killer acted (the guest went over
    /// `linux.resources.memory.limit`); `run`, `state` and `events` ask the sandbox.
    #[serde(default)]
    pub oom_killed: bool,
}

/// runc's container status names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl State {
    /// The status now: `stopped` once the sandbox process is gone (or a zombie).
    pub fn status(&self) -> Status {
        if !alive(self.pid, self.pid_start) {
            Status::Stopped
        } else if self.paused {
            Status::Paused
        } else if self.started {
            Status::Running
        } else {
            Status::Created
        }
    }

    /// Whether an OOM killer struck: the sandbox's own (recorded in `oom_killed`), or the
    /// host's of the memory cgroup holding the sandbox.
    pub fn oom_killed(&self) -> bool {
        self.oom_killed || (self.status() == Status::Stopped && self.cgroup.as_ref().is_some_and(|c| c.oom_killed()))
    }

    /// runc's `state` JSON (also the state hooks get on stdin).
    pub fn to_oci_json(&self, owner: &str) -> serde_json::Value {
        let status = self.status();
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        if self.oom_killed() {
            v["oomKilled"] = serde_json::Value::Bool(true);
        }
        v
    }
}

/// The state directory of container `id` under `root`.
pub fn dir(root: &str, id: &str) -> PathBuf {
    Path::new(root).join(id)
}

/// Path of the control socket of container `id`.
pub fn control_socket(root: &str, id: &str) -> PathBuf {
    dir(root, id).join("control.sock")
}

/// An exclusive lock on one container's state directory; released on drop.
pub struct Locked {
    _dir: File,
    pub path: PathBuf,
}

fn flock(f: &File) -> std::io::Result<()> {
    loop {
        // SAFETY: flock takes a descriptor we own and an integer operation.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Creates the state directory of a new container and locks it; "container with id
/// exists" when it is there already.
pub fn create_locked(root: &str, id: &str) -> anyhow::Result<Locked> {
    std::fs::DirBuilder::new().recursive(true).mode(0o711).create(root).with_context(|| format!("state root {root}"))?;
    let path = dir(root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!("container with id exists: {id}"),
        Err(e) => return Err(e).with_context(|| format!("state directory {}", path.display())),
    }
    let f = File::open(&path).with_context(|| format!("state directory {}", path.display()))?;
    flock(&f).context("locking the container state")?;
    Ok(Locked { _dir: f, path })
}

/// Locks an existing container's state directory and reads its state.
pub fn lock(root: &str, id: &str) -> anyhow::Result<(Locked, State)> {
    super::util::check_id(id)?;
    let path = dir(root, id);
    let f = File::open(&path).map_err(|_| anyhow::anyhow!("container does not exist"))?;
    flock(&f).context("locking the container state")?;
    let state = read(&path)?;
    Ok((Locked { _dir: f, path }, state))
}

/// Reads a container's state without locking (for `list`, or after a lock was dropped).
pub fn load(root: &str, id: &str) -> anyhow::Result<State> {
    super::util::check_id(id)?;
    read(&dir(root, id))
}

fn read(path: &Path) -> anyhow::Result<State> {
    let text = match std::fs::read_to_string(path.join("state.json")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("container does not exist"),
        Err(e) => return Err(e).with_context(|| format!("reading {}/state.json", path.display())),
    };
    serde_json::from_str(&text).with_context(|| format!("{}/state.json is corrupt", path.display()))
}

impl Locked {
    /// Writes `state` atomically.
    pub fn save(&self, state: &State) -> anyhow::Result<()> {
        write_atomic(&self.path.join("state.json"), &serde_json::to_vec_pretty(state)?)
    }
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("writing {}", path.display()))
}

/// The ids of every container under `root`, sorted.
pub fn list_ids(root: &str) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("state.json").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The owner of a container: the user owning its state directory.
pub fn owner(root: &str, id: &str) -> String {
    std::fs::metadata(dir(root, id)).map(|m| user_name(m.uid())).unwrap_or_default()
}

/// The creation time stamp for a new container.
pub fn now() -> String {
    rfc3339(std::time::SystemTime::now())
}
