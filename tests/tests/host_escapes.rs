//! A hostile guest's escape attempts (issue 8, acceptance 1), checked on the host.
//!
//! `c/host_escapes.c` tries, each in a forked child, the host-only syscalls (ptrace of the
//! sandbox's host pid, kexec, modules, mounts, reboot, swap, namespaces, file handles, port
//! I/O, perf, BPF, keys, userfaultfd, process_vm_*, kill, unknown numbers), the legacy entries
//! (`int 0x80`, `sysenter`, the vsyscall page) and the host's sensitive files (/proc/PID/mem
//! of the sandbox, sysrq, core_pattern, /dev/mem, /dev/kmsg, /sys/kernel, /sys/fs/cgroup, a
//! block device node of the host's disk). The test compares every outcome with the table
//! below (the errno Linux-in-a-container or gVisor gives, or the signal that ends only the
//! attempting process) and then looks at the host: nothing traced, mounted, loaded, written
//! or killed, no BPF/perf/userfaultfd object held by the sandbox's processes.
//!
//! The program is never run natively: as root on the host most attempts would succeed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rvisor_tests::oci::Bundle;
use rvisor_tests::{process_tree, HostProcess};

const PROG: &str = env!("RVISOR_TEST_PROG_HOST_ESCAPES");

const ENOSYS_EPERM: &[&str] = &["ENOSYS", "EPERM"];
/// Host files the guest may not reach: absent from the sandbox, or refused.
const REFUSED_FILE: &[&str] = &["ENOENT", "EACCES", "EPERM", "EROFS"];

