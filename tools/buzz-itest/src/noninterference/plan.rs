//! The seeded plan, generated once and replayed in both runs: the cast (keys, communities,
//! channels), every event in abstract form (references to other events, keys and channels are
//! resolved per run, because channel uuids are server-generated), and the B and A operation
//! lists plus the interleaving order of the second run.

use crate::prng::Rng;

/// Fixed timestamps: the same seed signs the same events in both runs.
pub const BASE: i64 = 1_700_000_000;
pub const N_KEYS: usize = 8;
/// The one pubkey admitted in both communities.
pub const SHARED: usize = 4;
pub const TOPICS: &[&str] = &["nostr", "rust", "postgres", "tenancy", "buzz"];
pub const D_TAGS: &[&str] = &["intro", "notes", "faq"];
const READ_KINDS: &[i64] = &[0, 1, 3, 5, 7, 1111, 10_002, 30_023];
/// An expiration already past, and one far in the future (2100-01-01).
pub const EXPIRED_AT: &str = "1700000000";
pub const EXPIRES_LATER: &str = "4102444800";

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Comm {
    A,
    B,
}

pub struct ChannelSpec {
    pub name: &'static str,
    pub private: bool,
    pub creator: usize,
    /// Added by the creator (private channels).
    pub members: &'static [usize],
}

impl ChannelSpec {
    pub fn may_post(&self, k: usize) -> bool {
        !self.private || self.creator == k || self.members.contains(&k)
    }
}

const B_CHANNELS: &[ChannelSpec] = &[
    ChannelSpec { name: "b-lobby", private: false, creator: 0, members: &[] },
    ChannelSpec { name: "b-staff", private: true, creator: 0, members: &[1, SHARED] },
    ChannelSpec { name: "b-pair", private: true, creator: 2, members: &[3] },
    ChannelSpec { name: "b-open", private: false, creator: SHARED, members: &[] },
];
const A_CHANNELS: &[ChannelSpec] = &[
    ChannelSpec { name: "a-lobby", private: false, creator: 5, members: &[] },
    ChannelSpec { name: "a-council", private: true, creator: SHARED, members: &[5] },
    ChannelSpec { name: "a-pair", private: true, creator: 6, members: &[7] },
];

impl Comm {
    pub fn slug(self) -> &'static str {
        match self {
            Comm::A => "alpha",
            Comm::B => "beta",
        }
    }
    pub fn host(self) -> &'static str {
        match self {
            Comm::A => "a.example",
            Comm::B => "b.example",
        }
    }
    pub fn members(self) -> &'static [usize] {
        match self {
            Comm::A => &[SHARED, 5, 6, 7],
            Comm::B => &[0, 1, 2, 3, SHARED],
        }
    }
    pub fn channels(self) -> &'static [ChannelSpec] {
        match self {
            Comm::A => A_CHANNELS,
            Comm::B => B_CHANNELS,
        }
    }
    fn other(self) -> Comm {
        match self {
            Comm::A => Comm::B,
            Comm::B => Comm::A,
        }
    }
}

/// A tag or filter value, resolved per run.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Lit(String),
    /// The id of event k of the plan.
    Id(usize),
    /// The pubkey of key k.
    Pk(usize),
    /// The uuid of channel k of a community (by creation order).
    Chan(Comm, usize),
    /// A NIP-09 coordinate `kind:pubkey:d`.
    Coord(u16, usize, String),
}

fn lit(s: &str) -> Val {
    Val::Lit(s.to_owned())
}

#[derive(Clone, Debug, PartialEq)]
pub struct EvSpec {
    pub key: usize,
    pub created_at: i64,
    pub kind: u16,
    pub tags: Vec<Vec<Val>>,
    pub content: String,
}

impl EvSpec {
    pub fn tag_vals<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Val> + 'a {
        self.tags.iter().filter(move |t| t.first() == Some(&lit(name))).filter_map(|t| t.get(1))
    }
    pub fn has_tag(&self, name: &str) -> bool {
        self.tag_vals(name).next().is_some()
    }
}

