//! What arrives at wrap-up-ingest, once read: the events the edge decodes from TaskRouter's
//! callbacks and Event Streams' CloudEvents.

use super::TaskEvent;

/// The event a sink test publishes (Event Streams' Kinesis and webhook quickstarts).
pub const SINK_TEST_EVENT: &str = "com.twilio.eventstreams.test-event";

/// One event as it was received: a task's moment, another event type, or Event Streams' sink
/// test.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceivedEvent {
    /// A wrap-up or a completion, with what the mapping needs.
    Task(TaskEvent),
    /// Any other event type: nothing more is read of it (a `worker.activity.update` has no
    /// task at all).
    Other { event_type: String },
    /// Event Streams' sink test (`sinks:test:create`): its `test_id` is what
    /// `sinks:validate:create` asks for to turn the sink on.
    SinkTest { test_id: String },
}

impl ReceivedEvent {
    pub fn event_type(&self) -> &str {
        match self {
            Self::Task(event) => &event.event_type,
            Self::Other { event_type } => event_type,
            Self::SinkTest { .. } => SINK_TEST_EVENT,
        }
    }
}
