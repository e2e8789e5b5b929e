//! The console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. It opens the console on a running sandbox,
//! finds the demo customers, edits a rule and sees the dry run move one, applies it and sees
//! the next decision follow, sends a wrap-up and sees the timeline and trait change, and
//! watches the live decision list grow. It saves screenshots of the main views under
//! `target/tmp/console-screenshots/`, or with `UPDATE_SCREENSHOTS=1` over the book's
//! (`docs/src/console/`).
//!
//! Needs Chromium: `.ci/run` installs it when missing and runs this with
//! `--run-ignored only`; elsewhere `apt-get update && apt-get install -y chromium chromium-driver` first.
//! `CHROMEDRIVER` and `CHROMIUM` name other binaries.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Http, TempDb, options, start};
use fantoccini::{Client, ClientBuilder, Locator};
use sandbox::demo::{DOCS_READER, NEWCOMER, RETURNING, VIP};
use sandbox::{Running, SANDBOX_RULES};
use serde_json::{Value, json};

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let process = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}): apt-get update && apt-get install -y chromium chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { process, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A headless Chromium session: a fresh profile, no calls out, a laptop-sized window.
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1366,1000".into(),
    ];
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut chrome = json!({"args": args});
    let binary = std::env::var("CHROMIUM").ok().or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .map(str::to_owned)
    });
    if let Some(binary) = binary {
        chrome["binary"] = json!(binary);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), chrome);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

