use std::net::IpAddr;

use rvisor_syscalls::flags::net_if::*;

use super::msg::{attrs, find, messages};
use super::*;
use crate::net::{AddrSpec, InterfaceSpec, LinkKind, NetworkMode, NetworkSpec, RouteSpec};

struct FakeNet(NetworkSpec);

impl NetworkStack for FakeNet {
    fn socket(&self, _: i32, _: i32, _: i32, _: bool) -> Result<Arc<dyn FileImpl>, Errno> {
        Err(Errno::EAFNOSUPPORT)
    }
    fn spec(&self) -> &NetworkSpec {
        &self.0
    }
    fn stats(&self) -> Vec<crate::net::IfStats> {
        vec![crate::net::IfStats {
            index: 5,
            rx_bytes: 426,
            rx_packets: 5,
            tx_bytes: 516,
            tx_packets: 6,
            ..Default::default()
        }]
    }
}

/// lo, and nlv1 (index 5) with 169.254.77.2/30, a link-local IPv6 address and a default
/// route via 169.254.77.1 (the veth namespace of the integration tests).
fn veth_spec() -> NetworkSpec {
    let mut s = NetworkSpec::loopback_only(NetworkMode::Sandbox);
    s.interfaces.push(InterfaceSpec {
        name: "nlv1".into(),
        index: 5,
        kind: LinkKind::Ethernet,
        mac: [0x5a, 0x0c, 0xcc, 0xd7, 0x3c, 0x86],
        mtu: 1500,
        flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP,
        addrs: vec![
            AddrSpec {
                addr: "169.254.77.2".parse().unwrap(),
                prefix_len: 30,
            },
            AddrSpec {
                addr: "fe80::580c:ccff:fed7:3c86".parse().unwrap(),
                prefix_len: 64,
            },
        ],
    });
    s.routes.push(RouteSpec {
        dst: "0.0.0.0".parse().unwrap(),
        prefix_len: 0,
        gateway: Some("169.254.77.1".parse().unwrap()),
        ifindex: 5,
        metric: 0,
        src: None,
    });
    s
}

fn sock(spec: NetworkSpec) -> Arc<NetlinkSocket> {
    NetlinkSocket::new(SOCK_RAW, NETLINK_ROUTE, Some(Arc::new(FakeNet(spec)))).unwrap()
}

fn request(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = msg::Msg::new(ty, flags, seq, 0);
    m.raw(payload);
    m.finish()
}

/// Sends `req` and reads every queued datagram's messages as (header, payload) copies.
fn ask(s: &NetlinkSocket, req: &[u8]) -> Vec<(NlMsgHdr, Vec<u8>)> {
    s.send(req, None, &[], 0, true).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(r) = s.recv(&mut buf, 0, true) {
        for (h, p) in messages(&buf[..r.len]) {
            out.push((h, p.to_vec()));
        }
    }
    out
}

