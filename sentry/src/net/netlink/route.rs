//! NETLINK_ROUTE: answers to link, address, route, neighbour and rule requests, built from
//! the sandbox's [`NetworkSpec`] (and interface counters). The network is the pod's: every
//! request that would change it is refused with EPERM.
//!
//! Besides the spec's main-table routes, the answers include what Linux derives from the
//! addresses: the prefix route of each address (when the spec lacks it), and the local
//! table (`local` and `broadcast` routes of IPv4 addresses, `local` routes of IPv6
//! addresses, `ff00::/8` multicast on interfaces with IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvisor_syscalls::flags::net_if::{ARPHRD_ETHER, ARPHRD_LOOPBACK, IFF_LOWER_UP, IFF_UP};
use rvisor_syscalls::flags::socket::{AF_INET, AF_INET6, AF_UNSPEC};
use rvisor_syscalls::netlink::*;
use rvisor_syscalls::{Errno, Pod};

use super::msg::{self, Msg};
use crate::net::{IfStats, InterfaceSpec, LinkKind, NetworkSpec};

/// Linux's default `txqueuelen`.
pub const TXQLEN: u32 = 1000;

/// What a request is answered from.
pub struct View<'a> {
    pub spec: &'a NetworkSpec,
    pub stats: &'a [IfStats],
}

/// The answer to one request: messages, each a complete netlink message.
pub type Answer = Vec<Vec<u8>>;

/// Per-socket settings that change answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// NETLINK_GET_STRICT_CHK: dump requests' headers filter.
    pub strict: bool,
    /// NETLINK_CAP_ACK.
    pub cap_ack: bool,
}

/// One route as Linux would dump it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub table: u8,
    pub ty: u8,
    pub protocol: u8,
    pub scope: u8,
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    pub ifindex: u32,
    pub metric: Option<u32>,
    pub prefsrc: Option<IpAddr>,
}

/// The address scope Linux gives an address (RT_SCOPE_*).
pub fn addr_scope(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V4(_) => RT_SCOPE_UNIVERSE,
        IpAddr::V6(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
        IpAddr::V6(_) => RT_SCOPE_UNIVERSE,
    }
}

/// `addr` with the bits beyond `prefix_len` cleared.
pub fn network(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v) & mask4(prefix_len))),
        IpAddr::V6(v) => {
            let m = if prefix_len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix_len.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & m))
        }
    }
}