/// Every attempt and the outcomes that are fine for it.
const EXPECTED: &[(&str, &[&str])] = &[
    // Raw host-only syscalls.
    (
        "ptrace(PTRACE_ATTACH, sentry host pid)",
        &["ENOSYS", "EPERM", "ESRCH"],
    ),
    (
        "ptrace(PTRACE_SEIZE, sentry host pid)",
        &["ENOSYS", "EPERM", "ESRCH"],
    ),
    ("ptrace(PTRACE_ATTACH, 1)", ENOSYS_EPERM),
    ("ptrace(PTRACE_SEIZE, 1)", ENOSYS_EPERM),
    ("kexec_load", ENOSYS_EPERM),
    ("kexec_file_load", &["ENOSYS", "EPERM", "EBADF"]),
    ("init_module", ENOSYS_EPERM),
    ("finit_module", ENOSYS_EPERM),
    ("delete_module", ENOSYS_EPERM),
    // Mounts are the sandbox's own (the guest may hold CAP_SYS_ADMIN in it): a bind of "/"
    // shows the guest's root, proc has no host pids, sysfs no host knobs.
    (
        "mount / MS_BIND|MS_REC",
        &["bound the guest's root", "EPERM"],
    ),
    ("mount proc", &["mounted, no host pid", "EPERM"]),
    ("mount sysfs", &["mounted, no uevent_helper", "EPERM"]),
    ("reboot(CAD_OFF)", ENOSYS_EPERM),
    ("swapon", &["ENOSYS", "EPERM", "ENOENT"]),
    ("swapoff", &["ENOSYS", "EPERM", "ENOENT"]),
    ("pivot_root", &["ENOSYS", "EPERM", "EINVAL"]),
    (
        "unshare(CLONE_NEWUSER|CLONE_NEWNET)",
        &["ENOSYS", "EPERM", "EINVAL"],
    ),
    (
        "setns(/proc/1/ns/net)",
        &["ENOENT", "ENOSYS", "EPERM", "EINVAL"],
    ),
    ("open_by_handle_at", &["ENOSYS", "EPERM", "EOPNOTSUPP"]),
    ("name_to_handle_at", &["ENOSYS", "EPERM", "EOPNOTSUPP"]),
    ("iopl(3)", ENOSYS_EPERM),
    ("ioperm", ENOSYS_EPERM),
    (
        "perf_event_open",
        &["ENOSYS", "EPERM", "EACCES", "ENOENT", "ENODEV"],
    ),
    ("bpf(BPF_PROG_LOAD)", ENOSYS_EPERM),
    ("bpf(BPF_MAP_CREATE)", ENOSYS_EPERM),
    ("add_key", ENOSYS_EPERM),
    ("keyctl", ENOSYS_EPERM),
    ("userfaultfd", ENOSYS_EPERM),
    ("process_vm_readv(1)", ENOSYS_EPERM),
    ("process_vm_writev(1)", ENOSYS_EPERM),
    (
        "process_vm_readv(sentry host pid)",
        &["ENOSYS", "EPERM", "ESRCH"],
    ),
    (
        "process_vm_writev(sentry host pid)",
        &["ENOSYS", "EPERM", "ESRCH"],
    ),
    ("kill(sentry host pid, SIGKILL)", &["ESRCH"]),
    ("kcmp(sentry host pid)", &["ENOSYS", "EPERM", "ESRCH"]),
    ("pidfd_open(sentry host pid)", &["ENOSYS", "ESRCH"]),
    ("modify_ldt", &["ENOSYS", "EPERM", "EINVAL"]),
    ("set_thread_area", &["ENOSYS", "EPERM", "EINVAL"]),
    ("clock_settime(CLOCK_REALTIME)", ENOSYS_EPERM),
    ("syslog(READ_ALL)", ENOSYS_EPERM),
    ("fsopen(proc)", ENOSYS_EPERM),
    ("open_tree(/, CLONE)", ENOSYS_EPERM),
    ("fanotify_init", ENOSYS_EPERM),
    ("acct", ENOSYS_EPERM),
    (
        "quotactl",
        &["ENOSYS", "EPERM", "EINVAL", "ENOTBLK", "ENODEV"],
    ),
    ("vhangup", ENOSYS_EPERM),
    ("syscall 451", &["ENOSYS"]),
    ("syscall 512", &["ENOSYS"]),
    ("syscall 1000", &["ENOSYS"]),
    ("syscall x32 write", &["ENOSYS"]),
    ("syscall -1", &["ENOSYS"]),
    ("syscall 0x7fffffff", &["ENOSYS"]),
    // Legacy entries: the i386 table is not emulated (ENOSYS; a write would have printed a
    // line of its own), sysenter does not come back, the vsyscall page is not executed on
    // the host (a trapped call ends the caller; a non-entry address faults).
    ("int 0x80 write", &["ENOSYS"]),
    ("int 0x80 getpid", &["ENOSYS"]),
    ("int 0x80 exit(42)", &["ENOSYS"]),
    (
        "sysenter getpid",
        &["killed by SIGSEGV", "killed by SIGILL"],
    ),
    (
        "vsyscall gettimeofday",
        &["killed by SIGSYS", "killed by SIGSEGV", "ok"],
    ),
    (
        "vsyscall time",
        &["killed by SIGSYS", "killed by SIGSEGV", "ok"],
    ),
    ("vsyscall non-entry address", &["killed by SIGSEGV"]),
    // Host files.
    ("open /proc/HOSTPID/mem", &["ENOENT", "ESRCH"]),
    ("open /proc/HOSTPID/root/etc/shadow", &["ENOENT", "ESRCH"]),
    ("open /proc/HOSTPID/environ", &["ENOENT", "ESRCH"]),
    ("/proc/1/root/proc/1/root/..", &["the guest's root"]),
    ("write /proc/sysrq-trigger", REFUSED_FILE),
    ("write /proc/sys/kernel/core_pattern", REFUSED_FILE),
    ("write /proc/sys/kernel/modprobe", REFUSED_FILE),
    ("read /proc/kcore", REFUSED_FILE),
    ("read /dev/mem", REFUSED_FILE),
    ("read /dev/kmem", REFUSED_FILE),
    ("read /dev/port", REFUSED_FILE),
    ("read /dev/kmsg", REFUSED_FILE),
    ("write /dev/kmsg", REFUSED_FILE),
    ("write /sys/kernel/uevent_helper", REFUSED_FILE),
    ("read /sys/kernel/kexec_loaded", REFUSED_FILE),
    (
        "write /sys/kernel/mm/transparent_hugepage/enabled",
        REFUSED_FILE,
    ),
    ("write /sys/fs/cgroup/cgroup.procs", REFUSED_FILE),
    ("write /sys/fs/cgroup/cgroup.subtree_control", REFUSED_FILE),
    ("write /sys/fs/cgroup/release_agent", REFUSED_FILE),
    ("create /sys/fs/cgroup/rvisor-escape-file", REFUSED_FILE),
    ("mkdir /sys/fs/cgroup/rvisor-escape-dir", REFUSED_FILE),
    // Device nodes: refused at mknod or at open (a container's device cgroup).
    (
        "mknod /tmp block 8:0 and read",
        &["EPERM", "EACCES", "ENXIO"],
    ),
    (
        "mknod /dev block 8:0 and read",
        &["EPERM", "EACCES", "ENXIO"],
    ),
    (
        "mknod /tmp char 1:1 and read",
        &["EPERM", "EACCES", "ENXIO"],
    ),
];

