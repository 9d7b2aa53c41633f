//! The system-wide files of /proc: cpuinfo, meminfo, stat, uptime, loadavg, version,
//! filesystems, and the /proc/sys tree. Figures are the sandbox's: its uptime, its
//! processes, its kernel release; memory is the host's, as sysinfo(2) reports it.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use rvisor_syscalls::Errno;

use super::task::CLK_TCK;
use super::Node;
use crate::kernel::{Kernel, UtsName};

/// The fixed entries of /proc besides self, thread-self and the pids.
pub const ROOT_ENTRIES: &[(&str, Node)] = &[
    ("cmdline", Node::SysFile("cmdline")),
    ("cpuinfo", Node::SysFile("cpuinfo")),
    ("filesystems", Node::SysFile("filesystems")),
    ("loadavg", Node::SysFile("loadavg")),
    ("meminfo", Node::SysFile("meminfo")),
    ("mounts", Node::FixedLink("self/mounts")),
    ("net", Node::FixedLink("self/net")),
    ("stat", Node::SysFile("stat")),
    ("sys", Node::SysDir("sys")),
    ("uptime", Node::SysFile("uptime")),
    ("version", Node::SysFile("version")),
];

const SYS_DIRS: &[&str] = &["sys/kernel", "sys/kernel/random", "sys/vm", "sys/fs", "sys/fs/mqueue"];

/// The IPC-namespaced sysctls a container may set (runc's list, net.* aside), with Linux's
/// defaults: a guest root may write them, config.json's `linux.sysctl` sets them at boot.
pub const WRITABLE: &[(&str, &str)] = &[
    ("sys/kernel/msgmax", "8192"),
    ("sys/kernel/msgmnb", "16384"),
    ("sys/kernel/msgmni", "32000"),
    ("sys/kernel/sem", "32000\t1024000000\t500\t32000"),
    ("sys/kernel/shm_rmid_forced", "0"),
    ("sys/kernel/shmall", "18446744073692774399"),
    ("sys/kernel/shmmax", "18446744073692774399"),
    ("sys/kernel/shmmni", "4096"),
    ("sys/fs/mqueue/msg_default", "10"),
    ("sys/fs/mqueue/msg_max", "10"),
    ("sys/fs/mqueue/msgsize_default", "8192"),
    ("sys/fs/mqueue/msgsize_max", "8192"),
    ("sys/fs/mqueue/queues_max", "256"),
];

/// The sysctls that are the kernel's UTS names (`uname`'s nodename and domainname), not
/// values of their own.
const UTS_SYSCTLS: &[(&str, UtsName)] = &[("sys/kernel/hostname", UtsName::Node), ("sys/kernel/domainname", UtsName::Domain)];

fn uts_sysctl(path: &str) -> Option<UtsName> {
    UTS_SYSCTLS.iter().find(|(p, _)| *p == path).map(|(_, n)| *n)
}

/// Whether a guest may open the /proc file at `path` for writing.
pub fn is_writable(path: &str) -> bool {
    WRITABLE.iter().any(|(w, _)| *w == path) || uts_sysctl(path).is_some()
}

/// Sets the UTS sysctl `which` from what a guest wrote (or config.json gave): the first
/// line, at most 64 bytes.
fn set_uts(k: &Kernel, which: UtsName, text: &[u8]) -> Result<(), Errno> {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    k.uts.lock().unwrap_or_else(|p| p.into_inner()).set_name(which, line)
}

/// Applies config.json's `linux.sysctl`: `kernel.hostname` and `kernel.domainname` set the
/// UTS names (as on Linux, where they are the same values), the rest go to the emulated
/// store ([`Sysctl::apply_spec`]).
pub fn apply_spec(k: &Kernel, values: &[(String, String)]) {
    let mut rest = Vec::new();
    for (name, value) in values {
        let path = format!("sys/{}", name.trim_start_matches('/').replace('.', "/"));
        match uts_sysctl(&path) {
            Some(which) => {
                if let Err(e) = set_uts(k, which, value.as_bytes()) {
                    tracing::warn!(%name, %value, ?e, "invalid sysctl value ignored");
                }
            }
            None => rest.push((name.clone(), value.clone())),
        }
    }
    k.sysctl.apply_spec(&rest);
}

