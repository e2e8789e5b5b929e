//! What a new user meets first: the welcome's facts (which rules, what each demo customer
//! gets now), the command line, answers that end a terminal line.

mod common;

use std::process::Command;

use common::{Http, options, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_rules_loaded_and_the_demo_outcomes_are_as_they_stand_now() {
    // GIVEN the demo's rules and customers
    let running = start(sandbox::Options {
        seed_demo: true,
        ..options()
    })
    .await;
    assert_eq!(
        running.rules,
        sandbox::StartingRules {
            source: "sandbox/rules.json".into(),
            names: ["vip", "churn-risk", "known-agent", "read-docs-recently"]
                .map(String::from)
                .to_vec(),
            demo: true,
        }
    );
    // THEN the newcomer is a bot customer...
    let newcomer = sandbox::demo::NEWCOMER;
    assert_eq!(running.decide(newcomer).await["rule"], "default");
    // ...until they read the docs: what the welcome shows is computed, not written down
    Http::new()
        .track(
            &running,
            "/v1/page",
            &json!({"anonymousId": "web-9", "properties": {"path": "/docs/x"},
                    "context": {"traits": {"phone": newcomer}}}),
        )
        .await;
    assert_eq!(running.decide(newcomer).await["rule"], "read-docs-recently");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_of_ones_own_are_named_as_loaded() {
    let dir = std::env::temp_dir().join(format!("sandbox-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("mine.json");
    std::fs::write(
        &file,
        r#"{"rules": [{"name": "whatsapp-bot", "when": "channel == 'whatsapp'", "transition": "bot"}],
            "default": "agent", "on_error": "agent"}"#,
    )
    .expect("write");
    let path = file.display().to_string();
    let running = start(sandbox::Options {
        function_env: vec![("ROUTING_RULES_FILE".into(), path.clone())],
        ..options()
    })
    .await;
    assert_eq!(
        running.rules,
        sandbox::StartingRules {
            source: path,
            names: vec!["whatsapp-bot".into()],
            demo: false,
        }
    );
    // The channel comes from From when the flow sends none.
    assert_eq!(
        running.decide("whatsapp:+15555550199").await["transition"],
        "bot"
    );
    running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_end_with_a_newline() {
    let running = start(options()).await;
    let http =
        studio_router::adapters::http_client::HttpClient::new(std::time::Duration::from_secs(2));
    let client = http.client().expect("client");
    let decision = client
        .post(running.function_url("route-decision"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("From=%2B15555550100")
        .send()
        .await
        .expect("sent");
    let text = decision.text().await.expect("body");
    assert!(text.starts_with('{') && text.ends_with("}\n"), "{text:?}");
    let refused = client
        .get(format!(
            "{}/v1/spaces/spa_test/collections/users/profiles/phone:%2B1/traits",
            running.segment_url()
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.expect("body").ends_with("}\n"));
    running.stop().await;
}

#[test]
fn help_exits_0_and_a_port_in_use_names_its_option() {
    let help = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(help.status.success(), "{help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--functions-port N"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let busy = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "--in-memory",
            "--segment-port",
            "0",
            "--functions-port",
            &port,
        ])
        .output()
        .expect("run");
    assert!(!busy.status.success());
    let message = String::from_utf8_lossy(&busy.stderr);
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("--functions-port N"),
        "{message}"
    );
}

#[test]
fn the_welcome_points_at_the_console() {
    use std::io::{BufRead, BufReader};
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "--in-memory",
            "--segment-port",
            "0",
            "--functions-port",
            "0",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let stderr = sandbox.stderr.take().expect("stderr");
    // Read on a thread of its own, so a welcome that lost its last line fails in 20 s
    // instead of hanging.
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut welcome = String::new();
    while let Ok(line) = received.recv_timeout(std::time::Duration::from_secs(20)) {
        welcome.push_str(&line);
        welcome.push('\n');
        if line.contains("in a browser") {
            break;
        }
    }
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    let console = welcome
        .lines()
        .find_map(|l| l.trim().strip_prefix("console"))
        .map(str::trim)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no console line in {welcome}"));
    assert!(
        console.starts_with("http://127.0.0.1:") && console.ends_with('/'),
        "{welcome}"
    );
    assert!(
        welcome.contains(&format!("Or open {console} in a browser")),
        "{welcome}"
    );
}
