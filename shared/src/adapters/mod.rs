//! Where the data lives and how to reach it: Segment's Profile and Tracking APIs, Lambda's
//! local extensions (secrets, AppConfig, Parameter Store), the rules that change while a
//! function runs, the emergency override, the HTTPS client, each function's configuration and
//! the in-memory twins tests and the local stack use. They implement the domain's ports and
//! never decide a route.

pub mod config;
pub mod dynamodb;
pub mod emergency;
pub mod extension;
pub mod http_client;
pub mod memory;
pub mod refresh;
pub mod retry;
pub mod routing_updates;
pub mod rules_feed;
pub mod secrets;
pub mod segment;