/// The values of the [`WRITABLE`] sysctls that were set (the others read their default).
#[derive(Default)]
pub struct Sysctl(std::sync::Mutex<std::collections::BTreeMap<&'static str, String>>);

impl Sysctl {
    /// The /proc path of a sysctl `name` ("kernel.shmmax" or "kernel/shmmax"), if writable.
    pub fn path_of(name: &str) -> Option<&'static str> {
        let p = format!("sys/{}", name.trim_start_matches('/').replace('.', "/"));
        WRITABLE.iter().find(|(w, _)| *w == p).map(|(w, _)| *w)
    }

    /// The current value of the writable sysctl at `path`.
    pub fn get(&self, path: &str) -> Option<String> {
        let (key, default) = WRITABLE.iter().find(|(w, _)| *w == path)?;
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Some(m.get(key).cloned().unwrap_or_else(|| (*default).to_string()))
    }

    /// Sets the sysctl at `path` from `text` (whitespace-separated numbers; EINVAL otherwise,
    /// EACCES for a path that is not writable).
    pub fn set(&self, path: &str, text: &[u8]) -> Result<(), Errno> {
        let (key, default) = WRITABLE.iter().find(|(w, _)| *w == path).ok_or(Errno::EACCES)?;
        let text = std::str::from_utf8(text).map_err(|_| Errno::EINVAL)?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        let want = default.split_whitespace().count();
        if fields.is_empty() || fields.len() > want || fields.iter().any(|f| f.parse::<u64>().is_err()) {
            return Err(Errno::EINVAL);
        }
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Fewer fields than the entry has (kernel.sem) change only the first ones.
        let old = m.get(key).cloned().unwrap_or_else(|| (*default).to_string());
        let mut vals: Vec<String> = old.split_whitespace().map(str::to_string).collect();
        for (v, f) in vals.iter_mut().zip(&fields) {
            *v = f.to_string();
        }
        m.insert(key, vals.join("\t"));
        Ok(())
    }

    /// Applies config.json's `linux.sysctl`; names rvisor does not emulate are logged and
    /// skipped.
    pub fn apply_spec(&self, values: &[(String, String)]) {
        for (name, value) in values {
            match Self::path_of(name).map(|p| self.set(p, value.as_bytes())) {
                Some(Ok(())) => {}
                Some(Err(e)) => tracing::warn!(%name, %value, ?e, "invalid sysctl value ignored"),
                None => tracing::warn!(%name, "sysctl not emulated, ignored"),
            }
        }
    }
}

/// A writable sysctl (or UTS name) opened for writing: each write sets the value; reads show the
/// current one.
pub struct SysctlFile {
    pub kernel: std::sync::Weak<Kernel>,
    pub path: &'static str,
    pub stat: rvisor_syscalls::types::Stat,
}

