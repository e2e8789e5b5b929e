//! wrap-up-ingest's work: each received event mapped to the track message Segment keeps
//! (or ignored, with the reason), and the messages delivered to the sink by a deadline, with
//! what it accepted counted.

use std::time::Duration;

use crate::domain::arrival::Arrival;
use crate::domain::engagement::{Mapped, Mapping, Moment, ReceivedEvent};
use crate::domain::ports::{Delivered, EventSink, TrackingError, Undelivered};
use crate::domain::track_message::EncodedMessage;
use crate::support::metrics::{self, Counter};

/// How many skipped events a delivery logs one by one; the rest are counted.
pub const LOGGED_SKIPS: usize = 20;

pub struct WrapUpIngest<S> {
    pub sink: S,
    pub mapping: Mapping,
    /// The budget for a TaskRouter callback or a direct invoke (`DELIVERY_DEADLINE_MS`).
    pub deadline: Duration,
    /// The budget for an Event Streams delivery (`EVENT_STREAMS_DEADLINE_MS`, at most 4.5 s).
    pub event_streams_deadline: Duration,
}

/// A sink that gave no answer before the deadline accepted nothing.
fn timed_out() -> Undelivered {
    Undelivered {
        error: TrackingError::NotAccepted {
            attempts: 0,
            last_problem: "no answer before the deadline".into(),
        },
        accepted: 0,
    }
}

/// One delivery's events, read and mapped one at a time: a large Event Streams batch is
/// never held as a whole tree of JSON, only as its text and the messages it becomes.
#[derive(Default)]
pub struct EventsRead {
    pub received: usize,
    pub ignored: usize,
    pub skipped: usize,
    /// Whether any event came from Event Streams, whose webhook sink waits only 5 s.
    pub from_event_streams: bool,
    pub messages: Vec<EncodedMessage>,
}

impl EventsRead {
    /// An event of a batch that can never be delivered: logged (the first few) and skipped,
    /// so that it neither holds back the others nor, redelivered, every later delivery.
    pub fn skip(&mut self, problem: &str) {
        self.skipped += 1;
        if self.skipped <= LOGGED_SKIPS {
            tracing::warn!(problem = %problem, "event skipped");
        }
    }
}

impl<S: EventSink> WrapUpIngest<S> {
    /// Sends `messages` to the sink by `deadline`, and counts what it accepted. The sink is
    /// told the deadline; the timeout is what guarantees it, whatever the sink does.
    pub async fn deliver(
        &self,
        messages: &[EncodedMessage],
        deadline: std::time::Instant,
    ) -> Result<Delivered, Undelivered> {
        let sent = tokio::time::timeout_at(deadline.into(), self.sink.send(messages, deadline))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        let accepted = sent
            .as_ref()
            .map_or_else(|u| u.accepted, |_| messages.len());
        count_delivery(accepted, messages.len() - accepted);
        sent
    }

    /// Adds one event to the tally; an event that can never be delivered is the problem's
    /// text (the caller decides whether it fails the delivery or is skipped).
    pub fn take(
        &self,
        tally: &mut EventsRead,
        (received, cloud_event): (Result<ReceivedEvent, String>, bool),
    ) -> Result<(), String> {
        tally.received += 1;
        tally.from_event_streams |= cloud_event;
        let event = match received? {
            ReceivedEvent::Task(event) => event,
            ReceivedEvent::Other { event_type } => {
                tally.ignored += 1;
                if let Some(reason) = Moment::superseded(&event_type) {
                    tracing::info!(event_type = %event_type, reason, "event ignored");
                }
                return Ok(());
            }
            ReceivedEvent::SinkTest { test_id } => {
                tally.ignored += 1;
                tracing::info!(
                    test_id = %test_id,
                    "Event Streams sink test received: validate the sink with this test_id"
                );
                return Ok(());
            }
        };
        match self.mapping.map(&event).map_err(|e| e.to_string())? {
            Mapped::Track(message) => {
                let encoded = message.encode().map_err(|e| e.to_string())?;
                tally.messages.push(encoded);
            }
            Mapped::Ignored(reason) => {
                tally.ignored += 1;
                tracing::info!(event_type = %event.event_type, reason, "event ignored");
            }
        }
        Ok(())
    }

    /// A callback's or a webhook delivery's events, once read: sent by the deadline the
    /// sender keeps (Event Streams' 5 s for its webhook sink, the function's own otherwise),
    /// `Ok` only when the sink accepted every one.
    pub async fn deliver_read(
        &self,
        tally: EventsRead,
        arrival: &Arrival,
    ) -> Result<(), Undelivered> {
        let EventsRead {
            received,
            ignored,
            skipped,
            from_event_streams,
            messages,
        } = tally;
        metrics::add(Counter::WrapUpsSkipped, skipped as u64);
        if messages.is_empty() {
            tracing::info!(received, ignored, skipped, sent = 0, "wrap-up delivery");
            return Ok(());
        }
        let budget = if from_event_streams {
            self.event_streams_deadline
        } else {
            self.deadline
        };
        let latency_us = || arrival.at.elapsed().as_micros() as u64;
        match self.deliver(&messages, arrival.deadline(budget)).await {
            Ok(delivered) => {
                tracing::info!(
                    received,
                    ignored,
                    skipped,
                    sent = delivered.messages,
                    requests = delivered.requests,
                    retries = delivered.retries,
                    latency_us = latency_us(),
                    "wrap-up delivery"
                );
                Ok(())
            }
            Err(error) => {
                tracing::error!(received, error = %error, latency_us = latency_us(), "wrap-up delivery not accepted");
                Err(error)
            }
        }
    }
}

/// Wrap-ups Segment accepted, and those it did not (their sender delivers them again).
fn count_delivery(delivered: usize, failed: usize) {
    metrics::add(Counter::WrapUpsDelivered, delivered as u64);
    metrics::add(Counter::WrapUpsFailed, failed as u64);
}
