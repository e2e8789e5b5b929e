//! Who may call a function over HTTP: Twilio (by `X-Twilio-Signature`), a proxy holding the
//! shared secret, or anyone when `ALLOW_UNAUTHENTICATED` is set for local use.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::invocation::HttpRequest;

/// A refusal. Deliberately carries no detail: the caller learns nothing about which check failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the request is not authenticated")]
pub struct Unauthorized;

#[derive(Clone, Default)]
pub struct Authenticator {
    /// The account's Auth Token: enables `X-Twilio-Signature` checks.
    pub twilio_auth_token: Option<Secret>,
    /// `https://example.com` when Twilio calls a proxy or custom domain, not the Lambda's own host.
    pub public_base_url: Option<String>,
    /// Enables `Authorization: Bearer <secret>` and the Basic password.
    pub shared_secret: Option<Secret>,
    pub allow_unauthenticated: bool,
}

impl Authenticator {
    pub fn has_any_method(&self) -> bool {
        self.twilio_auth_token.is_some() || self.shared_secret.is_some()
    }

    /// Accepts the request when any configured method passes.
    pub fn check(&self, request: &HttpRequest) -> Result<(), Unauthorized> {
        if !self.has_any_method() {
            return if self.allow_unauthenticated {
                Ok(())
            } else {
                Err(Unauthorized)
            };
        }
        if let Some(secret) = &self.shared_secret
            && presented_secret(request)
                .is_some_and(|presented| equal(presented.as_bytes(), secret.expose().as_bytes()))
        {
            return Ok(());
        }
        if let Some(token) = &self.twilio_auth_token
            && let Some(signature) = request.header("x-twilio-signature")
            && self.twilio_signature_valid(token.expose(), signature, request)
        {
            return Ok(());
        }
        Err(Unauthorized)
    }

    fn twilio_signature_valid(&self, token: &str, signature: &str, request: &HttpRequest) -> bool {
        let url = self.public_url(request);
        if request.method == "POST" && request.is_json() {
            // JSON bodies are not signed as parameters: the URL carries their SHA-256 instead,
            // and that hash must match the body we actually received.
            let Some(claimed) = request
                .query_fields()
                .get("bodySHA256")
                .and_then(|v| v.as_str().map(str::to_owned))
            else {
                return false;
            };
            let actual = hex(&Sha256::digest(&request.body));
            if !equal(claimed.to_ascii_lowercase().as_bytes(), actual.as_bytes()) {
                return false;
            }
            return url_variants(&url)
                .iter()
                .any(|u| equal(sign(token, u, &[]).as_bytes(), signature.as_bytes()));
        }
        let params = if request.method == "POST" {
            request.form_pairs()
        } else {
            Vec::new()
        };
        url_variants(&url)
            .iter()
            .any(|u| equal(sign(token, u, &params).as_bytes(), signature.as_bytes()))
    }

    /// The URL Twilio called: the configured public base (or the event's own host over
    /// HTTPS), the raw path and the raw query string.
    fn public_url(&self, request: &HttpRequest) -> String {
        let base = match &self.public_base_url {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => format!("https://{}", request.domain_name),
        };
        let mut url = format!("{base}{}", request.raw_path);
        if !request.raw_query_string.is_empty() {
            url.push('?');
            url.push_str(&request.raw_query_string);
        }
        url
    }
}

/// Twilio's signature: HMAC-SHA1 over the URL followed by each parameter name and value,
/// names sorted, repeated names' values de-duplicated and sorted; Base64 of the digest.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL as given, and with the scheme's default port added or removed: Twilio's helper
/// libraries accept either, because what Twilio signed depends on how the URL was configured.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return variants,
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let other = match host.strip_suffix(default_port) {
        Some(bare) => format!("{scheme}://{userinfo}{bare}{tail}"),
        None if !host.contains(':') || host.ends_with(']') => {
            format!("{scheme}://{userinfo}{host}{default_port}{tail}")
        }
        None => return variants,
    };
    variants.push(other);
    variants
}

