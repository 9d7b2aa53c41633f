//! Real workloads on the sandbox's file system (issue 5): a compiler, git, archives and
//! copies over the default overlay root, compared with the same commands run natively in a
//! fresh host folder; and a guest that tries every way out of its root.

use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rvisor_tests::*;

const ESCAPE_PROG: &str = env!("RVISOR_TEST_PROG_ESCAPE");

fn bash(script: &str) -> Cmd {
    Cmd::new("/bin/bash").args(["-c", script]).env("PATH", SYSTEM_PATH).env("HOME", "/root")
}

/// Runs `script` natively with `$1` a fresh host folder, and in rvisor with `$1` a fresh
/// folder under /tmp (on the overlay root when the host's /tmp is not empty); stdout and
/// exit status must agree and the native run must succeed.
#[track_caller]
fn same_in_fresh_dir(what: &str, script: &str) -> Outcome {
    let dir = TempDir::new(what);
    let native = run_native(&bash(script).args(["script", &dir.path().to_string_lossy()]));
    native.assert_code(0);
    let in_sandbox = format!("d=$(mktemp -d /tmp/rvisor-{what}.XXXXXX) && set -- \"$d\" && {{ {script}\n}}");
    let sandboxed = run_rvisor(&[], &bash(&in_sandbox));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor and native differ for {what}:\n{report}");
    }
    native
}

#[test]
fn gcc_compiles_and_runs_a_program_in_tmp() {
    require_program("/usr/bin/gcc", "gcc");
    // The acceptance command as given, in the sandbox's /tmp.
    let script = r#"cd /tmp && printf '#include <stdio.h>\nint main(){puts("built");}' > h.c && gcc h.c -o h && ./h"#;
    let o = run_rvisor(&[], &bash(script));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "built\n", "{}", o.dump());
    // And a slightly larger build: two units, a static library, -O2.
    let out = same_in_fresh_dir(
        "gcc",
        r#"cd "$1" && echo 'int sq(int x){return x*x;}' > sq.c &&
           printf '%s\n' '#include <stdio.h>' 'int sq(int);' 'int main(){printf("%d\n", sq(7));return 0;}' > main.c &&
           gcc -O2 -c sq.c && ar rcs libsq.a sq.o && gcc -O2 main.c -L. -lsq -o prog && ./prog && ls"#,
    );
    assert_eq!(out.stdout_str(), "49\nlibsq.a\nmain.c\nprog\nsq.c\nsq.o\n");
}

#[test]
fn git_init_add_commit_log() {
    require_program("/usr/bin/git", "git");
    let script = "git init -q /tmp/r && cd /tmp/r && git config user.email a@b && git config user.name t && \
                  echo x > f && git add f && git commit -qm m && git log --oneline | wc -l";
    let o = run_rvisor(&[], &bash(script));
    o.assert_code(0);
    assert_eq!(o.stdout_str().trim(), "1", "{}", o.dump());
    same_in_fresh_dir(
        "git",
        r#"cd "$1" && git init -q r && cd r && git config user.email a@b && git config user.name t &&
           for i in 1 2 3; do echo $i >> f; git add f; git commit -qm "c$i"; done &&
           git checkout -qb side && echo s > s && git add s && git commit -qm side &&
           git checkout -q - && git merge -q --no-edit side && git log --format=%s | sort && git status --short && git fsck --no-progress 2>&1 | wc -l"#,
    );
}

#[test]
fn tar_sha256sum_cp_a_mv_and_rm_rf_match_native() {
    let out = same_in_fresh_dir(
        "archive",
        r#"set -e; cd "$1"
           mkdir -p src/a/b src/c
           for i in 1 2 3; do echo "file $i" > src/a/f$i; done
           head -c 300000 /bin/bash > src/a/b/big
           ln -s f1 src/a/link
           ln src/a/f2 src/c/hard
           chmod 0750 src/c; chmod 0604 src/a/f3
           find src -exec touch -h -d @1000000000 {} +
           tar czf t.tgz src
           mkdir out && tar xzf t.tgz -C out
           (cd out/src && find . -type f | sort | xargs sha256sum) > sums
           (cd out/src && sha256sum -c ../../sums)
           cp -a out/src copy
           mv copy moved
           mv moved/a moved/a2
           find moved ! -type d -printf '%p %y %m %s %T@ %l\n' | sort
           find moved -type d -printf '%p %m\n' | sort
           stat -c '%h' moved/c/hard moved/a2/f2
           rm -rf out moved
           ls"#,
    );
    assert!(out.stdout_str().contains("./a/b/big: OK"), "{}", out.dump());
}

/// OUTSIDE/secret must stay out of reach of a sandbox whose root is OUTSIDE/root.
struct EscapeLayout {
    outside: TempDir,
}

