//! The handler's HTTP endpoints: `/token` (GET per the Docker token spec, POST per OAuth2's
//! password grant), `/check` for a proxy's forward-auth, and `/.well-known/jwks.json`.
//!
//! Each endpoint turns HTTP into calls on [`Verifier`], [`Policy`] and [`Signer`] and back;
//! the decisions live in those modules. `/check` takes the original request from the proxy's
//! headers and refuses (400) rather than chooses when they are missing, unreadable or disagree:
//! see [`original`]. Refusals are logged with their reason through [`crate::log`] (control
//! characters escaped), never with the token itself; a client sees a status, a challenge and a
//! reason about its own request, never an upstream URL or status.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{any, get};
use base64::Engine;
use bytes::Bytes;
use serde_json::json;

use crate::audit::{Audit, Decision};
use crate::log;
use crate::oidc::{MAX_TOKEN_BYTES, Refusal, Verifier};
use crate::policy::{Patterns, Policy};
use crate::pull_token::Revoked;
use crate::scope::{PULL, PUSH, Scope, Target, endpoint, parse_request};
use crate::token::{Access, PullClaims, Signer, Verified, Via, covers};

/// Most scopes one token request may name (keeps tokens far below header size limits); more
/// is a 400, not a silent cap, so a client never gets a token short of what it asked for
/// without being told.
const MAX_SCOPES: usize = 8;
/// Largest `Authorization` header read (a base64 Basic header around a maximal ID token).
const MAX_AUTHORIZATION_BYTES: usize = MAX_TOKEN_BYTES * 4 / 3 + 512;
/// Largest POST /token body.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Everything the endpoints need.
pub struct Handler {
    /// Checks ID tokens.
    pub verifier: Verifier,
    /// Decides what identities get.
    pub policy: Policy,
    /// Mints and checks registry tokens; replaced whole when the keys are reloaded (SIGHUP).
    pub signer: std::sync::RwLock<Arc<Signer>>,
    /// The service name clients send and tokens are for.
    pub service: String,
    /// The token endpoint's public URL, for challenges.
    pub realm: String,
    /// Pull tokens, when enabled.
    pub pull_tokens: Option<PullTokens>,
    /// The audit log, when configured.
    pub audit: Option<Audit>,
}

/// What `/token` and `/check` need to honour pull tokens.
pub struct PullTokens {
    /// The longest lifetime accepted.
    pub max_ttl: std::time::Duration,
    /// Repositories no pull token may pull.
    pub forbid: Patterns,
    /// Revoked `jti`s.
    pub revoked: Revoked,
}

/// The router: `/token`, `/check`, `/.well-known/jwks.json`.
pub fn router(handler: Arc<Handler>) -> Router {
    Router::new()
        .route("/token", get(token_get).post(token_post))
        .route("/check", any(check))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(handler)
}

/// How a `/token` failure is written: the Docker spec's errors or OAuth2's.
#[derive(Clone, Copy)]
enum Flavor {
    Docker,
    OAuth,
}

struct TokenError {
    status: StatusCode,
    oauth_code: &'static str,
    message: String,
}

impl TokenError {
    fn bad_request(message: impl Into<String>) -> TokenError {
        TokenError {
            status: StatusCode::BAD_REQUEST,
            oauth_code: "invalid_request",
            message: message.into(),
        }
    }

