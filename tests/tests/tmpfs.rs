//! Writable files in rvisor: its private tmpfs mount at /dev/shm (and at /tmp when the root's
//! /tmp is empty; the host's /tmp is not, so it stays visible here). Programs that
//! create, rename, link and remove files, map them shared, and use POSIX shared memory and
//! semaphores behave as natively. The native run works in a fresh folder of the host's
//! temporary directory, the sandboxed one in its /dev/shm; outputs and exit statuses must match.

use rvisor_tests::*;

/// `c/tmpfs.c` (built by build.rs): `tmpfs BASE [SECTION...]`.
const TMPFS_PROG: &str = env!("RVISOR_TEST_PROG_TMPFS");

/// Runs `cmd_for(base)` natively in a fresh host folder and in rvisor with `/dev/shm`, and
/// fails unless stdout and exit status agree (and the native run succeeds).
#[track_caller]
fn same_in_tmp(what: &str, cmd_for: impl Fn(&str) -> Cmd) -> (Outcome, Outcome) {
    let dir = TempDir::new(what);
    let native = run_native(&cmd_for(&dir.path().to_string_lossy()));
    native.assert_code(0);
    let sandboxed = run_rvisor(&[], &cmd_for("/dev/shm"));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (in /dev/shm) and native (in a fresh folder) differ for {what}:\n{report}");
    }
    (native, sandboxed)
}

fn section(name: &str) {
    let (native, _) = same_in_tmp(name, |base| Cmd::new(TMPFS_PROG).args([base, name]));
    assert!(native.stdout_str().starts_with(&format!("== {name}\n")), "{}", native.dump());
}

fn bash(script: &str) -> Cmd {
    Cmd::new("/bin/bash").args(["-c", script]).env("PATH", SYSTEM_PATH)
}

#[test]
fn open_creat_o_excl_o_trunc_umask_and_dangling_symlinks_match_native() {
    section("create");
}

#[test]
fn mkdir_rmdir_unlink_errnos_and_link_counts_match_native() {
    section("dirs");
}

#[test]
fn rename_renameat2_noreplace_exchange_and_cwd_paths_match_native() {
    section("rename");
}

#[test]
fn hard_links_symlinks_and_unlinked_open_files_match_native() {
    section("links");
}

#[test]
fn chmod_chown_utimensat_truncate_fallocate_match_native() {
    section("attrs");
}

#[test]
fn sticky_bit_and_permissions_stop_an_unprivileged_user_like_native() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the native run needs root (it drops to uid 1000 in a child)");
        return;
    }
    section("sticky");
}

#[test]
fn o_tmpfile_unnamed_file_linkat_through_fd_and_proc_and_o_excl_match_native() {
    section("tmpfile");
}

#[test]
fn o_tmpfile_on_the_overlay_root_matches_native() {
    // The host's /tmp is not empty, so the sandbox's /tmp is the overlay root's.
    let dir = TempDir::new("tmpfile-overlay");
    let native = run_native(&Cmd::new(TMPFS_PROG).args([&*dir.path().to_string_lossy(), "tmpfile"]));
    native.assert_code(0);
    let script = format!("d=$(mktemp -d /tmp/rvisor-tmpfile.XXXXXX) && exec '{TMPFS_PROG}' \"$d\" tmpfile");
    let sandboxed = run_rvisor(&[], &bash(&script));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (overlay root) and native differ for O_TMPFILE:\n{report}");
    }
}

#[test]
fn mmap_shared_file_is_seen_by_read_and_by_a_forked_child() {
    section("mmap");
}

#[test]
fn shm_open_ftruncate_mmap_shared_across_fork_matches_native() {
    section("shm");
}

#[test]
fn sem_open_post_wait_ping_pong_across_fork_matches_native() {
    section("sem");
}

#[test]
fn shell_script_writes_appends_renames_links_and_removes_files_like_native() {
    same_in_tmp("shell", |base| {
        bash(&format!(
            r#"cd '{base}' && echo one > a && echo two >> a && cat a && mv a b && ls
mkdir -p d/e && touch d/e/f && ln b c && stat -c '%h %s %F' b c && stat -c '%h %F' d
ln -s b s && readlink s && cat s && rm -r d && ls
wc -c < b && : > b && wc -c < b && rm -f b c s && ls -A | wc -l
for i in $(seq 1 50); do echo $i > f$i; done; cat f* | sort -n | tail -1; rm f*; ls | wc -l"#
        ))
    });
}

#[test]
fn python_multiprocessing_pool_works() {
    require_program("/usr/bin/python3", "python3");
    let (native, _) = assert_same(
        &Cmd::new("python3")
            .args(["-c", "import multiprocessing as m; print(m.Pool(2).map(abs,[-1,-2]))"])
            .env("PATH", SYSTEM_PATH),
    );
    assert_eq!(native.stdout_str(), "[1, 2]\n", "{}", native.dump());
}

#[test]
fn dev_shm_is_an_empty_sticky_private_tmpfs_and_root_writes_stay_in_the_sandbox() {
    let marker = format!("rvisor-tmpfs-test-{}", std::process::id());
    let o = run_rvisor(
        &[],
        &bash(&format!(
            r#"stat -c '%a %U %F' /dev/shm; stat -f -c %T /dev/shm
ls -A /dev/shm | wc -l; ls /dev | grep -x shm
echo x > /dev/shm/{marker} && cat /dev/shm/{marker}
mkdir /usr 2>/dev/null; echo "mkdir /usr: $?"
touch /etc/{marker} && ls /etc/{marker}
echo end"#
        )),
    );
    o.assert_code(0);
    assert_eq!(
        o.stdout_str(),
        format!("1777 root directory\ntmpfs\n0\nshm\nx\nmkdir /usr: 1\n/etc/{marker}\nend\n"),
        "{}",
        o.dump()
    );
    // Read-only without the overlay: the gofer refuses writes to the host's root.
    let o = run_rvisor_do(&[], &["--read-only"], &bash(&format!("touch /etc/{marker} 2>&1 | grep -c 'Read-only file system'")));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "1\n", "{}", o.dump());
    assert!(!std::path::Path::new("/dev/shm").join(&marker).exists(), "the sandbox's /dev/shm file reached the host");
    assert!(!std::path::Path::new("/etc").join(&marker).exists());
}

#[test]
fn a_non_empty_root_tmp_is_not_hidden_by_a_tmpfs() {
    let dir = TempDir::new("visible-tmp");
    let file = dir.write("seen", b"from the host\n", 0o644);
    let o = run_rvisor(&[], &Cmd::new("/bin/busybox").args(["cat", file.to_str().unwrap_or_default()]));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "from the host\n", "{}", o.dump());
}
