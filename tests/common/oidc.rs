//! A test OIDC issuer on loopback: publishes discovery and a JWKS like GitHub Actions' issuer,
//! mints GitHub-Actions-shaped ID tokens with an RSA key generated here (or an ES256 one), and
//! counts every request (so tests can prove that JWKS refreshes are rate-limited and that `jku`
//! URLs or unlisted issuers are never contacted, not even for discovery). Its JWKS endpoint can
//! be made to hang or fail, and its discovery to name a `jwks_uri` elsewhere, as a broken or
//! hostile issuer would.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use regpress::auth::token::pem;
use serde_json::{Value, json};

/// A signing key (RSA, or P-256 for ES256) with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
    /// The public key as PEM (SubjectPublicKeyInfo), what an HS256 confusion attack uses.
    pub public_pem: String,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key named `kid`.
    pub fn generate(kid: &str) -> SigningKey {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("pkcs8");
        let encoding =
            EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der.as_ref()).as_bytes()).expect("pem");
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("jwk");
        jwk.common.key_id = Some(kid.to_string());
        let public = aws_lc_rs::signature::KeyPair::public_key(&pair)
            .as_der()
            .expect("public der");
        SigningKey {
            kid: kid.to_string(),
            alg: Algorithm::RS256,
            encoding,
            jwk,
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }

    /// A fresh P-256 key named `kid`, for ES256.
    pub fn generate_es256(kid: &str) -> SigningKey {
        let private = regpress::auth::token::generate_key().expect("generate P-256 key");
        let encoding = EncodingKey::from_ec_pem(private.as_bytes()).expect("pem");
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some(kid.to_string());
        SigningKey {
            kid: kid.to_string(),
            alg: Algorithm::ES256,
            encoding,
            jwk,
            // Only the HS256 confusion cases read it, and they use the RSA key.
            public_pem: String::new(),
        }
    }

    /// Sign `claims` with this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(header, claims)
    }

    /// Sign `claims` with a header of the caller's making.
    pub fn sign_with_header(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

struct Shared {
    url: String,
    keys: Mutex<Vec<Jwk>>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    other_hits: AtomicUsize,
    /// The JWKS endpoint never answers while set.
    jwks_hangs: AtomicBool,
    /// The JWKS endpoint answers this status (and no keys) while non-zero.
    jwks_status: AtomicU16,
    /// The `jwks_uri` discovery names instead of its own `/jwks`.
    jwks_uri: Mutex<Option<String>>,
    /// GitHub Actions' ID token service, once [`TestIssuer::actions_env`] turned it on.
    actions: Mutex<Option<Actions>>,
    /// ID tokens the Actions service handed out.
    actions_hits: AtomicUsize,
}

/// What the Actions token service needs: the job's request token, whose ID tokens it signs
/// (repository), and the key.
struct Actions {
    bearer: String,
    repository: String,
    encoding: EncodingKey,
    header: Header,
}

/// A running issuer, stopped on drop.
pub struct TestIssuer {
    /// The issuer URL (`iss`), `http://127.0.0.1:PORT`.
    pub url: String,
    /// The key its JWKS publishes first, `kid` "key-1".
    pub key: SigningKey,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestIssuer {
    /// Start an issuer on a free loopback port with one published key.
    pub fn start() -> TestIssuer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind issuer");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let key = SigningKey::generate("key-1");
        let shared = Arc::new(Shared {
            url: url.clone(),
            keys: Mutex::new(vec![key.jwk.clone()]),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
            jwks_hangs: AtomicBool::new(false),
            jwks_status: AtomicU16::new(0),
            jwks_uri: Mutex::new(None),
            actions: Mutex::new(None),
            actions_hits: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/actions/idtoken", get(actions_token))
            .fallback(other)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("issuer server");
            });
        });
        TestIssuer {
            url,
            key,
            shared,
            stop: Some(stop),
        }
    }

    /// Add a key to the published JWKS (a rotation).
    pub fn publish(&self, key: &SigningKey) {
        self.shared.keys.lock().unwrap().push(key.jwk.clone());
    }

    /// From now on, JWKS requests are counted and then never answered (`false` ends that).
    pub fn hang_jwks(&self, hang: bool) {
        self.shared.jwks_hangs.store(hang, Ordering::SeqCst);
    }

    /// From now on, JWKS requests get `status` and no keys (0 ends that).
    pub fn fail_jwks(&self, status: u16) {
        self.shared.jwks_status.store(status, Ordering::SeqCst);
    }

    /// Discovery names `uri` as the `jwks_uri` instead of this issuer's own `/jwks`.
    pub fn announce_jwks_uri(&self, uri: &str) {
        *self.shared.jwks_uri.lock().unwrap() = Some(uri.to_string());
    }

    /// How many times the discovery document was fetched.
    pub fn discovery_hits(&self) -> usize {
        self.shared.discovery_hits.load(Ordering::SeqCst)
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    /// How many requests went anywhere but discovery and the JWKS.
    pub fn other_hits(&self) -> usize {
        self.shared.other_hits.load(Ordering::SeqCst)
    }

    /// Every request it answered: discovery, JWKS and anything else.
    pub fn requests(&self) -> usize {
        self.discovery_hits() + self.jwks_hits() + self.other_hits()
    }

    /// Serve GitHub Actions' ID token request endpoint for a job of `repository` (tokens
    /// signed with [`TestIssuer::key`], for the `audience` asked) and return the environment
    /// such a job has: `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn actions_env(&self, repository: &str) -> Vec<(String, String)> {
        let bearer = format!("job-{}", jsonwebtoken::get_current_timestamp());
        let mut header = Header::new(self.key.alg);
        header.kid = Some(self.key.kid.clone());
        *self.shared.actions.lock().unwrap() = Some(Actions {
            bearer: bearer.clone(),
            repository: repository.to_string(),
            encoding: self.key.encoding.clone(),
            header,
        });
        vec![
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL".to_string(),
                format!("{}/actions/idtoken?api-version=2.0", self.url),
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_string(), bearer),
        ]
    }

    /// How many ID tokens the Actions endpoint handed out.
    pub fn actions_hits(&self) -> usize {
        self.shared.actions_hits.load(Ordering::SeqCst)
    }

    /// GitHub Actions ID token claims for a push to `refs/heads/main` of `repository`,
    /// valid now for five minutes, for audience `aud`.
    pub fn github_claims(&self, repository: &str, aud: &str) -> Value {
        github_claims(&self.url, repository, aud)
    }

    /// A valid ID token for `repository`'s release workflow, audience `aud`.
    pub fn id_token(&self, repository: &str, aud: &str) -> String {
        self.key.sign(&self.github_claims(repository, aud))
    }
}

