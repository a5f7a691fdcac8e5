//! Per-address limits, taken when a TCP connection is accepted: before it is read, before it
//! costs the database anything. Each address also has a few turns (`Turns`) that its
//! connections' requests take, from the database call until the answer is queued: one address
//! never holds more than that much of the database pool or of answers in memory, however many
//! connections it opens. Its connections' outbound queues also draw on one budget of bytes
//! (`Room`), so what it leaves unread is bounded per address, not per connection, and their
//! database calls on one budget of database time (`Spend`), so a few addresses with expensive
//! requests cannot keep the whole pool busy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// How many connections an address may open and how fast.
#[derive(Clone, Copy)]
pub struct Policy {
    /// Open connections at once (0: no limit).
    pub max_open: usize,
    /// New connections per second, on average (0: no limit)...
    pub rate: f64,
    /// ...and at once.
    pub burst: f64,
    /// Requests in progress at once (0: no limit).
    pub max_busy: usize,
    /// Bytes queued for the address's connections together (0: no limit).
    pub max_queued: usize,
    /// Seconds of database time per second (0: no limit)...
    pub db_rate: f64,
    /// ...and at once.
    pub db_burst: f64,
    /// NIP-42 logins (AUTH attempts) per second (0: no limit)...
    pub auth_rate: f64,
    /// ...and at once.
    pub auth_burst: f64,
}

/// One address's (see `group`) open connections and connection budget (a token bucket).
struct Entry {
    open: usize,
    tokens: f64,
    at: Instant,
    share: Share,
}

/// What an address's connections share.
#[derive(Clone, Debug)]
pub struct Share {
    pub turns: Turns,
    pub room: Room,
    pub spend: Spend,
    /// The address's AUTH attempts (a bucket of attempts, charged one each).
    pub auths: Spend,
    /// The address's database calls, running and waiting (how `Fair` ranks it).
    load: Arc<Load>,
    fair: Arc<Fair>,
}

/// Why a request got no turn.
#[derive(Debug, PartialEq)]
pub enum Busy {
    /// The address used up its database time: it waits longer than a request may.
    Spent,
    /// The address's other requests kept every turn as long as a request may wait.
    NoTurn,
}

/// A request's turn: given back when dropped; the database time it runs is charged.
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    share: Share,
    wait: Duration,
}

impl Turn {
    /// Runs one database call in one of the pool's connections (`Fair`), charging the address
    /// the time it ran (not the time it waited for the connection: that is other addresses'
    /// doing). `busy`: the answer when no connection came within the wait.
    pub async fn run<T>(&self, call: impl std::future::Future<Output = T>, busy: impl FnOnce() -> T) -> T {
        let (out, took) = self.run_uncharged(call, busy).await;
        self.charge(took);
        out
    }

    /// As [`Turn::run`], charging nothing: the call serves several addresses (a batch of
    /// polls), each charged its share with [`Turn::charge`].
    pub async fn run_uncharged<T>(&self, call: impl std::future::Future<Output = T>, busy: impl FnOnce() -> T) -> (T, Duration) {
        let Some(_slot) = self.share.fair.acquire(&self.share.load, self.wait).await else { return (busy(), Duration::ZERO) };
        let started = Instant::now();
        let out = call.await;
        (out, started.elapsed())
    }

    /// Charges the address `took` of database time.
    pub fn charge(&self, took: Duration) {
        self.share.spend.charge(took, Instant::now());
    }

    /// The address's database calls, running and waiting: how `Fair` ranks its next one.
    pub fn load(&self) -> (usize, usize) {
        (self.share.load.running.load(Relaxed), self.share.load.waiting.load(Relaxed))
    }
}

impl Share {
    pub fn unlimited() -> Share {
        Share { turns: Turns::new(0), room: Room::new(0), spend: Spend::new(0.0, 0.0), auths: Spend::new(0.0, 0.0), load: Arc::default(), fair: Fair::new(0) }
    }

