//! /proc/PID/maps and smaps, in Linux's exact layout.

use std::fmt::Write;

use crate::kernel::task::TaskProcInfo;
use crate::mm::{MemoryManager, VmaInfo};

/// The column the path starts at (Linux pads with `25 + 6 * sizeof(void *) - 1`).
const PATH_COLUMN: usize = 73;
/// Residency is counted per VMA in pieces of this many bytes...
const RSS_CHUNK: u64 = 64 << 20;
/// ... for at most this many bytes of each VMA (huge sparse mappings report what lies in
/// their first part rather than make the sentry walk terabytes).
const RSS_SCAN_LIMIT: u64 = 4 << 30;

fn header(v: &VmaInfo) -> String {
    let mut line = format!(
        "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 0 ",
        v.start,
        v.end,
        if v.perms.read { 'r' } else { '-' },
        if v.perms.write { 'w' } else { '-' },
        if v.perms.exec { 'x' } else { '-' },
        if v.shared { 's' } else { 'p' },
        v.file_offset.unwrap_or(0),
    );
    if let Some(name) = &v.name {
        while line.len() < PATH_COLUMN {
            line.push(' ');
        }
        line.push_str(name);
    }
    line
}

/// /proc/PID/maps.
pub fn maps(info: &TaskProcInfo) -> Vec<u8> {
    let Some(mm) = &info.mm else { return Vec::new() };
    let mut out = String::new();
    for v in mm.vmas_snapshot() {
        out.push_str(&header(&v));
        out.push('\n');
    }
    out.into_bytes()
}

/// Bytes of `v` realised in `mm`.
fn resident(mm: &MemoryManager, v: &VmaInfo) -> u64 {
    let end = v.end.min(v.start.saturating_add(RSS_SCAN_LIMIT));
    let mut at = v.start;
    let mut pages = 0u64;
    while at < end {
        let len = (end - at).min(RSS_CHUNK);
        if let Ok(vec) = mm.mincore(at, len) {
            pages += vec.iter().filter(|&&b| b & 1 != 0).count() as u64;
        }
        at += len;
    }
    pages * 4096
}

/// /proc/PID/smaps (the basic per-VMA figures).
pub fn smaps(info: &TaskProcInfo) -> Vec<u8> {
    let Some(mm) = &info.mm else { return Vec::new() };
    let mut out = String::new();
    for v in mm.vmas_snapshot() {
        out.push_str(&header(&v));
        out.push('\n');
        let size = (v.end - v.start) / 1024;
        let rss = resident(mm, &v) / 1024;
        let anon = if v.file_offset.is_none() { rss } else { 0 };
        let (private_dirty, shared_dirty) = if v.shared { (0, rss) } else { (rss, 0) };
        for (key, val) in [
            ("Size", size),
            ("KernelPageSize", 4),
            ("MMUPageSize", 4),
            ("Rss", rss),
            ("Pss", rss),
            ("Pss_Dirty", rss),
            ("Shared_Clean", 0),
            ("Shared_Dirty", shared_dirty),
            ("Private_Clean", 0),
            ("Private_Dirty", private_dirty),
            ("Referenced", rss),
            ("Anonymous", anon),
            ("KSM", 0),
            ("LazyFree", 0),
            ("AnonHugePages", 0),
            ("ShmemPmdMapped", 0),
            ("FilePmdMapped", 0),
            ("Shared_Hugetlb", 0),
            ("Private_Hugetlb", 0),
            ("Swap", 0),
            ("SwapPss", 0),
            ("Locked", 0),
        ] {
            let _ = writeln!(out, "{:<16}{:>8} kB", format!("{key}:"), val);
        }
        let _ = writeln!(out, "THPeligible:    0");
        let mut flags = String::new();
        for (on, name) in [
            (v.perms.read, "rd"),
            (v.perms.write, "wr"),
            (v.perms.exec, "ex"),
            (v.shared, "sh"),
            (true, "mr"),
            (true, "mw"),
            (true, "me"),
            (v.growsdown, "gd"),
        ] {
            if on {
                flags.push_str(name);
                flags.push(' ');
            }
        }
        let _ = writeln!(out, "VmFlags: {flags}");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvisor_platform::Perms;
    use std::sync::Arc;

    #[test]
    fn maps_lines_match_linux_columns() {
        let v = VmaInfo {
            start: 0x1000,
            end: 0x3000,
            perms: Perms {
                read: true,
                write: false,
                exec: true,
            },
            shared: false,
            growsdown: false,
            file_offset: Some(0x2000),
            name: Some(Arc::from("/bin/x")),
        };
        let h = header(&v);
        assert_eq!(&h[..35], "00001000-00003000 r-xp 00002000 00:");
        assert_eq!(h.find("/bin/x"), Some(PATH_COLUMN));
        let anon = VmaInfo {
            name: None,
            file_offset: None,
            ..v
        };
        assert!(header(&anon).ends_with("00:00 0 "));
    }
}
