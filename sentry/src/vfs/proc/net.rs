//! /proc/net (a link to `self/net`) and /proc/PID/net: the sandbox's interfaces, routes
//! and socket tables in Linux's formats, from `kernel.network()`; and the read-only
//! /proc/sys/net values.
//!
//! Counters rvisor does not keep (SNMP, most interface error counters) read zero; the
//! socket tables show no uid, inode or timers (zeros).

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use rvisor_syscalls::flags::net_if::{IFF_MULTICAST, IFF_UP};
use rvisor_syscalls::netlink::{RTN_LOCAL, RTN_MULTICAST, RT_TABLE_MAIN};
use rvisor_syscalls::Errno;

use crate::kernel::Kernel;
use crate::net::netlink::route::{self, mask4};
use crate::net::{LinkKind, NetworkSpec, Proto, SocketEntry};

/// The files of a net directory.
pub const ENTRIES: &[&str] = &[
    "arp",
    "dev",
    "if_inet6",
    "igmp",
    "ipv6_route",
    "netstat",
    "raw",
    "raw6",
    "route",
    "snmp",
    "sockstat",
    "tcp",
    "tcp6",
    "udp",
    "udp6",
    "unix",
];

/// The read-only /proc/sys/net values: path below /proc, contents.
pub const SYSCTLS: &[(&str, &str)] = &[
    ("sys/net/core/somaxconn", "4096"),
    ("sys/net/core/rmem_default", "212992"),
    ("sys/net/core/rmem_max", "212992"),
    ("sys/net/core/wmem_default", "212992"),
    ("sys/net/core/wmem_max", "212992"),
    ("sys/net/ipv4/ip_forward", "0"),
    ("sys/net/ipv4/ip_local_port_range", "32768\t60999"),
    ("sys/net/ipv4/tcp_fin_timeout", "60"),
    ("sys/net/ipv4/tcp_keepalive_intvl", "75"),
    ("sys/net/ipv4/tcp_keepalive_probes", "9"),
    ("sys/net/ipv4/tcp_keepalive_time", "7200"),
    ("sys/net/ipv4/tcp_max_syn_backlog", "2048"),
    ("sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456"),
    ("sys/net/ipv4/tcp_sack", "1"),
    ("sys/net/ipv4/tcp_syncookies", "1"),
    ("sys/net/ipv4/tcp_timestamps", "1"),
    ("sys/net/ipv4/tcp_window_scaling", "1"),
    ("sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304"),
];

/// The /proc/sys directories holding [`SYSCTLS`].
pub const SYSCTL_DIRS: &[&str] = &["sys/net", "sys/net/core", "sys/net/ipv4"];

/// The value of a /proc/sys/net file, with its newline.
pub fn sysctl(path: &str) -> Option<String> {
    SYSCTLS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, v)| format!("{v}\n"))
}

