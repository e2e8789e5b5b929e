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
    let usage = String::from_utf8_lossy(&help.stdout);
    assert!(
        usage.contains("--functions-port N") && usage.contains("--rules FILE"),
        "{usage}"
    );

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

/// The sandbox binary, its stderr read line by line on a thread of its own, so a welcome
/// that lost its last line fails in 20 s instead of hanging.
struct Spawned {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Spawned {
    fn start(args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// What it printed up to and with the first line containing `until` (or 20 s of silence).
    fn read_until(&self, until: &str) -> String {
        let mut text = String::new();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(20)) {
            text.push_str(&line);
            text.push('\n');
            if line.contains(until) {
                break;
            }
        }
        text
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ANY_PORTS: [&str; 4] = ["--segment-port", "0", "--functions-port", "0"];

#[test]
fn the_welcome_points_at_the_console_and_says_what_204_means() {
    let sandbox = Spawned::start(&[&["--in-memory"][..], &ANY_PORTS].concat());
    let welcome = sandbox.read_until("in a browser");
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
    // The wrap-up command prints only a status: it says that 204 is success.
    let wrap_up = welcome
        .lines()
        .find(|l| l.contains("wrap-up-ingest") && l.contains("http_code"))
        .unwrap_or_else(|| panic!("no wrap-up command in {welcome}"));
    assert!(wrap_up.contains("204: accepted"), "{wrap_up}");
}

#[test]
fn rules_from_the_option_are_loaded_and_a_broken_edit_reads_as_text() {
    let dir = common::TempDb::new("rules-option");
    let folder = dir.0.parent().expect("a folder").to_path_buf();
    std::fs::create_dir_all(&folder).expect("folder");
    let file = folder.join("my-rules.json");
    let good = r#"{"rules": [{"name": "mine", "when": "traits.vip == true", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#;
    std::fs::write(&file, good).expect("rules");
    let path = file.display().to_string();
    let sandbox = Spawned::start(&[&["--in-memory", "--rules", &path][..], &ANY_PORTS].concat());
    let welcome = sandbox.read_until("in a browser");
    let rules = welcome
        .lines()
        .find(|l| l.trim_start().starts_with("rules "))
        .unwrap_or_else(|| panic!("no rules line in {welcome}"));
    assert!(rules.contains(&path) && rules.contains("mine"), "{rules}");

    std::fs::write(&file, good.replace("traits.vip == true", "traits.vip ==")).expect("edit");
    let reload = sandbox.read_until("^");
    assert!(
        reload.contains(&format!("{path} changed but cannot be used")),
        "{reload}"
    );
    let caret = reload.lines().last().unwrap_or_default();
    assert!(caret.trim_end().ends_with('^'), "{reload}");
    assert!(
        !reload.contains("\\\"") && !reload.contains("\\n"),
        "not JSON-escaped: {reload}"
    );
}

#[test]
fn a_second_sandbox_on_the_same_data_is_refused_by_name() {
    let dir = common::TempDb::new("second-sandbox");
    let data = dir.0.display().to_string();
    let first = Spawned::start(&[&["--data", &data][..], &ANY_PORTS].concat());
    let _ = first.read_until("in a browser");
    let second = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([&["--data", &data][..], &ANY_PORTS].concat())
        .output()
        .expect("run");
    assert!(!second.status.success(), "{second:?}");
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains(&data) && message.contains("another sandbox is using it"),
        "{message}"
    );
    drop(first);
    // Once the first has stopped, the file is free again.
    let third = Spawned::start(&[&["--data", &data][..], &ANY_PORTS].concat());
    assert!(third.read_until("in a browser").contains("in a browser"));
}