/// The sections of the program that every sandbox runs (`nodes` needs a prepared root).
const SECTIONS: &[&str] = &["syscalls", "legacy", "files"];

/// Device nodes in the container's own root (as an image could hold them) do not open the
/// host's devices.
const EXPECTED_NODES: &[(&str, &[&str])] = &[
    ("read the root's disk node", &["EACCES", "EPERM", "ENXIO"]),
    (
        "write the root's disk node",
        &["EACCES", "EPERM", "ENXIO", "EROFS"],
    ),
    ("read the root's mem node", &["EACCES", "EPERM", "ENXIO"]),
    ("read the root's kmsg node", &["EACCES", "EPERM", "ENXIO"]),
    (
        "write the root's kmsg node",
        &["EACCES", "EPERM", "ENXIO", "EROFS"],
    ),
];

/// Host files the attempts would change if they reached the host.
const WATCHED_FILES: &[&str] = &[
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/kernel/ctrl-alt-del",
    "/proc/sys/kernel/kexec_load_disabled",
    "/proc/swaps",
    "/proc/1/cgroup",
    "/sys/kernel/uevent_helper",
    "/sys/kernel/kexec_loaded",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/fs/cgroup/cgroup.subtree_control",
    "/sys/fs/cgroup/release_agent",
];

/// Host paths the attempts would create if they reached the host.
const WATCHED_PATHS: &[&str] = &[
    "/sys/fs/cgroup/rvisor-escape-file",
    "/sys/fs/cgroup/rvisor-escape-dir",
    "/tmp/rvisor-escape-sda",
    "/tmp/rvisor-escape-mem",
    "/dev/rvisor-escape-sda",
    "/tmp/rvisor-escape-mnt",
    "/tmp/rvisor-escape-proc",
    "/tmp/rvisor-escape-sys",
    "/tmp/rvisor-escape-old",
    "/tmp/rvisor-escape-core",
    "/tmp/rvisor-escape-acct",
];

/// What the attempts could change on the host, read before and after a run.
#[derive(Debug, PartialEq)]
struct HostState {
    /// Module names (refcounts change on their own), if the kernel has modules.
    modules: Option<BTreeSet<String>>,
    files: BTreeMap<&'static str, Option<Vec<u8>>>,
    paths: BTreeMap<&'static str, bool>,
}

impl HostState {
    fn read() -> HostState {
        HostState {
            modules: std::fs::read_to_string("/proc/modules").ok().map(|m| {
                m.lines()
                    .filter_map(|l| l.split(' ').next())
                    .map(str::to_string)
                    .collect()
            }),
            files: WATCHED_FILES
                .iter()
                .map(|f| (*f, std::fs::read(f).ok()))
                .collect(),
            paths: WATCHED_PATHS
                .iter()
                .map(|p| (*p, Path::new(p).symlink_metadata().is_ok()))
                .collect(),
        }
    }
}

