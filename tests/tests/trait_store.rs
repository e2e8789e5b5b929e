//! The trait store end to end (issue 30): trait-sync's and route-decision's binaries against
//! dynalite (a real DynamoDB API on 127.0.0.1), Segment's Profile API stood in for, and a
//! table that hangs or fails on purpose. Without dynalite installed these tests say so and
//! pass (CI installs it and fails if it is missing).

use std::time::Duration;

use e2e::dynalite::Dynalite;
use e2e::{Env, Function, Reply, RuntimeApi, StandIn, TWILIO_TOKEN, signed_form_post};
use serde_json::{Value, json};

const PHONE: &str = "+15555550100";
const RULES: &str = r#"{"rules": [{"name": "vip", "when": "traits.vip == true", "transition": "agent"}],
    "default": "bot", "on_error": "agent"}"#;

/// An Engage computed-trait identify as Segment documents it ("Using Engage data"), at `at`.
fn identify(user_id: &str, phone: Option<&str>, traits: Value, at: &str) -> Value {
    let mut message = json!({
        "type": "identify", "userId": user_id, "messageId": format!("msg-{at}"),
        "timestamp": at, "traits": traits,
        "context": {"personas": {"computation_class": "trait", "computation_id": "tra_1",
            "computation_key": "vip", "space_id": "spa_test", "namespace": "spa_test"}},
        "integrations": {"All": false, "AWS Lambda": true}
    });
    if let Some(phone) = phone {
        message["traits"]["phone"] = json!(phone);
    }
    message
}

