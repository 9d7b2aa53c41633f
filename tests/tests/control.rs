//! The sandbox's control socket (`rvisor boot --control-socket`), driven directly: a
//! created sandbox waits for Start; Exec, Wait, Signal, Ps and Stats behave as the OCI CLI
//! needs; malformed requests get an Error answer, never a crash.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use rvisor_tests::rvisor_bin;
use serde_json::{json, Value};

/// A close-on-exec socketpair (children get only what [`inherit`] hands them).
fn inheritable_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a live array of two ints for the kernel to fill.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0, "socketpair");
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Makes `cmd` keep `fds` across exec (everything else stays close-on-exec, so parallel
/// tests do not leak descriptors into each other's sandboxes).
fn inherit(cmd: &mut Command, fds: &[i32]) {
    use std::os::unix::process::CommandExt;
    let fds = fds.to_vec();
    // SAFETY: the closure only calls fcntl, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

struct Sandbox {
    boot: Child,
    gofer: Child,
    sock: std::path::PathBuf,
    _dir: TempDir,
}

/// A test that fails midway must not leave the sandbox waiting for Start: it holds the test
/// runner's output pipe and the whole run would never end.
impl Drop for Sandbox {
    fn drop(&mut self) {
        for c in [&mut self.boot, &mut self.gofer] {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts gofer + sandbox over the host root with `args` as init, held until Start.
fn start_sandbox(args: &[&str], extra: Value) -> Sandbox {
    // One directory per sandbox: tests run in parallel, and a finished test removes its own.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rvisor-control-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("control.sock");
    // SAFETY: a plain open of a constant path; the fd is owned below.
    let root = unsafe { libc::open(c"/".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    assert!(root >= 0);
    // SAFETY: just opened, owned by nobody else.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    let (sentry_end, gofer_end) = inheritable_pair();
    let mut gofer = Command::new(rvisor_bin());
    gofer.arg("gofer").arg(format!("--root-fd={}", root.as_raw_fd())).arg(format!("--sock-fd={}", gofer_end.as_raw_fd())).arg("--read-only").stdin(Stdio::null());
    inherit(&mut gofer, &[root.as_raw_fd(), gofer_end.as_raw_fd()]);
    let gofer = gofer.spawn().expect("gofer");
    drop(gofer_end);
    drop(root);
    let mut ready = [0i32; 2];
    // SAFETY: `ready` is a live array of two ints.
    assert_eq!(unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: just created, owned by nobody else.
    let (ready_r, ready_w) = unsafe { (OwnedFd::from_raw_fd(ready[0]), OwnedFd::from_raw_fd(ready[1])) };
    let mut spec = json!({
        "args": args, "env": ["PATH=/usr/bin:/bin"], "cwd": "/", "uid": 0, "gid": 0,
        "hostname": "ctl", "kernel_release": "6.6.0-rvisor", "root_read_only": false,
        "overlay": true, "wait_for_start": true, "pids_limit": 64,
    });
    if let (Some(s), Value::Object(e)) = (spec.as_object_mut(), extra) {
        s.extend(e);
    }
    let mut boot = Command::new(rvisor_bin());
    boot.arg("boot")
        .arg(format!("--gofer-fd={}", sentry_end.as_raw_fd()))
        .arg(format!("--spec={spec}"))
        .arg(format!("--control-socket={}", sock.display()))
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    inherit(&mut boot, &[sentry_end.as_raw_fd(), ready_w.as_raw_fd()]);
    let boot = boot.spawn().expect("boot");
    drop(sentry_end);
    drop(ready_w);
    let mut byte = Vec::new();
    std::fs::File::from(ready_r).read_to_end(&mut byte).unwrap();
    assert_eq!(byte, vec![0u8], "ready fd: {}", String::from_utf8_lossy(&byte));
    Sandbox { boot, gofer, sock, _dir: TempDir(dir) }
}

fn send_raw(s: &mut UnixStream, body: &[u8]) -> Value {
    s.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut resp).unwrap();
    serde_json::from_slice(&resp).unwrap()
}

fn call(s: &mut UnixStream, req: Value) -> Value {
    send_raw(s, req.to_string().as_bytes())
}

#[test]
fn control_socket_runs_the_container_lifecycle() {
    let mut sb = start_sandbox(&["sleep", "1000"], json!({}));
    let mut c = UnixStream::connect(&sb.sock).unwrap();

    // Malformed requests are answered with an error and the connection stays usable.
    let r = send_raw(&mut c, b"{not json");
    assert!(r.get("Error").is_some(), "{r}");
    let r = call(&mut c, json!({"Wait": {"pid": "one"}}));
    assert!(r.get("Error").is_some(), "{r}");

    assert_eq!(call(&mut c, json!("Start")), json!("Ok"));
    let again = call(&mut c, json!("Start"));
    assert!(again.get("Error").is_some(), "second start: {again}");

    // Exec: a new process; Wait reports its status as waitpid does.
    let r = call(&mut c, json!({"Exec": {"process": {"args": ["sh", "-c", "exit 5"], "env": ["PATH=/bin:/usr/bin"], "cwd": "/"}}}));
    let pid = r["Pid"].as_i64().unwrap_or_else(|| panic!("exec: {r}"));
    assert!(pid > 1);
    assert_eq!(call(&mut c, json!({"Wait": {"pid": pid}})), json!({"Exited": {"status": 5 << 8}}));

    // A program that does not exist: ENOENT.
    let r = call(&mut c, json!({"Exec": {"process": {"args": ["/no/such/program"], "cwd": "/"}}}));
    assert_eq!(r["Error"]["errno"], json!(libc::ENOENT), "{r}");

    let r = call(&mut c, json!("Ps"));
    let procs = r["Processes"].as_array().unwrap_or_else(|| panic!("ps: {r}"));
    assert!(procs.iter().any(|p| p["pid"] == json!(1) && p["cmd"] == json!("sleep 1000") && p["ppid"] == json!(0)), "{r}");

    let r = call(&mut c, json!("Stats"));
    assert!(r["Stats"]["pids"].as_u64().unwrap_or(0) >= 1, "{r}");
    assert!(r["Stats"]["memory_bytes"].as_u64().unwrap_or(0) > 0, "{r}");

    assert_eq!(call(&mut c, json!("Pause")), json!("Ok"));
    assert_eq!(call(&mut c, json!("Resume")), json!("Ok"));

    let r = call(&mut c, json!({"Signal": {"pid": 4242, "signal": 15, "all": false}}));
    assert_eq!(r["Error"]["errno"], json!(libc::ESRCH), "{r}");

    // SIGKILL from outside always reaches init; the sandbox exits as init did.
    assert_eq!(call(&mut c, json!({"Signal": {"pid": 0, "signal": 9, "all": false}})), json!("Ok"));
    assert_eq!(call(&mut c, json!({"Wait": {"pid": 1}})), json!({"Exited": {"status": 9}}));
    let st = sb.boot.wait().unwrap();
    assert_eq!(st.code(), Some(128 + 9));
    let _ = sb.gofer.wait();
}

#[test]
fn init_held_until_start_can_be_killed() {
    let mut sb = start_sandbox(&["sh", "-c", "exit 3"], json!({}));
    let mut c = UnixStream::connect(&sb.sock).unwrap();
    assert_eq!(call(&mut c, json!({"Signal": {"pid": 0, "signal": 9, "all": true}})), json!("Ok"));
    let st = sb.boot.wait().unwrap();
    assert_eq!(st.code(), Some(137), "killed before start, init never ran");
    let _ = sb.gofer.wait();
}

#[test]
fn spec_mounts_masks_and_cgroup_limits_are_applied() {
    let script = "touch /mnt/t/f || exit 1; [ -f /mnt/t/f ] || exit 2; [ -s /etc/hostname ] && exit 3; \
                  grep -qx 64 /sys/fs/cgroup/pids.max || exit 4; grep -qx max /sys/fs/cgroup/memory.max || exit 5; exit 42";
    let mut sb = start_sandbox(
        &["sh", "-c", script],
        json!({
            "mounts": [
                {"destination": "/mnt/t", "kind": "Tmpfs", "options": ["nosuid", "mode=755", "size=1m"]},
                {"destination": "/sys/fs/cgroup", "kind": "Cgroup", "options": ["ro"]}
            ],
            "masked_paths": ["/etc/hostname"]
        }),
    );
    let mut c = UnixStream::connect(&sb.sock).unwrap();
    assert_eq!(call(&mut c, json!("Start")), json!("Ok"));
    assert_eq!(call(&mut c, json!({"Wait": {"pid": 0}})), json!({"Exited": {"status": 42 << 8}}));
    assert_eq!(sb.boot.wait().unwrap().code(), Some(42));
    let _ = sb.gofer.wait();
}
