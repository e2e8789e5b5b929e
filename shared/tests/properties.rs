//! Property tests on every decoder: whatever arrives, no panic, only the documented errors.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use studio_router::adapters::memory::MemoryProfiles;
use studio_router::adapters::secrets::{Secret, SecretCell};
use studio_router::domain::engagement::ReceivedEvent;
use studio_router::domain::engagement::{Mapped, Mapping, Schema};
use studio_router::domain::identity::{Customer, Identifier, normalise_email, normalise_phone};
use studio_router::domain::operations::route_decision::RouteDecision;
use studio_router::domain::ports::NoUpdates;
use studio_router::domain::rules::{DEFAULT_RULES, Facts, RuleSet};
use studio_router::domain::timestamps::Timestamp;
use studio_router::edge::Edge;
use studio_router::edge::auth::{Authenticator, sign};
use studio_router::edge::invocation::Invocation;
use studio_router::edge::taskrouter;

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("+15555550100"),
            Just("whatsapp:+447700900123"),
            Just("task.wrapup"),
            Just("{\"from\":\"+15555550100\"}")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the decoders look for, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "From",
            "phone",
            "email",
            "user_id",
            "identifier",
            "traits",
            "channel",
            "include",
            "class",
            "limit",
            "warmup",
            "source",
            "detail-type",
            "requestContext",
            "EventType",
            "TaskSid",
            "TaskAttributes",
            "TaskAge",
            "Timestamp",
            "TimestampMs",
            "WorkerSid",
            "specversion",
            "type",
            "time",
            "data",
            "payload",
            "eventtype",
            "task_sid",
            "task_attributes",
            "customerAddress",
            "direction",
            "channelType",
            "topic",
            "sentiment",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_]{1,10}",
    ]
}

/// Payload 2.0 events with arbitrary methods, headers, queries and bodies.
fn http_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "", "PATCH"]),
        ".{0,40}",
        prop::collection::vec((prop::sample::select(vec!["content-type", "authorization", "x-twilio-signature", "host", "x-other"]), ".{0,40}"), 0..5),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
        any::<bool>(),
        prop::sample::select(vec!["application/json", "application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8", ""]),
    )
        .prop_map(|(method, query, headers, body, base64, content_type)| {
            let mut header_map = Map::new();
            header_map.insert("content-type".into(), json!(content_type));
            for (name, value) in headers {
                header_map.insert(name.into(), json!(value));
            }
            let mut event = json!({
                "version": "2.0", "rawPath": "/", "rawQueryString": query, "headers": header_map,
                "requestContext": {"domainName": "abc.lambda-url.us-east-1.on.aws", "http": {"method": method}},
                "isBase64Encoded": base64,
            });
            if let Some(body) = body {
                event["body"] = json!(if base64 { STANDARD.encode(&body) } else { String::from_utf8_lossy(&body).into_owned() });
            }
            event
        })
}

fn route_decision_edge() -> Edge<RouteDecision<MemoryProfiles>> {
    let rules = RuleSet::compile(DEFAULT_RULES).expect("default rules");
    let given = |name, value| Secret::new(value).map(|secret| SecretCell::given(name, secret));
    let auth = Authenticator::new(
        given("TWILIO_AUTH_TOKEN", "token"),
        None,
        given("PROXY_SHARED_SECRET", "secret"),
        false,
    );
    Edge::new(
        RouteDecision {
            profiles: MemoryProfiles::new(),
            rules: std::sync::Arc::new(rules.into()),
            updates: NoUpdates,
            deadline: Duration::from_millis(200),
            phone_identifier: "phone".into(),
            response_traits: std::sync::Arc::default(),
            shadow: Default::default(),
        },
        auth,
    )
}

/// The events a TaskRouter, Event Streams or direct payload holds, read.
fn events(input: Value) -> Vec<ReceivedEvent> {
    let items = match input {
        Value::Array(items) => items,
        single => vec![single],
    };
    items
        .into_iter()
        .filter_map(|item| taskrouter::decode(item).0.ok())
        .collect()
}

