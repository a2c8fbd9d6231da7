//! `regpress auth serve` over HTTP, as the real binary, against a test OIDC issuer on loopback:
//! what it grants, and the attack table: every forged, stale or misdirected token and every
//! path trick is refused with the right status and challenge.

mod common;

use std::time::Duration;

use base64::Engine;
use common::auth::{JWKS_COOLDOWN, SERVICE, serve_config, start_auth, write_config};
use common::oidc::{SigningKey, TestIssuer, b64, unsigned};
use common::{Server, regpress, s};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use regpress::auth::oidc::MAX_TOKEN_BYTES;
use regpress::auth::token::{Signer, generate_key};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const REALM: &str = "http://127.0.0.1:9/token";
const APP: &str = "repository:acme/app:pull";
const MANIFEST: &str = "/v2/acme/app/manifests/latest";

struct Setup {
    issuer: TestIssuer,
    auth: Server,
    dir: tempfile::TempDir,
    http: Client,
}

fn setup() -> Setup {
    let issuer = TestIssuer::start();
    let dir = tempfile::tempdir().unwrap();
    let auth = start_auth(dir.path(), &issuer.url, REALM);
    Setup {
        issuer,
        auth,
        dir,
        http: Client::new(),
    }
}

/// [`setup`] with the config text changed by `edit` and the issuer prepared by `prepare`.
fn setup_with(prepare: impl Fn(&TestIssuer), edit: impl Fn(&str) -> String) -> Setup {
    let issuer = TestIssuer::start();
    prepare(&issuer);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &issuer.url, REALM);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(&text)).unwrap();
    Setup {
        auth: serve_config(&config),
        issuer,
        dir,
        http: Client::new(),
    }
}

impl Setup {
    /// GET /token with `scopes`, with the ID token as Basic password when given.
    fn token(&self, id_token: Option<&str>, scopes: &[&str]) -> (StatusCode, Value) {
        let (status, _, body) = self.token_challenged(id_token, scopes);
        (status, body)
    }

    /// [`Setup::token`], with the `WWW-Authenticate` header of the answer.
    fn token_challenged(
        &self,
        id_token: Option<&str>,
        scopes: &[&str],
    ) -> (StatusCode, String, Value) {
        let mut query = vec![("service", SERVICE)];
        query.extend(scopes.iter().map(|s| ("scope", *s)));
        let mut request = self.http.get(self.auth.url("/token")).query(&query);
        if let Some(t) = id_token {
            request = request.basic_auth("x", Some(t));
        }
        let response = request.send().unwrap();
        let challenge = www_authenticate(&response);
        (
            response.status(),
            challenge,
            response.json().unwrap_or(Value::Null),
        )
    }

    /// POST /token (OAuth2 password grant).
    fn token_post(&self, id_token: &str, scope: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.auth.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "x"),
                ("password", id_token),
                ("service", SERVICE),
                ("scope", scope),
                ("client_id", "containerd"),
            ])
            .send()
            .unwrap();
        (response.status(), response.json().unwrap_or(Value::Null))
    }

    /// A registry token for the ID token of `repository`'s release workflow.
    fn registry_token(&self, repository: &str, scopes: &[&str]) -> String {
        let (status, body) = self.token(Some(&self.issuer.id_token(repository, SERVICE)), scopes);
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// GET /check for `method uri` as nginx sends it, with an optional Bearer token; status
    /// and challenge.
    fn check(&self, method: &str, uri: &str, bearer: Option<&str>) -> (StatusCode, String) {
        let (status, challenge, _) = self.check_headers(
            &[("X-Original-URI", uri), ("X-Forwarded-Method", method)],
            bearer,
        );
        (status, challenge)
    }

    /// GET /check with exactly `headers` (repeated names are sent repeatedly) and an optional
    /// Bearer token; status, challenge and body.
    fn check_headers(
        &self,
        headers: &[(&str, &str)],
        bearer: Option<&str>,
    ) -> (StatusCode, String, String) {
        let mut request = self.http.get(self.auth.url("/check"));
        for (name, value) in headers {
            // As bytes: a proxy passes UTF-8 on as it came.
            let value = reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap();
            request = request.header(*name, value);
        }
        if let Some(t) = bearer {
            request = request.bearer_auth(t);
        }
        let response = request.send().unwrap();
        let challenge = www_authenticate(&response);
        (response.status(), challenge, response.text().unwrap())
    }

    /// Without a token, /check lets public/base through and challenges acme/app.
    fn assert_anonymous_pulls_public_only(&self) {
        assert_eq!(
            self.check("GET", "/v2/public/base/manifests/latest", None)
                .0,
            StatusCode::OK
        );
        assert_eq!(
            self.check("GET", MANIFEST, None),
            (StatusCode::UNAUTHORIZED, challenge(Some(APP), None))
        );
    }

    fn claims(&self) -> Value {
        self.issuer.github_claims("acme/app", SERVICE)
    }
}

