//! studio-router's shared library, in four layers whose folders are the architecture:
//!
//! - [`edge`]: a Lambda invocation in, an answer out. Decoding, request fields,
//!   authentication, failures and their statuses, and each function's entry point.
//! - [`domain`]: identifiers, rules, decisions, wrap-up events and the ports the operations
//!   call. It imports from neither the edge nor the adapters.
//! - [`adapters`]: Segment, Lambda's extensions, configuration, the HTTPS client; they
//!   implement the domain's ports.
//! - [`support`]: environment, concurrency, metrics, telemetry: used by all, importing none.
//!
//! Data flows one way: raw Lambda event -> edge (decode, authenticate) -> an operation over
//! the domain's ports, served by adapters -> answer -> edge (payload 2.0 or bare JSON).
//! `shared/tests/architecture.rs` fails when an import goes against it.

pub mod adapters;
pub mod domain;
pub mod edge;
pub mod support;

#[cfg(test)]
pub(crate) mod testing;
