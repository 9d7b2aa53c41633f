//! Single-file bind mounts, as Docker and containerd make them for /etc/hosts,
//! /etc/resolv.conf and /etc/hostname: the gofer serves one host file, read-only or
//! read-write, and the guest sees it at the destination file.

use rvisor_tests::oci::Bundle;
use serde_json::json;

#[test]
fn file_bind_mounts_read_only_and_read_write() {
    let script = "cat /etc/hosts; cat /data.txt; cat /etc/hostname; \
                  echo x >> /etc/hosts; echo \"ro write status $?\"; \
                  echo appended >> /data.txt && echo rw write ok; \
                  cat /data.txt; ls -l /etc/hosts | cut -c1-10";
    let b = Bundle::new("oci-file-binds", &["sh", "-c", script]);
    let hosts = b.tmp.path().join("hosts");
    let data = b.tmp.path().join("data.txt");
    let hostname = b.tmp.path().join("hostname");
    let hostname_link = b.tmp.path().join("hostname-link");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    std::fs::write(&data, "host data\n").unwrap();
    std::fs::write(&hostname, "boxname\n").unwrap();
    // The source is a symlink: it is resolved on the host, as runc does.
    std::os::unix::fs::symlink(&hostname, &hostname_link).unwrap();
    std::fs::set_permissions(&hosts, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // The image has a file of its own at /etc/hosts: the bind mount hides it.
    std::fs::write(b.rootfs().join("etc/hosts"), "image hosts\n").unwrap();
    let (hosts_s, data_s, name_s) = (hosts.to_str().unwrap().to_string(), data.to_str().unwrap().to_string(), hostname_link.to_str().unwrap().to_string());
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({ "destination": "/etc/hosts", "type": "bind", "source": hosts_s, "options": ["rbind", "ro"] }));
        m.push(json!({ "destination": "/data.txt", "type": "bind", "source": data_s, "options": ["rbind", "rw"] }));
        m.push(json!({ "destination": "/etc/hostname", "type": "bind", "source": name_s, "options": ["bind", "ro"] }));
    });
    let d = b.rv_detached("run", &["run", "--bundle", b.dir().to_str().unwrap(), "fb1"]);
    assert_eq!(d.code, Some(0), "run: {}", d.stderr);
    let out = std::fs::read_to_string(&d.out).unwrap();
    assert_eq!(
        out,
        "127.0.0.1 localhost\nhost data\nboxname\nro write status 1\nrw write ok\nhost data\nappended\n-rw-r--r--\n",
        "stderr: {}",
        d.stderr
    );
    assert!(d.stderr.contains("/etc/hosts") && d.stderr.contains("Read-only file system"), "{}", d.stderr);
    // The read-write bind changed the host file; the read-only ones and the image did not change.
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "host data\nappended\n");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), "127.0.0.1 localhost\n");
    assert_eq!(std::fs::read_to_string(&hostname).unwrap(), "boxname\n");
    assert_eq!(std::fs::read_to_string(b.rootfs().join("etc/hosts")).unwrap(), "image hosts\n");
    assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
}

#[test]
fn file_bind_source_of_another_type_is_one_clear_error() {
    let b = Bundle::new("oci-fifo-bind", &["true"]);
    let fifo = b.tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated path alive for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let src = fifo.to_str().unwrap().to_string();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({ "destination": "/fifo", "type": "bind", "source": src, "options": ["rbind"] }));
    });
    let o = b.rv(&["run", "--bundle", b.dir().to_str().unwrap(), "fb2"]);
    rvisor_tests::assert_clean_error(&o);
    assert!(o.stderr_str().contains("only directories and regular files"), "{}", o.dump());
    assert!(b.leftovers().is_empty(), "state left behind: {:?}", b.leftovers());
}