fn www_authenticate(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The `access` claim of a registry token (payload only: the handler checks signatures).
fn access(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["access"].clone()
}

fn challenge(scope: Option<&str>, error: Option<&str>) -> String {
    let mut c = format!("Bearer realm=\"{REALM}\",service=\"{SERVICE}\"");
    if let Some(scope) = scope {
        c.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Some(error) = error {
        c.push_str(&format!(",error=\"{error}\""));
    }
    c
}

#[test]
fn a_valid_id_token_gets_the_intersection_of_asked_and_allowed() {
    let t = setup();
    let id_token = t.issuer.id_token("acme/app", SERVICE);
    let (status, body) = t.token(
        Some(&id_token),
        &[
            "repository:acme/app:pull,push",
            "repository:acme/other:pull",
            "repository:public/base:pull",
            "registry:catalog:*",
        ],
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["access_token"], token);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'), "{body}");
    assert!(body.get("refresh_token").is_none());
    assert!(
        token.len() < 1024,
        "registry token is {} bytes",
        token.len()
    );
    assert_eq!(
        access(token),
        json!([
            {"type": "repository", "name": "acme/app", "actions": ["pull"]},
            {"type": "repository", "name": "public/base", "actions": ["pull"]},
        ])
    );

    // The token opens acme/app for pulls, and nothing else.
    for (method, uri) in [
        ("GET", MANIFEST),
        (
            "HEAD",
            "/v2/acme/app/manifests/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            "GET",
            "/v2/acme/app/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        ("GET", "/v2/acme/app/tags/list"),
        ("GET", "/v2/"),
    ] {
        assert_eq!(
            t.check(method, uri, Some(token)).0,
            StatusCode::OK,
            "{method} {uri}"
        );
    }
    // A token for repository A used on B.
    assert_eq!(
        t.check("GET", "/v2/acme/other/manifests/latest", Some(token)),
        (
            StatusCode::UNAUTHORIZED,
            challenge(
                Some("repository:acme/other:pull"),
                Some("insufficient_scope")
            )
        )
    );
    assert_eq!(
        t.check("PUT", MANIFEST, Some(token)),
        (
            StatusCode::UNAUTHORIZED,
            challenge(
                Some("repository:acme/app:pull,push"),
                Some("insufficient_scope")
            )
        )
    );

    // containerd's OAuth2 POST gets the same grant.
    let (status, body) = t.token_post(&id_token, "repository:acme/app:pull repository:acme/x:pull");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        access(body["access_token"].as_str().unwrap()),
        json!([{"type": "repository", "name": "acme/app", "actions": ["pull"]}])
    );
    // Asking for what the policy does not allow is not an error: the grant is empty.
    let (status, body) = t.token(Some(&t.issuer.id_token("evil/app", SERVICE)), &[APP]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(access(body["token"].as_str().unwrap()), json!([]));

    let jwks: Value = t
        .http
        .get(t.auth.url("/.well-known/jwks.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert!(key["kid"].is_string() && key.get("d").is_none(), "{jwks}");
}

#[test]
fn anonymous_clients_get_public_pulls_only() {
    let t = setup();
    let (status, body) = t.token(None, &[APP, "repository:public/base:pull,push"]);
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        access(token),
        json!([{"type": "repository", "name": "public/base", "actions": ["pull"]}])
    );
    // /v2/ challenges anonymous clients (there are private repositories), so they learn the realm.
    assert_eq!(
        t.check("GET", "/v2/", None),
        (StatusCode::UNAUTHORIZED, challenge(None, None))
    );
    assert_eq!(t.check("GET", "/v2/", Some(token)).0, StatusCode::OK);
    t.assert_anonymous_pulls_public_only();
    assert_eq!(
        t.check("GET", MANIFEST, Some(token)),
        (
            StatusCode::UNAUTHORIZED,
            challenge(Some(APP), Some("insufficient_scope"))
        )
    );
    // Public repositories are never pushable.
    assert_eq!(
        t.check("PUT", "/v2/public/base/manifests/latest", Some(token))
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn attack_table_forged_stale_and_misdirected_id_tokens_are_refused() {
    let t = setup();
    let now = jsonwebtoken::get_current_timestamp();
    let good = t.claims();
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let attacker = SigningKey::generate("attacker");
    let mut jwk_header = Header::new(Algorithm::RS256);
    jwk_header.kid = Some("attacker".to_string());
    jwk_header.jwk = Some(attacker.jwk.clone());
    jwk_header.jku = Some(format!("{}/attacker-jwks.json", t.issuer.url));
    let mut jwk_header_real_kid = jwk_header.clone();
    jwk_header_real_kid.kid = Some("key-1".to_string());
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some("key-1".to_string());
    let hs256_token = |secret: &[u8]| {
        jsonwebtoken::encode(&hs256, &good, &EncodingKey::from_secret(secret)).unwrap()
    };
    let es256_key = EncodingKey::from_ec_pem(generate_key().unwrap().as_bytes()).unwrap();
    let mut es256 = Header::new(Algorithm::ES256);
    es256.kid = Some("key-1".to_string());
    let other_issuer = TestIssuer::start();
    // A token a little over the verifier's cap, whose Basic header (4/3 of it, plus a few
    // bytes) is still under the handler's Authorization header cap.
    let unpadded = t.issuer.key.sign(&with(json!({"padding": ""}))).len();
    let just_over_the_cap = t.issuer.key.sign(&with(
        json!({"padding": "x".repeat((MAX_TOKEN_BYTES + 100 - unpadded) * 3 / 4)}),
    ));
    assert!(
        (MAX_TOKEN_BYTES + 1..MAX_TOKEN_BYTES + 300).contains(&just_over_the_cap.len()),
        "{} bytes",
        just_over_the_cap.len()
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            unsigned("key-1", &good),
            "malformed token header",
        ),
        (
            "HS256 signed with the issuer's public key (PEM)",
            hs256_token(t.issuer.key.public_pem.as_bytes()),
            "algorithm HS256 is not accepted",
        ),
        (
            "HS256 signed with the issuer's public key (JWK)",
            hs256_token(serde_json::to_string(&t.issuer.key.jwk).unwrap().as_bytes()),
            "algorithm HS256 is not accepted",
        ),
        (
            "ES256 from an issuer pinned to RS256",
            jsonwebtoken::encode(&es256, &good, &es256_key).unwrap(),
            "algorithm ES256 is not accepted",
        ),
        (
            "unknown kid",
            attacker.sign(&good),
            "unknown kid \"attacker\"",
        ),
        (
            "jwk and jku headers naming the attacker's key",
            attacker.sign_with_header(jwk_header, &good),
            "unknown kid \"attacker\"",
        ),
        (
            "jwk and jku headers with the issuer's kid",
            attacker.sign_with_header(jwk_header_real_kid, &good),
            "bad signature",
        ),
        (
            "expired",
            t.issuer.key.sign(&with(
                json!({"exp": now - 120, "iat": now - 600, "nbf": now - 600}),
            )),
            "token expired",
        ),
        (
            "nbf in the future",
            t.issuer
                .key
                .sign(&with(json!({"nbf": now + 600, "exp": now + 900}))),
            "not valid yet",
        ),
        (
            "iat in the future",
            t.issuer
                .key
                .sign(&with(json!({"iat": now + 600, "nbf": null}))),
            "issued in the future",
        ),
        (
            "wrong aud",
            t.issuer.id_token("acme/app", "someone-else"),
            "wrong audience",
        ),
        (
            "aud missing",
            t.issuer.key.sign(&with(json!({"aud": null}))),
            "missing required claim aud",
        ),
        (
            "exp missing",
            t.issuer.key.sign(&with(json!({"exp": null}))),
            "missing required claim exp",
        ),
        (
            "iat missing",
            t.issuer.key.sign(&with(json!({"iat": null}))),
            "missing required claim iat",
        ),
        (
            "sub missing",
            t.issuer.key.sign(&with(json!({"sub": null}))),
            "missing required claim sub",
        ),
        (
            "sub too long for a registry token",
            t.issuer.key.sign(&with(json!({"sub": "x".repeat(300)}))),
            "sub must be a string of 1 to 256 bytes",
        ),
        (
            "wrong iss: an issuer that is not allowed",
            other_issuer.id_token("acme/app", SERVICE),
            "is not allowed",
        ),
        (
            "iss of another issuer, signed by the allowed issuer's key",
            t.issuer.key.sign(&with(json!({"iss": other_issuer.url}))),
            "is not allowed",
        ),
        (
            "oversized token, small enough for the Authorization header: the verifier's cap",
            just_over_the_cap.clone(),
            "bytes, at most 8192 bytes are read",
        ),
        (
            "oversized token, too large even for the Authorization header",
            t.issuer
                .key
                .sign(&with(json!({"padding": "x".repeat(9000)}))),
            "credentials too large: an ID token may have at most 8192 bytes",
        ),
        (
            "not a JWT",
            "not-a-jwt".to_string(),
            "malformed token header",
        ),
    ];
    for (name, token, reason) in &cases {
        let (status, challenge, body) = t.token_challenged(Some(token), &[APP]);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(challenge, format!("Basic realm=\"{REALM}\""), "{name}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(reason),
            "{name}: {reason:?} not in {message:?}"
        );
        let (status, body) = t.token_post(token, APP);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{name}");
    }
    // Nothing named in a token made the handler fetch it: not the jku, not the other issuer
    // (not even its discovery document), while the allowed issuer's discovery was read.
    assert_eq!(t.issuer.other_hits(), 0, "the jku URL was fetched");
    assert!(
        t.issuer.discovery_hits() > 0,
        "discovery hits are not counted"
    );
    assert_eq!(
        other_issuer.requests(),
        0,
        "an issuer outside the allowlist was contacted"
    );
    // The good token still works, and so does one expired within the 60 s leeway.
    let (status, _) = t.token(Some(&t.issuer.key.sign(&good)), &[APP]);
    assert_eq!(status, StatusCode::OK);
    let leeway = with(json!({"exp": now - 30, "iat": now - 330, "nbf": now - 330}));
    assert_eq!(
        t.token(Some(&t.issuer.key.sign(&leeway)), &[APP]).0,
        StatusCode::OK
    );
    // Not even an OIDC token: refused, not treated as anonymous.
    let response = t
        .http
        .get(t.auth.url("/token"))
        .query(&[("scope", APP)])
        .header("Authorization", "Bearer abc")
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        www_authenticate(&response),
        format!("Basic realm=\"{REALM}\"")
    );
}

#[test]
fn an_issuer_pinned_to_es256_accepts_es256_tokens_only() {
    let ec = SigningKey::generate_es256("ec-1");
    let t = setup_with(
        |issuer| issuer.publish(&ec),
        |config| {
            assert!(config.contains("algorithms = [\"RS256\"]"));
            config.replace("algorithms = [\"RS256\"]", "algorithms = [\"ES256\"]")
        },
    );
    let claims = t.claims();
    let (status, body) = t.token(Some(&ec.sign(&claims)), &[APP]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        access(body["token"].as_str().unwrap()),
        json!([{"type": "repository", "name": "acme/app", "actions": ["pull"]}])
    );
    // The RSA key is still published, but RS256 is no longer accepted from this issuer.
    let (status, body) = t.token(Some(&t.issuer.key.sign(&claims)), &[APP]);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("algorithm RS256 is not accepted"),
        "{body}"
    );
}

#[test]
fn without_private_repositories_v2_answers_anonymous_clients() {
    // The example without its [[trust]] rules: public repositories only.
    let t = setup_with(
        |_| {},
        |config| config.split("[[trust]]").next().unwrap().to_string(),
    );
    assert_eq!(
        t.check("GET", "/v2/", None),
        (StatusCode::OK, String::new())
    );
    // Nothing but public repositories opens without a token.
    t.assert_anonymous_pulls_public_only();
}

#[test]
fn at_most_8_scopes_per_token_request() {
    let t = setup();
    let scopes: Vec<String> = (0..9)
        .map(|i| format!("repository:public/r{i}:pull"))
        .collect();
    let nine: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let (status, body) = t.token(None, &nine[..8]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        access(body["token"].as_str().unwrap())
            .as_array()
            .unwrap()
            .len(),
        8
    );
    // Nine scopes, as nine parameters or space-separated in one: a 400, not a silent cap.
    let joined = nine.join(" ");
    for asked in [nine.clone(), vec![joined.as_str()]] {
        let (status, body) = t.token(None, &asked);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            body["errors"][0]["message"], "9 scopes asked; at most 8 per token",
            "{body}"
        );
    }
}

#[test]
fn an_unknown_kid_refreshes_the_keys_at_most_once_per_cooldown() {
    let t = setup();
    let rotated = SigningKey::generate("key-2");
    let bogus = SigningKey::generate("bogus");
    let claims = t.claims();
    assert_eq!(
        t.token(Some(&t.issuer.key.sign(&claims)), &[APP]).0,
        StatusCode::OK
    );
    assert_eq!(t.issuer.jwks_hits(), 1);
    // Within the cooldown an unknown kid is refused without a fetch.
    assert_eq!(
        t.token(Some(&rotated.sign(&claims)), &[APP]).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.issuer.jwks_hits(), 1);
    // The issuer rotates; after the cooldown the unknown kid triggers one fetch and passes.
    t.issuer.publish(&rotated);
    std::thread::sleep(JWKS_COOLDOWN + Duration::from_millis(100));
    let (status, body) = t.token(Some(&rotated.sign(&claims)), &[APP]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(t.issuer.jwks_hits(), 2);
    // A flood of bogus kids costs at most one fetch per cooldown.
    for _ in 0..5 {
        assert_eq!(
            t.token(Some(&bogus.sign(&claims)), &[APP]).0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(t.issuer.jwks_hits(), 2);
    std::thread::sleep(JWKS_COOLDOWN + Duration::from_millis(100));
    assert_eq!(
        t.token(Some(&bogus.sign(&claims)), &[APP]).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.issuer.jwks_hits(), 3);
}

#[test]
fn check_refuses_forged_and_expired_registry_tokens_and_path_tricks() {
    let t = setup();
    let token = t.registry_token("acme/app", &[APP]);
    assert_eq!(t.check("GET", MANIFEST, Some(&token)).0, StatusCode::OK);
    let invalid = (
        StatusCode::UNAUTHORIZED,
        challenge(Some(APP), Some("invalid_token")),
    );

    // Same claims, signed by another key.
    let other = Signer::new(
        &generate_key().unwrap(),
        REALM,
        SERVICE,
        Duration::from_secs(300),
    )
    .unwrap();
    let forged = other
        .mint(
            "x",
            serde_json::from_value(access(&token)).unwrap(),
            &regpress::auth::token::Via::default(),
        )
        .unwrap();
    assert_eq!(t.check("GET", MANIFEST, Some(&forged.token)), invalid);

    // The handler's own key, but expired / for another service / alg none.
    let pem = std::fs::read_to_string(t.dir.path().join("auth-key.pem")).unwrap();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let sign = |claims: Value| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let claims = |aud: &str, exp: u64| {
        json!({"iss": REALM, "sub": "x", "aud": aud, "exp": exp, "nbf": exp - 300,
               "iat": exp - 300, "jti": "j", "access": access(&token)})
    };
    assert_eq!(
        t.check("GET", MANIFEST, Some(&sign(claims(SERVICE, now + 300))))
            .0,
        StatusCode::OK
    );
    assert_eq!(
        t.check("GET", MANIFEST, Some(&sign(claims(SERVICE, now - 120)))),
        invalid
    );
    assert_eq!(
        t.check("GET", MANIFEST, Some(&sign(claims("other", now + 300)))),
        invalid
    );
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": kid}).to_string().as_bytes()),
        b64(claims(SERVICE, now + 300).to_string().as_bytes())
    );
    assert_eq!(t.check("GET", MANIFEST, Some(&none)), invalid);
    assert_eq!(
        t.check("GET", "/v2/", Some(&forged.token)),
        (
            StatusCode::UNAUTHORIZED,
            challenge(None, Some("invalid_token"))
        )
    );

    // Paths that could make one repository look like another: 403, with or without a token.
    for trick in [
        "/v2/public/base/../../acme/app/manifests/latest",
        "/v2/acme/app/../other/manifests/latest",
        "/v2/public/%2e%2e/acme/app/manifests/latest",
        "/v2/acme%2Fapp/manifests/latest",
        "/v2/acme/app%2fmanifests/latest",
        "/v2//acme/app/manifests/latest",
        "/v2/acme//app/manifests/latest",
        "/v2/./acme/app/manifests/latest",
        "/v2/_catalog",
        "/v2/public/base%252f..%252f..%252facme/app/manifests/latest",
        "/v2/acme%5Capp/manifests/latest",
        "/v2/public/%2E%2E/acme/app/manifests/latest",
        "/v2/ACME%2FAPP/manifests/latest",
        "/v2/public/base;/../../acme/app/manifests/latest",
        "/v2/acme/app;x=y/manifests/latest",
        "/v2/acme\\app/manifests/latest",
        "/v2/public/base\\..\\..\\acme/app/manifests/latest",
        // Used to be cut at `#` and read as public/base.
        "/v2/public/base/manifests/latest#/../../../../acme/app/manifests/latest",
    ] {
        assert_eq!(
            t.check("GET", trick, Some(&token)).0,
            StatusCode::FORBIDDEN,
            "{trick}"
        );
        assert_eq!(
            t.check("GET", trick, None).0,
            StatusCode::FORBIDDEN,
            "{trick}"
        );
    }
}

#[test]
fn check_reads_one_original_request_and_refuses_a_choice_of_them() {
    let t = setup();
    let token = t.registry_token("acme/app", &[APP]);
    const PUBLIC: &str = "/v2/public/base/manifests/latest";
    // Traefik and Caddy send X-Forwarded-Uri instead of X-Original-URI; some proxies send
    // X-Original-Method; the same value under both names is one request.
    for headers in [
        vec![("X-Forwarded-Uri", MANIFEST), ("X-Forwarded-Method", "GET")],
        vec![("X-Original-URI", MANIFEST), ("X-Original-Method", "HEAD")],
        vec![
            ("X-Original-URI", MANIFEST),
            ("X-Forwarded-Uri", MANIFEST),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Method", "GET"),
        ],
    ] {
        assert_eq!(
            t.check_headers(&headers, Some(&token)).0,
            StatusCode::OK,
            "{headers:?}"
        );
    }
    // Without a token the private request is challenged, whichever header names it.
    let (status, challenge_sent, _) = t.check_headers(
        &[("X-Forwarded-Uri", MANIFEST), ("X-Forwarded-Method", "GET")],
        None,
    );
    assert_eq!(
        (status, challenge_sent),
        (StatusCode::UNAUTHORIZED, challenge(Some(APP), None))
    );

    // A client behind Caddy or Traefik adding its own X-Original-URI (public) to a request for
    // the private image, a client behind nginx adding X-Forwarded-Uri while a UTF-8 byte makes
    // nginx's X-Original-URI unreadable, a repeated header, a push dressed up as a pull, and
    // proxies that send no URI or no method: all 400, never a 2xx, token or not.
    let refusals: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("X-Original-URI", PUBLIC),
                ("X-Forwarded-Uri", MANIFEST),
                ("X-Forwarded-Method", "GET"),
            ],
            "conflicting X-Original-URI / X-Forwarded-Uri",
        ),
        (
            vec![
                ("X-Original-URI", "/v2/acme/app/manifests/latest?x=\u{e9}"),
                ("X-Forwarded-Uri", PUBLIC),
                ("X-Forwarded-Method", "GET"),
            ],
            "not visible ASCII",
        ),
        (
            vec![
                ("X-Forwarded-Uri", PUBLIC),
                ("X-Forwarded-Uri", MANIFEST),
                ("X-Forwarded-Method", "GET"),
            ],
            "conflicting X-Original-URI / X-Forwarded-Uri",
        ),
        (
            vec![
                ("X-Original-URI", MANIFEST),
                ("X-Forwarded-Method", "PUT"),
                ("X-Original-Method", "GET"),
            ],
            "conflicting X-Original-Method / X-Forwarded-Method",
        ),
        (
            vec![
                ("X-Original-URI", MANIFEST),
                ("X-Forwarded-Method", "PUT"),
                ("X-Forwarded-Method", "GET"),
            ],
            "conflicting X-Original-Method / X-Forwarded-Method",
        ),
        (
            vec![("X-Original-URI", PUBLIC)],
            "no X-Original-Method or X-Forwarded-Method header: the proxy must send the original method",
        ),
        (
            vec![("X-Forwarded-Method", "GET")],
            "no X-Original-URI or X-Forwarded-Uri header: the proxy must send the original URI",
        ),
    ];
    for (headers, reason) in &refusals {
        for bearer in [Some(token.as_str()), None] {
            let (status, _, body) = t.check_headers(headers, bearer);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}: {body}");
            assert!(
                body.contains(reason),
                "{headers:?}: {reason:?} not in {body:?}"
            );
        }
    }
}

