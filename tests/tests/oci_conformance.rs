//! An OCI runtime conformance suite of rvisor's own, written from the runtime spec
//! (config.md, config-linux.md, runtime.md) in the way of youki's `contest` + `runtimetest`:
//! each case builds a bundle, runs it, and checks from inside the container with the static
//! checker `c/oci_checker.c` (its expectations are written into the rootfs as /oci_expect),
//! or drives the lifecycle (create, start, state, kill, delete, hooks) from the test.
//!
//! Every case runs against runc (when installed) and rvisor in the same test run. A case
//! that runc passes must pass in rvisor, or be listed with a reason in
//! `tests/oci-known-differences.md`. The counts are printed:
//! `oci conformance: N cases, runc passes R, rvisor passes V, known differences K`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rvisor_tests::TempDir;
use serde_json::{json, Value};

const CHECKER: &str = env!("RVISOR_TEST_PROG_OCI_CHECKER");
const KNOWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/oci-known-differences.md");

// ---------------------------------------------------------------------------------------
// Runtimes and bundles
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rt {
    Runc,
    Rvisor,
}

impl Rt {
    fn name(self) -> &'static str {
        match self {
            Rt::Runc => "runc",
            Rt::Rvisor => "rvisor",
        }
    }

    fn bin(self) -> PathBuf {
        match self {
            Rt::Runc => runc_bin().expect("runc is not installed"),
            Rt::Rvisor => rvisor_tests::rvisor_bin().to_path_buf(),
        }
    }
}

fn runc_bin() -> Option<PathBuf> {
    ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// What one runtime command printed.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn dump(&self) -> String {
        format!("exit {:?}; stdout: {}; stderr: {}", self.code, self.stdout.trim(), self.stderr.trim())
    }
}

/// One bundle (busybox rootfs + the checker) and one state root, for one runtime.
struct Env {
    rt: Rt,
    tmp: TempDir,
    n: AtomicUsize,
    /// The container id: unique per case and runtime, since both runtimes name their
    /// cgroups after it and the cases run in parallel.
    id: String,
}

