//! Resolution: untrusted host strings → normalized hosts → the community that serves them.
//! Everything fails closed: a malformed host is `invalid:`, an unmapped one `restricted:`,
//! and there is no default community.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::Uuid;

use crate::errors::{raise, Error, OrRaise};
use crate::relcache_watch::{self, Table};

const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Normalize `host[:port]`: ASCII lowercase, one trailing dot stripped, labels of `a-z 0-9 -`
/// (punycode for IDNs), at most 253 characters, optional port 1–65535 without leading zeros.
/// The default ports 80 and 443 are dropped, so `a.example:443` and `wss://a.example/` name the
/// same host. Anything else (userinfo, IPv6 literals, whitespace, non-ASCII) is malformed.
pub fn normalize_host(input: &str) -> Result<String, Error> {
    if !input.is_ascii() {
        return Err(Error::HostMalformed);
    }
    let lower = input.to_ascii_lowercase();
    let (name, port) = match lower.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (lower.as_str(), None),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST_LEN {
        return Err(Error::HostMalformed);
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(Error::HostMalformed);
        }
    }
    match port {
        None => Ok(name.to_owned()),
        Some(p) => {
            let valid = !p.is_empty() && p.len() <= 5 && !p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit());
            let n: u32 = if valid { p.parse().unwrap_or(0) } else { 0 };
            match n {
                1..=65535 if n == 80 || n == 443 => Ok(name.to_owned()),
                1..=65535 => Ok(format!("{name}:{n}")),
                _ => Err(Error::HostMalformed),
            }
        }
    }
}

/// The normalized host of a relay URL (`ws://` or `wss://`, as in a NIP-42 `relay` tag).
/// Userinfo is refused; path, query and fragment are ignored.
pub fn relay_url_host(url: &str) -> Result<String, Error> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("wss://")
        .or_else(|| lower.strip_prefix("ws://"))
        .ok_or(Error::HostMalformed)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(Error::HostMalformed);
    }
    normalize_host(authority)
}

// The host map cache (DESIGN §8, §12.8). A per-backend map of committed host → community
// mappings, so `enter` costs a hash lookup instead of an SPI query. Every change to
// buzz.community_hosts fires a statement trigger that queues a relcache invalidation for the
// table, which empties the map everywhere (relcache_watch). Unknown hosts are never cached.
thread_local! {
    static HOSTS: RefCell<HashMap<String, Uuid>> = RefCell::new(HashMap::new());
    /// Generation the map was filled under; a mismatch with the table's empties it.
    static HOSTS_GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// How many times this backend has seen the host map change: caches keyed by community (the
/// delivery keys) start over when it moves, as the host map does.
pub fn invalidations() -> u64 {
    relcache_watch::generation(Table::Hosts)
}

fn cached(host: &str) -> Option<Uuid> {
    relcache_watch::accept_pending();
    let generation = invalidations();
    HOSTS.with(|m| {
        let mut m = m.borrow_mut();
        if HOSTS_GENERATION.with(Cell::get) != generation {
            m.clear();
            HOSTS_GENERATION.with(|g| g.set(generation));
        }
        m.get(host).copied()
    })
}

fn lookup(host: &str) -> Option<Uuid> {
    let before = invalidations();
    let cacheable = relcache_watch::enabled(Table::Hosts);
    // Under a snapshot taken after the invalidations were accepted (relcache_watch::accept_pending).
    let community = crate::pg::with_latest_snapshot(|| mapped_community(host)).or_raise()?;
    // Cache only what is current: never this transaction's own uncommitted changes (a
    // trigger-queued invalidation would bump the counter first), nothing an invalidation raced
    // with, and nothing read under REPEATABLE READ / SERIALIZABLE — that snapshot can predate
    // an invalidation this backend already accepted, and a stale entry would then outlive the
    // transaction (a removed host still entering, a remapped one reaching its old community).
    if cacheable && crate::pg::reads_latest() && invalidations() == before && HOSTS_GENERATION.with(Cell::get) == before {
        HOSTS.with(|m| m.borrow_mut().insert(host.to_owned(), community));
    }
    Some(community)
}

/// The community `host` is mapped to, as the active snapshot sees it.
fn mapped_community(host: &str) -> Result<Option<Uuid>, pgrx::spi::Error> {
    crate::spi_cache::read_one::<Uuid>("SELECT community_id FROM buzz.community_hosts WHERE host = $1", &[host.into()])
}

/// `buzz.invalidate_host_cache` (declared in src/api/operator.rs).
pub(crate) fn invalidate_host_cache() {
    let relid = Spi::get_one::<pg_sys::Oid>("SELECT 'buzz.community_hosts'::regclass::oid")
        .or_raise()
        .unwrap_or_else(|| raise(Error::Internal));
    crate::pg::invalidate_relcache(relid);
}

/// The community serving `host` (normalized), or None for an unmapped or malformed host.
pub fn try_community_for_host(host: &str) -> Option<(Uuid, String)> {
    let host = normalize_host(host).ok()?;
    let community = cached(&host).or_else(|| lookup(&host))?;
    Some((community, host))
}

/// The community serving `host`, with the normalized host; raises `invalid:`/`restricted:`.
pub fn community_for_host(host: Option<&str>) -> (Uuid, String) {
    let host = normalize_host(host.unwrap_or("")).or_raise();
    match cached(&host).or_else(|| lookup(&host)) {
        Some(c) => (c, host),
        None => raise(Error::HostUnknown),
    }
}

/// `buzz.normalize_host` (declared in src/api/helpers.rs).
pub(crate) fn normalize_host_sql(host: &str) -> String {
    normalize_host(host).or_raise()
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    #[pg_test]
    fn normalization_cases() {
        let ok = [
            ("Relay.Example.COM", "relay.example.com"),
            ("relay.example.com.", "relay.example.com"),
            ("relay.example.com:8080", "relay.example.com:8080"),
            ("relay.example.com.:8080", "relay.example.com:8080"),
            ("relay.example.com:443", "relay.example.com"),
            ("relay.example.com:80", "relay.example.com"),
            ("localhost", "localhost"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("127.0.0.1:7777", "127.0.0.1:7777"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_host(input).as_deref(), Ok(want), "{input}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        let bad = [
            "", ".", "a..b", "-a.example", "a-.example", "a_b.example", "user@a.example",
            "a.example:", "a.example:0", "a.example:65536", "a.example:08080", "a.example:80a",
            "[::1]", "a example", "bücher.example", "a.example..", " a.example", "a.example/",
            &long_label, &long_name,
        ];
        for input in bad {
            assert_eq!(normalize_host(input), Err(Error::HostMalformed), "{input:?}");
        }
    }

    #[pg_test]
    fn relay_urls() {
        assert_eq!(relay_url_host("wss://A.example/").as_deref(), Ok("a.example"));
        assert_eq!(relay_url_host("wss://a.example:443/path?q#f").as_deref(), Ok("a.example"));
        assert_eq!(relay_url_host("ws://a.example:7000").as_deref(), Ok("a.example:7000"));
        assert_eq!(relay_url_host("wss://u:p@a.example/"), Err(Error::HostMalformed));
        assert_eq!(relay_url_host("https://a.example/"), Err(Error::HostMalformed));
        assert_eq!(relay_url_host("a.example"), Err(Error::HostMalformed));
    }
}
