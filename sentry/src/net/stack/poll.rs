//! The stack thread: blocks in poll(2) on the packet sockets, the kick eventfd and the
//! next smoltcp timer; reads frames until EAGAIN, runs the interfaces, wakes sockets.

use std::sync::Arc;

use smoltcp::iface::PollIngressSingleResult;

use super::common::Shared;
use super::iface::Dev;
use crate::net::NetError;

/// Frames processed per link before the other links get a turn.
const BATCH: usize = 256;

pub(crate) fn spawn(sh: &Arc<Shared>) -> Result<(), NetError> {
    let sh = sh.clone();
    std::thread::Builder::new()
        .name("netstack".into())
        .spawn(move || run(&sh))?;
    Ok(())
}

fn run(sh: &Shared) {
    let fds: Vec<i32> = {
        let st = sh.lock_thread();
        st.links
            .links
            .iter()
            .filter_map(|l| match &l.dev {
                Dev::Packet(d) => Some(d.raw_fd()),
                Dev::Loop(_) => None,
            })
            .collect()
    };
    let mut pfds: Vec<libc::pollfd> = std::iter::once(sh.kick_fd())
        .chain(fds.iter().copied())
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        if sh.stopped() {
            return;
        }
        let timeout_ms = {
            let mut st = sh.lock_thread();
            let now = st.now();
            let mut next = None;
            for l in st.links.links.iter_mut() {
                if let Some(t) = l.iface.poll_at(now, &l.set) {
                    next = Some(next.map_or(t, |n: smoltcp::time::Instant| n.min(t)));
                }
            }
            st.armed = next;
            match next {
                None => -1,
                Some(t) if t <= now => 0,
                Some(t) => ((t - now).total_micros().div_ceil(1000)).min(60_000) as i32,
            }
        };
        for p in pfds.iter_mut() {
            p.revents = 0;
        }
        // SAFETY: `pfds` is a live array of `len` pollfd structures the kernel may write.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            tracing::error!(
                "network: stack thread poll failed: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
        if pfds[0].revents != 0 {
            sh.unkick();
        }
        if sh.stopped() {
            return;
        }
        let mut st = sh.lock_thread();
        // A listener short of budget gets another try before SYNs are dropped for it.
        st.refill_starved();
        let now = st.now();
        for i in 0..st.links.links.len() {
            if matches!(st.links.links[i].dev, Dev::Loop(_)) {
                // Loopback timers (retransmissions, TIME_WAIT, keep-alives).
                st.poll(i);
                continue;
            }
            let mut more = true;
            let mut rounds = 0;
            while more && rounds < 64 {
                rounds += 1;
                more = false;
                let mut changed = false;
                {
                    let l = &mut st.links.links[i];
                    let Dev::Packet(dev) = &mut l.dev else { break };
                    for _ in 0..BATCH {
                        match l.iface.poll_ingress_single(now, dev, &mut l.set) {
                            PollIngressSingleResult::None => break,
                            PollIngressSingleResult::PacketProcessed => more = true,
                            PollIngressSingleResult::SocketStateChanged => {
                                more = true;
                                changed = true;
                                // Listener pools refill between packets of a SYN burst.
                                break;
                            }
                        }
                    }
                }
                if changed {
                    st.refill_listeners();
                }
            }
            st.poll(i);
        }
        st.touched = 0;
    }
}
