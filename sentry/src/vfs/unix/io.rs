//! Sending and receiving on AF_UNIX sockets: stream segments, datagram and seqpacket
//! records, with their credentials and passed files.

use std::sync::Arc;
use std::time::Duration;

use rvisor_syscalls::Errno;

use super::queue::{Ancillary, Files, Msg, RxQueue};
use super::{
    deadline, timed, two, Connection, Received, SockType, UnixSocket, DGRAM_QLEN, MAX_QUEUED_FILES,
    MSG_OVERHEAD, RCV_SHUTDOWN, SEG_OVERHEAD, SEND_SHUTDOWN,
};
use crate::kernel::wait::block_on;

impl UnixSocket {
    // -----------------------------------------------------------------------------------
    // Sending

    /// Sends `buf` to the peer (or, for datagrams, to `to` when given). Streams take as
    /// much as fits, blocking for room unless `nonblock`; messages go whole or not at all.
    /// EPIPE when the connection cannot carry data any more (the caller raises SIGPIPE
    /// where Linux does), EAGAIN when nothing fits and `nonblock` (or the SO_SNDTIMEO
    /// passed), ERESTARTSYS if a signal came first.
    pub fn send(
        &self,
        buf: &[u8],
        nonblock: bool,
        anc: Ancillary,
        to: Option<&Arc<UnixSocket>>,
    ) -> Result<usize, Errno> {
        match self.conn.ty {
            SockType::Stream => self.send_stream(buf, nonblock, anc),
            _ => self.send_msg(buf, nonblock, anc, to),
        }
    }

    fn send_stream(&self, buf: &[u8], nonblock: bool, anc: Ancillary) -> Result<usize, Errno> {
        let (me, peer) = (self.side, 1 - self.side);
        let timeout = {
            let st = self.conn.lock();
            let e = &st.ends[me];
            if !e.connected {
                return Err(if e.shutdown & SEND_SHUTDOWN != 0 {
                    Errno::EPIPE
                } else {
                    Errno::ENOTCONN
                });
            }
            if e.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if !anc.files.is_empty()
                && st.ends[peer].rx.files_queued() + anc.files.len() > MAX_QUEUED_FILES
            {
                return Err(Errno::ETOOMANYREFS);
            }
            e.sndtimeo
        };
        let mut done = 0usize;
        let mut anc = Some(anc);
        let nonblock = nonblock || timeout == Some(Duration::ZERO);
        let mut attempt = |done: &mut usize| -> Option<Result<usize, Errno>> {
            let mut st = self.conn.lock();
            let fail = |e: Errno, done: usize| Some(if done > 0 { Ok(done) } else { Err(e) });
            if let Some(e) = st.ends[me].err.take() {
                return fail(e, *done);
            }
            if st.ends[me].shutdown & SEND_SHUTDOWN != 0
                || !st.ends[peer].open
                || st.ends[peer].shutdown & RCV_SHUTDOWN != 0
            {
                return fail(Errno::EPIPE, *done);
            }
            let sndbuf = st.ends[me].sndbuf;
            let used = st.ends[me].in_flight;
            // The first piece carries the files; later ones only the credentials.
            let a = anc.take().unwrap_or(Ancillary {
                files: Vec::new(),
                cred: self.cred,
            });
            let overhead = if st.ends[peer].rx.would_merge(&a) {
                0
            } else {
                SEG_OVERHEAD
            };
            let want = sndbuf.saturating_sub(used).min(buf.len() - *done);
            // The sandbox's budget may take less than the socket's room; none is as full.
            match (want > 0)
                .then(|| self.conn.charge(overhead + 1, overhead + want))
                .flatten()
            {
                Some(charge) => {
                    let k = charge.bytes() - overhead;
                    let cred = a.cred;
                    st.ends[peer]
                        .rx
                        .push_stream(&buf[*done..*done + k], a, charge);
                    st.ends[me].in_flight += k;
                    *done += k;
                    drop(st);
                    anc = Some(Ancillary {
                        files: Vec::new(),
                        cred,
                    });
                    self.conn.queue.notify_all();
                }
                None => {
                    anc = Some(a);
                    drop(st);
                }
            }
            match () {
                _ if *done == buf.len() => Some(Ok(*done)),
                _ if nonblock => fail(Errno::EAGAIN, *done),
                _ => None,
            }
        };
        if let Some(r) = attempt(&mut done) {
            return r;
        }
        let r = block_on(&[&*self.conn.queue], deadline(timeout), || {
            attempt(&mut done)
        });
        match r {
            Err(Errno::ERESTARTSYS | Errno::ETIMEDOUT) if done > 0 => Ok(done),
            r => timed(r),
        }
    }