async fn trait_sync(dynalite: &Dynalite, extra: &[(&'static str, &str)]) -> (RuntimeApi, Function) {
    let runtime = RuntimeApi::start().await;
    let mut env = Env::default();
    for (name, value) in dynalite.env() {
        env = env.set(name, value);
    }
    let function = Function::start("trait-sync", &runtime, env.with(extra).vars()).await;
    (runtime, function)
}

/// route-decision reading the table at `endpoint` (dynalite's, or a stand-in's).
async fn route_decision(
    dynalite: &Dynalite,
    endpoint: &str,
    segment: &StandIn,
    extra: &[(&'static str, &str)],
) -> (RuntimeApi, Function) {
    let runtime = RuntimeApi::start().await;
    let mut env = Env::studio(&segment.url()).set("ROUTING_RULES", RULES);
    for (name, value) in dynalite.env() {
        env = env.set(name, value);
    }
    let env = env.set("AWS_ENDPOINT_URL_DYNAMODB", endpoint).with(extra);
    let function = Function::start("route-decision", &runtime, env.vars()).await;
    (runtime, function)
}

fn call_from(phone: &str) -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", phone), ("Body", "hello")])
}

fn vip(item: &Option<Value>) -> Value {
    item.as_ref()
        .map_or(Value::Null, |item| item["traits"]["M"]["vip"].clone())
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(dynalite),
    ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
)]
async fn a_decision_on_a_synced_customer_makes_no_profile_api_request() {
    let Some(dynalite) = Dynalite::start().await else {
        return;
    };
    let segment = StandIn::always(Reply::traits(json!({"vip": false}))).await;
    let (sync, _trait_sync) = trait_sync(&dynalite, &[]).await;
    let delivered = sync
        .invoke(identify(
            "u-42",
            Some(PHONE),
            json!({"vip": true}),
            "2026-12-01T10:00:00.000Z",
        ))
        .await;
    assert!(!delivered.failed, "{:?}", delivered.payload);
    assert_eq!(delivered.payload["keys"], 2, "{}", delivered.payload);
    let item = dynalite.item("phone:+15555550100").await;
    assert_eq!(vip(&item), json!({"BOOL": true}));
    assert!(dynalite.item("user_id:u-42").await.is_some());

    let (studio, decisions) = route_decision(&dynalite, &dynalite.endpoint(), &segment, &[]).await;
    let answer = studio.invoke(call_from(PHONE)).await;
    assert_eq!(answer.status(), 200, "{:?}", answer.payload);
    let body = answer.body();
    assert_eq!(
        (&body["rule"], &body["profile_found"]),
        (&json!("vip"), &json!(true)),
        "{body}"
    );
    assert_eq!(segment.count(), 0, "the Profile API was asked");
    assert_eq!(body["traits_from"], "store", "{body}");
    let line = decisions.log_line("decision").await;
    assert_eq!(line["traits_from"], "store", "{line}");

    // A customer the table does not hold goes to the Profile API, as before.
    let miss = studio.invoke(call_from("+15555550199")).await.body();
    assert_eq!(
        (&miss["rule"], &miss["profile_found"]),
        (&json!("default"), &json!(true)),
        "{miss}"
    );
    assert_eq!(segment.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(dynalite),
    ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
)]
async fn the_newer_delivery_wins_in_either_order_and_a_repeat_changes_nothing() {
    let Some(dynalite) = Dynalite::start().await else {
        return;
    };
    let (sync, _function) = trait_sync(&dynalite, &[]).await;
    let older = |phone| {
        identify(
            "u-1",
            Some(phone),
            json!({"vip": false, "plan": "gold"}),
            "2026-12-01T10:00:00.000Z",
        )
    };
    let newer = |phone| {
        identify(
            "u-1",
            Some(phone),
            json!({"vip": true}),
            "2026-12-01T10:00:05.000Z",
        )
    };
    for (phone, first, second) in [
        ("+15555550101", older("+15555550101"), newer("+15555550101")),
        ("+15555550102", newer("+15555550102"), older("+15555550102")),
    ] {
        assert!(!sync.invoke(first).await.failed);
        assert!(!sync.invoke(second).await.failed);
        let item = dynalite.item(&format!("phone:{phone}")).await;
        assert_eq!(vip(&item), json!({"BOOL": true}), "{phone}: {item:?}");
        // The older delivery still brings the trait the newer one did not carry.
        assert_eq!(
            item.as_ref().map(|i| i["traits"]["M"]["plan"].clone()),
            Some(json!({"S": "gold"}))
        );
    }
    let key = "phone:+15555550102";
    let before = dynalite.item(key).await;
    let repeat = sync.invoke(newer("+15555550102")).await;
    assert_eq!(repeat.payload["written"], 0, "{}", repeat.payload);
    assert_eq!(
        dynalite.item(key).await,
        before,
        "a repeat rewrote the item"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(dynalite),
    ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
)]
async fn a_slow_or_failing_table_costs_a_decision_nothing_but_its_budget() {
    let Some(dynalite) = Dynalite::start().await else {
        return;
    };
    let segment = StandIn::always(Reply::traits(json!({"vip": true}))).await;
    let hanging = StandIn::always(Reply::json(200, json!({})).after(Duration::from_secs(30))).await;
    let failing = StandIn::always(Reply::json(
        500,
        json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}),
    ))
    .await;
    for table in [&hanging, &failing] {
        let (studio, decisions) = route_decision(
            &dynalite,
            &table.url(),
            &segment,
            &[
                ("TRAIT_STORE_BUDGET_MS", "150"),
                ("DECISION_DEADLINE_MS", "2500"),
            ],
        )
        .await;
        let before = segment.count();
        let answer = studio.invoke(call_from(PHONE)).await;
        let body = answer.body();
        assert_eq!(
            (&body["rule"], &body["fallback"]),
            (&json!("vip"), &json!(false)),
            "{body}"
        );
        assert!(
            answer.elapsed < Duration::from_millis(1500),
            "{:?}",
            answer.elapsed
        );
        assert_eq!(segment.count(), before + 1);
        let line = decisions.log_line("decision").await;
        assert_eq!(line["traits_from"], "profile_api", "{line}");
        assert!(table.count() >= 1, "the table was never asked");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(dynalite),
    ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
)]
async fn a_throttled_or_hung_write_fails_the_delivery_within_segments_five_seconds() {
    let Some(dynalite) = Dynalite::start().await else {
        return;
    };
    let throttled = StandIn::always(Reply::json(
        400,
        json!({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
               "message": "The level of configured provisioned throughput for the table was exceeded."}),
    ))
    .await;
    let hanging = StandIn::always(Reply::json(200, json!({})).after(Duration::from_secs(30))).await;
    for table in [&throttled, &hanging] {
        let (sync, function) =
            trait_sync(&dynalite, &[("AWS_ENDPOINT_URL_DYNAMODB", &table.url())]).await;
        let answer = sync
            .invoke(identify(
                "u-9",
                Some(PHONE),
                json!({"vip": true}),
                "2026-12-01T10:00:00Z",
            ))
            .await;
        assert!(
            answer.failed,
            "a failed write answered success: {}",
            answer.payload
        );
        assert!(
            answer.elapsed < Duration::from_secs(5),
            "{:?}",
            answer.elapsed
        );
        let text = function.logs().join("\n");
        assert!(
            !text.contains("5555550100"),
            "a phone number reached the logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(dynalite),
    ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
)]
async fn deliveries_that_cannot_be_written_are_acknowledged_without_a_write() {
    let Some(dynalite) = Dynalite::start().await else {
        return;
    };
    let (sync, function) = trait_sync(&dynalite, &[]).await;
    let at = "2026-12-01T10:00:00Z";
    let mut no_identifier = identify("", None, json!({"vip": true}), at);
    no_identifier.as_object_mut().map(|m| m.remove("userId"));
    let mut bad_time = identify("u-5", Some(PHONE), json!({"vip": true}), at);
    bad_time["timestamp"] = json!("yesterday");
    let mut not_engage = identify("u-5", Some(PHONE), json!({"vip": true}), at);
    not_engage["context"]
        .as_object_mut()
        .map(|c| c.remove("personas"));
    let no_traits = identify("u-5", None, json!({}), at);
    for delivery in [no_identifier, bad_time, not_engage, no_traits] {
        let answer = sync.invoke(delivery).await;
        assert!(!answer.failed, "{}", answer.payload);
        assert_eq!(answer.payload["written"], 0, "{}", answer.payload);
    }
    assert_eq!(dynalite.item("phone:+15555550100").await, None);
    assert_eq!(
        function
            .log_lines("delivery acknowledged without a write")
            .len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(dynalite),
    ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
)]
async fn an_eventbridge_event_and_a_delivery_without_a_phone_reach_the_phones_key() {
    let Some(dynalite) = Dynalite::start().await else {
        return;
    };
    // Segment's profile of u-7 holds the phone the delivery does not carry.
    let segment = StandIn::start(|request| {
        if request.path.ends_with("/external_ids") {
            Reply::json(200, json!({"data": [
                {"type": "user_id", "id": "u-7", "source_id": "src", "collection": "users", "created_at": "2026-01-01T00:00:00Z", "encoding": "none"},
                {"type": "phone", "id": "+15555550107", "source_id": "src", "collection": "users", "created_at": "2026-01-01T00:00:00Z", "encoding": "none"}
            ], "cursor": {"url": "", "has_more": false, "next": ""}}))
        } else {
            Reply::profile_not_found()
        }
    })
    .await;
    let (sync, _function) = trait_sync(
        &dynalite,
        &[
            ("SEGMENT_SPACE_ID", "spa_test"),
            ("SEGMENT_PROFILE_API_TOKEN", e2e::PROFILE_TOKEN),
            ("SEGMENT_PROFILE_API_URL", &segment.url()),
        ],
    )
    .await;
    let detail = identify("u-7", None, json!({"vip": true}), "2026-12-01T10:00:00Z");
    let event = json!({"version": "0", "id": "e-1", "detail-type": "identify",
        "source": "aws.partner/segment.com/src", "account": "123456789012",
        "time": "2026-12-01T10:00:01Z", "region": "us-east-1", "resources": [], "detail": detail});
    let answer = sync.invoke(event).await;
    assert!(!answer.failed, "{}", answer.payload);
    assert_eq!(answer.payload["keys"], 2, "{}", answer.payload);
    assert_eq!(
        vip(&dynalite.item("phone:+15555550107").await),
        json!({"BOOL": true})
    );
    assert_eq!(segment.count(), 1);
    assert!(
        segment.received()[0]
            .path
            .ends_with("/user_id:u-7/external_ids")
    );
}

/// The adapter on its own against dynalite: the read-modify-write under a race, an expired
/// item, and a trait it cannot read, each as DynamoDB itself would store them.
mod adapter {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use e2e::dynalite::{Dynalite, TABLE};
    use serde_json::{Map, Value, json};
    use studio_router::adapters::dynamodb::{
        AwsCredentials, DynamoConfig, DynamoTraitStore, Signer,
    };
    use studio_router::adapters::http_client::HttpClient;
    use studio_router::domain::identity::{Customer, Identifier};
    use studio_router::domain::ports::TraitStore;
    use studio_router::domain::timestamps::Timestamp;

    fn store(dynalite: &Dynalite) -> DynamoTraitStore {
        let config = DynamoConfig {
            table: TABLE.to_owned(),
            endpoint: dynalite.endpoint(),
            signer: Signer::new(
                AwsCredentials {
                    access_key_id: "AKIDEXAMPLE".into(),
                    secret_access_key: "secret".into(),
                    session_token: None,
                },
                "us-east-1".into(),
            ),
            ttl: Duration::from_secs(86_400),
        };
        DynamoTraitStore::new(config, HttpClient::new(Duration::from_secs(1))).expect("a store")
    }

    fn user(id: &str) -> Identifier {
        let fields = json!({"user_id": id});
        match Identifier::from_fields(fields.as_object().expect("fields"), "phone") {
            Ok(Customer::Identified(identifier)) => identifier,
            other => panic!("{other:?}"),
        }
    }

    fn traits(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms).expect("a time")
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(4)
    }

    #[tokio::test(flavor = "multi_thread")]
    #[cfg_attr(
        not(dynalite),
        ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
    )]
    async fn concurrent_writes_to_one_key_all_land() {
        let Some(dynalite) = Dynalite::start().await else {
            return;
        };
        let store = Arc::new(store(&dynalite));
        let writes: Vec<_> = (0..8u64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let delivery = traits(json!({format!("t{i}"): i}));
                    store
                        .write(&user("u-race"), &delivery, at(1_000 + i), soon())
                        .await
                })
            })
            .collect();
        for write in writes {
            let written = write.await;
            assert!(matches!(written, Ok(Ok(_))), "a write failed: {written:?}");
        }
        let item = dynalite.item("user_id:u-race").await.expect("an item");
        let names = item["traits"]["M"].as_object().map_or(0, Map::len);
        assert_eq!(names, 8, "a lost race dropped a trait: {item}");
        assert_eq!(item["version"], json!({"N": "8"}));
    }

    #[tokio::test(flavor = "multi_thread")]
    #[cfg_attr(
        not(dynalite),
        ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
    )]
    async fn an_expired_item_starts_afresh_and_an_unreadable_trait_is_kept() {
        let Some(dynalite) = Dynalite::start().await else {
            return;
        };
        let store = store(&dynalite);
        // Past its expiry, not yet deleted (TTL deletes within days): a miss, then rewritten.
        dynalite
            .put(
                json!({"id": {"S": "user_id:u-old"}, "traits": {"M": {"old": {"N": "1"}}},
                "at": {"M": {"old": {"N": "5"}}}, "expires_at": {"N": "1"}, "version": {"N": "3"}}),
            )
            .await;
        assert_eq!(store.read(&user("u-old"), soon()).await, Ok(None));
        store
            .write(
                &user("u-old"),
                &traits(json!({"vip": true})),
                at(1_000),
                soon(),
            )
            .await
            .expect("written");
        let item = dynalite.item("user_id:u-old").await.expect("an item");
        assert_eq!(item["traits"]["M"], json!({"vip": {"BOOL": true}}));
        assert_eq!(item["version"], json!({"N": "4"}));
        // A set (put there by other means) cannot be read as a trait; a write keeps it.
        dynalite
            .put(json!({"id": {"S": "user_id:u-set"},
                "traits": {"M": {"tags": {"SS": ["a", "b"]}, "vip": {"BOOL": false}}}}))
            .await;
        let read = store.read(&user("u-set"), soon()).await.expect("read");
        assert_eq!(read.map(|r| r.traits), Some(traits(json!({"vip": false}))));
        store
            .write(
                &user("u-set"),
                &traits(json!({"vip": true})),
                at(1_000),
                soon(),
            )
            .await
            .expect("written");
        let item = dynalite.item("user_id:u-set").await.expect("an item");
        assert_eq!(
            item["traits"]["M"]["tags"],
            json!({"SS": ["a", "b"]}),
            "{item}"
        );
        assert_eq!(item["traits"]["M"]["vip"], json!({"BOOL": true}));
    }
}