/// The IPv4 netmask of a prefix length, as a host-order number.
pub fn mask4(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

fn contains(net: IpAddr, prefix_len: u8, a: IpAddr) -> bool {
    net.is_ipv4() == a.is_ipv4() && network(a, prefix_len) == network(net, prefix_len)
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn family_of(a: IpAddr) -> i32 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

/// Every route of the sandbox, main table first then local, each table sorted as Linux's
/// FIB walks it (by destination, longer prefixes of one destination first).
pub fn routes(spec: &NetworkSpec) -> Vec<Route> {
    let mut main: Vec<Route> = Vec::new();
    for r in &spec.routes {
        let prefix_route = r.gateway.is_none()
            && spec
                .interfaces
                .iter()
                .filter(|i| i.index == r.ifindex)
                .flat_map(|i| &i.addrs)
                .any(|a| {
                    a.addr.is_ipv4() == r.dst.is_ipv4()
                        && a.prefix_len == r.prefix_len
                        && network(a.addr, a.prefix_len) == r.dst
                });
        main.push(Route {
            table: RT_TABLE_MAIN,
            ty: RTN_UNICAST,
            protocol: if prefix_route {
                RTPROT_KERNEL
            } else {
                RTPROT_BOOT
            },
            scope: if r.gateway.is_some() || r.dst.is_ipv6() {
                RT_SCOPE_UNIVERSE
            } else {
                RT_SCOPE_LINK
            },
            dst: network(r.dst, r.prefix_len),
            prefix_len: r.prefix_len,
            gateway: r.gateway,
            ifindex: r.ifindex,
            metric: if r.dst.is_ipv6() {
                Some(r.metric)
            } else {
                (r.metric != 0).then_some(r.metric)
            },
            prefsrc: r.src.or_else(|| {
                // Linux gives kernel prefix routes of IPv4 addresses the address as source.
                (prefix_route && r.dst.is_ipv4())
                    .then(|| addr_on(spec, r.ifindex, r.dst, r.prefix_len))
                    .flatten()
            }),
        });
    }
    let mut local: Vec<Route> = Vec::new();
    for i in &spec.interfaces {
        let lo = i.kind == LinkKind::Loopback;
        for a in &i.addrs {
            let host = |ty, dst, plen, scope, metric| Route {
                table: RT_TABLE_LOCAL,
                ty,
                protocol: RTPROT_KERNEL,
                scope,
                dst,
                prefix_len: plen,
                gateway: None,
                ifindex: i.index,
                metric,
                prefsrc: if a.addr.is_ipv4() { Some(a.addr) } else { None },
            };
            match a.addr {
                IpAddr::V4(v) => {
                    let net = network(a.addr, a.prefix_len);
                    if lo && a.prefix_len < 32 {
                        local.push(host(RTN_LOCAL, net, a.prefix_len, RT_SCOPE_HOST, None));
                    } else if a.prefix_len < 32 && !has_route(spec, net, a.prefix_len, i.index) {
                        main.push(Route {
                            table: RT_TABLE_MAIN,
                            ty: RTN_UNICAST,
                            protocol: RTPROT_KERNEL,
                            scope: RT_SCOPE_LINK,
                            dst: net,
                            prefix_len: a.prefix_len,
                            gateway: None,
                            ifindex: i.index,
                            metric: None,
                            prefsrc: Some(a.addr),
                        });
                    }
                    local.push(host(RTN_LOCAL, a.addr, 32, RT_SCOPE_HOST, None));
                    if a.prefix_len < 31 {
                        let b = Ipv4Addr::from(u32::from(v) | !mask4(a.prefix_len));
                        local.push(host(RTN_BROADCAST, IpAddr::V4(b), 32, RT_SCOPE_LINK, None));
                    }
                }
                IpAddr::V6(_) => {
                    let net = network(a.addr, a.prefix_len);
                    if !lo && a.prefix_len < 128 && !has_route(spec, net, a.prefix_len, i.index) {
                        main.push(Route {
                            table: RT_TABLE_MAIN,
                            ty: RTN_UNICAST,
                            protocol: RTPROT_KERNEL,
                            scope: RT_SCOPE_UNIVERSE,
                            dst: net,
                            prefix_len: a.prefix_len,
                            gateway: None,
                            ifindex: i.index,
                            metric: Some(256),
                            prefsrc: None,
                        });
                    }
                    local.push(host(RTN_LOCAL, a.addr, 128, RT_SCOPE_UNIVERSE, Some(0)));
                }
            }
        }
        if !lo && i.addrs.iter().any(|a| a.addr.is_ipv6()) {
            let ff00 = IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0));
            local.push(Route {
                table: RT_TABLE_LOCAL,
                ty: RTN_MULTICAST,
                protocol: RTPROT_KERNEL,
                scope: RT_SCOPE_UNIVERSE,
                dst: ff00,
                prefix_len: 8,
                gateway: None,
                ifindex: i.index,
                metric: Some(256),
                prefsrc: None,
            });
        }
    }
    let key = |r: &Route| (r.dst.is_ipv6(), r.dst, std::cmp::Reverse(r.prefix_len));
    main.sort_by_key(key);
    local.sort_by_key(key);
    main.extend(local);
    main
}

fn has_route(spec: &NetworkSpec, net: IpAddr, plen: u8, ifindex: u32) -> bool {
    spec.routes
        .iter()
        .any(|r| r.ifindex == ifindex && r.prefix_len == plen && network(r.dst, plen) == net)
}

/// The first address of interface `ifindex` inside `net/plen`.
fn addr_on(spec: &NetworkSpec, ifindex: u32, net: IpAddr, plen: u8) -> Option<IpAddr> {
    spec.interfaces
        .iter()
        .filter(|i| i.index == ifindex)
        .flat_map(|i| &i.addrs)
        .map(|a| a.addr)
        .find(|&a| contains(net, plen, a))
}

/// The route `ip route get DST` finds: the longest matching prefix, local table first.
pub fn lookup(spec: &NetworkSpec, dst: IpAddr) -> Option<Route> {
    let all = routes(spec);
    let best = |table: u8| {
        all.iter()
            .filter(|r| {
                r.table == table && r.ty != RTN_MULTICAST && contains(r.dst, r.prefix_len, dst)
            })
            .max_by_key(|r| (r.prefix_len, std::cmp::Reverse(r.metric.unwrap_or(0))))
            .cloned()
    };
    best(RT_TABLE_LOCAL)
        .filter(|r| r.ty == RTN_LOCAL || r.ty == RTN_BROADCAST)
        .or_else(|| best(RT_TABLE_MAIN))
}