    /// Where a message goes: (connection, side).
    fn msg_target(&self, to: Option<&Arc<UnixSocket>>) -> Result<(Arc<Connection>, usize), Errno> {
        if let Some(t) = to {
            return Ok((t.conn.clone(), t.side));
        }
        let mut st = self.conn.lock();
        let e = &mut st.ends[self.side];
        if e.connected {
            return Ok((self.conn.clone(), 1 - self.side));
        }
        match &e.dgram_peer {
            None => Err(Errno::ENOTCONN),
            Some((w, side)) => match w.upgrade() {
                Some(c) if c.lock().ends[*side].open => Ok((c, *side)),
                _ => {
                    e.dgram_peer = None;
                    Err(Errno::ECONNREFUSED)
                }
            },
        }
    }

    fn send_msg(
        &self,
        buf: &[u8],
        nonblock: bool,
        anc: Ancillary,
        to: Option<&Arc<UnixSocket>>,
    ) -> Result<usize, Errno> {
        let me = self.side;
        let ty = self.conn.ty;
        let (timeout, from) = {
            let st = self.conn.lock();
            let e = &st.ends[me];
            if ty == SockType::SeqPacket && !e.connected {
                return Err(if e.shutdown & SEND_SHUTDOWN != 0 {
                    Errno::EPIPE
                } else {
                    Errno::ENOTCONN
                });
            }
            if buf.len() > e.sndbuf.saturating_sub(32) {
                return Err(Errno::EMSGSIZE);
            }
            (e.sndtimeo, e.addr.clone())
        };
        let (target, tside) = self.msg_target(to)?;
        let same = Arc::ptr_eq(&target, &self.conn);
        let nonblock = nonblock || timeout == Some(Duration::ZERO);
        let mut anc = Some(anc);
        let mut attempt = || -> Option<Result<usize, Errno>> {
            let mut st = self.conn.lock();
            if let Some(e) = st.ends[me].err.take() {
                return Some(Err(e));
            }
            if st.ends[me].shutdown & SEND_SHUTDOWN != 0 {
                return Some(Err(Errno::EPIPE));
            }
            if same && tside != me {
                if !st.ends[me].connected {
                    return Some(Err(Errno::ENOTCONN));
                }
                if !st.ends[tside].open {
                    if ty == SockType::SeqPacket {
                        return Some(Err(Errno::EPIPE));
                    }
                    st.ends[me].connected = false;
                    return Some(Err(Errno::ECONNREFUSED));
                }
                if st.ends[me].in_flight >= st.ends[me].sndbuf {
                    return if nonblock {
                        Some(Err(Errno::EAGAIN))
                    } else {
                        None
                    };
                }
            }
            if !same {
                drop(st);
                st = target.lock();
            }
            let t = &mut st.ends[tside];
            if !t.open {
                return Some(Err(Errno::ECONNREFUSED));
            }
            if t.shutdown & RCV_SHUTDOWN != 0 {
                return Some(Err(if ty == SockType::SeqPacket {
                    Errno::EPIPE
                } else {
                    Errno::ECONNREFUSED
                }));
            }
            let files = anc.as_ref().map_or(0, |a| a.files.len());
            if files > 0 && t.rx.files_queued() + files > MAX_QUEUED_FILES {
                return Some(Err(Errno::ETOOMANYREFS));
            }
            let charged = same && tside != me;
            if !charged {
                if let RxQueue::Msgs(q) = &t.rx {
                    if q.len() > DGRAM_QLEN {
                        return if nonblock {
                            Some(Err(Errno::EAGAIN))
                        } else {
                            None
                        };
                    }
                }
            }
            // A message the sandbox's budget cannot take now waits as for a full buffer.
            let Some(budget) = self
                .conn
                .charge(buf.len() + MSG_OVERHEAD, buf.len() + MSG_OVERHEAD)
            else {
                return if nonblock {
                    Some(Err(Errno::EAGAIN))
                } else {
                    None
                };
            };
            let a = anc.take().unwrap_or_default();
            if let RxQueue::Msgs(q) = &mut t.rx {
                q.push_back(Msg {
                    data: buf.to_vec(),
                    files: a.files,
                    cred: a.cred,
                    from: from.clone(),
                    charged,
                    budget,
                });
            }
            if charged {
                st.ends[me].in_flight += buf.len() + MSG_OVERHEAD;
            }
            drop(st);
            target.queue.notify_all();
            Some(Ok(buf.len()))
        };
        if let Some(r) = attempt() {
            return r;
        }
        timed(block_on(
            &[&*self.conn.queue, &*target.queue],
            deadline(timeout),
            attempt,
        ))
    }

    // -----------------------------------------------------------------------------------
    // Receiving

