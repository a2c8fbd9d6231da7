//! Verify OIDC ID tokens from a fixed allowlist of issuers.
//!
//! The token names its issuer, but the handler only ever contacts issuers from the config: an
//! `iss` outside the allowlist is refused without a request. For each allowed issuer the keys
//! come from OIDC discovery (or a configured `jwks_uri`; a discovered one must be on the
//! issuer's origin), are cached for an hour, and are re-fetched early when a token names an
//! unknown `kid`, at most once per cooldown. A refresh is single-flight per issuer and never
//! holds up a token whose key is cached: past the hour the cached keys keep being served while
//! one refresh runs in the background, and a failed refresh keeps them. Only tokens with an
//! unknown `kid` wait for a refresh, and only one refresh runs for all of them. Algorithms
//! are pinned per issuer (never `none`, never HMAC); `jwk`, `jku` and `x5u` headers are never
//! read; `iss`, `sub`, `aud`, `exp` and `iat` are required, `nbf` is honoured, with 60 s leeway;
//! and a token larger than [`MAX_TOKEN_BYTES`] is refused before any parsing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::config::{IssuerConfig, check_url};
use crate::log;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: u64 = 60;
/// Largest ID token accepted, in bytes (GitHub's are about 1.2 KB).
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Longest `sub` accepted: it is copied into registry tokens, which must stay small.
const MAX_SUBJECT_BYTES: usize = 256;
/// Largest discovery document or JWKS read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Keys are re-fetched after this long even when every `kid` is known (rotation removes keys).
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Timeout for one discovery or JWKS request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A verified identity: who the token says the caller is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `iss`, one of the allowed issuers.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `aud`, as a list.
    pub audience: Vec<String>,
    /// Every claim, for the trust policy's `claim_pattern`.
    pub claims: Map<String, Value>,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token is bad: forged, expired, for someone else, from an unknown issuer…
    Invalid(String),
    /// The issuer's keys could not be fetched; the token may be fine. Why is logged, not told:
    /// upstream URLs and statuses are the operator's business.
    Unavailable,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(why) => write!(f, "invalid ID token: {why}"),
            Refusal::Unavailable => write!(
                f,
                "issuer unavailable: its signing keys cannot be fetched now; try again later"
            ),
        }
    }
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::Invalid(why.into())
}

/// The allowed issuers and their cached keys.
pub struct Verifier {
    issuers: HashMap<String, Arc<Issuer>>,
    http: reqwest::Client,
}

struct Issuer {
    url: String,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    jwks_uri: Option<String>,
    cooldown: Duration,
    /// Read by every token; written only when a fetch ends. Never held across an await.
    keys: RwLock<KeyCache>,
    /// Held by the one refresh in flight (single flight).
    refresh: Mutex<()>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Jwk>,
    /// When the keys held were fetched; `None` until a fetch succeeds.
    fetched: Option<Instant>,
    /// When the last fetch started.
    attempted: Option<Instant>,
    /// Fetches ended (either way): a waiter that sees it move knows a refresh happened.
    attempts: u64,
}

/// Parse an algorithm name from the config, refusing anything symmetric.
fn asymmetric(name: &str) -> Result<Algorithm, String> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| format!("unknown algorithm {name:?} (use RS256, ES256, …)"))?;
    if alg.family() == AlgorithmFamily::Hmac {
        return Err(format!(
            "algorithm {name}: HMAC needs a shared secret, ID tokens must be signed with the issuer's private key"
        ));
    }
    Ok(alg)
}

