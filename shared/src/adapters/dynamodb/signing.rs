//! Signature Version 4 for DynamoDB's JSON API, with AWS's own signer (`aws-sigv4`): the
//! credentials are the execution role's, as Lambda puts them in the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; "Defined runtime
//! environment variables" in the Lambda Developer Guide).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Why a request could not be signed (a header or URL the signer refuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request cannot be signed: {0}")]
pub struct SigningError(String);

/// Who signs, and for which region.
#[derive(Clone)]
pub struct Signer {
    identity: Identity,
    region: String,
}

/// The credentials as the environment gives them; the secret never reaches a log (the
/// credentials' `Debug` redacts it).
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(credentials: AwsCredentials, region: String) -> Self {
        let credentials = Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
            None,
            "environment",
        );
        Self {
            identity: credentials.into(),
            region,
        }
    }

    /// The headers that sign a POST of `body` to `url` carrying `headers` (`host` among them),
    /// or why it cannot be signed.
    pub fn sign(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, SigningError> {
        self.sign_at(SystemTime::now(), url, headers, body)
    }

    fn sign_at(
        &self,
        time: SystemTime,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, SigningError> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("dynamodb")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SigningError(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| SigningError(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| SigningError(e.to_string()))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The same request signed by botocore 1.43 (`SigV4Auth(creds, "dynamodb",
    /// "us-east-1").add_auth(request)` at 2026-12-06T00:00:00Z): the header set and the
    /// signature must match, or DynamoDB would refuse every call.
    #[test]
    fn a_get_item_is_signed_as_botocore_signs_it() {
        let signer = Signer::new(
            AwsCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: Some("session-token".into()),
            },
            "us-east-1".into(),
        );
        let body = r#"{"TableName":"traits","Key":{"id":{"S":"phone:+15555550100"}}}"#;
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "DynamoDB_20120810.GetItem"),
            ("host", "dynamodb.us-east-1.amazonaws.com"),
        ];
        let at = UNIX_EPOCH + Duration::from_secs(1_796_515_200); // 2026-12-06T00:00:00Z
        let signed = signer
            .sign_at(
                at,
                "https://dynamodb.us-east-1.amazonaws.com/",
                &headers,
                body.as_bytes(),
            )
            .unwrap();
        let header = |name: &str| {
            signed
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-amz-date"), Some("20261206T000000Z"));
        assert_eq!(header("x-amz-security-token"), Some("session-token"));
        assert_eq!(
            header("authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
                 Signature=e03bbaad6d2afdd14e82d535a82f38805625e06da245b2657e1ee9770b2feb23"
            )
        );
    }
}