    /// A turn for one request: once the address's database time is paid back, and one of its
    /// turns is free, waiting for both at most `wait`.
    pub async fn turn(&self, wait: Duration) -> Result<Turn, Busy> {
        let owed = self.spend.owed(Instant::now());
        if owed > wait {
            return Err(Busy::Spent);
        }
        // Only when in debt: a timer, even of zero, waits for the timer wheel's next tick
        // (a millisecond), which cost every request about that much.
        if !owed.is_zero() {
            tokio::time::sleep(owed).await;
        }
        let permit = self.turns.take(wait.saturating_sub(owed)).await.ok_or(Busy::NoTurn)?;
        Ok(Turn { _permit: permit, share: self.clone(), wait })
    }
}

/// An address's database time: a bucket of seconds that refills at `rate` per second up to
/// `burst`, and each call empties by the time it took (it may go below zero: a call's cost is
/// known only after it). While it is below zero the address's requests wait.
#[derive(Clone, Debug)]
pub struct Spend(Arc<Mutex<Bucket>>);

#[derive(Debug)]
struct Bucket {
    seconds: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

impl Spend {
    pub fn new(rate: f64, burst: f64) -> Spend {
        Spend(Arc::new(Mutex::new(Bucket { seconds: burst, at: Instant::now(), rate, burst })))
    }

    fn refilled(&self, now: Instant) -> std::sync::MutexGuard<'_, Bucket> {
        let mut b = self.0.lock().unwrap();
        b.seconds = (b.seconds + now.saturating_duration_since(b.at).as_secs_f64() * b.rate).min(b.burst);
        b.at = now;
        b
    }

    /// How long until the bucket is back at zero (nothing: it is not below).
    pub fn owed(&self, now: Instant) -> Duration {
        let b = self.refilled(now);
        if b.rate <= 0.0 || b.seconds >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-b.seconds / b.rate)
    }

    /// Takes one unit (a second's worth) if the bucket is not below zero; false: not now.
    pub fn try_take_one(&self, now: Instant) -> bool {
        if self.owed(now) > Duration::ZERO {
            return false;
        }
        self.charge(Duration::from_secs(1), now);
        true
    }

    pub fn charge(&self, took: Duration, now: Instant) {
        let mut b = self.refilled(now);
        if b.rate > 0.0 {
            b.seconds -= took.as_secs_f64();
        }
    }
}

/// An address's turns: at most `Policy::max_busy` requests of its connections in progress.
#[derive(Clone, Debug)]
pub struct Turns(Arc<Semaphore>);

impl Turns {
    pub fn new(n: usize) -> Turns {
        Turns(Arc::new(Semaphore::new(if n == 0 { Semaphore::MAX_PERMITS } else { n })))
    }

    /// A turn, waiting at most `wait` for one (None: the address's other requests kept every
    /// turn that long). Dropping it gives the turn back.
    pub async fn take(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.0.clone().acquire_owned()).await.ok()?.ok()
    }
}

/// The database pool's connections, handed out fairly. While one is free a call takes it at
/// once; when all are busy, the next one freed goes to the waiting call whose address has the
/// fewest calls running (then the fewest waiting, then the longest waiting), not to the oldest
/// waiter:
/// a few addresses that keep many calls queued cannot keep an address with none running
/// waiting behind them.
#[derive(Debug)]
pub struct Fair {
    state: Mutex<FairState>,
}

#[derive(Debug)]
struct FairState {
    free: usize,
    next: u64,
    waiting: Vec<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    load: Arc<Load>,
    seq: u64,
    handed: oneshot::Sender<()>,
}

/// An address's calls on the pool: running, and waiting for a connection.
#[derive(Debug, Default)]
pub struct Load {
    running: AtomicUsize,
    waiting: AtomicUsize,
}

/// A pool connection's place, held for one call; given back (to the next waiter) when dropped.
pub struct Place {
    fair: Arc<Fair>,
    load: Arc<Load>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.load.running.fetch_sub(1, Relaxed);
        self.fair.release();
    }
}

impl Fair {
    /// `size` places (0: as many as asked for).
    pub fn new(size: usize) -> Arc<Fair> {
        let free = if size == 0 { usize::MAX } else { size };
        Arc::new(Fair { state: Mutex::new(FairState { free, next: 0, waiting: Vec::new() }) })
    }

