//! What the guest sees of its network: netlink dumps (`ip`), interface ioctls (busybox
//! `ifconfig`) and /proc/net, compared between `rvisor --network=none do` (loopback only)
//! and a fresh native network namespace whose loopback is up (`unshare -n`). Needs root.
//!
//! Not compared: counters (/proc/net/dev rows, `ip -s`), /proc/net/sockstat (the host's
//! socket memory), which rvisor does not share with the host.

use rvisor_tests::*;

/// `sh -c SCRIPT` natively in a new network namespace (lo up) and in rvisor with
/// `--network=none`; stdout and exit status must match.
#[track_caller]
fn same_view(script: &str) {
    let native = run_native(
        &Cmd::new("unshare")
            .args(["-n", "sh", "-c", &format!("ip link set lo up && {script}")])
            .env("PATH", SYSTEM_PATH),
    );
    native.assert_code(0);
    assert!(!native.stdout_str().is_empty(), "{}", native.dump());
    let sandboxed = run_rvisor(
        &["--network=none"],
        &Cmd::new("/bin/sh")
            .args(["-c", script])
            .env("PATH", SYSTEM_PATH),
    );
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor and a fresh network namespace differ for `{script}`:\n{report}");
    }
}

#[test]
fn ip_addr_and_ip_link_show_loopback_as_linux() {
    same_view("ip addr; ip link; ip -6 addr; ip -4 addr show lo; ip -j addr");
}

#[test]
fn ip_route_shows_main_and_local_tables_as_linux() {
    same_view("ip route; ip -6 route; ip route show table all; ip -6 route show table local");
}

#[test]
fn ip_route_get_and_ip_rule_answer_as_linux() {
    same_view("ip route get 127.0.0.1; ip route get 127.255.255.255; ip route get ::1; ip rule; ip -6 rule; ip neigh");
}

#[test]
fn busybox_ifconfig_and_route_read_interfaces_through_ioctls_and_proc() {
    require_busybox();
    same_view("busybox ifconfig; busybox ifconfig lo; busybox route -n; busybox netstat -tuln");
}

#[test]
fn proc_net_files_have_linux_formats() {
    same_view(
        "readlink /proc/net; head -2 /proc/net/dev; cut -c1-7 /proc/net/dev; cat /proc/net/route /proc/net/ipv6_route \
         /proc/net/if_inet6 /proc/net/igmp /proc/net/arp /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 \
         /proc/net/raw /proc/net/raw6 /proc/net/snmp; head -1 /proc/net/unix; cut -d' ' -f1-30 /proc/net/netstat | sed 's/ [0-9 ]*$//'; \
         test -d /proc/self/net && cat /proc/$$/net/route",
    );
}

#[test]
fn net_sysctls_read_linux_defaults() {
    same_view("cat /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/tcp_fin_timeout");
}
