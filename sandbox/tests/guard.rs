//! The guard on both ports: only loopback Host names, and no request from a page that is not
//! on this machine. Over real HTTP, as a browser page on another site (or a name rebound to
//! 127.0.0.1) would send it; curl-like requests and loopback pages still work.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Http, TOKEN, options, start};
use sandbox::Running;
use sandbox::demo::{DOCS_READER, NEWCOMER};
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";

/// The sandbox with its demo customers, and a client.
async fn demo() -> (Running, Http) {
    let running = start(sandbox::Options {
        seed_demo: true,
        ..options()
    })
    .await;
    (running, Http::new())
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn basic(user: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:")))
}

fn traits_url(running: &Running, phone: &str) -> String {
    format!(
        "{}/v1/spaces/{}/collections/users/profiles/phone:{phone}/traits?limit=200",
        running.segment_url(),
        common::SPACE
    )
}

/// The guard's refusal: 403 and a JSON error saying why.
fn assert_forbidden(reply: &common::Response) {
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body["error"]["message"].is_string(), "{}", reply.body);
}

/// A refusal that gives away nothing of the profile.
fn assert_refused(reply: &common::Response, phone: &str) {
    assert_forbidden(reply);
    assert!(reply.body.get("traits").is_none(), "{}", reply.body);
    let text = reply.body.to_string();
    assert!(!text.contains(phone.trim_start_matches('+')), "{text}");
}

/// A TaskRouter wrap-up of a call from the newcomer, as the README's tour posts it.
fn wrap_up(task: &str) -> Vec<u8> {
    let attributes = json!({"from": NEWCOMER, "direction": "inbound"}).to_string();
    form(&[
        ("EventType", "reservation.wrapup"),
        ("TaskSid", task),
        ("WorkerSid", "WK0000000000000000000000000000beef"),
        ("TaskAge", "300"),
        ("TaskChannelUniqueName", "voice"),
        ("TaskAttributes", &attributes),
    ])
}

/// What another site's page posts to the Tracking API: text/plain needs no preflight.
fn identify_vip() -> Vec<u8> {
    json!({"writeKey": "any-key", "anonymousId": "evil-1", "type": "identify",
           "traits": {"phone": NEWCOMER, "vip": true}})
    .to_string()
    .into_bytes()
}

/// A POST of `body` as `content_type`, with one more header (a `Host` or an `Origin`).
async fn post(
    http: &Http,
    url: &str,
    content_type: &str,
    header: (&str, &str),
    body: Vec<u8>,
) -> common::Response {
    http.post_raw(url, &[("content-type", content_type), header], body)
        .await
}

/// The docs reader's traits from the Profile API, with the token, naming `host`.
async fn traits_via(http: &Http, running: &Running, host: &str) -> common::Response {
    let url = traits_url(running, DOCS_READER);
    http.get_with(&url, &[("authorization", &basic(TOKEN)), ("host", host)])
        .await
}

