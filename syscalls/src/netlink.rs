//! Netlink (`<linux/netlink.h>`, `<linux/rtnetlink.h>`, `<linux/if_link.h>`,
//! `<linux/if_addr.h>`, `<linux/fib_rules.h>`): protocol numbers, message types, flags,
//! attribute numbers and the fixed headers of NETLINK_ROUTE messages.

use crate::pod::{pod, Pod};

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_USERSOCK: i32 = 2;
pub const NETLINK_SOCK_DIAG: i32 = 4;
pub const NETLINK_AUDIT: i32 = 9;
pub const NETLINK_KOBJECT_UEVENT: i32 = 15;
pub const NETLINK_GENERIC: i32 = 16;
/// Protocols are below this (`MAX_LINKS`).
pub const MAX_LINKS: i32 = 32;

/// SOL_NETLINK options.
pub const NETLINK_ADD_MEMBERSHIP: i32 = 1;
pub const NETLINK_DROP_MEMBERSHIP: i32 = 2;
pub const NETLINK_PKTINFO: i32 = 3;
pub const NETLINK_BROADCAST_ERROR: i32 = 4;
pub const NETLINK_NO_ENOBUFS: i32 = 5;
pub const NETLINK_LISTEN_ALL_NSID: i32 = 8;
pub const NETLINK_LIST_MEMBERSHIPS: i32 = 9;
pub const NETLINK_CAP_ACK: i32 = 10;
pub const NETLINK_EXT_ACK: i32 = 11;
pub const NETLINK_GET_STRICT_CHK: i32 = 12;

/// Message types every protocol shares.
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
/// Types below this are control messages.
pub const NLMSG_MIN_TYPE: u16 = 0x10;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_ECHO: u16 = 0x8;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP_FILTERED: u16 = 0x20;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_ATOMIC: u16 = 0x400;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
/// On NLMSG_ERROR: the request's payload is not echoed.
pub const NLM_F_CAPPED: u16 = 0x100;

/// Netlink messages and attributes are aligned to 4 bytes.
pub const fn nlmsg_align(len: usize) -> usize {
    (len + 3) & !3
}

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_DELNEIGH: u16 = 29;
pub const RTM_GETNEIGH: u16 = 30;
pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
pub const RTM_GETRULE: u16 = 34;
pub const RTM_NEWQDISC: u16 = 36;
pub const RTM_GETQDISC: u16 = 38;
pub const RTM_GETNETCONF: u16 = 82;
pub const RTM_GETNSID: u16 = 90;
pub const RTM_GETSTATS: u16 = 94;
/// The last rtnetlink message type (`RTM_MAX`, rounded as Linux keeps it).
pub const RTM_MAX: u16 = 127;

pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_BROADCAST: u16 = 2;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_LINK: u16 = 5;
pub const IFLA_QDISC: u16 = 6;
pub const IFLA_STATS: u16 = 7;
pub const IFLA_TXQLEN: u16 = 13;
pub const IFLA_MAP: u16 = 14;
pub const IFLA_PROTINFO: u16 = 12;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKMODE: u16 = 17;
pub const IFLA_STATS64: u16 = 23;
pub const IFLA_GROUP: u16 = 27;
pub const IFLA_EXT_MASK: u16 = 29;
pub const IFLA_PROMISCUITY: u16 = 30;
pub const IFLA_NUM_TX_QUEUES: u16 = 31;
pub const IFLA_NUM_RX_QUEUES: u16 = 32;
pub const IFLA_CARRIER: u16 = 33;
pub const IFLA_CARRIER_CHANGES: u16 = 35;
pub const IFLA_MIN_MTU: u16 = 50;
pub const IFLA_MAX_MTU: u16 = 51;

/// `IF_OPER_*` (IFLA_OPERSTATE).
pub const IF_OPER_UNKNOWN: u8 = 0;
pub const IF_OPER_DOWN: u8 = 2;
pub const IF_OPER_UP: u8 = 6;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_CACHEINFO: u16 = 6;
pub const IFA_FLAGS: u16 = 8;
pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_PERMANENT: u32 = 0x80;

pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;

pub const RTA_DST: u16 = 1;
pub const RTA_SRC: u16 = 2;
pub const RTA_IIF: u16 = 3;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_CACHEINFO: u16 = 12;
pub const RTA_TABLE: u16 = 15;
pub const RTA_MARK: u16 = 16;
pub const RTA_PREF: u16 = 20;
pub const RTA_UID: u16 = 25;

pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BROADCAST: u8 = 3;
pub const RTN_MULTICAST: u8 = 5;

pub const RTPROT_KERNEL: u8 = 2;
pub const RTPROT_BOOT: u8 = 3;