/// The counter names of /proc/net/netstat, one line per group (Linux 6.x).
const NETSTAT_HEADERS: &[&str] = &[
    "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned OfoPruned OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive PAWSEstab BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait DelayedACKs DelayedACKLocked DelayedACKLost ListenOverflows ListenDrops TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery TCPSackRecovery TCPSACKReneging TCPSACKReorder TCPRenoReorder TCPTSReorder TCPFullUndo TCPPartialUndo TCPDSACKUndo TCPLossUndo TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPLossProbes TCPLossProbeRecovery TCPRenoRecoveryFail TCPSackRecoveryFail TCPRcvCollapsed TCPBacklogCoalesce TCPDSACKOldSent TCPDSACKOfoSent TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout TCPAbortOnLinger TCPAbortFailed TCPMemoryPressures TCPMemoryPressuresChrono TCPSACKDiscard TCPDSACKIgnoredOld TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPSackShifted TCPSackMerged TCPSackShiftFallback TCPBacklogDrop PFMemallocDrop TCPMinTTLDrop TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow TCPReqQFullDoCookies TCPReqQFullDrop TCPRetransFail TCPRcvCoalesce TCPOFOQueue TCPOFODrop TCPOFOMerge TCPChallengeACK TCPSYNChallenge TCPFastOpenActive TCPFastOpenActiveFail TCPFastOpenPassive TCPFastOpenPassiveFail TCPFastOpenListenOverflow TCPFastOpenCookieReqd TCPFastOpenBlackhole TCPSpuriousRtxHostQueues BusyPollRxPackets TCPAutoCorking TCPFromZeroWindowAdv TCPToZeroWindowAdv TCPWantZeroWindowAdv TCPSynRetrans TCPOrigDataSent TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect TCPHystartDelayCwnd TCPACKSkippedSynRecv TCPACKSkippedPAWS TCPACKSkippedSeq TCPACKSkippedFinWait2 TCPACKSkippedTimeWait TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail TCPMTUPSuccess TCPDelivered TCPDeliveredCE TCPAckCompressed TCPZeroWindowDrop TCPRcvQDrop TCPWqueueTooBig TCPFastOpenPassiveAltKey TcpTimeoutRehash TcpDuplicateDataRehash TCPDSACKRecvSegs TCPDSACKIgnoredDubious TCPMigrateReqSuccess TCPMigrateReqFailure TCPPLBRehash TCPAORequired TCPAOBad TCPAOKeyNotFound TCPAOGood TCPAODroppedIcmps",
    "IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps",
    "MPTcpExt: MPCapableSYNRX MPCapableSYNTX MPCapableSYNACKRX MPCapableACKRX MPCapableFallbackACK MPCapableFallbackSYNACK MPCapableSYNTXDrop MPCapableSYNTXDisabled MPCapableEndpAttempt MPFallbackTokenInit MPTCPRetrans MPJoinNoTokenFound MPJoinSynRx MPJoinSynBackupRx MPJoinSynAckRx MPJoinSynAckBackupRx MPJoinSynAckHMacFailure MPJoinAckRx MPJoinAckHMacFailure MPJoinRejected MPJoinSynTx MPJoinSynTxCreatSkErr MPJoinSynTxBindErr MPJoinSynTxConnectErr DSSNotMatching DSSCorruptionFallback DSSCorruptionReset InfiniteMapTx InfiniteMapRx DSSNoMatchTCP DataCsumErr OFOQueueTail OFOQueue OFOMerge NoDSSInWindow DuplicateData AddAddr AddAddrTx AddAddrTxDrop EchoAdd EchoAddTx EchoAddTxDrop PortAdd AddAddrDrop MPJoinPortSynRx MPJoinPortSynAckRx MPJoinPortAckRx MismatchPortSynRx MismatchPortAckRx RmAddr RmAddrDrop RmAddrTx RmAddrTxDrop RmSubflow MPPrioTx MPPrioRx MPFailTx MPFailRx MPFastcloseTx MPFastcloseRx MPRstTx MPRstRx SubflowStale SubflowRecover SndWndShared RcvWndShared RcvWndConflictUpdate RcvWndConflict MPCurrEstab Blackhole MPCapableDataFallback MD5SigFallback DssFallback SimultConnectFallback FallbackFailed WinProbe",
];

/// `%08X` of an IPv4 address as Linux prints a `__be32` on a little-endian machine.
fn hex4(a: std::net::Ipv4Addr) -> String {
    format!("{:08X}", u32::from_le_bytes(a.octets()))
}

/// `%pi6`: 32 lowercase hex digits.
fn hex6(a: std::net::Ipv6Addr) -> String {
    a.octets().iter().map(|b| format!("{b:02x}")).collect()
}

/// An IPv6 address as the tcp6/udp6 tables print it: four `%08X` words.
fn words6(a: std::net::Ipv6Addr) -> String {
    a.octets()
        .chunks(4)
        .map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// Pads `line` with spaces to `width` characters and ends it (Linux's `seq_pad`).
fn padded(out: &mut String, line: &str, width: usize) {
    let _ = writeln!(out, "{line:<width$}");
}

fn dev(spec: &NetworkSpec, stats: &[crate::net::IfStats]) -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for i in &spec.interfaces {
        let st = stats
            .iter()
            .find(|x| x.index == i.index)
            .cloned()
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:>6}:{:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>10} {:>9} {:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>7} {:>10}",
            i.name, st.rx_bytes, st.rx_packets, st.rx_errors, st.rx_dropped, 0, 0, 0, 0, st.tx_bytes, st.tx_packets, st.tx_errors,
            st.tx_dropped, 0, 0, 0, 0
        );
    }
    s
}

