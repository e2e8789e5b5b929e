//! A Kinesis batch, as an event source mapping delivers it: each record's data decoded on
//! its own.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::InvocationError;

/// A Kinesis event as an event source mapping delivers it, read only by a function that reads
/// a stream (the others answer that they do not, and never link the decoder).
#[derive(Debug)]
pub struct StreamBatch(pub(super) Value);

/// One Kinesis record: its sequence number (how a partial batch response names it) and its
/// data, or `None` when the data is not base64 (a record that can never be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub sequence_number: String,
    pub data: Option<Vec<u8>>,
}

/// The parts of a Kinesis event the function reads. Each record's data is decoded on its
/// own, so that one record that is not base64 spoils only itself, not its batch.
#[derive(serde::Deserialize)]
struct KinesisEvent {
    #[serde(rename = "Records")]
    records: Vec<KinesisEnvelope>,
}

#[derive(serde::Deserialize)]
struct KinesisEnvelope {
    kinesis: KinesisRecord,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisRecord {
    sequence_number: String,
    data: String,
}

impl StreamBatch {
    /// The records, in the order the shard holds them. An event without a sequence number
    /// for every record cannot be answered record by record: it is an error.
    pub fn records(self) -> Result<Vec<StreamRecord>, InvocationError> {
        let event: KinesisEvent = serde_json::from_value(self.0)
            .map_err(|e| InvocationError::MalformedStream(e.to_string()))?;
        Ok(event
            .records
            .into_iter()
            .map(|KinesisEnvelope { kinesis }| StreamRecord {
                data: STANDARD.decode(kinesis.data.trim()).ok(),
                sequence_number: kinesis.sequence_number,
            })
            .collect())
    }
}

/// Whether an event is a stream's batch: `{"Records": [{"eventSource": "aws:kinesis", ...}]}`.
pub fn is_stream(event: &Value) -> bool {
    event.as_object().is_some_and(is_kinesis)
}

pub(super) fn is_kinesis(object: &Map<String, Value>) -> bool {
    object
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|record| record.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:kinesis")
}
