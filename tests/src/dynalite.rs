//! dynalite (architect/dynalite: DynamoDB's JSON API on LevelDB, in memory here) started on
//! 127.0.0.1 for the trait-store tests. It is an npm package installed into `tests/dynalite`
//! (`.ci/run` does it); where it is missing the tests say so and pass, unless `CI` is set.
//! Like DynamoDB it wants a well-formed SigV4 `Authorization` header; unlike it, it checks
//! no signature (its `index.js`), so a request it accepts is signed in form only.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The table the tests create.
pub const TABLE: &str = "studio-router-traits";

pub struct Dynalite {
    _child: Child,
    port: u16,
}

fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dynalite/node_modules/.bin/dynalite")
}

impl Dynalite {
    /// dynalite on a free port with [`TABLE`] created; `None` when it is not installed and
    /// this is not CI (where a missing dynalite fails the test).
    pub async fn start() -> Option<Self> {
        if !program().exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "dynalite is not installed: cd tests/dynalite && npm ci"
            );
            eprintln!(
                "SKIPPED: dynalite is not installed (cd tests/dynalite && npm ci --no-audit --no-fund, Node 20+)"
            );
            return None;
        }
        let port = crate::refused_port().await;
        let child = Command::new(program())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--createTableMs", "0"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("dynalite starts");
        let dynalite = Self {
            _child: child,
            port,
        };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        dynalite
            .call(
                "CreateTable",
                json!({
                    "TableName": TABLE,
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST"
                }),
            )
            .await;
        Some(dynalite)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What a function needs to reach the table: its name, the endpoint, a region and
    /// credentials in the form Lambda sets them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TRAIT_STORE_TABLE", TABLE.to_owned()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.endpoint()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_owned()),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            ),
            ("AWS_SESSION_TOKEN", "session-token-for-tests".to_owned()),
        ]
    }

    /// The item under `key`, as DynamoDB's JSON gives it.
    pub async fn item(&self, key: &str) -> Option<Value> {
        let answer = self
            .call(
                "GetItem",
                json!({"TableName": TABLE, "Key": {"id": {"S": key}}, "ConsistentRead": true}),
            )
            .await;
        answer.get("Item").cloned()
    }

    /// Puts `item` as it is (DynamoDB JSON).
    pub async fn put(&self, item: Value) {
        self.call("PutItem", json!({"TableName": TABLE, "Item": item}))
            .await;
    }

    /// One operation, with an Authorization header of the form dynalite requires.
    pub async fn call(&self, operation: &str, body: Value) -> Value {
        let body = body.to_string();
        let request = format!(
            "POST / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: DynamoDB_20120810.{operation}\r\nX-Amz-Date: 20261206T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len(),
            port = self.port,
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("dynalite accepts");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.contains(" 200 "), "{operation}: {answer}");
        serde_json::from_str(body).unwrap_or(Value::Null)
    }
}