fn name_of(spec: &NetworkSpec, index: u32) -> &str {
    spec.interfaces
        .iter()
        .find(|i| i.index == index)
        .map_or("*", |i| i.name.as_str())
}

fn route_v4(spec: &NetworkSpec) -> String {
    let mut s = String::new();
    padded(
        &mut s,
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
        127,
    );
    for r in route::routes(spec)
        .iter()
        .filter(|r| r.table == RT_TABLE_MAIN)
    {
        let IpAddr::V4(dst) = r.dst else { continue };
        let gw = match r.gateway {
            Some(IpAddr::V4(g)) => g,
            _ => std::net::Ipv4Addr::UNSPECIFIED,
        };
        // RTF_UP, RTF_GATEWAY, RTF_HOST.
        let flags =
            1 | if r.gateway.is_some() { 2 } else { 0 } | if r.prefix_len == 32 { 4 } else { 0 };
        let line = format!(
            "{}\t{}\t{}\t{:04X}\t0\t0\t{}\t{}\t0\t0\t0",
            name_of(spec, r.ifindex),
            hex4(dst),
            hex4(gw),
            flags,
            r.metric.unwrap_or(0),
            hex4(std::net::Ipv4Addr::from(mask4(r.prefix_len)))
        );
        padded(&mut s, &line, 127);
    }
    s
}

fn route_v6(spec: &NetworkSpec) -> String {
    let mut s = String::new();
    let zero = hex6(std::net::Ipv6Addr::UNSPECIFIED);
    let lo = spec
        .interfaces
        .iter()
        .find(|i| i.kind == LinkKind::Loopback)
        .map_or("lo", |i| i.name.as_str());
    let all = route::routes(spec);
    // Each table's routes, then the table root's reject entry (as Linux's fib6 walk).
    for table in [RT_TABLE_MAIN, rvisor_syscalls::netlink::RT_TABLE_LOCAL] {
        for r in all.iter().filter(|r| r.table == table) {
            let IpAddr::V6(dst) = r.dst else { continue };
            let gw = match r.gateway {
                Some(IpAddr::V6(g)) => hex6(g),
                _ => zero.clone(),
            };
            // RTF_UP, RTF_GATEWAY; local routes add RTF_LOCAL | RTF_NONEXTHOP.
            let (flags, refs) = match r.ty {
                RTN_LOCAL => (0x8020_0001u32, 2),
                RTN_MULTICAST => (1, 1),
                _ => (1 | if r.gateway.is_some() { 2 } else { 0 }, 1),
            };
            let _ = writeln!(
                s,
                "{} {:02x} {} {:02x} {} {:08x} {:08x} {:08x} {:08x} {:>8}",
                hex6(dst),
                r.prefix_len,
                zero,
                0,
                gw,
                r.metric.unwrap_or(0),
                refs,
                0,
                flags,
                name_of(spec, r.ifindex)
            );
        }
        let _ = writeln!(
            s,
            "{zero} 00 {zero} 00 {zero} ffffffff 00000001 00000000 00200200 {lo:>8}"
        );
    }
    s
}

fn if_inet6(spec: &NetworkSpec) -> String {
    let mut s = String::new();
    for i in &spec.interfaces {
        for a in &i.addrs {
            let IpAddr::V6(v) = a.addr else { continue };
            let scope = match route::addr_scope(a.addr) {
                rvisor_syscalls::netlink::RT_SCOPE_HOST => 0x10,
                rvisor_syscalls::netlink::RT_SCOPE_LINK => 0x20,
                _ => 0,
            };
            let _ = writeln!(
                s,
                "{} {:02x} {:02x} {:02x} {:02x} {:>8}",
                hex6(v),
                i.index,
                a.prefix_len,
                scope,
                0x80,
                i.name
            );
        }
    }
    s
}

fn igmp(spec: &NetworkSpec) -> String {
    let mut s = String::from("Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n");
    for i in spec.interfaces.iter().filter(|i| {
        i.flags & IFF_UP != 0 && (i.flags & IFF_MULTICAST != 0 || i.kind == LinkKind::Loopback)
    }) {
        let _ = writeln!(s, "{}\t{:<10}: {:>5} {:>7}", i.index, i.name, 1, "V3");
        let _ = writeln!(s, "\t\t\t\t010000E0 {:>5} 0:00000000\t\t0", 1);
    }
    s
}