fn dump(s: &NetlinkSocket, ty: u16, family: u8) -> Vec<(NlMsgHdr, Vec<u8>)> {
    let payload = if ty == RTM_GETLINK {
        IfInfoMsg {
            ifi_family: family,
            ..Default::default()
        }
        .as_bytes()
        .to_vec()
    } else {
        vec![family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    };
    ask(s, &request(ty, NLM_F_REQUEST | NLM_F_DUMP, 42, &payload))
}

#[test]
fn rtm_newlink_for_lo_has_linux_layout() {
    let s = sock(NetworkSpec::loopback_only(NetworkMode::None));
    let msgs = dump(&s, RTM_GETLINK, 0);
    assert_eq!(msgs.len(), 2);
    let (h, p) = &msgs[0];
    let pid = u32::from_ne_bytes(s.local_name().unwrap()[4..8].try_into().unwrap());
    assert_eq!(
        (h.nlmsg_type, h.nlmsg_flags, h.nlmsg_seq, h.nlmsg_pid),
        (RTM_NEWLINK, NLM_F_MULTI, 42, pid)
    );
    assert_eq!(h.nlmsg_len as usize, 16 + p.len());
    #[rustfmt::skip]
    let want: &[u8] = &[
        // ifinfomsg: AF_UNSPEC, pad, ARPHRD_LOOPBACK (772), index 1,
        // flags UP|LOOPBACK|RUNNING|LOWER_UP (0x10049), change 0
        0, 0, 0x04, 0x03, 1, 0, 0, 0, 0x49, 0x00, 0x01, 0x00, 0, 0, 0, 0,
        // IFLA_IFNAME "lo\0" (len 7, padded to 8)
        7, 0, 3, 0, b'l', b'o', 0, 0,
        // IFLA_TXQLEN 1000
        8, 0, 13, 0, 0xe8, 0x03, 0, 0,
        // IFLA_OPERSTATE UNKNOWN, IFLA_LINKMODE 0
        5, 0, 16, 0, 0, 0, 0, 0,
        5, 0, 17, 0, 0, 0, 0, 0,
        // IFLA_MTU 65536
        8, 0, 4, 0, 0, 0, 1, 0,
    ];
    assert_eq!(&p[..want.len()], want);
    let a = attrs(&p[16..]);
    assert_eq!(find(&a, IFLA_ADDRESS), Some(&[0u8; 6][..]));
    assert_eq!(find(&a, IFLA_BROADCAST), Some(&[0u8; 6][..]));
    assert_eq!(find(&a, IFLA_QDISC).and_then(msg::as_str), Some("noqueue"));
    assert_eq!(
        find(&a, IFLA_STATS64).map(<[u8]>::len),
        Some(RTNL_LINK_STATS64_SIZE)
    );
    let (done, p) = &msgs[1];
    assert_eq!(
        (done.nlmsg_type, done.nlmsg_flags, done.nlmsg_seq),
        (NLMSG_DONE, NLM_F_MULTI, 42)
    );
    assert_eq!(p, &[0u8; 4]);
}

#[test]
fn link_dump_carries_counters_and_single_get_finds_by_index_or_name() {
    let s = sock(veth_spec());
    let msgs = dump(&s, RTM_GETLINK, 0);
    assert_eq!(msgs.len(), 3);
    let a = attrs(&msgs[1].1[16..]);
    assert_eq!(find(&a, IFLA_IFNAME).and_then(msg::as_str), Some("nlv1"));
    assert_eq!(
        find(&a, IFLA_ADDRESS),
        Some(&[0x5a, 0x0c, 0xcc, 0xd7, 0x3c, 0x86][..])
    );
    assert_eq!(find(&a, IFLA_OPERSTATE), Some(&[IF_OPER_UP][..]));
    let st = find(&a, IFLA_STATS64).unwrap();
    // rx_packets, tx_packets, rx_bytes, tx_bytes.
    assert_eq!(u64::from_bytes(&st[16..]), Some(426));
    assert_eq!(u64::from_bytes(&st[0..]), Some(5));

    let by_index = IfInfoMsg {
        ifi_index: 5,
        ..Default::default()
    };
    let got = ask(
        &s,
        &request(RTM_GETLINK, NLM_F_REQUEST, 3, by_index.as_bytes()),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0.nlmsg_type, got[0].0.nlmsg_flags),
        (RTM_NEWLINK, 0)
    );
    let mut m = msg::Msg::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 4, 0);
    m.put(&IfInfoMsg::default()).attr_str(IFLA_IFNAME, "lo");
    let got = ask(&s, &m.finish());
    assert_eq!(got.len(), 2, "the answer, then the ack");
    assert_eq!(IfInfoMsg::from_bytes(&got[0].1).unwrap().ifi_index, 1);
    assert_eq!(
        (got[1].0.nlmsg_type, i32::from_bytes(&got[1].1)),
        (NLMSG_ERROR, Some(0))
    );
    let missing = IfInfoMsg {
        ifi_index: 9,
        ..Default::default()
    };
    let got = ask(
        &s,
        &request(RTM_GETLINK, NLM_F_REQUEST, 5, missing.as_bytes()),
    );
    assert_eq!(i32::from_bytes(&got[0].1), Some(-Errno::ENODEV.0));
}

fn addr_of(p: &[u8]) -> (IfAddrMsg, IpAddr, Option<String>) {
    let h = IfAddrMsg::from_bytes(p).unwrap();
    let a = attrs(&p[8..]);
    let raw = find(&a, IFA_ADDRESS).unwrap();
    let ip = if raw.len() == 4 {
        IpAddr::from(<[u8; 4]>::try_from(raw).unwrap())
    } else {
        IpAddr::from(<[u8; 16]>::try_from(raw).unwrap())
    };
    (
        h,
        ip,
        find(&a, IFA_LABEL)
            .and_then(msg::as_str)
            .map(str::to_string),
    )
}

