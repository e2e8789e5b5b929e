use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap();
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap();
    let region = std::env::var("AWS_REGION").unwrap();
    let creds = Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
        std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
        std::env::var("AWS_SESSION_TOKEN").ok(),
        None,
        "env",
    );
    let body = serde_json::json!({"TableName": std::env::var("TABLE").unwrap(), "Key": {"id": {"S": "phone:+15555550100"}}}).to_string();
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("dynamodb")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [("content-type", "application/x-amz-json-1.0"), ("x-amz-target", "DynamoDB_20120810.GetItem")];
    let host = endpoint.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
    let all: Vec<(&str, &str)> = headers.iter().copied().chain([("host", host)]).collect();
    let signable = SignableRequest::new("POST", &endpoint, all.into_iter(), SignableBody::Bytes(body.as_bytes())).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = client.post(&endpoint).body(body.clone());
    for (k, v) in headers { request = request.header(k, v); }
    for (k, v) in instructions.headers() { request = request.header(k, v); }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status} {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    println!("{}", v["Item"].as_object().map_or(0, |i| i.len()));
}
