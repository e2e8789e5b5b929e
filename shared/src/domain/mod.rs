//! What studio-router knows and decides, apart from how it is asked and where its data lives:
//! customers' identifiers, the routing rules and their decisions, Flex's wrap-ups as Segment
//! events, and the ports (traits) through which the operations reach profiles and sinks. It
//! imports nothing from the edge or the adapters.

pub mod arrival;
pub mod engagement;
pub mod identity;
pub mod operations;
pub mod ports;
pub mod routing;
pub mod rules;
pub mod store_first;
pub mod timestamps;
pub mod track_message;
pub mod trait_store;
