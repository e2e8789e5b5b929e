//! The local stack end to end: events in, traits update, decisions change; demo branches;
//! persistence across a restart.

mod common;

use common::{Http, TempDb, options, start};
use serde_json::json;

const NEWCOMER: &str = "+15555550177";

#[tokio::test(flavor = "multi_thread")]
async fn wrap_ups_and_page_views_flip_a_newcomer_from_bot_to_agent() {
    let running = start(options()).await;
    let http = Http::new();
    http.track(
        &running,
        "/v1/identify",
        &json!({"anonymousId": "web-7", "traits": {"phone": NEWCOMER, "first_name": "Kim"}}),
    )
    .await;

    // GIVEN a newcomer: the bot
    let first = http
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(
        (
            first.status,
            first.body["transition"].clone(),
            first.body["rule"].clone()
        ),
        (200, json!("bot"), json!("default"))
    );

    // WHEN Flex wraps up two inbound calls with the same agent (TaskRouter callbacks)
    for (task, worker) in [
        (
            "WTloop0000000000000000000000000001",
            "WK00000000000000000000000000000042",
        ),
        (
            "WTloop0000000000000000000000000002",
            "WK00000000000000000000000000000042",
        ),
    ] {
        let attributes = json!({"from": NEWCOMER, "direction": "inbound"}).to_string();
        let reply = http
            .function(
                &running,
                "wrap-up-ingest",
                &[
                    ("EventType", "reservation.wrapup"),
                    ("TaskSid", task),
                    ("WorkerSid", worker),
                    ("TaskAge", "310"),
                    ("TaskChannelUniqueName", "voice"),
                    ("TaskAttributes", &attributes),
                ],
            )
            .await;
        assert_eq!(reply.status, 204, "{}", reply.body);
    }
    // THEN the traits the guide recommends update
    let lookup = http
        .function(&running, "profile-lookup", &[("From", NEWCOMER)])
        .await;
    let traits = &lookup.body["traits"];
    assert_eq!(traits["total_inbounds"], 2);
    assert_eq!(
        traits["last_known_service_agent"],
        "WK00000000000000000000000000000042"
    );
    assert_eq!(traits["frequent_inbound_channel"], "voice");
    assert_eq!(traits["last_interaction_duration"], 310);
    // AND route-decision sends them back to that agent
    let known = http
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(known.body["rule"], "known-agent");
    assert_eq!(
        known.body["attributes"]["known_worker_sid"],
        "WK00000000000000000000000000000042"
    );

    // WHEN another newcomer reads the docs (page views linked by phone)
    let reader = "+15555550188";
    http.track(
        &running,
        "/v1/identify",
        &json!({"anonymousId": "web-8", "traits": {"phone": reader}}),
    )
    .await;
    assert_eq!(
        http.function(&running, "route-decision", &[("From", reader)])
            .await
            .body["transition"],
        "bot"
    );
    http.track(
        &running,
        "/v1/page",
        &json!({"anonymousId": "web-8", "properties": {"path": "/docs/studio"}}),
    )
    .await;
    // THEN they go to an agent
    let after = http
        .function(&running, "route-decision", &[("From", reader)])
        .await;
    assert_eq!(
        (after.body["transition"].clone(), after.body["rule"].clone()),
        (json!("agent"), json!("read-docs-recently"))
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_customers_show_every_branch() {
    let mut options = options();
    options.seed_demo = true;
    let running = start(options).await;
    assert!(running.seeded_now);
    let http = Http::new();
    let decide = |phone: &'static str| {
        let http = &http;
        let running = &running;
        async move {
            http.function(running, "route-decision", &[("From", phone)])
                .await
                .body
        }
    };
    let docs = decide(sandbox::demo::DOCS_READER).await;
    assert_eq!(
        (docs["transition"].clone(), docs["rule"].clone()),
        (json!("agent"), json!("read-docs-recently"))
    );
    let newcomer = decide(sandbox::demo::NEWCOMER).await;
    assert_eq!(
        (
            newcomer["transition"].clone(),
            newcomer["profile_found"].clone()
        ),
        (json!("bot"), json!(true))
    );
    let vip = decide(sandbox::demo::VIP).await;
    assert_eq!(
        (vip["rule"].clone(), vip["attributes"]["priority"].clone()),
        (json!("vip"), json!(100))
    );
    let returning = decide(sandbox::demo::RETURNING).await;
    assert_eq!(
        returning["attributes"]["known_worker_sid"],
        sandbox::demo::RETURNING_AGENT
    );
    let unknown = decide("+15555550199").await;
    assert_eq!(
        (
            unknown["transition"].clone(),
            unknown["profile_found"].clone()
        ),
        (json!("bot"), json!(false))
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_a_restart_and_reset_clears_it() {
    let db = TempDb::new("restart");
    let http = Http::new();
    let with_file = |reset: bool| {
        let mut options = options();
        options.data = Some(db.0.clone());
        options.reset = reset;
        options
    };

    let first = start(with_file(false)).await;
    http.track(
        &first,
        "/v1/identify",
        &json!({"userId": "u-kept", "traits": {"plan": "pro"}}),
    )
    .await;
    http.track(
        &first,
        "/v1/page",
        &json!({"userId": "u-kept", "properties": {"path": "/docs/x"}}),
    )
    .await;
    first.stop().await;

    let second = start(with_file(false)).await;
    let traits = http.traits(&second, "user_id:u-kept").await;
    assert_eq!(
        (traits["plan"].clone(), traits["docs_last_2_days"].clone()),
        (json!("pro"), json!(1))
    );
    second.stop().await;

    let third = start(with_file(true)).await;
    assert_eq!(
        http.profile(&third, "user_id:u-kept", "traits")
            .await
            .status,
        404
    );
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_decisions_are_all_correct() {
    let mut options = options();
    options.seed_demo = true;
    let running = start(options).await;
    let http = std::sync::Arc::new(Http::new());
    let url = running.function_url("route-decision");
    // (customer, expected transition, expected rule)
    let customers = [
        (sandbox::demo::DOCS_READER, "agent", "read-docs-recently"),
        (sandbox::demo::NEWCOMER, "bot", "default"),
        (sandbox::demo::VIP, "agent", "vip"),
        (sandbox::demo::RETURNING, "agent", "known-agent"),
        ("+15555550199", "bot", "default"),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (http, url) = (http.clone(), url.clone());
        let (phone, transition, rule) = customers[i % customers.len()];
        tasks.spawn(async move {
            let reply = http.post_form(&url, &[("From", phone)]).await;
            (
                reply.status,
                reply.body["transition"] == transition
                    && reply.body["rule"] == rule
                    && reply.body["fallback"] == false,
                phone,
            )
        });
    }
    let mut correct = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, right, phone) = result.expect("task");
        assert_eq!(status, 200, "{phone}");
        assert!(right, "wrong decision for {phone}");
        correct += 1;
    }
    assert_eq!(correct, 200);
    running.stop().await;
}