/// The secret a proxy presented: `Bearer <secret>`, or the password of Basic auth (Studio
/// sends `https://user:secret@host/` that way).
fn presented_secret(request: &HttpRequest) -> Option<String> {
    let header = request.header("authorization")?.trim();
    let (scheme, value) = header.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(value.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        return decoded
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

/// Constant-time comparison, so response timing reveals nothing about how much matched.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::http::{HeaderMap, HeaderValue};

    use super::*;

    // Twilio's published test vectors (see ../shared/reference/twilio.md).
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FORM_SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const FORM_SIGNATURE_WITH_PORT: &str = "kvajT1Ptam85bY51eRf/AJRuM3w=";
    const JSON_BODY: &str = r#"{"property": "value", "boolean": true}"#;
    const JSON_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    const JSON_SIGNATURE: &str = "a9nBmqA0ju/hNViExpshrM61xv4=";

    fn form_body() -> String {
        "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212".to_owned()
    }

    fn request(
        method: &str,
        query: &str,
        headers: &[(&'static str, &str)],
        content_type: &str,
        body: &str,
    ) -> HttpRequest {
        let mut map = HeaderMap::new();
        map.insert("content-type", HeaderValue::from_str(content_type).unwrap());
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        HttpRequest {
            method: method.into(),
            domain_name: "mycompany.com".into(),
            raw_path: "/myapp.php".into(),
            raw_query_string: query.into(),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    fn twilio(token: &str) -> Authenticator {
        Authenticator {
            twilio_auth_token: Some(Secret::new(token)),
            ..Default::default()
        }
    }

    fn signed_form(signature: &str) -> HttpRequest {
        request(
            "POST",
            "foo=1&bar=2",
            &[("x-twilio-signature", signature)],
            "application/x-www-form-urlencoded",
            &form_body(),
        )
    }

    #[test]
    fn the_reference_vectors_sign_as_published() {
        let params: Vec<(String, String)> = form_urlencoded::parse(form_body().as_bytes())
            .into_owned()
            .collect();
        assert_eq!(sign(TOKEN, URL, &params), FORM_SIGNATURE);
        assert_eq!(
            sign(
                TOKEN,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &params
            ),
            FORM_SIGNATURE_WITH_PORT
        );
        assert_eq!(hex(&Sha256::digest(JSON_BODY.as_bytes())), JSON_HASH);
        assert_eq!(
            sign(TOKEN, &format!("{URL}&bodySHA256={JSON_HASH}"), &[]),
            JSON_SIGNATURE
        );
    }

    #[test]
    fn a_signed_form_post_is_accepted() {
        assert_eq!(twilio(TOKEN).check(&signed_form(FORM_SIGNATURE)), Ok(()));
    }

    #[test]
    fn a_signature_made_with_the_default_port_is_accepted_either_way() {
        // Twilio signed https://mycompany.com:443/..., the event says mycompany.com.
        assert_eq!(
            twilio(TOKEN).check(&signed_form(FORM_SIGNATURE_WITH_PORT)),
            Ok(())
        );
        // Twilio signed without the port, the configured public URL has it.
        let mut auth = twilio(TOKEN);
        auth.public_base_url = Some("https://mycompany.com:443/".into());
        assert_eq!(auth.check(&signed_form(FORM_SIGNATURE)), Ok(()));
        assert_eq!(
            url_variants("https://u:p@h.io:443/x?y=1"),
            ["https://u:p@h.io:443/x?y=1", "https://u:p@h.io/x?y=1"]
        );
        assert_eq!(
            url_variants("http://h.io/x"),
            ["http://h.io/x", "http://h.io:80/x"]
        );
        assert_eq!(url_variants("https://h.io:8443/x"), ["https://h.io:8443/x"]);
    }

    #[test]
    fn a_tampered_body_or_a_wrong_token_is_refused() {
        let mut tampered = signed_form(FORM_SIGNATURE);
        tampered.body = form_body()
            .replace("Digits=1234", "Digits=9999")
            .into_bytes();
        assert_eq!(twilio(TOKEN).check(&tampered), Err(Unauthorized));
        assert_eq!(
            twilio("54321").check(&signed_form(FORM_SIGNATURE)),
            Err(Unauthorized)
        );
        assert_eq!(twilio(TOKEN).check(&signed_form("")), Err(Unauthorized));
        let mut other_host = signed_form(FORM_SIGNATURE);
        other_host.domain_name = "abc.lambda-url.us-east-1.on.aws".into();
        assert_eq!(twilio(TOKEN).check(&other_host), Err(Unauthorized));
    }

    #[test]
    fn the_public_base_url_fixes_signatures_behind_a_proxy() {
        let mut behind_proxy = signed_form(FORM_SIGNATURE);
        behind_proxy.domain_name = "abc.lambda-url.us-east-1.on.aws".into();
        let mut auth = twilio(TOKEN);
        auth.public_base_url = Some("https://mycompany.com".into());
        assert_eq!(auth.check(&behind_proxy), Ok(()));
    }

    #[test]
    fn a_json_body_is_checked_through_body_sha256() {
        let query = format!("foo=1&bar=2&bodySHA256={JSON_HASH}");
        let good = request(
            "POST",
            &query,
            &[("x-twilio-signature", JSON_SIGNATURE)],
            "application/json",
            JSON_BODY,
        );
        assert_eq!(twilio(TOKEN).check(&good), Ok(()));
        // The URL (and so the signature) is intact but the body is not the one hashed.
        let swapped = request(
            "POST",
            &query,
            &[("x-twilio-signature", JSON_SIGNATURE)],
            "application/json",
            r#"{"property": "evil"}"#,
        );
        assert_eq!(twilio(TOKEN).check(&swapped), Err(Unauthorized));
        let no_hash = request(
            "POST",
            "foo=1&bar=2",
            &[("x-twilio-signature", JSON_SIGNATURE)],
            "application/json",
            JSON_BODY,
        );
        assert_eq!(twilio(TOKEN).check(&no_hash), Err(Unauthorized));
    }

    #[test]
    fn a_signed_get_signs_only_the_url() {
        let signature = sign(TOKEN, URL, &[]);
        let get = request(
            "GET",
            "foo=1&bar=2",
            &[("x-twilio-signature", &signature)],
            "",
            "",
        );
        assert_eq!(twilio(TOKEN).check(&get), Ok(()));
    }

    #[test]
    fn repeated_parameters_are_deduplicated_and_sorted() {
        let params = vec![
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "y".to_owned()),
            ("a".to_owned(), "x".to_owned()),
            ("a".to_owned(), "x".to_owned()),
        ];
        let expected = vec![
            ("a".to_owned(), "x".to_owned()),
            ("a".to_owned(), "y".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        assert_eq!(
            sign("t", "https://h/", &params),
            sign("t", "https://h/", &expected)
        );
    }

    #[test]
    fn the_shared_secret_works_as_bearer_or_basic_password() {
        let auth = Authenticator {
            shared_secret: Some(Secret::new("s3cret")),
            ..Default::default()
        };
        let bearer = request(
            "POST",
            "",
            &[("authorization", "Bearer s3cret")],
            "application/json",
            "{}",
        );
        assert_eq!(auth.check(&bearer), Ok(()));
        let basic = format!("Basic {}", STANDARD.encode("studio:s3cret"));
        assert_eq!(
            auth.check(&request("GET", "", &[("authorization", &basic)], "", "")),
            Ok(())
        );
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Token s3cret",
            "Basic !!!",
        ] {
            assert_eq!(
                auth.check(&request("GET", "", &[("authorization", wrong)], "", "")),
                Err(Unauthorized),
                "{wrong}"
            );
        }
        let wrong_basic = format!("Basic {}", STANDARD.encode("s3cret:nope"));
        assert_eq!(
            auth.check(&request(
                "GET",
                "",
                &[("authorization", &wrong_basic)],
                "",
                ""
            )),
            Err(Unauthorized)
        );
        assert_eq!(
            auth.check(&request("GET", "", &[], "", "")),
            Err(Unauthorized)
        );
    }

    #[test]
    fn either_configured_method_is_enough() {
        let auth = Authenticator {
            twilio_auth_token: Some(Secret::new(TOKEN)),
            shared_secret: Some(Secret::new("s3cret")),
            ..Default::default()
        };
        assert_eq!(auth.check(&signed_form(FORM_SIGNATURE)), Ok(()));
        let bearer = request(
            "POST",
            "",
            &[("authorization", "Bearer s3cret")],
            "application/json",
            "{}",
        );
        assert_eq!(auth.check(&bearer), Ok(()));
    }

    #[test]
    fn with_no_method_only_allow_unauthenticated_lets_requests_in() {
        let anonymous = request("GET", "", &[], "", "");
        assert_eq!(
            Authenticator::default().check(&anonymous),
            Err(Unauthorized)
        );
        let open = Authenticator {
            allow_unauthenticated: true,
            ..Default::default()
        };
        assert_eq!(open.check(&anonymous), Ok(()));
        // ALLOW_UNAUTHENTICATED does not bypass a configured method.
        let both = Authenticator {
            allow_unauthenticated: true,
            ..twilio(TOKEN)
        };
        assert_eq!(both.check(&anonymous), Err(Unauthorized));
    }
}
