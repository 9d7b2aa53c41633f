//! The sandbox's network, as the CLI sets it up before it starts `rvisor boot` (runsc's
//! model):
//!
//! - which network namespace: the OCI spec's `network` namespace path, a fresh namespace
//!   when the spec asks for one without a path, or none (then sandbox mode is loopback only
//!   and host mode uses the CLI's own namespace);
//! - `--network=sandbox`: the namespace's links, addresses and routes are read into a
//!   [`NetworkSpec`], a packet socket is opened on every ethernet link that is up, then the
//!   addresses are removed from the namespace ([`Network::take_over`]): the sentry's stack
//!   owns them from then on;
//! - `--network=host`: the spec is read, nothing is changed, and the sandbox process runs
//!   in the namespace so its host sockets live there;
//! - `--network=none`: loopback only, nothing touched.
//!
//! The sandbox process joins the namespace in every mode that has one (a sandbox-mode
//! sentry thus has no way to the host's own interfaces even if compromised).

mod netlink;
mod spec;
mod takeover;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::Context;
use rvisor_sentry::net::{NetworkMode, NetworkSpec};

use netlink::Addr;
use spec::Taken;
use takeover::in_netns;

/// The network namespace an OCI spec asks for (`linux.namespaces`, type `network`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NetnsRequest {
    /// No network namespace entry: the container shares the runtime's.
    #[default]
    Shared,
    /// An entry without a path: a new namespace.
    Fresh,
    /// An entry with a path: that namespace (the pod's).
    Path(String),
}

/// The name of a mode, as the flag spells it.
pub fn mode_name(mode: NetworkMode) -> &'static str {
    match mode {
        NetworkMode::Sandbox => "sandbox",
        NetworkMode::Host => "host",
        NetworkMode::None => "none",
    }
}

/// A sandbox's network, ready to be handed to `rvisor boot`.
pub struct Network {
    pub spec: NetworkSpec,
    /// One packet socket per ethernet interface of `spec`, in [`NetworkSpec::ethernet`]
    /// order (sandbox mode only).
    pub packet_fds: Vec<OwnedFd>,
    /// The namespace the sandbox process joins before exec.
    pub netns: Option<OwnedFd>,
    /// Sandbox mode: the links taken over and the addresses to remove from them.
    taken: Vec<Taken>,
    addrs: Vec<Addr>,
}

/// Reads the namespace `req` names and prepares `mode`'s network; changes nothing yet
/// (see [`Network::take_over`]), so an error here leaves the namespace as it was.
pub fn prepare(mode: NetworkMode, req: &NetnsRequest) -> anyhow::Result<Network> {
    let netns = match req {
        _ if mode == NetworkMode::None => None,
        NetnsRequest::Shared => None,
        NetnsRequest::Fresh => Some(takeover::fresh_netns(mode == NetworkMode::Host)?),
        NetnsRequest::Path(p) => Some(takeover::open_netns(p).with_context(|| format!("network namespace {p}"))?),
    };
    let mut net = Network { spec: NetworkSpec::loopback_only(mode), packet_fds: Vec::new(), netns, taken: Vec::new(), addrs: Vec::new() };
    match (mode, &net.netns) {
        (NetworkMode::None, _) => {}
        (NetworkMode::Sandbox, None) => {
            tracing::info!("no network namespace in the spec: the sandbox gets loopback only (the host's interfaces are not taken)");
        }
        (NetworkMode::Sandbox, Some(ns)) => {
            let what = || format!("network namespace {}", req_name(req));
            let (built, addrs, fds) = in_netns(Some(ns.as_fd()), || {
                let (links, addrs, routes) = takeover::read_current().context("reading its interfaces")?;
                let built = spec::build(mode, links, &addrs, &routes, false);
                let fds = built.ethernet.iter().map(|t| takeover::packet_socket(t.index, &t.name)).collect::<anyhow::Result<Vec<_>>>()?;
                Ok((built, addrs, fds))
            })
            .with_context(what)?;
            net.spec = built.spec;
            net.taken = built.ethernet;
            net.addrs = addrs;
            net.packet_fds = fds;
        }
        (NetworkMode::Host, ns) => {
            let ns = ns.as_ref().map(|n| n.as_fd());
            let built = in_netns(ns, || {
                let (links, addrs, routes) = takeover::read_current().context("reading its interfaces")?;
                Ok(spec::build(mode, links, &addrs, &routes, true))
            })
            .with_context(|| format!("network namespace {}", req_name(req)))?;
            net.spec = built.spec;
        }
    }
    Ok(net)
}

