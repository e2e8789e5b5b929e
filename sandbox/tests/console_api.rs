//! The console's JSON API, on its own: what the page reads and what its buttons post, over
//! HTTP against the running sandbox (demo customers, the demo's rules in a file of the
//! test's own).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Http, TempDb, options, start};
use sandbox::demo::{DOCS_READER, NEWCOMER, RETURNING, VIP};
use sandbox::{Running, SANDBOX_RULES};
use serde_json::{Value, json};

/// The demo's rules in a file of the test's own, so saving never touches sandbox/rules.json.
fn rules_file(dir: &TempDb) -> PathBuf {
    let Some(folder) = dir.0.parent() else {
        panic!("a temporary folder");
    };
    std::fs::create_dir_all(folder).expect("folder");
    let file = folder.join("rules.json");
    std::fs::write(&file, SANDBOX_RULES).expect("rules written");
    file
}

async fn demo(file: &std::path::Path) -> Running {
    start(sandbox::Options {
        seed_demo: true,
        function_env: vec![("ROUTING_RULES_FILE".into(), file.display().to_string())],
        ..options()
    })
    .await
}

/// The listed customer with this phone (the list is asked with `reveal=true`).
fn by_phone<'a>(list: &'a Value, phone: &str) -> &'a Value {
    list["customers"]
        .as_array()
        .and_then(|customers| {
            customers.iter().find(|c| {
                c["identifiers"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i["value"] == phone))
            })
        })
        .unwrap_or_else(|| panic!("no customer with {phone} in {list}"))
}

