//! The network a sandbox is given: its mode, and the interfaces, addresses and routes the
//! CLI read from the pod's network namespace. Passed from the CLI to `rvisor boot` inside
//! [`crate::boot::BootSpec`]; the guest sees exactly these (netlink, ioctls, /proc/net).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// How guest sockets of the IP families reach a network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The sentry's own TCP/IP stack, fed from packet sockets the CLI donates (one per
    /// interface taken over from the pod's namespace). The guest never touches the host's
    /// network stack.
    #[default]
    Sandbox,
    /// Guest sockets are host sockets the sentry creates, in the namespace it runs in.
    Host,
    /// The sentry's stack with loopback only.
    None,
}

impl std::str::FromStr for NetworkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sandbox" => Ok(NetworkMode::Sandbox),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => Err(format!("unknown network mode {other:?} (sandbox, host or none)")),
        }
    }
}

/// The kind of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Loopback,
    #[default]
    Ethernet,
}

/// One address of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrSpec {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// One network interface as the guest sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceSpec {
    pub name: String,
    /// The interface index (kept from the pod's namespace; loopback is 1).
    pub index: u32,
    pub kind: LinkKind,
    /// Hardware address (zeros for loopback).
    #[serde(default)]
    pub mac: [u8; 6],
    pub mtu: u32,
    /// IFF_* flags as the namespace reported them (IFF_UP, IFF_RUNNING, ...).
    #[serde(default)]
    pub flags: u32,
    #[serde(default)]
    pub addrs: Vec<AddrSpec>,
}

/// One route of the main table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Destination prefix (0.0.0.0/0 or ::/0 for a default route).
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    /// The interface index the route goes out of.
    pub ifindex: u32,
    #[serde(default)]
    pub metric: u32,
    /// Preferred source address, if the namespace had one.
    #[serde(default)]
    pub src: Option<IpAddr>,
}

/// Everything about the sandbox's network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub mode: NetworkMode,
    /// Interfaces in index order, loopback included. In sandbox mode every
    /// [`LinkKind::Ethernet`] interface has one donated packet socket: the i-th ethernet
    /// interface here owns `BootIo::net_fds[i]`.
    #[serde(default)]
    pub interfaces: Vec<InterfaceSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

impl NetworkSpec {
    /// Loopback only (`--network=none`, or a sandbox without a network namespace to take).
    pub fn loopback_only(mode: NetworkMode) -> NetworkSpec {
        NetworkSpec { mode, interfaces: vec![InterfaceSpec::loopback()], routes: Vec::new() }
    }

    /// The interfaces with a donated packet socket, in `net_fds` order.
    pub fn ethernet(&self) -> impl Iterator<Item = &InterfaceSpec> {
        self.interfaces.iter().filter(|i| i.kind == LinkKind::Ethernet)
    }
}

impl InterfaceSpec {
    /// `lo`: index 1, 127.0.0.1/8 and ::1/128, MTU 65536, up.
    pub fn loopback() -> InterfaceSpec {
        use rvisor_syscalls::flags::net_if::{IFF_LOOPBACK, IFF_LOWER_UP, IFF_RUNNING, IFF_UP};
        InterfaceSpec {
            name: "lo".into(),
            index: 1,
            kind: LinkKind::Loopback,
            mac: [0; 6],
            mtu: 65536,
            flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
            addrs: vec![
                AddrSpec { addr: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), prefix_len: 8 },
                AddrSpec { addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), prefix_len: 128 },
            ],
        }
    }
}
