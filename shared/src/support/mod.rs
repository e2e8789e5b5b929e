//! What every layer uses and that knows none of them: the environment's variables, how many
//! invocations run at once, metrics, logging and masking, single flights, and JSON read the
//! way Python reads it.

pub mod concurrency;
pub mod environment;
pub mod in_flight;
pub mod json_text;
pub mod metrics;
pub mod telemetry;
