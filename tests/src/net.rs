//! Networking test machinery: a network namespace with a veth pair on link-local addresses
//! (what a CNI plugin gives a pod), an OCI bundle whose config.json names that namespace,
//! and background processes (servers, sandboxes) that are killed when the test ends, also
//! when it fails.
//!
//! [`NetNs::new`] makes `ip netns add rvt-TAG-PID`, a veth pair whose host end stays in the
//! root namespace with 169.254.N.1/30 and whose peer, `eth0` in the namespace, has
//! 169.254.N.2/30 (N is free on the host, 1..=254, chosen under a lock file so that test
//! processes running at the same time do not pick the same N). [`NetBundle`] is a bundle
//! with a root folder of symlinks and read-only binds of the host's /usr and /etc (so Debian's
//! nginx, redis and python run in it), the test's work folder bound read-write at the same
//! path, and a config.json that runs under `rvisor run` and under runc alike.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{rvisor_bin, HostProcess, Outcome, TempDir, SYSTEM_PATH};

/// Runs `ip ARGS...`; fails the test with ip's message if it fails.
#[track_caller]
pub fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (Debian package iproute2): {e}"));
    assert!(
        o.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr).trim()
    );
}

fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A network namespace with a veth pair; deleted (with the host end) when dropped.
pub struct NetNs {
    /// `rvt-TAG-PID`; the namespace file is `/var/run/netns/NAME`.
    pub name: String,
    /// The host end of the veth pair, in the root namespace.
    pub host_if: String,
    /// The N of 169.254.N.0/30.
    pub n: u8,
}

/// Serialises the choice of N and the creation of the addresses between test processes.
struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    fn take() -> HostLock {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/rvisor-tests-net.lock")
            .expect("opening /run/rvisor-tests-net.lock (the network tests run as root)");
        // SAFETY: flock on a descriptor this File owns; released when the File is closed.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock /run/rvisor-tests-net.lock");
        HostLock { _file: f }
    }
}

impl NetNs {
    /// Makes the namespace, the veth pair and the addresses; links up, lo up in the
    /// namespace, a default route via the host end.
    #[track_caller]
    pub fn new(tag: &str) -> NetNs {
        require_root();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("rvt-{tag}-{pid}");
        assert!(
            !Path::new("/var/run/netns").join(&name).exists(),
            "network namespace {name} exists already (two tests with tag {tag:?}?)"
        );
        let _lock = HostLock::take();
        let used = ip_output(&["-4", "-o", "addr", "show"]) + &ip_output(&["-4", "route", "show"]);
        let start = (pid.wrapping_mul(31).wrapping_add(k.wrapping_mul(7))) % 254;
        let n = (0..254u32)
            .map(|i| ((start + i) % 254 + 1) as u8)
            .find(|n| !used.contains(&format!("169.254.{n}.")))
            .expect("no free 169.254.N.0/30 on this host");
        let host_if = format!("rvh{n}-{}", pid % 10_000_000);
        ip(&["netns", "add", &name]);
        let ns = NetNs { name, host_if, n };
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns.name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.host_ip()),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{}/30", ns.ns_ip()),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &ns.name,
            "route",
            "add",
            "default",
            "via",
            &ns.host_ip(),
        ]);
        ns
    }

    /// 169.254.N.1: the host end.
    pub fn host_ip(&self) -> String {
        format!("169.254.{}.1", self.n)
    }

    /// 169.254.N.2: eth0 in the namespace (the pod's address).
    pub fn ns_ip(&self) -> String {
        format!("169.254.{}.2", self.n)
    }

    /// `/var/run/netns/NAME`, for config.json.
    pub fn path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }

    /// `ip netns exec NAME PROGRAM`: a command that runs natively in the namespace.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c.env("PATH", SYSTEM_PATH);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace destroys eth0 and with it the host end; the explicit delete
        // covers a peer that was moved elsewhere.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .output();
    }
}

