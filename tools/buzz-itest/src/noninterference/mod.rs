//! Non-interference (issue: "run a sequence of community-B operations twice, once alone and
//! once interleaved with community-A-only operations; every B observation (each publish
//! answer, each req result, each count) must be byte-identical").
//!
//! Both runs use fresh databases with identical setup and the same seeded plan. Run 1 executes
//! only B's operations; run 2 interleaves A's operations among them. A's operations aim at the
//! places a leak would show: byte-identical copies of B's events, deletions of B's ids and
//! coordinates and newer replaceable versions by the pubkey admitted in both communities, A
//! channel posts, and A reads; B's filters name A's ids, authors and channels.

mod normalize;
mod plan;
mod run;

use std::collections::HashSet;
use std::time::Instant;

use plan::{Comm, Op, Plan, Val, What, N_KEYS};
use run::{Obs, Run};

use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{Keys, Pg, ACCEPTED, CHANNEL_UNKNOWN};

pub const DEFAULT_OPS: usize = 1200;

/// Everything one run observed.
struct Outcome {
    /// One per B operation, in B order.
    b: Vec<Obs>,
    /// One per A operation, in A order (empty in run 1).
    a: Vec<Obs>,
    /// Human-readable B operations (with this run's normalized filters).
    b_desc: Vec<String>,
    /// NIP-09 probes: (event, expected present, actually present).
    probes: Vec<(usize, bool, bool)>,
}

pub fn run(pg: &Pg, seed: u64, ops: usize, report: &mut Report) {
    println!("# noninterference: seed {seed}, {ops} operations in the interleaved run");
    let t0 = Instant::now();
    let plan = plan::generate(seed, ops);
    let keys = Keys::generate(&mut Rng::new(seed ^ 0x6b65_7973), N_KEYS);
    let alone = match execute(pg, &plan, &keys, false) {
        Ok(o) => o,
        Err(e) => return report.check("noninterference: run 1 (B alone)", Err(format!("seed {seed}: {e}"))),
    };
    let mixed = match execute(pg, &plan, &keys, true) {
        Ok(o) => o,
        Err(e) => return report.check("noninterference: run 2 (B interleaved with A)", Err(format!("seed {seed}: {e}"))),
    };
    println!(
        "# noninterference: {} B + {} A operations, {:.1}s",
        plan.b_ops.len(),
        plan.a_ops.len(),
        t0.elapsed().as_secs_f64()
    );

    report.check(
        &format!(
            "noninterference: {} B observations identical alone and interleaved with {} A operations",
            plan.b_ops.len(),
            plan.a_ops.len()
        ),
        compare(seed, &alone, &mixed),
    );
    report.check("noninterference: sanity: B publishes both accepted and refused", sanity_publishes(&plan, &alone));
    report.check("noninterference: sanity: some B req results non-empty", sanity_reads(&plan, &alone));
    report.check(
        "noninterference: refusals in B use the expected messages (forged/unknown/private h, expired, wrong author)",
        refusals(&plan, &alone).and_then(|()| refusals(&plan, &mixed)),
    );
    report.check("noninterference: A's copies of B events are fresh rows in A", copies(&plan, &mixed));
    report.check(
        "noninterference: NIP-09 in B: own deletions remove, other authors' deletions do not",
        probes(&plan, &alone, "run 1").and_then(|()| probes(&plan, &mixed, "run 2")),
    );
    report.check("noninterference: no operation raised an SQL error", no_errors(&plan, &alone, &mixed));
}

fn execute(pg: &Pg, plan: &Plan, keys: &Keys, interleave: bool) -> Result<Outcome, String> {
    let label = if interleave { "ni_mixed" } else { "ni_alone" };
    let mut run = Run::start(pg, plan, keys, label)?;
    let order = if interleave { plan.order.clone() } else { vec![Comm::B; plan.b_ops.len()] };
    let (mut b, mut a, mut b_desc) = (Vec::new(), Vec::new(), Vec::new());
    let (mut bi, mut ai) = (0, 0);
    for c in order {
        match c {
            Comm::B => {
                let op = &plan.b_ops[bi];
                bi += 1;
                b_desc.push(describe(plan, &run, op));
                b.push(run.exec(op));
            }
            Comm::A => {
                a.push(run.exec(&plan.a_ops[ai]));
                ai += 1;
            }
        }
    }
    let mut probes = Vec::new();
    for (ev, want) in deletion_expectations(plan, &b) {
        let author = plan.events[ev].key;
        probes.push((ev, want, run.present_in_b(author, ev)?));
    }
    Ok(Outcome { b, a, b_desc, probes })
}