    fn render(self, flavor: Flavor, realm: &str) -> Response {
        match flavor {
            Flavor::Docker => {
                let code = if self.status == StatusCode::UNAUTHORIZED {
                    "UNAUTHORIZED"
                } else {
                    "DENIED"
                };
                let body = json!({"errors": [{"code": code, "message": self.message}]});
                let mut response = (self.status, Json(body)).into_response();
                if self.status == StatusCode::UNAUTHORIZED
                    && let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
                {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                response
            }
            Flavor::OAuth => {
                // RFC 6749 5.2: a bad grant (here, the ID token) is a 400.
                let status = if self.oauth_code == "invalid_grant" {
                    StatusCode::BAD_REQUEST
                } else {
                    self.status
                };
                let body = json!({"error": self.oauth_code, "error_description": self.message});
                (status, Json(body)).into_response()
            }
        }
    }
}

fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The username and password of an HTTP Basic `Authorization` header, if there is one.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let unauthorized = |m: &str| TokenError {
        status: StatusCode::UNAUTHORIZED,
        oauth_code: "invalid_client",
        message: m.to_string(),
    };
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(unauthorized(&format!(
            "credentials too large: an ID token may have at most {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let text = value
        .to_str()
        .map_err(|_| unauthorized("bad Authorization header"))?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(unauthorized("bad Authorization header"));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized(
            "use HTTP Basic with the OIDC ID token as password",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthorized("bad Basic credentials"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| unauthorized("bad Basic credentials"))?;
    Ok(Some((username.to_string(), password.to_string())))
}

async fn token_get(
    State(h): State<Arc<Handler>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    let result = match basic_credentials(&headers) {
        Ok(credentials) => {
            let credentials = credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            h.issue(&params, credentials).await
        }
        Err(e) => Err(e),
    };
    respond(result, Flavor::Docker, &h.realm)
}

async fn token_post(State(h): State<Arc<Handler>>, body: Bytes) -> Response {
    let params = parse_form(&body);
    let result = match param(&params, "grant_type") {
        Some("password") => match param(&params, "password") {
            Some(password) if !password.is_empty() => {
                let username = param(&params, "username").unwrap_or_default();
                h.issue(&params, Some((username, password))).await
            }
            _ => Err(TokenError::bad_request(
                "the password grant needs a password (the OIDC ID token)",
            )),
        },
        other => Err(TokenError {
            status: StatusCode::BAD_REQUEST,
            oauth_code: "unsupported_grant_type",
            message: format!(
                "grant_type {:?} is not supported; use password with the OIDC ID token",
                other.unwrap_or_default()
            ),
        }),
    };
    respond(result, Flavor::OAuth, &h.realm)
}

fn respond(result: Result<serde_json::Value, TokenError>, flavor: Flavor, realm: &str) -> Response {
    match result {
        Ok(body) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Json(body),
        )
            .into_response(),
        Err(e) => e.render(flavor, realm),
    }
}

impl Handler {
    /// Verify the ID token (if any), grant what the policy allows of the scopes asked, mint.
    async fn issue(
        &self,
        params: &[(String, String)],
        credentials: Option<(&str, &str)>,
    ) -> Result<serde_json::Value, TokenError> {
        if let Some(service) = param(params, "service")
            && service != self.service
        {
            return Err(TokenError::bad_request(format!(
                "unknown service {service:?}; this is {:?}",
                self.service
            )));
        }
        let asked: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split_whitespace())
            .collect();
        if asked.len() > MAX_SCOPES {
            return Err(TokenError::bad_request(format!(
                "{} scopes asked; at most {MAX_SCOPES} per token",
                asked.len()
            )));
        }
        if let Some((username, password)) = credentials
            && Signer::is_pull_token(password)
        {
            return self.issue_for_pull_token(username, password, &asked);
        }
        let identity = match credentials.map(|(_, password)| password) {
            None => None,
            Some(t) => Some(self.verifier.verify(t).await.map_err(|r| {
                log::line(format_args!("token refused: {r}"));
                let (status, oauth_code) = match r {
                    Refusal::Invalid(_) => (StatusCode::UNAUTHORIZED, "invalid_grant"),
                    Refusal::Unavailable => {
                        (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
                    }
                };
                TokenError {
                    status,
                    oauth_code,
                    message: r.to_string(),
                }
            })?),
        };
        let access = grant(&asked, |scope| self.policy.grant(identity.as_ref(), scope));
        let subject = identity
            .as_ref()
            .map_or("anonymous", |i| i.subject.as_str());
        let via = Via {
            issuer: identity.as_ref().map(|i| i.issuer.clone()),
            pull_token: None,
        };
        self.mint(subject, access, &via, &asked)
    }

    /// A registry token for a pull token: checked (signature, lifetime, name, revocation), then
    /// what it names of what is asked, pull only, public repositories as for anyone, never a
    /// repository the config forbids to pull tokens.
    fn issue_for_pull_token(
        &self,
        username: &str,
        token: &str,
        asked: &[&str],
    ) -> Result<serde_json::Value, TokenError> {
        let refuse = |message: String| {
            log::line(format_args!("token refused: {message}"));
            TokenError {
                status: StatusCode::UNAUTHORIZED,
                oauth_code: "invalid_grant",
                message,
            }
        };
        let Some(settings) = &self.pull_tokens else {
            return Err(refuse("pull tokens are not enabled here".to_string()));
        };
        let claims: PullClaims = self
            .signer()
            .verify_pull_token(token)
            .map_err(|e| refuse(format!("invalid pull token: {e}")))?;
        if claims.exp.saturating_sub(claims.iat) > settings.max_ttl.as_secs() {
            return Err(refuse(format!(
                "pull token {:?} lives longer than the {} s max_ttl allows",
                claims.name,
                settings.max_ttl.as_secs()
            )));
        }
        if username != claims.name {
            return Err(refuse(format!(
                "pull token {:?} presented as user {username:?}: use its name as the username",
                claims.name
            )));
        }
        if settings.revoked.contains(&claims.jti) {
            return Err(refuse(format!("pull token {:?} is revoked", claims.name)));
        }
        let patterns = Patterns::new(&claims.repositories)
            .map_err(|e| refuse(format!("invalid pull token: {e}")))?;
        let access = grant(asked, |scope| {
            let repo = scope.repository.as_str();
            let allowed = self.policy.is_public(repo)
                || (patterns.matches(repo) && !settings.forbid.matches(repo));
            if allowed && scope.actions.iter().any(|a| a == PULL) {
                vec![PULL.to_string()]
            } else {
                Vec::new()
            }
        });
        let via = Via {
            issuer: Some(self.realm.clone()),
            pull_token: Some(claims.jti.clone()),
        };
        self.mint(&claims.sub, access, &via, asked)
    }

    /// Log and mint a registry token.
    fn mint(
        &self,
        subject: &str,
        access: Vec<Access>,
        via: &Via,
        asked: &[&str],
    ) -> Result<serde_json::Value, TokenError> {
        log::line(format_args!(
            "token for {subject:?}{}: asked [{}], granted [{}]",
            via.issuer
                .as_ref()
                .map(|i| format!(" from {i}"))
                .unwrap_or_default(),
            asked.join(" "),
            access
                .iter()
                .map(|a| format!("repository:{}:{}", a.name, a.actions.join(",")))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let minted = self.signer().mint(subject, access, via).map_err(|e| {
            log::line(format_args!("cannot mint a token: {e}"));
            TokenError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                oauth_code: "server_error",
                message: "cannot issue a token now; try again later".to_string(),
            }
        })?;
        Ok(json!({
            "token": minted.token,
            "access_token": minted.token,
            "expires_in": minted.expires_in,
            "issued_at": minted.issued_at,
        }))
    }

    /// A 401 with the Bearer challenge a registry client follows to `/token`.
    fn challenge(&self, scope: Option<&str>, error: Option<&str>) -> Response {
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            self.realm, self.service
        );
        if let Some(scope) = scope {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(error) = error {
            value.push_str(&format!(",error=\"{error}\""));
        }
        let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": error.unwrap_or("authentication required")}]});
        let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// The intersection of what is asked and what `allows` grants of each scope, one entry per
/// repository.
fn grant(asked: &[&str], allows: impl Fn(&Scope) -> Vec<String>) -> Vec<Access> {
    let mut by_repo: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for scope in asked.iter().filter_map(|s| Scope::parse(s)) {
        let granted = allows(&scope);
        let entry = by_repo.entry(scope.repository).or_default();
        for action in granted {
            if !entry.contains(&action) {
                entry.push(action);
            }
        }
    }
    by_repo
        .into_iter()
        .filter(|(_, actions)| !actions.is_empty())
        .map(|(name, actions)| Access {
            kind: "repository".to_string(),
            name,
            actions,
        })
        .collect()
}

/// Headers naming the original request's URI: nginx sends `X-Original-URI`, Caddy and Traefik
/// `X-Forwarded-Uri`.
const URI_HEADERS: [&str; 2] = ["X-Original-URI", "X-Forwarded-Uri"];
/// Headers naming the original request's method.
const METHOD_HEADERS: [&str; 2] = ["X-Original-Method", "X-Forwarded-Method"];

/// The one value the proxy gave for the original request's `what` (URI or method) in any of
/// `names`; `Ok(None)` when none is present.
///
/// Proxies differ in which header they set, and some pass the client's own headers on
/// untouched (Caddy and Traefik forward a client's `X-Original-URI`; nginx forwards a client's
/// `X-Forwarded-Uri`). So no header is preferred over another: every occurrence of every name
/// is read, each must be visible ASCII (a value that cannot be read is not skipped in favour of
/// one that can), and all must agree. Anything else is the proxy's or the client's doing and
/// is refused, never resolved.
fn original<'a>(
    headers: &'a HeaderMap,
    names: &[&str],
    what: &str,
) -> Result<Option<&'a str>, String> {
    let mut found: Option<&str> = None;
    for name in names {
        for value in headers.get_all(*name) {
            let bytes = value.as_bytes();
            if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_graphic) {
                return Err(format!(
                    "{name} {:?} is not a {what} (empty, or not visible ASCII)",
                    String::from_utf8_lossy(bytes)
                ));
            }
            // Visible ASCII, so this cannot fail; refuse rather than unwrap anyway.
            let text = value.to_str().map_err(|e| format!("{name}: {e}"))?;
            match found {
                Some(seen) if seen != text => {
                    return Err(format!(
                        "conflicting {}: {seen:?} and {text:?}",
                        names.join(" / ")
                    ));
                }
                _ => found = Some(text),
            }
        }
    }
    Ok(found)
}

/// The original request's method and URI, as the proxy forwarded them; a 400 when either is
/// missing, unreadable or given twice differently: a misconfigured proxy never gets a 2xx.
fn original_request(headers: &HeaderMap) -> Result<(&str, &str), String> {
    let uri = original(headers, &URI_HEADERS, "URI")?.ok_or(
        "no X-Original-URI or X-Forwarded-Uri header: the proxy must send the original URI",
    )?;
    let method = original(headers, &METHOD_HEADERS, "method")?.ok_or(
        "no X-Original-Method or X-Forwarded-Method header: the proxy must send the original method",
    )?;
    Ok((method, uri))
}

/// The Bearer token of the original request, if it sent one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn check(State(h): State<Arc<Handler>>, headers: HeaderMap) -> Response {
    let (method, uri) = match original_request(&headers) {
        Ok(request) => request,
        Err(why) => {
            log::line(format_args!("check refused: {why}"));
            return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
        }
    };
    let target = match parse_request(method, uri) {
        Ok(t) => t,
        Err(why) => {
            log::line(format_args!("check refused {method} {uri:?}: {why}"));
            return (StatusCode::FORBIDDEN, format!("refused: {why}\n")).into_response();
        }
    };
    let token = bearer(&headers).map(|t| h.verify(t));
    match target {
        Target::Base => match token {
            None if !h.policy.has_private() => StatusCode::OK.into_response(),
            None => h.challenge(None, None),
            Some(Ok(_)) => StatusCode::OK.into_response(),
            Some(Err(why)) => {
                log::line(format_args!("check {method} {uri:?}: invalid token: {why}"));
                h.challenge(None, Some("invalid_token"))
            }
        },
        Target::Repository { name, action } => {
            if action == PULL && h.policy.is_public(&name) {
                return StatusCode::OK.into_response();
            }
            // What a client should ask /token for: pushes need pull too.
            let actions = if action == PULL {
                vec![PULL]
            } else {
                vec![PULL, PUSH]
            };
            let scope = Scope {
                repository: name.clone(),
                actions: actions.into_iter().map(str::to_string).collect(),
            }
            .render();
            let (response, reason) = match &token {
                None => (
                    h.challenge(Some(&scope), None),
                    Some("no token".to_string()),
                ),
                Some(Ok(v)) if covers(&v.access, &name, action) => {
                    (StatusCode::OK.into_response(), None)
                }
                Some(Ok(_)) => (
                    h.challenge(Some(&scope), Some("insufficient_scope")),
                    Some(format!("the token does not grant {action} on {name}")),
                ),
                Some(Err(why)) => {
                    log::line(format_args!("check {method} {uri:?}: invalid token: {why}"));
                    (
                        h.challenge(Some(&scope), Some("invalid_token")),
                        Some(format!("invalid token: {why}")),
                    )
                }
            };
            if let Some(audit) = &h.audit {
                let verified = token.as_ref().and_then(|t| t.as_ref().ok());
                let (kind, reference) = endpoint(uri);
                audit.record(&Decision {
                    repository: &name,
                    reference,
                    kind,
                    method,
                    action,
                    status: response.status().as_u16(),
                    identity: verified.map_or("anonymous", |v| v.subject.as_str()),
                    issuer: verified.and_then(|v| v.via.issuer.as_deref()),
                    jti: verified.map(|v| v.jti.as_str()),
                    pull_token: verified.and_then(|v| v.via.pull_token.as_deref()),
                    reason: reason.as_deref(),
                    user_agent: headers
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok()),
                    remote_address: client_address(&headers),
                });
            }
            response
        }
    }
}

/// The client's address as the proxy passed it: `X-Real-IP`, else the first
/// `X-Forwarded-For` entry.
fn client_address(headers: &HeaderMap) -> Option<&str> {
    if let Some(ip) = headers.get("x-real-ip").and_then(|v| v.to_str().ok()) {
        return Some(ip.trim());
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
}

impl Handler {
    /// The signer in force.
    pub fn signer(&self) -> Arc<Signer> {
        self.signer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sign with `signer` from now on (tokens of its keys are accepted from now on too).
    pub fn replace_signer(&self, signer: Signer) {
        *self.signer.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(signer);
    }

    /// A registry token's checks, and then its pull token's revocation.
    fn verify(&self, token: &str) -> Result<Verified, String> {
        let verified = self.signer().verify(token)?;
        if let (Some(jti), Some(settings)) = (&verified.via.pull_token, &self.pull_tokens)
            && settings.revoked.contains(jti)
        {
            return Err(format!("its pull token {jti} is revoked"));
        }
        Ok(verified)
    }
}

async fn jwks(State(h): State<Arc<Handler>>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(h.signer().jwks()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    const PRIVATE: &[u8] = b"/v2/acme/app/manifests/latest";
    const PUBLIC: &[u8] = b"/v2/public/base/manifests/latest";

    #[test]
    fn the_original_request_comes_from_either_header_name() {
        for (uri, method) in [
            ("X-Original-URI", "X-Forwarded-Method"),
            ("x-forwarded-uri", "x-original-method"),
        ] {
            let h = headers(&[(uri, PRIVATE), (method, b"HEAD")]);
            assert_eq!(
                original_request(&h),
                Ok(("HEAD", "/v2/acme/app/manifests/latest"))
            );
        }
        // Both names, or one name twice, with the same value: one request.
        let h = headers(&[
            ("X-Original-URI", PRIVATE),
            ("X-Forwarded-Uri", PRIVATE),
            ("X-Forwarded-Method", b"GET"),
            ("X-Forwarded-Method", b"GET"),
        ]);
        assert_eq!(
            original_request(&h),
            Ok(("GET", "/v2/acme/app/manifests/latest"))
        );
    }

    #[test]
    fn a_client_cannot_choose_which_uri_or_method_is_checked() {
        let refused = |pairs: &[(&str, &[u8])], why: &str| {
            let err = original_request(&headers(pairs)).expect_err(why);
            assert!(err.contains(why), "{why:?} not in {err:?}");
        };
        // Caddy or Traefik setting X-Forwarded-Uri and passing on the client's X-Original-URI.
        refused(
            &[
                ("X-Original-URI", PUBLIC),
                ("X-Forwarded-Uri", PRIVATE),
                ("X-Forwarded-Method", b"GET"),
            ],
            "conflicting X-Original-URI / X-Forwarded-Uri",
        );
        // nginx's $request_uri with a UTF-8 byte in the query, and the client's X-Forwarded-Uri:
        // the unreadable one is not skipped in favour of the readable one.
        refused(
            &[
                (
                    "X-Original-URI",
                    b"/v2/acme/app/manifests/latest?q=\xc3\xa9",
                ),
                ("X-Forwarded-Uri", PUBLIC),
                ("X-Forwarded-Method", b"GET"),
            ],
            "not visible ASCII",
        );
        // The same header twice.
        refused(
            &[
                ("X-Forwarded-Uri", PUBLIC),
                ("X-Forwarded-Uri", PRIVATE),
                ("X-Forwarded-Method", b"GET"),
            ],
            "conflicting",
        );
        refused(
            &[("X-Forwarded-Uri", b""), ("X-Forwarded-Method", b"GET")],
            "not visible ASCII",
        );
        refused(
            &[
                ("X-Forwarded-Uri", b"/v2/a b"),
                ("X-Forwarded-Method", b"GET"),
            ],
            "not visible ASCII",
        );
        // Methods: a push made to look like a pull.
        refused(
            &[
                ("X-Forwarded-Uri", PRIVATE),
                ("X-Forwarded-Method", b"PUT"),
                ("X-Original-Method", b"GET"),
            ],
            "conflicting X-Original-Method / X-Forwarded-Method",
        );
        refused(
            &[
                ("X-Forwarded-Uri", PRIVATE),
                ("X-Forwarded-Method", b"G\xc3\x89T"),
            ],
            "not visible ASCII",
        );
        // Nothing is assumed: no method is not GET, no URI is not /v2/.
        refused(
            &[("X-Original-URI", PRIVATE)],
            "no X-Original-Method or X-Forwarded-Method header",
        );
        refused(
            &[("X-Forwarded-Method", b"GET")],
            "no X-Original-URI or X-Forwarded-Uri header",
        );
    }
}