fn profile_of(list: &Value, phone: &str) -> String {
    by_phone(list, phone)["profile"]
        .as_str()
        .expect("a profile id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_customers_list_shows_each_customer_masked_with_the_transition_route_decision_gives() {
    let dir = TempDb::new("console-customers");
    let running = demo(&rules_file(&dir)).await;
    let http = Http::new();

    let masked = http.console(&running, "customers").await;
    assert_eq!(masked.status, 200, "{}", masked.body);
    let text = masked.body.to_string();
    for phone in [DOCS_READER, NEWCOMER, VIP, RETURNING] {
        let digits = phone.trim_start_matches('+');
        assert!(!text.contains(digits), "{phone} shown unmasked: {text}");
    }
    assert!(!text.contains("dana@example.com"), "{text}");
    assert!(text.contains("+1******0100"), "{text}");
    assert_eq!(masked.body["customers"].as_array().map(Vec::len), Some(4));

    let revealed = http.console(&running, "customers?reveal=true").await.body;
    for phone in [DOCS_READER, NEWCOMER, VIP, RETURNING] {
        let listed = &by_phone(&revealed, phone)["decision"];
        let decided = http
            .function(&running, "route-decision", &[("From", phone)])
            .await;
        assert_eq!(decided.status, 200, "{}", decided.body);
        assert_eq!(listed["transition"], decided.body["transition"], "{phone}");
        assert_eq!(listed["rule"], decided.body["rule"], "{phone}");
    }
    let dana = by_phone(&revealed, DOCS_READER);
    assert_eq!(dana["name"], "Dana");
    assert_eq!(dana["computed_traits"]["docs_last_2_days"], 3);
    assert_eq!(dana["traits"]["email"], "dana@example.com");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeline_is_newest_first_and_says_which_events_each_computed_trait_counted() {
    let dir = TempDb::new("console-timeline");
    let running = demo(&rules_file(&dir)).await;
    let http = Http::new();
    let list = http.console(&running, "customers?reveal=true").await.body;
    let dana = profile_of(&list, DOCS_READER);

    let page = http.console(&running, &format!("customers/{dana}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.body;
    let timeline = page["timeline"].as_array().expect("a timeline");
    let times: Vec<&str> = timeline.iter().filter_map(|e| e["at"].as_str()).collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);

    // Docs pages inside 2 days count; the 5-day-old docs page and the pricing page do not.
    let docs = page["computed"]
        .as_array()
        .and_then(|traits| traits.iter().find(|t| t["key"] == "docs_last_2_days"))
        .expect("docs_last_2_days");
    assert_eq!(docs["value"], 3);
    let counted: Vec<&str> = docs["counted"]
        .as_array()
        .expect("counted")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(counted.len(), 3, "{counted:?}");
    assert!(counted.contains(&"demo-dana-docs-1") && counted.contains(&"demo-dana-docs-2"));
    assert!(!counted.contains(&"demo-dana-old") && !counted.contains(&"demo-dana-pricing"));
    assert!(
        docs["definition"]
            .as_str()
            .is_some_and(|d| d.contains("within 2 days")),
        "{docs}"
    );
    let feeds = |id: &str| -> Vec<Value> {
        timeline
            .iter()
            .find(|e| e["message_id"] == id)
            .and_then(|e| e["feeds"].as_array().cloned())
            .unwrap_or_else(|| panic!("no {id} in the timeline"))
    };
    assert_eq!(feeds("demo-dana-docs-1"), [json!("docs_last_2_days")]);
    assert!(feeds("demo-dana-old").is_empty());
    let old = timeline
        .iter()
        .find(|e| e["message_id"] == "demo-dana-old")
        .expect("the old page");
    assert_eq!(old["outside_window_of"], json!(["docs_last_2_days"]));
    assert!(feeds("demo-identify-dana").contains(&json!("first_name")));
    // How each rule fared, as explain mode says it.
    let explanation = page["explanation"].as_array().expect("an explanation");
    assert_eq!(explanation.len(), 4);
    assert_eq!(explanation[3]["rule"], "read-docs-recently");
    assert_eq!(explanation[3]["outcome"], "matched");
    // Masked unless asked: the identify message holds Dana's phone and email.
    let shown = page.to_string();
    assert!(!shown.contains("5555550100") && !shown.contains("dana@example.com"));

    let missing = http.console(&running, "customers/prf_99999999").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    running.stop().await;
}

/// The decisions the console lists after `seq`.
async fn decisions_after(http: &Http, running: &Running, seq: u64) -> Vec<Value> {
    let reply = http
        .console(running, &format!("decisions?after={seq}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_decision_is_listed_with_customer_rule_transition_fallback_and_latency() {
    let dir = TempDb::new("console-decisions");
    let running = demo(&rules_file(&dir)).await;
    let http = Http::new();
    let before = decisions_after(&http, &running, 0).await;
    let last = before.last().and_then(|d| d["seq"].as_u64()).unwrap_or(0);

    let answer = http
        .function(&running, "route-decision", &[("From", VIP)])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let refused = http
        .function(&running, "route-decision", &[("From", "not a number")])
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    let new = decisions_after(&http, &running, last).await;
    assert_eq!(new.len(), 2, "{new:?}");
    let vip = &new[0];
    assert_eq!(vip["customer"], "phone:+1******0102");
    assert_eq!(vip["transition"], "agent");
    assert_eq!(vip["rule"], "vip");
    assert_eq!(vip["fallback"], false);
    assert_eq!(vip["status"], 200);
    assert!(
        vip["profile"]
            .as_str()
            .is_some_and(|p| p.starts_with("prf_"))
    );
    assert!(
        vip["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{vip}"
    );
    assert_eq!(new[1]["status"], 400);
    assert!(
        new[1]["error"].as_str().is_some_and(|e| e.contains("From")),
        "{}",
        new[1]
    );
    // Only newer ones after a seq.
    let seq = new[1]["seq"].as_u64().expect("seq");
    assert!(decisions_after(&http, &running, seq).await.is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fallback_shows_as_one_in_the_list() {
    // A Profile API that refuses every token: each lookup fails and falls back.
    let running = start(sandbox::Options {
        seed_demo: true,
        function_env: vec![("SEGMENT_PROFILE_API_TOKEN".into(), "wrong".into())],
        ..options()
    })
    .await;
    let http = Http::new();
    let last = decisions_after(&http, &running, 0)
        .await
        .last()
        .and_then(|d| d["seq"].as_u64())
        .unwrap_or(0);
    let answer = http
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(answer.body["fallback"], true, "{}", answer.body);
    let new = decisions_after(&http, &running, last).await;
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["fallback"], true);
    assert_eq!(new[0]["rule"], "on_error");
    running.stop().await;
}

/// The newcomer's transition and rule now.
async fn newcomer(http: &Http, running: &Running) -> (Value, Value) {
    let answer = http
        .function(running, "route-decision", &[("From", NEWCOMER)])
        .await;
    (
        answer.body["transition"].clone(),
        answer.body["rule"].clone(),
    )
}

fn edited(from: &str, to: &str) -> String {
    assert!(SANDBOX_RULES.contains(from), "{from}");
    SANDBOX_RULES.replace(from, to)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workbench_checks_dry_runs_and_applies_without_touching_the_file_unless_asked() {
    let dir = TempDb::new("console-workbench");
    let file = rules_file(&dir);
    let running = demo(&file).await;
    let http = Http::new();
    let active = http.console(&running, "rules").await.body;
    assert_eq!(active["text"], SANDBOX_RULES);
    assert_eq!(active["file"], file.display().to_string());
    assert_eq!(
        active["rules"],
        json!(["vip", "churn-risk", "known-agent", "read-docs-recently"])
    );

    // A broken condition: refused, at its rule and position, as --check-rules would.
    let broken = edited(
        "traits.docs_last_2_days > 0",
        "traits.docs_last_2_days > > 0",
    );
    let checked = http
        .console_post(&running, "rules/check", &json!({"text": broken}))
        .await;
    assert_eq!(checked.status, 422, "{}", checked.body);
    let error = &checked.body["error"];
    assert_eq!(error["rule"], "read-docs-recently");
    assert_eq!(error["what"], "condition");
    assert_eq!(
        (error["line"].clone(), error["column"].clone()),
        (json!(1), json!(27))
    );
    let applied = http
        .console_post(&running, "rules/apply", &json!({"text": broken}))
        .await;
    assert_eq!(applied.status, 422, "{}", applied.body);

    // The sandbox's rules declare their transitions: a mistyped one is refused at its rule.
    let mistyped = edited(r#""default": "bot""#, r#""default": "bto""#);
    let checked = http
        .console_post(&running, "rules/check", &json!({"text": mistyped}))
        .await;
    assert_eq!(checked.status, 422, "{}", checked.body);
    assert_eq!(checked.body["error"]["rule"], "default", "{}", checked.body);
    assert!(
        checked.body["error"]["message"].as_str().is_some_and(
            |m| m.contains("\"bto\" is not one of the declared transitions (agent, bot)")
        ),
        "{}",
        checked.body
    );

    // Docs readers need more than 5 pages now: Dana (3) moves to the bot, nobody else moves.
    let stricter = edited("traits.docs_last_2_days > 0", "traits.docs_last_2_days > 5");
    let dry = http
        .console_post(&running, "rules/dry-run", &json!({"text": stricter}))
        .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["moves"], json!({"agent → bot": 1}));
    let moved: Vec<&Value> = dry.body["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .filter(|c| c["moved"] == true)
        .collect();
    assert_eq!(moved.len(), 1, "{}", dry.body);
    assert_eq!(moved[0]["name"], "Dana");
    assert_eq!(moved[0]["after"]["rule"], "default");
    // A dry run changes nothing.
    let still = http
        .function(&running, "route-decision", &[("From", DOCS_READER)])
        .await;
    assert_eq!(still.body["transition"], "agent");

    let applied = http
        .console_post(&running, "rules/apply", &json!({"text": stricter}))
        .await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert_eq!(applied.body["saved"], Value::Null);
    let next = http
        .function(&running, "route-decision", &[("From", DOCS_READER)])
        .await;
    assert_eq!(
        (next.body["transition"].clone(), next.body["rule"].clone()),
        (json!("bot"), json!("default"))
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("file"),
        SANDBOX_RULES,
        "apply alone leaves the file"
    );
    assert_eq!(http.console(&running, "rules").await.body["text"], stricter);

    // Saved when asked: the next decision follows, and so does the file's own reload, which
    // sees the saved file and reads the same rules (no step back to the old ones).
    let everyone_agent = edited("\"default\": \"bot\"", "\"default\": \"agent\"");
    let saved = http
        .console_post(
            &running,
            "rules/apply",
            &json!({"text": everyone_agent, "save": true}),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.body["saved"], file.display().to_string());
    assert_eq!(
        std::fs::read_to_string(&file).expect("file").trim_end(),
        everyone_agent.trim_end()
    );
    assert_eq!(
        newcomer(&http, &running).await,
        (json!("agent"), json!("default"))
    );
    // The file is looked at four times a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        newcomer(&http, &running).await,
        (json!("agent"), json!("default"))
    );
    // And an edit of the file itself still wins over what the console applied.
    std::fs::write(&file, SANDBOX_RULES).expect("file edited");
    let mut back = json!(null);
    for _ in 0..40 {
        back = newcomer(&http, &running).await.0;
        if back == "bot" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(back, "bot");
    assert_eq!(
        http.console(&running, "rules").await.body["text"],
        SANDBOX_RULES
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_rules_cannot_be_saved_and_a_refused_save_applies_nothing() {
    let running = start(sandbox::Options {
        seed_demo: true,
        function_env: vec![("ROUTING_RULES".into(), SANDBOX_RULES.into())],
        ..options()
    })
    .await;
    let http = Http::new();
    let everyone_to_agent = r#"{"rules": [], "default": "agent", "on_error": "agent"}"#;
    let refused = http
        .console_post(
            &running,
            "rules/apply",
            &json!({"text": everyone_to_agent, "save": true}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    let answer = http
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(answer.body["transition"], "bot");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn try_it_sends_a_wrap_up_a_page_view_and_a_message_and_the_traits_follow() {
    let dir = TempDb::new("console-try");
    let running = demo(&rules_file(&dir)).await;
    let http = Http::new();
    let list = http.console(&running, "customers?reveal=true").await.body;
    let nico = profile_of(&list, NEWCOMER);
    let traits = |list: &Value| by_phone(list, NEWCOMER)["computed_traits"].clone();
    assert_eq!(traits(&list)["total_inbounds"], 0);

    let wrap_up = http
        .console_post(
            &running,
            "try/wrap-up",
            &json!({"profile": nico, "channel": "sms", "topic": "billing", "sentiment": "negative"}),
        )
        .await;
    assert_eq!(wrap_up.status, 200, "{}", wrap_up.body);
    assert_eq!(wrap_up.body["ok"], true, "{}", wrap_up.body);
    let list = http.console(&running, "customers?reveal=true").await.body;
    assert_eq!(traits(&list)["total_inbounds"], 1);
    assert_eq!(traits(&list)["last_interaction_topic"], "billing");
    assert_eq!(traits(&list)["sentiment_in_last_interaction"], "negative");
    let page = http
        .console(&running, &format!("customers/{nico}"))
        .await
        .body;
    let newest: Vec<&str> = page["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .take(2)
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        newest.contains(&"Flex - Engagement Completed")
            && newest.contains(&"Flex - Wrap Up Completed"),
        "{newest:?}"
    );

    // A docs page view: the newcomer now reads docs, and goes to an agent.
    let viewed = http
        .console_post(
            &running,
            "try/page-view",
            &json!({"profile": nico, "path": "/docs/flex"}),
        )
        .await;
    assert_eq!(viewed.status, 200, "{}", viewed.body);
    assert_eq!(viewed.body["profile"], nico);
    let message = http
        .console_post(
            &running,
            "try/message",
            &json!({"profile": nico, "explain": true}),
        )
        .await;
    assert_eq!(message.status, 200, "{}", message.body);
    assert_eq!(message.body["status"], 200);
    assert_eq!(message.body["answer"]["transition"], "agent");
    assert_eq!(message.body["answer"]["rule"], "read-docs-recently");
    assert!(message.body["answer"]["explanation"].is_array());
    let last = decisions_after(&http, &running, 0).await;
    assert_eq!(last.last().map(|d| d["profile"].clone()), Some(json!(nico)));

    // A new number: a message needs no profile; a bad one is refused plainly.
    let stranger = http
        .console_post(
            &running,
            "try/message",
            &json!({"phone": "+15555550177", "channel": "whatsapp"}),
        )
        .await;
    assert_eq!(
        stranger.body["answer"]["transition"], "bot",
        "{}",
        stranger.body
    );
    // A page view for a new number makes a profile whose identifiers show no part of it.
    let new_visitor = http
        .console_post(
            &running,
            "try/page-view",
            &json!({"phone": "+15555550188", "path": "/docs/studio"}),
        )
        .await;
    assert!(
        new_visitor.body["profile"].is_string(),
        "{}",
        new_visitor.body
    );
    let masked = http.console(&running, "customers").await.body.to_string();
    assert!(!masked.contains("5555550188"), "{masked}");
    assert!(masked.contains("+1******0188"), "{masked}");
    let bad = http
        .console_post(&running, "try/message", &json!({"phone": "555"}))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_answers_only_this_machine_s_pages() {
    let running = start(sandbox::Options {
        seed_demo: true,
        ..options()
    })
    .await;
    let http = Http::new();
    let url = format!("{}api/customers", running.console_url());
    // A name rebound to 127.0.0.1 by another site is not this console's.
    let rebound = http
        .get_with(&url, &[("host", "attacker.example:9000")])
        .await;
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    let apply = format!("{}api/rules/apply", running.console_url());
    let body = br#"{"text": "{\"rules\": [], \"default\": \"agent\", \"on_error\": \"agent\"}"}"#;
    // Another site's form post (no preflight) or JSON from another origin changes nothing.
    let form = http
        .post_raw(&apply, &[("content-type", "text/plain")], body.to_vec())
        .await;
    assert_eq!(form.status, 415, "{}", form.body);
    let foreign = http
        .post_raw(
            &apply,
            &[
                ("content-type", "application/json"),
                ("origin", "http://attacker.example"),
            ],
            body.to_vec(),
        )
        .await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let answer = http
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(answer.body["transition"], "bot");
    // The page itself, with a policy that lets it run only its own script.
    let (status, headers, page) = http.get_text(&running.console_url()).await;
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/console.js\""), "{page}");
    let policy = headers
        .get("content-security-policy")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    running.stop().await;
}