impl Env {
    fn new(rt: Rt) -> Env {
        // Short: rvisor's control socket lives under the state root (a unix socket path
        // is at most 107 bytes).
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tmp = TempDir::new(&format!("oc{n}"));
        let id = format!("oc-{}-{n}", rt.name());
        let e = Env { rt, tmp, n: AtomicUsize::new(0), id };
        std::fs::create_dir_all(e.state()).unwrap();
        std::fs::create_dir_all(e.host()).unwrap();
        rvisor_tests::oci::busybox_rootfs(&e.rootfs());
        let checker = e.rootfs().join("oci_checker");
        std::fs::copy(CHECKER, &checker).expect("copying the checker");
        std::fs::set_permissions(&checker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cfg = base_config();
        cfg["process"]["args"] = json!(["/oci_checker"]);
        e.write_config(&cfg);
        e
    }

    fn bundle(&self) -> PathBuf {
        self.tmp.path().join("bundle")
    }

    fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// A host folder of the test's own (bind-mount sources, hook logs).
    fn host(&self) -> PathBuf {
        self.tmp.path().join("host")
    }

    fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.bundle().join("config.json")).unwrap()).unwrap()
    }

    fn write_config(&self, c: &Value) {
        std::fs::write(self.bundle().join("config.json"), serde_json::to_vec_pretty(c).unwrap()).unwrap();
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        self.write_config(&c);
    }

    /// `RUNTIME --root STATE ARGS...`, its stdio in files (a container it starts keeps
    /// them); the container's stdout is the returned path's file.
    fn run(&self, args: &[&str]) -> (Out, PathBuf) {
        let i = self.n.fetch_add(1, Ordering::Relaxed);
        let out = self.tmp.path().join(format!("cmd{i}.out"));
        let err = self.tmp.path().join(format!("cmd{i}.err"));
        let mut c = Command::new(self.rt.bin());
        c.arg("--root").arg(self.state()).args(args);
        c.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let code = match c.spawn() {
            Ok(mut child) => {
                let deadline = Instant::now() + rvisor_tests::timeout();
                loop {
                    if let Some(s) = child.try_wait().unwrap() {
                        break s.code();
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Err(e) => {
                std::fs::write(&err, format!("cannot start: {e}")).unwrap();
                None
            }
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        // The stdout file of a command that started a container still grows; read it now.
        (Out { code, stdout: read(&out), stderr: read(&err) }, out)
    }

    fn cmd(&self, args: &[&str]) -> Out {
        self.run(args).0
    }

    fn state_of(&self, id: &str) -> Result<Value, String> {
        let o = self.cmd(&["state", id]);
        if !o.ok() {
            return Err(format!("state {id}: {}", o.dump()));
        }
        serde_json::from_str(&o.stdout).map_err(|e| format!("state {id}: {e}: {}", o.stdout))
    }

    /// Waits until container `id`'s status is `want`.
    fn wait_status(&self, id: &str, want: &str) -> Result<(), String> {
        let deadline = Instant::now() + rvisor_tests::timeout();
        loop {
            let st = self.state_of(id)?;
            if st["status"] == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{id} never became {want}: {st}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the file at `path` contains `text`.
    fn wait_output(&self, path: &Path, text: &str) -> Result<(), String> {
        let deadline = Instant::now() + rvisor_tests::timeout();
        loop {
            let s = std::fs::read_to_string(path).unwrap_or_default();
            if s.contains(text) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{} never showed {text:?}: {s:?}", path.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for e in std::fs::read_dir(self.state()).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                let _ = self.cmd(&["delete", "--force", &id]);
            }
        }
    }
}

/// runc's default spec (`runc spec`; `rvisor spec` writes the same), without a terminal.
fn base_config() -> Value {
    static BASE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let t = TempDir::new("ocic-spec");
        let o = rvisor_tests::run_rvisor_cli(&["spec", "--bundle", t.path().to_str().unwrap()]);
        o.assert_code(0);
        let mut c: Value = serde_json::from_slice(&std::fs::read(t.path().join("config.json")).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c
    })
    .clone()
}

// ---------------------------------------------------------------------------------------
// Cases checked from inside the container
// ---------------------------------------------------------------------------------------

/// What a config case prepares: config.json edits, files in the rootfs, and the
/// expectations the checker verifies (`NAME\tKIND\tARG...` lines).
struct Prep<'a> {
    env: &'a Env,
    cfg: Value,
    expect: Vec<String>,
}

impl Prep<'_> {
    fn check(&mut self, name: &str, kind: &str, args: &[&str]) {
        let mut line = format!("{name}\t{kind}");
        for a in args {
            line.push('\t');
            line.push_str(a);
        }
        self.expect.push(line);
    }

    fn mount(&mut self, m: Value) {
        self.cfg["mounts"].as_array_mut().unwrap().push(m);
    }

    fn rootfs(&self) -> PathBuf {
        self.env.rootfs()
    }

    fn host(&self) -> PathBuf {
        self.env.host()
    }
}

type HostCheck = fn(&Env) -> Result<(), String>;

struct ConfigCase {
    name: &'static str,
    section: &'static str,
    prep: fn(&mut Prep),
    after: Option<HostCheck>,
}

const CAP_CHOWN: &str = "0";

fn config_cases() -> Vec<ConfigCase> {
    vec![
        ConfigCase { name: "process_args", section: "config.md#process args", prep: |p| {
            p.cfg["process"]["args"] = json!(["/oci_checker", "a b", "", "c"]);
            p.check("argv", "args", &["/oci_checker", "a b", "", "c"]);
        }, after: None },
        ConfigCase { name: "process_env", section: "config.md#process env", prep: |p| {
            p.cfg["process"]["env"] = json!(["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY=", "EQ=a=b"]);
            p.check("path", "env", &["PATH", "/bin:/sbin"]);
            p.check("spaces", "env", &["FOO", "bar baz"]);
            p.check("empty", "env", &["EMPTY", ""]);
            p.check("equals", "env", &["EQ", "a=b"]);
        }, after: None },
        ConfigCase { name: "process_cwd", section: "config.md#process cwd", prep: |p| {
            p.cfg["process"]["cwd"] = json!("/tmp");
            p.check("cwd", "cwd", &["/tmp"]);
        }, after: None },
        ConfigCase { name: "process_cwd_created", section: "config.md#process cwd (runc creates a missing cwd)", prep: |p| {
            p.cfg["process"]["cwd"] = json!("/work/here");
            p.check("cwd", "cwd", &["/work/here"]);
        }, after: None },
        ConfigCase { name: "user_uid_gid", section: "config.md#user uid, gid", prep: |p| {
            p.cfg["process"]["user"] = json!({ "uid": 1000, "gid": 1001 });
            p.check("ids", "ids", &["1000", "1001"]);
        }, after: None },
        ConfigCase { name: "user_additional_gids", section: "config.md#user additionalGids", prep: |p| {
            p.cfg["process"]["user"] = json!({ "uid": 0, "gid": 0, "additionalGids": [10, 20] });
            p.check("groups", "groups", &["10,20"]);
        }, after: None },
        ConfigCase { name: "user_umask", section: "config.md#user umask", prep: |p| {
            p.cfg["process"]["user"]["umask"] = json!(0o077);
            p.check("umask", "umask", &["077"]);
        }, after: None },
        ConfigCase { name: "user_umask_default", section: "config.md#user umask (runc default 0022)", prep: |p| {
            p.check("umask", "umask", &["022"]);
        }, after: None },
        ConfigCase { name: "process_rlimits", section: "config.md#process rlimits", prep: |p| {
            p.cfg["process"]["rlimits"] = json!([
                { "type": "RLIMIT_NOFILE", "soft": 321, "hard": 654 },
                { "type": "RLIMIT_CORE", "soft": 1024, "hard": 2048 }
            ]);
            p.check("nofile", "rlimit", &["7", "321", "654"]);
            p.check("core", "rlimit", &["4", "1024", "2048"]);
        }, after: None },
        ConfigCase { name: "hostname", section: "config.md#hostname", prep: |p| {
            p.cfg["hostname"] = json!("oci-host");
            p.check("uname", "hostname", &["oci-host"]);
        }, after: None },
        ConfigCase { name: "root_readonly", section: "config.md#root readonly", prep: |p| {
            p.cfg["root"]["readonly"] = json!(true);
            p.check("root", "erofs", &["/"]);
            p.check("etc", "erofs", &["/etc/passwd"]);
            p.check("shm", "writable", &["/dev/shm"]);
        }, after: None },
        ConfigCase { name: "root_readwrite", section: "config.md#root readonly=false", prep: |p| {
            p.cfg["root"]["readonly"] = json!(false);
            p.check("root", "writable", &["/"]);
            p.check("tmp", "writable", &["/tmp"]);
        }, after: None },
        ConfigCase { name: "mounts_default", section: "config.md#mounts (runc default spec)", prep: |p| {
            p.check("proc", "mount", &["/proc", "proc"]);
            p.check("dev", "mount", &["/dev", "tmpfs", "nosuid"]);
            p.check("devpts", "mount", &["/dev/pts", "devpts", "nosuid,noexec"]);
            p.check("shm", "mount", &["/dev/shm", "tmpfs", "nosuid,noexec,nodev"]);
            p.check("mqueue", "mount", &["/dev/mqueue", "mqueue", "nosuid,noexec,nodev"]);
            p.check("sys", "mount", &["/sys", "sysfs", "ro,nosuid,noexec,nodev"]);
            p.check("sys_ro", "erofs", &["/sys"]);
        }, after: None },
        ConfigCase { name: "mount_tmpfs_options", section: "config.md#mounts options (tmpfs mode, size, flags)", prep: |p| {
            // runc 1.1 gives a tmpfs its mount point's mode, over mode=: make them agree.
            std::fs::create_dir_all(p.rootfs().join("scratch")).unwrap();
            std::fs::set_permissions(p.rootfs().join("scratch"), std::fs::Permissions::from_mode(0o1777)).unwrap();
            p.mount(json!({ "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=1m"] }));
            p.check("listed", "mount", &["/scratch", "tmpfs", "nosuid,nodev"]);
            p.check("mode", "mode", &["/scratch", "1777"]);
            p.check("size", "fssize", &["/scratch", "1048576"]);
            p.check("writable", "writable", &["/scratch"]);
        }, after: None },
        ConfigCase { name: "mount_noexec", section: "config.md#mounts options noexec", prep: |p| {
            std::fs::create_dir_all(p.rootfs().join("nx")).unwrap();
            p.mount(json!({ "destination": "/nx", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"] }));
            p.check("listed", "mount", &["/nx", "tmpfs", "noexec"]);
            p.check("denied", "noexec", &["/nx"]);
        }, after: None },
        ConfigCase { name: "mount_tmpfs_readonly", section: "config.md#mounts options ro", prep: |p| {
            std::fs::create_dir_all(p.rootfs().join("rotmp")).unwrap();
            p.mount(json!({ "destination": "/rotmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro"] }));
            p.check("listed", "mount", &["/rotmp", "tmpfs", "ro"]);
            p.check("erofs", "erofs", &["/rotmp"]);
        }, after: None },
        ConfigCase { name: "mounts_in_listed_order", section: "config.md#mounts (MUST mount in the listed order)", prep: |p| {
            // The second mount is inside the first: in the other order it would be hidden.
            p.mount(json!({ "destination": "/layer", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"] }));
            p.mount(json!({ "destination": "/layer/inner", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m"] }));
            p.check("outer", "fssize", &["/layer", "1048576"]);
            p.check("inner", "fssize", &["/layer/inner", "2097152"]);
        }, after: None },
        ConfigCase { name: "mount_destination_created", section: "config.md#mounts destination (created when missing)", prep: |p| {
            p.mount(json!({ "destination": "/new/deep/mnt", "type": "tmpfs", "source": "tmpfs", "options": [] }));
            p.check("dir", "isdir", &["/new/deep/mnt"]);
            p.check("listed", "mount", &["/new/deep/mnt", "tmpfs"]);
        }, after: None },
        ConfigCase { name: "mount_bind_readonly", section: "config.md#mounts bind, ro", prep: |p| {
            let src = p.host().join("ro-src");
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("hello"), "hi from host\n").unwrap();
            p.mount(json!({ "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro"] }));
            p.check("content", "content", &["/data/hello", "hi from host"]);
            p.check("erofs", "erofs", &["/data"]);
            p.check("erofs_file", "erofs", &["/data/hello"]);
        }, after: None },
        ConfigCase { name: "mount_bind_readwrite", section: "config.md#mounts bind, rw", prep: |p| {
            let src = p.host().join("rw-src");
            std::fs::create_dir_all(&src).unwrap();
            p.mount(json!({ "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rw"] }));
            p.check("write", "write", &["/data/new", "from the container"]);
            p.check("read_back", "content", &["/data/new", "from the container"]);
        }, after: Some(|e| {
            let got = std::fs::read_to_string(e.host().join("rw-src/new")).map_err(|err| format!("host file: {err}"))?;
            if got == "from the container" { Ok(()) } else { Err(format!("host file holds {got:?}")) }
        }) },
        ConfigCase { name: "mount_bind_file", section: "config.md#mounts bind of a single file", prep: |p| {
            let src = p.host().join("file-src");
            std::fs::write(&src, "one file\n").unwrap();
            p.mount(json!({ "destination": "/etc/bound.txt", "type": "bind", "source": src, "options": ["rbind", "ro"] }));
            p.check("content", "content", &["/etc/bound.txt", "one file"]);
        }, after: None },
        ConfigCase { name: "masked_paths_default", section: "config-linux.md#masked paths (runc default spec)", prep: |p| {
            // A path absent from the container cannot be read either.
            for (name, path) in [("kcore", "/proc/kcore"), ("keys", "/proc/keys"), ("timer_list", "/proc/timer_list"), ("firmware", "/sys/firmware")] {
                p.check(name, "hidden", &[path]);
            }
        }, after: None },
        ConfigCase { name: "masked_paths_rootfs", section: "config-linux.md#masked paths", prep: |p| {
            std::fs::create_dir_all(p.rootfs().join("secret")).unwrap();
            std::fs::write(p.rootfs().join("secret/key"), "k").unwrap();
            std::fs::write(p.rootfs().join("secret.txt"), "s").unwrap();
            p.cfg["linux"]["maskedPaths"].as_array_mut().unwrap().extend([json!("/secret"), json!("/secret.txt"), json!("/does/not/exist")]);
            p.check("dir", "masked", &["/secret"]);
            p.check("file", "masked", &["/secret.txt"]);
        }, after: None },
        ConfigCase { name: "readonly_paths_default", section: "config-linux.md#readonly paths (runc default spec)", prep: |p| {
            p.check("proc_sys", "erofs", &["/proc/sys/kernel/domainname"]);
            p.check("proc_sys_dir", "erofs", &["/proc/sys/kernel/hostname"]);
        }, after: None },
        ConfigCase { name: "readonly_paths_rootfs", section: "config-linux.md#readonly paths", prep: |p| {
            p.cfg["root"]["readonly"] = json!(false);
            std::fs::create_dir_all(p.rootfs().join("rodir")).unwrap();
            p.cfg["linux"]["readonlyPaths"].as_array_mut().unwrap().push(json!("/rodir"));
            p.check("rodir", "erofs", &["/rodir"]);
            p.check("rest", "writable", &["/tmp"]);
        }, after: None },
        ConfigCase { name: "default_devices", section: "config-linux.md#default devices", prep: |p| {
            p.check("null", "chardev", &["/dev/null", "1", "3"]);
            p.check("zero", "chardev", &["/dev/zero", "1", "5"]);
            p.check("full", "chardev", &["/dev/full", "1", "7"]);
            p.check("random", "chardev", &["/dev/random", "1", "8"]);
            p.check("urandom", "chardev", &["/dev/urandom", "1", "9"]);
            p.check("tty", "chardev", &["/dev/tty", "5", "0"]);
            p.check("ptmx", "exists", &["/dev/ptmx"]);
            p.check("behave", "devsemantics", &[]);
        }, after: None },
        ConfigCase { name: "dev_symlinks", section: "config-linux.md#dev symbolic links", prep: |p| {
            p.check("fd", "symlink", &["/dev/fd", "/proc/self/fd"]);
            p.check("stdin", "symlink", &["/dev/stdin", "/proc/self/fd/0"]);
            p.check("stdout", "symlink", &["/dev/stdout", "/proc/self/fd/1"]);
            p.check("stderr", "symlink", &["/dev/stderr", "/proc/self/fd/2"]);
            p.check("proc_fds", "stdfds", &[]);
        }, after: None },
        ConfigCase { name: "capabilities_default", section: "config.md#process capabilities (runc default spec)", prep: |p| {
            // CAP_KILL 5, CAP_NET_BIND_SERVICE 10, CAP_AUDIT_WRITE 29.
            p.check("eff", "caps", &["CapEff", "5,10,29"]);
            p.check("prm", "caps", &["CapPrm", "5,10,29"]);
            p.check("bnd", "caps", &["CapBnd", "5,10,29"]);
            p.check("inh", "caps", &["CapInh", ""]);
            p.check("no_chown", "chown", &["/dev/shm/f", "EPERM"]);
        }, after: None },
        ConfigCase { name: "capabilities_custom", section: "config.md#process capabilities", prep: |p| {
            let caps = json!(["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETUID"]);
            p.cfg["process"]["capabilities"] = json!({ "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": ["CAP_CHOWN"] });
            p.check("eff", "caps", &["CapEff", "0,1,7"]);
            p.check("bnd", "caps", &["CapBnd", "0,1,7"]);
            p.check("inh", "caps", &["CapInh", "0,1,7"]);
            p.check("amb", "caps", &["CapAmb", CAP_CHOWN]);
            p.check("chown", "chown", &["/dev/shm/f", "ok"]);
        }, after: None },
        ConfigCase { name: "capabilities_none", section: "config.md#process capabilities (absent: empty sets)", prep: |p| {
            p.cfg["process"].as_object_mut().unwrap().remove("capabilities");
            p.check("eff", "caps", &["CapEff", ""]);
            p.check("bnd", "caps", &["CapBnd", ""]);
            p.check("no_chown", "chown", &["/dev/shm/f", "EPERM"]);
        }, after: None },
        ConfigCase { name: "no_new_privileges_true", section: "config.md#process noNewPrivileges", prep: |p| {
            p.cfg["process"]["noNewPrivileges"] = json!(true);
            p.check("nnp", "nonewprivs", &["1"]);
        }, after: None },
        ConfigCase { name: "no_new_privileges_false", section: "config.md#process noNewPrivileges=false", prep: |p| {
            p.cfg["process"]["noNewPrivileges"] = json!(false);
            p.check("nnp", "nonewprivs", &["0"]);
        }, after: None },
        ConfigCase { name: "sysctl", section: "config-linux.md#sysctl", prep: |p| {
            p.cfg["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.domainname": "oci.test" });
            p.check("ip_forward", "content", &["/proc/sys/net/ipv4/ip_forward", "1"]);
            p.check("domainname", "content", &["/proc/sys/kernel/domainname", "oci.test"]);
        }, after: None },
        ConfigCase { name: "oom_score_adj", section: "config.md#process oomScoreAdj", prep: |p| {
            p.cfg["process"]["oomScoreAdj"] = json!(100);
            p.check("adj", "content", &["/proc/self/oom_score_adj", "100"]);
        }, after: None },
        ConfigCase { name: "pid_namespace", section: "config-linux.md#namespaces pid", prep: |p| {
            p.check("pid1", "pid", &["1"]);
        }, after: None },
    ]
}

/// Runs one config case on one runtime: Ok, or why it failed.
fn run_config_case(c: &ConfigCase, rt: Rt) -> Result<(), String> {
    let env = Env::new(rt);
    let mut p = Prep { env: &env, cfg: env.config(), expect: Vec::new() };
    (c.prep)(&mut p);
    let Prep { cfg, expect, .. } = p;
    env.write_config(&cfg);
    std::fs::write(env.rootfs().join("oci_expect"), expect.join("\n") + "\n").unwrap();
    let bundle = env.bundle();
    let o = env.cmd(&["run", "--bundle", bundle.to_str().unwrap(), &env.id]);
    let fails: Vec<&str> = o.stdout.lines().filter(|l| l.contains(": FAIL")).collect();
    if !fails.is_empty() {
        return Err(fails.join("; "));
    }
    if !o.stdout.contains(&format!("oci_checker: done {} checks 0 failed", expect.len())) || !o.ok() {
        return Err(o.dump());
    }
    if let Some(after) = c.after {
        after(&env)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Lifecycle cases driven from the test (runtime.md)
// ---------------------------------------------------------------------------------------

struct LifeCase {
    name: &'static str,
    section: &'static str,
    run: fn(&Env) -> Result<(), String>,
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn set_args(e: &Env, args: &[&str]) {
    e.edit(|c| c["process"]["args"] = json!(args));
}

/// `create` of container `id`; returns the file the container's stdout goes to.
fn create(e: &Env, id: &str) -> Result<PathBuf, String> {
    let b = e.bundle();
    let (o, out) = e.run(&["create", "--bundle", b.to_str().unwrap(), id]);
    ensure(o.ok(), || format!("create: {}", o.dump()))?;
    Ok(out)
}

/// `create` must fail and leave no container behind.
fn create_fails(e: &Env) -> Result<(), String> {
    let b = e.bundle();
    let o = e.cmd(&["create", "--bundle", b.to_str().unwrap(), &e.id]);
    ensure(!o.ok() && o.code.is_some(), || format!("create should fail: {}", o.dump()))?;
    let st = e.cmd(&["state", &e.id]);
    ensure(!st.ok(), || format!("a failed create left a container: {}", st.dump()))
}

fn step(e: &Env, args: &[&str]) -> Result<(), String> {
    let o = e.cmd(args);
    ensure(o.ok(), || format!("{}: {}", args.join(" "), o.dump()))
}

fn refused(e: &Env, args: &[&str]) -> Result<Out, String> {
    let o = e.cmd(args);
    ensure(!o.ok() && o.code.is_some(), || format!("{} should fail: {}", args.join(" "), o.dump()))?;
    Ok(o)
}

/// A hook writing its stage name (and its stdin, the state) into the host folder.
fn hook(e: &Env, stage: &str) -> Value {
    let dir = e.host();
    let script = format!("cat > {d}/{stage}.json; echo {stage} >> {d}/hooks.log", d = dir.display());
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script] })
}

fn life_cases() -> Vec<LifeCase> {
    vec![
        LifeCase { name: "lifecycle_create_start_kill_delete", section: "runtime.md#lifecycle, operations", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sh", "-c", "echo started; exec sleep 1000"]);
            let out = create(e, c)?;
            let st = e.state_of(c)?;
            ensure(st["status"] == "created", || format!("after create: {st}"))?;
            ensure(st["pid"].as_i64().unwrap_or(0) > 0, || format!("created state has no pid: {st}"))?;
            let early = std::fs::read_to_string(&out).unwrap_or_default();
            ensure(early.is_empty(), || format!("the process ran before start: {early:?}"))?;
            step(e, &["start", c])?;
            e.wait_output(&out, "started")?;
            let st = e.state_of(c)?;
            ensure(st["status"] == "running", || format!("after start: {st}"))?;
            step(e, &["kill", c, "KILL"])?;
            e.wait_status(c, "stopped")?;
            step(e, &["delete", c])?;
            refused(e, &["state", c]).map(|_| ())
        } },
        LifeCase { name: "state_fields_and_annotations", section: "runtime.md#state", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sleep", "1000"]);
            e.edit(|c| c["annotations"] = json!({ "org.oci.test.key": "value 1" }));
            create(e, c)?;
            let st = e.state_of(c)?;
            ensure(st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()), || format!("ociVersion: {st}"))?;
            ensure(st["id"] == c, || format!("id: {st}"))?;
            ensure(st["bundle"] == e.bundle().to_str().unwrap(), || format!("bundle: {st}"))?;
            ensure(st["annotations"]["org.oci.test.key"] == "value 1", || format!("annotations: {st}"))?;
            step(e, &["delete", c])
        } },
        LifeCase { name: "start_twice_fails", section: "runtime.md#start (MUST generate an error if not created)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sleep", "1000"]);
            create(e, c)?;
            step(e, &["start", c])?;
            refused(e, &["start", c])?;
            step(e, &["delete", "--force", c])
        } },
        LifeCase { name: "start_stopped_fails", section: "runtime.md#start", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["true"]);
            create(e, c)?;
            step(e, &["start", c])?;
            e.wait_status(c, "stopped")?;
            refused(e, &["start", c])?;
            step(e, &["delete", c])
        } },
        LifeCase { name: "create_duplicate_id_fails", section: "runtime.md#create (id MUST be unique)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sleep", "1000"]);
            create(e, c)?;
            let b = e.bundle();
            refused(e, &["create", "--bundle", b.to_str().unwrap(), c])?;
            let st = e.state_of(c)?;
            ensure(st["status"] == "created", || format!("the first container changed: {st}"))?;
            step(e, &["delete", c])
        } },
        LifeCase { name: "delete_running_needs_force", section: "runtime.md#delete (MUST generate an error if not stopped)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sleep", "1000"]);
            create(e, c)?;
            step(e, &["start", c])?;
            refused(e, &["delete", c])?;
            let st = e.state_of(c)?;
            ensure(st["status"] == "running", || format!("after a refused delete: {st}"))?;
            step(e, &["delete", "--force", c])?;
            refused(e, &["state", c]).map(|_| ())
        } },
        LifeCase { name: "kill_stopped_fails", section: "runtime.md#kill (MUST generate an error if not created or running)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["true"]);
            create(e, c)?;
            step(e, &["start", c])?;
            e.wait_status(c, "stopped")?;
            let o = refused(e, &["kill", c, "KILL"])?;
            ensure(o.stderr.contains("container not running"), || format!("runc's message is \"container not running\": {}", o.dump()))?;
            step(e, &["delete", c])
        } },
        LifeCase { name: "kill_delivers_the_signal", section: "runtime.md#kill", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done"]);
            let out = create(e, c)?;
            step(e, &["start", c])?;
            e.wait_output(&out, "ready")?;
            step(e, &["kill", c, "TERM"])?;
            e.wait_status(c, "stopped")?;
            e.wait_output(&out, "got TERM")?;
            step(e, &["delete", c])
        } },
        LifeCase { name: "run_exit_status", section: "runtime.md (runc run returns the process's status)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sh", "-c", "exit 42"]);
            let b = e.bundle();
            let o = e.cmd(&["run", "--bundle", b.to_str().unwrap(), c]);
            ensure(o.code == Some(42), || format!("run: {}", o.dump()))
        } },
        LifeCase { name: "hooks_order", section: "config.md#posix-platform hooks; runtime.md#lifecycle", run: |e| {
            let c = e.id.as_str();
            // The hook log's folder is bind-mounted at the same path inside, for the
            // hooks that run in the container's mount namespace.
            let h = e.host();
            let hooks = json!({
                "prestart": [hook(e, "prestart")],
                "createRuntime": [hook(e, "createRuntime")],
                "createContainer": [hook(e, "createContainer")],
                "startContainer": [hook(e, "startContainer")],
                "poststart": [hook(e, "poststart")],
                "poststop": [hook(e, "poststop")],
            });
            e.edit(|c| {
                c["root"]["readonly"] = json!(false);
                c["hooks"] = hooks;
                c["mounts"].as_array_mut().unwrap().push(json!({ "destination": h, "type": "bind", "source": h, "options": ["rbind", "rw"] }));
                c["process"]["args"] = json!(["sleep", "1000"]);
            });
            create(e, c)?;
            step(e, &["start", c])?;
            step(e, &["kill", c, "KILL"])?;
            e.wait_status(c, "stopped")?;
            step(e, &["delete", c])?;
            let log = std::fs::read_to_string(h.join("hooks.log")).unwrap_or_default();
            let got: Vec<&str> = log.lines().collect();
            // The spec orders all six, but runc runs startContainer (in its init, just
            // before exec) and poststart (in `runc start`) concurrently: that pair is not
            // compared.
            let pos = |s: &str| got.iter().position(|g| *g == s);
            let order = ["prestart", "createRuntime", "createContainer", "startContainer", "poststop"];
            let order2 = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"];
            let ordered = |o: &[&str]| o.iter().map(|s| pos(s)).collect::<Option<Vec<_>>>().is_some_and(|v| v.windows(2).all(|w| w[0] < w[1]));
            ensure(got.len() == 6 && ordered(&order) && ordered(&order2), || format!("hooks ran as {got:?}"))
        } },
        LifeCase { name: "hooks_get_the_state", section: "config.md#posix-platform hooks (state on stdin)", run: |e| {
            let c = e.id.as_str();
            let h = e.host();
            let hooks = json!({ "prestart": [hook(e, "prestart")], "createRuntime": [hook(e, "createRuntime")], "poststart": [hook(e, "poststart")] });
            e.edit(|c| {
                c["hooks"] = hooks;
                c["process"]["args"] = json!(["sleep", "1000"]);
            });
            create(e, c)?;
            step(e, &["start", c])?;
            for stage in ["prestart", "createRuntime", "poststart"] {
                let text = std::fs::read_to_string(h.join(format!("{stage}.json"))).map_err(|err| format!("{stage}: {err}"))?;
                let st: Value = serde_json::from_str(&text).map_err(|err| format!("{stage} state: {err}: {text}"))?;
                ensure(st["id"] == c && st["pid"].as_i64().unwrap_or(0) > 0 && st["bundle"] == e.bundle().to_str().unwrap(), || {
                    format!("{stage} got {st}")
                })?;
            }
            step(e, &["delete", "--force", c])
        } },
        LifeCase { name: "prestart_hook_failure_fails_create", section: "config.md#prestart (failure: error, container stopped)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sh", "-c", "echo ran"]);
            e.edit(|c| c["hooks"] = json!({ "prestart": [{ "path": "/bin/false", "args": ["false"] }] }));
            let b = e.bundle();
            let (o, out) = e.run(&["create", "--bundle", b.to_str().unwrap(), c]);
            ensure(!o.ok(), || format!("create should fail: {}", o.dump()))?;
            let _ = e.cmd(&["delete", "--force", c]);
            let ran = std::fs::read_to_string(out).unwrap_or_default();
            ensure(!ran.contains("ran"), || "the process ran".to_string())
        } },
        LifeCase { name: "kill_created_container", section: "runtime.md#kill (a created container may be killed)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sh", "-c", "echo ran"]);
            let out = create(e, c)?;
            step(e, &["kill", c, "KILL"])?;
            e.wait_status(c, "stopped")?;
            step(e, &["delete", c])?;
            let ran = std::fs::read_to_string(out).unwrap_or_default();
            ensure(ran.is_empty(), || format!("the process ran: {ran:?}"))
        } },
        LifeCase { name: "delete_created_container", section: "runtime.md#delete (runc: a created container is deleted)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sh", "-c", "echo ran"]);
            let out = create(e, c)?;
            step(e, &["delete", c])?;
            refused(e, &["state", c])?;
            let ran = std::fs::read_to_string(out).unwrap_or_default();
            ensure(ran.is_empty(), || format!("the process ran: {ran:?}"))
        } },
        LifeCase { name: "pid_file_and_state_pid", section: "runtime.md#state pid (the process as the host sees it)", run: |e| {
            let c = e.id.as_str();
            set_args(e, &["sleep", "1000"]);
            let b = e.bundle();
            let pf = e.tmp.path().join("pid");
            step(e, &["create", "--bundle", b.to_str().unwrap(), "--pid-file", pf.to_str().unwrap(), c])?;
            let pid: i64 = std::fs::read_to_string(&pf).map_err(|err| format!("pid file: {err}"))?.trim().parse().map_err(|err| format!("pid file: {err}"))?;
            let st = e.state_of(c)?;
            ensure(st["pid"] == pid, || format!("pid file {pid}, state {st}"))?;
            ensure(Path::new(&format!("/proc/{pid}")).exists(), || format!("no host process {pid}"))?;
            step(e, &["delete", "--force", c])
        } },
        LifeCase { name: "hook_args_env_and_timeout", section: "config.md#posix-platform hooks (args, env, timeout)", run: |e| {
            let c = e.id.as_str();
            let log = e.host().join("hook.env");
            let script = format!("echo \"$0 $HOOK_X $PATH\" > {}", log.display());
            e.edit(|c| c["hooks"] = json!({ "prestart": [{ "path": "/bin/sh", "args": ["hooksh", "-c", script], "env": ["HOOK_X=x 1", "PATH=/hookpath"], "timeout": 30 }] }));
            set_args(e, &["true"]);
            create(e, c)?;
            let got = std::fs::read_to_string(&log).map_err(|err| format!("hook output: {err}"))?;
            ensure(got == "hooksh x 1 /hookpath\n", || format!("hook saw {got:?}"))?;
            step(e, &["delete", "--force", c])?;
            // A hook that outlives its timeout fails the create.
            e.edit(|c| c["hooks"] = json!({ "prestart": [{ "path": "/bin/sh", "args": ["sh", "-c", "exec sleep 100"], "timeout": 1 }] }));
            create_fails(e)
        } },
        LifeCase { name: "rlimit_unknown_type_fails", section: "config.md#process rlimits (MUST error on unmappable values)", run: |e| {
            e.edit(|c| c["process"]["rlimits"] = json!([{ "type": "RLIMIT_BOGUS", "soft": 1, "hard": 1 }]));
            create_fails(e)
        } },
        LifeCase { name: "namespace_unknown_type_fails", section: "config-linux.md#namespaces (MUST error on an unsupported type)", run: |e| {
            e.edit(|c| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "bogus" })));
            create_fails(e)
        } },
        LifeCase { name: "root_path_missing_fails", section: "config.md#root path", run: |e| {
            e.edit(|c| c["root"]["path"] = json!("no-such-rootfs"));
            create_fails(e)
        } },
        LifeCase { name: "process_args_empty_fails", section: "config.md#process args (at least one entry)", run: |e| {
            set_args(e, &[]);
            create_fails(e)
        } },
        LifeCase { name: "state_of_unknown_fails", section: "runtime.md#query state (MUST generate an error if absent)", run: |e| {
            refused(e, &["state", "nope"]).map(|_| ())
        } },
    ]
}