fn link_msg(
    i: &InterfaceSpec,
    stats: Option<&IfStats>,
    ty: u16,
    flags: u16,
    seq: u32,
    pid: u32,
) -> Vec<u8> {
    let lo = i.kind == LinkKind::Loopback;
    let mut m = Msg::new(ty, flags, seq, pid);
    m.put(&IfInfoMsg {
        ifi_family: AF_UNSPEC as u8,
        ifi_pad: 0,
        ifi_type: if lo { ARPHRD_LOOPBACK } else { ARPHRD_ETHER },
        ifi_index: i.index as i32,
        ifi_flags: i.flags,
        ifi_change: 0,
    });
    let up = i.flags & IFF_UP != 0;
    let carrier = i.flags & IFF_LOWER_UP != 0;
    let oper = oper_state(i);
    m.attr_str(IFLA_IFNAME, &i.name)
        .attr_u32(IFLA_TXQLEN, TXQLEN)
        .attr_u8(IFLA_OPERSTATE, oper)
        .attr_u8(IFLA_LINKMODE, 0)
        .attr_u32(IFLA_MTU, i.mtu)
        .attr_u32(IFLA_MIN_MTU, if lo { 0 } else { 68 })
        .attr_u32(IFLA_MAX_MTU, if lo { 0 } else { 65535 })
        .attr_u32(IFLA_GROUP, 0)
        .attr_u32(IFLA_PROMISCUITY, 0)
        .attr_u32(IFLA_NUM_TX_QUEUES, 1)
        .attr_u32(IFLA_NUM_RX_QUEUES, 1)
        .attr_u8(IFLA_CARRIER, u8::from(carrier))
        .attr_u32(IFLA_CARRIER_CHANGES, 0);
    if up {
        m.attr_str(IFLA_QDISC, "noqueue");
    }
    m.attr(IFLA_MAP, &[0u8; 24])
        .attr(IFLA_ADDRESS, &i.mac)
        .attr(IFLA_BROADCAST, if lo { &[0u8; 6] } else { &[0xffu8; 6] });
    let s = stats.cloned().unwrap_or_default();
    // rtnl_link_stats64 then rtnl_link_stats: rx/tx packets, bytes, errors, dropped, then
    // counters rvisor does not keep (zero).
    let head = [
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        s.rx_errors,
        s.tx_errors,
        s.rx_dropped,
        s.tx_dropped,
    ];
    let mut s64 = vec![0u8; RTNL_LINK_STATS64_SIZE];
    let mut s32 = vec![0u8; RTNL_LINK_STATS_SIZE];
    for (k, v) in head.iter().enumerate() {
        s64[k * 8..k * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        s32[k * 4..k * 4 + 4].copy_from_slice(&(*v as u32).to_ne_bytes());
    }
    m.attr(IFLA_STATS64, &s64).attr(IFLA_STATS, &s32);
    m.finish()
}

/// The IPv6 view of a link (what an AF_INET6 link dump answers, as Linux's addrconf).
fn inet6_link_msg(i: &InterfaceSpec, seq: u32, pid: u32) -> Vec<u8> {
    let lo = i.kind == LinkKind::Loopback;
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_MULTI, seq, pid);
    m.put(&IfInfoMsg {
        ifi_family: AF_INET6 as u8,
        ifi_pad: 0,
        ifi_type: if lo { ARPHRD_LOOPBACK } else { ARPHRD_ETHER },
        ifi_index: i.index as i32,
        ifi_flags: i.flags,
        ifi_change: 0,
    });
    m.attr_str(IFLA_IFNAME, &i.name)
        .attr(IFLA_ADDRESS, &i.mac)
        .attr_u32(IFLA_MTU, i.mtu)
        .attr_u8(IFLA_OPERSTATE, oper_state(i));
    // IFLA_PROTINFO holding IFLA_INET6_FLAGS: IF_READY.
    let mut nested = Msg::new(0, 0, 0, 0);
    nested.attr_u32(1, 0x8000_0000);
    let nested = nested.finish();
    m.attr(IFLA_PROTINFO, &nested[msg::HDR_LEN..]);
    m.finish()
}

