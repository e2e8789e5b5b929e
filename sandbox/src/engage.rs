//! The trait store in the sandbox (`--trait-store`): a local DynamoDB (dynalite, started here
//! from `tests/dynalite`, or an endpoint the user runs), trait-sync in-process, and Engage's
//! part played by the sandbox: every [`SYNC_EVERY`] each profile's computed traits are
//! evaluated, and those that changed since the last delivery go to trait-sync as the identify
//! Engage sends ("Using Engage data"), carrying the profile's identifiers. route-decision then
//! reads the table first, and the console shows where each decision's traits came from.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::lambda_urls::Functions;
use crate::segment::{Segment, TraitClass, now_ms, rfc3339};

/// The table the sandbox creates.
pub const TABLE: &str = "studio-router-traits";
/// How often Engage's part runs: a real-time computed trait's delivery is about this quick.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Where the table lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraitStoreOption {
    /// Start dynalite on a free loopback port, in memory.
    Start,
    /// A DynamoDB-compatible endpoint already running (dynalite, DynamoDB Local).
    Endpoint(String),
}

/// The table, and the dynalite process when the sandbox started one (stopped with it).
pub struct LocalTable {
    _child: Option<Child>,
    pub endpoint: String,
}

fn dynalite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/dynalite/node_modules/.bin/dynalite")
}

impl LocalTable {
    /// Starts or reaches the endpoint and creates [`TABLE`] unless it exists.
    pub async fn open(option: &TraitStoreOption) -> Result<Self, String> {
        let (child, endpoint) = match option {
            TraitStoreOption::Endpoint(url) => (None, url.trim_end_matches('/').to_owned()),
            TraitStoreOption::Start => {
                let program = dynalite();
                if !program.exists() {
                    return Err("--trait-store needs dynalite: cd tests/dynalite && npm ci (Node 20+), or --trait-store-endpoint URL".into());
                }
                let port = free_port().await?;
                let child = Command::new(program)
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--createTableMs", "0"])
                    .stdout(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| format!("dynalite did not start: {e}"))?;
                (Some(child), format!("http://127.0.0.1:{port}"))
            }
        };
        let table = Self {
            _child: child,
            endpoint,
        };
        table.create().await?;
        Ok(table)
    }

    /// What route-decision and trait-sync need to reach the table (credentials in the form
    /// Lambda sets them; a local DynamoDB checks none).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("TRAIT_STORE_TABLE", TABLE),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDSANDBOX"),
            ("AWS_SECRET_ACCESS_KEY", "sandbox-secret-key"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    async fn create(&self) -> Result<(), String> {
        let body = json!({
            "TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]
        });
        let mut last = String::new();
        for _ in 0..100 {
            match post(&self.endpoint, "CreateTable", &body).await {
                Ok((200, _)) => return Ok(()),
                Ok((_, answer)) if answer.contains("ResourceInUseException") => return Ok(()),
                Ok((status, answer)) => return Err(format!("CreateTable: {status} {answer}")),
                Err(error) => last = error,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no DynamoDB at {}: {last}", self.endpoint))
    }
}

async fn free_port() -> Result<u16, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// One operation over plain HTTP, with an Authorization header of the form a local DynamoDB
/// requires (it checks no signature): the status and the whole response.
pub async fn post(endpoint: &str, operation: &str, body: &Value) -> Result<(u16, String), String> {
    let host = endpoint
        .strip_prefix("http://")
        .ok_or("the endpoint must be http:// on this machine")?;
    let body = body.to_string();
    let request = format!(
        "POST / HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         X-Amz-Target: DynamoDB_20120810.{operation}\r\nX-Amz-Date: 20261206T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDSANDBOX/20261206/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, answer))
}

/// Engage's part, until `stopped`: each profile's changed computed traits to trait-sync.
pub fn follow(segment: Arc<Segment>, functions: Functions, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut sent: HashMap<String, BTreeMap<String, Value>> = HashMap::new();
        loop {
            sync_once(&segment, &functions, &mut sent).await;
            tokio::select! {
                _ = tokio::time::sleep(SYNC_EVERY) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    });
}

/// One round: a delivery per profile whose computed traits changed since its last one.
async fn sync_once(
    segment: &Segment,
    functions: &Functions,
    sent: &mut HashMap<String, BTreeMap<String, Value>>,
) {
    let Ok(profiles) = segment.store.profiles() else {
        return;
    };
    let now = now_ms();
    for profile in profiles {
        let Ok(traits) = segment.traits(&profile, TraitClass::Computed, now) else {
            continue;
        };
        let current: BTreeMap<String, Value> =
            traits.into_iter().map(|(k, t)| (k, t.value)).collect();
        let before = sent.get(&profile);
        let changed: Map<String, Value> = current
            .iter()
            .filter(|(key, value)| before.and_then(|b| b.get(*key)) != Some(*value))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if changed.is_empty() {
            continue;
        }
        let delivery = identify(segment, &profile, changed, now);
        let answer = functions.invoke("trait-sync", delivery).await;
        // A delivery trait-sync did not write is sent again next round, as Engage retries.
        if answer.is_some_and(|a| a.get("errorType").is_none()) {
            sent.insert(profile, current);
        }
    }
}

/// The identify Engage sends for a computed trait, with the profile's identifiers: `userId`
/// when it has one, and every phone and email in `context.externalIds` (as ID Sync adds them).
fn identify(segment: &Segment, profile: &str, traits: Map<String, Value>, now: i64) -> Value {
    let identities = segment.store.identities(profile).unwrap_or_default();
    let user_id = identities
        .iter()
        .find(|i| i.kind == "user_id")
        .map(|i| i.value.clone());
    let external_ids: Vec<Value> = identities
        .iter()
        .filter(|i| i.kind != "anonymous_id")
        .map(|i| json!({"id": i.value, "type": i.kind, "collection": "users", "encoding": "none"}))
        .collect();
    json!({
        "type": "identify",
        "userId": user_id,
        "messageId": format!("engage-{profile}-{now}"),
        "timestamp": rfc3339(now),
        "traits": traits,
        "context": {
            "personas": {"computation_class": "trait", "space_id": segment.space_id, "namespace": segment.space_id},
            "externalIds": external_ids
        },
        "integrations": {"All": false, "AWS Lambda": true}
    })
}