#[test]
fn address_dump_lists_ipv4_then_ipv6_and_filters_by_family() {
    let s = sock(veth_spec());
    let msgs = dump(&s, RTM_GETADDR, 0);
    let addrs: Vec<_> = msgs
        .iter()
        .filter(|(h, _)| h.nlmsg_type == RTM_NEWADDR)
        .map(|(_, p)| addr_of(p))
        .collect();
    let ips: Vec<String> = addrs.iter().map(|(_, ip, _)| ip.to_string()).collect();
    assert_eq!(
        ips,
        [
            "127.0.0.1",
            "169.254.77.2",
            "::1",
            "fe80::580c:ccff:fed7:3c86"
        ]
    );
    assert_eq!(addrs[0].0.ifa_scope, RT_SCOPE_HOST);
    assert_eq!(addrs[1].0.ifa_scope, RT_SCOPE_UNIVERSE);
    assert_eq!(addrs[3].0.ifa_scope, RT_SCOPE_LINK);
    assert_eq!(addrs[1].2.as_deref(), Some("nlv1"));
    assert_eq!((addrs[1].0.ifa_prefixlen, addrs[1].0.ifa_index), (30, 5));
    assert_eq!(msgs.last().unwrap().0.nlmsg_type, NLMSG_DONE);
    let v6 = dump(&s, RTM_GETADDR, AF_INET6 as u8);
    assert_eq!(v6.len(), 3);
}

fn route_of(p: &[u8]) -> (RtMsg, Vec<(u16, Vec<u8>)>) {
    let r = RtMsg::from_bytes(p).unwrap();
    (
        r,
        attrs(&p[12..])
            .into_iter()
            .map(|(t, v)| (t, v.to_vec()))
            .collect(),
    )
}

#[test]
fn route_dump_has_main_then_local_table_as_linux_derives_it() {
    let s = sock(veth_spec());
    let msgs = dump(&s, RTM_GETROUTE, AF_INET as u8);
    let routes: Vec<_> = msgs
        .iter()
        .filter(|(h, _)| h.nlmsg_type == RTM_NEWROUTE)
        .map(|(_, p)| route_of(p))
        .collect();
    let summary: Vec<(u8, u8, u8, Option<Vec<u8>>)> = routes
        .iter()
        .map(|(r, a)| {
            (
                r.rtm_table,
                r.rtm_type,
                r.rtm_dst_len,
                a.iter()
                    .find(|(t, _)| *t == RTA_DST)
                    .map(|(_, v)| v.clone()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (RT_TABLE_MAIN, RTN_UNICAST, 0, None),
            (RT_TABLE_MAIN, RTN_UNICAST, 30, Some(vec![169, 254, 77, 0])),
            (RT_TABLE_LOCAL, RTN_LOCAL, 8, Some(vec![127, 0, 0, 0])),
            (RT_TABLE_LOCAL, RTN_LOCAL, 32, Some(vec![127, 0, 0, 1])),
            (
                RT_TABLE_LOCAL,
                RTN_BROADCAST,
                32,
                Some(vec![127, 255, 255, 255])
            ),
            (RT_TABLE_LOCAL, RTN_LOCAL, 32, Some(vec![169, 254, 77, 2])),
            (
                RT_TABLE_LOCAL,
                RTN_BROADCAST,
                32,
                Some(vec![169, 254, 77, 3])
            ),
        ]
    );
    let (r, a) = &routes[0];
    assert_eq!(
        (r.rtm_protocol, r.rtm_scope),
        (RTPROT_BOOT, RT_SCOPE_UNIVERSE)
    );
    assert_eq!(
        a.iter()
            .find(|(t, _)| *t == RTA_GATEWAY)
            .map(|(_, v)| v.as_slice()),
        Some(&[169, 254, 77, 1][..])
    );
    assert_eq!(
        a.iter()
            .find(|(t, _)| *t == RTA_OIF)
            .map(|(_, v)| v.as_slice()),
        Some(&5u32.to_ne_bytes()[..])
    );
    let (r, a) = &routes[1];
    assert_eq!(
        (r.rtm_protocol, r.rtm_scope),
        (RTPROT_KERNEL, RT_SCOPE_LINK)
    );
    assert_eq!(
        a.iter()
            .find(|(t, _)| *t == RTA_PREFSRC)
            .map(|(_, v)| v.as_slice()),
        Some(&[169, 254, 77, 2][..])
    );

    // Strict checking with a table asked for: only that table.
    s.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, &1i32.to_ne_bytes())
        .unwrap();
    let req = RtMsg {
        rtm_family: AF_INET as u8,
        rtm_table: RT_TABLE_MAIN,
        ..Default::default()
    };
    let got = ask(
        &s,
        &request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 1, req.as_bytes()),
    );
    assert_eq!(got.len(), 3);

    let v6 = dump(&s, RTM_GETROUTE, AF_INET6 as u8);
    let types: Vec<(u8, u8)> = v6
        .iter()
        .filter(|(h, _)| h.nlmsg_type == RTM_NEWROUTE)
        .map(|(_, p)| (p[4], p[7]))
        .collect();
    assert_eq!(
        types,
        [
            (RT_TABLE_MAIN, RTN_UNICAST),
            (RT_TABLE_LOCAL, RTN_LOCAL),
            (RT_TABLE_LOCAL, RTN_LOCAL),
            (RT_TABLE_LOCAL, RTN_MULTICAST)
        ]
    );
}

