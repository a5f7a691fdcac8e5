//! The public port's TCP listener: each accepted socket takes its address's slot (`limits`)
//! before anything is read from it, and keeps it until the socket itself is dropped, whatever
//! is still using it (an HTTP request, a WebSocket, a writer finishing). A socket that has not
//! become a WebSocket within the handshake time is closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

use crate::limits::{PerIp, Share, Slot};
use crate::metrics::Metrics;

/// What a request learns of its connection: the switch that lifts the handshake deadline
/// once the connection is a WebSocket, and what its address's connections share.
#[derive(Clone, Debug)]
pub struct Peer {
    upgraded: Arc<AtomicBool>,
    pub share: Share,
}

impl Peer {
    pub fn upgraded(&self) {
        self.upgraded.store(true, Relaxed);
    }
}

impl Connected<IncomingStream<'_, Gate>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Gate>) -> Peer {
        stream.remote_addr().clone()
    }
}

pub struct Gate {
    pub tcp: TcpListener,
    pub per_ip: Arc<PerIp>,
    pub metrics: Arc<Metrics>,
    pub handshake: Duration,
    /// SO_SNDBUF of each socket (0: the kernel's autotuning, up to megabytes per socket).
    pub send_buffer: usize,
}

/// Sent to a refused socket, best effort, before it is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

impl Listener for Gate {
    type Io = Guarded;
    type Addr = Peer;

    async fn accept(&mut self) -> (Guarded, Peer) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close.
                    if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    continue;
                }
            };
            let slot = match PerIp::admit(&self.per_ip, addr.ip(), Instant::now()) {
                Ok(slot) => slot,
                Err(why) => {
                    self.metrics.refused.fetch_add(1, Relaxed);
                    tracing::debug!(ip = %addr.ip(), ?why, "connection refused");
                    let _ = tcp.try_write(TOO_MANY);
                    continue;
                }
            };
            if self.send_buffer > 0 {
                // What a client that stops reading leaves in the kernel is bounded too; past it,
                // the relay's own queue (and its send timeout) takes over.
                let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(self.send_buffer);
            }
            let _ = tcp.set_nodelay(true);
            let peer = Peer { upgraded: Arc::default(), share: slot.share.clone() };
            self.metrics.sockets.fetch_add(1, Relaxed);
            let io = Guarded {
                tcp,
                _slot: slot,
                upgraded: peer.upgraded.clone(),
                deadline: Box::pin(tokio::time::sleep(self.handshake)),
                metrics: self.metrics.clone(),
            };
            return (io, peer);
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        self.tcp.local_addr()?;
        Ok(Peer { upgraded: Arc::default(), share: Share::unlimited() })
    }
}

/// An accepted socket with its address's slot.
pub struct Guarded {
    tcp: TcpStream,
    _slot: Slot,
    upgraded: Arc<AtomicBool>,
    deadline: Pin<Box<Sleep>>,
    metrics: Arc<Metrics>,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.metrics.sockets.fetch_sub(1, Relaxed);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // A request still unfinished at the deadline (slowloris), or a kept-alive HTTP
        // connection past it, is closed.
        if !self.upgraded.load(Relaxed) && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
