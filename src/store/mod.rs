//! The canonical event log: `buzz.publish` stores verified, authorized events of the entered
//! community; `buzz.req` / `buzz.count` serve them back through the same fences, and
//! `buzz.poll` / `buzz.poll_many` deliver what came after a cursor (positions and cursors:
//! `delivery`).

pub mod delivery;
pub mod live;
pub mod poll_many;
pub mod publish;
pub mod query;
pub mod readable;
