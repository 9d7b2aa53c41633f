//! Bad input at every boundary gives a clear error, never a crash:
//! - corrupt ELF headers, fuzzed (tests/c/bad_exec.c `elf`): each mutant's exec fails with
//!   an errno a bad binary deserves or the child runs or dies of a signal; the sentry lives on;
//! - oversized argv/envp: E2BIG exactly where Linux gives it (compared with native);
//! - malformed control-socket requests: an Error answer or a closed connection, and the
//!   container keeps working;
//! - config.json with hostile paths (`../../` destinations, a symlinked rootfs, a mount
//!   source symlinked outside the bundle): destinations stay inside the container, like runc,
//!   and no host file outside the bundle changes.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rvisor_tests::oci::Bundle;
use rvisor_tests::*;
use serde_json::{json, Value};

const BAD_EXEC: &str = env!("RVISOR_TEST_PROG_BAD_EXEC");

/// Seeds of the ELF mutation run (each makes `ELF_MUTANTS` mutants).
const ELF_SEEDS: &[&str] = &["1", "2", "3", "1234567"];
const ELF_MUTANTS: usize = 150;

#[test]
fn corrupt_elf_headers_fail_cleanly() {
    for seed in ELF_SEEDS {
        let n = ELF_MUTANTS.to_string();
        let o = run_rvisor_do(
            &[],
            &["--cwd", "/dev/shm"],
            &Cmd::new(BAD_EXEC).args(["elf", seed, &n, "/dev/shm"]),
        );
        assert!(!looks_like_panic(&o.stderr), "seed {seed}: {}", o.dump());
        o.assert_code(0);
        let out = o.stdout_str();
        let last = out.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("elf mutants: {n}, ")) && last.ends_with(", odd: 0"),
            "seed {seed}: {}",
            o.dump()
        );
    }
}

#[test]
fn oversized_argv_and_envp_give_e2big_like_linux() {
    let (native, _) = assert_same(&Cmd::new(BAD_EXEC).arg("argv"));
    let out = native.stdout_str();
    // The test is only meaningful if the limits were hit and the small cases ran.
    assert!(out.contains("arg of 131071 bytes: ran"), "{out}");
    assert!(
        out.contains("arg of 131072 bytes: Argument list too long"),
        "{out}"
    );
    assert!(
        out.contains("3000000 empty args: Argument list too long"),
        "{out}"
    );
}

/// A started container running `sleep 1000` and the path of its control socket.
fn running_container(name: &str) -> (Bundle, PathBuf) {
    let b = Bundle::new(name, &["sleep", "1000"]);
    b.create("c");
    b.rv(&["start", "c"]).assert_code(0);
    let sock = b.state_root().join("c").join("control.sock");
    assert!(sock.exists(), "no control socket at {}", sock.display());
    (b, sock)
}

/// Connects to `sock`, with a read timeout so that a hang fails the test.
fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// What the sandbox did with one malformed request.
#[derive(Debug)]
enum Answer {
    /// A framed reply (JSON).
    Reply(Value),
    /// The connection was closed (or reset) without a reply.
    Closed,
}

fn read_answer(s: &mut UnixStream, what: &str) -> Answer {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return Answer::Closed
        }
        Err(e) => panic!("{what}: no answer and no close (a hang?): {e}"),
    }
    let n = u32::from_le_bytes(len) as usize;
    assert!(n <= 1 << 20, "{what}: reply length {n}");
    let mut body = vec![0u8; n];
    s.read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{what}: truncated reply: {e}"));
    Answer::Reply(
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{what}: reply is not JSON: {e}")),
    )
}