impl Verifier {
    /// Set up the allowlist; nothing is fetched until the first token arrives.
    pub fn new(issuers: &[IssuerConfig]) -> Result<Verifier, String> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        let mut by_url = HashMap::new();
        for c in issuers {
            let algorithms = c
                .algorithms
                .iter()
                .map(|a| asymmetric(a))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("issuer {}: {e}", c.url))?;
            if algorithms.is_empty() {
                return Err(format!("issuer {}: algorithms must not be empty", c.url));
            }
            let issuer = Issuer {
                url: c.url.clone(),
                audience: c.audience.clone(),
                algorithms,
                jwks_uri: c.jwks_uri.clone(),
                cooldown: Duration::from_secs(c.jwks_cooldown),
                keys: RwLock::new(KeyCache::default()),
                refresh: Mutex::new(()),
            };
            if by_url.insert(c.url.clone(), Arc::new(issuer)).is_some() {
                return Err(format!("issuer {} is listed twice", c.url));
            }
        }
        Ok(Verifier {
            issuers: by_url,
            http,
        })
    }

    /// Verify an ID token and return the identity it proves.
    pub async fn verify(&self, token: &str) -> Result<Identity, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid(format!(
                "token is {} bytes, at most {MAX_TOKEN_BYTES} bytes are read",
                token.len()
            )));
        }
        let header =
            decode_header(token).map_err(|e| invalid(format!("malformed token header: {e}")))?;
        if header.crit.is_some() {
            return Err(invalid("critical header extensions are not supported"));
        }
        #[derive(Deserialize)]
        struct Iss {
            iss: String,
        }
        // Unverified, only to pick which allowed issuer's keys to check the signature with;
        // `decode` checks `iss` again once the signature holds.
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Iss>(token)
            .map_err(|_| invalid("no iss claim"))?
            .iss;
        let issuer = self
            .issuers
            .get(&iss)
            .ok_or_else(|| invalid(format!("issuer {iss:?} is not allowed")))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} is not accepted from {iss}",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| invalid("token has no kid"))?;
        let jwk = issuer.key(&self.http, &kid).await?;
        if let Some(key_alg) = jwk.common.key_algorithm
            && Algorithm::try_from(key_alg).ok() != Some(header.alg)
        {
            return Err(invalid(format!(
                "key {kid} is for {key_alg}, token says {:?}",
                header.alg
            )));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| invalid(format!("key {kid:?} cannot be used")))?;
        if key.family() != header.alg.family() {
            return Err(invalid(format!("key {kid} does not fit {:?}", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
        validation.set_issuer(&[&issuer.url]);
        validation.set_audience(&issuer.audience);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        let claims = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| invalid(describe(&e)))?
            .claims;
        let iat = claims
            .get("iat")
            .and_then(Value::as_f64)
            .ok_or_else(|| invalid("missing required claim iat"))?;
        if iat > (jsonwebtoken::get_current_timestamp() + LEEWAY) as f64 {
            return Err(invalid("issued in the future (iat)"));
        }
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_SUBJECT_BYTES => s.clone(),
            _ => {
                return Err(invalid(format!(
                    "sub must be a string of 1 to {MAX_SUBJECT_BYTES} bytes"
                )));
            }
        };
        let audience = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Identity {
            issuer: issuer.url.clone(),
            subject,
            audience,
            claims,
        })
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "token expired (exp)".to_string(),
        ErrorKind::ImmatureSignature => "token not valid yet (nbf)".to_string(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".to_string(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".to_string(),
        ErrorKind::InvalidSignature => "bad signature".to_string(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing required claim {c}"),
        _ => e.to_string(),
    }
}

impl Issuer {
    fn cache(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        // Plain data: a panic elsewhere leaves it usable.
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The key named `kid`. A cached key is returned at once (and, past [`JWKS_MAX_AGE`], a
    /// refresh is started in the background); an unknown `kid` waits for a refresh, at most one
    /// per cooldown and one at a time.
    async fn key(self: &Arc<Self>, http: &reqwest::Client, kid: &str) -> Result<Jwk, Refusal> {
        let now = Instant::now();
        let (cached, stale, may_fetch, attempts) = {
            let cache = self.cache();
            (
                cache.keys.get(kid).cloned(),
                cache
                    .fetched
                    .is_none_or(|t| now.duration_since(t) > JWKS_MAX_AGE),
                cache
                    .attempted
                    .is_none_or(|t| now.duration_since(t) >= self.cooldown),
                cache.attempts,
            )
        };
        if let Some(jwk) = cached {
            if stale && may_fetch {
                let issuer = self.clone();
                let http = http.clone();
                tokio::spawn(async move { issuer.refresh(&http, attempts).await });
            }
            return Ok(jwk);
        }
        // Unknown: wait for a refresh, ours if the cooldown allows, or the one in flight.
        if may_fetch || self.refresh.try_lock().is_err() {
            self.refresh(http, attempts).await;
        }
        let cache = self.cache();
        if cache.fetched.is_none() {
            return Err(Refusal::Unavailable);
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| invalid(format!("unknown kid {kid:?}")))
    }

    /// Fetch the keys, unless a fetch ended since the caller saw `seen` attempts (then that one
    /// was the refresh it wanted) or the cooldown forbids. One at a time per issuer.
    async fn refresh(&self, http: &reqwest::Client, seen: u64) {
        let _one = self.refresh.lock().await;
        {
            let mut cache = self.keys.write().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if cache.attempts != seen
                || cache
                    .attempted
                    .is_some_and(|t| now.duration_since(t) < self.cooldown)
            {
                return;
            }
            cache.attempted = Some(now);
        }
        let fetched = self.fetch_keys(http).await;
        let mut cache = self.keys.write().unwrap_or_else(|e| e.into_inner());
        cache.attempts += 1;
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched = Some(Instant::now());
            }
            // The keys held stay: better a key an hour old than none.
            Err(e) => log::line(format_args!("cannot refresh keys of {}: {e}", self.url)),
        }
    }

    /// Discovery (unless `jwks_uri` is configured), then the JWKS: signing keys with a `kid`.
    async fn fetch_keys(&self, http: &reqwest::Client) -> Result<HashMap<String, Jwk>, String> {
        let jwks_uri = match &self.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                #[derive(Deserialize)]
                struct Discovery {
                    issuer: String,
                    jwks_uri: String,
                }
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.url.trim_end_matches('/')
                );
                let d: Discovery = get_json(http, &url).await?;
                if d.issuer != self.url {
                    return Err(format!(
                        "{url} names issuer {:?}, expected {:?}",
                        d.issuer, self.url
                    ));
                }
                check_url("jwks_uri", &d.jwks_uri)?;
                same_origin(&self.url, &d.jwks_uri).map_err(|why| format!("{url}: {why}"))?;
                d.jwks_uri
            }
        };
        let set: JwkSet = get_json(http, &jwks_uri).await?;
        Ok(set
            .keys
            .into_iter()
            .filter(|k| k.is_supported())
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter(|k| DecodingKey::from_jwk(k).is_ok_and(|d| d.family() != AlgorithmFamily::Hmac))
            .filter_map(|k| Some((k.common.key_id.clone()?, k)))
            .collect())
    }
}

