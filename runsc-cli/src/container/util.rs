//! Small helpers of the OCI commands: container ids, timestamps, host process facts.

use std::time::{SystemTime, UNIX_EPOCH};

/// Whether `id` is a valid container id: runc's `^[\w+-\.]+$`, and not `.` or `..`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
}

/// Checks an id given on the command line, with runc's message.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    if !valid_id(id) {
        anyhow::bail!("invalid container id format: {id}");
    }
    Ok(())
}

/// The date of `days` since 1970-01-01 as (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `t` as RFC 3339 with nanoseconds in UTC, as Go's `time.RFC3339Nano` prints it.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut s = format!("{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// The start time of host process `pid` in clock ticks since boot (field 22 of
/// /proc/PID/stat) and whether it is a zombie; None when it does not exist.
pub fn proc_start(pid: i32) -> Option<(u64, bool)> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    let start = fields.get(19)?.parse().ok()?;
    Some((start, zombie))
}

/// Whether host process `pid` that started at `start` ticks still runs (not a zombie, and
/// not a recycled pid).
pub fn alive(pid: i32, start: u64) -> bool {
    matches!(proc_start(pid), Some((s, false)) if start == 0 || s == start)
}

/// A signal given by name (`TERM`, `SIGTERM`, `sigkill`) or number.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        anyhow::bail!("invalid signal: {s}");
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1, "INT" => 2, "QUIT" => 3, "ILL" => 4, "TRAP" => 5, "ABRT" | "IOT" => 6,
        "BUS" => 7, "FPE" => 8, "KILL" => 9, "USR1" => 10, "SEGV" => 11, "USR2" => 12,
        "PIPE" => 13, "ALRM" => 14, "TERM" => 15, "STKFLT" => 16, "CHLD" => 17, "CONT" => 18,
        "STOP" => 19, "TSTP" => 20, "TTIN" => 21, "TTOU" => 22, "URG" => 23, "XCPU" => 24,
        "XFSZ" => 25, "VTALRM" => 26, "PROF" => 27, "WINCH" => 28, "IO" | "POLL" => 29,
        "PWR" => 30, "SYS" => 31,
        _ => {
            if let Some(off) = name.strip_prefix("RTMIN+").and_then(|n| n.parse::<i32>().ok()) {
                if (0..=30).contains(&off) { return Ok(34 + off); }
            }
            if let Some(off) = name.strip_prefix("RTMAX-").and_then(|n| n.parse::<i32>().ok()) {
                if (0..=30).contains(&off) { return Ok(64 - off); }
            }
            match name { "RTMIN" => 34, "RTMAX" => 64, _ => anyhow::bail!("unknown signal {s:?}") }
        }
    };
    Ok(n)
}

/// The shell-style exit code of a wait status: the code, or 128 + the signal.
pub fn status_code(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

/// The name of the user owning uid, or the number.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_like_runc() {
        assert!(valid_id("c1"));
        assert!(valid_id("a_b+c-d.e"));
        assert!(!valid_id(""));
        assert!(!valid_id(".."));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a b"));
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 3661, 500_000_000);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01.5Z");
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("15").unwrap(), 15);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), 36);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn wait_status_codes() {
        assert_eq!(status_code(0x0f00), 15);
        assert_eq!(status_code(9), 137);
        assert_eq!(status_code(0), 0);
    }
}