/// What the posts here can change about the newcomer: the VIP flag identify sets, whether a
/// wrap-up recorded an agent, and the transition route-decision gives.
async fn newcomer(http: &Http, running: &Running) -> (Value, bool, Value) {
    let traits = http.traits(running, &format!("phone:{NEWCOMER}")).await;
    let answer = http
        .function(running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let wrapped_up = traits.get("last_known_service_agent").is_some();
    (
        traits["vip"].clone(),
        wrapped_up,
        answer.body["transition"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebinding_host_gets_403_and_no_traits_from_profile_lookup_or_the_profile_api() {
    let (running, http) = demo().await;
    let lookup = post(
        &http,
        &running.function_url("profile-lookup"),
        FORM,
        ("host", "attacker.example:9000"),
        form(&[("From", DOCS_READER)]),
    )
    .await;
    assert_refused(&lookup, DOCS_READER);
    let profile = traits_via(&http, &running, "attacker.example:9010").await;
    assert_refused(&profile, DOCS_READER);
    // A look-alike that starts with a loopback address is not one.
    let lookalike = traits_via(&http, &running, "127.0.0.1.attacker.example").await;
    assert_refused(&lookalike, DOCS_READER);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_writes_without_a_preflight_are_refused_and_change_nothing() {
    let (running, http) = demo().await;
    let identify = format!("{}/v1/identify", running.segment_url());
    let wrap_up_ingest = running.function_url("wrap-up-ingest");
    let task = "WTguard000000000000000000000000001";
    // What another site's page can send without asking first: a text/plain fetch, and a
    // form from a sandboxed iframe or a file (`Origin: null`).
    let attempts = [
        (
            &identify,
            "text/plain;charset=UTF-8",
            "https://evil.example",
            identify_vip(),
        ),
        (&wrap_up_ingest, FORM, "null", wrap_up(task)),
    ];
    for (url, content_type, origin, body) in attempts {
        let reply = post(&http, url, content_type, ("origin", origin), body).await;
        assert_forbidden(&reply);
    }
    // And a cross-site GET (an `<img>` whose address holds the fields): no Origin at all,
    // only the fetch metadata every current browser sends.
    let attributes = json!({"from": NEWCOMER, "direction": "inbound"}).to_string();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("EventType", "reservation.wrapup"),
            ("TaskSid", "WTguard000000000000000000000000003"),
            ("WorkerSid", "WK0000000000000000000000000000beef"),
            ("TaskChannelUniqueName", "voice"),
            ("TaskAttributes", attributes.as_str()),
        ])
        .finish();
    let image = format!("{wrap_up_ingest}?{query}");
    let reply = http
        .get_with(&image, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_forbidden(&reply);
    let seeded = (Value::Null, false, json!("bot"));
    assert_eq!(newcomer(&http, &running).await, seeded);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_like_requests_and_loopback_pages_still_get_answers() {
    let (running, http) = demo().await;
    // No Origin, a loopback name in Host: what curl and Segment's server-side clients send.
    let url = running.function_url("profile-lookup");
    let from = form(&[("From", DOCS_READER)]);
    let lookup = post(&http, &url, FORM, ("host", "localhost"), from).await;
    assert_eq!(lookup.status, 200, "{}", lookup.body);
    assert_eq!(lookup.body["found"], true, "{}", lookup.body);
    let v6 = format!("[::1]:{}", running.segment_addr.port());
    let profile = traits_via(&http, &running, &v6).await;
    assert_eq!(profile.status, 200, "{}", profile.body);
    // Pages served from loopback, on any port.
    let url = format!("{}/v1/identify", running.segment_url());
    let page = ("origin", "http://localhost:5173");
    let identify = post(&http, &url, "text/plain", page, identify_vip()).await;
    assert_eq!(identify.status, 200, "{}", identify.body);
    let url = running.function_url("wrap-up-ingest");
    let task = wrap_up("WTguard000000000000000000000000002");
    let wrap = post(&http, &url, FORM, ("origin", "http://127.0.0.1:9000"), task).await;
    assert!(wrap.status < 300, "{}: {}", wrap.status, wrap.body);
    let moved = (json!(true), true, json!("agent"));
    assert_eq!(newcomer(&http, &running).await, moved);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_takes_changes_only_from_its_own_page_even_on_loopback() {
    let (running, http) = demo().await;
    let check = format!("{}api/rules/check", running.console_url());
    let rules = || {
        json!({"text": sandbox::SANDBOX_RULES})
            .to_string()
            .into_bytes()
    };
    let json = "application/json";
    // Another loopback port (a dev server, another tool's page) may call the Function URLs,
    // but not drive the console.
    let other_port = ("origin", "http://localhost:5173");
    let refused = post(&http, &check, json, other_port, rules()).await;
    assert_forbidden(&refused);
    let own = format!("http://{}", running.functions_addr);
    let own_page = post(&http, &check, json, ("origin", &own), rules()).await;
    assert_eq!(own_page.status, 200, "{}", own_page.body);
    // Reading is refused to another site too, whatever the method.
    let customers = format!("{}api/customers?reveal=true", running.console_url());
    let read = http
        .get_with(&customers, &[("origin", "https://evil.example")])
        .await;
    assert_refused(&read, DOCS_READER);
    running.stop().await;
}