#[test]
fn bad_configs_stop_the_start_with_the_reason() {
    let issuer = TestIssuer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = common::auth::write_config(dir.path(), &issuer.url, REALM);
    let good = std::fs::read_to_string(&config).unwrap();
    for (from, to, reason) in [
        (
            "algorithms = [\"RS256\"]",
            "algorithms = [\"HS256\"]",
            "HMAC",
        ),
        (
            "algorithms = [\"RS256\"]",
            "algorithms = [\"none\"]",
            "unknown algorithm",
        ),
        (
            "subject = \"repo:acme/app:ref:refs/heads/main\"",
            "",
            "trust rule 1: give exactly one of subject and subject_pattern",
        ),
        (
            "signing_key = \"auth-key.pem\"",
            "signing_key = \"missing.pem\"",
            "missing.pem",
        ),
    ] {
        std::fs::write(&config, good.replacen(from, to, 1)).unwrap();
        let out = regpress(&[
            "auth",
            "serve",
            "--config",
            &s(&config),
            "--listen",
            "127.0.0.1:0",
        ]);
        assert_eq!(out.code, 2, "{from} -> {to}: {}", out.stderr);
        assert!(
            out.stderr.contains(reason),
            "{reason:?} not in {}",
            out.stderr
        );
    }
    let keygen = regpress(&["auth", "keygen"]);
    keygen.ok();
    assert!(keygen.stdout.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    std::fs::write(dir.path().join("auth-key.pem"), &keygen.stdout).unwrap();
    std::fs::write(&config, good).unwrap();
    let _server = serve_config(&config);
}

#[test]
fn an_unreachable_issuer_is_a_503_not_a_bad_token() {
    let t = setup();
    let token = t.issuer.id_token("acme/app", SERVICE);
    let Setup {
        issuer, auth, http, ..
    } = t;
    drop(issuer);
    std::thread::sleep(Duration::from_millis(200));
    let response = http
        .get(auth.url("/token"))
        .query(&[("service", SERVICE), ("scope", APP)])
        .basic_auth("x", Some(&token))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("issuer unavailable"), "{body}");
}