/// Why an operation is in the plan (drives the sanity checks and failure messages).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum What {
    Regular,
    ChannelPost,
    PrivateNonMember,
    Versioned,
    Deletion,
    ForgedH,
    UnknownH,
    Duplicate,
    ExpiredPast,
    ExpiresLater,
    WrongAuthor,
    /// A: the byte-identical JSON of a B event by the shared pubkey.
    Copy,
    /// A: a deletion by the shared pubkey naming B's ids and coordinates.
    SharedDeletion,
    /// A: replaceable/addressable versions by the shared pubkey, newer than B's.
    SharedVersioned,
    /// A: an A-only event that B filters name by id.
    APool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FVal {
    Vals(Vec<Val>),
    Nums(Vec<i64>),
    Num(i64),
}

/// One NIP-01 filter: (key, value) pairs.
pub type Filter = Vec<(&'static str, FVal)>;

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Publish { comm: Comm, actor: usize, ev: usize, what: What },
    Req { comm: Comm, actor: usize, filters: Vec<Filter> },
    Count { comm: Comm, actor: usize, filters: Vec<Filter> },
}

pub struct Plan {
    pub events: Vec<EvSpec>,
    pub b_ops: Vec<Op>,
    pub a_ops: Vec<Op>,
    /// Run 2's interleaving: one entry per operation, B ops and A ops each in list order.
    pub order: Vec<Comm>,
}

impl Plan {
    pub fn describe(&self, op: &Op) -> String {
        match op {
            Op::Publish { actor, ev, what, .. } => {
                let e = &self.events[*ev];
                format!("publish {what:?} kind {} by key {} as key {actor}", e.kind, e.key)
            }
            Op::Req { actor, .. } => format!("req as key {actor}"),
            Op::Count { actor, .. } => format!("count as key {actor}"),
        }
    }
}

/// `ops` is the size of the interleaved run: half B, half A.
pub fn generate(seed: u64, ops: usize) -> Plan {
    let nb = ops / 2;
    let na = ops - nb;
    let mut g = Gen {
        rng: Rng::new(seed),
        events: Vec::new(),
        b_events: Vec::new(),
        b_coords: Vec::new(),
        a_pool: Vec::new(),
        a_published: Vec::new(),
        unknown: String::new(),
        nb,
        strays: 0,
    };
    g.unknown = g.rng.uuid();
    // A-only events exist before B's plan so that B filters can name their ids.
    for _ in 0..(ops / 20).max(5) {
        g.pool_event();
    }
    let b_ops: Vec<Op> = (0..nb).map(|i| g.b_op(i)).collect();
    let a_ops: Vec<Op> = (0..na).map(|j| g.a_op(j)).collect();
    let mut order = vec![Comm::B; nb];
    order.extend(vec![Comm::A; na]);
    g.rng.shuffle(&mut order);
    Plan { events: g.events, b_ops, a_ops, order }
}

struct Gen {
    rng: Rng,
    events: Vec<EvSpec>,
    /// B events publishable by their (B-member) author, in generation order.
    b_events: Vec<usize>,
    /// Replaceable/addressable coordinates B uses: (kind, key, d).
    b_coords: Vec<(u16, usize, String)>,
    a_pool: Vec<usize>,
    a_published: Vec<usize>,
    unknown: String,
    nb: usize,
    strays: usize,
}

impl Gen {
    fn push(&mut self, key: usize, created_at: i64, kind: u16, tags: Vec<Vec<Val>>, content: String) -> usize {
        self.events.push(EvSpec { key, created_at, kind, tags, content });
        self.events.len() - 1
    }

    fn topics(&mut self, max: usize) -> Vec<Vec<Val>> {
        (0..self.rng.below(max + 1)).map(|_| vec![lit("t"), lit(TOPICS[self.rng.below(TOPICS.len())])]).collect()
    }

