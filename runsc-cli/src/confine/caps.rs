//! Dropping the sandbox process's capabilities.
//!
//! In its own user namespace (every mode but `--network=host`) the sandbox keeps none: a
//! capability held there applies only to objects of that namespace, and it needs none of
//! them (set-ID bits the host clears on its writes to donated host files are put back
//! through the gofer, see `sentry/src/vfs/host.rs`).
//!
//! With `--network=host` it stays in the host's user namespace and keeps three: CAP_FSETID,
//! so that its writes to the host files the gofer donated do not make the host kernel clear
//! set-user-ID and set-group-ID bits the guest (as root) keeps — the sentry clears them
//! itself, following Linux's rules for the guest's credentials; CAP_NET_RAW (guest raw and
//! packet sockets, which the sentry allows only to a guest holding CAP_NET_RAW itself) and
//! CAP_NET_BIND_SERVICE (guest servers on ports below 1024).
//!
//! Tracing the stubs needs no capability: they are the sandbox's descendants (forked by the
//! platform's zygote, itself forked after the drop), with the same credentials. In a user namespace the sets are dropped after
//! entering it (entering one grants every capability in it and resets the bounding set).

use super::ConfineError;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_FSETID: u32 = 4;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_RAW: u32 = 13;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The capabilities kept (numbers, see capabilities(7)).
pub fn kept(host_network: bool) -> Vec<u32> {
    if host_network {
        vec![CAP_FSETID, CAP_NET_BIND_SERVICE, CAP_NET_RAW]
    } else {
        Vec::new()
    }
}

/// The kept capabilities as a list for the help text ("none" when none are).
pub fn kept_list(host_network: bool) -> String {
    let names = kept_names(host_network);
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Names of the kept capabilities, for the help text.
pub fn kept_names(host_network: bool) -> Vec<&'static str> {
    kept(host_network)
        .into_iter()
        .map(|c| match c {
            CAP_FSETID => "CAP_FSETID",
            CAP_NET_BIND_SERVICE => "CAP_NET_BIND_SERVICE",
            CAP_NET_RAW => "CAP_NET_RAW",
            _ => "?",
        })
        .collect()
}

fn sys_err(what: &'static str) -> ConfineError {
    ConfineError::Sys {
        what,
        source: std::io::Error::last_os_error(),
    }
}

/// Drops every capability but `keep` from the bounding, ambient, inheritable, permitted
/// and effective sets.
pub fn drop_all_but(keep: &[u32]) -> Result<(), ConfineError> {
    for cap in 0..64u32 {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl with integer arguments; EINVAL past the last capability ends the loop.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(sys_err("dropping a capability from the bounding set"));
        }
    }
    // SAFETY: prctl with integer arguments.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } < 0
    {
        return Err(sys_err("clearing the ambient capabilities"));
    }
    let mut data = [CapData::default(); 2];
    for &cap in keep {
        let (i, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        data[i].effective |= bit;
        data[i].permitted |= bit;
    }
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads one header and two data structs (version 3), all live locals.
    if unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    } < 0
    {
        return Err(sys_err("capset"));
    }
    Ok(())
}
