//! The Segment-compatible server over HTTP: computed traits, identity resolution, the
//! Profile API's shapes and errors, the Tracking API's answers.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Http, TOKEN, TempDb, hours_ago, options, start};
use sandbox::Options;
use serde_json::{Value, json};

const DEFINITIONS: &str = r#"{"traits": [
  {"key": "orders", "type": "event_counter", "event": "Order Completed"},
  {"key": "orders_last_day", "type": "event_counter", "event": "Order Completed", "window": {"hours": 24}},
  {"key": "orders_last_2_days", "type": "event_counter", "event": "Order Completed", "window": {"days": 2}},
  {"key": "big_orders", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "total", "operator": "greater_than", "value": 100}]},
  {"key": "orders_from_100", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "total", "operator": "greater_than_or_equal", "value": 120}]},
  {"key": "cheap_orders", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "total", "operator": "less_than", "value": 20}]},
  {"key": "shoe_orders", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "category", "operator": "equals", "value": "shoes"}]},
  {"key": "other_orders", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "category", "operator": "not_equals", "value": "shoes"}]},
  {"key": "gift_orders", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "coupon", "operator": "contains", "value": "GIFT"}]},
  {"key": "coupon_orders", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "coupon", "operator": "exists"}]},
  {"key": "big_shoe_orders", "type": "event_counter", "event": "Order Completed",
   "conditions": [{"property": "category", "operator": "equals", "value": "shoes"},
                  {"property": "total", "operator": "greater_than", "value": 150}]},
  {"key": "revenue", "type": "aggregation", "function": "sum", "property": "total", "event": "Order Completed"},
  {"key": "average_order", "type": "aggregation", "function": "avg", "property": "total", "event": "Order Completed"},
  {"key": "smallest_order", "type": "aggregation", "function": "min", "property": "total", "event": "Order Completed"},
  {"key": "largest_order", "type": "aggregation", "function": "max", "property": "total", "event": "Order Completed"},
  {"key": "favourite_category", "type": "most_frequent", "property": "category", "event": "Order Completed"},
  {"key": "favourite_category_any", "type": "most_frequent", "property": "category", "event": "Order Completed", "minimum_frequency": 1},
  {"key": "first_category", "type": "first", "property": "category", "event": "Order Completed"},
  {"key": "last_category", "type": "last", "property": "category", "event": "Order Completed"},
  {"key": "categories", "type": "unique_list", "property": "category", "event": "Order Completed"},
  {"key": "category_count", "type": "unique_list_count", "property": "category", "event": "Order Completed"},
  {"key": "docs_views", "type": "event_counter", "event": {"type": "page"},
   "conditions": [{"property": "path", "operator": "starts_with", "value": "/docs"}]}
]}"#;

async fn with_definitions() -> (sandbox::Running, TempDb) {
    let db = TempDb::new("definitions");
    std::fs::create_dir_all(db.0.parent().expect("dir")).expect("dir");
    let definitions = db.0.with_file_name("traits.json");
    std::fs::write(&definitions, DEFINITIONS).expect("write definitions");
    let mut options = options();
    options.definitions = Some(definitions);
    (start(options).await, db)
}

fn order(
    user: &str,
    id: &str,
    hours: f64,
    total: f64,
    category: &str,
    coupon: Option<&str>,
) -> Value {
    let mut properties = json!({"total": total, "category": category});
    if let Some(coupon) = coupon {
        properties["coupon"] = json!(coupon);
    }
    json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": id, "timestamp": hours_ago(hours), "properties": properties})
}

