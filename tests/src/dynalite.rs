//! dynalite (architect/dynalite: DynamoDB's JSON API on LevelDB, in memory here) started on
//! 127.0.0.1 for the trait-store tests, the way the sandbox's `--trait-store` starts it. It is
//! an npm package installed into `tests/dynalite` (`.ci/run` does it); where it is missing
//! `build.rs` marks the tests ignored. Like DynamoDB it wants a well-formed SigV4
//! `Authorization` header; unlike it, it checks no signature (its `index.js`), so a request
//! it accepts is signed in form only.

use std::path::PathBuf;

use sandbox::engage::{LocalTable, TraitStoreOption, post};
use serde_json::{Value, json};

/// The table the tests create.
pub use sandbox::engage::TABLE;

pub struct Dynalite {
    table: LocalTable,
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
        let table = LocalTable::open(&TraitStoreOption::Start)
            .await
            .expect("dynalite starts with the table");
        Some(Self { table })
    }

    pub fn endpoint(&self) -> String {
        self.table.endpoint.clone()
    }

    /// What a function needs to reach the table: its name, the endpoint, a region and
    /// credentials in the form Lambda sets them (a session token too).
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

    /// One operation; anything but a 200 fails the test.
    pub async fn call(&self, operation: &str, body: Value) -> Value {
        let (status, answer) = post(&self.table.endpoint, operation, &body)
            .await
            .unwrap_or_else(|e| panic!("{operation}: {e}"));
        assert_eq!(status, 200, "{operation}: {answer}");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).unwrap_or(Value::Null)
    }
}