/// IFLA_OPERSTATE as Linux reports it: loopback UNKNOWN, others UP with a carrier.
fn oper_state(i: &InterfaceSpec) -> u8 {
    let up = i.flags & IFF_UP != 0;
    match (
        i.kind == LinkKind::Loopback,
        up,
        i.flags & IFF_LOWER_UP != 0,
    ) {
        (true, true, _) => IF_OPER_UNKNOWN,
        (_, true, true) => IF_OPER_UP,
        _ => IF_OPER_DOWN,
    }
}

fn addr_msgs(view: &View, family: i32, index: u32, seq: u32, pid: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for fam in [AF_INET, AF_INET6] {
        if family != AF_UNSPEC && family != fam {
            continue;
        }
        for i in view
            .spec
            .interfaces
            .iter()
            .filter(|i| index == 0 || i.index == index)
        {
            for a in i.addrs.iter().filter(|a| family_of(a.addr) == fam) {
                let mut m = Msg::new(RTM_NEWADDR, NLM_F_MULTI, seq, pid);
                m.put(&IfAddrMsg {
                    ifa_family: fam as u8,
                    ifa_prefixlen: a.prefix_len,
                    ifa_flags: IFA_F_PERMANENT as u8,
                    ifa_scope: addr_scope(a.addr),
                    ifa_index: i.index,
                });
                let forever = IfaCacheInfo {
                    ifa_prefered: u32::MAX,
                    ifa_valid: u32::MAX,
                    cstamp: 0,
                    tstamp: 0,
                };
                let b = ip_bytes(a.addr);
                if fam == AF_INET {
                    m.attr(IFA_ADDRESS, &b)
                        .attr(IFA_LOCAL, &b)
                        .attr_str(IFA_LABEL, &i.name)
                        .attr_u32(IFA_FLAGS, IFA_F_PERMANENT);
                    m.attr(IFA_CACHEINFO, forever.as_bytes());
                } else {
                    m.attr(IFA_ADDRESS, &b)
                        .attr(IFA_CACHEINFO, forever.as_bytes())
                        .attr_u32(IFA_FLAGS, IFA_F_PERMANENT);
                }
                out.push(m.finish());
            }
        }
    }
    out
}

/// An RTM_NEWROUTE message for `r`.
pub fn route_msg(r: &Route, flags: u16, rt_flags: u32, seq: u32, pid: u32) -> Vec<u8> {
    let v6 = r.dst.is_ipv6();
    let mut m = Msg::new(RTM_NEWROUTE, flags, seq, pid);
    m.put(&RtMsg {
        rtm_family: family_of(r.dst) as u8,
        rtm_dst_len: r.prefix_len,
        rtm_src_len: 0,
        rtm_tos: 0,
        rtm_table: r.table,
        rtm_protocol: r.protocol,
        rtm_scope: r.scope,
        rtm_type: r.ty,
        rtm_flags: rt_flags,
    });
    m.attr_u32(RTA_TABLE, u32::from(r.table));
    if r.prefix_len != 0 {
        m.attr(RTA_DST, &ip_bytes(r.dst));
    }
    if !v6 {
        if let Some(p) = r.metric {
            m.attr_u32(RTA_PRIORITY, p);
        }
    }
    if let Some(s) = r.prefsrc {
        m.attr(RTA_PREFSRC, &ip_bytes(s));
    }
    if let Some(g) = r.gateway {
        m.attr(RTA_GATEWAY, &ip_bytes(g));
    }
    m.attr_u32(RTA_OIF, r.ifindex);
    if v6 {
        m.attr_u32(RTA_PRIORITY, r.metric.unwrap_or(0));
        m.attr(RTA_CACHEINFO, &[0u8; 32]);
        m.attr_u8(RTA_PREF, ICMPV6_ROUTER_PREF_MEDIUM);
    }
    m.finish()
}

fn rule_msgs(family: i32, seq: u32, pid: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let v4: &[(u32, u8)] = &[
        (0, RT_TABLE_LOCAL),
        (32766, RT_TABLE_MAIN),
        (32767, RT_TABLE_DEFAULT),
    ];
    let v6: &[(u32, u8)] = &[(0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN)];
    for (fam, rules) in [(AF_INET, v4), (AF_INET6, v6)] {
        if family != AF_UNSPEC && family != fam {
            continue;
        }
        for &(prio, table) in rules {
            let mut m = Msg::new(RTM_NEWRULE, NLM_F_MULTI, seq, pid);
            m.put(&RtMsg {
                rtm_family: fam as u8,
                rtm_table: table,
                rtm_type: FR_ACT_TO_TBL,
                ..Default::default()
            });
            m.attr_u32(FRA_TABLE, u32::from(table))
                .attr_u32(FRA_SUPPRESS_PREFIXLEN, u32::MAX)
                .attr_u8(FRA_PROTOCOL, RTPROT_KERNEL);
            if prio != 0 {
                m.attr_u32(FRA_PRIORITY, prio);
            }
            out.push(m.finish());
        }
    }
    out
}