impl EscapeLayout {
    fn new() -> EscapeLayout {
        let outside = TempDir::new("escape");
        let o = outside.path();
        let root = o.join("root");
        std::fs::create_dir_all(root.join("swapdir")).unwrap();
        std::fs::write(o.join("secret"), "SECRET\n").unwrap();
        std::fs::write(root.join("secret"), "INSIDE\n").unwrap();
        std::fs::write(root.join("swapdir/secret"), "INSIDE\n").unwrap();
        symlink(o.join("secret"), root.join("abs")).unwrap();
        symlink("/etc/shadow", root.join("shadow")).unwrap();
        symlink("../secret", root.join("rel")).unwrap();
        // /swap starts as the directory; /swap_alt is the way out the test swaps in.
        std::fs::rename(root.join("swapdir"), root.join("swap")).unwrap();
        symlink(o, root.join("swap_alt")).unwrap();
        std::fs::copy(ESCAPE_PROG, root.join("escape")).unwrap();
        EscapeLayout { outside }
    }

    fn root(&self) -> std::path::PathBuf {
        self.outside.path().join("root")
    }

    fn run(&self, do_flags: &[&str], args: &[&str]) -> Outcome {
        let root = self.root();
        let mut flags = vec!["--rootfs", root.to_str().unwrap()];
        flags.extend_from_slice(do_flags);
        run_rvisor_do(&[], &flags, &Cmd::new("/escape").args(args))
    }
}

fn assert_nothing_outside(o: &Outcome) {
    let out = o.stdout_str();
    assert!(!out.contains("SECRET"), "read a file outside the root:\n{}", o.dump());
    if let Ok(shadow) = std::fs::read_to_string("/etc/shadow") {
        if let Some(first) = shadow.lines().next().filter(|l| !l.is_empty()) {
            assert!(!out.contains(first), "read the host's /etc/shadow:\n{}", o.dump());
        }
    }
}

fn check_static_escapes(do_flags: &[&str]) {
    let layout = EscapeLayout::new();
    let o = layout.run(do_flags, &["static"]);
    assert_nothing_outside(&o);
    o.assert_code(0);
    let out = o.stdout_str();
    for expected in [
        "dotdot: INSIDE",
        "dotdot-relative: INSIDE",
        "chdir-up: INSIDE",
        "abs-symlink: ENOENT",
        "shadow-symlink: ENOENT",
        "rel-symlink: INSIDE",
        "proc-self-root: INSIDE",
        "proc-1-root: INSIDE",
        "proc-self-root-listing-is-root: yes",
        "proc-1-root-listing-is-root: yes",
        "openat-dotdot: INSIDE",
        "openat2-beneath-dotdot: EXDEV",
        "linkat-follow-abs: ENOENT",
    ] {
        assert!(out.lines().any(|l| l == expected), "expected {expected:?}:\n{}", o.dump());
    }
    // Links across the root's edge never name the outside file; /tmp is a tmpfs of its own.
    assert!(out.lines().any(|l| l == "link-abs: EXDEV"), "{}", o.dump());
    assert!(std::fs::read_to_string(layout.outside.path().join("secret")).unwrap() == "SECRET\n");
}

#[test]
fn guest_cannot_reach_files_outside_its_root_over_the_overlay() {
    check_static_escapes(&[]);
}

#[test]
fn guest_cannot_reach_files_outside_its_root_writing_through() {
    check_static_escapes(&["--overlay=none"]);
}

/// The test swaps /swap between a directory and a symlink to the folder holding the secret
/// (renameat2 RENAME_EXCHANGE, atomic) while the guest opens /swap/secret again and again.
#[test]
fn symlink_swapped_under_a_looping_open_never_leads_outside() {
    let layout = EscapeLayout::new();
    let root = layout.root();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let a = std::ffi::CString::new(root.join("swap").into_os_string().into_encoded_bytes()).unwrap();
        let b = std::ffi::CString::new(root.join("swap_alt").into_os_string().into_encoded_bytes()).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
                let r = unsafe {
                    libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE)
                };
                assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut outcomes = Vec::new();
    for flags in [&[][..], &["--overlay=none"][..]] {
        outcomes.push(layout.run(flags, &["race", "3000"]));
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) > 0);
    for o in &outcomes {
        assert_nothing_outside(o);
        o.assert_code(0);
        assert!(o.stdout_str().contains("race-only-inside-or-missing: yes"), "{}", o.dump());
    }
}

/// Named pipes: a blocking open waits for the other end (in either order), O_RDWR does
/// not, and an open with no partner at all blocks until `timeout` kills it. Coreutils
/// `cat` of a regular file to a pipe (copy_file_range first, then read/write) is part of it.
#[test]
fn fifo_opens_wait_for_the_other_end_like_native() {
    let out = same_in_fresh_dir(
        "fifo",
        r#"cd "$1" && mkfifo p
           cat p > out &
           echo hello > p
           wait
           cat out
           { echo one; echo two; } > p &
           { read a; read b; } < p; echo "$a $b"
           wait
           timeout 0.3 sh -c 'exec 3>p'; echo "writer alone: $?"
           timeout 0.3 sh -c 'exec 3<p'; echo "reader alone: $?"
           sh -c 'exec 3<>p; echo rdwr ok'
           sh -c 'exec 3>p; echo writer met reader > w' & sh -c 'exec 3<p; echo reader met writer'; wait; cat w
           stat -c '%F %a' p"#,
    );
    assert!(out.stdout_str().starts_with("hello\none two\nwriter alone: 124\nreader alone: 124\nrdwr ok\n"), "{}", out.dump());
}