    fn p_tags(&mut self, min: usize, max: usize) -> Vec<Vec<Val>> {
        (0..min + self.rng.below(max - min + 1)).map(|_| vec![lit("p"), Val::Pk(self.rng.below(N_KEYS))]).collect()
    }

    /// Authors lean towards the shared pubkey so A has plenty to copy.
    fn b_author(&mut self) -> usize {
        if self.rng.chance(30) {
            SHARED
        } else {
            *self.rng.pick(Comm::B.members())
        }
    }

    /// An earlier B event (or, rarely, an id that exists nowhere).
    fn b_ref(&mut self) -> Option<Val> {
        if self.b_events.is_empty() {
            return None;
        }
        Some(if self.rng.chance(90) { Val::Id(*self.rng.pick(&self.b_events)) } else { Val::Lit(self.rng.hex32()) })
    }

    /// Any event id a reader of `comm` might name: its own, the other community's, or none.
    fn any_ref(&mut self, comm: Comm) -> Val {
        let (own, other) = match comm {
            Comm::B => (&self.b_events, &self.a_pool),
            Comm::A => (&self.a_pool, &self.b_events),
        };
        let r = self.rng.below(100);
        if r < 60 && !own.is_empty() {
            Val::Id(own[self.rng.below(own.len())])
        } else if r < 90 && !other.is_empty() {
            Val::Id(other[self.rng.below(other.len())])
        } else {
            Val::Lit(self.rng.hex32())
        }
    }

    fn chan_ref(&mut self, comm: Comm) -> Val {
        let r = self.rng.below(100);
        let c = if r < 70 { comm } else { comm.other() };
        if r >= 90 {
            return Val::Lit(self.unknown.clone());
        }
        Val::Chan(c, self.rng.below(c.channels().len()))
    }

    fn filter(&mut self, comm: Comm) -> Filter {
        let mut f: Filter = Vec::new();
        let vals = |g: &mut Gen, n: usize, mk: &mut dyn FnMut(&mut Gen) -> Val| -> FVal {
            FVal::Vals((0..1 + g.rng.below(n)).map(|_| mk(g)).collect())
        };
        if self.rng.chance(20) {
            f.push(("ids", vals(self, 4, &mut |g| g.any_ref(comm))));
        }
        if self.rng.chance(30) {
            f.push(("authors", vals(self, 3, &mut |g| Val::Pk(g.rng.below(N_KEYS)))));
        }
        if self.rng.chance(35) {
            let kinds = (0..1 + self.rng.below(3)).map(|_| *self.rng.pick(READ_KINDS)).collect();
            f.push(("kinds", FVal::Nums(kinds)));
        }
        if self.rng.chance(12) {
            f.push(("#e", vals(self, 2, &mut |g| g.any_ref(comm))));
        }
        if self.rng.chance(12) {
            f.push(("#p", vals(self, 2, &mut |g| Val::Pk(g.rng.below(N_KEYS)))));
        }
        if self.rng.chance(15) {
            f.push(("#t", vals(self, 2, &mut |g| lit(TOPICS[g.rng.below(TOPICS.len())]))));
        }
        if self.rng.chance(15) {
            f.push(("#h", vals(self, 2, &mut |g| g.chan_ref(comm))));
        }
        if self.rng.chance(5) {
            f.push(("#d", vals(self, 2, &mut |g| lit(D_TAGS[g.rng.below(D_TAGS.len())]))));
        }
        let span = self.nb as i64 * 10 + 10;
        if self.rng.chance(15) {
            f.push(("since", FVal::Num(BASE + self.rng.below(span as usize) as i64)));
        }
        if self.rng.chance(15) {
            f.push(("until", FVal::Num(BASE + self.rng.below(span as usize) as i64)));
        }
        if self.rng.chance(60) {
            f.push(("limit", FVal::Num(1 + self.rng.below(40) as i64)));
        }
        f
    }

