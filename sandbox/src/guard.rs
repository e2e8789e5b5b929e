//! The guard in front of every port the sandbox serves: it answers only this machine.
//!
//! Listening on 127.0.0.1 keeps other machines out, but not web pages: any site the user
//! opens can make the browser send requests to 127.0.0.1, either directly (a cross-site form
//! or `text/plain` POST needs no CORS preflight, so it arrives and takes effect even though
//! the page cannot read the answer) or through a name of its own that it rebinds to
//! 127.0.0.1 (the browser then calls it same-origin and lets the page read the answer). So:
//!
//! - the `Host` must be a loopback name (`localhost`, `127.x.x.x`, `[::1]`, any port): a
//!   rebound name is refused before anything is read;
//! - an `Origin`, when there is one, must be a loopback origin (`http://localhost:9000`,
//!   `http://127.0.0.1:5173`, ...). Browsers send `Origin` on CORS requests and on every
//!   method but GET and HEAD, and `null` from sandboxed frames and files;
//! - `Sec-Fetch-Site` must not be `cross-site`: a cross-site GET without CORS (an `<img>` or
//!   a link to a Function URL with fields in its query) carries no `Origin`, but browsers
//!   that send fetch metadata (all current ones) say where it came from.
//!
//! Requests with neither header (curl, Segment's server-side clients, the functions' own
//! calls to the Segment server) are not from a browser page and pass.
//!
//! A tunnel that forwards its public name as `Host` is refused too: the functions here run
//! without authentication, so they must not be reachable from outside.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `router` behind the guard.
pub fn guarded(router: Router) -> Router {
    router.layer(middleware::from_fn(loopback_only))
}

async fn loopback_only(request: Request, next: Next) -> Response {
    if !host(&request).is_some_and(is_loopback_host) {
        return refuse("the sandbox answers only http://127.0.0.1 or http://localhost");
    }
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    match origin(&request) {
        Some(Origin::Foreign) => refuse("the sandbox answers only pages served from loopback"),
        _ if cross_site => refuse("the sandbox answers only pages served from loopback"),
        Some(Origin::Loopback(_)) | None => next.run(request).await,
    }
}

/// The host the request names: its `Host` header, or for HTTP/2 its URI's authority.
pub fn host(request: &Request) -> Option<&str> {
    match request.headers().get(header::HOST) {
        Some(value) => value.to_str().ok(),
        None => request.uri().authority().map(|a| a.as_str()),
    }
}

/// A request's `Origin` header, judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// `http://` and a loopback host (the text as sent).
    Loopback(&'a str),
    /// Anything else: another site, `null`, another scheme, or not text.
    Foreign,
}

/// The request's `Origin`, or `None` when it sent none.
pub fn origin(request: &Request) -> Option<Origin<'_>> {
    let value = request.headers().get(header::ORIGIN)?;
    let loopback = value.to_str().ok().filter(|o| is_loopback_origin(o));
    Some(loopback.map_or(Origin::Foreign, Origin::Loopback))
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port))
            if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() =>
        {
            name
        }
        _ => host,
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// An origin as browsers serialise it (scheme, host, optional port; no path) for a page
/// served over http from a loopback host.
pub fn is_loopback_origin(origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|host| !host.is_empty() && is_loopback_host(host))
}

/// 403 with a JSON error, in the shape every API here uses for its errors.
fn refuse(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({"ok": false, "error": {"code": "forbidden", "message": message}})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_or_without_a_port_are_the_only_hosts() {
        for host in [
            "127.0.0.1:9000",
            "127.0.0.1",
            "127.1.2.3:9010",
            "localhost",
            "LocalHost:9000",
            "[::1]",
            "[::1]:9000",
            "[0:0:0:0:0:0:0:1]:9000",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            ":9000",
            "attacker.example:9000",
            "127.0.0.1.attacker.example",
            "localhost.attacker.example",
            "10.0.0.1:9000",
            "0.0.0.0:9000",
            "[::2]:9000",
            "::1",
            "127.0.0.1:",
            "127.0.0.1:90a0",
            "user@127.0.0.1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn only_http_pages_on_a_loopback_host_are_loopback_origins() {
        for origin in [
            "http://localhost",
            "http://localhost:5173",
            "http://127.0.0.1:9000",
            "http://127.0.0.2",
            "http://[::1]:9000",
        ] {
            assert!(is_loopback_origin(origin), "{origin}");
        }
        for origin in [
            "null",
            "",
            "http://",
            "https://evil.example",
            "http://evil.example",
            "http://127.0.0.1.evil.example",
            "https://localhost:9000",
            "file://",
            "http://127.0.0.1:9000/path",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }
}