pub const RT_TABLE_UNSPEC: u8 = 0;
pub const RT_TABLE_DEFAULT: u8 = 253;
pub const RT_TABLE_MAIN: u8 = 254;
pub const RT_TABLE_LOCAL: u8 = 255;

pub const RTM_F_CLONED: u32 = 0x200;
pub const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
pub const RTM_F_FIB_MATCH: u32 = 0x2000;

/// `ICMPV6_ROUTER_PREF_MEDIUM` (RTA_PREF).
pub const ICMPV6_ROUTER_PREF_MEDIUM: u8 = 0;

pub const FRA_PRIORITY: u16 = 6;
pub const FRA_TABLE: u16 = 15;
pub const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
pub const FRA_PROTOCOL: u16 = 21;
pub const FR_ACT_TO_TBL: u8 = 1;

/// `struct nlmsghdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NlMsgHdr {
    pub nlmsg_len: u32,
    pub nlmsg_type: u16,
    pub nlmsg_flags: u16,
    pub nlmsg_seq: u32,
    pub nlmsg_pid: u32,
}

/// `struct sockaddr_nl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockaddrNl {
    pub nl_family: u16,
    pub nl_pad: u16,
    pub nl_pid: u32,
    pub nl_groups: u32,
}

/// `struct rtattr` / `struct nlattr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtAttr {
    pub rta_len: u16,
    pub rta_type: u16,
}

/// `struct ifinfomsg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfInfoMsg {
    pub ifi_family: u8,
    pub ifi_pad: u8,
    pub ifi_type: u16,
    pub ifi_index: i32,
    pub ifi_flags: u32,
    pub ifi_change: u32,
}

/// `struct ifaddrmsg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfAddrMsg {
    pub ifa_family: u8,
    pub ifa_prefixlen: u8,
    pub ifa_flags: u8,
    pub ifa_scope: u8,
    pub ifa_index: u32,
}

/// `struct ifa_cacheinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaCacheInfo {
    pub ifa_prefered: u32,
    pub ifa_valid: u32,
    pub cstamp: u32,
    pub tstamp: u32,
}

/// `struct rtmsg` (also the layout of `struct fib_rule_hdr`: family, dst_len, src_len,
/// tos, table, res1, res2, action, flags).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtMsg {
    pub rtm_family: u8,
    pub rtm_dst_len: u8,
    pub rtm_src_len: u8,
    pub rtm_tos: u8,
    pub rtm_table: u8,
    pub rtm_protocol: u8,
    pub rtm_scope: u8,
    pub rtm_type: u8,
    pub rtm_flags: u32,
}

/// `struct ndmsg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NdMsg {
    pub ndm_family: u8,
    pub ndm_pad1: u8,
    pub ndm_pad2: u16,
    pub ndm_ifindex: i32,
    pub ndm_state: u16,
    pub ndm_flags: u8,
    pub ndm_type: u8,
}

/// `struct ifreq` as the SIOCGIF* ioctls use it: the name, then a 24-byte union.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfReq {
    pub ifr_name: [u8; 16],
    pub ifr_data: [u8; 24],
}

/// `struct ifconf` (SIOCGIFCONF): the buffer's length and address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfConf {
    pub ifc_len: i32,
    pub pad: u32,
    pub ifc_buf: u64,
}

/// `sizeof(struct rtnl_link_stats)` (24 `__u32`, with rx_nohandler).
pub const RTNL_LINK_STATS_SIZE: usize = 24 * 4;
/// `sizeof(struct rtnl_link_stats64)` (25 `__u64`, with rx_otherhost_dropped).
pub const RTNL_LINK_STATS64_SIZE: usize = 25 * 8;

pod!(
    NlMsgHdr,
    SockaddrNl,
    RtAttr,
    IfInfoMsg,
    IfAddrMsg,
    IfaCacheInfo,
    RtMsg,
    NdMsg,
    IfReq,
    IfConf
);

const _: () = {
    assert!(core::mem::size_of::<NlMsgHdr>() == 16);
    assert!(core::mem::size_of::<SockaddrNl>() == 12);
    assert!(core::mem::size_of::<RtAttr>() == 4);
    assert!(core::mem::size_of::<IfInfoMsg>() == 16);
    assert!(core::mem::size_of::<IfAddrMsg>() == 8);
    assert!(core::mem::size_of::<IfaCacheInfo>() == 16);
    assert!(core::mem::size_of::<RtMsg>() == 12);
    assert!(core::mem::size_of::<NdMsg>() == 12);
    assert!(core::mem::size_of::<IfReq>() == 40);
    assert!(core::mem::size_of::<IfConf>() == 16);
};