    fn read(&mut self, comm: Comm) -> Op {
        let actor = *self.rng.pick(comm.members());
        let n = if self.rng.chance(30) { 2 + self.rng.below(2) } else { 1 };
        let filters = (0..n).map(|_| self.filter(comm)).collect();
        if self.rng.chance(60) {
            Op::Req { comm, actor, filters }
        } else {
            Op::Count { comm, actor, filters }
        }
    }

    /// An A-only event, published by A at some point; B filters name it.
    fn pool_event(&mut self) {
        let ch = self.rng.chance(25).then(|| self.rng.below(A_CHANNELS.len()));
        let key = match ch {
            Some(c) => {
                let spec = &A_CHANNELS[c];
                let allowed: Vec<usize> = Comm::A.members().iter().copied().filter(|&k| spec.may_post(k)).collect();
                *self.rng.pick(&allowed)
            }
            None => *self.rng.pick(Comm::A.members()),
        };
        let mut tags = self.topics(2);
        tags.extend(self.p_tags(0, 2));
        if let Some(c) = ch {
            tags.push(vec![lit("h"), Val::Chan(Comm::A, c)]);
        }
        let created_at = BASE + self.rng.below(self.nb.max(1) * 10) as i64 + 7;
        let ev = self.push(key, created_at, 1, tags, format!("alpha only {}", self.events.len()));
        self.a_pool.push(ev);
    }

    fn b_op(&mut self, i: usize) -> Op {
        let ct = BASE + 10 * i as i64;
        let publish = |actor, ev, what| Op::Publish { comm: Comm::B, actor, ev, what };
        match self.rng.below(100) {
            0..=21 => {
                let author = self.b_author();
                let kind = *self.rng.pick(&[1u16, 1, 1, 7, 1111]);
                let mut tags = Vec::new();
                if kind != 1 || self.rng.chance(30) {
                    if let Some(r) = self.b_ref() {
                        tags.push(vec![lit("e"), r]);
                    }
                }
                tags.extend(self.topics(2));
                tags.extend(self.p_tags(0, 2));
                let content = if kind == 7 { "+".to_owned() } else { format!("note {i} on {}", self.rng.pick(TOPICS)) };
                let ev = self.push(author, ct, kind, tags, content);
                self.b_events.push(ev);
                publish(author, ev, What::Regular)
            }
            22..=33 => {
                let ch = self.rng.below(B_CHANNELS.len());
                let author = *self.rng.pick(Comm::B.members());
                let kind = *self.rng.pick(&[1u16, 1111]);
                let mut tags = vec![vec![lit("h"), Val::Chan(Comm::B, ch)]];
                if kind == 1111 {
                    if let Some(r) = self.b_ref() {
                        tags.push(vec![lit("e"), r]);
                    }
                }
                tags.extend(self.topics(1));
                let ev = self.push(author, ct, kind, tags, format!("{} post {i}", B_CHANNELS[ch].name));
                self.b_events.push(ev);
                let what = if B_CHANNELS[ch].may_post(author) { What::ChannelPost } else { What::PrivateNonMember };
                publish(author, ev, what)
            }
            34..=45 => {
                let author = self.b_author();
                let kind = *self.rng.pick(&[0u16, 3, 10_002, 30_023]);
                // Versions arrive out of order: some are older than the stored head. Odd
                // timestamps never tie with regular events (whose ids can be run-dependent).
                let at = BASE + 10 * (i as i64 - self.rng.below(6) as i64) + 5;
                let (ev, d) = self.versioned(author, kind, at, &format!("b{i}"));
                self.b_coords.push((kind, author, d));
                self.b_events.push(ev);
                publish(author, ev, What::Versioned)
            }
            46..=52 => {
                let author = self.b_author();
                let n = 1 + self.rng.below(3);
                let tags = self.deletion_tags(author, n);
                let ev = self.push(author, ct, 5, tags, String::new());
                self.b_events.push(ev);
                publish(author, ev, What::Deletion)
            }
            53..=56 => {
                // An h tag naming one of A's channels, or one that exists nowhere: both must be
                // answered exactly alike.
                let author = self.b_author();
                // Two of every three name an A channel, the third a channel that exists nowhere.
                self.strays += 1;
                let forged = !self.strays.is_multiple_of(3);
                let h = if forged { Val::Chan(Comm::A, self.rng.below(A_CHANNELS.len())) } else { Val::Lit(self.unknown.clone()) };
                let mut tags = vec![vec![lit("h"), h]];
                tags.extend(self.topics(1));
                let ev = self.push(author, ct, 1, tags, format!("stray {i}"));
                publish(author, ev, if forged { What::ForgedH } else { What::UnknownH })
            }
            57..=61 if !self.b_events.is_empty() => {
                let ev = *self.rng.pick(&self.b_events);
                publish(self.events[ev].key, ev, What::Duplicate)
            }
            62..=64 => {
                let author = self.b_author();
                let past = self.rng.chance(50);
                let mut tags = vec![vec![lit("expiration"), lit(if past { EXPIRED_AT } else { EXPIRES_LATER })]];
                tags.extend(self.topics(1));
                let ev = self.push(author, ct, 1, tags, format!("ephemeral-ish {i}"));
                if !past {
                    self.b_events.push(ev);
                }
                publish(author, ev, if past { What::ExpiredPast } else { What::ExpiresLater })
            }
            65..=66 => {
                let author = self.rng.below(N_KEYS);
                let others: Vec<usize> = Comm::B.members().iter().copied().filter(|&k| k != author).collect();
                let actor = *self.rng.pick(&others);
                let tags = self.topics(1);
                let ev = self.push(author, ct, 1, tags, format!("impostor {i}"));
                publish(actor, ev, What::WrongAuthor)
            }
            _ => self.read(Comm::B),
        }
    }

