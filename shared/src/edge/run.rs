//! How a function binary runs: its Tokio runtime, then the Lambda Runtime API's event loop
//! around the [`Edge`], or, when the configuration is invalid, a loop that answers every
//! invocation with that failure instead of crash-looping.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use super::{Edge, Failure, InvocationFailed, Operation};
use crate::adapters::config::{ConfigError, ProcessEnv, Startup, runtime};
use crate::edge::invocation::{Event, configuration_validation, http_response, is_stream};
use crate::support::metrics::{self, Counter};

/// A function binary's whole `main`: a Tokio runtime shaped by the concurrency Lambda asks
/// for, then [`run`]. One invocation at a time (classic Lambda, a fraction of a vCPU at
/// 128 MB) gets one thread, so the cold start pays for no worker threads; many at once
/// (Lambda Managed Instances, whole vCPUs) get one worker per core.
pub fn main<O: Operation>(
    load: fn(&Startup<'_>) -> Result<O, ConfigError>,
) -> std::process::ExitCode {
    // Quietly here: a bad value is warned about once, after logging starts (`Startup::new`).
    let concurrency = runtime::process_concurrency();
    let result = match concurrency.runtime() {
        Ok(runtime) => runtime.block_on(run(|| Edge::load(&ProcessEnv, load))),
        Err(error) => Err(error.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: {error}", O::NAME);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a function under the Lambda Runtime API: telemetry, then `load` (configuration and
/// clients, once; nothing that needs the network, which INIT may not have), then the event
/// loop: `run_concurrent`, which polls with `AWS_LAMBDA_MAX_CONCURRENCY` workers when Lambda
/// sets it above 1 and one at a time otherwise. A configuration error is logged once with
/// its reason and every invocation answers 500 `configuration_error`, instead of a crash
/// loop that Studio would only see as timeouts.
pub async fn run<O, L>(load: L) -> Result<(), lambda_runtime::Error>
where
    O: Operation,
    L: FnOnce() -> Result<Edge<O>, ConfigError>,
{
    runtime::start_logging(&ProcessEnv);
    match load() {
        Ok(edge) => {
            let edge = Arc::new(edge);
            lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Event>| {
                let edge = edge.clone();
                async move {
                    let deadline =
                        UNIX_EPOCH.checked_add(Duration::from_millis(event.context.deadline));
                    edge.invoke(event.payload.0, deadline)
                        .await
                        .map_err(lambda_runtime::Error::from)
                }
            }))
            .await
        }
        Err(error) => {
            tracing::error!(function = O::NAME, %error, "configuration is invalid; every request will answer 500 until it is fixed");
            let failure = Arc::new(Failure::configuration(O::NAME));
            let metrics = Arc::new(runtime::metrics_writer_despite_errors(&ProcessEnv, O::NAME));
            lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Event>| {
                let (failure, metrics) = (failure.clone(), metrics.clone());
                async move {
                    let event = event.payload.0;
                    let is_http = event.get("requestContext").is_some();
                    let body = failure.body();
                    metrics
                        .measure(async { metrics::add(Counter::ServerErrors, 1) })
                        .await;
                    // Neither a stream's batch nor AppConfig may read an answer as success:
                    // Lambda would checkpoint the records, AppConfig deploy whatever it asked
                    // about, unchecked.
                    if is_stream(&event) {
                        let failed = InvocationFailed::BatchNotDelivered((*failure).clone());
                        return Err(lambda_runtime::Error::from(failed));
                    }
                    // Nor may Segment read a delivery as written.
                    if O::FAILS_UNWRITTEN && !is_http {
                        let failed = InvocationFailed::NotWritten((*failure).clone());
                        return Err(lambda_runtime::Error::from(failed));
                    }
                    if event
                        .as_object()
                        .and_then(configuration_validation)
                        .is_some()
                    {
                        let failed =
                            InvocationFailed::ConfigurationRefused(failure.message.clone());
                        return Err(lambda_runtime::Error::from(failed));
                    }
                    Ok::<Value, lambda_runtime::Error>(if is_http {
                        http_response(500, Some(&body), &[])
                    } else {
                        body
                    })
                }
            }))
            .await
        }
    }
}