const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
const DGRAM_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops";
const V6_HEADER: &str =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

fn endpoint(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{:04X}", hex4(*v.ip()), v.port()),
        SocketAddr::V6(v) => format!("{}:{:04X}", words6(*v.ip()), v.port()),
    }
}

/// One socket table (tcp, tcp6, udp, udp6, raw, raw6).
fn sockets(list: &[SocketEntry], proto: Proto, v6: bool) -> String {
    let mut s = String::new();
    match (proto, v6) {
        (Proto::Tcp, false) => padded(&mut s, TCP_HEADER, 149),
        (Proto::Udp, false) => padded(&mut s, &format!(" {DGRAM_HEADER}"), 127),
        (Proto::Raw, false) => s.push_str(&format!("{DGRAM_HEADER}\n")),
        (Proto::Tcp, true) => s.push_str(&format!("{V6_HEADER}\n")),
        (_, true) => s.push_str(&format!("{V6_HEADER} ref pointer drops\n")),
    }
    for (n, e) in list.iter().enumerate() {
        let common = format!(
            "{} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:>5} {:>8} 0",
            endpoint(e.local),
            endpoint(e.remote),
            e.state,
            e.tx_queue,
            e.rx_queue,
            0,
            0
        );
        match (proto, v6) {
            (Proto::Tcp, false) => padded(
                &mut s,
                &format!("{n:>4}: {common} 1 0000000000000000 100 0 0 10 -1"),
                149,
            ),
            (Proto::Tcp, true) => {
                let _ = writeln!(s, "{n:>4}: {common} 1 0000000000000000 100 0 0 10 -1");
            }
            (Proto::Udp, false) => padded(
                &mut s,
                &format!("{n:>5}: {common} 2 0000000000000000 0"),
                127,
            ),
            (Proto::Raw, false) => {
                let _ = writeln!(s, "{n:>4}: {common} 2 0000000000000000 0");
            }
            (_, true) => {
                let _ = writeln!(s, "{n:>5}: {common} 2 0000000000000000 0");
            }
        }
    }
    s
}

fn snmp() -> String {
    let groups: &[(&str, &str)] = &[
        ("Ip", "Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits"),
        ("Icmp", "InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps"),
        ("Tcp", "RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors"),
        ("Udp", "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors"),
        ("UdpLite", "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors"),
    ];
    let mut s = String::new();
    for (g, names) in groups {
        let n = names.split(' ').count();
        let values: Vec<String> = match *g {
            // Not forwarding (2), default TTL 64.
            "Ip" => ["2", "64"]
                .iter()
                .map(|v| v.to_string())
                .chain(std::iter::repeat("0".to_string()))
                .take(n)
                .collect(),
            // RTO algorithm "other" (1), min 200 ms, max 120 s, no connection limit.
            "Tcp" => ["1", "200", "120000", "-1"]
                .iter()
                .map(|v| v.to_string())
                .chain(std::iter::repeat("0".to_string()))
                .take(n)
                .collect(),
            _ => vec!["0".to_string(); n],
        };
        let _ = writeln!(s, "{g}: {names}\n{g}: {}", values.join(" "));
    }
    s
}

fn netstat() -> String {
    let mut s = String::new();
    for h in NETSTAT_HEADERS {
        let (group, names) = h.split_once(": ").unwrap_or((h, ""));
        let zeros = vec!["0"; names.split(' ').count()].join(" ");
        let _ = writeln!(s, "{h}\n{group}: {zeros}");
    }
    s
}