    /// A replaceable (0, 3, 10002) or addressable (30023) version; returns (event, d).
    fn versioned(&mut self, author: usize, kind: u16, at: i64, label: &str) -> (usize, String) {
        let mut d = String::new();
        let (tags, content) = match kind {
            0 => (vec![], format!("{{\"name\":\"key{author}\",\"about\":\"{label}\"}}")),
            3 => (self.p_tags(1, 3), String::new()),
            10_002 => {
                let n = 1 + self.rng.below(2);
                let tags = (0..n).map(|_| vec![lit("r"), Val::Lit(format!("wss://r{}.example/", self.rng.below(5)))]).collect();
                (tags, String::new())
            }
            _ => {
                d = self.rng.pick(D_TAGS).to_string();
                let mut tags = vec![vec![lit("d"), lit(&d)]];
                tags.extend(self.topics(1));
                (tags, format!("article {label}"))
            }
        };
        (self.push(author, at, kind, tags, content), d)
    }

    /// `n` e tags alternating between the author's own B events and other authors' (which
    /// must survive), sometimes an `a` coordinate (own or other's), sometimes an id that
    /// exists nowhere.
    fn deletion_tags(&mut self, author: usize, n: usize) -> Vec<Vec<Val>> {
        let mut tags = Vec::new();
        let (own, others): (Vec<usize>, Vec<usize>) = self.b_events.iter().partition(|&&e| self.events[e].key == author);
        let first_own = self.rng.chance(50);
        for i in 0..n {
            let pool = if (i % 2 == 0) == first_own && !own.is_empty() || others.is_empty() { &own } else { &others };
            if pool.is_empty() {
                break;
            }
            tags.push(vec![lit("e"), Val::Id(pool[self.rng.below(pool.len())])]);
        }
        if self.rng.chance(40) && !self.b_coords.is_empty() {
            let own_coords: Vec<_> = self.b_coords.iter().filter(|c| c.1 == author).cloned().collect();
            let (kind, key, d) =
                if !own_coords.is_empty() && self.rng.chance(60) { self.rng.pick(&own_coords).clone() } else { self.rng.pick(&self.b_coords).clone() };
            tags.push(vec![lit("a"), Val::Coord(kind, key, d)]);
        }
        if tags.is_empty() || self.rng.chance(10) {
            tags.push(vec![lit("e"), Val::Lit(self.rng.hex32())]);
        }
        tags
    }