#[test]
fn route_get_finds_the_longest_prefix() {
    let s = sock(veth_spec());
    let mut m = msg::Msg::new(RTM_GETROUTE, NLM_F_REQUEST, 8, 0);
    m.put(&RtMsg {
        rtm_family: AF_INET as u8,
        rtm_dst_len: 32,
        ..Default::default()
    })
    .attr(RTA_DST, &[8, 8, 8, 8]);
    let got = ask(&s, &m.finish());
    assert_eq!(got.len(), 1);
    let (r, a) = route_of(&got[0].1);
    assert_eq!(r.rtm_flags & RTM_F_CLONED, RTM_F_CLONED);
    let get = |t: u16| a.iter().find(|(x, _)| *x == t).map(|(_, v)| v.clone());
    assert_eq!(get(RTA_DST), Some(vec![8, 8, 8, 8]));
    assert_eq!(get(RTA_GATEWAY), Some(vec![169, 254, 77, 1]));
    assert_eq!(get(RTA_PREFSRC), Some(vec![169, 254, 77, 2]));
}

#[test]
fn changes_are_refused_and_acks_echo_sequence_numbers() {
    let s = sock(veth_spec());
    let req = request(
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK,
        77,
        &[2, 24, 0, 0, 1, 0, 0, 0],
    );
    let got = ask(&s, &req);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.nlmsg_type, got[0].0.nlmsg_seq), (NLMSG_ERROR, 77));
    assert_eq!(i32::from_bytes(&got[0].1), Some(-Errno::EPERM.0));
    // The error echoes the whole request.
    assert_eq!(&got[0].1[4..], &req[..]);
    // Neighbours: an empty dump; rules: Linux's three defaults.
    assert_eq!(dump(&s, RTM_GETNEIGH, 0).len(), 1);
    assert_eq!(dump(&s, RTM_GETRULE, AF_INET as u8).len(), 4);
    // Not a request: nothing.
    assert!(ask(&s, &request(RTM_GETLINK, 0, 1, &[0; 16])).is_empty());
}

#[test]
fn peek_with_trunc_reports_the_full_datagram_and_keeps_it() {
    let s = sock(NetworkSpec::loopback_only(NetworkMode::None));
    assert_eq!(s.readiness() & POLLIN, 0);
    s.send(
        &request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 8]),
        None,
        &[],
        0,
        true,
    )
    .unwrap();
    assert_ne!(s.readiness() & POLLIN, 0);
    let mut small = [0u8; 4];
    let r = s.recv(&mut small, MSG_PEEK | MSG_TRUNC, true).unwrap();
    assert_eq!(r.len, 4);
    assert!(r.full > 16);
    let mut buf = vec![0u8; r.full];
    let r2 = s.recv(&mut buf, 0, true).unwrap();
    assert_eq!(r2.len, r.full);
    // One datagram holds the whole dump: two addresses and NLMSG_DONE.
    assert_eq!(messages(&buf).len(), 3);
    assert_eq!(s.recv(&mut buf, 0, true).unwrap_err(), Errno::EAGAIN);
    assert_eq!(s.readiness() & POLLIN, 0);
}

