//! `--network=host`: guest sockets are host sockets the sentry makes in the pod's network
//! namespace (the sandbox runs in it; the namespace keeps its addresses). nginx in `rvisor
//! --network=host run` serves the host side of the veth; guest processes talk TCP and UDP
//! to each other.

use std::process::Command;

use rvisor_tests::net::*;
use rvisor_tests::*;

const HOST: &[&str] = &["--network=host"];

#[test]
fn nginx_in_host_mode_serves_both_files_and_the_namespace_keeps_its_address() {
    let ns = NetNs::new("nghost");
    let (b, site) = nginx_bundle("net-nginx-host", Some(&ns));
    let mut server = b.spawn_rvisor(HOST, "nginx-host");
    server.wait_listening(&format!("{}:80", ns.ns_ip()));
    let base = format!("http://{}", ns.ns_ip());
    assert_serves_site(&base, &site, &server);
    assert_wrk_clean(&format!("{base}/4k.bin"), &server);
    assert_serves_site(&base, &site, &server);
    let addrs = Command::new("ip")
        .args(["-n", &ns.name, "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&addrs.stdout);
    assert!(
        addrs.contains(&format!("{}/30", ns.ns_ip())),
        "host mode must leave eth0's address in place: {addrs}"
    );
    // The sandbox runs in the pod's namespace.
    let boot = b
        .boot_pid("nginx-host")
        .unwrap_or_else(|| panic!("no pid in `rvisor state`\n{}", server.dump()));
    let boot_ns = std::fs::read_link(format!("/proc/{boot}/ns/net")).unwrap();
    let pod_ns = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(ns.path()).unwrap().ino()
    };
    assert_eq!(
        boot_ns.to_string_lossy(),
        format!("net:[{pod_ns}]"),
        "rvisor boot is not in the pod's network namespace"
    );
}

/// Runs `sh -c SCRIPT` in `rvisor --network=host run` with a fresh namespace ($HOST_IP,
/// $POD_IP in the environment).
fn run_script(tag: &str, script: &str) -> Outcome {
    let ns = NetNs::new(tag);
    let b = NetBundle::new(&format!("net-{tag}"), Some(&ns), &["/bin/sh", "-c", script]);
    let (host_ip, pod_ip) = (ns.host_ip(), ns.ns_ip());
    b.edit(|c| {
        let env = c["process"]["env"].as_array_mut().unwrap();
        env.push(format!("HOST_IP={host_ip}").into());
        env.push(format!("POD_IP={pod_ip}").into());
    });
    b.run_rvisor(HOST, &format!("{tag}-c"))
}

#[test]
fn python_http_server_on_loopback_serves_urllib_in_host_mode() {
    let script = format!(
        "exec python3 -c '{}'",
        PY_HTTP_LOOPBACK.replace('\'', "'\\''")
    );
    let o = run_script("hpyhttp", &script);
    assert_eq!(o.stdout_str(), PY_HTTP_LOOPBACK_OUT, "{}", o.dump());
    o.assert_code(0);
}

#[test]
fn udp_echo_between_two_guest_processes_in_host_mode() {
    let script = format!(
        "exec python3 -c '{}' \"$POD_IP\"",
        PY_UDP_ECHO.replace('\'', "'\\''")
    );
    let o = run_script("hpyudp", &script);
    assert_eq!(o.stdout_str(), py_udp_echo_out(), "{}", o.dump());
    o.assert_code(0);
}

/// The guest's TCP client reaches a server on the host end of the veth (a host process
/// outside the sandbox) in host mode.
#[test]
fn guest_tcp_client_reaches_a_server_on_the_host_end_in_host_mode() {
    let ns = NetNs::new("htcp");
    let listener = std::net::TcpListener::bind((ns.host_ip().as_str(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf.to_ascii_uppercase()).unwrap();
    });
    let script = format!(
        "exec python3 -c 'import socket,sys; s=socket.create_connection((sys.argv[1], {port}), timeout=30); \
         s.sendall(b\"hello\"); print(s.recv(5).decode())' \"$HOST_IP\""
    );
    let b = NetBundle::new("net-htcp", Some(&ns), &["/bin/sh", "-c", &script]);
    let host_ip = ns.host_ip();
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(format!("HOST_IP={host_ip}").into())
    });
    let o = b.run_rvisor(HOST, "htcp-c");
    assert_eq!(o.stdout_str(), "HELLO\n", "{}", o.dump());
    server.join().unwrap();
}
