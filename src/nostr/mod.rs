//! Nostr verification as a typed pipeline (STYLE: plrust): text → [`event::Parsed`] →
//! [`event::IdChecked`] → [`event::Verified`]. Only a `Verified` event can be authorized or
//! stored, so an unverified event cannot reach a later stage by construction.

pub mod event;
pub mod kinds;
pub mod schnorr;
