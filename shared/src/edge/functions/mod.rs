//! Each function's entry point: its request read from the edge's input, its operation called,
//! its answer shaped for its caller, and `load`, which builds the operation from its
//! configuration (the Lambda binaries and the local stack call the same `load`).

pub mod profile_lookup;
pub mod route_decision;
pub mod wrap_up_ingest;

use crate::edge::Failure;
use crate::edge::fields::Fields;
use crate::edge::invocation::Input;

/// A Studio request's fields (a form, a query string or a JSON object); anything else is
/// the caller's mistake.
fn studio_fields(input: Input) -> Result<Fields, Failure> {
    input
        .into_fields()
        .map_err(|e| Failure::bad_request("invalid_body", e))
}