/// A discovered `jwks_uri` must be on the issuer's origin: whoever can change the discovery
/// document (a compromised path, a misconfigured CDN) must not be able to send the handler to
/// keys held elsewhere. An issuer whose keys really live elsewhere is configured with
/// `jwks_uri`.
fn same_origin(issuer: &str, jwks_uri: &str) -> Result<(), String> {
    let origin = |url: &str| {
        reqwest::Url::parse(url)
            .map(|u| u.origin())
            .map_err(|e| format!("{url:?}: {e}"))
    };
    let (theirs, ours) = (origin(jwks_uri)?, origin(issuer)?);
    if theirs == ours {
        Ok(())
    } else {
        Err(format!(
            "jwks_uri {jwks_uri:?} is not on the issuer's origin {}; set jwks_uri in auth.toml to trust it",
            ours.ascii_serialization()
        ))
    }
}

/// GET a JSON document of at most [`MAX_DOCUMENT_BYTES`].
async fn get_json<T: DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, String> {
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the expected JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discovered_jwks_uri_must_share_scheme_host_and_port() {
        let issuer = "https://token.actions.githubusercontent.com";
        assert!(
            same_origin(
                issuer,
                "https://token.actions.githubusercontent.com/.well-known/jwks"
            )
            .is_ok()
        );
        assert!(same_origin("http://127.0.0.1:8080", "http://127.0.0.1:8080/jwks").is_ok());
        for elsewhere in [
            "https://evil.example/jwks",
            "http://token.actions.githubusercontent.com/jwks",
            "https://token.actions.githubusercontent.com:8443/jwks",
            "https://token.actions.githubusercontent.com.evil.example/jwks",
        ] {
            let why = same_origin(issuer, elsewhere).unwrap_err();
            assert!(why.contains("not on the issuer's origin"), "{why}");
        }
    }
}
