//! Each function's operation: request fields in, domain call through adapters, answer out.
//! The Lambda binaries and the local sandbox run these same operations.

pub mod route_decision;
