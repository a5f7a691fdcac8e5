//! A bare WebSocket client, for what a client library will not send: an oversized frame, a
//! request before any AUTH, a Host header of our choosing.

use futures_util::{SinkExt, StreamExt};
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
