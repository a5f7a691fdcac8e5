//! Per-address limits taken before a connection costs the database anything.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open WebSocket connections per client address.
#[derive(Default)]
pub struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's place in its address's count, given back on drop.
pub struct Slot {
    ip: IpAddr,
    table: Arc<PerIp>,
}

impl PerIp {
    /// A slot for one more connection from `ip`, unless it already has `max` (0: no limit).
    pub fn take(table: &Arc<PerIp>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = table.open.lock().unwrap();
        let n = open.entry(ip).or_default();
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { ip, table: table.clone() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
