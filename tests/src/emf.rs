//! CloudWatch's Embedded Metric Format specification, as a check every metrics document the
//! function binaries write must pass (each [`crate::Function`] checks its own).
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The units a MetricDefinition may name (the specification's schema).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];
/// The dimensions studio-router publishes: all low-cardinality, none a customer's.
const DIMENSIONS: [&str; 6] = [
    "function",
    "transition",
    "rule",
    "fallback_reason",
    "shadow_transition",
    "arm",
];
/// CloudWatch Logs' event limit (the specification's older, smaller figure).
const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Whether a log line is meant as a metrics document.
pub fn is_document(line: &str) -> bool {
    line.contains("\"_aws\"")
}

/// `line` as a metrics document, or every way it breaks the specification (or our own rules:
/// namespace `StudioRouter`, known dimensions only, no customer data).
pub fn check(line: &str) -> Result<Map<String, Value>, Vec<String>> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(text);
    if line.len() > MAX_EVENT_BYTES {
        problem(format!("{} bytes: over the event limit", line.len()));
    }
    // "a valid JSON object with no additional data at the beginning or end"
    if line.trim() != line || !line.starts_with('{') {
        problem("data around the JSON object".into());
    }
    let root = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(root)) => root,
        _ => return Err(vec![format!("not a JSON object: {line}")]),
    };
    let Some(Value::Object(aws)) = root.get("_aws") else {
        return Err(vec!["_aws is not an object".into()]);
    };
    match aws.get("Timestamp").and_then(Value::as_u64) {
        Some(ms) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            if ms.abs_diff(now) > 3_600_000 {
                problem(format!(
                    "Timestamp {ms} is not milliseconds since the epoch, now"
                ));
            }
        }
        None => problem("Timestamp is not an integer".into()),
    }
    let directives = match aws.get("CloudWatchMetrics") {
        Some(Value::Array(directives)) if !directives.is_empty() => directives.as_slice(),
        _ => {
            problem("CloudWatchMetrics is not a non-empty array".into());
            &[]
        }
    };
    for (i, directive) in directives.iter().enumerate() {
        let Some(directive) = directive.as_object() else {
            problem(format!("directive {i} is not an object"));
            continue;
        };
        for member in directive.keys() {
            if !["Namespace", "Dimensions", "Metrics"].contains(&member.as_str()) {
                problem(format!("directive {i} has an extra member {member}"));
            }
        }
        if directive.get("Namespace") != Some(&Value::from("StudioRouter")) {
            problem(format!("directive {i}: namespace is not StudioRouter"));
        }
        match directive.get("Dimensions").and_then(Value::as_array) {
            Some(sets) if !sets.is_empty() => {
                for set in sets {
                    let keys = set.as_array().map(Vec::as_slice).unwrap_or_default();
                    if keys.len() > 30 || !set.is_array() {
                        problem(format!(
                            "directive {i}: dimension set {set} (at most 30 keys)"
                        ));
                    }
                    for key in keys {
                        let Some(key) = key.as_str() else {
                            problem(format!(
                                "directive {i}: dimension key {key} is not a string"
                            ));
                            continue;
                        };
                        if !DIMENSIONS.contains(&key) {
                            problem(format!("directive {i}: unknown dimension {key}"));
                        }
                        match root.get(key) {
                            Some(Value::String(value)) if value.len() <= 1024 => {}
                            other => problem(format!(
                                "dimension {key}: target {other:?} is not a string of at most 1024 characters"
                            )),
                        }
                    }
                }
            }
            _ => problem(format!(
                "directive {i}: Dimensions is not a non-empty array"
            )),
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_else(|| {
                problem(format!("directive {i}: Metrics is not an array"));
                &[]
            });
        if metrics.len() > 100 {
            problem(format!(
                "directive {i}: {} metrics (at most 100)",
                metrics.len()
            ));
        }
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() || name.len() > 1024 {
                problem(format!("directive {i}: metric {metric} has no valid Name"));
            }
            if let Some(member) = metric.as_object().and_then(|m| {
                m.keys()
                    .find(|k| !["Name", "Unit", "StorageResolution"].contains(&k.as_str()))
            }) {
                problem(format!("metric {name}: extra member {member}"));
            }
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|unit| UNITS.contains(&unit))
            {
                problem(format!(
                    "metric {name}: unit {unit} is not a CloudWatch unit"
                ));
            }
            if let Some(resolution) = metric.get("StorageResolution")
                && ![1, 60].contains(&resolution.as_u64().unwrap_or(0))
            {
                problem(format!("metric {name}: storage resolution {resolution}"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => problem(format!(
                    "metric {name}: target {other:?} is not a number or at most 100 numbers"
                )),
            }
        }
    }
    let names: std::collections::BTreeSet<&str> = directives
        .iter()
        .flat_map(|d| {
            d["Metrics"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .filter_map(|m| m["Name"].as_str())
        .collect();
    if names.len() > 100 {
        problem(format!(
            "{} metrics in the document (at most 100)",
            names.len()
        ));
    }
    for (key, value) in &root {
        if let Value::String(text) = value
            && (text.contains('@') || text.chars().filter(char::is_ascii_digit).count() >= 7)
        {
            problem(format!(
                "{key} = {text:?} looks like a customer's phone or email"
            ));
        }
    }
    if problems.is_empty() {
        Ok(root)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(metrics: &str, members: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        format!(
            r#"{{"_aws":{{"Timestamp":{now},"CloudWatchMetrics":[{{"Namespace":"StudioRouter","Dimensions":[["function"]],"Metrics":[{metrics}]}}]}},"function":"route-decision"{members}}}"#
        )
    }

    #[test]
    fn a_valid_document_passes() {
        let line = document(
            r#"{"Name":"Decisions","Unit":"Count"}"#,
            r#","Decisions":1"#,
        );
        assert!(check(&line).is_ok(), "{:?}", check(&line));
    }

    #[test]
    fn each_breach_of_the_specification_is_found() {
        let cases = [
            (
                document(r#"{"Name":"Decisions","Unit":"Count"}"#, ""),
                "target",
            ),
            (
                document(
                    r#"{"Name":"Decisions","Unit":"Counts"}"#,
                    r#","Decisions":1"#,
                ),
                "unit",
            ),
            (
                document(r#"{"Name":"Decisions"}"#, r#","Decisions":"1""#),
                "target",
            ),
            (
                document(
                    r#"{"Name":"Decisions"}"#,
                    r#","Decisions":1,"who":"+15555550100""#,
                ),
                "phone",
            ),
            (
                document(&vec![r#"{"Name":"A"}"#; 101].join(","), r#","A":1"#),
                "at most 100",
            ),
            (format!(" {}", document("", "")), "around"),
            (
                document("", "").replace(r#"[["function"]]"#, r#"[["customer"]]"#),
                "unknown dimension",
            ),
        ];
        for (line, expected) in cases {
            let problems = check(&line).expect_err(&line);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:?}"
            );
        }
    }
}
