//! Who may call a function over HTTP: Twilio (by `X-Twilio-Signature`), a proxy holding the
//! shared secret, or anyone when `ALLOW_UNAUTHENTICATED` is set for local use.
//!
//! Everything done here happens before the caller is known, so it is bounded: the edge has
//! already refused bodies, query strings and field counts over the function's limits, and the
//! signature is computed over borrowed pairs, never copies of them.

use std::borrow::Cow;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::adapters::config::Authentication;
use crate::adapters::secrets::{SecretCell, SecretError};
use crate::edge::invocation::HttpRequest;

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No configured method passed. Deliberately carries no detail: the caller learns nothing
    /// about which check failed.
    Unauthorized,
    /// A method the caller tried needs a secret this invocation could not have.
    SecretUnavailable(SecretError),
}

#[derive(Default)]
pub struct Authenticator {
    /// The account's Auth Token: enables `X-Twilio-Signature` checks.
    twilio_auth_token: Option<SecretCell>,
    /// `https://example.com` when Twilio calls a proxy or custom domain, not the Lambda's own host.
    public_base_url: Option<String>,
    /// Enables `Authorization: Bearer <secret>` and the Basic password.
    shared_secret: Option<SecretCell>,
    allow_unauthenticated: bool,
}

impl Authenticator {
    pub fn new(
        twilio_auth_token: Option<SecretCell>,
        public_base_url: Option<String>,
        shared_secret: Option<SecretCell>,
        allow_unauthenticated: bool,
    ) -> Self {
        Self {
            twilio_auth_token,
            public_base_url: public_base_url.map(|url| url.trim_end_matches('/').to_owned()),
            shared_secret,
            allow_unauthenticated,
        }
    }

    /// Who the configuration lets in.
    pub fn configured(authentication: Authentication) -> Self {
        Self::new(
            authentication.twilio_auth_token,
            authentication.public_base_url,
            authentication.shared_secret,
            authentication.allow_unauthenticated,
        )
    }

    /// Says once, at start, when `function` accepts any HTTP caller or none.
    pub fn warn_if_unprotected(&self, function: &str) {
        if self.has_any_method() {
            return;
        }
        if self.allow_unauthenticated {
            tracing::warn!(
                function,
                "ALLOW_UNAUTHENTICATED is set and no authentication is configured: any HTTP caller is accepted (local use only)"
            );
        } else {
            tracing::warn!(
                function,
                "neither TWILIO_AUTH_TOKEN nor PROXY_SHARED_SECRET is set: every HTTP request will be refused with 401 (direct invokes still work)"
            );
        }
    }

    pub fn has_any_method(&self) -> bool {
        self.twilio_auth_token.is_some() || self.shared_secret.is_some()
    }

    /// Whether a 401 should invite Basic credentials: Twilio sends the ones in a webhook URL
    /// only after a 401 with `WWW-Authenticate` (Twilio's "Webhooks security" page).
    pub fn challenges(&self) -> bool {
        self.shared_secret.is_some()
    }

    /// Fetches the secrets now (a warm-up), so the first real request does not wait for them.
    pub async fn warm_up(&self) {
        for cell in [&self.twilio_auth_token, &self.shared_secret]
            .into_iter()
            .flatten()
        {
            cell.warm_up().await;
        }
    }

    /// Accepts the request when any configured method passes. A secret is fetched only for a
    /// method the request tries, so a request with no credentials at all is answered 401 (and
    /// challenged) whatever the secrets extension does; a secret not yet held is waited for
    /// until `deadline`, the caller's, no longer.
    pub async fn check(&self, request: &HttpRequest, deadline: Instant) -> Result<(), Refusal> {
        if !self.has_any_method() {
            return if self.allow_unauthenticated {
                Ok(())
            } else {
                Err(Refusal::Unauthorized)
            };
        }
        let basic = basic_credentials(request);
        let mut unavailable = None;
        if let Some(cell) = &self.shared_secret
            && let Some(presented) = presented_secret(request, basic.as_ref())
        {
            match cell.get(deadline).await {
                Ok(secret) if equal(presented.as_bytes(), secret.expose().as_bytes()) => {
                    return Ok(());
                }
                Ok(_) => {}
                Err(error) => unavailable = Some(error),
            }
        }
        if let Some(cell) = &self.twilio_auth_token
            && let Some(signature) = request.header("x-twilio-signature")
        {
            match cell.get(deadline).await {
                Ok(token)
                    if self.twilio_signature_valid(
                        token.expose(),
                        signature,
                        request,
                        basic.as_ref(),
                    ) =>
                {
                    return Ok(());
                }
                Ok(_) => {}
                Err(error) => {
                    unavailable.get_or_insert(error);
                }
            }
        }
        Err(unavailable.map_or(Refusal::Unauthorized, Refusal::SecretUnavailable))
    }

