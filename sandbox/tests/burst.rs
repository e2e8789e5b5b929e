//! A burst of concurrent requests to one function of the local stack, as Lambda Managed
//! Instances deliver them to one execution environment: every answer is the one the same
//! request gets alone.

mod common;

use common::{Http, options, start};
use futures_util::future::join_all;
use sandbox::demo::{DOCS_READER, NEWCOMER, RETURNING, VIP};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_concurrent_decisions_gets_the_answers_each_gets_alone() {
    let running = start(sandbox::Options {
        seed_demo: true,
        ..options()
    })
    .await;
    let http = Http::new();
    let customers = [DOCS_READER, NEWCOMER, VIP, RETURNING];
    let decide = |phone: &'static str| {
        let (http, running) = (&http, &running);
        async move {
            let answer = http
                .function(running, "route-decision", &[("From", phone)])
                .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            (
                answer.body["transition"].clone(),
                answer.body["rule"].clone(),
            )
        }
    };
    let mut alone: Vec<(Value, Value)> = Vec::new();
    for phone in customers {
        alone.push(decide(phone).await);
    }

    // 64 at once: 16 for each demo customer, interleaved.
    let burst = join_all((0..64).map(|i| decide(customers[i % customers.len()]))).await;

    for (i, answer) in burst.iter().enumerate() {
        assert_eq!(answer, &alone[i % customers.len()], "request {i}");
    }
}