/// Generates /proc/net/`name` for kernel `k`.
pub fn generate(k: &Kernel, name: &str) -> Result<Vec<u8>, Errno> {
    let empty = NetworkSpec::default();
    let net = k.network();
    let spec = net.map_or(&empty, |n| n.spec());
    let stats = net.map(|n| n.stats()).unwrap_or_default();
    let table = |p: Proto, v6: bool| net.map(|n| n.sockets(p, v6)).unwrap_or_default();
    let s = match name {
        "dev" => dev(spec, &stats),
        "route" => route_v4(spec),
        "ipv6_route" => route_v6(spec),
        "if_inet6" => if_inet6(spec),
        "igmp" => igmp(spec),
        "arp" => "IP address       HW type     Flags       HW address            Mask     Device\n"
            .to_string(),
        "unix" => "Num       RefCount Protocol Flags    Type St Inode Path\n".to_string(),
        "tcp" => sockets(&table(Proto::Tcp, false), Proto::Tcp, false),
        "tcp6" => sockets(&table(Proto::Tcp, true), Proto::Tcp, true),
        "udp" => sockets(&table(Proto::Udp, false), Proto::Udp, false),
        "udp6" => sockets(&table(Proto::Udp, true), Proto::Udp, true),
        "raw" => sockets(&table(Proto::Raw, false), Proto::Raw, false),
        "raw6" => sockets(&table(Proto::Raw, true), Proto::Raw, true),
        "snmp" => snmp(),
        "netstat" => netstat(),
        "sockstat" => {
            let tcp = table(Proto::Tcp, false).len() + table(Proto::Tcp, true).len();
            let udp = table(Proto::Udp, false).len() + table(Proto::Udp, true).len();
            let raw = table(Proto::Raw, false).len() + table(Proto::Raw, true).len();
            format!(
                "sockets: used {}\nTCP: inuse {tcp} orphan 0 tw 0 alloc {tcp} mem 0\nUDP: inuse {udp} mem 0\nUDPLITE: inuse 0\nRAW: inuse {raw}\nFRAG: inuse 0 memory 0\n",
                tcp + udp + raw
            )
        }
        _ => return Err(Errno::ENOENT),
    };
    Ok(s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{AddrSpec, InterfaceSpec, NetworkMode, RouteSpec};
    use rvisor_syscalls::flags::net_if::*;

    /// The veth namespace the netlink tests use too: lo, and nlv1 (index 5) with
    /// 169.254.77.2/30, a link-local IPv6 address and a default route.
    pub(crate) fn veth_spec() -> NetworkSpec {
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

    #[test]
    fn proc_net_route_matches_linux_for_a_veth_namespace() {
        let text = route_v4(&veth_spec());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == 127));
        assert_eq!(
            lines[1].trim_end(),
            "nlv1\t00000000\t014DFEA9\t0003\t0\t0\t0\t00000000\t0\t0\t0"
        );
        assert_eq!(
            lines[2].trim_end(),
            "nlv1\t004DFEA9\t00000000\t0001\t0\t0\t0\tFCFFFFFF\t0\t0\t0"
        );
    }

    #[test]
    fn proc_net_ipv6_route_and_if_inet6_match_linux() {
        let s = veth_spec();
        let want = "\
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     nlv1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fe80000000000000580cccfffed73c86 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     nlv1
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     nlv1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";
        assert_eq!(route_v6(&s), want);
        assert_eq!(
            if_inet6(&s),
            "00000000000000000000000000000001 01 80 10 80       lo\nfe80000000000000580cccfffed73c86 05 40 20 80     nlv1\n"
        );
    }

    #[test]
    fn proc_net_dev_rows_align_under_linux_headers() {
        let text = dev(
            &veth_spec(),
            &[crate::net::IfStats {
                index: 5,
                rx_bytes: 426,
                rx_packets: 5,
                tx_bytes: 516,
                tx_packets: 6,
                ..Default::default()
            }],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0");
        assert_eq!(lines[3], "  nlv1:     426       5    0    0    0     0          0         0      516       6    0    0    0     0       0          0");
    }

    #[test]
    fn socket_tables_print_addresses_in_kernel_byte_order() {
        let e = SocketEntry {
            local: "127.0.0.1:8080".parse().unwrap(),
            remote: "0.0.0.0:0".parse().unwrap(),
            state: 10,
            tx_queue: 0,
            rx_queue: 0,
        };
        let text = sockets(&[e], Proto::Tcp, false);
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 "), "{row}");
        assert_eq!(row.len(), 149);
        assert_eq!(text.lines().next().unwrap().len(), 149);
        assert!(sockets(&[], Proto::Udp, false).starts_with("   sl  local_address"));
    }

    #[test]
    fn netstat_and_snmp_rows_have_one_value_per_name() {
        for text in [netstat(), snmp()] {
            let lines: Vec<&str> = text.lines().collect();
            for pair in lines.chunks(2) {
                assert_eq!(
                    pair[0].split(' ').count(),
                    pair[1].split(' ').count(),
                    "{}",
                    pair[0]
                );
            }
        }
    }
}