fn req_name(req: &NetnsRequest) -> &str {
    match req {
        NetnsRequest::Shared => "of rvisor",
        NetnsRequest::Fresh => "(new)",
        NetnsRequest::Path(p) => p,
    }
}

impl Network {
    /// Sandbox mode: removes the addresses of the links whose packet sockets the sandbox
    /// gets from the namespace (see [`takeover::remove_addresses`]). Call it last, right
    /// before the sandbox starts. Nothing to do in the other modes.
    pub fn take_over(&self) -> anyhow::Result<()> {
        let Some(ns) = &self.netns else { return Ok(()) };
        if self.taken.is_empty() {
            return Ok(());
        }
        in_netns(Some(ns.as_fd()), || takeover::remove_addresses(&self.taken, &self.addrs)).context("taking over the network namespace's addresses")
    }

    /// Makes `cmd`'s process join the namespace before it execs. `self` must outlive the
    /// spawn of `cmd` (the namespace's descriptor is used in the child).
    pub fn join_before_exec(&self, cmd: &mut Command) {
        let Some(ns) = &self.netns else { return };
        let raw = ns.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only calls setns,
        // which is async-signal-safe; `raw` stays open in the parent until after spawn.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(raw, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The network of `rvisor do`, which has no namespace of its own: sandbox and none are
/// loopback only; host mode shows the host's interfaces and changes nothing.
pub fn for_do(mode: NetworkMode) -> anyhow::Result<NetworkSpec> {
    Ok(prepare(mode, &NetnsRequest::Shared)?.spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_named_as_the_flag_spells_them() {
        for m in [NetworkMode::Sandbox, NetworkMode::Host, NetworkMode::None] {
            assert_eq!(mode_name(m).parse::<NetworkMode>().unwrap(), m);
        }
    }

    #[test]
    fn none_and_shared_sandbox_are_loopback_only_and_touch_nothing() {
        for (mode, req) in [(NetworkMode::None, NetnsRequest::Path("/nonexistent".into())), (NetworkMode::Sandbox, NetnsRequest::Shared)] {
            let n = prepare(mode, &req).unwrap();
            assert_eq!(n.spec, NetworkSpec::loopback_only(mode));
            assert!(n.packet_fds.is_empty() && n.netns.is_none());
            n.take_over().unwrap();
        }
    }

    #[test]
    fn a_bad_namespace_path_is_an_error() {
        let e = prepare(NetworkMode::Sandbox, &NetnsRequest::Path("/nonexistent/netns".into())).err().unwrap();
        assert!(format!("{e:#}").contains("/nonexistent/netns"), "{e:#}");
        // A file that is not a namespace.
        let e = prepare(NetworkMode::Host, &NetnsRequest::Path("/proc/self/stat".into())).err().unwrap();
        assert!(format!("{e:#}").contains("not a network namespace"), "{e:#}");
    }

    /// Needs root (CAP_SYS_ADMIN for unshare/setns); skipped otherwise.
    fn root() -> bool {
        // SAFETY: geteuid only reads the caller's credentials.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn a_fresh_namespace_has_only_lo_and_host_mode_brings_it_up() {
        if !root() {
            return;
        }
        let s = prepare(NetworkMode::Sandbox, &NetnsRequest::Fresh).unwrap();
        assert!(s.netns.is_some() && s.packet_fds.is_empty());
        assert_eq!(s.spec.interfaces.len(), 1);
        let h = prepare(NetworkMode::Host, &NetnsRequest::Fresh).unwrap();
        let (links, _, _) = in_netns(h.netns.as_ref().map(|n| n.as_fd()), takeover::read_current).unwrap();
        assert_eq!(links.len(), 1);
        assert!(links[0].flags & libc::IFF_UP as u32 != 0, "{links:?}");
    }
}
