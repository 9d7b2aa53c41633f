//! The rvisor command line itself: `--version`, `help syscalls`, and clean failures on bad
//! input (one `rvisor: ` line on stderr, the right exit code, no panic, no hang).

use rvisor_syscalls::nr;
use rvisor_tests::*;
use std::collections::BTreeMap;

#[test]
fn version_prints_name_and_version() {
    let o = run_rvisor_cli(&["--version"]);
    o.assert_code(0);
    assert_eq!(
        o.stdout_str(),
        format!("rvisor {}\n", env!("CARGO_PKG_VERSION")),
        "{}",
        o.dump()
    );
}

/// Parses `rvisor help syscalls` into number -> (name, level), failing on malformed lines.
fn help_syscalls() -> BTreeMap<u64, (String, String)> {
    let o = run_rvisor_cli(&["help", "syscalls"]);
    o.assert_code(0);
    let mut table = BTreeMap::new();
    for line in o.stdout_str().lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [number, name, level] = fields[..] else {
            panic!(
                "malformed line {line:?}: expected `<nr> <name> <level>`\n{}",
                o.dump()
            );
        };
        let number: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("bad number in {line:?}"));
        assert!(
            ["full", "partial", "none"].contains(&level),
            "level of {line:?} must be full, partial or none"
        );
        let previous = table.insert(number, (name.to_string(), level.to_string()));
        assert!(previous.is_none(), "syscall {number} is listed twice");
    }
    table
}

#[test]
fn help_syscalls_lists_every_x86_64_syscall_once_with_a_level() {
    let table = help_syscalls();
    assert_eq!(table.len(), 374, "0..=334 and 424..=462");
    for (number, (name, _)) in &table {
        assert_eq!(
            Some(name.as_str()),
            nr::name(*number),
            "name of syscall {number}"
        );
    }
    for number in 0..=nr::MAX_NR as u64 {
        assert_eq!(
            table.contains_key(&number),
            nr::name(number).is_some(),
            "syscall {number}"
        );
    }
    for (number, name) in [(0, "read"), (59, "execve"), (462, "mseal")] {
        assert_eq!(table[&number].0, name);
    }
    assert!(
        !table.keys().any(|n| (335..=423).contains(n)),
        "335..=423 are not syscalls on x86_64"
    );
}

#[test]
fn help_syscalls_marks_the_basics_as_supported() {
    // Everything the other tests run needs these; "none" would contradict them passing.
    let table = help_syscalls();
    for number in [
        nr::READ,
        nr::WRITE,
        nr::OPENAT,
        nr::MMAP,
        nr::EXECVE,
        nr::EXIT_GROUP,
    ] {
        let (name, level) = &table[&(number as u64)];
        assert_ne!(level, "none", "{name} is listed as unsupported");
    }
}

#[test]
fn missing_program_exits_127() {
    let o = run_rvisor_cli(&["do", "/nonexistent"]);
    assert_clean_error(&o);
    o.assert_code(127);
    assert!(
        o.stderr_str().contains("/nonexistent"),
        "the message should name the program\n{}",
        o.dump()
    );
}

/// An executable file the kernel cannot run: natively ENOEXEC, in rvisor exit status 126.
fn unrunnable_file_exits_126(name: &str, contents: &[u8]) {
    let dir = TempDir::new(name);
    let path = dir.write(name, contents, 0o755);
    assert_eq!(
        native_execve_errno(&path),
        Some(libc::ENOEXEC),
        "natively, execve({}) should fail with ENOEXEC",
        path.display()
    );
    let o = run_rvisor_cli(&[std::ffi::OsStr::new("do"), path.as_os_str()]);
    assert_clean_error(&o);
    o.assert_code(126);
    assert!(
        o.stderr_str().contains(&*path.to_string_lossy()),
        "the message should name the program\n{}",
        o.dump()
    );
}

#[test]
fn executable_text_file_without_shebang_exits_126() {
    unrunnable_file_exits_126("not-a-program", b"this is text, not a program\nexit 0\n");
}

#[test]
fn truncated_elf_exits_126() {
    require_busybox();
    let elf = std::fs::read(BUSYBOX).unwrap();
    unrunnable_file_exits_126("truncated-elf", &elf[..100]);
}

#[test]
fn do_without_a_command_is_a_usage_error() {
    let o = run_rvisor_cli(&["do"]);
    assert_clean_error(&o);
    o.assert_code(2);
}