/// Fails the test unless it runs as root (namespaces, veth pairs, runc).
#[track_caller]
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the network tests need root (ip netns, veth)"
    );
}

/// A process started in the background; its process group is killed when dropped.
pub struct Background {
    pub what: String,
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Run before the kill (e.g. `rvisor delete --force`, for a sandbox in its own session).
    cleanup: Option<Box<dyn FnOnce() + Send>>,
    /// More files shown by [`Background::dump`] (a server's own log).
    pub logs: Vec<PathBuf>,
}

impl Background {
    /// Starts `c` in its own process group with stdout/stderr in `dir/NAME.out|.err`.
    #[track_caller]
    pub fn spawn(mut c: Command, dir: &Path, name: &str) -> Background {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let what = format!("{:?}", c);
        c.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .process_group(0);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Background {
            what,
            child,
            stdout,
            stderr,
            cleanup: None,
            logs: Vec::new(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Output so far, for failure messages.
    pub fn dump(&self) -> String {
        let mut s = format!(
            "--- {} stdout:\n{}\n--- stderr:\n{}\n---",
            self.what,
            crate::truncate(
                &std::fs::read_to_string(&self.stdout).unwrap_or_default(),
                6000
            ),
            crate::truncate(
                &std::fs::read_to_string(&self.stderr).unwrap_or_default(),
                6000
            )
        );
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            s += &format!(
                "\n--- {} (last lines):\n{}\n---",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        s
    }

    /// Waits (bounded by the harness timeout) for it to exit by itself.
    #[track_caller]
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + crate::timeout();
        loop {
            if let Some(s) = self.exited() {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not exit within {:?}\n{}",
                    self.what,
                    crate::timeout(),
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `ready()` holds (polled, bounded by the harness timeout); fails the test,
    /// with the output so far, if the process exits first or the time runs out.
    #[track_caller]
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + crate::timeout();
        loop {
            if ready() {
                return;
            }
            if let Some(s) = self.exited() {
                panic!("{} exited ({s}) before {what}\n{}", self.what, self.dump());
            }
            if Instant::now() > deadline {
                panic!("{what}: not within {:?}\n{}", crate::timeout(), self.dump());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a TCP connect to `addr` succeeds (the server listens).
    #[track_caller]
    pub fn wait_listening(&mut self, addr: &str) {
        let sa: std::net::SocketAddr = addr.parse().expect("socket address");
        self.wait_until(&format!("listening on {addr}"), || {
            std::net::TcpStream::connect_timeout(&sa, Duration::from_millis(500)).is_ok()
        });
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(f) = self.cleanup.take() {
            f();
        }
        if self.child.try_wait().ok().flatten().is_none() {
            crate::kill_group(self.child.id() as libc::pid_t);
            let _ = self.child.wait();
        }
    }
}

/// Capabilities of the bundle's process (Docker's default set plus NET_RAW for ping):
/// nginx and redis switch users, ping opens a raw socket.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// An OCI bundle for servers in a network namespace, with a state root of its own.
pub struct NetBundle {
    pub tmp: TempDir,
    /// A read-write folder the process sees at the same path (its cwd).
    pub work: PathBuf,
}

impl NetBundle {
    /// A bundle running `args` (cwd: the work folder) in the namespace `netns` (none: the
    /// runtime makes a fresh one).
    pub fn new(name: &str, netns: Option<&NetNs>, args: &[&str]) -> NetBundle {
        let tmp = TempDir::new(name);
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        // Servers that drop to other users (nginx's www-data workers) read files in here.
        for d in [tmp.path(), work.as_path()] {
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let b = NetBundle { tmp, work };
        std::fs::create_dir_all(b.state_root()).unwrap();
        let rootfs = b.rootfs();
        for d in [
            "usr", "etc", "tmp", "proc", "sys", "dev", "run", "root", "var/tmp",
        ] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            if Path::new("/").join(to).exists() {
                std::os::unix::fs::symlink(to, rootfs.join(link)).unwrap();
            }
        }
        std::fs::set_permissions(
            rootfs.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        let o = Command::new(rvisor_bin())
            .args(["spec", "--bundle"])
            .arg(b.dir())
            .output()
            .expect("rvisor spec");
        assert!(
            o.status.success(),
            "rvisor spec: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let work_s = b.work.to_string_lossy().into_owned();
        let netns_path = netns.map(|n| n.path().to_string_lossy().into_owned());
        b.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = serde_json::json!(args);
            c["process"]["cwd"] = work_s.clone().into();
            c["process"]["env"] =
                serde_json::json!([format!("PATH={SYSTEM_PATH}"), "HOME=/root", "LANG=C.UTF-8"]);
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set] = serde_json::json!(CAPS);
            }
            c["root"]["readonly"] = false.into();
            if let Some(path) = &netns_path {
                for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
                    if ns["type"] == "network" {
                        ns["path"] = path.clone().into();
                    }
                }
            }
            let mounts = c["mounts"].as_array_mut().unwrap();
            for (dst, src, mode) in [
                ("/usr", "/usr", "ro"),
                ("/etc", "/etc", "ro"),
                (&work_s[..], &work_s[..], "rw"),
            ] {
                mounts.push(serde_json::json!({
                    "destination": dst, "type": "bind", "source": src, "options": ["rbind", mode]
                }));
            }
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

    /// Changes config.json.
    pub fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.dir().join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    /// Writes `contents` to `name` in the work folder (world-readable).
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.work.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        p
    }

    /// `rvisor --root=STATE GLOBAL... run --bundle B ID`.
    pub fn rvisor_command(&self, global: &[&str], id: &str) -> Command {
        let mut c = Command::new(rvisor_bin());
        c.arg(format!("--root={}", self.state_root().display()))
            .args(global)
            .args(["run", "--bundle"])
            .arg(self.dir())
            .arg(id);
        c
    }

    /// `runc --root=STATE/runc run --bundle B ID`.
    pub fn runc_command(&self, id: &str) -> Command {
        let mut c = Command::new("runc");
        c.arg(format!(
            "--root={}",
            self.state_root().join("runc").display()
        ))
        .args(["run", "--bundle"])
        .arg(self.dir())
        .arg(id);
        c
    }

    /// Starts `rvisor GLOBAL... run` in the background; dropping the result deletes the
    /// container (`rvisor delete --force`) and kills the CLI.
    pub fn spawn_rvisor(&self, global: &[&str], id: &str) -> Background {
        let mut bg = Background::spawn(self.rvisor_command(global, id), self.tmp.path(), id);
        bg.logs.push(self.work.join("error.log"));
        let root = self.state_root();
        let id = id.to_string();
        bg.cleanup = Some(Box::new(move || {
            let _ = Command::new(rvisor_bin())
                .arg(format!("--root={}", root.display()))
                .args(["delete", "--force", &id])
                .output();
        }));
        bg
    }

    /// Starts `runc run` in the background; dropping the result deletes the container.
    pub fn spawn_runc(&self, id: &str) -> Background {
        let mut bg = Background::spawn(self.runc_command(id), self.tmp.path(), id);
        bg.logs.push(self.work.join("error.log"));
        let root = self.state_root().join("runc");
        let id = id.to_string();
        bg.cleanup = Some(Box::new(move || {
            let _ = Command::new("runc")
                .arg(format!("--root={}", root.display()))
                .args(["delete", "--force", &id])
                .output();
        }));
        bg
    }

    /// Runs `rvisor GLOBAL... run` to completion (with the harness timeout) and returns what
    /// the container printed.
    #[track_caller]
    pub fn run_rvisor(&self, global: &[&str], id: &str) -> Outcome {
        /// Deletes the container when the run ends, also when it timed out (its sandbox is
        /// in a session of its own, out of reach of the harness's process-group kill).
        struct Delete(PathBuf, String);
        impl Drop for Delete {
            fn drop(&mut self) {
                let _ = Command::new(rvisor_bin())
                    .arg(format!("--root={}", self.0.display()))
                    .args(["delete", "--force", &self.1])
                    .output();
            }
        }
        let _delete = Delete(self.state_root(), id.to_string());
        let c = self.rvisor_command(global, id);
        let what = format!(
            "`rvisor {} run` of bundle {}",
            global.join(" "),
            self.dir().display()
        );
        crate::run_command(c, &[], what, crate::timeout()).expect("starting rvisor")
    }

    /// The pid of the sandbox (`rvisor boot`) of container `id` (from `rvisor state`).
    pub fn boot_pid(&self, id: &str) -> Option<i32> {
        let o = Command::new(rvisor_bin())
            .arg(format!("--root={}", self.state_root().display()))
            .args(["state", id])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v["pid"].as_i64().map(|p| p as i32).filter(|p| *p > 0)
    }
}

/// The sandbox's host processes that run rvisor code: `boot` (the sentry) and the gofers,
/// which the CLI started next to it (same parent). The platform's stubs (children of boot,
/// traced by the sentry, so strace could not attach to them anyway) are left out.
pub fn sandbox_processes(boot_pid: i32) -> Vec<HostProcess> {
    let Some(boot) = HostProcess::read(boot_pid) else {
        return Vec::new();
    };
    let mut v = vec![boot.clone()];
    // A gofer's command line is `rvisor ... gofer ...`, or `[rvisor-gofer]` once it renamed
    // itself.
    v.extend(crate::host_processes().into_iter().filter(|p| {
        p.ppid == boot.ppid
            && p.pid != boot_pid
            && p.cmdline.split([' ', '[', ']', '-']).any(|w| w == "gofer")
    }));
    v
}

/// The `--net-fd N` values of a `rvisor boot` command line.
pub fn boot_net_fds(boot_pid: i32) -> Vec<i32> {
    let raw = std::fs::read(format!("/proc/{boot_pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut fds = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if let Some(v) = a.strip_prefix("--net-fd=") {
            fds.extend(v.parse::<i32>().ok());
        } else if a == "--net-fd" {
            fds.extend(args.get(i + 1).and_then(|v| v.parse::<i32>().ok()));
        }
    }
    fds
}

/// `curl -sS --max-time 30 URL` from the host; the body, or the failure with curl's message.
pub fn curl(url: &str) -> Result<Vec<u8>, String> {
    let o = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30", url])
        .output()
        .map_err(|e| format!("cannot run curl (Debian package curl): {e}"))?;
    if o.status.success() {
        Ok(o.stdout)
    } else {
        Err(format!(
            "curl {url}: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// sha256 of `data` as hex, by `sha256sum` (coreutils).
pub fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = c.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    writer.join().unwrap();
    c.wait().unwrap();
    out.split_whitespace().next().unwrap_or("").to_string()
}

/// Deterministic pseudo-random bytes (a file to serve whose corruption would show).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// What `wrk` reported.
#[derive(Debug, Default, Clone)]
pub struct WrkResult {
    pub requests: u64,
    pub requests_per_sec: f64,
    /// The 99th percentile latency in microseconds (with `--latency`).
    pub p99_us: Option<f64>,
    /// The "Non-2xx or 3xx responses" line, if present.
    pub non_2xx: Option<String>,
    /// The "Socket errors" line, if present.
    pub socket_errors: Option<String>,
}

/// Parses wrk's report.
pub fn parse_wrk(out: &str) -> WrkResult {
    let mut r = WrkResult::default();
    for line in out.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Requests/sec:") {
            r.requests_per_sec = rest.trim().parse().unwrap_or(0.0);
        } else if t.contains("requests in") {
            r.requests = t
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if t.starts_with("Non-2xx") {
            r.non_2xx = Some(t.to_string());
        } else if t.starts_with("Socket errors") {
            r.socket_errors = Some(t.to_string());
        } else if let Some(rest) = t.strip_prefix("99%") {
            r.p99_us = parse_duration_us(rest.trim());
        }
    }
    r
}

/// "1.23ms" / "850.00us" / "2.01s" in microseconds.
pub fn parse_duration_us(s: &str) -> Option<f64> {
    let (num, mul) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    num.trim().parse::<f64>().ok().map(|v| v * mul)
}

/// `wrk -t1 -c16 -d10s --latency URL` from the host; its output.
#[track_caller]
pub fn wrk(url: &str) -> (String, WrkResult) {
    crate::require_program("/usr/bin/wrk", "wrk");
    let o = Command::new("wrk")
        .args(["-t1", "-c16", "-d10s", "--latency", url])
        .output()
        .expect("running wrk");
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "wrk {url} failed ({}):\n{out}",
        o.status
    );
    let r = parse_wrk(&out);
    (out, r)
}

/// An nginx configuration as the tests run it: one master and one worker in the
/// foreground, Debian's `sendfile on; tcp_nopush on;`, every path in `dir`, serving `root`
/// on `listen` (e.g. "0.0.0.0:80").
pub fn nginx_config(dir: &Path, root: &Path, listen: &str) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nuser www-data;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 768; }}\n\
         http {{\n  sendfile on;\n  tcp_nopush on;\n  types_hash_max_size 2048;\n  \
         include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  \
         access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen {listen};\n    root {};\n  }}\n}}\n",
        root.display()
    )
}

/// The nginx command line for a config file written by [`nginx_config`].
pub fn nginx_args(dir: &Path, conf: &Path) -> Vec<String> {
    vec![
        "/usr/sbin/nginx".into(),
        "-e".into(),
        format!("{}/error.log", dir.display()),
        "-p".into(),
        dir.display().to_string(),
        "-c".into(),
        conf.display().to_string(),
    ]
}

/// The files an nginx test serves: 4 KiB and 1 MiB of pseudo-random bytes.
pub struct Site {
    pub small: Vec<u8>,
    pub big: Vec<u8>,
}

/// A bundle running nginx (config by [`nginx_config`], listening on port 80 of every
/// address) and serving `/4k.bin` and `/1m.bin` from its work folder.
pub fn nginx_bundle(name: &str, netns: Option<&NetNs>) -> (NetBundle, Site) {
    crate::require_program("/usr/sbin/nginx", "nginx-light");
    let b = NetBundle::new(name, netns, &["true"]);
    let site = Site {
        small: pattern(4096, 4),
        big: pattern(1 << 20, 1),
    };
    b.write("site/4k.bin", &site.small);
    b.write("site/1m.bin", &site.big);
    let conf = b.write(
        "nginx.conf",
        nginx_config(&b.work, &b.work.join("site"), "80").as_bytes(),
    );
    let args = nginx_args(&b.work, &conf);
    b.edit(|c| c["process"]["args"] = serde_json::json!(args));
    (b, site)
}

/// Fetches both files of `site` from `base` ("http://ADDR") with curl and fails the test
/// unless their sha256 sums are the files'.
#[track_caller]
pub fn assert_serves_site(base: &str, site: &Site, server: &Background) {
    for (path, want) in [("4k.bin", &site.small), ("1m.bin", &site.big)] {
        let url = format!("{base}/{path}");
        let got = curl(&url).unwrap_or_else(|e| panic!("{e}\n{}", server.dump()));
        assert_eq!(
            (got.len(), sha256(&got)),
            (want.len(), sha256(want)),
            "{url}: the body differs from the file\n{}",
            server.dump()
        );
    }
}

/// Runs wrk against `url` and fails the test unless it made requests without errors.
#[track_caller]
pub fn assert_wrk_clean(url: &str, server: &Background) -> WrkResult {
    let (out, r) = wrk(url);
    assert!(
        r.requests > 0 && r.non_2xx.is_none() && r.socket_errors.is_none(),
        "wrk {url}: want requests > 0 and no \"Non-2xx\"/\"Socket errors\" lines:\n{out}\n{}",
        server.dump()
    );
    r
}

/// A Python script for the guest: `python3 -m http.server` on 127.0.0.1:8000 in a child
/// process, and urllib fetching a 16 KiB file from it. Prints [`PY_HTTP_LOOPBACK_OUT`].
pub const PY_HTTP_LOOPBACK: &str = r#"
import os, socket, subprocess, sys, time, urllib.request
data = bytes((i * 7 + 3) % 251 for i in range(16384))
with open("file.bin", "wb") as f:
    f.write(data)
p = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "8000"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", 8000), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or p.poll() is not None:
                print("server did not start")
                sys.exit(1)
            time.sleep(0.05)
    body = urllib.request.urlopen("http://127.0.0.1:8000/file.bin", timeout=30).read()
    print("http.server body:", "same" if body == data else "differs", len(body))
finally:
    p.kill()
    p.wait()
"#;

/// What [`PY_HTTP_LOOPBACK`] prints when it works.
pub const PY_HTTP_LOOPBACK_OUT: &str = "http.server body: same 16384\n";

/// A Python script for the guest: a UDP echo server in a child process and a client, on
/// 127.0.0.1 and on the address in argv[1]. Prints [`py_udp_echo_out`].
pub const PY_UDP_ECHO: &str = r#"
import socket, subprocess, sys
server = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
for _ in range(3):
    data, peer = s.recvfrom(2048)
    s.sendto(data.upper(), peer)
"""
for host in ["127.0.0.1", sys.argv[1]]:
    p = subprocess.Popen([sys.executable, "-c", server, host], stdout=subprocess.PIPE)
    port = int(p.stdout.readline())
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(30)
    for msg in [b"one", b"datagram " * 100, b""]:
        c.sendto(msg, (host, port))
        data, peer = c.recvfrom(2048)
        print(host == sys.argv[1] and "pod" or "lo", len(data), data == msg.upper(), peer == (host, port))
    p.wait(timeout=30)
    print("server exit", p.returncode)
"#;

/// What [`PY_UDP_ECHO`] prints when it works.
pub fn py_udp_echo_out() -> String {
    let mut s = String::new();
    for who in ["lo", "pod"] {
        for len in [3, 900, 0] {
            s += &format!("{who} {len} True True\n");
        }
        s += "server exit 0\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output_with_errors_and_latency() {
        let out = "Running 10s test @ http://x/\n  1 threads and 16 connections\n\
                   \x20 Latency Distribution\n     50%  400.00us\n     75%  1.00ms\n     90%  2.00ms\n     99%    3.50ms\n\
                   \x20 12345 requests in 10.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 0\n\
                   \x20 Non-2xx or 3xx responses: 7\nRequests/sec:   1234.50\nTransfer/sec:  100KB\n";
        let r = parse_wrk(out);
        assert_eq!(r.requests, 12345);
        assert_eq!(r.requests_per_sec, 1234.5);
        assert_eq!(r.p99_us, Some(3500.0));
        assert!(r.socket_errors.is_some() && r.non_2xx.is_some());
        assert!(parse_wrk("  10 requests in 1.00s, 1KB read\n")
            .socket_errors
            .is_none());
    }

    #[test]
    fn durations_in_microseconds() {
        assert_eq!(parse_duration_us("850.00us"), Some(850.0));
        assert_eq!(parse_duration_us("2.00s"), Some(2e6));
        assert_eq!(parse_duration_us("1.5m"), Some(90e6));
        assert_eq!(parse_duration_us("x"), None);
    }

    #[test]
    fn pattern_is_deterministic_and_not_constant() {
        let a = pattern(4096, 1);
        assert_eq!(a, pattern(4096, 1));
        assert_ne!(a, pattern(4096, 2));
        assert!(a.iter().any(|b| *b != a[0]));
    }
}