/// Every message the events map to, under both schemas, checked against Segment's limits.
fn check_messages(events: Vec<ReceivedEvent>) -> Result<(), TestCaseError> {
    for event in events {
        let ReceivedEvent::Task(event) = event else {
            continue;
        };
        if let Some(at) = &event.occurred_at {
            prop_assert!(Timestamp::parse_rfc3339(at).is_some(), "{}", at);
        }
        for mapping in [Mapping::default(), Mapping::for_schema(Schema::Current)] {
            if let Ok(Mapped::Track(message)) = mapping.map(&event) {
                prop_assert!(
                    !message.message_id.is_empty() && message.message_id.len() < 100,
                    "messageId {}",
                    message.message_id
                );
                prop_assert!(message.user_id.is_some() || message.anonymous_id.is_some());
                // Encoding never panics; over 32 KB it is refused by name.
                let _ = message.encode();
            }
        }
    }
    Ok(())
}

/// Any number, as JSON or as the text a form sends, across the whole range.
fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just(253_402_300_799_999_u64),
            Just(253_402_300_800_000),
            Just(u64::MAX),
            Just(0),
            Just(99_999_999_999),
            Just(100_000_000_000)
        ]
        .prop_map(Value::from),
        any::<u64>().prop_map(|n| Value::String(n.to_string())),
        any::<i64>().prop_map(|n| Value::String(n.to_string())),
        any::<f64>().prop_map(|n| Value::String(n.to_string())),
        Just(Value::String("1e300".into())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_json_event_is_classified_without_panicking(event in json_value()) {
        let _ = Invocation::decode(event, 64 * 1024);
    }

    #[test]
    fn any_http_event_gets_a_documented_status(event in http_event()) {
        let edge = route_decision_edge();
        let answer = runtime().block_on(edge.handle(event, None));
        let status = answer["statusCode"].as_u64().unwrap_or(0);
        prop_assert!([200, 400, 401, 405, 413, 414].contains(&status), "status {} in {}", status, answer);
        prop_assert_eq!(&answer["headers"]["content-type"], "application/json");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        if status != 200 {
            prop_assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{}", body);
        }
    }

    #[test]
    fn any_direct_invoke_gets_a_decision_or_a_documented_error(fields in json_value()) {
        let edge = route_decision_edge();
        let answer = runtime().block_on(edge.handle(fields, None));
        let is_decision = answer["transition"].is_string();
        let is_error = answer["error"]["code"].is_string();
        let is_warm = answer == json!({"warm": true});
        // Something with a requestContext is taken for a (malformed) HTTP event: an HTTP 400.
        let is_http_400 = answer["statusCode"] == 400;
        prop_assert!(is_decision || is_error || is_warm || is_http_400, "{}", answer);
    }

    #[test]
    fn signatures_of_any_input_are_computed(token in ".{0,30}", url in ".{0,60}", params in prop::collection::vec((".{0,10}", ".{0,10}"), 0..6)) {
        let a = sign(&token, &url, &params);
        let mut reversed = params.clone();
        reversed.reverse();
        prop_assert_eq!(a.len(), 28);
        prop_assert_eq!(a, sign(&token, &url, &reversed), "parameter order does not matter");
    }

    #[test]
    fn a_normalised_phone_is_e164_and_stays_put(raw in ".{0,30}") {
        if let Some(phone) = normalise_phone(&raw) {
            prop_assert!(phone.starts_with('+'));
            let digits = &phone[1..];
            prop_assert!((8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0'), "{}", phone);
            prop_assert_eq!(normalise_phone(&phone), Some(phone.clone()));
        }
        if let Some(email) = normalise_email(&raw) {
            prop_assert_eq!(email.to_lowercase(), email.clone());
        }
    }

    #[test]
    fn phone_like_input_is_normalised(prefix in prop::sample::select(vec!["", "whatsapp:", "sms:", "tel:", "WhatsApp:"]), country in 1_u32..999, rest in 1_000_000_u64..99_999_999_999) {
        let number = format!("+{country}{rest}");
        if (9..=16).contains(&number.len()) {
            prop_assert_eq!(normalise_phone(&format!("{prefix}{number}")), Some(number));
        }
    }

    #[test]
    fn identifiers_from_any_fields_encode_safely(fields in prop::collection::btree_map(field_name(), json_value(), 0..6)) {
        let fields: Map<String, Value> = fields.into_iter().collect();
        if let Ok(Customer::Identified(identifier)) = Identifier::from_fields(&fields, "phone") {
            let segment = identifier.path_segment();
            prop_assert!(segment.chars().all(|c| c.is_ascii_alphanumeric() || "-._~:%".contains(c)), "{}", segment);
            prop_assert!(!identifier.masked().contains(identifier.value()) || identifier.value().len() <= 4);
        }
    }

    #[test]
    fn any_taskrouter_or_event_streams_payload_maps_without_panicking(input in json_value()) {
        check_messages(events(input))?;
    }

    #[test]
    fn any_number_in_any_time_or_count_field_is_read_or_refused(
        event_type in prop::sample::select(vec!["reservation.wrapup", "task.completed", "task.wrapup", "worker.activity.update"]),
        field in prop::sample::select(vec!["TimestampMs", "Timestamp", "TaskAge", "timestamp_ms", "timestamp", "task_age"]),
        value in any_number(),
        age in any_number(),
    ) {
        let input = json!({"EventType": event_type, "TaskSid": "WT1", "TaskAge": age,
            "TaskAttributes": "{\"from\": \"+15555550100\"}", field: value});
        check_messages(events(input))?;
    }

    #[test]
    fn any_cloud_event_time_is_read_or_refused(time in prop_oneof![".{0,40}".boxed(), "[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})".boxed()], age in any_number()) {
        let input = json!([{"specversion": "1.0", "type": "com.twilio.taskrouter.reservation.wrapup", "time": time,
            "data": {"payload": {"task_sid": "WT1", "task_age": age, "worker_sid": "WK1", "task_attributes": "{\"from\": \"+15555550100\"}"}}}]);
        check_messages(events(input))?;
    }

    #[test]
    fn callbacks_with_any_task_fields_map_within_segments_limits(
        event_type in prop::sample::select(vec!["task.wrapup", "reservation.wrapup", "task.completed", "reservation.completed", "task.created"]),
        task_sid in ".{0,120}",
        attributes in json_value(),
        age in ".{0,8}",
    ) {
        let input = json!({"EventType": event_type, "TaskSid": task_sid, "TaskAttributes": attributes.to_string(), "TaskAge": age});
        check_messages(events(input))?;
    }

    #[test]
    fn any_rules_text_compiles_or_fails_with_a_message(text in ".{0,200}") {
        if let Err(error) = RuleSet::compile(&text) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn any_condition_compiles_or_fails_and_evaluates_without_panicking(
        condition in "[a-z_.()<>=!&| 0-9'\"\\[\\]+-]{0,40}",
        traits in prop::collection::btree_map(field_name(), json_value(), 0..5),
    ) {
        let rules = json!({"rules": [{"name": "r", "when": condition, "transition": "agent", "attributes": {"x": condition}}],
                           "default": "bot", "on_error": "agent"}).to_string();
        if let Ok(rules) = RuleSet::compile(&rules) {
            let traits: Map<String, Value> = traits.into_iter().collect();
            let verdict = rules.evaluate(&Facts { traits: &traits, channel: Some("sms") });
            prop_assert!(verdict.transition == "agent" || verdict.transition == "bot");
        }
    }
}