/// The family byte that starts every rtnetlink request payload (AF_UNSPEC if absent).
fn req_family(payload: &[u8]) -> i32 {
    payload.first().map_or(AF_UNSPEC, |&f| i32::from(f))
}

/// Answers one NETLINK_ROUTE request from the socket bound to `pid`. `None`: nothing to
/// send (not a request); errors come back as an NLMSG_ERROR message.
pub fn handle(view: &View, opts: Options, h: &NlMsgHdr, payload: &[u8], pid: u32) -> Answer {
    let ack = |e: Errno| -> Answer { vec![msg::error(h, payload, e.0, pid, opts.cap_ack)] };
    if h.nlmsg_flags & NLM_F_REQUEST == 0 || h.nlmsg_type < NLMSG_MIN_TYPE {
        return if h.nlmsg_flags & NLM_F_ACK != 0 {
            vec![msg::error(h, payload, 0, pid, opts.cap_ack)]
        } else {
            Vec::new()
        };
    }
    let ty = h.nlmsg_type;
    if ty > RTM_MAX {
        return ack(Errno::EOPNOTSUPP);
    }
    let kind = (ty - RTM_NEWLINK) & 3;
    let seq = h.nlmsg_seq;
    let dump = h.nlmsg_flags & NLM_F_DUMP != 0;
    if kind != 2 {
        return ack(Errno::EPERM);
    }
    let done = |mut list: Vec<Vec<u8>>| -> Answer {
        list.push(msg::done(seq, pid));
        list
    };
    match (ty, dump) {
        (RTM_GETLINK, true) if req_family(payload) == AF_INET6 => done(
            view.spec
                .interfaces
                .iter()
                .map(|i| inet6_link_msg(i, seq, pid))
                .collect(),
        ),
        (RTM_GETLINK, true) => {
            let list = view
                .spec
                .interfaces
                .iter()
                .map(|i| {
                    link_msg(
                        i,
                        view.stats.iter().find(|s| s.index == i.index),
                        RTM_NEWLINK,
                        NLM_F_MULTI,
                        seq,
                        pid,
                    )
                })
                .collect();
            done(list)
        }
        (RTM_GETLINK, false) => {
            let Some(ifi) = IfInfoMsg::from_bytes(payload) else {
                return ack(Errno::EINVAL);
            };
            let a = msg::attrs(
                payload
                    .get(core::mem::size_of::<IfInfoMsg>()..)
                    .unwrap_or_default(),
            );
            let name = msg::find(&a, IFLA_IFNAME).and_then(msg::as_str);
            let found = view.spec.interfaces.iter().find(|i| {
                if ifi.ifi_index > 0 {
                    i.index == ifi.ifi_index as u32
                } else {
                    name.is_some_and(|n| n == i.name)
                }
            });
            match found {
                Some(i) => vec![link_msg(
                    i,
                    view.stats.iter().find(|s| s.index == i.index),
                    RTM_NEWLINK,
                    0,
                    seq,
                    pid,
                )],
                None if ifi.ifi_index <= 0 && name.is_none() => ack(Errno::EINVAL),
                None => ack(Errno::ENODEV),
            }
        }
        (RTM_GETADDR, true) => {
            let index = if opts.strict {
                IfAddrMsg::from_bytes(payload).map_or(0, |m| m.ifa_index)
            } else {
                0
            };
            done(addr_msgs(view, req_family(payload), index, seq, pid))
        }
        (RTM_GETROUTE, true) => {
            let family = req_family(payload);
            let mut table = 0u32;
            if opts.strict {
                if let Some(r) = RtMsg::from_bytes(payload) {
                    table = u32::from(r.rtm_table);
                    let a = msg::attrs(&payload[core::mem::size_of::<RtMsg>()..]);
                    if let Some(t) = msg::find(&a, RTA_TABLE).and_then(msg::as_u32) {
                        table = t;
                    }
                }
            }
            let list = routes(view.spec)
                .iter()
                .filter(|r| family == AF_UNSPEC || family == family_of(r.dst))
                .filter(|r| table == 0 || table == u32::from(r.table))
                .map(|r| route_msg(r, NLM_F_MULTI, 0, seq, pid))
                .collect();
            done(list)
        }
        (RTM_GETROUTE, false) => route_get(view, h, payload, pid, opts),
        (RTM_GETRULE, true) => done(rule_msgs(req_family(payload), seq, pid)),
        // Neighbours, qdiscs, netconf, nsids, stats: nothing to list.
        (_, true) => done(Vec::new()),
        (_, false) => ack(Errno::EOPNOTSUPP),
    }
}