#[test]
fn ports_autobind_explicit_binds_conflict_and_free_on_close() {
    let a = sock(NetworkSpec::default());
    let mut addr = SockaddrNl {
        nl_family: AF_NETLINK as u16,
        nl_pid: 0x7777_0001,
        nl_groups: 1,
        ..Default::default()
    };
    a.bind(addr.as_bytes()).unwrap();
    assert_eq!(
        SockaddrNl::from_bytes(&a.local_name().unwrap()).unwrap(),
        addr
    );
    let b = sock(NetworkSpec::default());
    assert_eq!(b.bind(addr.as_bytes()), Err(Errno::EADDRINUSE));
    drop(a);
    b.bind(addr.as_bytes()).unwrap();
    // Rebinding to another port is EINVAL; a bad family too.
    addr.nl_pid = 0x7777_0002;
    assert_eq!(b.bind(addr.as_bytes()), Err(Errno::EINVAL));
    assert_eq!(
        sock(NetworkSpec::default()).bind(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(Errno::EINVAL)
    );
    // Without a task, autobind takes Linux's negative ids.
    let c = sock(NetworkSpec::default());
    c.connect(
        SockaddrNl {
            nl_family: AF_NETLINK as u16,
            ..Default::default()
        }
        .as_bytes(),
        false,
    )
    .unwrap();
    let pid = SockaddrNl::from_bytes(&c.local_name().unwrap())
        .unwrap()
        .nl_pid as i32;
    assert!(pid <= -4096, "{pid}");
    // Only the kernel (port 0) answers.
    let to = SockaddrNl {
        nl_family: AF_NETLINK as u16,
        nl_pid: 1234,
        ..Default::default()
    };
    assert_eq!(
        c.send(&[0; 16], Some(to.as_bytes()), &[], 0, true),
        Err(Errno::ECONNREFUSED)
    );
}

#[test]
fn socket_checks_type_and_protocol_and_stores_options() {
    assert_eq!(
        NetlinkSocket::new(SOCK_STREAM, NETLINK_ROUTE, None).err(),
        Some(Errno::ESOCKTNOSUPPORT)
    );
    assert_eq!(
        NetlinkSocket::new(SOCK_RAW, NETLINK_AUDIT, None).err(),
        Some(Errno::EPROTONOSUPPORT)
    );
    assert_eq!(
        NetlinkSocket::new(SOCK_RAW, 99, None).err(),
        Some(Errno::EPROTONOSUPPORT)
    );
    let u = NetlinkSocket::new(SOCK_DGRAM, NETLINK_KOBJECT_UEVENT, None).unwrap();
    u.send(
        &request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]),
        None,
        &[],
        0,
        true,
    )
    .unwrap();
    assert_eq!(u.readiness() & POLLIN, 0, "uevent sockets never receive");
    let s = sock(NetworkSpec::default());
    assert_eq!(
        s.getsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 4).unwrap(),
        0i32.to_ne_bytes()
    );
    s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, &1i32.to_ne_bytes())
        .unwrap();
    assert_eq!(
        s.getsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 4).unwrap(),
        1i32.to_ne_bytes()
    );
    assert_eq!(
        s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, &[1]),
        Err(Errno::EINVAL)
    );
    s.setsockopt(SOL_SOCKET, SO_RCVBUF, &32768i32.to_ne_bytes())
        .unwrap();
    assert_eq!(
        s.getsockopt(SOL_SOCKET, SO_RCVBUF, 4).unwrap(),
        65536i32.to_ne_bytes()
    );
    assert_eq!(
        s.getsockopt(SOL_SOCKET, SO_PROTOCOL, 4).unwrap(),
        NETLINK_ROUTE.to_ne_bytes()
    );
    s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &3i32.to_ne_bytes())
        .unwrap();
    assert_eq!(
        &s.getsockopt(SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, 8)
            .unwrap()[..4],
        &4u32.to_ne_bytes()
    );
    assert_eq!(s.getsockopt(SOL_IP, 1, 4), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        s.stat().unwrap().st_mode & rvisor_syscalls::flags::mode::S_IFMT,
        S_IFSOCK
    );
}

#[test]
fn garbage_requests_do_not_panic() {
    let s = sock(veth_spec());
    for len in 0..64usize {
        let mut junk: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
        if len >= 16 {
            junk[..4].copy_from_slice(&(len as u32).to_ne_bytes());
            junk[4..6].copy_from_slice(&RTM_GETROUTE.to_ne_bytes());
            junk[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        }
        let _ = ask(&s, &junk);
    }
}

#[test]
fn queued_answers_hold_a_budget_charge_until_read() {
    let s = sock(veth_spec());
    let charged = |s: &NetlinkSocket| s.lock().rx_charge.as_ref().map_or(0, |c| c.bytes());
    let req = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]);
    s.send(&req, None, &[], 0, true).unwrap();
    s.send(&req, None, &[], 0, true).unwrap();
    let (bytes, dgrams) = {
        let st = s.lock();
        (st.rx_bytes, st.rx.len())
    };
    assert!(dgrams >= 2);
    assert_eq!(charged(&s), bytes + dgrams * DGRAM_OVERHEAD);
    let mut buf = vec![0u8; 65536];
    s.recv(&mut buf, 0, true).unwrap();
    assert!(charged(&s) < bytes + dgrams * DGRAM_OVERHEAD);
    while s.recv(&mut buf, 0, true).is_ok() {}
    assert_eq!(charged(&s), 0);
}
