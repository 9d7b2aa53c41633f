//! IP sockets on loopback behave as Linux's: `c/inet.c` (socket errors, bind conflicts and
//! SO_REUSEADDR, ephemeral ports, backlog, refused and non-blocking connects, peek/waitall,
//! shutdown and poll bits, EPIPE/SIGPIPE, options, UDP, IPv6 dual stack, epoll, sendfile,
//! sendmmsg/recvmmsg, getaddrinfo) prints the same natively, in a fresh network namespace
//! with lo up, as in `rvisor --network=none do` (the sentry's stack, loopback only) and
//! `rvisor --network=host do` (host sockets).

use rvisor_tests::*;

/// `c/inet.c` (built by build.rs): `inet [SECTION...]`.
const PROG: &str = env!("RVISOR_TEST_PROG_INET");

/// The native run: `unshare -n` (a namespace of its own, so no other traffic) with lo up.
fn native(section: &str) -> Outcome {
    let o = run_native(
        &Cmd::new("unshare")
            .args([
                "-n",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$1\"",
                PROG,
                section,
            ])
            .env("PATH", SYSTEM_PATH),
    );
    if o.code() != Some(0) || !o.stdout_str().starts_with(&format!("== {section}\n")) {
        panic!(
            "the test program itself fails natively for section {section}:\n{}",
            o.dump()
        );
    }
    o
}

#[track_caller]
fn section(mode: &str, name: &str) {
    let n = native(name);
    let flag = format!("--network={mode}");
    let s = run_rvisor(&[&flag], &Cmd::new(PROG).arg(name));
    if let Some(report) = compare(&n, &s, Compare::Bytes) {
        panic!("rvisor {flag} and native differ for section {name}:\n{report}");
    }
}

macro_rules! sections {
    ($($test_none:ident, $test_host:ident: $name:literal;)*) => {
        $(
            #[test]
            fn $test_none() {
                section("none", $name);
            }

            #[test]
            fn $test_host() {
                section("host", $name);
            }
        )*
    };
}

sections! {
    none_socket_errors_types_and_flags_match_native, host_socket_errors_types_and_flags_match_native: "errors";
    none_bind_conflicts_time_wait_and_so_reuseaddr_match_native, host_bind_conflicts_time_wait_and_so_reuseaddr_match_native: "bind";
    none_ephemeral_ports_and_listen_without_bind_match_native, host_ephemeral_ports_and_listen_without_bind_match_native: "ephemeral";
    none_backlog_of_20_nonblocking_connects_all_accepted, host_backlog_of_20_nonblocking_connects_all_accepted: "backlog";
    none_refused_and_nonblocking_connects_match_native, host_refused_and_nonblocking_connects_match_native: "connect";
    none_msg_peek_waitall_and_large_transfers_match_native, host_msg_peek_waitall_and_large_transfers_match_native: "data";
    none_shutdown_and_poll_hup_rdhup_bits_match_native, host_shutdown_and_poll_hup_rdhup_bits_match_native: "shutdown";
    none_epipe_sigpipe_and_msg_nosignal_match_native, host_epipe_sigpipe_and_msg_nosignal_match_native: "epipe";
    none_socket_option_round_trips_and_cork_match_native, host_socket_option_round_trips_and_cork_match_native: "options";
    none_udp_trunc_connected_and_port_unreachable_match_native, host_udp_trunc_connected_and_port_unreachable_match_native: "udp";
    none_ipv6_dual_stack_and_v6only_match_native, host_ipv6_dual_stack_and_v6only_match_native: "v6";
    none_epoll_readiness_of_listeners_and_connections_matches_native, host_epoll_readiness_of_listeners_and_connections_matches_native: "epoll";
    none_sendfile_from_a_file_to_a_socket_matches_native, host_sendfile_from_a_file_to_a_socket_matches_native: "sendfile";
    none_sendmmsg_and_recvmmsg_match_native, host_sendmmsg_and_recvmmsg_match_native: "mmsg";
    none_getaddrinfo_localhost_matches_native, host_getaddrinfo_localhost_matches_native: "gai";
}
