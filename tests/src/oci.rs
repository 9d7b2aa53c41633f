//! OCI bundles for the tests of rvisor's runc-compatible CLI: a busybox root filesystem in
//! a temporary folder, a config.json from `rvisor spec` edited as JSON, and a state root of
//! the test's own (`--root`), so tests do not see each other's containers.

use std::path::{Path, PathBuf};

use crate::{run_rvisor_cli, Outcome, TempDir};

/// Builds a busybox root filesystem in `dir`: the static /bin/busybox, a link per applet,
/// /etc/passwd and /etc/group, and empty mount points.
pub fn busybox_rootfs(dir: &Path) {
    crate::require_busybox();
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "mnt"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("copying /bin/busybox");
    let list = std::process::Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// A bundle (config.json + rootfs/) and a state root, both removed when dropped.
pub struct Bundle {
    pub tmp: TempDir,
}

impl Bundle {
    /// A bundle with `rvisor spec`'s config.json, no terminal, running `args`.
    pub fn new(name: &str, args: &[&str]) -> Bundle {
        let tmp = TempDir::new(name);
        let b = Bundle { tmp };
        std::fs::create_dir_all(b.state_root()).unwrap();
        busybox_rootfs(&b.rootfs());
        b.rv(&["spec", "--bundle", b.dir().to_str().unwrap()]).assert_code(0);
        b.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = serde_json::json!(args);
        });
        b
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("bundle")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir().join("rootfs")
    }

    pub fn state_root(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn config(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("config.json")).unwrap()).unwrap()
    }

    /// Changes config.json.
    pub fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let mut c = self.config();
        f(&mut c);
        std::fs::write(self.dir().join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    /// `rvisor --root=STATE ARGS...`.
    #[track_caller]
    pub fn rv(&self, args: &[&str]) -> Outcome {
        let mut all = vec![format!("--root={}", self.state_root().display())];
        all.extend(args.iter().map(|s| s.to_string()));
        run_rvisor_cli(&all)
    }

    /// The `state` JSON of container `id`.
    #[track_caller]
    pub fn state(&self, id: &str) -> serde_json::Value {
        let o = self.rv(&["state", id]);
        o.assert_code(0);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("state {id}: {e}\n{}", o.dump()))
    }

    /// Names left in the state root.
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.state_root())
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Containers a failed test left behind.
        for id in self.leftovers() {
            let _ = self.rv(&["delete", "--force", &id]);
        }
    }
}

/// What a command that leaves a container running printed: its stdio went to files (the
/// container keeps them open), read back here.
pub struct Detached {
    pub code: Option<i32>,
    pub stderr: String,
    /// Where the container's stdout goes.
    pub out: PathBuf,
}

impl Bundle {
    /// `rvisor --root=STATE ARGS...` with stdout and stderr in files `NAME.out` and
    /// `NAME.err` of the test's folder (a container started by it keeps writing there).
    #[track_caller]
    pub fn rv_detached(&self, name: &str, args: &[&str]) -> Detached {
        let out = self.tmp.path().join(format!("{name}.out"));
        let err = self.tmp.path().join(format!("{name}.err"));
        let mut c = std::process::Command::new(crate::rvisor_bin());
        c.arg(format!("--root={}", self.state_root().display())).args(args);
        c.stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut child = c.spawn().expect("starting rvisor");
        let deadline = std::time::Instant::now() + crate::timeout();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("rvisor {args:?} did not finish within {:?}", crate::timeout());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        Detached { code: status.code(), stderr: std::fs::read_to_string(&err).unwrap_or_default(), out }
    }

    /// Creates container `id` from this bundle, failing the test if that fails.
    #[track_caller]
    pub fn create(&self, id: &str) -> Detached {
        let d = self.rv_detached(id, &["create", "--bundle", self.dir().to_str().unwrap(), id]);
        assert_eq!(d.code, Some(0), "rvisor create {id} failed: {}", d.stderr);
        d
    }
}
