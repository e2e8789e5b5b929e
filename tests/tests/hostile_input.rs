//! Hostile and odd input, end to end: a body the signature does not cover, what a stranger
//! can make a function spend before it is authenticated, blank secrets, values in logs,
//! times that cannot be written, events that share a moment, redirects, `Retry-After: 0`,
//! non-task events, withheld caller ids and the invocation's own deadline. The real binaries
//! under a Runtime API on 127.0.0.1.

use std::time::Duration;

use e2e::{
    Env, ExtensionStart, Received, Reply, StandIn, TWILIO_TOKEN, basic_auth,
    event_streams_delivery, fixture, function_with_secrets, http_event, signed_form_post,
    signed_json_post, studio_function, taskrouter_callback, twilio_signature, wrap_up_function,
};
use serde_json::{Value, json};

/// Half of the 128 MB template.yaml gives each function.
const HALF_THE_FUNCTION_MB: u64 = 64;

fn accepted() -> Reply {
    Reply::json(200, json!({"success": true}))
}

/// The messages of every batch Segment received, in order.
fn messages(requests: &[Received]) -> Vec<Value> {
    requests
        .iter()
        .flat_map(|r| r.json()["batch"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// What Segment keeps: the first message of each messageId.
fn kept_by_segment(requests: &[Received]) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    messages(requests)
        .into_iter()
        .filter(|m| seen.insert(m["messageId"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn assert_error(answer: &e2e::Answered, status: u64, code: &str) {
    assert_eq!(answer.status(), status, "{:?}", answer.payload);
    assert_eq!(answer.body()["error"]["code"], code, "{:?}", answer.payload);
}

/// A GET signed as Twilio signs one: over the URL alone.
fn signed_get(query: &str, body: Option<&str>) -> Value {
    let url = format!("https://{}/?{query}", e2e::FUNCTION_URL_HOST);
    let signature = twilio_signature(TWILIO_TOKEN, &url, &[]);
    http_event(
        "GET",
        query,
        &[
            ("x-twilio-signature", &signature),
            ("content-type", "application/json"),
        ],
        body,
        false,
    )
}

// ---------------------------------------------------------------------------------------
// 1. A body the signature does not cover

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_get_with_a_body_is_refused_by_every_function() {
    let victim = r#"{"identifier": "email:victim@example.com", "traits": {"vip": true}}"#;
    let segment = StandIn::always(Reply::traits(json!({"vip": true}))).await;
    for name in ["route-decision", "profile-lookup"] {
        let (runtime, _function) = studio_function(name, &segment.url(), &[]).await;
        // The signed GET alone is fine...
        let alone = runtime
            .invoke(signed_get("From=%2B15555550100", None))
            .await;
        assert_eq!(alone.status(), 200, "{name}: {:?}", alone.payload);
        // ...resent with a body it does not cover, it is refused.
        let answer = runtime
            .invoke(signed_get("From=%2B15555550100", Some(victim)))
            .await;
        assert_error(&answer, 400, "body_not_allowed");
        // So is a signed JSON POST's URL and signature, resent as GET with another body.
        let post = signed_json_post(TWILIO_TOKEN, "", r#"{"From": "+15555550100"}"#);
        let mut resent = post.clone();
        resent["requestContext"]["http"]["method"] = json!("GET");
        resent["body"] = json!(victim);
        assert_error(&runtime.invoke(resent).await, 400, "body_not_allowed");
    }
    let looked_up: Vec<String> = segment.received().iter().map(|r| r.path.clone()).collect();
    assert!(
        looked_up.iter().all(|path| !path.contains("victim")),
        "{looked_up:?}"
    );

    let tracking = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&tracking.url(), &[]).await;
    let forged = fixture("taskrouter/voice-inbound-reservation-wrapup.json").to_string();
    let answer = runtime.invoke(signed_get("x=1", Some(&forged))).await;
    assert_error(&answer, 400, "body_not_allowed");
    assert_eq!(tracking.count(), 0, "no forged track event");
}

// ---------------------------------------------------------------------------------------
// 2. What a request costs before it is authenticated, and what an accepted one may hold

/// `a&a&a&...`, `bytes` long: as many fields as the bytes allow.
fn many_fields(bytes: usize) -> String {
    "a&".repeat(bytes / 2)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_body_with_a_bogus_signature_is_refused_cheaply_by_every_function() {
    let segment = StandIn::always(accepted()).await;
    let bogus = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-twilio-signature", "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=="),
    ];
    for (name, limit) in [
        ("route-decision", 64 * 1024),
        ("profile-lookup", 16 * 1024),
        ("wrap-up-ingest", 6 * 1024 * 1024),
    ] {
        let (runtime, function) = if name == "wrap-up-ingest" {
            wrap_up_function(&segment.url(), &[]).await
        } else {
            studio_function(name, &segment.url(), &[]).await
        };
        // GIVEN a body at the function's limit made of nothing but fields
        let body = many_fields(limit);
        let answer = runtime
            .invoke(http_event("POST", "", &bogus, Some(&body), true))
            .await;
        // THEN it is refused for its field count, before any signature is computed
        assert_error(&answer, 413, "too_many_fields");
        // AND one field of the whole limit is refused by the signature, cheaply
        let one_field = format!("a={}", "x".repeat(limit - 2));
        let answer = runtime
            .invoke(http_event("POST", "", &bogus, Some(&one_field), true))
            .await;
        assert_error(&answer, 401, "unauthorized");
        // AND a body over the limit is refused before it is even decoded
        let over = "x".repeat(limit + 1024);
        let answer = runtime
            .invoke(http_event("POST", "", &bogus, Some(&over), true))
            .await;
        assert_error(&answer, 413, "body_too_large");
        // AND a query string of 300,000 fields (4.3 MB) is refused by its length
        let query = "ab=".repeat(1_433_334).replace("=ab", "&ab");
        let answer = runtime
            .invoke(http_event("GET", &query, &bogus, None, false))
            .await;
        assert_error(&answer, 414, "query_too_long");
        // AND so are 200,000 distinct short names (2 MB), which Lambda's event also carries
        // as a map of 200,000 entries, and one 1.9 MB value
        let names: Vec<String> = (0..200_000).map(|i| format!("k{i:x}=")).collect();
        for query in [names.join("&"), format!("From={}", "9".repeat(1_900_000))] {
            let answer = runtime
                .invoke(http_event("GET", &query, &bogus, None, false))
                .await;
            assert_error(&answer, 414, "query_too_long");
        }
        let peak_mb = function.peak_rss_kb() / 1024;
        println!("{name}: peak {peak_mb} MB after hostile requests at its limit");
        assert!(
            peak_mb < 40,
            "{name}: peak RSS {peak_mb} MB for requests refused before authentication"
        );
        assert_eq!(segment.count(), 0);
    }
}

/// `n` Event Streams CloudEvents, each its own task, in one delivery.
fn event_streams_batch(n: usize) -> Value {
    let template = fixture("eventstreams/reservation-wrapup.json");
    Value::Array(
        (0..n)
            .map(|i| {
                let mut event = template.clone();
                event["id"] = json!(format!("EZ{i:032}"));
                event["data"]["payload"]["task_sid"] = json!(format!("WT{i:032}"));
                event
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authenticated_delivery_at_the_limit_fits_in_half_the_functions_memory() {
    // GIVEN an Event Streams batch just under wrap-up-ingest's 6 MiB limit
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let one = event_streams_batch(1).to_string().len();
    let n = (6 * 1024 * 1024 - 1024) / one;
    let delivery = event_streams_delivery(&event_streams_batch(n));
    let body_bytes = delivery["body"].as_str().map_or(0, str::len);
    assert!(body_bytes <= 6 * 1024 * 1024, "{body_bytes} bytes");
    // WHEN it is delivered, signed
    let answer = runtime.invoke(delivery).await;
    // THEN every event reaches Segment and the peak stays under half the function's memory
    assert_eq!(answer.status(), 204, "{:?}", answer.payload);
    assert_eq!(messages(&segment.received()).len(), n);
    let peak_mb = function.peak_rss_kb() / 1024;
    println!("wrap-up-ingest: {n} events in {body_bytes} bytes, peak {peak_mb} MB");
    assert!(peak_mb < HALF_THE_FUNCTION_MB, "peak RSS {peak_mb} MB");

    // AND a form callback holds at most 256 fields
    let fields: Vec<(String, String)> = (0..256).map(|i| (format!("f{i}"), "x".into())).collect();
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &borrowed))
        .await;
    assert_error(&answer, 400, "invalid_event");
    let mut too_many = borrowed.clone();
    too_many.push(("f256", "x"));
    let answer = runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &too_many))
        .await;
    assert_error(&answer, 413, "too_many_fields");
}

// ---------------------------------------------------------------------------------------
// 3. Blank and unusable secrets

#[tokio::test(flavor = "multi_thread")]
async fn a_blank_secret_is_a_configuration_error_never_an_empty_key() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let anyone = basic_auth("anyone", "");
    for secret in [
        "",
        "   ",
        r#"{"PROXY_SHARED_SECRET": ""}"#,
        r#"{"PROXY_SHARED_SECRET": " "}"#,
    ] {
        // GIVEN a shared secret whose fetched value is blank
        let env = Env::studio(&segment.url())
            .unset("TWILIO_AUTH_TOKEN")
            .set("PROXY_SHARED_SECRET_SECRET_ID", "studio-router/proxy");
        let (runtime, _extension, function) = function_with_secrets(
            "route-decision",
            ExtensionStart::ReadyOnlyDuringInvoke,
            &[("studio-router/proxy", secret)],
            env,
        )
        .await;
        // THEN Basic base64("anyone:") is not let in: the secret is a configuration error
        let answer = runtime
            .invoke(http_event(
                "GET",
                "From=%2B15555550100",
                &[("authorization", &anyone)],
                None,
                false,
            ))
            .await;
        assert_error(&answer, 500, "configuration_error");
        let line = function.log_line("request failed").await;
        assert!(
            line["detail"]
                .as_str()
                .is_some_and(|d| d.contains("PROXY_SHARED_SECRET")),
            "{line}"
        );
        let logged = function.logs().join("\n");
        assert!(logged.contains("its value is blank"), "{logged}");
    }

    // A blank Auth Token would make signatures forgeable: a signature made with "" fails.
    let env = Env::studio(&segment.url())
        .unset("TWILIO_AUTH_TOKEN")
        .set("TWILIO_AUTH_TOKEN_SECRET_ID", "studio-router/auth-token");
    let (runtime, _extension, _function) = function_with_secrets(
        "route-decision",
        ExtensionStart::ReadyOnlyDuringInvoke,
        &[("studio-router/auth-token", "  ")],
        env,
    )
    .await;
    let forged = signed_form_post("", &[("From", "+15555550100")]);
    assert_error(&runtime.invoke(forged).await, 500, "configuration_error");
    assert_eq!(segment.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_secret_no_header_can_carry_is_refused() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    // Given in the environment: refused at start, naming the variable.
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &[("PROXY_SHARED_SECRET", "caf\u{e9}-secret")],
    )
    .await;
    assert_error(
        &runtime
            .invoke(signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100")]))
            .await,
        500,
        "configuration_error",
    );
    let line = function
        .log_line("configuration is invalid; every request will answer 500 until it is fixed")
        .await;
    assert!(
        line["error"].as_str().is_some_and(|e| e.starts_with(
            "PROXY_SHARED_SECRET is invalid: it holds characters an HTTP header cannot carry"
        )),
        "{line}"
    );
    // Fetched: a configuration error for that secret.
    let env = Env::studio(&segment.url())
        .unset("TWILIO_AUTH_TOKEN")
        .set("PROXY_SHARED_SECRET_SECRET_ID", "studio-router/proxy");
    let (runtime, _extension, _function) = function_with_secrets(
        "route-decision",
        ExtensionStart::ReadyOnlyDuringInvoke,
        &[("studio-router/proxy", "caf\u{e9}-secret")],
        env,
    )
    .await;
    let answer = runtime
        .invoke(http_event(
            "GET",
            "From=%2B15555550100",
            &[("authorization", "Bearer anything")],
            None,
            false,
        ))
        .await;
    assert_error(&answer, 500, "configuration_error");
}

// ---------------------------------------------------------------------------------------
// 4. Trait values in logs

#[tokio::test(flavor = "multi_thread")]
async fn trait_values_never_reach_the_logs_even_at_debug() {
    let rules = r#"{"rules": [
        {"name": "recent-contact", "when": "traits.last_contact - 1 > 0", "transition": "agent",
         "attributes": {"callback": "traits.last_contact + 1"}},
        {"name": "vip", "when": "traits.vip == true", "transition": "agent", "attributes": {"note": "traits.note * 2"}}],
        "default": "bot", "on_error": "agent"}"#;
    let segment = StandIn::always(Reply::traits(
        json!({"last_contact": "+15555550177", "vip": true, "note": "secret-note-value"}),
    ))
    .await;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &[("LOG_LEVEL", "debug"), ("ROUTING_RULES", rules)],
    )
    .await;
    let looked_up = runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100")]))
        .await;
    assert_eq!(looked_up.body()["rule"], "vip");
    let inline = json!({"traits": {"last_contact": "+15555550188", "vip": true, "note": "inline-note-value"}});
    assert_eq!(runtime.invoke(inline).await.payload["rule"], "vip");
    let line = function.log_line("rule condition treated as false").await;
    assert_eq!(line["rule"], "recent-contact");
    assert!(line["error"].is_string(), "{line}");
    function.log_line("attribute left out").await;
    let logged = function.logs().join("\n");
    for value in [
        "5555550177",
        "5555550188",
        "secret-note-value",
        "inline-note-value",
    ] {
        assert!(!logged.contains(value), "{value} in the logs:\n{logged}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Times that cannot be written

#[tokio::test(flavor = "multi_thread")]
async fn a_time_after_year_9999_is_an_undeliverable_event_not_a_crash() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, mut function) = wrap_up_function(&segment.url(), &[]).await;
    let good = fixture("eventstreams/reservation-wrapup.json");
    for (field, value) in [
        ("TimestampMs", json!(253_402_300_800_000_u64)),
        ("TimestampMs", json!("253402300800000")),
        ("TimestampMs", json!(1e300)),
    ] {
        // A TaskRouter callback alone: refused with a reason (TaskRouter does not redeliver).
        let mut fields = fixture("taskrouter/voice-inbound-reservation-wrapup.json");
        fields[field] = value.clone();
        let answer = runtime.invoke(fields).await;
        assert_eq!(
            answer.payload["error"]["code"], "invalid_event",
            "{field}={value}"
        );
        // In a batch: skipped and acknowledged, so a redelivery cannot block the others.
        let mut poison = good.clone();
        poison["time"] = Value::Null;
        poison["data"]["payload"]["task_sid"] = json!("WT0000000000000000000000000000bad1");
        poison["data"]["payload"]["timestamp_ms"] = value.clone();
        if let Some(object) = poison.as_object_mut() {
            object.remove("time");
        }
        let answer = runtime
            .invoke(event_streams_delivery(&json!([poison, good])))
            .await;
        assert_eq!(
            answer.status(),
            204,
            "{field}={value}: {:?}",
            answer.payload
        );
    }
    assert!(function.is_running());
    let sent = messages(&segment.received());
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|m| m["properties"]["taskSid"] == "WT0000000000000000000000000000es01")
    );
    let skipped = function.log_line("event skipped").await;
    assert!(
        skipped["problem"]
            .as_str()
            .is_some_and(|p| p.contains("not a time from 1970 to 9999")),
        "{skipped}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. Two event types naming one moment

#[tokio::test(flavor = "multi_thread")]
async fn each_moment_is_one_event_with_the_agent_whatever_the_arrival_order() {
    let reservation = fixture("taskrouter/whatsapp-inbound-reservation-wrapup.json");
    let mut task_wrapup = reservation.clone();
    task_wrapup["EventType"] = json!("task.wrapup");
    task_wrapup["ResourceType"] = json!("task");
    if let Some(fields) = task_wrapup.as_object_mut() {
        for key in ["WorkerSid", "WorkerName", "ReservationSid"] {
            fields.remove(key);
        }
    }
    let completed = fixture("taskrouter/whatsapp-inbound-task-completed.json");
    let mut reservation_completed = completed.clone();
    reservation_completed["EventType"] = json!("reservation.completed");
    reservation_completed["Timestamp"] = json!("1795000399");
    reservation_completed["WorkerSid"] = json!("WK0000000000000000000000000000aa01");

    let mut kept = Vec::new();
    for order in [
        [
            &task_wrapup,
            &reservation,
            &reservation_completed,
            &completed,
        ],
        [
            &reservation,
            &task_wrapup,
            &completed,
            &reservation_completed,
        ],
    ] {
        let segment = StandIn::always(accepted()).await;
        let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
        for event in order {
            let answer = runtime.invoke(event.clone()).await;
            assert!(
                answer.payload.get("error").is_none(),
                "{:?}",
                answer.payload
            );
        }
        kept.push(kept_by_segment(&segment.received()));
    }
    assert_eq!(kept[0], kept[1], "the same events whatever the order");
    assert_eq!(kept[0].len(), 2, "one per moment: {:#?}", kept[0]);
    assert_eq!(
        kept[0][0]["properties"]["lastKnownAgentWorkerSid"],
        "WK0000000000000000000000000000aa01"
    );
}

// ---------------------------------------------------------------------------------------
// 7. Redirects

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_segment_is_a_failure_not_an_acceptance() {
    let redirecting = StandIn::start(|request| {
        if request.path == "/v1/batch" || request.path.contains("/profiles/") {
            Reply::raw(302, "").header("location", "/elsewhere")
        } else {
            Reply::json(200, json!({"ok": true}))
        }
    })
    .await;
    let (runtime, _function) = wrap_up_function(&redirecting.url(), &[]).await;
    let answer = runtime
        .invoke(taskrouter_callback("voice-inbound-reservation-wrapup"))
        .await;
    assert_error(&answer, 502, "delivery_failed");
    assert!(
        answer.body()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("redirect")
    );
    let (runtime, _function) = studio_function("route-decision", &redirecting.url(), &[]).await;
    let answer = runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100")]))
        .await;
    assert_eq!(
        (
            answer.body()["rule"].clone(),
            answer.body()["fallback"].clone()
        ),
        (json!("on_error"), json!(true))
    );
    let followed = redirecting
        .received()
        .iter()
        .filter(|r| r.path == "/elsewhere")
        .count();
    assert_eq!(followed, 0, "no redirect was followed");
}

// ---------------------------------------------------------------------------------------
// 8. Retry-After: 0

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_zero_does_not_turn_off_the_back_off() {
    let throttling = StandIn::always(Reply::json(429, json!({})).header("retry-after", "0")).await;
    let (runtime, _function) = wrap_up_function(&throttling.url(), &[]).await;
    let answer = runtime
        .invoke(taskrouter_callback("voice-inbound-reservation-wrapup"))
        .await;
    assert_error(&answer, 502, "delivery_failed");
    let message = answer.body()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("HTTP 429"), "{message}");
    let attempts = throttling.count();
    assert!((2..=8).contains(&attempts), "{attempts} POSTs");
}

// ---------------------------------------------------------------------------------------
// 9. Events that are not about a task

#[tokio::test(flavor = "multi_thread")]
async fn events_without_a_task_are_acknowledged_and_ignored() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    let worker = signed_form_post(
        TWILIO_TOKEN,
        &[
            ("EventType", "worker.activity.update"),
            ("WorkerSid", "WK0000000000000000000000000000aa01"),
            ("WorkerActivityName", "Offline"),
        ],
    );
    assert_eq!(runtime.invoke(worker).await.status(), 204);
    let cloud = json!([{"specversion": "1.0", "type": "com.twilio.taskrouter.worker.activity.update",
        "source": "/v1/Workspaces/WS1/Workers/WK1", "id": "EZ1", "time": "2026-11-22T10:15:30.250Z",
        "data": {"payload": {"eventtype": "worker.activity.update", "worker_sid": "WK1"}}}]);
    assert_eq!(
        runtime
            .invoke(event_streams_delivery(&cloud))
            .await
            .status(),
        204
    );
    assert_eq!(segment.count(), 0);
}

// ---------------------------------------------------------------------------------------
// 10, 11. Withheld caller ids and trunk prefixes

#[tokio::test(flavor = "multi_thread")]
async fn a_withheld_caller_is_decided_as_unknown_without_a_lookup() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 9}))).await;
    let (runtime, function) = studio_function("route-decision", &segment.url(), &[]).await;
    for from in [
        "+266696687",
        "+7378742833",
        "+86282452253",
        "anonymous",
        "Restricted",
    ] {
        let answer = runtime
            .invoke(signed_form_post(TWILIO_TOKEN, &[("From", from)]))
            .await;
        assert_eq!(answer.status(), 200, "{from}");
        let body = answer.body();
        assert_eq!(
            (
                &body["transition"],
                &body["rule"],
                &body["fallback"],
                &body["profile_found"]
            ),
            (
                &json!("bot"),
                &json!("default"),
                &json!(false),
                &json!(false)
            ),
            "{from}: {body}"
        );
    }
    assert_eq!(segment.count(), 0, "never looked up");
    assert_eq!(function.log_line("decision").await["lookup"], "withheld");

    let (runtime, _function) = studio_function("profile-lookup", &segment.url(), &[]).await;
    let answer = runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &[("From", "+266696687")]))
        .await;
    assert_eq!(
        answer.body(),
        json!({"found": false, "identifier": null, "traits": {}, "withheld": true})
    );
    assert_eq!(segment.count(), 0);

    let tracking = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&tracking.url(), &[]).await;
    let mut withheld = fixture("taskrouter/voice-inbound-reservation-wrapup.json");
    withheld["TaskAttributes"] = json!(
        r#"{"from":"+266696687","caller":"+266696687","to":"+18005550000","direction":"inbound"}"#
    );
    let pairs: Vec<(String, String)> = withheld
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &borrowed))
        .await;
    assert_eq!(answer.status(), 204);
    assert_eq!(tracking.count(), 0, "no profile for all withheld callers");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trunk_zero_is_dropped_before_the_lookup() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let (runtime, _function) = studio_function("profile-lookup", &segment.url(), &[]).await;
    let answer = runtime
        .invoke(signed_form_post(
            TWILIO_TOKEN,
            &[("From", "+44 (0) 7700 900123")],
        ))
        .await;
    assert_eq!(answer.body()["identifier"], "phone:+447700900123");
    assert!(
        segment.received()[0]
            .path
            .contains("/phone:%2B447700900123/")
    );
}