fn describe(plan: &Plan, run: &Run, op: &Op) -> String {
    match op {
        Op::Publish { ev, .. } => format!("{} {}", plan.describe(op), run.norm.apply(&run.signed[*ev].json)),
        Op::Req { filters, .. } | Op::Count { filters, .. } => {
            format!("{} {}", plan.describe(op), run.norm.apply(&run.filters_json(filters).to_string()))
        }
    }
}

/// Element by element; on a difference, the seed, the B operation and both values.
fn compare(seed: u64, alone: &Outcome, mixed: &Outcome) -> Result<(), String> {
    if alone.b.len() != mixed.b.len() {
        return Err(format!("seed {seed}: {} vs {} B observations", alone.b.len(), mixed.b.len()));
    }
    for (i, (x, y)) in alone.b.iter().zip(&mixed.b).enumerate() {
        if x == y {
            continue;
        }
        let detail = match (x, y) {
            (Obs::Events(ex), Obs::Events(ey)) => {
                let j = ex.iter().zip(ey).position(|(p, q)| p != q).unwrap_or(ex.len().min(ey.len()));
                format!(
                    "{} vs {} events; first difference at result #{j}: alone={} interleaved={}",
                    ex.len(),
                    ey.len(),
                    ex.get(j).map_or("(none)", String::as_str),
                    ey.get(j).map_or("(none)", String::as_str)
                )
            }
            _ => format!("alone={x:?} interleaved={y:?}"),
        };
        return Err(format!("seed {seed}: first difference at B observation #{i} [{}]: {detail}", alone.b_desc[i]));
    }
    Ok(())
}

fn b_publishes<'a>(plan: &'a Plan, out: &'a Outcome) -> impl Iterator<Item = (usize, What, &'a Obs)> + 'a {
    plan.b_ops.iter().zip(&out.b).filter_map(|(op, obs)| match op {
        Op::Publish { ev, what, .. } => Some((*ev, *what, obs)),
        _ => None,
    })
}

fn sanity_publishes(plan: &Plan, out: &Outcome) -> Result<(), String> {
    let answers: Vec<bool> = b_publishes(plan, out).filter_map(|(_, _, o)| o.accepted()).collect();
    let acc = answers.iter().filter(|a| **a).count();
    let refused = answers.len() - acc;
    println!("# B publishes: {acc} accepted, {refused} refused");
    if acc == 0 || refused == 0 {
        return Err(format!("{acc} accepted, {refused} refused: the plan does not exercise both"));
    }
    Ok(())
}

fn sanity_reads(plan: &Plan, out: &Outcome) -> Result<(), String> {
    let reqs: Vec<&Vec<String>> = plan
        .b_ops
        .iter()
        .zip(&out.b)
        .filter_map(|(op, o)| match (op, o) {
            (Op::Req { .. }, Obs::Events(e)) => Some(e),
            _ => None,
        })
        .collect();
    let non_empty = reqs.iter().filter(|e| !e.is_empty()).count();
    let counted: i64 = out.b.iter().map(|o| if let Obs::Count(n) = o { *n } else { 0 }).sum();
    println!("# B reads: {non_empty} of {} req results non-empty; counts sum to {counted}", reqs.len());
    if non_empty == 0 || counted == 0 {
        return Err(format!("{non_empty} non-empty req results, counts sum {counted}: reads see nothing"));
    }
    Ok(())
}

/// The answers a refusal must carry, whatever else happened in the run.
fn refusals(plan: &Plan, out: &Outcome) -> Result<(), String> {
    let (mut forged, mut unknown) = (0, 0);
    for (ev, what, obs) in b_publishes(plan, out) {
        let want = match what {
            What::ForgedH => {
                forged += 1;
                CHANNEL_UNKNOWN
            }
            What::UnknownH => {
                unknown += 1;
                CHANNEL_UNKNOWN
            }
            What::PrivateNonMember => CHANNEL_UNKNOWN,
            What::ExpiredPast => "invalid: event has expired",
            What::WrongAuthor => "restricted: event author is not the authenticated user",
            _ => continue,
        };
        if *obs != Obs::Answer((false, want.to_owned())) {
            return Err(format!("{what:?} event {ev}: answered {obs:?}, want (false, {want:?})"));
        }
    }
    if forged == 0 || unknown == 0 {
        return Err(format!("plan has {forged} forged-h and {unknown} unknown-h publishes; want both"));
    }
    Ok(())
}

