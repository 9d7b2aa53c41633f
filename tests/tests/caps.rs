//! Capabilities in rvisor: capget/capset, the bounding and ambient sets through prctl,
//! what setuid, setfsuid and execve do to the sets, PR_SET_NO_NEW_PRIVS, and root's file
//! checks once CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN, CAP_SYS_ADMIN,
//! CAP_SETUID or CAP_SETGID are gone. `c/caps.c` runs each part in a forked child (so the
//! test process keeps its capabilities), natively as root in a fresh folder and in rvisor
//! in its /dev/shm; outputs and exit statuses must match.

use rvisor_tests::*;

/// `c/caps.c` (built by build.rs): `caps BASE`.
const CAPS_PROG: &str = env!("RVISOR_TEST_PROG_CAPS");

#[test]
fn capability_syscalls_and_root_without_capabilities_match_native() {
    let dir = TempDir::new("caps");
    let native = run_native(&Cmd::new(CAPS_PROG).arg(dir.path()));
    native.assert_code(0);
    // The parts this test relies on really ran natively (root with the usual set).
    let out = native.stdout_str();
    assert!(
        out.contains("  write secret: -1 EACCES\n"),
        "{}",
        native.dump()
    );
    assert!(out.contains("after exec: eff"), "{}", native.dump());
    let sandboxed = run_rvisor(&[], &Cmd::new(CAPS_PROG).arg("/dev/shm"));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor and native differ for caps:\n{report}");
    }
}

#[test]
fn a_root_guest_starts_with_every_capability_and_no_no_new_privs() {
    let cmd =
        Cmd::new("/bin/grep").args(["-E", "^(CapEff|CapBnd|NoNewPrivs)", "/proc/self/status"]);
    let out = run_rvisor(&[], &cmd);
    out.assert_code(0);
    assert_eq!(
        out.stdout_str(),
        "CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t0\n",
        "{}",
        out.dump()
    );
}
