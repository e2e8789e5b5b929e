//! studio-router's shared library: the domain (identifiers, routing rules, decisions) and the
//! adapters every function uses (Lambda invocation decoding, Twilio authentication, Segment
//! clients, configuration, telemetry).
//!
//! Data flows one way: raw Lambda event -> [`invocation`] -> [`auth`] -> an [`operations`]
//! entry point (domain call through adapters) -> answer -> payload 2.0 response ([`edge`]).

pub mod auth;
pub mod concurrency;
pub mod config;
pub mod edge;
pub mod emergency;
pub mod engagement;
pub mod environment;
pub mod extension;
pub mod failure;
pub mod fields;
pub mod http_client;
pub mod identity;
pub mod in_flight;
pub mod invocation;
pub mod json_text;
pub mod memory;
pub mod metrics;
pub mod operations;
pub mod ports;
pub mod refresh;
pub mod routing;
pub mod rules;
pub mod rules_source;
pub mod secrets;
pub mod segment;
pub mod taskrouter;
pub mod telemetry;
pub mod timestamps;
pub mod track_message;

#[cfg(test)]
pub(crate) mod testing;