/// A's first copy of a regular B event (by the shared pubkey, not deleted in A) is accepted:
/// B holding the same id must not make it a duplicate in A. Also makes sure the plan had A
/// copy some events before B published them (so B, not only A, had a chance to notice).
fn copies(plan: &Plan, mixed: &Outcome) -> Result<(), String> {
    let (mut seen, mut deleted, mut in_b): (HashSet<usize>, HashSet<usize>, HashSet<usize>) = Default::default();
    let (mut accepted, mut total, mut checked, mut before_b) = (0, 0, 0, 0);
    let (mut bi, mut ai) = (0, 0);
    for c in &plan.order {
        if *c == Comm::B {
            if let Op::Publish { ev, .. } = &plan.b_ops[bi] {
                in_b.insert(*ev);
            }
            bi += 1;
            continue;
        }
        let (op, obs) = (&plan.a_ops[ai], &mixed.a[ai]);
        ai += 1;
        let Op::Publish { ev, what, .. } = op else { continue };
        let e = &plan.events[*ev];
        if *what == What::Copy {
            total += 1;
            if obs.accepted() == Some(true) {
                accepted += 1;
            }
            if !in_b.contains(ev) {
                before_b += 1;
            }
            let regular = matches!(e.kind, 1 | 7 | 1111);
            if regular && !seen.contains(ev) && !deleted.contains(ev) {
                checked += 1;
                if *obs != Obs::Answer((true, ACCEPTED.to_owned())) {
                    return Err(format!("first copy in A of B's event {ev} (kind {}): answered {obs:?}", e.kind));
                }
            }
        }
        // Any kind 5 A stores (its own, or a copy of one of B's) tombstones its ids in A.
        if e.kind == 5 && obs.accepted() == Some(true) {
            deleted.extend(e.tag_vals("e").filter_map(|v| if let Val::Id(t) = v { Some(*t) } else { None }));
        }
        seen.insert(*ev);
    }
    println!(
        "# A copies of B events: {accepted} of {total} accepted, {checked} first copies checked, {before_b} published in A before B published them"
    );
    if accepted == 0 || checked == 0 || before_b == 0 {
        return Err(format!(
            "{accepted} of {total} copies accepted, {checked} first copies checked, {before_b} before B: the plan does not exercise copies"
        ));
    }
    Ok(())
}

/// From B's accepted kind-5 events: targets deleted by their own author must be gone; regular
/// targets only other authors named must still be there.
fn deletion_expectations(plan: &Plan, b: &[Obs]) -> Vec<(usize, bool)> {
    let (mut own, mut cross, mut stored) = (HashSet::new(), HashSet::new(), HashSet::new());
    for (op, obs) in plan.b_ops.iter().zip(b) {
        let Op::Publish { ev, .. } = op else { continue };
        if obs.accepted() != Some(true) {
            continue;
        }
        stored.insert(*ev);
        let e = &plan.events[*ev];
        if e.kind != 5 {
            continue;
        }
        for v in e.tag_vals("e") {
            let Val::Id(t) = v else { continue };
            let target = &plan.events[*t];
            if target.kind == 5 {
                continue; // deletions are not deleted
            }
            if target.key == e.key { own.insert(*t) } else { cross.insert(*t) };
        }
    }
    let mut out: Vec<(usize, bool)> = own.iter().map(|&t| (t, false)).collect();
    out.extend(
        cross
            .iter()
            .filter(|t| !own.contains(t) && stored.contains(t) && matches!(plan.events[**t].kind, 1 | 7 | 1111))
            .map(|&t| (t, true)),
    );
    out.sort();
    out
}

fn probes(plan: &Plan, out: &Outcome, run: &str) -> Result<(), String> {
    let (gone, kept) = (out.probes.iter().filter(|p| !p.1).count(), out.probes.iter().filter(|p| p.1).count());
    if let Some((ev, want, got)) = out.probes.iter().find(|p| p.1 != p.2) {
        let e = &plan.events[*ev];
        return Err(format!(
            "{run}: event {ev} (kind {} by key {}) present={got}, want present={want}",
            e.kind, e.key
        ));
    }
    if run == "run 1" {
        println!("# NIP-09 probes: {gone} own-deleted targets absent, {kept} other-author targets kept");
        if gone == 0 || kept == 0 {
            return Err(format!("{gone} own-deletion and {kept} cross-author probes: want both"));
        }
    }
    Ok(())
}

fn no_errors(plan: &Plan, alone: &Outcome, mixed: &Outcome) -> Result<(), String> {
    let b_ops = plan.b_ops.iter().chain(&plan.b_ops);
    let a_ops = plan.a_ops.iter();
    let all = alone.b.iter().chain(&mixed.b).zip(b_ops).chain(mixed.a.iter().zip(a_ops));
    for (obs, op) in all {
        if let Obs::Error(e) = obs {
            return Err(format!("{}: {e}", plan.describe(op)));
        }
    }
    Ok(())
}