    /// A place for a call of the address whose calls `load` counts, waiting at most `wait`.
    pub async fn acquire(self: &Arc<Self>, load: &Arc<Load>, wait: Duration) -> Option<Place> {
        let slot = || Place { fair: self.clone(), load: load.clone() };
        let (seq, mut handed) = {
            let mut st = self.state.lock().unwrap();
            if st.free > 0 && st.waiting.is_empty() {
                st.free -= 1;
                load.running.fetch_add(1, Relaxed);
                return Some(slot());
            }
            let (tx, rx) = oneshot::channel();
            st.next += 1;
            let seq = st.next;
            load.waiting.fetch_add(1, Relaxed);
            st.waiting.push(Waiter { load: load.clone(), seq, handed: tx });
            (seq, rx)
        };
        if let Ok(Ok(())) = tokio::time::timeout(wait, &mut handed).await {
            return Some(slot());
        }
        // Timed out. Leave the queue, unless a place was handed over meanwhile (under the
        // lock `release` holds while handing over): then it is ours to give back or use.
        let mut st = self.state.lock().unwrap();
        if let Some(i) = st.waiting.iter().position(|w| w.seq == seq) {
            st.waiting.swap_remove(i);
            load.waiting.fetch_sub(1, Relaxed);
            return None;
        }
        drop(st);
        handed.try_recv().ok().map(|()| slot())
    }

    fn release(&self) {
        let mut st = self.state.lock().unwrap();
        loop {
            // Fewest running, then fewest waiting, then the longest waiting.
            let key = |w: &Waiter| (w.load.running.load(Relaxed), w.load.waiting.load(Relaxed), w.seq);
            let Some(i) = (0..st.waiting.len()).min_by_key(|&i| key(&st.waiting[i])) else {
                st.free = st.free.saturating_add(1);
                return;
            };
            let w = st.waiting.swap_remove(i);
            w.load.waiting.fetch_sub(1, Relaxed);
            w.load.running.fetch_add(1, Relaxed);
            if w.handed.send(()).is_ok() {
                return;
            }
            // Its call gave up waiting (and left): the next one.
            w.load.running.fetch_sub(1, Relaxed);
        }
    }
}

/// An address's budget of queued bytes: a message holds its length's worth while it waits for
/// the client.
#[derive(Clone, Debug)]
pub struct Room {
    bytes: Arc<Semaphore>,
    /// The budget (the most one message may take of it).
    pub size: usize,
}

impl Room {
    pub fn new(n: usize) -> Room {
        let size = if n == 0 { u32::MAX as usize } else { n.min(u32::MAX as usize) };
        Room { bytes: Arc::new(Semaphore::new(size)), size }
    }

    /// `n` bytes of the budget (at most all of it), waiting for them.
    pub async fn take(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        self.bytes.clone().acquire_many_owned(n.min(self.size) as u32).await.ok()
    }

    /// `n` bytes of the budget if they are free now.
    pub fn try_take(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        self.bytes.clone().try_acquire_many_owned(n.min(self.size) as u32).ok()
    }
}

pub struct PerIp {
    policy: Policy,
    table: Mutex<Table>,
    fair: Arc<Fair>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<IpAddr, Entry>,
    /// The size at which entries that hold nothing are swept (grows with what stays).
    sweep_at: usize,
}

/// An open connection's place in its address's count, given back when the socket is dropped.
pub struct Slot {
    group: IpAddr,
    table: Arc<PerIp>,
    /// What the address's connections share.
    pub share: Share,
}

#[derive(Debug, PartialEq)]
pub enum Refused {
    TooMany,
    TooFast,
}

/// The address limits apply to: an IPv4 address (also when written IPv4-mapped), or an IPv6
/// /64 (one subscriber's prefix: one host can pick any address in it).
pub fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

impl PerIp {
    /// `pool`: the database pool's size, shared fairly among the addresses (0: no limit).
    pub fn new(policy: Policy, pool: usize) -> Arc<PerIp> {
        Arc::new(PerIp { policy, table: Mutex::default(), fair: Fair::new(pool) })
    }

