//! The canonical event log: `buzz.publish` stores verified, authorized events of the entered
//! community; `buzz.req` / `buzz.count` serve them back through the same fences.

pub mod publish;
pub mod query;
