//! Any HTTP request through the whole edge of route-decision, with both authentication
//! methods configured: bounded before authentication, signature checked, only covered parts
//! read, and always a documented status.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use studio_router::edge::auth::Authenticator;
use studio_router::edge::Edge;
use studio_router::domain::operations::route_decision::RouteDecision;
use studio_router::domain::ports::NoUpdates;
use studio_router::adapters::memory::MemoryProfiles;
use studio_router::domain::rules::{DEFAULT_RULES, RuleSet};
use studio_router::adapters::secrets::{Secret, SecretCell};

fn edge() -> &'static Edge<RouteDecision<MemoryProfiles>> {
    static EDGE: OnceLock<Edge<RouteDecision<MemoryProfiles>>> = OnceLock::new();
    EDGE.get_or_init(|| {
        let given = |name, value| Secret::new(value).map(|s| SecretCell::given(name, s));
        Edge::new(
            RouteDecision {
                profiles: MemoryProfiles::new(),
                rules: std::sync::Arc::new(RuleSet::compile(DEFAULT_RULES).expect("rules").into()),
                updates: NoUpdates,
                deadline: Duration::from_millis(100),
                phone_identifier: "phone".into(),
                response_traits: std::sync::Arc::default(),
                shadow: Default::default(),
            },
            Authenticator::new(given("TWILIO_AUTH_TOKEN", "12345"), None, given("PROXY_SHARED_SECRET", "s3cret"), false),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    // method \0 query \0 content-type \0 signature \0 authorization \0 body
    let mut parts = data.splitn(6, |b| *b == 0);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (method, query, content_type, signature, authorization, body) = (next(), next(), next(), next(), next(), next());
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": query,
        "headers": {"host": "mycompany.com", "content-type": content_type, "x-twilio-signature": signature, "authorization": authorization},
        "requestContext": {"domainName": "mycompany.com", "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": ""}},
        "body": body, "isBase64Encoded": false
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let answer = runtime.block_on(edge().handle(event, None));
    let status = answer["statusCode"].as_u64().unwrap_or(0);
    assert!([200, 400, 401, 405, 413, 414].contains(&status), "{answer}");
});