#[tokio::test(flavor = "multi_thread")]
async fn every_computed_trait_type_is_derived_from_events() {
    // GIVEN four orders over 30 hours, an unrelated event and two page views
    let (running, _db) = with_definitions().await;
    let http = Http::new();
    let batch = json!({"batch": [
        order("u-1", "o1", 30.0, 120.0, "shoes", Some("GIFT10")),
        order("u-1", "o2", 10.0, 15.0, "books", None),
        order("u-1", "o3", 5.0, 60.0, "books", None),
        order("u-1", "o4", 1.0, 200.0, "shoes", None),
        {"type": "track", "event": "Cart Viewed", "userId": "u-1", "properties": {"total": 999}},
        {"type": "page", "userId": "u-1", "properties": {"path": "/docs/flex"}},
        {"type": "page", "userId": "u-1", "properties": {"path": "/pricing"}}
    ]});
    assert_eq!(http.track(&running, "/v1/batch", &batch).await.status, 200);

    // THEN each trait type, window and condition computes as Segment defines it
    let traits = http.traits(&running, "user_id:u-1").await;
    let expected = json!({
        "orders": 4, "orders_last_day": 3, "orders_last_2_days": 4,
        "big_orders": 2, "orders_from_100": 2, "cheap_orders": 1, "shoe_orders": 2, "other_orders": 2,
        "gift_orders": 1, "coupon_orders": 1, "big_shoe_orders": 1,
        "revenue": 395, "average_order": 98.75, "smallest_order": 15, "largest_order": 200,
        // shoes and books both occur twice: the tie goes to the alphabetically first
        "favourite_category": "books", "favourite_category_any": "books",
        "first_category": "shoes", "last_category": "shoes",
        "categories": ["shoes", "books"], "category_count": 2,
        "docs_views": 1
    });
    assert_eq!(traits, expected);

    // AND a value under the minimum frequency is no value
    let sparse = json!({"batch": [order("u-2", "p1", 2.0, 10.0, "shoes", None), order("u-2", "p2", 1.0, 10.0, "hats", None)]});
    http.track(&running, "/v1/batch", &sparse).await;
    let traits = http.traits(&running, "user_id:u-2").await;
    assert!(traits.get("favourite_category").is_none(), "{traits}");
    assert_eq!(traits["favourite_category_any"], "hats");
    // AND aggregations over no events are absent while counters are 0
    let nothing = json!({"type": "identify", "userId": "u-3", "traits": {"name": "Z"}});
    http.track(&running, "/v1/identify", &nothing).await;
    let traits = http.traits(&running, "user_id:u-3").await;
    assert_eq!(
        (traits["orders"].clone(), traits.get("revenue")),
        (json!(0), None)
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_that_share_an_identifier_merge_into_one_profile() {
    let running = start(options()).await;
    let http = Http::new();
    // An anonymous visitor with a phone, and a known user with an email: two profiles.
    http.track(&running, "/v1/page", &json!({"anonymousId": "anon-1", "properties": {"path": "/docs/a"}, "context": {"traits": {"phone": "+15555550100"}}})).await;
    http.track(
        &running,
        "/v1/identify",
        &json!({"userId": "u-9", "traits": {"email": "Ann@Example.com", "plan": "pro"}}),
    )
    .await;
    assert_eq!(running.segment.store.profile_count().expect("count"), 2);

    // A message that carries both ids links them.
    http.track(
        &running,
        "/v1/track",
        &json!({"userId": "u-9", "anonymousId": "anon-1", "event": "Signed In"}),
    )
    .await;
    assert_eq!(running.segment.store.profile_count().expect("count"), 1);
    for identifier in [
        "phone:+15555550100",
        "email:ann@example.com",
        "email:ANN@example.com",
        "user_id:u-9",
        "anonymous_id:anon-1",
    ] {
        let traits = http.traits(&running, identifier).await;
        assert_eq!(traits["plan"], "pro", "{identifier}");
    }

    // An alias links its previousId's profile too.
    http.track(
        &running,
        "/v1/track",
        &json!({"anonymousId": "anon-2", "event": "Viewed"}),
    )
    .await;
    http.track(
        &running,
        "/v1/alias",
        &json!({"previousId": "anon-2", "userId": "u-9"}),
    )
    .await;
    assert_eq!(running.segment.store.profile_count().expect("count"), 1);

    // Identifiers from properties and context.externalIds count as well.
    http.track(&running, "/v1/track", &json!({"anonymousId": "anon-3", "event": "Called", "context": {"externalIds": [{"id": "+15555550100", "type": "phone", "collection": "users", "encoding": "none"}]}})).await;
    assert_eq!(running.segment.store.profile_count().expect("count"), 1);

    // A second user id with the same phone is a different person: no merge.
    http.track(
        &running,
        "/v1/identify",
        &json!({"userId": "u-10", "traits": {"phone": "+15555550100", "plan": "free"}}),
    )
    .await;
    assert_eq!(running.segment.store.profile_count().expect("count"), 2);
    assert_eq!(http.traits(&running, "user_id:u-9").await["plan"], "pro");
    assert_eq!(http.traits(&running, "user_id:u-10").await["plan"], "free");

    let ids = http
        .profile(&running, "user_id:u-9", "external_ids?limit=100")
        .await
        .body;
    let mut kinds: Vec<String> = ids["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d["type"].as_str().unwrap_or(""),
                d["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "anonymous_id:anon-1",
            "anonymous_id:anon-2",
            "anonymous_id:anon-3",
            "email:ann@example.com",
            "phone:+15555550100",
            "user_id:u-9"
        ]
    );
    assert_eq!(ids["data"][0]["collection"], "users");
    assert_eq!(ids["data"][0]["encoding"], "none");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_profile_api_answers_with_segments_shapes_and_errors() {
    let (running, _db) = with_definitions().await;
    let http = Http::new();
    let batch = json!({"batch": [
        {"type": "identify", "userId": "u-1", "messageId": "i1", "timestamp": hours_ago(4.0), "traits": {"name": "Ann", "plan": "pro", "email": "ann@example.com"}},
        order("u-1", "o1", 3.0, 50.0, "hats", None),
        order("u-1", "o2", 2.0, 70.0, "hats", None),
        {"type": "page", "userId": "u-1", "messageId": "pg1", "timestamp": hours_ago(1.0), "properties": {"path": "/docs"}}
    ]});
    http.track(&running, "/v1/batch", &batch).await;

    // Errors: Segment's bodies.
    let unauthorised = http
        .profile_as(&running, "wrong", "user_id:u-1", "traits")
        .await;
    assert_eq!(
        (
            unauthorised.status,
            unauthorised.body["error"]["code"].clone()
        ),
        (401, json!("authentication_error"))
    );
    let unknown = http.profile(&running, "user_id:nobody", "traits").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body,
        json!({"error": {"code": "not_found", "message": "Profile was not found."}})
    );
    for bad in [
        "traits?limit=0",
        "traits?limit=201",
        "traits?class=everything",
        "events?sort=sideways",
    ] {
        let reply = http.profile(&running, "user_id:u-1", bad).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].clone()),
            (400, json!("validation_error")),
            "{bad}"
        );
    }

    // traits: 10 by default, include, class, verbose, cursor.
    let default = http.profile(&running, "user_id:u-1", "traits").await.body;
    assert_eq!(default["traits"].as_object().map(|t| t.len()), Some(10));
    assert_eq!(default["cursor"]["has_more"], true);
    let next = default["cursor"]["next"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rest = http
        .profile(
            &running,
            "user_id:u-1",
            &format!("traits?next={next}&limit=200"),
        )
        .await
        .body;
    let total = default["traits"].as_object().map_or(0, |t| t.len())
        + rest["traits"].as_object().map_or(0, |t| t.len());
    assert_eq!(
        total,
        22 + 3,
        "every computed trait and the three identify traits, once"
    );
    assert_eq!(
        rest["cursor"],
        json!({"url": "/v1/spaces/spa_test/collections/users/profiles/user_id:u-1/traits", "has_more": false, "next": ""})
    );

    let included = http
        .profile(&running, "user_id:u-1", "traits?include=plan,orders,nope")
        .await
        .body;
    assert_eq!(included["traits"], json!({"orders": 2, "plan": "pro"}));
    let computed = http
        .profile(
            &running,
            "user_id:u-1",
            "traits?class=computed_trait&limit=200",
        )
        .await
        .body;
    assert!(computed["traits"].get("plan").is_none() && computed["traits"]["orders"] == 2);
    let audiences = http
        .profile(&running, "user_id:u-1", "traits?class=audience")
        .await
        .body;
    assert_eq!(audiences["traits"], json!({}));
    let verbose = http
        .profile(&running, "user_id:u-1", "traits?include=plan&verbose=true")
        .await
        .body;
    assert_eq!(verbose["traits"]["plan"]["value"], "pro");
    assert!(
        verbose["traits"]["plan"]["updated_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(verbose["traits"]["plan"]["source_id"], "sandbox");

    // events: newest first, filters, limit, cursor.
    let events = http
        .profile(&running, "user_id:u-1", "events?limit=2")
        .await
        .body;
    let ids: Vec<&str> = events["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["message_id"].as_str())
        .collect();
    assert_eq!(ids, ["pg1", "o2"]);
    assert_eq!(events["cursor"]["has_more"], true);
    assert_eq!(events["data"][0]["type"], "page");
    assert_eq!(events["data"][1]["event"], "Order Completed");
    assert_eq!(events["data"][1]["properties"]["total"], 70.0);
    let ascending = http
        .profile(
            &running,
            "user_id:u-1",
            "events?sort=asc&include=Order%20Completed",
        )
        .await
        .body;
    let ids: Vec<&str> = ascending["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["message_id"].as_str())
        .collect();
    assert_eq!(ids, ["o1", "o2"]);

    // metadata.
    let metadata = http.profile(&running, "user_id:u-1", "metadata").await.body;
    assert_eq!(metadata["metadata"]["first_message_id"], "i1");
    assert!(
        metadata["metadata"]["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(metadata["metadata"]["expires_at"], Value::Null);

    // The space id is part of the path: the profile is not found in another space.
    let other_space = http
        .profile_in(&running, "spa_other", TOKEN, "user_id:u-1", "traits")
        .await;
    assert_eq!(other_space.status, 404);
    assert_eq!(
        other_space.body,
        json!({"error": {"code": "not_found", "message": "Space was not found."}})
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tracking_api_answers_like_segment_and_deduplicates() {
    let (running, _db) = with_definitions().await;
    let http = Http::new();
    let url = format!("{}/v1/track", running.segment_url());

    let invalid = http
        .post_raw(
            &url,
            &[
                ("authorization", "Basic YW55Og=="),
                ("content-type", "application/json"),
            ],
            b"{nope".to_vec(),
        )
        .await;
    assert_eq!(invalid.status, 400);
    let no_key = http
        .post_raw(
            &url,
            &[("content-type", "application/json")],
            br#"{"userId": "u", "event": "e"}"#.to_vec(),
        )
        .await;
    assert_eq!(no_key.status, 401);
    let key_in_body =
        http.post_raw(&url, &[("content-type", "application/json")], br#"{"writeKey": "k", "userId": "u-1", "event": "Order Completed", "messageId": "dup"}"#.to_vec()).await;
    assert_eq!(
        (key_in_body.status, key_in_body.body.clone()),
        (200, json!({"success": true}))
    );

    let huge_message = json!({"userId": "u-1", "event": "Order Completed", "properties": {"blob": "x".repeat(40 * 1024)}});
    assert_eq!(
        http.track(&running, "/v1/track", &huge_message)
            .await
            .status,
        400
    );
    let huge_batch = json!({"batch": (0..30).map(|i| json!({"type": "track", "userId": "u-1", "event": "Order Completed", "properties": {"blob": "x".repeat(20 * 1024), "i": i}})).collect::<Vec<_>>()});
    assert_eq!(
        http.track(&running, "/v1/batch", &huge_batch).await.status,
        400
    );

    // The same messageId again is not counted again; an invalid message is dropped with a 200.
    let again = json!({"userId": "u-1", "event": "Order Completed", "messageId": "dup"});
    assert_eq!(http.track(&running, "/v1/track", &again).await.status, 200);
    assert_eq!(
        http.track(&running, "/v1/track", &json!({"userId": "u-1"}))
            .await
            .status,
        200
    );
    assert_eq!(
        http.track(&running, "/v1/track", &json!({"event": "Order Completed"}))
            .await
            .status,
        200
    );
    // Short paths analytics.js uses.
    assert_eq!(
        http.track(
            &running,
            "/v1/t",
            &json!({"userId": "u-1", "event": "Order Completed", "messageId": "short"})
        )
        .await
        .status,
        200
    );
    assert_eq!(http.traits(&running, "user_id:u-1").await["orders"], 2);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_write_keys_set_a_wrong_key_gets_200_and_its_events_are_dropped() {
    // GIVEN a sandbox that keeps only events sent with "right-key"
    let running = start(Options {
        accepted_write_keys: vec!["right-key".into()],
        ..options()
    })
    .await;
    let http = Http::new();
    let url = format!("{}/v1/batch", running.segment_url());
    let batch = |user: &str| {
        json!({"batch": [{"type": "identify", "userId": user, "traits": {"plan": "gold"}}]})
            .to_string()
            .into_bytes()
    };
    let send = |key: &'static str, body: Vec<u8>| {
        let auth = format!("Basic {}", STANDARD.encode(format!("{key}:")));
        let http = &http;
        let url = url.clone();
        async move {
            http.post_raw(
                &url,
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await
        }
    };
    // WHEN one batch comes with a wrong key and one with the right key
    let wrong = send("wrong-key", batch("u-wrong")).await;
    let right = send("right-key", batch("u-right")).await;
    // THEN both are answered 200, as Segment answers, but only the right one is kept
    assert_eq!((wrong.status, wrong.body), (200, json!({"success": true})));
    assert_eq!(right.status, 200);
    assert_eq!(
        http.traits(&running, "user_id:u-right").await["plan"],
        "gold"
    );
    assert_eq!(
        http.profile(&running, "user_id:u-wrong", "traits")
            .await
            .status,
        404
    );
    running.stop().await;
}
