//! Each function's operation: request fields in, domain call through the ports, answer out.
//! Each reads its own typed configuration, in one place, beside what it configures. The
//! Lambda binaries and the local sandbox run these same operations.

pub mod profile_lookup;
pub mod route_decision;
pub mod wrap_up_ingest;
