//! Receive queues: a stream's segments and a datagram socket's messages, each carrying the
//! sender's credentials and any files passed with SCM_RIGHTS.
//!
//! Stream writes that carry no files and come from the same sender merge into one segment
//! (invisible to readers); a segment with files stays separate, and a read stops after it
//! (Linux's rule: data that carries files ends a read).
//!
//! Every queued segment and message holds a [`Charge`] on the sandbox's socket buffer
//! budget: its bytes plus a fixed overhead. A stream read returns the bytes it takes;
//! dropping a segment or message (read, or its queue dropped with its socket) returns the
//! rest.

use std::collections::VecDeque;
use std::sync::Arc;

use super::names::Addr;
use super::PeerCred;
use crate::kernel::membudget::Charge;
use crate::vfs::FileDescription;

/// Files in flight with one message.
pub type Files = Vec<Arc<FileDescription>>;

/// Ancillary data of a send.
#[derive(Clone, Default)]
pub struct Ancillary {
    pub files: Files,
    /// The sender's (or explicitly sent) credentials.
    pub cred: PeerCred,
}

/// A stream segment.
pub struct Seg {
    pub data: Vec<u8>,
    /// Bytes already read.
    pub off: usize,
    pub files: Files,
    pub cred: PeerCred,
    /// The unread bytes and the segment's overhead, charged to the budget.
    pub charge: Charge,
}

impl Seg {
    pub fn left(&self) -> usize {
        self.data.len() - self.off
    }
}

/// A datagram or seqpacket record.
pub struct Msg {
    pub data: Vec<u8>,
    pub files: Files,
    pub cred: PeerCred,
    /// The sender's bound name (recvfrom).
    pub from: Option<Addr>,
    /// Charged to the peer end of the same connection (a pair or an accepted connection);
    /// datagrams from other sockets are bounded by the queue length instead.
    pub charged: bool,
    /// The message's bytes and overhead, charged to the sandbox's budget.
    pub budget: Charge,
}

/// One end's receive queue.
pub enum RxQueue {
    Stream(VecDeque<Seg>),
    Msgs(VecDeque<Msg>),
}

impl RxQueue {
    pub fn is_empty(&self) -> bool {
        match self {
            RxQueue::Stream(q) => q.is_empty(),
            RxQueue::Msgs(m) => m.is_empty(),
        }
    }

    /// FIONREAD: queued bytes (streams) or the next message's length.
    pub fn len_bytes(&self) -> usize {
        match self {
            RxQueue::Stream(q) => q.iter().map(Seg::left).sum(),
            RxQueue::Msgs(m) => m.front().map_or(0, |v| v.data.len()),
        }
    }

    /// Whether stream bytes sent with `anc` would join the last segment (neither carries
    /// files and the sender is the same), so they need no new segment's overhead.
    pub fn would_merge(&self, anc: &Ancillary) -> bool {
        match self {
            RxQueue::Stream(q) => {
                anc.files.is_empty()
                    && q.back()
                        .is_some_and(|last| last.files.is_empty() && last.cred == anc.cred)
            }
            RxQueue::Msgs(_) => false,
        }
    }

    /// Appends stream bytes with their `charge`, merging with the last segment when
    /// [`would_merge`](Self::would_merge).
    pub fn push_stream(&mut self, data: &[u8], anc: Ancillary, charge: Charge) {
        let merge = self.would_merge(&anc);
        if let RxQueue::Stream(q) = self {
            if merge {
                if let Some(last) = q.back_mut() {
                    last.data.extend_from_slice(data);
                    last.charge.absorb(charge);
                    return;
                }
            }
            q.push_back(Seg {
                data: data.to_vec(),
                off: 0,
                files: anc.files,
                cred: anc.cred,
                charge,
            });
        }
    }

    /// How many files wait in this queue.
    pub fn files_queued(&self) -> usize {
        match self {
            RxQueue::Stream(q) => q.iter().map(|s| s.files.len()).sum(),
            RxQueue::Msgs(m) => m.iter().map(|s| s.files.len()).sum(),
        }
    }

    /// Reads stream data into `buf` from `*done` on: (bytes taken, files, credentials of
    /// the first segment read). With `passcred`, stops at a segment from another sender;
    /// always stops after a segment that carried files. `peek` leaves the queue as is
    /// (and clones the files, as Linux duplicates them on MSG_PEEK).
    pub fn read_stream(
        &mut self,
        buf: &mut [u8],
        done: &mut usize,
        peek: bool,
        passcred: bool,
        first: &mut Option<PeerCred>,
    ) -> (usize, Files) {
        let RxQueue::Stream(q) = self else {
            return (0, Vec::new());
        };
        let mut taken = 0usize;
        let mut files = Vec::new();
        let mut i = 0;
        while *done < buf.len() {
            let Some(seg) = q.get_mut(i) else { break };
            match first {
                Some(c) if passcred && *c != seg.cred => break,
                Some(_) => {}
                None => *first = Some(seg.cred),
            }
            let k = seg.left().min(buf.len() - *done);
            buf[*done..*done + k].copy_from_slice(&seg.data[seg.off..seg.off + k]);
            *done += k;
            let had_files = !seg.files.is_empty();
            if had_files {
                files = if peek {
                    seg.files.clone()
                } else {
                    std::mem::take(&mut seg.files)
                };
            }
            if peek {
                i += 1;
            } else {
                seg.off += k;
                seg.charge.release(k);
                taken += k;
                if seg.left() == 0 {
                    q.pop_front();
                }
            }
            if had_files || (peek && k == 0) {
                break;
            }
        }
        (taken, files)
    }
}
