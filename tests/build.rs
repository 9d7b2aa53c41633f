//! Builds the C test programs in `c/` with the system's gcc (static, so that they run in the
//! sandbox without a dynamic loader) and tells the tests where they are:
//! `RVISOR_TEST_PROG_<NAME>` for `c/<name>.c`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let c_dir = manifest_dir.join("c");
    println!("cargo:rerun-if-changed={}", c_dir.display());
    println!("cargo:rerun-if-env-changed=CC");

    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&c_dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", c_dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();

    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let stem = src.file_stem().unwrap().to_str().unwrap();
        let exe = out_dir.join(stem);
        compile(&cc, src, &exe);
        println!(
            "cargo:rustc-env=RVISOR_TEST_PROG_{}={}",
            stem.to_ascii_uppercase().replace('-', "_"),
            exe.display()
        );
    }
}

fn compile(cc: &str, src: &Path, exe: &Path) {
    let output = Command::new(cc)
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(exe)
        .arg(src)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{cc}` to build {}: {e}; install gcc and libc6-dev (./test.sh does)",
                src.display()
            )
        });
    if !output.status.success() {
        panic!(
            "`{cc} -static` failed for {} ({}):\n{}{}\n(static linking needs libc6-dev; ./test.sh installs it)",
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
