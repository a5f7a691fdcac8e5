//! The canonical event log: `buzz.publish` stores verified, authorized events of the entered
//! community; `buzz.req` / `buzz.count` serve them back through the same fences.

pub mod kinds;
pub mod publish;
pub mod query;

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