    fn twilio_signature_valid(
        &self,
        token: &str,
        signature: &str,
        request: &HttpRequest,
        basic: Option<&Basic>,
    ) -> bool {
        let urls = url_variants(&self.public_url(request), basic);
        let matches = |params: &[(Cow<'_, str>, Cow<'_, str>)]| {
            urls.iter()
                .any(|url| equal(sign(token, url, params).as_bytes(), signature.as_bytes()))
        };
        if request.method == "POST" && request.is_json() {
            // JSON bodies are not signed as parameters: the URL carries their SHA-256 instead,
            // and that hash must match the body we actually received.
            let Some(claimed) = form_urlencoded::parse(request.raw_query_string.as_bytes())
                .find(|(name, _)| name == "bodySHA256")
                .map(|(_, value)| value)
            else {
                return false;
            };
            let actual = hex(&Sha256::digest(&request.body));
            return equal(claimed.to_ascii_lowercase().as_bytes(), actual.as_bytes())
                && matches(&[]);
        }
        if request.method == "POST" {
            // Borrowed: a hostile body costs its pairs' references, not copies of them.
            let params: Vec<(Cow<'_, str>, Cow<'_, str>)> =
                form_urlencoded::parse(&request.body).collect();
            return matches(&params);
        }
        matches(&[])
    }

