//! An unimplemented syscall returns ENOSYS to the guest and is named once in the debug log.

use rvisor_syscalls::nr;
use rvisor_tests::*;

/// Harmless syscalls rvisor is not expected to implement early; the first one that
/// `rvisor help syscalls` lists as "none" is used (io_setup if the list cannot be read).
const CANDIDATES: [&str; 4] = ["io_setup", "lookup_dcookie", "tuxcall", "vserver"];

fn unimplemented_syscall() -> (&'static str, usize) {
    let o = run_rvisor_cli(&["help", "syscalls"]);
    let listed_none = |name: &str| {
        o.stdout_str().lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3 && f[1] == name && f[2] == "none"
        })
    };
    let name = if o.code() == Some(0) {
        *CANDIDATES.iter().find(|n| listed_none(n)).unwrap_or_else(|| {
            panic!("none of {CANDIDATES:?} is listed as \"none\" by `rvisor help syscalls`; pick another")
        })
    } else {
        CANDIDATES[0]
    };
    (name, nr::number(name).unwrap())
}

#[test]
fn unimplemented_syscall_returns_enosys_and_is_logged_once() {
    let (name, number) = unimplemented_syscall();
    let logs = TempDir::new("debug-log");
    let log_dir = logs.path().to_str().unwrap();
    let o = run_rvisor(
        &["--debug-log", log_dir],
        &Cmd::new(progs::UNIMPLEMENTED).arg(number.to_string()),
    );
    o.assert_code(0);
    assert_eq!(
        o.stdout_str(),
        "first call: ENOSYS\nsecond call: ENOSYS\n",
        "{name} ({number}) should fail with ENOSYS both times\n{}",
        o.dump()
    );

    let lines = log_lines(logs.path());
    assert!(
        !lines.is_empty(),
        "--debug-log {log_dir} wrote no log files"
    );
    let mentions: Vec<_> = lines
        .iter()
        .filter(|(_, l)| l.contains("unimplemented syscall") && contains_word(l, name))
        .collect();
    assert_eq!(
        mentions.len(),
        1,
        "the logs should report unimplemented syscall {name} exactly once (it was called twice); \
         matching lines: {mentions:#?}\nlog files: {:#?}",
        lines
            .iter()
            .map(|(f, _)| f)
            .collect::<std::collections::BTreeSet<_>>()
    );
}

/// Each sandbox process writes its own log, named by its host pid (it is pid 1 of its own
/// PID namespace, so a name from its own pid would make every sandbox share one file).
#[test]
fn each_sandbox_process_gets_its_own_log_named_by_its_host_pid() {
    let logs = TempDir::new("debug-log-names");
    let log_dir = logs.path().to_str().unwrap();
    for _ in 0..2 {
        run_rvisor(&["--debug-log", log_dir], &Cmd::new("/bin/true")).assert_code(0);
    }
    let mut boot_logs: Vec<String> = std::fs::read_dir(logs.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rvisor.boot."))
        .collect();
    boot_logs.sort();
    assert_eq!(boot_logs.len(), 2, "{boot_logs:?}");
    assert!(
        !boot_logs.iter().any(|n| n == "rvisor.boot.1.log"),
        "a boot log is named by the namespace pid: {boot_logs:?}"
    );
}