    /// Receives into `buf`. Streams return what is queued (with `waitall`, wait until
    /// `buf` is full, end of file or a signal; a read ends after data that carried files);
    /// datagram sockets return one message, truncated to `buf` (the rest is dropped unless
    /// `peek`). 0 at end of file; EAGAIN if nothing is queued and `nonblock`; ERESTARTSYS
    /// if a signal came before any data.
    pub fn recv(
        &self,
        buf: &mut [u8],
        nonblock: bool,
        peek: bool,
        waitall: bool,
    ) -> Result<Received, Errno> {
        let me = self.side;
        let ty = self.conn.ty;
        let (timeout, passcred) = {
            let st = self.conn.lock();
            let e = &st.ends[me];
            match ty {
                SockType::Stream if !e.connected => return Err(Errno::EINVAL),
                SockType::SeqPacket if !e.connected => return Err(Errno::ENOTCONN),
                _ => {}
            }
            (e.rcvtimeo, e.passcred)
        };
        if ty == SockType::Stream && buf.is_empty() {
            return Ok(Received::default());
        }
        let nonblock = nonblock || timeout == Some(Duration::ZERO);
        let waitall = waitall && ty == SockType::Stream;
        let mut done = 0usize;
        let mut first_cred = None;
        let mut got_files: Files = Vec::new();
        let mut attempt = |done: &mut usize| -> Option<Result<Received, Errno>> {
            let mut st = self.conn.lock();
            let (e, p) = two(&mut st.ends, me);
            let shut = e.shutdown & RCV_SHUTDOWN != 0;
            let mut uncharge: Option<usize> = None;
            let r = match &mut e.rx {
                RxQueue::Msgs(q) => {
                    // Datagram receives check the pending error before the queue.
                    if let (Some(err), SockType::Dgram) = (e.err, ty) {
                        e.err = None;
                        Some(Err(err))
                    } else if let Some(msg) = q.front() {
                        let full = msg.data.len();
                        let k = full.min(buf.len());
                        buf[..k].copy_from_slice(&msg.data[..k]);
                        let mut r = Received {
                            copied: k,
                            full,
                            files: Vec::new(),
                            cred: Some(msg.cred),
                            from: msg.from.clone(),
                        };
                        if peek {
                            r.files = msg.files.clone();
                        } else if let Some(m) = q.pop_front() {
                            r.files = m.files;
                            if m.charged {
                                uncharge = Some(full + MSG_OVERHEAD);
                            }
                        }
                        Some(Ok(r))
                    } else if shut {
                        Some(Ok(Received::default()))
                    } else if nonblock {
                        Some(Err(Errno::EAGAIN))
                    } else {
                        None
                    }
                }
                rx @ RxQueue::Stream(_) => {
                    let start = *done;
                    if peek {
                        first_cred = None;
                    }
                    let (taken, files) = rx.read_stream(buf, done, peek, passcred, &mut first_cred);
                    let n = *done;
                    if peek {
                        // A peek never accumulates across wake-ups.
                        *done = start;
                    }
                    if taken > 0 {
                        uncharge = Some(taken);
                    }
                    // Stopped early: after data carrying files, or (SO_PASSCRED) before
                    // data from another sender.
                    let stopped =
                        !files.is_empty() || (passcred && !peek && !rx.is_empty() && n < buf.len());
                    got_files.extend(files);
                    let mk = |n: usize, files: &mut Files| Received {
                        copied: n,
                        full: n,
                        files: std::mem::take(files),
                        cred: first_cred,
                        from: None,
                    };
                    if n > 0 && (!waitall || n == buf.len() || stopped || peek) {
                        Some(Ok(mk(n, &mut got_files)))
                    } else if let Some(err) = e.err.take() {
                        Some(if n > 0 {
                            Ok(mk(n, &mut got_files))
                        } else {
                            Err(err)
                        })
                    } else if shut {
                        Some(Ok(mk(n, &mut got_files)))
                    } else if nonblock {
                        Some(if n > 0 {
                            Ok(mk(n, &mut got_files))
                        } else {
                            Err(Errno::EAGAIN)
                        })
                    } else {
                        None
                    }
                }
            };
            if let Some(k) = uncharge {
                p.in_flight = p.in_flight.saturating_sub(k);
            }
            drop(st);
            if uncharge.is_some() {
                self.conn.queue.notify_all();
            }
            r
        };
        if let Some(r) = attempt(&mut done) {
            return r;
        }
        let r = block_on(&[&*self.conn.queue], deadline(timeout), || {
            attempt(&mut done)
        });
        match r {
            Err(Errno::ERESTARTSYS | Errno::ETIMEDOUT) if done > 0 => Ok(Received {
                copied: done,
                full: done,
                files: got_files,
                cred: first_cred,
                from: None,
            }),
            Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
            r => r,
        }
    }
}
