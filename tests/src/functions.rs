//! The function binaries, run as Lambda runs them: under a [`RuntimeApi`], with exactly the
//! environment a test gives, their log lines collected.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{RuntimeApi, emf};

/// A function binary from this workspace's target directory, running under a [`RuntimeApi`].
pub struct Function {
    _child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    metrics: Arc<Mutex<Metrics>>,
}

/// The metrics documents a function wrote, and what was wrong with any of them.
#[derive(Default)]
struct Metrics {
    documents: Vec<Map<String, Value>>,
    problems: Vec<String>,
}

impl Metrics {
    fn take(&mut self, line: &str) {
        if !emf::is_document(line) {
            return;
        }
        match emf::check(line) {
            Ok(document) => self.documents.push(document),
            Err(problems) => self
                .problems
                .extend(problems.into_iter().map(|p| format!("{p}\n  in {line}"))),
        }
    }
}

/// Where cargo put the workspace's binaries: next to this test's own executable's folder, or
/// in `STUDIO_ROUTER_BINARIES` when set (another commit's build, for a before-and-after).
pub fn binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("STUDIO_ROUTER_BINARIES") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Builds the workspace's binaries with the release profile, so a benchmark never measures
/// a stale bootstrap left by an earlier build. A no-op when nothing changed.
pub fn build_release_binaries() {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--bins", "--quiet"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release --bins failed");
}

impl Function {
    /// Starts `name` with exactly `env` (plus the Runtime API's own variables).
    pub async fn start(name: &str, runtime: &RuntimeApi, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(binary(name));
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("function binary starts");
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let metrics: Arc<Mutex<Metrics>> = Arc::default();
        if let Some(stdout) = child.stdout.take() {
            let (sink, checked) = (logs.clone(), metrics.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    checked.lock().expect("metrics").take(&line);
                    sink.lock().expect("logs").push(line);
                }
            });
        }
        Self {
            _child: child,
            logs,
            metrics,
        }
    }

    /// The process id, for reading its memory use.
    pub fn pid(&self) -> Option<u32> {
        self._child.id()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    /// The `fallback_reason` of each decision log line, once there are `expected` of them (the
    /// log is read from a pipe, which may lag the answers). Fails unless there are exactly
    /// `expected` within 5 s.
    pub async fn fallback_reasons(&self, expected: usize) -> Vec<Value> {
        let reasons = || -> Vec<Value> {
            self.log_lines("decision")
                .into_iter()
                .map(|line| line["fallback_reason"].clone())
                .collect()
        };
        for _ in 0..250 {
            if reasons().len() >= expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let reasons = reasons();
        assert_eq!(reasons.len(), expected, "{reasons:?}");
        reasons
    }

    /// Every JSON log line so far whose message is `message`.
    pub fn log_lines(&self, message: &str) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["message"] == message)
            .collect()
    }

    /// The first JSON log line whose message is `message`, waiting briefly for it to arrive.
    pub async fn log_line(&self, message: &str) -> Value {
        for _ in 0..100 {
            let found = self
                .logs()
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["message"] == message);
            if let Some(line) = found {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no log line with message {message:?}; logs: {:#?}",
            self.logs()
        );
    }

    /// The metrics documents written so far, once there are at least `expected` (stdout is
    /// read from a pipe, which may lag the answers).
    pub async fn metrics(&self, expected: usize) -> Vec<Map<String, Value>> {
        for _ in 0..250 {
            if self.metrics.lock().expect("metrics").documents.len() >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.metrics.lock().expect("metrics").documents.clone()
    }

    /// The process's peak resident memory (`VmHWM`), in kB.
    pub fn peak_rss_kb(&self) -> u64 {
        let pid = self.pid().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self._child.try_wait(), Ok(None))
    }
}

/// Every metrics document a test's function wrote must meet the EMF specification: checked
/// when the function is dropped, at the end of every end-to-end test.
impl Drop for Function {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            metrics.problems.is_empty(),
            "metrics documents that break the EMF specification:\n{}",
            metrics.problems.join("\n")
        );
    }
}
