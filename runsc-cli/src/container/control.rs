//! Talking to a running sandbox over its control socket.

use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use rvisor_sentry::control::protocol::{decode_response, encode, recv_message, send_message, Request, Response};

/// One control connection.
pub struct Conn {
    pub sock: UnixStream,
}

impl Conn {
    pub fn connect(path: &Path) -> anyhow::Result<Conn> {
        let sock = rvisor_sentry::control::protocol::with_socket_path(path, |p| UnixStream::connect(p)).map_err(|e| anyhow!("the sandbox does not answer ({}): {e}", path.display()))?;
        Ok(Conn { sock })
    }

    /// Sends a request and returns the response; an `Error` response is an error.
    pub fn call(&mut self, req: &Request, fds: &[BorrowedFd<'_>]) -> anyhow::Result<Response> {
        self.send(req, fds)?;
        self.receive()
    }

    /// Sends a request without waiting for its answer (see [`Self::receive`]).
    pub fn send(&mut self, req: &Request, fds: &[BorrowedFd<'_>]) -> anyhow::Result<()> {
        send_message(&self.sock, &encode(req)?, fds).context("control request")
    }

    /// The answer to the request sent last; an `Error` response is an error.
    pub fn receive(&mut self) -> anyhow::Result<Response> {
        let (body, _) = recv_message(&self.sock).context("control response")?.context("the sandbox closed the control connection")?;
        match decode_response(&body).context("control response")? {
            Response::Error { errno, message } => bail!("{message} (errno {errno})"),
            r => Ok(r),
        }
    }
}

/// Connects to container `id`'s sandbox and makes one request.
pub fn call(root: &str, id: &str, req: &Request) -> anyhow::Result<Response> {
    Conn::connect(&super::state::control_socket(root, id))?.call(req, &[])
}
