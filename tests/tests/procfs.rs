//! procfs and mount(2) in rvisor: `ps` lists exactly the sandbox's processes under their
//! sandbox pids, /proc/self files parse like Linux's, magic links stay inside the sandbox
//! root, and a guest root can mount and unmount a tmpfs.

use rvisor_tests::*;

fn sh(script: &str) -> Cmd {
    Cmd::new("/bin/sh").args(["-c", script]).env("PATH", SYSTEM_PATH)
}

/// The rows of `ps -ef` output as (pid, ppid, cmd).
fn ps_rows(out: &str) -> Vec<(i32, i32, String)> {
    out.lines()
        .filter(|l| !l.starts_with("UID"))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 8 {
                return None;
            }
            Some((cols[1].parse().ok()?, cols[2].parse().ok()?, cols[7..].join(" ")))
        })
        .collect()
}

#[test]
fn ps_ef_lists_exactly_the_sandbox_processes() {
    require_program("/usr/bin/ps", "procps");
    let out = run_rvisor(&[], &sh("sleep 5 & echo bg=$!; ps -ef"));
    out.assert_code(0);
    let text = out.stdout_str();
    let bg: i32 = text.lines().find_map(|l| l.strip_prefix("bg=")).and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("{}", out.dump()));
    let rows = ps_rows(&text);
    assert_eq!(rows.len(), 3, "{}", out.dump());
    assert_eq!(rows[0].0, 1, "{}", out.dump());
    assert_eq!(rows[0].1, 0, "{}", out.dump());
    assert!(rows[0].2.starts_with("/bin/sh -c sleep 5"), "{}", out.dump());
    assert!(rows.iter().any(|r| r.0 == bg && r.1 == 1 && r.2 == "sleep 5"), "{}", out.dump());
    assert!(rows.iter().any(|r| r.0 != bg && r.0 != 1 && r.1 == 1 && r.2 == "ps -ef"), "{}", out.dump());
}

/// Prints the keys of /proc/self/status, one a line, and checks every maps line.
const PY_STATUS_MAPS: &str = r#"
import re
keys = [l.split(':', 1)[0] for l in open('/proc/self/status')]
for k in keys:
    print(k)
pat = re.compile(r'^[0-9a-f]+-[0-9a-f]+ [r-][w-][x-][ps] [0-9a-f]{8} [0-9a-f]{2,}:[0-9a-f]{2,} \d+ *(\S.*)?$')
lines = open('/proc/self/maps').read().splitlines()
bad = [l for l in lines if not pat.match(l)]
print('maps', len(lines) > 3, bad, any('[stack]' in l for l in lines))
"#;

#[test]
fn python_reads_proc_self_status_and_maps_like_on_linux() {
    require_program("/usr/bin/python3", "python3");
    let cmd = Cmd::new("/usr/bin/python3").args(["-c", PY_STATUS_MAPS]);
    let native = run_native(&cmd);
    native.assert_code(0);
    let sandboxed = run_rvisor(&[], &cmd);
    sandboxed.assert_code(0);
    let nkeys: Vec<String> = native.stdout_str().lines().map(String::from).collect();
    let skeys: Vec<String> = sandboxed.stdout_str().lines().map(String::from).collect();
    assert_eq!(skeys.last().map(String::as_str), Some("maps True [] True"), "{}", sandboxed.dump());
    // Every key rvisor shows is one Linux shows (the host kernel may have a few more).
    for k in &skeys[..skeys.len() - 1] {
        assert!(nkeys.contains(k), "rvisor shows {k:?}, Linux does not\n{}", sandboxed.dump());
    }
    for k in ["Name", "State", "Tgid", "Pid", "PPid", "Uid", "Gid", "VmRSS", "Threads", "SigBlk", "SigIgn", "SigCgt", "Cpus_allowed_list", "voluntary_ctxt_switches"] {
        assert!(skeys.iter().any(|s| s == k), "{k} missing\n{}", sandboxed.dump());
    }
}

