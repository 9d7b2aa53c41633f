//! The CLI side of networking: `--network` values, the OCI spec's network namespace, the
//! takeover of its interfaces in sandbox mode (a packet socket donated, the addresses
//! removed from the namespace and not restored, as runsc), host and none modes (the
//! namespace left as it was), and the network the sandbox process is given (its `--spec`
//! and `--net-fd` arguments, and the namespace it runs in).
//!
//! Each test makes its own network namespace and veth pair on link-local addresses
//! (`ip netns`, `ip link`), removed when it ends. Needs root.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use rvisor_tests::oci::Bundle;
use rvisor_tests::{assert_clean_error, run_rvisor_cli};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().expect("running ip (iproute2)");
    assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace holding `eth0` (one end of a veth pair, up, with
/// 169.254.X.Y+1/30 and its IPv6 link-local address) and `lo` up; the other end stays in
/// the host's namespace with 169.254.X.Y/30. Removed on drop.
struct PodNetns {
    name: String,
    host_if: String,
    pod_addr: String,
}

impl PodNetns {
    fn new() -> PodNetns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("rvnet{pid}-{n}");
        let host_if = format!("rvh{}x{n}", pid % 1_000_000);
        // A /30 of its own per test: 169.254.(100 + pid%100).(4n).
        let (x, y) = (100 + pid % 100, (n % 64) * 4);
        let p = PodNetns { name: name.clone(), host_if: host_if.clone(), pod_addr: format!("169.254.{x}.{}", y + 2) };
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &name]);
        ip(&["addr", "add", &format!("169.254.{x}.{}/30", y + 1), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&["-n", &name, "addr", "add", &format!("{}/30", p.pod_addr), "dev", "eth0"]);
        ip(&["-n", &name, "link", "set", "eth0", "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        p
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// `ip -n NAME addr show dev eth0`.
    fn eth0_addrs(&self) -> String {
        ip(&["-n", &self.name, "addr", "show", "dev", "eth0"])
    }

    /// Waits until eth0 has its IPv6 link-local address (the kernel adds it when the
    /// link comes up, after duplicate-address detection starts).
    fn wait_link_local(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.eth0_addrs().contains("inet6 fe80::") {
            assert!(std::time::Instant::now() < deadline, "eth0 never got a link-local address: {}", self.eth0_addrs());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn inode(&self) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(self.path()).unwrap())
    }
}

impl Drop for PodNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// A bundle whose container runs `sleep 1000` in network namespace `ns` (a fresh one
/// when `None`).
fn bundle(name: &str, ns: Option<&PodNetns>) -> Bundle {
    let b = Bundle::new(name, &["sleep", "1000"]);
    let entry = match ns {
        Some(ns) => serde_json::json!({ "type": "network", "path": ns.path() }),
        None => serde_json::json!({ "type": "network" }),
    };
    b.edit(|c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "network");
        nss.push(entry);
    });
    b
}

/// What the sandbox process of container `id` was given: the `network` of its boot spec,
/// its `--net-fd` arguments, the packet sockets it holds (interface index of each, from
/// its namespace's /proc/net/packet), and the inode of its network namespace.
struct Boot {
    network: serde_json::Value,
    net_fds: Vec<String>,
    packet_ifindexes: Vec<u64>,
    netns: u64,
}

fn boot_of(b: &Bundle, id: &str) -> Boot {
    // The sandbox process (`state` reports the container's init instead).
    let pid = saved_state(b, id)["pid"].as_i64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline.split(|&c| c == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let spec = args.iter().find_map(|a| a.strip_prefix("--spec=")).unwrap_or_else(|| panic!("no --spec in {args:?}"));
    let spec: serde_json::Value = serde_json::from_str(spec).unwrap();
    let net_fds = args.iter().filter_map(|a| a.strip_prefix("--net-fd=")).map(String::from).collect();
    let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| Some(l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string()))
        .collect();
    // Columns: sk RefCnt Type Proto Iface R Rmem User Inode.
    let packet = std::fs::read_to_string(format!("/proc/{pid}/net/packet")).unwrap();
    let packet_ifindexes = packet
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|c| c.len() >= 9 && sockets.iter().any(|s| s == c[8]))
        .map(|c| c[4].parse().unwrap())
        .collect();
    let netns = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap());
    Boot { network: spec["network"].clone(), net_fds, packet_ifindexes, netns }
}

/// The state rvisor keeps on disk for container `id`.
fn saved_state(b: &Bundle, id: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(b.state_root().join(id).join("state.json")).unwrap()).unwrap()
}

fn interface<'a>(network: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    network["interfaces"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap_or_else(|| panic!("no {name} in {network}"))
}