    /// A slot for one more connection from `ip`, unless its address has too many open or has
    /// opened too many lately.
    pub fn admit(table: &Arc<PerIp>, ip: IpAddr, now: Instant) -> Result<Slot, Refused> {
        let p = table.policy;
        let group = group(ip);
        let mut t = table.table.lock().unwrap();
        if t.entries.len() >= t.sweep_at {
            // Forget addresses with nothing open and a full budget again.
            t.entries.retain(|_, e| e.open > 0 || (p.rate > 0.0 && e.tokens + now.duration_since(e.at).as_secs_f64() * p.rate < p.burst));
            t.sweep_at = (2 * t.entries.len()).max(4096);
        }
        let e = t.entries.entry(group).or_insert_with(|| Entry {
            open: 0,
            tokens: p.burst,
            at: now,
            share: Share {
                turns: Turns::new(p.max_busy),
                room: Room::new(p.max_queued),
                spend: Spend::new(p.db_rate, p.db_burst),
                auths: Spend::new(p.auth_rate, p.auth_burst),
                load: Arc::default(),
                fair: table.fair.clone(),
            },
        });
        if p.max_open > 0 && e.open >= p.max_open {
            return Err(Refused::TooMany);
        }
        if p.rate > 0.0 {
            e.tokens = (e.tokens + now.duration_since(e.at).as_secs_f64() * p.rate).min(p.burst);
            e.at = now;
            if e.tokens < 1.0 {
                return Err(Refused::TooFast);
            }
            e.tokens -= 1.0;
        }
        e.open += 1;
        Ok(Slot { group, table: table.clone(), share: e.share.clone() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.table.lock().unwrap();
        if let Some(e) = t.entries.get_mut(&self.group) {
            e.open -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn table(max_open: usize, rate: f64, burst: f64) -> Arc<PerIp> {
        PerIp::new(Policy { max_open, rate, burst, max_busy: 2, max_queued: 100, db_rate: 0.5, db_burst: 1.0, auth_rate: 0.0, auth_burst: 0.0 }, 0)
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(group(a), group(b));
        assert_ne!(group(a), group(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(group(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn open_connections_are_capped_and_given_back() {
        let t = table(2, 0.0, 0.0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        let one = PerIp::admit(&t, ip, now).ok().unwrap();
        let _two = PerIp::admit(&t, ip, now).ok().unwrap();
        assert_eq!(PerIp::admit(&t, ip, now).err(), Some(Refused::TooMany));
        assert!(PerIp::admit(&t, "192.0.2.2".parse().unwrap(), now).is_ok());
        drop(one);
        assert!(PerIp::admit(&t, ip, now).is_ok());
    }

    #[test]
    fn new_connections_are_rate_limited() {
        let t = table(0, 10.0, 3.0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            drop(PerIp::admit(&t, ip, now).ok().unwrap());
        }
        // Closing them does not give the budget back: only time does.
        assert_eq!(PerIp::admit(&t, ip, now).err(), Some(Refused::TooFast));
        assert!(PerIp::admit(&t, ip, now + Duration::from_millis(110)).is_ok());
        assert_eq!(PerIp::admit(&t, ip, now + Duration::from_millis(110)).err(), Some(Refused::TooFast));
    }

    #[tokio::test]
    async fn an_address_shares_its_turns() {
        let t = table(0, 0.0, 0.0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        let (a, b) = (PerIp::admit(&t, ip, now).ok().unwrap(), PerIp::admit(&t, ip, now).ok().unwrap());
        let other = PerIp::admit(&t, "192.0.2.2".parse().unwrap(), now).ok().unwrap();
        let wait = Duration::from_millis(20);
        let one = a.share.turns.take(wait).await.unwrap();
        let _two = b.share.turns.take(wait).await.unwrap();
        // Both of the address's turns are taken, by either of its connections.
        assert!(a.share.turns.take(wait).await.is_none());
        assert!(b.share.turns.take(wait).await.is_none());
        assert!(other.share.turns.take(wait).await.is_some());
        drop(one);
        assert!(b.share.turns.take(wait).await.is_some());
    }

    #[test]
    fn an_address_shares_its_room() {
        let t = table(0, 0.0, 0.0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        let (a, b) = (PerIp::admit(&t, ip, now).ok().unwrap(), PerIp::admit(&t, ip, now).ok().unwrap());
        let other = PerIp::admit(&t, "192.0.2.2".parse().unwrap(), now).ok().unwrap();
        let held = a.share.room.try_take(70).unwrap();
        assert!(b.share.room.try_take(31).is_none());
        assert!(other.share.room.try_take(100).is_some());
        // A message larger than the whole budget takes all of it, no more.
        drop(held);
        let all = b.share.room.try_take(1 << 20).unwrap();
        assert!(a.share.room.try_take(1).is_none());
        drop(all);
        assert!(a.share.room.try_take(1).is_some());
    }

    #[test]
    fn database_time_is_paid_back_before_the_next_call() {
        let spend = Spend::new(0.5, 1.0);
        let t0 = Instant::now();
        assert_eq!(spend.owed(t0), Duration::ZERO);
        // A 3-second call leaves the address 2 seconds in debt: 4 seconds at 0.5 s/s.
        spend.charge(Duration::from_secs(3), t0);
        let owed = spend.owed(t0);
        assert!(owed > Duration::from_millis(3_990) && owed <= Duration::from_secs(4), "{owed:?}");
        assert!(spend.owed(t0 + Duration::from_secs(4)) < Duration::from_millis(10));
        // Idle time refills it to the burst, no further.
        assert_eq!(spend.owed(t0 + Duration::from_secs(100)), Duration::ZERO);
        spend.charge(Duration::from_millis(1_500), t0 + Duration::from_secs(100));
        assert!(spend.owed(t0 + Duration::from_secs(100)) > Duration::from_millis(900));
        // No rate: no limit.
        let free = Spend::new(0.0, 0.0);
        free.charge(Duration::from_secs(60), t0);
        assert_eq!(free.owed(t0), Duration::ZERO);
    }

    #[tokio::test]
    async fn an_address_in_debt_waits_or_is_refused() {
        let share = Share { turns: Turns::new(2), room: Room::new(0), spend: Spend::new(10.0, 0.0), auths: Spend::new(0.0, 0.0), load: Arc::default(), fair: Fair::new(0) };
        let wait = Duration::from_millis(200);
        let turn = share.turn(wait).await.unwrap();
        turn.run(tokio::time::sleep(Duration::from_millis(50)), || ()).await;
        drop(turn);
        // 50 ms of debt at 10 s/s: paid back in 5 ms, within the wait.
        assert!(share.turn(wait).await.is_ok());
        share.spend.charge(Duration::from_secs(5), Instant::now());
        assert_eq!(share.turn(wait).await.err(), Some(Busy::Spent));
    }

    #[tokio::test]
    async fn a_freed_connection_goes_to_the_address_with_the_fewest_calls() {
        let fair = Fair::new(1);
        let (busy, idle) = (Arc::new(Load::default()), Arc::new(Load::default()));
        let wait = Duration::from_secs(5);
        let held = fair.acquire(&busy, wait).await.unwrap();
        // The busy address queues three more calls, then the idle one queues its first.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (who, load) in [("busy", &busy), ("busy", &busy), ("busy", &busy), ("idle", &idle)] {
            let (fair, load, order) = (fair.clone(), load.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let place = fair.acquire(&load, wait).await.unwrap();
                order.lock().unwrap().push(who);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(place);
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order, ["idle", "busy", "busy", "busy"]);
        let counts = |l: &Load| (l.running.load(Relaxed), l.waiting.load(Relaxed));
        assert_eq!((counts(&busy), counts(&idle)), ((0, 0), (0, 0)));
    }

    #[tokio::test]
    async fn a_call_that_gives_up_waiting_leaves_no_place_behind() {
        let fair = Fair::new(1);
        let a = Arc::new(Load::default());
        let held = fair.acquire(&a, Duration::from_secs(1)).await.unwrap();
        assert!(fair.acquire(&a, Duration::from_millis(20)).await.is_none());
        drop(held);
        assert!(fair.acquire(&a, Duration::from_millis(20)).await.is_some(), "the place came back");
        assert_eq!((a.running.load(Relaxed), a.waiting.load(Relaxed)), (0, 0));
    }
}
