//! The nginx workload: Debian's nginx (one worker, `sendfile on; tcp_nopush on;`) serving a
//! 4 KiB file in a network namespace of its own (a veth pair on 169.254.N.0/30), loaded
//! from the host side with `wrk -t1 -c16 -d10s --latency`. Columns: native (nginx run by
//! `ip netns exec`), runc, runsc `--network=sandbox` and `--network=host`, rvisor
//! `--network=sandbox` and `--network=host`; each runs the same bundle (a root of symlinks
//! and read-only binds of /usr and /etc) with a fresh namespace named in config.json.
//! Prints rows "nginx 4KiB req/s" and "nginx 4KiB p99"; a runtime that is missing or fails
//! gets "-" and a note.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::RUNSC;

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A network namespace with a veth pair; deleted when dropped.
struct NetNs {
    name: String,
    host_if: String,
    n: u8,
}

fn ip(args: &[&str]) -> Result<()> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (Debian package iproute2)")?;
    if !o.status.success() {
        bail!(
            "`ip {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

impl NetNs {
    fn new(tag: &str) -> Result<NetNs> {
        let pid = std::process::id();
        let used = Command::new("ip")
            .args(["-4", "-o", "addr", "show"])
            .output()?;
        let used = String::from_utf8_lossy(&used.stdout).into_owned();
        let start = pid % 254;
        let n = (0..254u32)
            .map(|i| ((start + i) % 254 + 1) as u8)
            .find(|n| !used.contains(&format!("169.254.{n}.")))
            .context("no free 169.254.N.0/30")?;
        let ns = NetNs {
            name: format!("rvb-{tag}-{pid}"),
            host_if: format!("rvb{n}-{}", pid % 1_000_000),
            n,
        };
        ip(&["netns", "add", &ns.name])?;
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns.name,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("169.254.{n}.1/30"),
            "dev",
            &ns.host_if,
        ])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("169.254.{n}.2/30"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &ns.name,
            "route",
            "add",
            "default",
            "via",
            &format!("169.254.{n}.1"),
        ])?;
        Ok(ns)
    }

    fn pod_ip(&self) -> String {
        format!("169.254.{}.2", self.n)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .output();
    }
}

/// The bundle and the site it serves.
struct Site {
    dir: PathBuf,
}

impl Site {
    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    fn nginx_args(&self) -> Vec<String> {
        let w = self.work().display().to_string();
        vec![
            "/usr/sbin/nginx".into(),
            "-e".into(),
            format!("{w}/error.log"),
            "-p".into(),
            w.clone(),
            "-c".into(),
            format!("{w}/nginx.conf"),
        ]
    }

    /// Makes the folder: work/ (config, 4k.bin), bundle/rootfs, bundle/config.json.
    fn make(dir: &Path, rvisor: Option<&Path>) -> Result<Site> {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_dir_all(dir);
        let site = Site {
            dir: dir.to_path_buf(),
        };
        let work = site.work();
        std::fs::create_dir_all(work.join("site"))?;
        for d in [dir, work.as_path(), &work.join("site")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::write(
            work.join("site/4k.bin"),
            (0..4096u32).map(|i| (i * 13) as u8).collect::<Vec<u8>>(),
        )?;
        let w = work.display();
        std::fs::write(
            work.join("nginx.conf"),
            format!(
                "daemon off;\nmaster_process on;\nworker_processes 1;\nuser www-data;\npid {w}/nginx.pid;\n\
                 error_log {w}/error.log;\nevents {{ worker_connections 768; }}\nhttp {{\n  sendfile on;\n  \
                 tcp_nopush on;\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  \
                 access_log off;\n  client_body_temp_path {w}/body;\n  proxy_temp_path {w}/proxy;\n  \
                 fastcgi_temp_path {w}/fastcgi;\n  uwsgi_temp_path {w}/uwsgi;\n  scgi_temp_path {w}/scgi;\n  \
                 server {{\n    listen 80;\n    root {w}/site;\n  }}\n}}\n"
            ),
        )?;
        let rootfs = site.bundle().join("rootfs");
        for d in ["usr", "etc", "tmp", "proc", "sys", "dev", "run", "root"] {
            std::fs::create_dir_all(rootfs.join(d))?;
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            if Path::new("/").join(to).exists() {
                std::os::unix::fs::symlink(to, rootfs.join(link))?;
            }
        }
        let spec = match rvisor {
            Some(bin) => Command::new(bin)
                .arg("spec")
                .arg("--bundle")
                .arg(site.bundle())
                .status(),
            None => Command::new("runc")
                .arg("spec")
                .arg("--bundle")
                .arg(site.bundle())
                .status(),
        };
        match spec {
            Ok(s) if s.success() => {}
            other => bail!("cannot write the bundle's config.json: {other:?}"),
        }
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(site.bundle().join("config.json"))?)?;
        let caps = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_NET_BIND_SERVICE",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!(site.nginx_args());
        c["process"]["cwd"] = work.display().to_string().into();
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = serde_json::json!(caps);
        }
        c["root"]["readonly"] = false.into();
        let wd = work.display().to_string();
        if let Some(m) = c["mounts"].as_array_mut() {
            for (dst, mode) in [("/usr", "ro"), ("/etc", "ro"), (wd.as_str(), "rw")] {
                m.push(serde_json::json!({"destination": dst, "type": "bind", "source": dst, "options": ["rbind", mode]}));
            }
        }
        std::fs::write(
            site.bundle().join("config.json"),
            serde_json::to_vec_pretty(&c)?,
        )?;
        Ok(site)
    }

    /// Points config.json's network namespace at `ns`.
    fn use_netns(&self, ns: &NetNs) -> Result<()> {
        let path = self.bundle().join("config.json");
        let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        if let Some(list) = c["linux"]["namespaces"].as_array_mut() {
            for n in list {
                if n["type"] == "network" {
                    n["path"] = format!("/var/run/netns/{}", ns.name).into();
                }
            }
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&c)?)?;
        Ok(())
    }
}