#[test]
fn proc_self_stat_has_linuxs_field_count() {
    assert_same(&sh("read -r line < /proc/self/stat; set -- $line; echo $#; echo $3"));
}

#[test]
fn readlink_of_proc_self_exe_and_stdio_fds() {
    assert_same(&Cmd::new("/usr/bin/readlink").arg("/proc/self/exe"));
    let out = run_rvisor(&[], &sh("readlink /proc/self/fd/1; readlink /proc/self/fd/3 3</etc/hostname; readlink /proc/self/cwd; cat /proc/self/fd/4 4</etc/hostname"));
    out.assert_code(0);
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let stdout = out.stdout_str();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.dump());
    assert!(lines[0].starts_with("pipe:["), "{}", out.dump());
    assert_eq!(lines[1], "/etc/hostname", "{}", out.dump());
    assert_eq!(lines[2], "/", "{}", out.dump());
    assert_eq!(lines[3], host.trim_end(), "{}", out.dump());
}

#[test]
fn proc_root_links_do_not_lead_outside_the_sandbox_root() {
    let out = run_rvisor(&[], &sh("ls /proc/1/root/.. > /dev/shm/a; ls / > /dev/shm/b; cmp /dev/shm/a /dev/shm/b && echo same; cd -P /proc/self/root/../.. && /bin/pwd; readlink /proc/1/root"));
    out.assert_code(0);
    assert_eq!(out.stdout_str(), "same\n/\n/\n", "{}", out.dump());
}

#[test]
fn system_files_parse_with_the_usual_tools() {
    assert_same(&Cmd::new("/usr/bin/nproc"));
    let out = run_rvisor(&[], &sh("free -k | grep -c '^Mem:'; grep -c '^processor' /proc/cpuinfo; nproc; cat /proc/sys/kernel/osrelease; uname -r; head -c 4 /proc/uptime | grep -c '^[0-9]'; grep -c '^btime ' /proc/stat; cat /proc/sys/kernel/pid_max"));
    out.assert_code(0);
    let l: Vec<String> = out.stdout_str().lines().map(String::from).collect();
    assert_eq!(l.len(), 8, "{}", out.dump());
    assert_eq!(l[0], "1", "{}", out.dump());
    assert_eq!(l[1], l[2], "cpuinfo processors = nproc\n{}", out.dump());
    assert_eq!(l[3], l[4], "osrelease = uname -r\n{}", out.dump());
    assert_eq!((l[5].as_str(), l[6].as_str(), l[7].as_str()), ("1", "1", "4194304"), "{}", out.dump());
}

#[test]
fn guest_root_mounts_and_unmounts_a_tmpfs() {
    if caller_uid() != 0 {
        eprintln!("skipped: needs root (rvisor do runs as the caller)");
        return;
    }
    let script = "mkdir -p /dev/shm/m && mount -t tmpfs -o size=1m,mode=755 none /dev/shm/m && grep ' /dev/shm/m ' /proc/self/mounts && \
                  echo hi > /dev/shm/m/x && ls /dev/shm/m && cd /dev/shm/m && { umount /dev/shm/m; echo busy=$?; } && cd / && umount /dev/shm/m && ls /dev/shm/m && \
                  grep -c ' /dev/shm/m ' /proc/self/mounts; mount --bind /etc /dev/shm/m && test -f /dev/shm/m/hostname && echo bound && umount /dev/shm/m";
    let out = run_rvisor(&[], &sh(script));
    assert_eq!(
        out.stdout_str(),
        "none /dev/shm/m tmpfs rw,size=1024k,mode=755 0 0\nx\nbusy=32\n0\nbound\n",
        "{}",
        out.dump()
    );
}

/// The real uid of the test process.
fn caller_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:").and_then(|v| v.split_whitespace().next()?.parse().ok())))
        .unwrap_or(u32::MAX)
}