// ---------------------------------------------------------------------------------------
// 12. The invocation's own deadline

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_comes_before_the_invocations_own_deadline() {
    // GIVEN a configured deadline longer than the time the invocation has left
    let hanging = StandIn::always(Reply::traits(json!({})).after(Duration::from_secs(30))).await;
    let (runtime, _function) = studio_function(
        "route-decision",
        &hanging.url(),
        &[("DECISION_DEADLINE_MS", "5000")],
    )
    .await;
    let answer = runtime
        .invoke_within(
            signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100")]),
            Duration::from_millis(1000),
        )
        .await;
    // THEN on_error answers before the invocation would be cut off
    assert_eq!(answer.body()["rule"], "on_error");
    assert!(
        answer.elapsed < Duration::from_millis(1000),
        "{:?}",
        answer.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_deliveries_of_the_worst_shapes_fit_in_half_the_functions_memory() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let signed = |body: &str| signed_json_post(TWILIO_TOKEN, "", body);
    let limit = 6 * 1024 * 1024;

    // The most events a delivery may hold, each small and deliverable, filling the limit.
    let event = |i: usize, pad: usize| {
        json!({"EventType": "task.completed", "TaskSid": format!("WT{i:032}"), "TimestampMs": 1795000000123_u64,
               "TaskAttributes": {"from": "+15555550100", "topic": "x".repeat(pad)}})
    };
    let one = event(0, 0).to_string().len() + 1;
    let pad = (limit - 1024) / 10_000 - one;
    let many: Vec<Value> = (0..10_000).map(|i| event(i, pad)).collect();
    let body = Value::Array(many).to_string();
    assert!(body.len() <= limit, "{}", body.len());
    let answer = runtime.invoke(signed(&body)).await;
    assert_eq!(answer.status(), 204, "{:?}", answer.payload);
    assert_eq!(messages(&segment.received()).len(), 10_000);

    // One more event than that: refused before any is read.
    let tiny: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    assert_error(
        &runtime
            .invoke(signed(&Value::Array(tiny).to_string()))
            .await,
        413,
        "too_many_events",
    );
    // Two million empty events in 6 MB: the same, counted without being read.
    let empties = format!("[{}{{}}]", "{},".repeat((limit - 16) / 3));
    assert_error(
        &runtime.invoke(signed(&empties)).await,
        413,
        "too_many_events",
    );
    // One object of 450,000 tiny fields: as a body, over what one event may take...
    let fields = (0..450_000)
        .map(|i| format!("\"f{i}\":0"))
        .collect::<Vec<_>>()
        .join(",");
    let object = format!("{{{fields}}}");
    assert!(object.len() < limit);
    assert_error(
        &runtime.invoke(signed(&object)).await,
        413,
        "body_too_large",
    );
    // ...and as an event of a list, skipped with the reason while the others go on.
    let sent_before = messages(&segment.received()).len();
    let list = format!("[{object},{}]", event(20_000, 0));
    let answer = runtime.invoke(signed(&list)).await;
    assert_eq!(answer.status(), 204, "{:?}", answer.payload);
    assert_eq!(messages(&segment.received()).len(), sent_before + 1);
    // A callback whose TaskAttributes is 6 MB of tiny fields: refused as no task's attributes.
    let attributes = format!(
        "{{{}}}",
        (0..250_000)
            .map(|i| format!("\"a{i}\":0"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let callback = signed_form_post(
        TWILIO_TOKEN,
        &[
            ("EventType", "task.completed"),
            ("TaskSid", "WT1"),
            ("TaskAttributes", &attributes),
        ],
    );
    let answer = runtime.invoke(callback).await;
    assert_error(&answer, 400, "invalid_event");

    let peak_mb = function.peak_rss_kb() / 1024;
    println!("wrap-up-ingest: peak {peak_mb} MB after the worst authenticated shapes at the limit");
    assert!(peak_mb < HALF_THE_FUNCTION_MB, "peak RSS {peak_mb} MB");
}