/// Sends `bytes` (then shuts the write side if `close`) and checks the answer is an Error
/// reply or a closed connection.
fn expect_refused(sock: &Path, what: &str, bytes: &[u8], close: bool) {
    let mut s = connect(sock);
    // The sandbox may close on us mid-write (EPIPE): that is a refusal too.
    if s.write_all(bytes).is_err() {
        return;
    }
    if close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    match read_answer(&mut s, what) {
        Answer::Closed => {}
        Answer::Reply(v) => assert!(
            v.get("Error").is_some(),
            "{what}: expected an Error reply, got {v}"
        ),
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// Sends one framed JSON request with `fds` attached (SCM_RIGHTS); returns the answer.
fn call_with_fds(sock: &Path, req: &Value, fds: &[i32]) -> Answer {
    use std::os::fd::AsRawFd;
    let mut s = connect(sock);
    let bytes = frame(req.to_string().as_bytes());
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let payload = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8).max(1)];
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` bytes, enough for one header carrying
        // `fds`; CMSG_FIRSTHDR/CMSG_DATA stay inside that buffer.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(payload) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr() as *const u8,
                libc::CMSG_DATA(c),
                payload as usize,
            );
        }
    }
    // SAFETY: `msg` points at live buffers (`bytes`, `cbuf`) for the duration of the call.
    let r = unsafe { libc::sendmsg(s.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if r < 0 {
        return Answer::Closed;
    }
    read_answer(&mut s, &req.to_string())
}

#[test]
fn malformed_control_requests_are_refused_and_the_container_keeps_working() {
    let (b, sock) = running_container("badctl");

    // Framing.
    expect_refused(&sock, "HTTP garbage", b"GET / HTTP/1.0\r\n\r\n", true);
    expect_refused(&sock, "truncated length prefix", &[7, 0], true);
    expect_refused(&sock, "u32::MAX length", &u32::MAX.to_le_bytes(), false);
    expect_refused(
        &sock,
        "length just over the limit",
        &((1u32 << 20) + 1).to_le_bytes(),
        false,
    );
    let mut short = 100u32.to_le_bytes().to_vec();
    short.extend_from_slice(b"{\"Ps\":");
    expect_refused(&sock, "body shorter than its length", &short, true);
    // Bodies.
    for (what, body) in [
        ("empty body", &b""[..]),
        ("invalid JSON", b"{\"Exec\": {\"process\": "),
        ("not UTF-8", b"\xff\xfe\x00\x01"),
        ("unknown kind", b"{\"Frobnicate\":{}}"),
        ("a bare number", b"42"),
        ("deep nesting", &[b'['; 100_000][..]),
        (
            "wrong field types",
            b"{\"Signal\":{\"pid\":\"one\",\"signal\":[],\"all\":3}}",
        ),
        ("out of range pid", b"{\"Wait\":{\"pid\":99999999999}}"),
    ] {
        expect_refused(&sock, what, &frame(body), false);
    }
    // Valid requests with hostile fields.
    for req in [
        json!({"Signal": {"pid": -1, "signal": 9999, "all": false}}),
        json!({"Signal": {"pid": 12345, "signal": 15, "all": false}}),
        json!({"Signal": {"pid": 0, "signal": -3, "all": true}}),
        json!({"Signal": {"pid": i32::MIN, "signal": 0, "all": false}}),
        json!({"Wait": {"pid": -7}}),
        json!({"Wait": {"pid": 424242}}),
        json!({"Exec": {"process": {"args": []}}}),
        json!({"Exec": {"process": {"args": [""], "cwd": "/"}}}),
        json!({"Exec": {"process": {"args": ["/bin/true"], "cwd": "relative/dir"}}}),
        json!({"Exec": {"process": {"args": ["/bin/true"], "rlimits": [[9999, 1, 2], [7, 10, 1]]}}}),
        json!({"DebugHostSyscall": {"nr": 62, "args": [1, 9]}}),
    ] {
        // Exec without stdio fds, a bad cwd or bad rlimits must be refused; the rest may
        // succeed only as harmless no-ops, so accept Ok/Pid but never a crash.
        match call_with_fds(&sock, &req, &[]) {
            Answer::Closed => {}
            Answer::Reply(v) => {
                let is_exec = req.get("Exec").is_some();
                assert!(
                    v.get("Error").is_some() || (!is_exec && v == json!("Ok")),
                    "{req}: expected an Error (or a harmless Ok), got {v}"
                );
            }
        }
    }
    // Odd environment strings are only strings to execve (Linux takes them too): the
    // process may run, or be refused, but nothing breaks.
    let req = json!({"Exec": {"process": {"args": ["/bin/true"], "env": ["NO_EQUALS", "=x", "\u{0}", ""]}}});
    match call_with_fds(&sock, &req, &[]) {
        Answer::Closed => {}
        Answer::Reply(v) => assert!(
            v.get("Pid").is_some() || v.get("Error").is_some(),
            "{req}: {v}"
        ),
    }
    // fds attached where none are expected, and more than the protocol allows.
    let devnull = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let one = [devnull.as_raw_fd()];
    match call_with_fds(&sock, &json!("Ps"), &one) {
        Answer::Closed => {}
        Answer::Reply(v) => assert!(
            v.get("Processes").is_some() || v.get("Error").is_some(),
            "Ps with an fd: {v}"
        ),
    }
    let many = [devnull.as_raw_fd(); 12];
    match call_with_fds(&sock, &json!("Ps"), &many) {
        Answer::Closed => {}
        Answer::Reply(v) => assert!(
            v.get("Processes").is_some() || v.get("Error").is_some(),
            "Ps with 12 fds: {v}"
        ),
    }
    let mut p = [0i32; 2];
    // SAFETY: `p` is a live array of two ints for the kernel to fill.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let fds3 = [p[0], p[1], devnull.as_raw_fd()];
    match call_with_fds(&sock, &json!({"Exec": {"process": {"args": []}}}), &fds3) {
        Answer::Closed => {}
        Answer::Reply(v) => assert!(v.get("Error").is_some(), "Exec with empty args: {v}"),
    }

    // SAFETY: both pipe fds are ours and closed once.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }

    // The container still works.
    let o = b.rv(&["exec", "c", "echo", "still here"]);
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "still here\n");
    let st = b.state("c");
    assert_eq!(st["status"], "running", "{st}");
    b.rv(&["kill", "c", "KILL"]).assert_code(0);
    let _ = b.rv(&["delete", "--force", "c"]);
}

/// `runc run` of `b` when runc is installed and we are root; None otherwise or when runc
/// cannot run containers here at all.
fn runc_run(b: &Bundle, id: &str) -> Option<Outcome> {
    if !Path::new("/usr/sbin/runc").exists() && !Path::new("/usr/bin/runc").exists() {
        eprintln!("runc is not installed: no comparison");
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no runc comparison");
        return None;
    }
    let root = b.tmp.path().join("runc-state");
    let o = run_native(
        &Cmd::new("runc")
            .arg(format!("--root={}", root.display()))
            .args(["run", "--bundle", b.dir().to_str().unwrap(), id]),
    );
    if o.stderr_str().contains("runc run failed") || (o.code() != Some(0) && o.stdout.is_empty()) {
        eprintln!(
            "runc cannot run containers here: no comparison\n{}",
            o.dump()
        );
        return None;
    }
    Some(o)
}

#[test]
fn hostile_mount_destinations_stay_inside_the_container() {
    let tag = format!("rvisor-dotdot-{}", std::process::id());
    let victim = TempDir::new("victim");
    // (runc lists the mount through the symlink under its resolved path, so only whether
    // the mount point exists is compared for it.)
    let script = format!(
        "test -d /{tag} && echo /{tag} is a dir; grep -q \" /{tag} \" /proc/mounts && echo /{tag} is mounted; \
         test -d /mnt/link/x && echo /mnt/link/x is a dir; echo hi > /{tag}/f && echo wrote; cat /proc/self/mounts | grep -c {tag}"
    );
    let b = Bundle::new("dotdot", &["sh", "-c", &script]);
    // A symlink inside the rootfs that points at a host directory (absolute): a mount on
    // /mnt/link/x must resolve it inside the container, never on the host.
    std::os::unix::fs::symlink(victim.path(), b.rootfs().join("mnt/link")).unwrap();
    std::fs::create_dir_all(b.rootfs().join(&tag)).unwrap();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": format!("../../../../{tag}"), "type": "tmpfs", "source": "tmpfs"}));
        m.push(json!({"destination": "/mnt/link/x", "type": "tmpfs", "source": "tmpfs"}));
    });
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "dd"]);
    assert!(!looks_like_panic(&o.stderr), "{}", o.dump());
    // Nothing appeared on the host outside the bundle.
    assert!(
        !Path::new("/").join(&tag).exists(),
        "/{tag} created on the host"
    );
    assert!(
        !victim.path().join("x").exists(),
        "mount point created through a symlink on the host: {}",
        o.dump()
    );
    assert_eq!(
        std::fs::read_dir(victim.path()).unwrap().count(),
        0,
        "the host victim dir changed"
    );
    o.assert_code(0);
    let out = o.stdout_str();
    assert!(
        out.contains(&format!("/{tag} is mounted")),
        "the ../../ destination was not mounted inside: {}",
        o.dump()
    );
    assert!(out.contains("wrote"), "{}", o.dump());
    if let Some(r) = runc_run(&b, "dd-runc") {
        assert!(
            !victim.path().join("x").exists(),
            "runc too created the mount point on the host?"
        );
        assert_eq!(
            o.stdout_str(),
            r.stdout_str(),
            "rvisor and runc differ\nrvisor: {}\nrunc: {}",
            o.dump(),
            r.dump()
        );
    }
}

#[test]
fn symlinked_rootfs_and_mount_sources_never_change_host_files() {
    let probe = format!("rvisor-rootfs-probe-{}", std::process::id());
    // The rootfs is a symlink to the host's /: the container sees the host tree but, with
    // the default in-memory overlay, its writes never reach the host.
    let b = Bundle::new("symroot", &["sh", "-c", &format!("echo x > /{probe} && echo wrote; cat /{probe}; test -e /bin/busybox && echo has-busybox")]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    std::os::unix::fs::symlink("/", b.rootfs()).unwrap();
    b.edit(|c| c["root"]["readonly"] = false.into());
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "sr"]);
    let leaked = Path::new("/").join(&probe).exists();
    let _ = std::fs::remove_file(Path::new("/").join(&probe));
    assert!(
        !leaked,
        "the container wrote /{probe} on the host: {}",
        o.dump()
    );
    assert!(!looks_like_panic(&o.stderr), "{}", o.dump());
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "wrote\nx\nhas-busybox\n", "{}", o.dump());

    // Read-only root: the write fails (EROFS) instead.
    b.edit(|c| {
        c["root"]["readonly"] = true.into();
        c["process"]["args"] = json!(["sh", "-c", format!("echo x > /{probe} || echo refused")]);
    });
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "sr2"]);
    let leaked = Path::new("/").join(&probe).exists();
    let _ = std::fs::remove_file(Path::new("/").join(&probe));
    assert!(
        !leaked,
        "the container wrote /{probe} on the host: {}",
        o.dump()
    );
    o.assert_code(0);
    assert!(o.stdout_str().contains("refused"), "{}", o.dump());

    // A read-only bind mount whose source is a symlink to a host directory outside the
    // bundle (standing in for /etc): readable, never writable.
    let victim = TempDir::new("etc-victim");
    std::fs::write(victim.path().join("passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
    let b = Bundle::new(
        "symsrc",
        &["sh", "-c", "cat /mnt/etc/passwd; echo evil > /mnt/etc/passwd || echo refused; rm /mnt/etc/passwd || echo refused; touch /mnt/etc/new || echo refused"],
    );
    std::os::unix::fs::symlink(victim.path(), b.dir().join("etclink")).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/etc", "type": "bind", "source": "etclink", "options": ["rbind", "ro"]}));
    });
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "ss"]);
    assert!(!looks_like_panic(&o.stderr), "{}", o.dump());
    assert_eq!(
        std::fs::read_to_string(victim.path().join("passwd")).unwrap(),
        "root:x:0:0::/:/bin/sh\n",
        "host file changed"
    );
    assert!(!victim.path().join("new").exists(), "host file created");
    o.assert_code(0);
    assert_eq!(
        o.stdout_str(),
        "root:x:0:0::/:/bin/sh\nrefused\nrefused\nrefused\n",
        "{}",
        o.dump()
    );
    if let Some(r) = runc_run(&b, "ss-runc") {
        assert_eq!(
            std::fs::read_to_string(victim.path().join("passwd")).unwrap(),
            "root:x:0:0::/:/bin/sh\n"
        );
        assert_eq!(
            o.stdout_str(),
            r.stdout_str(),
            "rvisor and runc differ\nrvisor: {}\nrunc: {}",
            o.dump(),
            r.dump()
        );
    }
}