// ---------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------

/// Case names listed in the known-differences file (`- \`name\`: reason` lines).
fn known_differences() -> Vec<String> {
    let text = std::fs::read_to_string(KNOWN).unwrap_or_else(|e| panic!("{KNOWN}: {e}"));
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(String::from)
        .collect()
}

struct Outcome {
    name: &'static str,
    section: &'static str,
    runc: Option<Result<(), String>>,
    rvisor: Result<(), String>,
}

#[test]
fn oci_conformance_against_runc_and_rvisor() {
    rvisor_tests::require_busybox();
    let have_runc = runc_bin().is_some();
    if !have_runc {
        eprintln!("oci conformance: runc is not installed; rvisor's results are printed, nothing compared");
    }
    type Job = (&'static str, &'static str, Box<dyn Fn(Rt) -> Result<(), String> + Send + Sync>);
    let mut jobs: Vec<Job> = Vec::new();
    for c in config_cases() {
        let (name, section) = (c.name, c.section);
        jobs.push((name, section, Box::new(move |rt| run_config_case(&c, rt))));
    }
    for c in life_cases() {
        let (name, section, f) = (c.name, c.section, c.run);
        jobs.push((name, section, Box::new(move |rt| f(&Env::new(rt)))));
    }
    let only = std::env::var("OCI_CASE").ok();
    jobs.retain(|j| only.as_deref().is_none_or(|o| j.0.contains(o)));

    let next = AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, section, f)) = jobs.get(i) else { break };
                let runc = have_runc.then(|| f(Rt::Runc));
                let rvisor = f(Rt::Rvisor);
                results.lock().unwrap().push((i, Outcome { name, section, runc, rvisor }));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);

    let known = known_differences();
    let (mut runc_passes, mut rv_passes, mut known_hit) = (0, 0, 0);
    let mut regressions = Vec::new();
    for (_, r) in &results {
        let runc_ok = matches!(r.runc, Some(Ok(())));
        let rv_ok = r.rvisor.is_ok();
        runc_passes += runc_ok as usize;
        rv_passes += rv_ok as usize;
        let listed = known.iter().any(|k| k == r.name);
        let mark = match (&r.runc, rv_ok) {
            (_, true) if listed => "pass (listed as a known difference: remove it)",
            (_, true) => "pass",
            (Some(Ok(())), false) if listed => "KNOWN DIFFERENCE",
            (Some(Ok(())), false) => "FAIL",
            _ => "fail (runc fails too)",
        };
        if runc_ok && !rv_ok {
            if listed {
                known_hit += 1;
            } else {
                regressions.push(r.name);
            }
        }
        let runc_s = match &r.runc {
            None => "n/a".to_string(),
            Some(Ok(())) => "ok".to_string(),
            Some(Err(e)) => format!("FAIL {e}"),
        };
        eprintln!("{:<38} {:<60} runc: {runc_s}", r.name, r.section);
        match &r.rvisor {
            Ok(()) => eprintln!("{:<38} rvisor: {mark}", ""),
            Err(e) => eprintln!("{:<38} rvisor: {mark}: {e}", ""),
        }
    }
    let summary = format!(
        "oci conformance: {} cases, runc passes {runc_passes}, rvisor passes {rv_passes}, known differences {known_hit}",
        results.len()
    );
    eprintln!("{summary}");
    println!("{summary}");
    assert!(
        regressions.is_empty(),
        "cases runc passes but rvisor fails, not listed in tests/oci-known-differences.md: {regressions:?}"
    );
}
