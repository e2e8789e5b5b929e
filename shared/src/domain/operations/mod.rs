//! Each function's work over the ports, once the edge has read its request: a decision, a
//! lookup, a delivery of wrap-ups. The edge's `functions` give each one its entry point.

pub mod profile_lookup;
pub mod route_decision;
pub mod trait_sync;
pub mod wrap_up;
