//! One run of the plan in a fresh database: identical setup each time, then the operations,
//! each one relay request over a single relay connection (as a pooled relay would serve both
//! communities).

use std::collections::HashMap;

use postgres::Client;
use serde_json::{json, Map, Value};

use super::normalize::Normalizer;
use super::plan::{Comm, FVal, Filter, Op, Plan, Val};
use crate::setup::{self, Answer, Keys, Pg, Scratch};

/// What B (or A) saw for one operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    Answer(Answer),
    /// req: the returned JSON texts, normalized, in server order.
    Events(Vec<String>),
    Count(i64),
    /// The call raised instead of answering (normalized message).
    Error(String),
}

impl Obs {
    pub fn accepted(&self) -> Option<bool> {
        match self {
            Obs::Answer((a, _)) => Some(*a),
            _ => None,
        }
    }
}

pub struct Signed {
    pub json: String,
    pub id: String,
}

pub struct Run {
    relay: Client,
    tokens: HashMap<(Comm, usize), String>,
    chans: HashMap<(Comm, usize), String>,
    pub signed: Vec<Signed>,
    pub norm: Normalizer,
    keys_pks: Vec<String>,
    // Last: dropped after the connection is closed.
    _db: Scratch,
}

impl Run {
    /// Fresh database, communities A and B, members, NIP-42 sessions, channels (same order
    /// every run), then every event of the plan signed with this run's channel uuids.
    pub fn start(pg: &Pg, plan: &Plan, keys: &Keys, label: &str) -> Result<Run, String> {
        let db = Scratch::create(pg, label)?;
        let mut admin = db.admin()?;
        for comm in [Comm::A, Comm::B] {
            setup::create_community(&mut admin, comm.slug(), comm.host(), "allowlist")?;
            for &k in comm.members() {
                setup::admit(&mut admin, comm.slug(), &keys.pks[k], "member")?;
            }
        }
        drop(admin);
        let mut relay = db.relay()?;
        let mut tokens = HashMap::new();
        for comm in [Comm::B, Comm::A] {
            for &k in comm.members() {
                tokens.insert((comm, k), setup::login(&mut relay, keys, k, comm.host())?);
            }
        }
        let mut chans = HashMap::new();
        let mut norm = Normalizer::default();
        for comm in [Comm::B, Comm::A] {
            for (i, spec) in comm.channels().iter().enumerate() {
                let tok = &tokens[&(comm, spec.creator)];
                let vis = if spec.private { "private" } else { "open" };
                let id = setup::create_channel(&mut relay, comm.host(), tok, spec.name, vis)?;
                for &m in spec.members {
                    setup::add_channel_member(&mut relay, comm.host(), tok, &id, &keys.pks[m])?;
                }
                norm.add(id.clone(), format!("<{comm:?}.channel#{i}>"));
                chans.insert((comm, i), id);
            }
        }
        let mut run = Run { relay, tokens, chans, signed: Vec::new(), norm, keys_pks: keys.pks.clone(), _db: db };
        for (i, e) in plan.events.iter().enumerate() {
            let tags: Vec<Value> = e
                .tags
                .iter()
                .map(|t| Value::Array(t.iter().map(|v| Value::String(run.resolve(v, i))).collect()))
                .collect();
            let ev = keys.sign(e.key, e.created_at, e.kind, &tags, &e.content);
            let id = setup::id_of(&ev);
            run.norm.add(id.clone(), format!("<ev#{i}>"));
            run.norm.add(setup::field(&ev, "sig"), format!("<sig#{i}>"));
            run.signed.push(Signed { json: ev, id });
        }
        Ok(run)
    }

    /// A plan value as a string of this run; `before` bounds event references (only events
    /// already signed can be named).
    fn resolve(&self, v: &Val, before: usize) -> String {
        match v {
            Val::Lit(s) => s.clone(),
            Val::Id(k) => {
                assert!(*k < before && *k < self.signed.len(), "reference to unsigned event {k}");
                self.signed[*k].id.clone()
            }
            Val::Pk(k) => self.keys_pks[*k].clone(),
            Val::Chan(c, k) => self.chans[&(*c, *k)].clone(),
            Val::Coord(kind, k, d) => format!("{kind}:{}:{d}", self.keys_pks[*k]),
        }
    }

    /// One filter object, or an array of them.
    pub fn filters_json(&self, filters: &[Filter]) -> Value {
        let n = self.signed.len();
        let obj = |f: &Filter| {
            let mut m = Map::new();
            for (key, v) in f {
                let v = match v {
                    FVal::Vals(vs) => Value::Array(vs.iter().map(|x| Value::String(self.resolve(x, n))).collect()),
                    FVal::Nums(ns) => json!(ns),
                    FVal::Num(x) => json!(x),
                };
                m.insert((*key).to_owned(), v);
            }
            Value::Object(m)
        };
        match filters {
            [one] => obj(one),
            many => Value::Array(many.iter().map(obj).collect()),
        }
    }

    /// Execute one operation as one relay request.
    pub fn exec(&mut self, op: &Op) -> Obs {
        let r = match op {
            Op::Publish { comm, actor, ev, .. } => {
                let tok = &self.tokens[&(*comm, *actor)];
                setup::publish(&mut self.relay, comm.host(), tok, &self.signed[*ev].json).map(Obs::Answer)
            }
            Op::Req { comm, actor, filters } => {
                let f = self.filters_json(filters);
                let tok = &self.tokens[&(*comm, *actor)];
                setup::req(&mut self.relay, comm.host(), tok, &f)
                    .map(|evs| Obs::Events(evs.iter().map(|e| self.norm.apply(e)).collect()))
            }
            Op::Count { comm, actor, filters } => {
                let f = self.filters_json(filters);
                let tok = &self.tokens[&(*comm, *actor)];
                setup::count(&mut self.relay, comm.host(), tok, &f).map(Obs::Count)
            }
        };
        r.unwrap_or_else(|e| Obs::Error(self.norm.apply(&e)))
    }

    /// Is event `ev` stored and visible to `actor` in B?
    pub fn present_in_b(&mut self, actor: usize, ev: usize) -> Result<bool, String> {
        let tok = &self.tokens[&(Comm::B, actor)];
        let n = setup::count(&mut self.relay, Comm::B.host(), tok, &json!({ "ids": [self.signed[ev].id] }))?;
        Ok(n > 0)
    }
}
