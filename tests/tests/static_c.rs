//! A static C program (tests/c/syscalls.c) exercising file, directory, memory and time
//! syscalls: its output (deterministic facts, sizes, checksums, errno names) and exit status
//! must be the same natively and in rvisor.

use rvisor_tests::*;

fn same_as_native(section: &str) {
    let (native, _) = assert_same(&Cmd::new(progs::SYSCALLS).arg(section));
    // The program counts its failed checks in its exit status: natively there are none.
    native.assert_code(0);
    assert!(
        native.stdout_str().contains(&format!("== {section}\n")),
        "{}",
        native.dump()
    );
}

#[test]
fn read_write_lseek_pread_match_native() {
    same_as_native("io");
}

#[test]
fn openat_newfstatat_getdents64_readlinkat_match_native() {
    same_as_native("fs");
}

#[test]
fn mmap_64mib_mprotect_munmap_brk_match_native() {
    same_as_native("mm");
}

#[test]
fn clock_gettime_and_nanosleep_facts_match_native() {
    same_as_native("time");
}

#[test]
fn mincore_of_a_huge_reserved_mapping_and_across_a_hole_matches_native() {
    assert_same(&Cmd::new(progs::MINCORE_HUGE));
}