/// One column: how to start the server given a namespace, and how to remove it.
struct Column {
    name: &'static str,
    /// The command line before `run --bundle B ID` (empty: native).
    runtime: Vec<String>,
}

/// A running server; killed (and its container deleted) when dropped.
struct Server {
    child: Child,
    delete: Option<Command>,
    stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(d) = &mut self.delete {
            let _ = d.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        // SAFETY: kill(2) on the process group of our child, which is not reaped yet.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn start(col: &Column, site: &Site, ns: &NetNs, id: &str) -> Result<Server> {
    let stderr = site.dir.join(format!("{id}.err"));
    let mut c;
    let mut delete = None;
    if col.runtime.is_empty() {
        c = Command::new("ip");
        c.args(["netns", "exec", &ns.name]).args(site.nginx_args());
    } else {
        site.use_netns(ns)?;
        c = Command::new(&col.runtime[0]);
        c.args(&col.runtime[1..]);
        c.args(["run", "--bundle"]).arg(site.bundle()).arg(id);
        let mut d = Command::new(&col.runtime[0]);
        // The global flags (--root etc.) then `delete --force ID`.
        d.args(col.runtime[1..].iter().filter(|a| a.starts_with("--root")))
            .args(["delete", "--force", id]);
        delete = Some(d);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr)?)
        .process_group(0);
    let child = c
        .spawn()
        .with_context(|| format!("cannot start {}", col.name))?;
    let mut server = Server {
        child,
        delete,
        stderr,
    };
    let addr: std::net::SocketAddr = format!("{}:80", ns.pod_ip()).parse()?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(server);
        }
        if let Ok(Some(st)) = server.child.try_wait() {
            let err = std::fs::read_to_string(&server.stderr).unwrap_or_default();
            bail!(
                "exited ({st}): {}",
                err.lines().last().unwrap_or("no message")
            );
        }
        if Instant::now() > deadline {
            bail!("not serving on {addr} after {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What wrk measured: requests/s, p99 in µs, and its error lines (timeouts, non-2xx), if
/// any. No request served is an error.
#[derive(Debug, PartialEq)]
struct Wrk {
    rps: f64,
    p99_us: f64,
    errors: Option<String>,
}

fn parse_wrk(out: &str) -> Result<Wrk> {
    let mut rps = None;
    let mut p99 = None;
    let mut errors = Vec::new();
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("99%") {
            let v = v.trim();
            p99 = [("us", 1.0), ("ms", 1e3), ("s", 1e6)]
                .iter()
                .find_map(|(suffix, mul)| {
                    v.strip_suffix(suffix)
                        .and_then(|n| n.parse::<f64>().ok())
                        .map(|n| n * mul)
                });
        } else if line.starts_with("Socket errors") || line.starts_with("Non-2xx") {
            errors.push(line.to_string());
        }
    }
    match (rps, p99) {
        (Some(rps), Some(p99_us)) if rps > 0.0 => Ok(Wrk {
            rps,
            p99_us,
            errors: (!errors.is_empty()).then(|| errors.join("; ")),
        }),
        (Some(_), Some(_)) => bail!(
            "wrk: no requests served{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        ),
        _ => bail!("cannot parse wrk's output: {out:?}"),
    }
}

fn measure(col: &Column, site: &Site, k: usize) -> Result<Wrk> {
    let ns = NetNs::new(&format!("c{k}"))?;
    let id = format!("bench-nginx-{}-{k}", std::process::id());
    let _server = start(col, site, &ns, &id)?;
    eprintln!("running nginx 4KiB ({})...", col.name);
    let o = Command::new("wrk")
        .args(["-t1", "-c16", "-d10s", "--latency"])
        .arg(format!("http://{}/4k.bin", ns.pod_ip()))
        .output()
        .context("cannot run wrk (Debian package wrk)")?;
    if !o.status.success() {
        bail!("wrk: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    parse_wrk(&String::from_utf8_lossy(&o.stdout))
}

/// Runs the nginx rows and prints their table.
pub fn bench(exe_dir: &Path, rvisor: Option<&Path>) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("\nnginx: skipped (needs root for network namespaces)");
        return;
    }
    for (path, package) in [("/usr/sbin/nginx", "nginx-light"), ("/usr/bin/wrk", "wrk")] {
        if !Path::new(path).is_file() {
            println!("\nnginx: skipped ({path} missing: install {package})");
            return;
        }
    }
    let dir = exe_dir
        .join("bench-workloads")
        .join(format!("nginx-{}", std::process::id()));
    let site = match Site::make(&dir, rvisor) {
        Ok(s) => s,
        Err(e) => {
            println!("\nnginx: no bundle: {e:#}");
            return;
        }
    };
    let state = dir.join("state");
    let root = |name: &str| format!("--root={}", state.join(name).display());
    let mut columns = vec![Column {
        name: "native",
        runtime: vec![],
    }];
    let mut notes = Vec::new();
    if Path::new("/usr/sbin/runc").is_file() || Path::new("/usr/bin/runc").is_file() {
        columns.push(Column {
            name: "runc",
            runtime: vec!["runc".into(), root("runc")],
        });
    } else {
        notes.push("runc: not installed".to_string());
    }
    for mode in ["sandbox", "host"] {
        let name = if mode == "sandbox" {
            "runsc sandbox"
        } else {
            "runsc host"
        };
        if Path::new(RUNSC).is_file() {
            columns.push(Column {
                name,
                runtime: vec![
                    RUNSC.into(),
                    root("runsc"),
                    "--platform=ptrace".into(),
                    format!("--network={mode}"),
                ],
            });
        } else {
            notes.push(format!("{name}: {RUNSC} not installed"));
        }
    }
    for mode in ["sandbox", "host"] {
        let name = if mode == "sandbox" {
            "rvisor sandbox"
        } else {
            "rvisor host"
        };
        match rvisor {
            Some(bin) => columns.push(Column {
                name,
                runtime: vec![
                    bin.display().to_string(),
                    root("rvisor"),
                    format!("--network={mode}"),
                ],
            }),
            None => notes.push(format!("{name}: rvisor unavailable")),
        }
    }
    let mut results = Vec::new();
    for (k, col) in columns.iter().enumerate() {
        match measure(col, &site, k) {
            Ok(w) => {
                if let Some(e) = &w.errors {
                    notes.push(format!("{}: wrk reported {e}", col.name));
                }
                results.push(Some((w.rps, w.p99_us)));
            }
            Err(e) => {
                let e = format!("{e:#}");
                // Older runsc releases (Debian's) decide "root namespace" by whether
                // /proc/sys/net/core/rmem_default exists, which it does in every namespace on
                // recent kernels; gVisor release-20240801 and later check correctly.
                let hint = if e.contains("root network namespace") {
                    " (this runsc is too old for the kernel's per-namespace sysctls)"
                } else {
                    ""
                };
                notes.push(format!("{}: failed: {e}{hint}", col.name));
                results.push(None);
            }
        }
    }
    println!("\nnginx, 4 KiB file, wrk -t1 -c16 -d10s --latency from the host side of a veth:");
    let mut header = vec!["workload".to_string()];
    header.extend(columns.iter().map(|c| c.name.to_string()));
    let rows = [
        std::iter::once("nginx 4KiB req/s".to_string())
            .chain(
                results
                    .iter()
                    .map(|r| r.map_or("-".into(), |(rps, _)| format!("{rps:.0}"))),
            )
            .collect::<Vec<_>>(),
        std::iter::once("nginx 4KiB p99".to_string())
            .chain(
                results
                    .iter()
                    .map(|r| r.map_or("-".into(), |(_, p99)| format!("{:.2} ms", p99 / 1e3))),
            )
            .collect::<Vec<_>>(),
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(widths[i] - c.chars().count());
                if i == 0 {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&header);
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in &rows {
        line(r);
    }
    for n in notes {
        println!("nginx: {n}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_per_second_and_p99() {
        let out = "  Latency Distribution\n     50%  1.00ms\n     99%  12.50ms\n  300 requests in 10.00s\nRequests/sec:    30.01\n";
        assert_eq!(
            parse_wrk(out).unwrap(),
            Wrk {
                rps: 30.01,
                p99_us: 12500.0,
                errors: None
            }
        );
        let w = parse_wrk("     99%  850.00us\nRequests/sec: 1\n").unwrap();
        assert_eq!((w.rps, w.p99_us), (1.0, 850.0));
        assert!(parse_wrk("garbage").is_err());
        assert!(parse_wrk("     99%  0.00us\nRequests/sec: 0.00\n").is_err());
        let w = parse_wrk("     99%  1.00ms\n  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec: 5\n").unwrap();
        assert!(w.errors.is_some_and(|e| e.contains("read 3")));
    }
}