/// Runs `script` until it returns `true` (10 s at most), or fails naming `what`.
async fn until(client: &Client, what: &str, script: &str) {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(10) {
        last = client
            .execute(script, Vec::new())
            .await
            .unwrap_or(Value::Null);
        if last == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: still {last} after 10 s");
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Saves what the browser shows as `<name>.png` (see the module doc for where), scrolled to the top or to
/// the element `at`.
async fn screenshot(client: &Client, name: &str, at: Option<&str>) {
    let scroll = match at {
        Some(css) => format!("document.querySelector({css:?}).scrollIntoView(); return true"),
        None => "window.scrollTo(0, 0); return true".to_owned(),
    };
    client.execute(&scroll, Vec::new()).await.expect("scrolled");
    let png = client.screenshot().await.expect("a screenshot");
    // The committed ones (the book shows them) change only when asked, so a test run leaves
    // the working tree clean.
    let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/src/console"))
    } else {
        PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/console-screenshots"))
    };
    std::fs::create_dir_all(&dir).expect("the screenshots' folder");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot saved");
}

async fn profile_of(running: &Running, phone: &str) -> String {
    let list = Http::new()
        .console(running, "customers?reveal=true")
        .await
        .body;
    list["customers"]
        .as_array()
        .and_then(|all| {
            all.iter().find(|c| {
                c["identifiers"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i["value"] == phone))
            })
        })
        .and_then(|c| c["profile"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no profile for {phone}"))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs it"]
async fn the_console_in_a_browser() {
    let dir = TempDb::new("console-browser");
    let folder = dir.0.parent().expect("a folder").to_path_buf();
    std::fs::create_dir_all(&folder).expect("folder");
    let rules_file = folder.join("rules.json");
    std::fs::write(&rules_file, SANDBOX_RULES).expect("rules");
    let running = start(sandbox::Options {
        seed_demo: true,
        function_env: vec![
            (
                "ROUTING_RULES_FILE".into(),
                rules_file.display().to_string(),
            ),
            // A candidate set for the Outcomes view's shadow section: everyone to an agent.
            (
                "SHADOW_ROUTING_RULES".into(),
                r#"{"rules": [], "default": "agent", "on_error": "agent"}"#.into(),
            ),
        ],
        ..options()
    })
    .await;
    let dana = profile_of(&running, DOCS_READER).await;
    let nico = profile_of(&running, NEWCOMER).await;
    let driver = Driver::start();
    let client = browser(&driver, &folder.join("chromium")).await;
    let console = running.console_url();

    // The demo customers, masked, with their transitions.
    client.goto(&console).await.expect("console opens");
    until(
        &client,
        "four customers listed",
        "return document.querySelectorAll('#customers tbody tr').length === 4",
    )
    .await;
    let row = |profile: &str| format!("#customers tr[data-profile='{profile}']");
    assert_eq!(
        text_of(&client, &format!("{} [data-transition]", row(&dana))).await,
        "agent"
    );
    assert_eq!(
        text_of(&client, &format!("{} [data-transition]", row(&nico))).await,
        "bot"
    );
    let listed = text_of(&client, "#customers").await;
    assert!(
        listed.contains("+1******0100") && !listed.contains("5555550100"),
        "{listed}"
    );
    // Names and headers wrap between words, never inside one ("Dan/a", "Cust/ome/r").
    until(
        &client,
        "names and headers on one line each",
        "return [...document.querySelectorAll('#customers tbody td:first-child a, #customers th:first-child')].every((e) => { const r = document.createRange(); r.selectNodeContents(e); return r.getClientRects().length === 1; }) && !document.querySelector('#active-rule-names').textContent.includes('loading')",
    )
    .await;
    screenshot(&client, "customers", None).await;

    // Revealed on request, locally.
    click(&client, "reveal").await;
    until(
        &client,
        "phones revealed",
        "return document.querySelector('#customers').textContent.includes('+15555550100')",
    )
    .await;
    click(&client, "reveal").await;
    until(
        &client,
        "phones masked again",
        "const t = document.querySelector('#customers').textContent; return t.includes('+1******0100') && !t.includes('5555550100')",
    )
    .await;

    // Dana's page: which events her docs trait counted.
    client
        .goto(&format!("{console}#/customers/{dana}"))
        .await
        .expect("Dana's page");
    until(
        &client,
        "Dana's timeline",
        "return document.querySelectorAll('#timeline li[data-message-id]').length >= 6",
    )
    .await;
    screenshot(&client, "customer", None).await;
    client
        .find(Locator::Css(
            "#customer-computed tr[data-trait='docs_last_2_days'] button",
        ))
        .await
        .expect("the count")
        .click()
        .await
        .expect("click");
    until(
        &client,
        "the counted events marked",
        "return document.querySelectorAll('#timeline li.counted').length === 3",
    )
    .await;
    screenshot(&client, "timeline", Some("#timeline")).await;

    // The workbench, reached from the keyboard: Enter on the nav link.
    client
        .find(Locator::Id("nav-rules"))
        .await
        .expect("the Rules link")
        .send_keys("\u{E007}")
        .await
        .expect("Enter");
    until(
        &client,
        "the active rules in the editor",
        "return document.querySelector('#rules-editor').value.includes('read-docs-recently')",
    )
    .await;
    // The skip link moves to the content and leaves the view as it is.
    client
        .find(Locator::Css(".skip"))
        .await
        .expect("the skip link")
        .send_keys("\u{E007}")
        .await
        .expect("Enter");
    until(
        &client,
        "still the workbench after the skip link",
        "return location.hash === '#main' && !document.querySelector('#view-rules').hidden && document.activeElement.id === 'main'",
    )
    .await;
    let editor = client
        .find(Locator::Id("rules-editor"))
        .await
        .expect("editor");
    // A typo first: refused at its rule, the caret put where the compiler points.
    let broken = SANDBOX_RULES.replace("docs_last_2_days > 0", "docs_last_2_days > > 0");
    editor.clear().await.expect("clear");
    editor.send_keys(&broken).await.expect("typed");
    click(&client, "rules-check").await;
    until(
        &client,
        "the compile error shown",
        "return !!document.querySelector('#rules-error')",
    )
    .await;
    let error = text_of(&client, "#rules-error").await;
    assert!(
        error.contains("rule \"read-docs-recently\"") && error.contains("column 27"),
        "{error}"
    );
    let caret = client
        .execute(
            "const e = document.querySelector('#rules-editor'); return [document.activeElement === e, e.selectionStart];",
            Vec::new(),
        )
        .await
        .expect("caret");
    let typed = client
        .execute(
            "return document.querySelector('#rules-editor').value",
            Vec::new(),
        )
        .await
        .expect("text");
    let typed = typed.as_str().unwrap_or_default();
    let second = typed.find("> > 0").map(|i| i + 2);
    assert_eq!(caret, json!([true, second]), "the caret at the second '>'");
    screenshot(&client, "rules-error", None).await;

    // Docs readers need more than 5 pages: the dry run moves Dana to the bot.
    let stricter = SANDBOX_RULES.replace("docs_last_2_days > 0", "docs_last_2_days > 5");
    editor.clear().await.expect("clear");
    editor.send_keys(&stricter).await.expect("typed");
    click(&client, "rules-dry-run").await;
    until(
        &client,
        "the dry run",
        "return !document.querySelector('#dry-run').hidden",
    )
    .await;
    let moved = format!("#dry-run tr[data-profile='{dana}']");
    assert_eq!(
        client
            .find(Locator::Css(&moved))
            .await
            .expect("Dana in the dry run")
            .attr("data-moved")
            .await
            .expect("attr")
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        text_of(&client, &format!("{moved} .after [data-transition]")).await,
        "bot"
    );
    let unmoved = client
        .execute(
            "return document.querySelectorAll('#dry-run tr[data-moved=\"true\"]').length",
            Vec::new(),
        )
        .await
        .expect("count");
    assert_eq!(unmoved, json!(1));
    assert!(
        text_of(&client, "#rules-ok")
            .await
            .contains("1 customer agent → bot")
    );
    screenshot(&client, "rules", Some(".actions")).await;

    // Applied (not saved): the next decision follows, the file stays.
    click(&client, "rules-apply").await;
    until(
        &client,
        "applied",
        "const ok = document.querySelector('#rules-ok'); return !!ok && ok.textContent.includes('Applied')",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&rules_file).expect("file"),
        SANDBOX_RULES
    );
    client
        .goto(&format!("{console}#/try/{dana}"))
        .await
        .expect("try it");
    until(
        &client,
        "Dana chosen",
        &format!("return document.querySelector('#try-customer').value === '{dana}'"),
    )
    .await;
    click(&client, "try-message").await;
    until(
        &client,
        "Dana's decision",
        "return document.querySelector('#try-summary').textContent.includes('answered 200: bot by rule default')",
    )
    .await;
    let decision = Http::new()
        .function(&running, "route-decision", &[("From", DOCS_READER)])
        .await;
    assert_eq!(decision.body["transition"], "bot");

    // A wrap-up for Nico: his timeline and total_inbounds change.
    client
        .find(Locator::Css(&format!(
            "#try-customer option[value='{nico}']"
        )))
        .await
        .expect("Nico in the list")
        .click()
        .await
        .expect("chosen");
    until(
        &client,
        "Nico shown",
        "return (document.querySelector('#try-decision') || {textContent: ''}).textContent.startsWith('Nico')",
    )
    .await;
    click(&client, "try-wrap-up").await;
    until(
        &client,
        "total_inbounds=1 for Nico",
        "return document.querySelector('#try-traits').textContent.includes('total_inbounds=1')",
    )
    .await;
    screenshot(&client, "try", None).await;
    client
        .goto(&format!("{console}#/customers/{nico}"))
        .await
        .expect("Nico's page");
    until(
        &client,
        "the wrap-up in Nico's timeline",
        "const first = document.querySelector('#timeline li[data-message-id]'); return !!first && first.textContent.includes('Flex - ')",
    )
    .await;
    assert_eq!(
        text_of(
            &client,
            "#customer-computed tr[data-trait='total_inbounds'] .trait-value"
        )
        .await,
        "1"
    );

    // The live list grows without a reload when Studio (here, curl's stand-in) asks.
    client
        .goto(&format!("{console}#/decisions"))
        .await
        .expect("decisions");
    // Every decision made so far listed (the page polls each second, so the last ones may
    // not have reached it yet), before one more is made.
    let rows = Http::new().console(&running, "decisions").await.body["decisions"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(rows >= 1, "decisions were made earlier in this test");
    until(
        &client,
        "every decision so far listed",
        &format!("return document.querySelectorAll('#decisions tbody tr').length === {rows}"),
    )
    .await;
    let answer = Http::new()
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(answer.status, 200);
    until(
        &client,
        "the new decision listed",
        &format!(
            "const rows = document.querySelectorAll('#decisions tbody tr'); return rows.length === {} && rows[0].textContent.includes('+1******0101')",
            rows + 1
        ),
    )
    .await;
    // More of them, for the picture: every demo customer, a stranger and a refused request.
    for from in [VIP, RETURNING, DOCS_READER, "+15555550177", "not a number"] {
        Http::new()
            .function(&running, "route-decision", &[("From", from)])
            .await;
    }
    until(
        &client,
        "five more listed",
        &format!(
            "return document.querySelectorAll('#decisions tbody tr').length === {}",
            rows + 6
        ),
    )
    .await;
    screenshot(&client, "decisions", None).await;

    // Outcomes: per rule, what followed the decisions (the API's counts are tested apart).
    client
        .goto(&format!("{console}#/outcomes"))
        .await
        .expect("outcomes");
    until(
        &client,
        "outcomes listed",
        "const row = document.querySelector('#outcomes tbody tr[data-rule=\"default\"] .decisions'); return !!row && Number(row.textContent) >= 1",
    )
    .await;
    until(
        &client,
        "the shadow's disagreements shown, masked",
        "const box = document.querySelector('#shadow-outcomes'); const cell = document.querySelector('#shadow-examples tbody td'); return !box.hidden && !!cell && cell.textContent.includes('******') && /disagreed on [1-9]/.test(document.querySelector('#shadow-summary').textContent)",
    )
    .await;
    screenshot(&client, "outcomes", None).await;

    client.close().await.expect("session closed");
    drop(driver);
    running.stop().await;
}

async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #{id}: {e}"));
}
