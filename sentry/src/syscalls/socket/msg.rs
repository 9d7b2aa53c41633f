//! sendmsg(2) and recvmsg(2): the message header, and control messages (SCM_RIGHTS,
//! SCM_CREDENTIALS) in both directions.

use rvisor_syscalls::flags::capability::{CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::Errno;

use super::{
    autobind, do_recv, do_send, fd_arg, send_target, sender, sender_name, socket_of, GuestBuf,
    MAX_CONTROL,
};
use crate::kernel::Task;
use crate::syscalls::{Args, SysResult};
use crate::vfs::unix::queue::{Ancillary, Files};
use crate::vfs::unix::{PeerCred, SockType};

/// The fields of a guest `struct msghdr`.
pub(super) struct MsgHdr {
    pub(super) name: u64,
    pub(super) namelen: u32,
    pub(super) iov: u64,
    pub(super) iovlen: u64,
    pub(super) control: u64,
    pub(super) controllen: u64,
}

pub(super) fn read_msghdr(t: &Task, addr: u64) -> Result<MsgHdr, Errno> {
    let mut raw = [0u8; MSGHDR_SIZE];
    t.mm.copy_in(addr, &mut raw)?;
    let u64_at = |o: usize| {
        raw.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    let name = u64_at(0);
    let namelen = u64_at(8) as u32;
    if (namelen as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(MsgHdr {
        name,
        namelen: if name == 0 {
            0
        } else {
            namelen.min(SOCKADDR_STORAGE)
        },
        iov: u64_at(16),
        iovlen: u64_at(24),
        control: u64_at(32),
        controllen: u64_at(40),
    })
}

/// Parses sendmsg's control messages: SCM_RIGHTS (EBADF for a bad fd, EINVAL beyond
/// SCM_MAX_FD) and SCM_CREDENTIALS (EPERM for ids the sender may not claim). Other
/// levels are ignored, other SOL_SOCKET types are EINVAL, as in Linux.
fn parse_control(t: &Task, m: &MsgHdr) -> Result<Ancillary, Errno> {
    let mut anc = Ancillary {
        files: Vec::new(),
        cred: sender(t),
    };
    if m.control == 0 || (m.controllen as usize) < CMSGHDR_SIZE {
        return Ok(anc);
    }
    if m.controllen > MAX_CONTROL {
        return Err(Errno::ENOBUFS);
    }
    let mut raw = vec![0u8; m.controllen as usize];
    t.mm.copy_in(m.control, &mut raw)?;
    let mut off = 0usize;
    while off + CMSGHDR_SIZE <= raw.len() {
        let h = &raw[off..off + CMSGHDR_SIZE];
        let len = u64::from_le_bytes(h[..8].try_into().map_err(|_| Errno::EINVAL)?) as usize;
        let level = i32::from_le_bytes(h[8..12].try_into().map_err(|_| Errno::EINVAL)?);
        let ty = i32::from_le_bytes(h[12..16].try_into().map_err(|_| Errno::EINVAL)?);
        if len < CMSGHDR_SIZE || len > raw.len() - off {
            return Err(Errno::EINVAL);
        }
        let data = &raw[off + CMSGHDR_SIZE..off + len];
        if level == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if n == 0 || anc.files.len() + n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for c in data.chunks_exact(4) {
                        let fd = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        anc.files.push(t.file(fd)?);
                    }
                }
                SCM_CREDENTIALS => {
                    if data.len() != UCRED_SIZE {
                        return Err(Errno::EINVAL);
                    }
                    let word = |i: usize| [data[i], data[i + 1], data[i + 2], data[i + 3]];
                    let c = PeerCred {
                        pid: i32::from_le_bytes(word(0)),
                        uid: u32::from_le_bytes(word(4)),
                        gid: u32::from_le_bytes(word(8)),
                    };
                    check_creds(t, &c)?;
                    anc.cred = c;
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += cmsg_align(len).min(raw.len() - off);
    }
    Ok(anc)
}

/// Linux's `scm_check_creds`: a sender may claim only its own pid and ids unless
/// privileged.
fn check_creds(t: &Task, c: &PeerCred) -> Result<(), Errno> {
    let cr = &t.creds;
    let pid_ok = c.pid == t.tgid() || cr.capable(CAP_SYS_ADMIN);
    let uid_ok = [cr.uid, cr.euid, cr.suid].contains(&c.uid) || cr.capable(CAP_SETUID);
    let gid_ok = [cr.gid, cr.egid, cr.sgid].contains(&c.gid) || cr.capable(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// sendmsg(2) with SCM_RIGHTS and SCM_CREDENTIALS.
pub fn sendmsg(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = super::net::net_file(t, a[0])? {
        return super::net::sendmsg_at(t, &f, a[1], a[2] as u32);
    }
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let m = read_msghdr(t, a[1])?;
    if m.controllen > i32::MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    let buf = GuestBuf::iovecs(t, m.iov, m.iovlen)?;
    let anc = parse_control(t, &m)?;
    let to = send_target(t, &s, m.name, m.namelen)?;
    if s.passcred() && s.sock_type() == SockType::Dgram {
        autobind(&s)?;
    }
    do_send(t, &f, &s, &buf, a[2] as u32, anc, to.as_ref())
}

/// Writes control messages into the guest's buffer as Linux's `put_cmsg` and
/// `scm_detach_fds` do: what does not fit sets MSG_CTRUNC.
struct ControlOut {
    addr: u64,
    cap: usize,
    used: usize,
    truncated: bool,
}

impl ControlOut {
    fn left(&self) -> usize {
        self.cap - self.used
    }

    fn put(&mut self, t: &Task, ty: i32, data: &[u8]) -> Result<(), Errno> {
        if self.addr == 0 || self.left() < CMSGHDR_SIZE {
            self.truncated = true;
            return Ok(());
        }
        let mut len = CMSGHDR_SIZE + data.len();
        if len > self.left() {
            self.truncated = true;
            len = self.left();
        }
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(&(len as u64).to_le_bytes());
        v.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&data[..len - CMSGHDR_SIZE]);
        t.mm.copy_out(self.addr + self.used as u64, &v)?;
        self.used += cmsg_align(len).min(self.left());
        Ok(())
    }

    /// Installs `files` (as many as fit; the rest are closed) and reports their fds.
    fn put_files(&mut self, t: &Task, files: Files, cloexec: bool) -> Result<(), Errno> {
        let room = if self.addr == 0 {
            0
        } else {
            self.left().saturating_sub(CMSGHDR_SIZE) / 4
        };
        let mut fds: Vec<i32> = Vec::new();
        let total = files.len();
        for f in files.into_iter().take(room) {
            match t.install_fd(f, cloexec) {
                Ok(fd) => fds.push(fd),
                Err(_) => break,
            }
        }
        if fds.len() < total {
            self.truncated = true;
        }
        if fds.is_empty() {
            return Ok(());
        }
        let data: Vec<u8> = fds.iter().flat_map(|fd| fd.to_le_bytes()).collect();
        if let Err(e) = self.put(t, SCM_RIGHTS, &data) {
            let mut table = t.fds();
            for fd in fds {
                let _ = table.remove(fd);
            }
            return Err(e);
        }
        Ok(())
    }
}

/// recvmsg(2): the sender's name, SCM_CREDENTIALS with SO_PASSCRED, SCM_RIGHTS, and
/// MSG_TRUNC / MSG_CTRUNC in msg_flags.
pub fn recvmsg(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = super::net::net_file(t, a[0])? {
        return super::net::recvmsg_at(t, &f, a[1], a[2] as u32);
    }
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let flags = a[2] as u32;
    let m = read_msghdr(t, a[1])?;
    let buf = GuestBuf::iovecs(t, m.iov, m.iovlen)?;
    let (r, ret) = do_recv(t, &f, &s, &buf, flags)?;
    let mut out_flags = if r.truncated() { MSG_TRUNC } else { 0 };
    let mut ctl = ControlOut {
        addr: m.control,
        cap: (m.controllen as usize).min(i32::MAX as usize),
        used: 0,
        truncated: false,
    };
    if s.passcred() {
        let c = r.cred.unwrap_or(PeerCred {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        });
        let mut v = Vec::with_capacity(UCRED_SIZE);
        v.extend_from_slice(&c.pid.to_le_bytes());
        v.extend_from_slice(&c.uid.to_le_bytes());
        v.extend_from_slice(&c.gid.to_le_bytes());
        ctl.put(t, SCM_CREDENTIALS, &v)?;
    }
    let from = sender_name(&s, &r);
    if !r.files.is_empty() {
        ctl.put_files(t, r.files, flags & MSG_CMSG_CLOEXEC != 0)?;
    }
    if ctl.truncated {
        out_flags |= MSG_CTRUNC;
    }
    if m.name != 0 {
        let len_addr = a[1] + 8;
        match &from {
            Some(addr) => {
                let bytes = addr.sockaddr();
                let n = (m.namelen as usize).min(bytes.len());
                t.mm.copy_out(m.name, &bytes[..n])?;
                t.write_obj(len_addr, &(bytes.len() as u32))?;
            }
            None => t.write_obj(len_addr, &0u32)?,
        }
    }
    t.write_obj(a[1] + 40, &(ctl.used as u64))?;
    t.write_obj(a[1] + 48, &(out_flags as i32))?;
    Ok(ret)
}
