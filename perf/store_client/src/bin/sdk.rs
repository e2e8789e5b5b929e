use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::tls;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let out = client
        .get_item()
        .table_name(std::env::var("TABLE").unwrap())
        .key("id", AttributeValue::S("phone:+15555550100".into()))
        .send()
        .await
        .unwrap();
    println!("{}", out.item().map_or(0, |i| i.len()));
}