    fn a_op(&mut self, j: usize) -> Op {
        // A's own timestamps lie after all of B's, so A's versions would win if they leaked.
        let ct = BASE + 10 * self.nb as i64 + 100 + j as i64;
        let publish = |actor, ev, what| Op::Publish { comm: Comm::A, actor, ev, what };
        let op = match self.rng.below(100) {
            0..=19 => {
                let copyable: Vec<usize> = self
                    .b_events
                    .iter()
                    .copied()
                    .filter(|&e| self.events[e].key == SHARED && !self.events[e].has_tag("h"))
                    .collect();
                if copyable.is_empty() {
                    return self.a_op(j);
                }
                publish(SHARED, *self.rng.pick(&copyable), What::Copy)
            }
            20..=29 => {
                // Mostly the shared pubkey's own B ids and coordinates: they exist in B, and
                // (as copies) maybe in A; deleting them in A must not touch B.
                let shared: Vec<usize> = self.b_events.iter().copied().filter(|&e| self.events[e].key == SHARED).collect();
                let mut tags = Vec::new();
                for _ in 0..1 + self.rng.below(3) {
                    let pool = if !shared.is_empty() && self.rng.chance(70) { &shared } else { &self.b_events };
                    if !pool.is_empty() {
                        tags.push(vec![lit("e"), Val::Id(pool[self.rng.below(pool.len())])]);
                    }
                }
                let coords: Vec<_> = self.b_coords.iter().filter(|c| c.1 == SHARED).cloned().collect();
                if !coords.is_empty() && self.rng.chance(50) {
                    let (kind, key, d) = self.rng.pick(&coords).clone();
                    tags.push(vec![lit("a"), Val::Coord(kind, key, d)]);
                }
                if tags.is_empty() {
                    tags.push(vec![lit("e"), Val::Lit(self.rng.hex32())]);
                }
                let ev = self.push(SHARED, ct, 5, tags, String::new());
                publish(SHARED, ev, What::SharedDeletion)
            }
            30..=39 => {
                let kind = *self.rng.pick(&[0u16, 3, 10_002, 30_023]);
                let (ev, _) = self.versioned(SHARED, kind, ct, &format!("a{j}"));
                publish(SHARED, ev, What::SharedVersioned)
            }
            40..=54 => {
                let ch = self.rng.below(A_CHANNELS.len());
                let author = *self.rng.pick(Comm::A.members());
                let mut tags = vec![vec![lit("h"), Val::Chan(Comm::A, ch)]];
                tags.extend(self.topics(2));
                tags.extend(self.p_tags(0, 1));
                let ev = self.push(author, ct, 1, tags, format!("{} post {j}", A_CHANNELS[ch].name));
                let what = if A_CHANNELS[ch].may_post(author) { What::ChannelPost } else { What::PrivateNonMember };
                publish(author, ev, what)
            }
            55..=64 => {
                let ev = *self.rng.pick(&self.a_pool);
                publish(self.events[ev].key, ev, What::APool)
            }
            65..=74 => {
                let author = *self.rng.pick(Comm::A.members());
                let kind = *self.rng.pick(&[1u16, 7]);
                let mut tags = vec![vec![lit("e"), self.any_ref(Comm::A)]];
                tags.extend(self.topics(2));
                tags.extend(self.p_tags(0, 2));
                let ev = self.push(author, ct, kind, tags, format!("alpha note {j}"));
                publish(author, ev, What::Regular)
            }
            75..=79 if !self.a_published.is_empty() => {
                let ev = *self.rng.pick(&self.a_published);
                publish(self.events[ev].key, ev, What::Duplicate)
            }
            _ => self.read(Comm::A),
        };
        if let Op::Publish { ev, .. } = op {
            self.a_published.push(ev);
        }
        op
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn whats(ops: &[Op]) -> Vec<What> {
        ops.iter().filter_map(|o| if let Op::Publish { what, .. } = o { Some(*what) } else { None }).collect()
    }

    #[test]
    fn plan_is_deterministic_and_sized() {
        let (p, q) = (generate(42, 1200), generate(42, 1200));
        assert_eq!((p.b_ops.clone(), p.a_ops.clone(), p.order.clone()), (q.b_ops, q.a_ops, q.order));
        assert_eq!(p.events, q.events);
        assert_eq!(p.b_ops.len() + p.a_ops.len(), 1200);
        assert_eq!(p.order.len(), 1200);
        assert_eq!(p.order.iter().filter(|c| **c == Comm::B).count(), p.b_ops.len());
        assert_ne!(generate(43, 1200).events, p.events);
    }

    #[test]
    fn plan_covers_every_kind_of_operation() {
        let p = generate(7, 1200);
        let b = whats(&p.b_ops);
        for w in [
            What::Regular,
            What::ChannelPost,
            What::PrivateNonMember,
            What::Versioned,
            What::Deletion,
            What::ForgedH,
            What::UnknownH,
            What::Duplicate,
            What::ExpiredPast,
            What::ExpiresLater,
            What::WrongAuthor,
        ] {
            assert!(b.contains(&w), "no B {w:?}");
        }
        let a = whats(&p.a_ops);
        for w in [What::Copy, What::SharedDeletion, What::SharedVersioned, What::APool, What::ChannelPost] {
            assert!(a.contains(&w), "no A {w:?}");
        }
        assert!(p.b_ops.iter().any(|o| matches!(o, Op::Req { .. })));
        assert!(p.b_ops.iter().any(|o| matches!(o, Op::Count { .. })));
    }

    #[test]
    fn event_references_point_backwards() {
        let p = generate(11, 1200);
        for (i, e) in p.events.iter().enumerate() {
            for v in e.tags.iter().flatten() {
                if let Val::Id(k) = v {
                    assert!(*k < i, "event {i} references later event {k}");
                }
            }
        }
    }

    /// The sanity checks of a run need these in every plan of the minimum size; check that
    /// over many seeds (plan level, before any database answers).
    #[test]
    fn coverage_holds_for_many_seeds() {
        for seed in 0..300u64 {
            let p = generate(seed, 1000);
            let (mut forged, mut unknown, mut own, mut cross) = (0, 0, HashSet::new(), HashSet::new());
            for op in &p.b_ops {
                let Op::Publish { ev, what, .. } = op else { continue };
                match what {
                    What::ForgedH => forged += 1,
                    What::UnknownH => unknown += 1,
                    What::Deletion => {
                        let e = &p.events[*ev];
                        for v in e.tag_vals("e") {
                            let Val::Id(t) = v else { continue };
                            let target = &p.events[*t];
                            if target.key == e.key {
                                own.insert(*t);
                            } else if matches!(target.kind, 1 | 7 | 1111) {
                                cross.insert(*t);
                            }
                        }
                    }
                    _ => {}
                }
            }
            let regular_copies = p
                .a_ops
                .iter()
                .filter(|o| matches!(o, Op::Publish { what: What::Copy, ev, .. } if matches!(p.events[*ev].kind, 1 | 7 | 1111)))
                .count();
            let cross_only = cross.difference(&own).count();
            assert!(forged > 0 && unknown > 0, "seed {seed}: {forged} forged, {unknown} unknown");
            assert!(cross_only >= 3 && !own.is_empty(), "seed {seed}: {cross_only} cross-author targets");
            assert!(regular_copies >= 5, "seed {seed}: {regular_copies} regular copies");
        }
    }
}
