//! A bare WebSocket client, for what a client library will not send: an oversized frame, a
//! request before any AUTH, a Host header of our choosing.

use futures_util::{SinkExt, StreamExt};
use nostr_sdk::prelude::{EventBuilder, JsonUtil, Keys, RelayUrl};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{e, WAIT};

pub struct Raw {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Raw {
    pub async fn connect(url: &str) -> Result<Raw, String> {
        let req = url.into_client_request().map_err(e)?;
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(e)?;
        Ok(Raw { ws })
    }

    /// `url`'s connection, logged in as `keys` with the challenge it was sent at connect.
    pub async fn login(url: &str, keys: &Keys) -> Result<Raw, String> {
        let mut raw = Raw::connect(url).await?;
        let chal = raw.challenge().await?;
        match raw.sign_in(url, &chal, keys).await?[2] == true {
            true => Ok(raw),
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