/// GitHub Actions ID token claims of issuer `url` (see [`TestIssuer::github_claims`]).
fn github_claims(url: &str, repository: &str, aud: &str) -> Value {
    {
        let now = jsonwebtoken::get_current_timestamp();
        let owner = repository.split('/').next().unwrap_or_default();
        let workflow = format!("{repository}/.github/workflows/release.yml@refs/heads/main");
        json!({
            "jti": format!("jti-{now}"),
            "sub": format!("repo:{repository}:ref:refs/heads/main"),
            "aud": aud,
            "ref": "refs/heads/main",
            "sha": "7c5b8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708",
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": "1000",
            "repository_id": "2000",
            "repository_visibility": "private",
            "run_id": "3000",
            "run_number": "7",
            "run_attempt": "1",
            "actor": "octocat",
            "actor_id": "4000",
            "workflow": "release",
            "workflow_ref": workflow,
            "job_workflow_ref": workflow,
            "event_name": "push",
            "ref_type": "branch",
            "environment": "production",
            "runner_environment": "github-hosted",
            "iss": url,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + 300,
        })
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Json<Value> {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "issuer": s.url,
        "jwks_uri": s.jwks_uri.lock().unwrap().clone().unwrap_or_else(|| format!("{}/jwks", s.url)),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(State(s): State<Arc<Shared>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if s.jwks_hangs.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    match s.jwks_status.load(Ordering::SeqCst) {
        0 => Json(json!({ "keys": *s.keys.lock().unwrap() })).into_response(),
        status => axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
    }
}

/// GitHub Actions' `ACTIONS_ID_TOKEN_REQUEST_URL`: `bearer <request token>` in, `{"value": <ID
/// token for ?audience=>}` out; 401 for another bearer, 400 without an audience.
async fn actions_token(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let guard = s.actions.lock().unwrap();
    let Some(actions) = guard.as_ref() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let expected = format!("bearer {}", actions.bearer);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    }
    let query = query.unwrap_or_default();
    let Some(audience) = form_urlencoded_value(&query, "audience") else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    s.actions_hits.fetch_add(1, Ordering::SeqCst);
    let claims = github_claims(&s.url, &actions.repository, &audience);
    let token = jsonwebtoken::encode(&actions.header, &claims, &actions.encoding).expect("sign");
    Json(json!({ "count": 1, "value": token })).into_response()
}

/// The first value of `name` in a query string.
fn form_urlencoded_value(query: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://query.invalid/?{query}")).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn other(State(s): State<Arc<Shared>>) -> axum::http::StatusCode {
    s.other_hits.fetch_add(1, Ordering::SeqCst);
    axum::http::StatusCode::NOT_FOUND
}

/// base64url without padding, for hand-made tokens.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with `alg: none` and an empty signature.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}