impl crate::vfs::file::FileImpl for SysctlFile {
    fn read(&self, buf: &mut [u8], offset: u64, _flags: u32) -> Result<usize, Errno> {
        let k = self.kernel.upgrade().ok_or(Errno::EIO)?;
        let data = match uts_sysctl(self.path) {
            Some(_) => generate(&k, self.path)?,
            None => format!("{}\n", k.sysctl.get(self.path).ok_or(Errno::EIO)?).into_bytes(),
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write(&self, buf: &[u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        let k = self.kernel.upgrade().ok_or(Errno::EIO)?;
        // Bounded like Linux's sysctl buffers: a page.
        if buf.len() > 4096 {
            return Err(Errno::EINVAL);
        }
        match uts_sysctl(self.path) {
            Some(which) => set_uts(&k, which, buf)?,
            None => k.sysctl.set(self.path, buf)?,
        }
        Ok(buf.len())
    }

    fn stat(&self) -> Result<rvisor_syscalls::types::Stat, Errno> {
        Ok(self.stat)
    }
}

const SYS_FILES: &[&str] = &[
    "sys/kernel/cap_last_cap",
    "sys/kernel/domainname",
    "sys/kernel/hostname",
    "sys/kernel/msgmax",
    "sys/kernel/msgmnb",
    "sys/kernel/msgmni",
    "sys/kernel/ngroups_max",
    "sys/kernel/osrelease",
    "sys/kernel/ostype",
    "sys/kernel/overflowgid",
    "sys/kernel/overflowuid",
    "sys/kernel/pid_max",
    "sys/kernel/sem",
    "sys/kernel/shm_rmid_forced",
    "sys/kernel/shmall",
    "sys/kernel/shmmax",
    "sys/kernel/shmmni",
    "sys/kernel/threads-max",
    "sys/kernel/version",
    "sys/kernel/random/boot_id",
    "sys/kernel/random/entropy_avail",
    "sys/kernel/random/poolsize",
    "sys/kernel/random/uuid",
    "sys/vm/max_map_count",
    "sys/vm/mmap_min_addr",
    "sys/vm/overcommit_memory",
    "sys/fs/file-max",
    "sys/fs/file-nr",
    "sys/fs/nr_open",
    "sys/fs/mqueue/msg_default",
    "sys/fs/mqueue/msg_max",
    "sys/fs/mqueue/msgsize_default",
    "sys/fs/mqueue/msgsize_max",
    "sys/fs/mqueue/queues_max",
];

fn parent_of(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}

fn base_of(p: &str) -> &str {
    p.rsplit_once('/').map_or(p, |(_, b)| b)
}

/// The entries of the /proc/sys directory `dir`.
pub fn sys_entries(dir: &'static str) -> Vec<(Vec<u8>, Node)> {
    let dirs = SYS_DIRS
        .iter()
        .chain(super::net::SYSCTL_DIRS)
        .filter(|d| parent_of(d) == dir)
        .map(|d| (base_of(d).as_bytes().to_vec(), Node::SysDir(d)));
    let files = SYS_FILES
        .iter()
        .chain(super::net::SYSCTLS.iter().map(|(p, _)| p))
        .filter(|f| parent_of(f) == dir)
        .map(|f| (base_of(f).as_bytes().to_vec(), Node::SysFile(f)));
    let mut out: Vec<_> = dirs.chain(files).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn random_uuid() -> String {
    let mut b = [0u8; 16];
    // SAFETY: the destination is `b`, of the length passed.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// The host's memory figures (sysinfo(2)), in bytes: total, free, shared, buffers,
/// swap total, swap free.
pub(crate) fn host_memory() -> [u64; 6] {
    // SAFETY: `s` is a plain C struct that sysinfo fills on success.
    let mut s: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::sysinfo(&mut s) } != 0 {
        return [0; 6];
    }
    let u = u64::from(s.mem_unit.max(1));
    [s.totalram, s.freeram, s.sharedram, s.bufferram, s.totalswap, s.freeswap].map(|v| v as u64 * u)
}

fn meminfo() -> String {
    let [total, free, shared, buffers, swap_total, swap_free] = host_memory().map(|b| b / 1024);
    let mut o = String::new();
    for (k, v) in [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", buffers),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", 0),
        ("Inactive", 0),
        ("Active(anon)", 0),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", swap_total),
        ("SwapFree", swap_free),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", 0),
        ("Mapped", 0),
        ("Shmem", shared),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("CommitLimit", total / 2 + swap_total),
        ("Committed_AS", 0),
        ("VmallocTotal", 34359738367),
        ("VmallocUsed", 0),
        ("VmallocChunk", 0),
        ("HugePages_Total", u64::MAX),
    ] {
        if k == "HugePages_Total" {
            o.push_str("HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n");
            continue;
        }
        let _ = writeln!(o, "{:<16}{:>8} kB", format!("{k}:"), v);
    }
    o
}

/// CPU time used by the sandbox's processes (ns).
fn busy_ns(k: &Kernel) -> u64 {
    k.all_groups().iter().map(|g| g.cpu_time_ns()).sum()
}

fn stat(k: &Kernel) -> String {
    let ncpus = crate::syscalls::online_cpus() as u64;
    let up = k.boot_time.elapsed();
    let tick_ns = 1_000_000_000 / CLK_TCK;
    let user = busy_ns(k) / tick_ns;
    let idle = (up.as_nanos() as u64 / tick_ns).saturating_mul(ncpus).saturating_sub(user);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let btime = now.saturating_sub(up).as_secs();
    let (running, total) = {
        let t = k.tables();
        (1, t.tasks.len())
    };
    let mut o = format!("cpu  {user} 0 0 {idle} 0 0 0 0 0 0\n");
    for i in 0..ncpus {
        let _ = writeln!(o, "cpu{i} {} 0 0 {} 0 0 0 0 0 0", user / ncpus, idle / ncpus);
    }
    let _ = writeln!(
        o,
        "intr 0\nctxt 0\nbtime {btime}\nprocesses {}\nprocs_running {running}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0",
        total.max(1)
    );
    o
}

/// Model name, vendor, family/model/stepping and feature flags from CPUID (what the guest
/// itself sees: CPUID is not intercepted).
fn cpuinfo() -> &'static str {
    static INFO: OnceLock<String> = OnceLock::new();
    INFO.get_or_init(|| {
        // CPUID exists on every x86_64 CPU and only reads identification registers.
        use std::arch::x86_64::__cpuid;
        let leaf0 = __cpuid(0);
        let vendor: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
        let l1 = __cpuid(1);
        let l7 = if leaf0.eax >= 7 { std::arch::x86_64::__cpuid_count(7, 0) } else { l1 };
        let ext = __cpuid(0x8000_0000).eax;
        let mut brand = Vec::new();
        if ext >= 0x8000_0004 {
            for leaf in 0x8000_0002..=0x8000_0004u32 {
                let r = __cpuid(leaf);
                for v in [r.eax, r.ebx, r.ecx, r.edx] {
                    brand.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        let e1 = if ext >= 0x8000_0001 { __cpuid(0x8000_0001) } else { l1 };
        let brand = String::from_utf8_lossy(&brand).trim_matches(char::from(0)).trim().to_string();
        let base_family = (l1.eax >> 8) & 0xf;
        let family = if base_family == 0xf {
            base_family + ((l1.eax >> 20) & 0xff)
        } else {
            base_family
        };
        let model = ((l1.eax >> 4) & 0xf) | if base_family >= 6 { ((l1.eax >> 16) & 0xf) << 4 } else { 0 };
        let stepping = l1.eax & 0xf;
        let bits: &[(u32, u32, &str)] = &[
            (l1.edx, 0, "fpu"),
            (l1.edx, 1, "vme"),
            (l1.edx, 2, "de"),
            (l1.edx, 3, "pse"),
            (l1.edx, 4, "tsc"),
            (l1.edx, 5, "msr"),
            (l1.edx, 6, "pae"),
            (l1.edx, 7, "mce"),
            (l1.edx, 8, "cx8"),
            (l1.edx, 9, "apic"),
            (l1.edx, 11, "sep"),
            (l1.edx, 12, "mtrr"),
            (l1.edx, 13, "pge"),
            (l1.edx, 14, "mca"),
            (l1.edx, 15, "cmov"),
            (l1.edx, 16, "pat"),
            (l1.edx, 17, "pse36"),
            (l1.edx, 19, "clflush"),
            (l1.edx, 23, "mmx"),
            (l1.edx, 24, "fxsr"),
            (l1.edx, 25, "sse"),
            (l1.edx, 26, "sse2"),
            (l1.edx, 28, "ht"),
            (e1.edx, 11, "syscall"),
            (e1.edx, 20, "nx"),
            (e1.edx, 26, "pdpe1gb"),
            (e1.edx, 27, "rdtscp"),
            (e1.edx, 29, "lm"),
            (l1.ecx, 0, "pni"),
            (l1.ecx, 1, "pclmulqdq"),
            (l1.ecx, 9, "ssse3"),
            (l1.ecx, 12, "fma"),
            (l1.ecx, 13, "cx16"),
            (l1.ecx, 19, "sse4_1"),
            (l1.ecx, 20, "sse4_2"),
            (l1.ecx, 22, "movbe"),
            (l1.ecx, 23, "popcnt"),
            (l1.ecx, 25, "aes"),
            (l1.ecx, 26, "xsave"),
            (l1.ecx, 28, "avx"),
            (l1.ecx, 29, "f16c"),
            (l1.ecx, 30, "rdrand"),
            (l1.ecx, 31, "hypervisor"),
            (e1.ecx, 0, "lahf_lm"),
            (e1.ecx, 5, "abm"),
            (e1.ecx, 8, "3dnowprefetch"),
            (l7.ebx, 0, "fsgsbase"),
            (l7.ebx, 3, "bmi1"),
            (l7.ebx, 5, "avx2"),
            (l7.ebx, 7, "smep"),
            (l7.ebx, 8, "bmi2"),
            (l7.ebx, 9, "erms"),
            (l7.ebx, 10, "invpcid"),
            (l7.ebx, 16, "avx512f"),
            (l7.ebx, 17, "avx512dq"),
            (l7.ebx, 18, "rdseed"),
            (l7.ebx, 19, "adx"),
            (l7.ebx, 20, "smap"),
            (l7.ebx, 23, "clflushopt"),
            (l7.ebx, 24, "clwb"),
            (l7.ebx, 29, "sha_ni"),
            (l7.ebx, 30, "avx512bw"),
            (l7.ebx, 31, "avx512vl"),
        ];
        let flags: Vec<&str> = bits.iter().filter(|(r, b, _)| r >> b & 1 != 0).map(|(_, _, n)| *n).collect();
        let ncpus = crate::syscalls::online_cpus();
        let mut o = String::new();
        for i in 0..ncpus {
            let _ = write!(
                o,
                "processor\t: {i}\nvendor_id\t: {}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {brand}\nstepping\t: {stepping}\n\
                 cpu MHz\t\t: 2000.000\ncache size\t: 0 KB\nphysical id\t: 0\nsiblings\t: {ncpus}\ncore id\t\t: {i}\ncpu cores\t: {ncpus}\n\
                 apicid\t\t: {i}\ninitial apicid\t: {i}\nfpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: {}\nwp\t\t: yes\nflags\t\t: {}\n\
                 bogomips\t: 4000.00\nclflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 46 bits physical, 48 bits virtual\npower management:\n\n",
                String::from_utf8_lossy(&vendor),
                leaf0.eax,
                flags.join(" "),
            );
        }
        o
    })
}

fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(random_uuid)
}

/// Generates the system file at `path` (below /proc).
pub fn generate(k: &Arc<Kernel>, path: &str) -> Result<Vec<u8>, Errno> {
    let uts = k.uts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let up = k.boot_time.elapsed();
    let s: String = match path {
        "cmdline" => "rvisor\n".into(),
        "cpuinfo" => cpuinfo().into(),
        "filesystems" => {
            "nodev\tsysfs\nnodev\ttmpfs\nnodev\tbdev\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\nnodev\toverlay\nnodev\t9p\nnodev\tmqueue\n".into()
        }
        "loadavg" => {
            let (tasks, last) = {
                let t = k.tables();
                (t.tasks.len(), t.tasks.keys().copied().max().unwrap_or(1))
            };
            format!("0.00 0.00 0.00 1/{tasks} {last}\n")
        }
        "meminfo" => meminfo(),
        "stat" => stat(k),
        "uptime" => {
            let ncpus = crate::syscalls::online_cpus() as f64;
            let idle = (up.as_secs_f64() * ncpus - busy_ns(k) as f64 / 1e9).max(0.0);
            format!("{:.2} {:.2}\n", up.as_secs_f64(), idle)
        }
        "version" => format!("Linux version {} (rvisor@rvisor) (rustc) {}\n", uts.release, uts.version),
        "sys/kernel/cap_last_cap" => "40\n".into(),
        "sys/kernel/domainname" => format!("{}\n", uts.domainname),
        "sys/kernel/hostname" => format!("{}\n", uts.nodename),
        "sys/kernel/ngroups_max" => "65536\n".into(),
        "sys/kernel/osrelease" => format!("{}\n", uts.release),
        "sys/kernel/ostype" => format!("{}\n", uts.sysname),
        "sys/kernel/overflowgid" | "sys/kernel/overflowuid" => "65534\n".into(),
        "sys/kernel/pid_max" => "4194304\n".into(),
        "sys/kernel/threads-max" => "127000\n".into(),
        "sys/kernel/version" => format!("{}\n", uts.version),
        "sys/kernel/random/boot_id" => format!("{}\n", boot_id()),
        "sys/kernel/random/entropy_avail" | "sys/kernel/random/poolsize" => "256\n".into(),
        "sys/kernel/random/uuid" => format!("{}\n", random_uuid()),
        "sys/vm/max_map_count" => "65530\n".into(),
        "sys/vm/mmap_min_addr" => "65536\n".into(),
        "sys/vm/overcommit_memory" => "0\n".into(),
        "sys/fs/file-max" => "9223372036854775807\n".into(),
        "sys/fs/file-nr" => "0\t0\t9223372036854775807\n".into(),
        "sys/fs/nr_open" => format!("{}\n", crate::kernel::fdtable::NR_OPEN),
        p if p.starts_with("sys/net/") => super::net::sysctl(p).ok_or(Errno::ENOENT)?,
        _ => format!("{}\n", k.sysctl.get(path).ok_or(Errno::ENOENT)?),
    };
    Ok(s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_tree_lists_children_of_each_directory() {
        let names: Vec<Vec<u8>> = sys_entries("sys").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![b"fs".to_vec(), b"kernel".to_vec(), b"net".to_vec(), b"vm".to_vec()]);
        assert!(sys_entries("sys/kernel").iter().any(|(n, _)| n == b"random"));
        assert!(sys_entries("sys/vm").iter().any(|(n, _)| n == b"overcommit_memory"));
    }

    #[test]
    fn meminfo_has_the_fields_free_reads() {
        let m = meminfo();
        for key in [
            "MemTotal:",
            "MemFree:",
            "MemAvailable:",
            "Buffers:",
            "Cached:",
            "SwapTotal:",
            "SwapFree:",
            "Shmem:",
            "SReclaimable:",
        ] {
            assert!(m.lines().any(|l| l.starts_with(key)), "{key} missing");
        }
    }

    #[test]
    fn writable_sysctls_take_numbers_and_keep_the_rest_of_a_vector() {
        let s = Sysctl::default();
        assert_eq!(Sysctl::path_of("kernel.shmmax"), Some("sys/kernel/shmmax"));
        assert_eq!(Sysctl::path_of("fs.mqueue.queues_max"), Some("sys/fs/mqueue/queues_max"));
        assert_eq!(Sysctl::path_of("kernel.hostname"), None);
        s.set("sys/kernel/shmmax", b"1234\n").unwrap();
        assert_eq!(s.get("sys/kernel/shmmax").as_deref(), Some("1234"));
        s.set("sys/kernel/sem", b"7 8").unwrap();
        assert_eq!(s.get("sys/kernel/sem").as_deref(), Some("7\t8\t500\t32000"));
        assert_eq!(s.set("sys/kernel/msgmax", b"x"), Err(Errno::EINVAL));
        assert_eq!(s.set("sys/kernel/msgmax", b"1 2"), Err(Errno::EINVAL));
        assert_eq!(s.set("sys/kernel/pid_max", b"5"), Err(Errno::EACCES));
        s.apply_spec(&[("kernel.msgmni".into(), "77".into()), ("net.core.somaxconn".into(), "1".into())]);
        assert_eq!(s.get("sys/kernel/msgmni").as_deref(), Some("77"));
    }

    #[test]
    fn uts_sysctls_are_the_kernels_names() {
        assert!(is_writable("sys/kernel/domainname") && is_writable("sys/kernel/hostname") && is_writable("sys/kernel/shmmax"));
        assert!(!is_writable("sys/kernel/osrelease"));
        let mut u = crate::kernel::UtsInfo::default();
        u.set_name(UtsName::Domain, b"d.example").unwrap();
        assert_eq!(u.domainname, "d.example");
        assert_eq!(u.set_name(UtsName::Node, &[b'a'; 65]), Err(Errno::EINVAL));
        assert_eq!(u.nodename, "localhost");
    }

    #[test]
    fn uuids_are_version_4() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