    /// The URL Twilio called: the configured public base (or the event's own host over
    /// HTTPS), the raw path and the raw query string.
    fn public_url(&self, request: &HttpRequest) -> String {
        let base = match &self.public_base_url {
            Some(base) => base.clone(),
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
pub fn sign<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_ref(), value.as_ref()))
        .collect();
    sorted.sort_unstable();
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

/// The URLs Twilio may have signed for this one.
///
/// - With and without the scheme's default port: Twilio's helper libraries accept either,
///   because what Twilio signed depends on how the URL was configured.
/// - With and without the Basic credentials the caller sent, as `user:password@`: Twilio's
///   security page says it drops them before signing SMS and voice webhooks, but nothing says
///   so for Studio, and Twilio's validators keep them when given a URL that has them.
fn url_variants(url: &str, basic: Option<&Basic>) -> Vec<String> {
    let mut variants = port_variants(url);
    if let Some(basic) = basic
        && let Some((scheme, rest)) = url.split_once("://")
    {
        let with_credentials = format!("{scheme}://{}:{}@{rest}", basic.user, basic.password);
        variants.extend(port_variants(&with_credentials));
    }
    variants
}

fn port_variants(url: &str) -> Vec<String> {
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

/// HTTP Basic credentials, decoded.
struct Basic {
    user: String,
    password: String,
}

fn basic_credentials(request: &HttpRequest) -> Option<Basic> {
    let (scheme, value) = request.header("authorization")?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(Basic {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// The secret a proxy presented: `Bearer <secret>`, or the password of Basic auth (Studio
/// sends `https://user:secret@host/` that way).
fn presented_secret<'a>(request: &'a HttpRequest, basic: Option<&'a Basic>) -> Option<&'a str> {
    if let Some(basic) = basic {
        return Some(&basic.password);
    }
    let (scheme, value) = request.header("authorization")?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
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
    use crate::adapters::secrets::Secret;

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

    fn cell(name: &'static str, value: &str) -> Option<SecretCell> {
        Some(SecretCell::given(name, Secret::new(value).unwrap()))
    }

    fn twilio(token: &str) -> Authenticator {
        Authenticator::new(cell("TWILIO_AUTH_TOKEN", token), None, None, false)
    }

    fn shared(secret: &str) -> Authenticator {
        Authenticator::new(None, None, cell("PROXY_SHARED_SECRET", secret), false)
    }

    impl Authenticator {
        /// The async check, run to completion (every secret here is given, never fetched).
        fn check_now(&self, request: &HttpRequest) -> Result<(), Refusal> {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(self.check(request, Instant::now()))
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
        // Borrowed pairs sign the same as owned ones.
        let body = form_body();
        let borrowed: Vec<_> = form_urlencoded::parse(body.as_bytes()).collect();
        assert_eq!(sign(TOKEN, URL, &borrowed), FORM_SIGNATURE);
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
            sign::<&str, &str>(TOKEN, &format!("{URL}&bodySHA256={JSON_HASH}"), &[]),
            JSON_SIGNATURE
        );
    }

    #[test]
    fn a_signed_form_post_is_accepted() {
        assert_eq!(
            twilio(TOKEN).check_now(&signed_form(FORM_SIGNATURE)),
            Ok(())
        );
    }

    #[test]
    fn a_signature_made_with_the_default_port_is_accepted_either_way() {
        // Twilio signed https://mycompany.com:443/..., the event says mycompany.com.
        assert_eq!(
            twilio(TOKEN).check_now(&signed_form(FORM_SIGNATURE_WITH_PORT)),
            Ok(())
        );
        // Twilio signed without the port, the configured public URL has it.
        let auth = Authenticator::new(
            cell("TWILIO_AUTH_TOKEN", TOKEN),
            Some("https://mycompany.com:443/".into()),
            None,
            false,
        );
        assert_eq!(auth.check_now(&signed_form(FORM_SIGNATURE)), Ok(()));
        assert_eq!(
            port_variants("https://u:p@h.io:443/x?y=1"),
            ["https://u:p@h.io:443/x?y=1", "https://u:p@h.io/x?y=1"]
        );
        assert_eq!(
            port_variants("http://h.io/x"),
            ["http://h.io/x", "http://h.io:80/x"]
        );
        assert_eq!(
            port_variants("https://h.io:8443/x"),
            ["https://h.io:8443/x"]
        );
    }

    #[test]
    fn a_tampered_body_or_a_wrong_token_is_refused() {
        let mut tampered = signed_form(FORM_SIGNATURE);
        tampered.body = form_body()
            .replace("Digits=1234", "Digits=9999")
            .into_bytes();
        assert_eq!(
            twilio(TOKEN).check_now(&tampered),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            twilio("54321").check_now(&signed_form(FORM_SIGNATURE)),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            twilio(TOKEN).check_now(&signed_form("")),
            Err(Refusal::Unauthorized)
        );
        let mut other_host = signed_form(FORM_SIGNATURE);
        other_host.domain_name = "abc.lambda-url.us-east-1.on.aws".into();
        assert_eq!(
            twilio(TOKEN).check_now(&other_host),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn the_public_base_url_fixes_signatures_behind_a_proxy() {
        let mut behind_proxy = signed_form(FORM_SIGNATURE);
        behind_proxy.domain_name = "abc.lambda-url.us-east-1.on.aws".into();
        let auth = Authenticator::new(
            cell("TWILIO_AUTH_TOKEN", TOKEN),
            Some("https://mycompany.com".into()),
            None,
            false,
        );
        assert_eq!(auth.check_now(&behind_proxy), Ok(()));
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
        assert_eq!(twilio(TOKEN).check_now(&good), Ok(()));
        // The URL (and so the signature) is intact but the body is not the one hashed.
        let swapped = request(
            "POST",
            &query,
            &[("x-twilio-signature", JSON_SIGNATURE)],
            "application/json",
            r#"{"property": "evil"}"#,
        );
        assert_eq!(
            twilio(TOKEN).check_now(&swapped),
            Err(Refusal::Unauthorized)
        );
        let no_hash = request(
            "POST",
            "foo=1&bar=2",
            &[("x-twilio-signature", JSON_SIGNATURE)],
            "application/json",
            JSON_BODY,
        );
        assert_eq!(
            twilio(TOKEN).check_now(&no_hash),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn a_signed_get_signs_only_the_url() {
        let signature = sign::<&str, &str>(TOKEN, URL, &[]);
        let get = request(
            "GET",
            "foo=1&bar=2",
            &[("x-twilio-signature", &signature)],
            "",
            "",
        );
        assert_eq!(twilio(TOKEN).check_now(&get), Ok(()));
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
        let auth = shared("s3cret");
        let bearer = request(
            "POST",
            "",
            &[("authorization", "Bearer s3cret")],
            "application/json",
            "{}",
        );
        assert_eq!(auth.check_now(&bearer), Ok(()));
        let basic = format!("Basic {}", STANDARD.encode("studio:s3cret"));
        assert_eq!(
            auth.check_now(&request("GET", "", &[("authorization", &basic)], "", "")),
            Ok(())
        );
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Token s3cret",
            "Basic !!!",
        ] {
            assert_eq!(
                auth.check_now(&request("GET", "", &[("authorization", wrong)], "", "")),
                Err(Refusal::Unauthorized),
                "{wrong}"
            );
        }
        let wrong_basic = format!("Basic {}", STANDARD.encode("s3cret:nope"));
        assert_eq!(
            auth.check_now(&request(
                "GET",
                "",
                &[("authorization", &wrong_basic)],
                "",
                ""
            )),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            auth.check_now(&request("GET", "", &[], "", "")),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn either_configured_method_is_enough() {
        let auth = Authenticator::new(
            cell("TWILIO_AUTH_TOKEN", TOKEN),
            None,
            cell("PROXY_SHARED_SECRET", "s3cret"),
            false,
        );
        assert_eq!(auth.check_now(&signed_form(FORM_SIGNATURE)), Ok(()));
        let bearer = request(
            "POST",
            "",
            &[("authorization", "Bearer s3cret")],
            "application/json",
            "{}",
        );
        assert_eq!(auth.check_now(&bearer), Ok(()));
    }

    #[test]
    fn with_no_method_only_allow_unauthenticated_lets_requests_in() {
        let anonymous = request("GET", "", &[], "", "");
        assert_eq!(
            Authenticator::default().check_now(&anonymous),
            Err(Refusal::Unauthorized)
        );
        let open = Authenticator::new(None, None, None, true);
        assert_eq!(open.check_now(&anonymous), Ok(()));
        // ALLOW_UNAUTHENTICATED does not bypass a configured method.
        let both = Authenticator::new(cell("TWILIO_AUTH_TOKEN", TOKEN), None, None, true);
        assert_eq!(both.check_now(&anonymous), Err(Refusal::Unauthorized));
    }

    #[test]
    fn a_signature_over_the_url_with_its_basic_credentials_is_accepted_too() {
        // GIVEN a Studio URL with credentials, https://studio:s3cret@mycompany.com/myapp.php?...
        let params: Vec<(String, String)> = form_urlencoded::parse(form_body().as_bytes())
            .into_owned()
            .collect();
        let with_credentials = sign(
            TOKEN,
            "https://studio:s3cret@mycompany.com/myapp.php?foo=1&bar=2",
            &params,
        );
        let basic = format!("Basic {}", STANDARD.encode("studio:s3cret"));
        let auth = twilio(TOKEN);
        // THEN a signature over that URL is accepted when the credentials came with it
        let mut request = signed_form(&with_credentials);
        request
            .headers
            .insert("authorization", HeaderValue::from_str(&basic).unwrap());
        assert_eq!(auth.check_now(&request), Ok(()));
        // AND a signature over the URL without them (what Twilio documents for SMS and voice)
        let mut request = signed_form(FORM_SIGNATURE);
        request
            .headers
            .insert("authorization", HeaderValue::from_str(&basic).unwrap());
        assert_eq!(auth.check_now(&request), Ok(()));
        // BUT not when other credentials came
        let mut request = signed_form(&with_credentials);
        let other = format!("Basic {}", STANDARD.encode("studio:other"));
        request
            .headers
            .insert("authorization", HeaderValue::from_str(&other).unwrap());
        assert_eq!(auth.check_now(&request), Err(Refusal::Unauthorized));
    }

    #[test]
    fn only_the_shared_secret_invites_basic_credentials() {
        assert!(shared("s3cret").challenges());
        assert!(!twilio(TOKEN).challenges());
    }
}
