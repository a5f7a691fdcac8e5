//! A bare WebSocket client, for what a client library will not send: an oversized frame, a
//! request before any AUTH, a Host header of our choosing.

use futures_util::{SinkExt, StreamExt};
use nostr_sdk::prelude::{EventBuilder, JsonUtil, Keys, RelayUrl};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{e, WAIT};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::AsyncWriteExt;

/// A TCP connection to `url`'s port on 127.0.0.1 from `from` (the relay listens on IPv4 only).
pub async fn tcp_from(url: &str, from: Ipv4Addr, rcvbuf: Option<u32>) -> Result<tokio::net::TcpStream, String> {
    let port = url.into_client_request().map_err(e)?.uri().port_u16().ok_or("no port")?;
    let sock = tokio::net::TcpSocket::new_v4().map_err(e)?;
    sock.bind(SocketAddr::from((from, 0))).map_err(e)?;
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).map_err(e)?;
    }
    sock.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await.map_err(e)
}

pub struct Raw {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Raw {
    pub async fn connect(url: &str) -> Result<Raw, String> {
        let req = url.into_client_request().map_err(e)?;
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(e)?;
        Ok(Raw { ws })
    }

    /// A connection whose socket takes at most `rcvbuf` bytes before the client reads: what
    /// the relay sends beyond that (and its own socket buffer) waits in the relay.
    pub async fn connect_small_buffer(url: &str, rcvbuf: u32) -> Result<Raw, String> {
        Raw::connect_from(url, Ipv4Addr::LOCALHOST, Some(rcvbuf)).await
    }

    /// A connection from the local address `from` (any of 127.0.0.0/8: the relay's
    /// per-address limits count it apart from the other checks' connections).
    pub async fn connect_from(url: &str, from: Ipv4Addr, rcvbuf: Option<u32>) -> Result<Raw, String> {
        Raw::over(url, tcp_from(url, from, rcvbuf).await?).await
    }

    /// The WebSocket handshake for `url` over an open TCP connection.
    pub async fn over(url: &str, tcp: tokio::net::TcpStream) -> Result<Raw, String> {
        let req = url.into_client_request().map_err(e)?;
        let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await.map_err(e)?;
        Ok(Raw { ws })
    }

    /// Bytes written to the socket as they are, past the WebSocket codec (a broken frame).
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.ws.get_mut().write_all(bytes).await.map_err(e)
    }

    /// `url`'s connection, logged in as `keys` with the challenge it was sent at connect.
    pub async fn login(url: &str, keys: &Keys) -> Result<Raw, String> {
        Raw::connect(url).await?.logged_in(url, keys).await
    }

    /// This connection, logged in as `keys` with the challenge it was sent at connect.
    pub async fn logged_in(mut self, url: &str, keys: &Keys) -> Result<Raw, String> {
        let chal = self.challenge().await?;
        match self.sign_in(url, &chal, keys).await?[2] == true {
            true => Ok(self),
            false => Err("AUTH refused".into()),
        }
    }

    /// The next NIP-42 challenge.
    pub async fn challenge(&mut self) -> Result<String, String> {
        Ok(self.next_of("AUTH").await.ok_or("no challenge")?[1].as_str().unwrap_or_default().to_owned())
    }

    /// Answers `challenge` with a kind-22242 event for `url` signed by `keys`: the `OK`.
    pub async fn sign_in(&mut self, url: &str, challenge: &str, keys: &Keys) -> Result<serde_json::Value, String> {
        let auth = EventBuilder::auth(challenge, RelayUrl::parse(url).map_err(e)?).sign_with_keys(keys).map_err(e)?;
        self.send(format!(r#"["AUTH",{}]"#, auth.as_json())).await?;
        self.next_of("OK").await.ok_or_else(|| "no OK".to_owned())
    }

    pub async fn send(&mut self, text: String) -> Result<(), String> {
        self.ws.send(Message::Text(text.into())).await.map_err(e)
    }

    /// The next text message as JSON; None when the connection closed (or nothing came).
    pub async fn next(&mut self) -> Option<serde_json::Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next message whose first element is `verb`.
    pub async fn next_of(&mut self, verb: &str) -> Option<serde_json::Value> {
        loop {
            let m = self.next().await?;
            if m.get(0).and_then(|v| v.as_str()) == Some(verb) {
                return Some(m);
            }
        }
    }
}