/// A container id no other test uses (ids name cgroups, which are machine-wide).
fn container_id() -> String {
    format!("net-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn own_netns() -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata("/proc/self/ns/net").unwrap())
}

#[test]
fn an_unknown_network_mode_is_one_clear_error() {
    let id = container_id();
    let id = id.as_str();
    let o = run_rvisor_cli(&["--network=bogus", "do", "true"]);
    assert_clean_error(&o);
    assert!(o.stderr_str().contains("bogus"), "{}", o.dump());
    let b = Bundle::new("net-bad-mode", &["true"]);
    let o = b.rv(&["--network=everything", "create", "--bundle", b.dir().to_str().unwrap(), id]);
    assert_clean_error(&o);
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
}

#[test]
fn a_bad_network_namespace_path_is_one_clear_error_and_leaves_nothing() {
    let id = container_id();
    let id = id.as_str();
    let b = Bundle::new("net-bad-path", &["true"]);
    let dir = b.dir();
    let not_a_netns: PathBuf = dir.join("config.json");
    for (path, says) in [("/nonexistent/netns", "/nonexistent/netns"), (not_a_netns.to_str().unwrap(), "not a network namespace")] {
        b.edit(|c| {
            let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
            nss.retain(|n| n["type"] != "network");
            nss.push(serde_json::json!({ "type": "network", "path": path }));
        });
        for mode in ["--network=sandbox", "--network=host"] {
            let o = b.rv(&[mode, "create", "--bundle", dir.to_str().unwrap(), id]);
            assert_clean_error(&o);
            assert_eq!(o.code(), Some(1), "{}", o.dump());
            assert!(o.stderr_str().contains(says), "{}", o.dump());
            assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
        }
    }
}

#[test]
fn sandbox_mode_takes_over_the_interfaces_and_restores_nothing() {
    let id = container_id();
    let id = id.as_str();
    let ns = PodNetns::new();
    ns.wait_link_local();
    let before = ns.eth0_addrs();
    assert!(before.contains(&format!("inet {}/30", ns.pod_addr)), "{before}");
    let b = bundle("net-takeover", Some(&ns));
    b.create(id);
    let boot = boot_of(&b, id);
    // The spec holds what the namespace had: lo, and eth0 with its addresses.
    assert_eq!(boot.network["mode"], "sandbox", "{}", boot.network);
    let eth0 = interface(&boot.network, "eth0");
    assert_eq!(eth0["kind"], "ethernet");
    let addrs = eth0["addrs"].to_string();
    assert!(addrs.contains(&ns.pod_addr) && addrs.contains("fe80::"), "{addrs}");
    assert_eq!(interface(&boot.network, "lo")["kind"], "loopback");
    assert!(boot.network["routes"].to_string().contains("169.254."), "{}", boot.network);
    // One packet socket bound to eth0, donated; the sandbox runs in the pod's namespace.
    assert_eq!(boot.net_fds.len(), 1, "{:?}", boot.net_fds);
    assert_eq!(boot.packet_ifindexes, [eth0["index"].as_u64().unwrap()]);
    assert_eq!(boot.netns, ns.inode());
    // The namespace's kernel no longer has the addresses, and IPv6 does not come back.
    let during = ns.eth0_addrs();
    assert!(!during.contains("inet "), "{during}");
    assert!(!during.contains("inet6 "), "{during}");
    assert!(during.contains("UP"), "the link stays up: {during}");
    let v6 = ip(&["netns", "exec", &ns.name, "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"]);
    assert_eq!(v6.trim(), "1");
    // So only the sandbox's own stack, behind the packet socket, can answer a ping now.
    let ping = Command::new("ping").args(["-c1", "-W10", "-I", &ns.host_if, &ns.pod_addr]).output().expect("running ping");
    assert!(ping.status.success(), "ping {}: {}", ns.pod_addr, String::from_utf8_lossy(&ping.stdout));
    // The state records the mode; delete leaves the namespace as the sandbox left it.
    assert_eq!(saved_state(&b, id)["network"], "sandbox");
    b.rv(&["delete", "--force", id]).assert_code(0);
    let after = ns.eth0_addrs();
    assert!(!after.contains("inet "), "{after}");
    ip(&["-n", &ns.name, "link", "show", "eth0"]);
}

#[test]
fn host_mode_runs_in_the_namespace_and_leaves_it_as_it_was() {
    let id = container_id();
    let id = id.as_str();
    let ns = PodNetns::new();
    ns.wait_link_local();
    let b = bundle("net-host", Some(&ns));
    let d = b.rv_detached(id, &["--network=host", "create", "--bundle", b.dir().to_str().unwrap(), id]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let boot = boot_of(&b, id);
    assert_eq!(boot.network["mode"], "host");
    assert!(interface(&boot.network, "eth0")["addrs"].to_string().contains(&ns.pod_addr), "{}", boot.network);
    assert!(boot.net_fds.is_empty() && boot.packet_ifindexes.is_empty(), "{:?}", boot.net_fds);
    assert_eq!(boot.netns, ns.inode());
    let during = ns.eth0_addrs();
    assert!(during.contains(&format!("inet {}/30", ns.pod_addr)) && during.contains("inet6 fe80::"), "{during}");
    b.rv(&["delete", "--force", id]).assert_code(0);
    assert!(ns.eth0_addrs().contains(&format!("inet {}/30", ns.pod_addr)));
}

#[test]
fn none_mode_is_loopback_only_and_touches_nothing() {
    let id = container_id();
    let id = id.as_str();
    let ns = PodNetns::new();
    let b = bundle("net-none", Some(&ns));
    let d = b.rv_detached(id, &["--network=none", "create", "--bundle", b.dir().to_str().unwrap(), id]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let boot = boot_of(&b, id);
    assert_eq!(boot.network["mode"], "none");
    let names: Vec<_> = boot.network["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["lo"]);
    assert!(boot.net_fds.is_empty());
    assert!(ns.eth0_addrs().contains(&format!("inet {}/30", ns.pod_addr)));
    b.rv(&["delete", "--force", id]).assert_code(0);
}

#[test]
fn a_network_namespace_without_a_path_is_a_fresh_one_with_loopback_only() {
    let id = container_id();
    let id = id.as_str();
    let b = bundle("net-fresh", None);
    b.create(id);
    let boot = boot_of(&b, id);
    assert_eq!(boot.network["mode"], "sandbox");
    assert_eq!(boot.network["interfaces"].as_array().unwrap().len(), 1, "{}", boot.network);
    assert!(boot.net_fds.is_empty());
    assert_ne!(boot.netns, own_netns(), "the sandbox runs in a namespace of its own");
    b.rv(&["delete", "--force", id]).assert_code(0);
}
