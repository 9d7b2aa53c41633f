//! Netlink message encoding and parsing: headers, attributes, acknowledgements.

use rvisor_syscalls::netlink::{
    nlmsg_align, NlMsgHdr, RtAttr, NLMSG_DONE, NLMSG_ERROR, NLM_F_CAPPED, NLM_F_MULTI,
};
use rvisor_syscalls::Pod;

/// `sizeof(struct nlmsghdr)`.
pub const HDR_LEN: usize = core::mem::size_of::<NlMsgHdr>();
/// `sizeof(struct rtattr)`.
const ATTR_HDR: usize = core::mem::size_of::<RtAttr>();

/// One message being built: the header, a fixed family header, then attributes.
pub struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub fn new(ty: u16, flags: u16, seq: u32, pid: u32) -> Msg {
        let hdr = NlMsgHdr {
            nlmsg_len: 0,
            nlmsg_type: ty,
            nlmsg_flags: flags,
            nlmsg_seq: seq,
            nlmsg_pid: pid,
        };
        Msg {
            buf: hdr.as_bytes().to_vec(),
        }
    }

    /// Appends a fixed structure (padded to 4 bytes).
    pub fn put<T: Pod>(&mut self, v: &T) -> &mut Msg {
        self.raw(v.as_bytes())
    }

    /// Appends raw bytes (padded to 4 bytes).
    pub fn raw(&mut self, b: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(b);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.buf.resize(nlmsg_align(self.buf.len()), 0);
    }

    /// Appends one attribute.
    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Msg {
        let len = u16::try_from(ATTR_HDR + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(
            RtAttr {
                rta_len: len,
                rta_type: ty,
            }
            .as_bytes(),
        );
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Msg {
        self.attr(ty, &[v])
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Msg {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(ty, &b)
    }

    /// The finished message, its length field set.
    pub fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// NLMSG_DONE ending a multipart dump (its payload: the dump's status, 0).
pub fn done(seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(NLMSG_DONE, NLM_F_MULTI, seq, pid);
    m.put(&0i32);
    m.finish()
}

/// NLMSG_ERROR answering `req` (its header and payload): `errno` 0 is an acknowledgement.
/// As Linux, an acknowledgement (or any answer when `cap_ack`) echoes only the request's
/// header and is flagged NLM_F_CAPPED; an error echoes the whole request.
pub fn error(req: &NlMsgHdr, payload: &[u8], errno: i32, pid: u32, cap_ack: bool) -> Vec<u8> {
    let capped = errno == 0 || cap_ack;
    let mut m = Msg::new(
        NLMSG_ERROR,
        if capped { NLM_F_CAPPED } else { 0 },
        req.nlmsg_seq,
        pid,
    );
    m.put(&(-errno));
    if capped {
        m.put(req);
    } else {
        let mut echoed = *req;
        echoed.nlmsg_len = u32::try_from(HDR_LEN + payload.len()).unwrap_or(u32::MAX);
        m.buf.extend_from_slice(echoed.as_bytes());
        m.raw(payload);
    }
    m.finish()
}

/// The messages of a datagram: header and payload of each; stops at the first malformed
/// one (as Linux, which ignores the rest of the datagram).
pub fn messages(mut data: &[u8]) -> Vec<(NlMsgHdr, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= HDR_LEN {
        let Some(h) = NlMsgHdr::from_bytes(data) else {
            break;
        };
        let len = h.nlmsg_len as usize;
        if len < HDR_LEN || len > data.len() {
            break;
        }
        out.push((h, &data[HDR_LEN..len]));
        data = &data[nlmsg_align(len).min(data.len())..];
    }
    out
}

/// The attributes in `data` as (type without flag bits, value); stops at a malformed one.
pub fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= ATTR_HDR {
        let Some(a) = RtAttr::from_bytes(data) else {
            break;
        };
        let len = a.rta_len as usize;
        if len < ATTR_HDR || len > data.len() {
            break;
        }
        out.push((a.rta_type & 0x3fff, &data[ATTR_HDR..len]));
        data = &data[nlmsg_align(len).min(data.len())..];
    }
    out
}

/// The value of attribute `ty` in a list from [`attrs`].
pub fn find<'a>(list: &[(u16, &'a [u8])], ty: u16) -> Option<&'a [u8]> {
    list.iter().find(|(t, _)| *t == ty).map(|(_, v)| *v)
}

/// A `u32` attribute value.
pub fn as_u32(v: &[u8]) -> Option<u32> {
    u32::from_bytes(v)
}

/// A string attribute value (up to its NUL).
pub fn as_str(v: &[u8]) -> Option<&str> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    std::str::from_utf8(&v[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_message_parses_back_with_its_attributes() {
        let mut m = Msg::new(16, 2, 7, 99);
        m.put(&[1u8, 2, 3, 4])
            .attr_str(3, "lo")
            .attr_u32(4, 65536)
            .attr_u8(16, 0);
        let bytes = m.finish();
        assert_eq!(bytes.len() % 4, 0);
        let msgs = messages(&bytes);
        assert_eq!(msgs.len(), 1);
        let (h, p) = msgs[0];
        assert_eq!(
            (h.nlmsg_type, h.nlmsg_flags, h.nlmsg_seq, h.nlmsg_pid),
            (16, 2, 7, 99)
        );
        assert_eq!(h.nlmsg_len as usize, bytes.len());
        let a = attrs(&p[4..]);
        assert_eq!(find(&a, 3).and_then(as_str), Some("lo"));
        assert_eq!(find(&a, 4).and_then(as_u32), Some(65536));
        assert_eq!(find(&a, 16), Some(&[0u8][..]));
    }

    #[test]
    fn malformed_lengths_end_parsing_without_panicking() {
        let mut bytes = done(1, 2);
        bytes.extend_from_slice(&[0xff; 20]);
        assert_eq!(messages(&bytes).len(), 1);
        assert!(messages(&[0u8; 3]).is_empty());
        let bad = RtAttr {
            rta_len: 200,
            rta_type: 1,
        };
        assert!(attrs(bad.as_bytes()).is_empty());
        let zero = RtAttr {
            rta_len: 0,
            rta_type: 1,
        };
        assert!(attrs(zero.as_bytes()).is_empty());
    }

    #[test]
    fn acks_are_capped_and_errors_echo_the_request() {
        let req = NlMsgHdr {
            nlmsg_len: 20,
            nlmsg_type: 20,
            nlmsg_flags: 5,
            nlmsg_seq: 9,
            nlmsg_pid: 0,
        };
        let ack = error(&req, &[1, 2, 3, 4], 0, 42, false);
        assert_eq!(ack.len(), 16 + 4 + 16);
        let (h, p) = messages(&ack)[0];
        assert_eq!(
            (h.nlmsg_type, h.nlmsg_flags, h.nlmsg_seq, h.nlmsg_pid),
            (NLMSG_ERROR, NLM_F_CAPPED, 9, 42)
        );
        assert_eq!(i32::from_bytes(p), Some(0));
        let err = error(&req, &[1, 2, 3, 4], 1, 42, false);
        assert_eq!(err.len(), 16 + 4 + 20);
        let (_, p) = messages(&err)[0];
        assert_eq!(i32::from_bytes(p), Some(-1));
        assert_eq!(&p[20..], &[1, 2, 3, 4]);
    }
}
