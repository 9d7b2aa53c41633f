//! AF_UNIX sockets in the sentry: named (path and abstract) stream, datagram and seqpacket
//! sockets, file and credential passing, shutdown, non-blocking accept/connect and
//! listener readiness behave as natively. The native run works in a fresh host folder, the
//! sandboxed one in its tmpfs /dev/shm (socket nodes in the sentry's VFS) or, for the
//! `_through_the_gofer` test, in a fresh host folder reached through the gofer.

use rvisor_tests::*;

/// `c/unix_sockets.c` (built by build.rs): `unix_sockets BASE [SECTION...]`.
const PROG: &str = env!("RVISOR_TEST_PROG_UNIX_SOCKETS");

/// Runs the section natively in a fresh folder and in rvisor with `sandbox_base` (a fresh
/// host folder when `None`), and fails unless stdout and exit status agree.
#[track_caller]
fn section_in(name: &str, sandbox_base: Option<&str>) {
    let dir = TempDir::new(name);
    let native = run_native(&Cmd::new(PROG).args([&*dir.path().to_string_lossy(), name]));
    native.assert_code(0);
    assert!(
        native.stdout_str().starts_with(&format!("== {name}\n")),
        "{}",
        native.dump()
    );
    let host_dir = TempDir::new(name);
    let base = sandbox_base.map_or_else(
        || host_dir.path().to_string_lossy().into_owned(),
        str::to_owned,
    );
    let sandboxed = run_rvisor(&[], &Cmd::new(PROG).args([base.as_str(), name]));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (in {base}) and native differ for section {name}:\n{report}");
    }
}

fn section(name: &str) {
    section_in(name, Some("/dev/shm"));
}

#[test]
fn unix_named_stream_bind_listen_accept_names_and_errnos_match_native() {
    section("named");
}

#[test]
fn unix_named_stream_sockets_through_the_gofer_match_native() {
    section_in("named", None);
}

#[test]
fn unix_abstract_names_exact_bytes_lengths_and_autobind_match_native() {
    section("abstract");
}

#[test]
fn unix_dgram_sendto_recvfrom_with_paths_and_connect_match_native() {
    section("dgram");
}

#[test]
fn unix_seqpacket_keeps_record_boundaries_and_reports_msg_trunc() {
    section("seqpacket");
}

#[test]
fn unix_scm_rights_passes_pipe_ends_and_files_with_ctrunc_and_cloexec() {
    section("rights");
}

#[test]
fn unix_scm_credentials_so_passcred_and_so_peercred_match_native() {
    section("creds");
}

#[test]
fn unix_shutdown_eof_epipe_sigpipe_and_poll_bits_match_native() {
    section("shutdown");
}

#[test]
fn unix_nonblocking_accept_and_full_backlog_connect_give_eagain() {
    section("nonblock");
}

#[test]
fn unix_listener_is_readable_in_poll_and_epoll_when_a_connection_waits() {
    section("poll");
}

/// Python's socket module: a threaded AF_UNIX server and client in one process, and
/// `socket.send_fds`/`recv_fds` over a socketpair.
#[test]
fn unix_python_threaded_server_and_send_fds_match_native() {
    let script = r#"
import os, socket, threading, tempfile
d = tempfile.mkdtemp(dir=os.environ.get("BASE"))
path = os.path.join(d, "py.sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
def serve():
    c, _ = srv.accept()
    data = c.recv(100)
    c.sendall(data.upper())
    c.close()
t = threading.Thread(target=serve)
t.start()
cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cl.connect(path)
cl.sendall(b"hello over a path")
print(cl.recv(100))
t.join()
print(cl.getpeername() == path)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
r, w = os.pipe()
socket.send_fds(a, [b"fd"], [w])
msg, fds, flags, addr = socket.recv_fds(b, 10, 4)
print(msg, len(fds), flags)
os.write(fds[0], b"via passed fd")
print(os.read(r, 100))
os.unlink(path)
os.rmdir(d)
"#;
    let cmd = |base: &str| {
        Cmd::new("/usr/bin/python3")
            .args(["-c", script])
            .env("BASE", base)
            .env("PATH", SYSTEM_PATH)
    };
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("skipping: no /usr/bin/python3");
        return;
    }
    let dir = TempDir::new("py");
    let native = run_native(&cmd(&dir.path().to_string_lossy()));
    native.assert_code(0);
    let sandboxed = run_rvisor(&[], &cmd("/dev/shm"));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor and native differ for the python AF_UNIX check:\n{report}");
    }
}
