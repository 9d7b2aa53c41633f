//! Socket buffers: a full AF_UNIX socket behaves as on Linux (EAGAIN, poll not writable, a
//! blocked writer woken by its reader, space back on close), and in rvisor all sockets'
//! queued bytes share one sandbox-wide budget scaled from the memory limit, which a guest
//! meets as a full buffer, never as a sentry that grows until the host cgroup kills it.
//! The network stack's sockets, whose buffers smoltcp allocates whole, are charged to the
//! same budget for their whole life (TIME_WAIT included): a guest making many of them
//! meets smaller buffers and then ENOBUFS, never an OOM kill.

use rvisor_tests::oci::Bundle;
use rvisor_tests::*;
use serde_json::json;

/// `c/sockbuf.c` (built by build.rs).
const SOCKBUF: &str = env!("RVISOR_TEST_PROG_SOCKBUF");
/// `c/tcpmem.c`.
const TCPMEM: &str = env!("RVISOR_TEST_PROG_TCPMEM");
const MIB: u64 = 1 << 20;

#[test]
fn full_unix_socket_gives_eagain_and_is_writable_again_after_a_drain_as_natively() {
    let (native, _) = assert_same(&Cmd::new(SOCKBUF).arg("own"));
    native.assert_code(0);
    assert_eq!(
        native.stdout_str(),
        "own: filled until EAGAIN: yes\n\
         own: writable when full: no\n\
         own: drained all: yes\n\
         own: writable after drain: yes\n\
         own: write after drain: ok\n\
         own: oversized datagram: EMSGSIZE\n",
        "{}",
        native.dump()
    );
}

#[test]
fn blocked_unix_writer_wakes_when_its_reader_drains_as_natively() {
    let (native, _) = assert_same(&Cmd::new(SOCKBUF).arg("blocked-same"));
    native.assert_code(0);
    assert_eq!(
        native.stdout_str(),
        "blocked-same: child nonblocking write: EAGAIN\n\
         blocked-same: child blocking write: 1000\n\
         blocked-same: child exit: 0\n\
         blocked-same: reader got everything: yes\n",
        "{}",
        native.dump()
    );
}

#[test]
fn closing_filled_unix_sockets_and_one_in_flight_gives_their_space_back_as_natively() {
    let (native, _) = assert_same(&Cmd::new(SOCKBUF).args(["close", "64"]));
    native.assert_code(0);
    assert_eq!(
        native.stdout_str(),
        "close: in-flight pair took data: yes\n\
         close: refill took as much as the first fill: yes\n",
        "{}",
        native.dump()
    );
}

/// What `sockbuf all 64 8192` prints when all sockets share a budget of at most 8 MiB.
const CAPPED: &str = "\
bounded: total within 8192 KiB: yes
bounded: some pairs got nothing: yes
bounded: last pair writable: no
bounded: datagram within its sndbuf: EAGAIN
bounded: drained pair 0: yes
bounded: last pair writable after draining pair 0: yes
bounded: write to last pair: ok
blocked-other: child nonblocking write: EAGAIN
blocked-other: child blocking write: 1000
blocked-other: child exit: 0
blocked-other: reader got the child's bytes: yes
close: in-flight pair took data: yes
close: refill took as much as the first fill: yes
";

#[test]
fn unix_socket_buffers_share_a_sandbox_budget_scaled_from_the_memory_limit() {
    // 64 pairs with a full default SO_SNDBUF (208 KiB) hold 13 MiB: more than the eighth of
    // a 64 MiB limit (8 MiB) that the sandbox's sockets may queue in all.
    let b = Bundle::new("sockbuf", &["/bin/sockbuf", "all", "64", "8192"]);
    std::fs::copy(SOCKBUF, b.rootfs().join("bin/sockbuf")).unwrap();
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB }));
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "sockbuf"]);
    o.assert_code(0);
    assert_eq!(o.stdout_str(), CAPPED, "{}", o.dump());

    // Without a memory limit the budget is far larger: the same pairs all fill, as natively.
    let free = run_rvisor_do(&[], &[], &Cmd::new(SOCKBUF).args(["bounded", "64", "8192"]));
    free.assert_code(0);
    let out = free.stdout_str();
    assert!(
        out.contains("bounded: total within 8192 KiB: no\n")
            && out.contains("bounded: some pairs got nothing: no\n"),
        "{}",
        free.dump()
    );
}

/// Runs `tcpmem ARGS` natively, then in a sandbox limited to 64 MiB (a socket budget of
/// 8 MiB): the sandbox must finish, not be killed, and print what the native run printed.
/// Each workload here made the sentry of a 64 MiB sandbox grow past its host cgroup's
/// limit (144 MiB) while the stack's buffers were not charged.
fn tcpmem_in_64_mib_as_natively(name: &str, args: &[&str], expected: &str) {
    let native = run_native(&Cmd::new(TCPMEM).args(args));
    native.assert_code(0);
    assert_eq!(native.stdout_str(), expected, "{}", native.dump());
    let argv: Vec<&str> = std::iter::once("/bin/tcpmem")
        .chain(args.iter().copied())
        .collect();
    let b = Bundle::new(name, &argv);
    std::fs::copy(TCPMEM, b.rootfs().join("bin/tcpmem")).unwrap();
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB }));
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), name]);
    o.assert_code(0);
    assert_eq!(o.stdout_str(), expected, "{}", o.dump());
}

#[test]
fn opening_and_closing_many_loopback_tcp_connections_fits_a_small_memory_limit() {
    // 1000 connections one after another, 256 KiB echoed on each: the server's side of
    // each lingers in TIME_WAIT with its buffers, which the budget cuts short.
    tcpmem_in_64_mib_as_natively(
        "tcpmem-churn",
        &["churn", "1000", "256"],
        "churn: 1000 connections, every echo intact: yes\n",
    );
}

#[test]
fn holding_many_loopback_tcp_connections_with_queued_data_fits_a_small_memory_limit() {
    // Up to 300 connections, each with 256 KiB queued both ways: the sandbox makes as
    // many as its budget takes (smaller buffers, then ENOBUFS), and all of it comes back
    // once they are closed.
    tcpmem_in_64_mib_as_natively(
        "tcpmem-hold",
        &["hold", "300", "256"],
        "hold: made all or stopped at a refusal: yes\n\
         hold: every connection made took data: yes\n\
         hold: a connection after closing all carries data: yes\n",
    );
}

#[test]
fn holding_many_udp_sockets_with_queued_datagrams_fits_a_small_memory_limit() {
    tcpmem_in_64_mib_as_natively(
        "tcpmem-udp",
        &["udp", "800"],
        "udp: bound all or stopped at a refusal: yes\n\
         udp: every datagram sent whole: yes\n\
         udp: a socket after closing all receives: yes\n",
    );
}