/// RTM_GETROUTE for one destination (`ip route get`): the route that would carry it, as
/// a cloned (cache) entry with the destination as a host route.
fn route_get(view: &View, h: &NlMsgHdr, payload: &[u8], pid: u32, opts: Options) -> Answer {
    let ack = |e: Errno| -> Answer { vec![msg::error(h, payload, e.0, pid, opts.cap_ack)] };
    let Some(rt) = RtMsg::from_bytes(payload) else {
        return ack(Errno::EINVAL);
    };
    let a = msg::attrs(&payload[core::mem::size_of::<RtMsg>()..]);
    let dst = match (i32::from(rt.rtm_family), msg::find(&a, RTA_DST)) {
        (AF_INET, Some(v)) if v.len() >= 4 => IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
        (AF_INET6, Some(v)) if v.len() >= 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&v[..16]);
            IpAddr::V6(Ipv6Addr::from(b))
        }
        (AF_INET, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (AF_INET6, None) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return ack(Errno::EINVAL),
    };
    let Some(r) = lookup(view.spec, dst) else {
        return ack(Errno::ENETUNREACH);
    };
    let src = r.prefsrc.or_else(|| {
        let candidates = view
            .spec
            .interfaces
            .iter()
            .filter(|i| i.index == r.ifindex)
            .flat_map(|i| &i.addrs);
        candidates
            .clone()
            .map(|a| a.addr)
            .find(|a| a.is_ipv4() == dst.is_ipv4() && addr_scope(*a) == RT_SCOPE_UNIVERSE)
            .or_else(|| {
                candidates
                    .map(|a| a.addr)
                    .find(|a| a.is_ipv4() == dst.is_ipv4())
            })
    });
    // Linux reports IPv4 local and broadcast answers in the main table, IPv6 ones in the
    // table they were found in (with RTM_F_LOOKUP_TABLE).
    let table = if dst.is_ipv6() || (rt.rtm_flags & RTM_F_LOOKUP_TABLE != 0 && r.ty == RTN_UNICAST)
    {
        r.table
    } else {
        RT_TABLE_MAIN
    };
    // RTCF_LOCAL (and RTCF_BROADCAST), as Linux's cached IPv4 routes carry them.
    let rtcf = match r.ty {
        _ if dst.is_ipv6() => 0,
        RTN_LOCAL => 0x8000_0000,
        RTN_BROADCAST => 0x9000_0000,
        _ => 0,
    };
    let cached = Route {
        table,
        dst,
        prefix_len: if dst.is_ipv4() { 32 } else { 128 },
        metric: if dst.is_ipv6() { r.metric } else { None },
        prefsrc: src,
        scope: RT_SCOPE_UNIVERSE,
        protocol: if dst.is_ipv6() { r.protocol } else { 0 },
        ..r
    };
    // IPv4 answers are cache entries; IPv6 ones the FIB route itself.
    let cloned = if dst.is_ipv4() { RTM_F_CLONED } else { 0 };
    let mut m = route_msg(&cached, 0, cloned | rtcf, h.nlmsg_seq, pid);
    let mut extra = Msg::new(0, 0, 0, 0);
    if dst.is_ipv4() {
        // The uid the lookup was made for (the caller's).
        let uid = crate::kernel::task::current_task().map_or(0, |t| t.proc_info().creds.uid);
        extra.attr_u32(RTA_UID, uid);
    } else {
        // The flow's source (unspecified), as a /128.
        extra.attr(RTA_SRC, &[0u8; 16]);
        m[msg::HDR_LEN + 2] = 128;
    }
    let extra = extra.finish();
    m.extend_from_slice(&extra[msg::HDR_LEN..]);
    let len = u32::try_from(m.len()).unwrap_or(u32::MAX);
    m[..4].copy_from_slice(&len.to_ne_bytes());
    vec![m]
}