impl HostState {
    /// What differs in `after`: changed modules or files, paths that appeared.
    fn changes_to(&self, after: &HostState) -> Vec<String> {
        let mut changes = Vec::new();
        if after.modules != self.modules {
            changes.push(format!(
                "modules changed: {:?} -> {:?}",
                self.modules, after.modules
            ));
        }
        for (f, old) in &self.files {
            let new = after.files.get(f).cloned().flatten();
            if new != *old {
                changes.push(format!(
                    "host file {f} changed: {:?} -> {:?}",
                    old.as_deref().map(String::from_utf8_lossy),
                    new.as_deref().map(String::from_utf8_lossy)
                ));
            }
        }
        for (p, existed) in &self.paths {
            if !existed && after.paths.get(p) == Some(&true) {
                changes.push(format!("host path {p} appeared"));
            }
        }
        changes
    }
}

fn mountinfo() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("reading /proc/self/mountinfo")
        .lines()
        .map(str::to_string)
        .collect()
}

/// New host mounts that an escape could have made: proc, sysfs or cgroup file systems, or
/// anything at the attempts' mount points. (Other tests running at the same time may add
/// unrelated mounts, e.g. network namespaces.)
fn suspicious_new_mounts(before: &BTreeSet<String>, after: &BTreeSet<String>) -> Vec<String> {
    after
        .difference(before)
        .filter(|l| {
            let fstype = l
                .split(" - ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap_or("");
            let mount_point = l.split(' ').nth(4).unwrap_or("");
            l.contains("rvisor-escape")
                || mount_point == "/mnt"
                || matches!(fstype, "proc" | "sysfs" | "cgroup" | "cgroup2")
        })
        .cloned()
        .collect()
}

fn tracer_pid(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .unwrap_or_else(|| panic!("no TracerPid in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Where each fd of `pid` points (`anon_inode:bpf-prog`, `/dev/null`, ...).
fn fd_targets(pid: i32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// Whether the host's kernel log holds `marker` (`None` if /dev/kmsg cannot be read here).
fn kmsg_contains(marker: &str) -> Option<bool> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut found = false;
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => found |= String::from_utf8_lossy(&buf[..n]).contains(marker),
            // EPIPE: a record was overwritten while reading; keep going.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    Some(found)
}

/// A sandboxed run of the program: stdout lines arrive on a channel.
struct Guest {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    what: String,
}

impl Guest {
    fn spawn(mut c: Command, what: String) -> Guest {
        c.current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Guest {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            what,
        }
    }

    /// Waits (bounded) for the line `want`; the lines before it are kept in `seen`.
    #[track_caller]
    fn wait_line(&mut self, want: &str) {
        let deadline = Instant::now() + rvisor_tests::timeout();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "{} did not print {want:?} ({e:?}); it printed:\n{}",
                    self.what,
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits (bounded) for the run's exit status.
    fn finish(&mut self) -> std::process::ExitStatus {
        self.stdin = None;
        let deadline = Instant::now() + rvisor_tests::timeout();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.what);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) of the process group this test started (process_group(0)).
            unsafe {
                libc::kill(-(self.child.id() as i32), libc::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }
}

/// Compares the attempts' outcomes with [`EXPECTED`]; every mismatch, missing attempt or
/// unexpected line goes in the returned report.
fn check_outcomes(lines: &[String], expected: &[(&str, &[&str])]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut outcomes: BTreeMap<&str, &str> = BTreeMap::new();
    for line in lines {
        if line.starts_with("== ") {
            continue;
        }
        match line.rsplit_once(": ") {
            Some((name, outcome)) if expected.iter().any(|(n, _)| *n == name) => {
                if outcomes.insert(name, outcome).is_some() {
                    problems.push(format!("{name}: reported twice"));
                }
            }
            _ => problems.push(format!("unexpected line: {line:?}")),
        }
    }
    for (name, allowed) in expected {
        match outcomes.get(name) {
            None => problems.push(format!("{name}: no outcome")),
            Some(o) if !allowed.contains(o) => {
                problems.push(format!("{name}: {o} (expected one of {allowed:?})"))
            }
            Some(_) => {}
        }
    }
    problems
}

/// Runs the attempts in `guest` (whose sandbox process is `boot`, found by `find_boot` once
/// the program is ready) and checks the outcomes and the host.
fn run_and_check(
    mut guest: Guest,
    expected: &[(&str, &[&str])],
    find_boot: impl FnOnce(&Guest) -> i32,
) {
    let before = HostState::read();
    let mounts_before = mountinfo();

    guest.wait_line("ready");
    let boot = find_boot(&guest);
    let boot_proc = HostProcess::read(boot).expect("the sandbox process");
    guest.send(&format!("{boot}\n"));
    guest.wait_line("done");

    // The sandbox is still running: look at its host processes.
    let mut problems = check_outcomes(&guest.seen, expected);
    assert!(boot_proc.is_alive(), "the sandbox process died");
    for pid in [boot, 1] {
        let tracer = tracer_pid(pid);
        if tracer != "0" {
            problems.push(format!("host pid {pid} is traced by {tracer}"));
        }
    }
    // The sandbox's processes: under the CLI (`do`) or under the sandbox process (`run`).
    let rvisor = guest.child.id() as i32;
    let procs: BTreeMap<i32, HostProcess> = process_tree(rvisor)
        .into_iter()
        .chain(process_tree(boot))
        .map(|p| (p.pid, p))
        .collect();
    for p in procs.values() {
        for target in fd_targets(p.pid) {
            if [
                "bpf",
                "perf_event",
                "userfaultfd",
                "/dev/mem",
                "/dev/kmsg",
                "/dev/sd",
                "/dev/port",
            ]
            .iter()
            .any(|k| target.contains(k))
            {
                problems.push(format!("{p} holds {target}"));
            }
        }
    }
    // The outcome table, for `--nocapture`.
    eprintln!("{}:\n{}", guest.what, guest.seen.join("\n"));
    let status = guest.finish();
    assert!(
        status.success(),
        "{} ended with {status:?} (the sandbox must survive every attempt)\n{}",
        guest.what,
        guest.seen.join("\n")
    );

    problems.extend(before.changes_to(&HostState::read()));
    let new_mounts = suspicious_new_mounts(&mounts_before, &mountinfo());
    if !new_mounts.is_empty() {
        problems.push(format!("new host mounts: {new_mounts:#?}"));
    }
    if kmsg_contains("rvisor-escape-kmsg-marker") == Some(true) {
        problems.push("the guest's line reached the host's kernel log".into());
    }
    if std::fs::read_to_string("/proc/keys").is_ok_and(|k| k.contains("rvisor-escape")) {
        problems.push("the guest's key is in the host's keyrings".into());
    }
    assert!(
        problems.is_empty(),
        "{}:\n{}\n--- the program printed:\n{}",
        guest.what,
        problems.join("\n"),
        guest.seen.join("\n")
    );
}

/// The host pid of the `rvisor boot` process under `rvisor` (the sandbox: the sentry).
fn boot_under(rvisor: i32) -> i32 {
    let tree = process_tree(rvisor);
    tree.iter()
        .find(|p| p.cmdline.split(' ').any(|w| w == "boot"))
        .unwrap_or_else(|| {
            panic!(
                "no `rvisor boot` process under {rvisor}:\n{}",
                rvisor_tests::describe_processes(&tree)
            )
        })
        .pid
}

#[test]
fn escape_attempts_from_rvisor_do_fail_and_leave_the_host_untouched() {
    let mut c = Command::new(rvisor_tests::rvisor_bin());
    c.args(["do", PROG]).args(SECTIONS);
    let guest = Guest::spawn(c, format!("`rvisor do {PROG}`"));
    run_and_check(guest, EXPECTED, |g| boot_under(g.child.id() as i32));
}

#[test]
fn escape_attempts_from_an_oci_container_fail_and_leave_the_host_untouched() {
    let mut args = vec!["/bin/host_escapes"];
    args.extend(SECTIONS);
    let b = Bundle::new("host-escapes", &args);
    std::fs::copy(PROG, b.rootfs().join("bin/host_escapes")).expect("copying the program");
    let id = format!("escapes-{}", std::process::id());
    let mut c = Command::new(rvisor_tests::rvisor_bin());
    c.arg(format!("--root={}", b.state_root().display())).args([
        "run",
        "--bundle",
        b.dir().to_str().unwrap(),
        &id,
    ]);
    let guest = Guest::spawn(c, format!("`rvisor run` of {PROG}"));
    run_and_check(guest, EXPECTED, |_| {
        b.state(&id)["pid"].as_i64().expect("a pid") as i32
    });
    assert!(
        b.leftovers().is_empty(),
        "state left behind: {:?}",
        b.leftovers()
    );
}

/// The host checks themselves notice what an escape would leave (on made-up states: the
/// real host is not changed to prove it).
#[test]
fn host_checks_notice_new_mounts_changed_files_and_new_paths() {
    let before = HostState::read();
    let mut after = HostState {
        modules: Some(BTreeSet::from(["evil".to_string()])),
        files: before.files.clone(),
        paths: before.paths.clone(),
    };
    after
        .files
        .insert("/proc/sys/kernel/core_pattern", Some(b"|/tmp/x".to_vec()));
    after.paths.insert("/sys/fs/cgroup/rvisor-escape-dir", true);
    let mut changes = before.changes_to(&after);
    changes.sort();
    assert_eq!(
        changes.len(),
        3 - usize::from(before.paths["/sys/fs/cgroup/rvisor-escape-dir"]),
        "{changes:#?}"
    );
    assert!(
        changes.iter().any(|c| c.contains("core_pattern")),
        "{changes:#?}"
    );
    assert!(
        changes.iter().any(|c| c.starts_with("modules changed")),
        "{changes:#?}"
    );

    let m = |lines: &[&str]| {
        lines
            .iter()
            .map(|l| l.to_string())
            .collect::<BTreeSet<String>>()
    };
    let base = ["22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw"];
    let netns = "40 22 0:4 net:[4026532] /run/netns/x rw shared:5 - nsfs nsfs rw";
    let proc_ = "41 22 0:50 / /tmp/p rw shared:6 - proc proc rw";
    let bind = "42 22 0:21 / /tmp/rvisor-escape-mnt rw shared:1 - ext4 /dev/vda1 rw";
    let found = suspicious_new_mounts(&m(&base), &m(&[base[0], netns, proc_, bind]));
    assert_eq!(found, vec![proc_.to_string(), bind.to_string()]);
}

/// The host's first disk as "major minor" (from /proc/partitions).
fn first_disk() -> (u32, u32) {
    let parts = std::fs::read_to_string("/proc/partitions").expect("/proc/partitions");
    parts
        .lines()
        .skip(2)
        .find_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .unwrap_or((8, 0))
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    assert_eq!(
        r,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

#[test]
fn device_nodes_in_the_containers_root_do_not_open_host_devices() {
    let tmp = rvisor_tests::TempDir::new("host-escapes-nodes");
    let root = tmp.path().join("root");
    for d in ["nodes", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(PROG, root.join("host_escapes")).expect("copying the program");
    let (major, minor) = first_disk();
    mknod(&root.join("nodes/disk"), libc::S_IFBLK, major, minor);
    mknod(&root.join("nodes/mem"), libc::S_IFCHR, 1, 1);
    mknod(&root.join("nodes/kmsg"), libc::S_IFCHR, 1, 11);
    for flags in [&[][..], &["--writable"][..], &["--read-only"][..]] {
        let mut c = Command::new(rvisor_tests::rvisor_bin());
        c.arg("do").args(flags).args([
            "--rootfs",
            root.to_str().unwrap(),
            "/host_escapes",
            "nodes",
        ]);
        let guest = Guest::spawn(c, format!("`rvisor do {flags:?} --rootfs ROOT` (nodes)"));
        run_and_check(guest, EXPECTED_NODES, |g| boot_under(g.child.id() as i32));
    }
}
