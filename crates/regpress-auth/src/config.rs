//! `auth.toml`: what `regpress auth serve` trusts and how it signs, as read from a file.
//!
//! The file is the whole security policy of the handler, so it is read strictly (unknown keys
//! are errors) and checked as a whole before the server listens: a typo must stop the start,
//! not silently grant or refuse pulls. Compiling the trust rules and issuers into matchers is
//! left to [`crate::policy`] and [`crate::oidc`]; this module only reads and checks the shape.
//! The signing key is held as a [`Secret`], so no `Debug` of the config ever shows it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// Where the handler listens when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5001";
/// Registry token lifetime when the file does not say: 5 minutes.
pub const DEFAULT_TOKEN_LIFETIME: u64 = 300;
/// Least time between two JWKS fetches of one issuer caused by an unknown `kid`.
pub const DEFAULT_JWKS_COOLDOWN: u64 = 30;
/// The shortest `jwks_cooldown` accepted: below it a flood of made-up `kid`s turns the handler
/// into a steady stream of requests to the issuer.
pub const MIN_JWKS_COOLDOWN: u64 = 5;
/// Most connections open at once when the file does not say (fewer if the descriptor limit
/// leaves less room).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Seconds a connection may stay open without sending a byte when no request is in flight.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 30;
/// Seconds a request head may take from its first byte to its last.
pub const DEFAULT_HEADER_TIMEOUT: u64 = 10;
/// Seconds reading a request's body and answering it may take (room for discovery and a JWKS
/// fetch of 10 s each).
pub const DEFAULT_REQUEST_TIMEOUT: u64 = 30;
/// Largest request head (request line and headers) read: a maximal ID token in a Basic
/// `Authorization` header is about 11 KiB, a registry token and nginx's forwarded URI 8 KiB each.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;

/// A value that must never be printed: its `Debug` says `Secret(<redacted>)`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Hold `value`.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How the server treats connections (see [`crate::server`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// A connection with no request in flight is closed after this long without a byte.
    pub idle_timeout: Duration,
    /// A request head must arrive whole within this long of its first byte.
    pub header_timeout: Duration,
    /// Reading a request's body and answering it must end within this long (408 otherwise).
    pub request_timeout: Duration,
    /// Largest request head read (431 above it).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT),
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The registry's service name: the `service` clients send and the `aud` of its tokens.
    pub service: String,
    /// The token endpoint's public URL, sent in every challenge (and the `iss` of its tokens).
    pub realm: String,
    /// The P-256 private key (PKCS#8 PEM) that signs registry tokens.
    pub signing_key_pem: Secret,
    /// Keys signed with before a rotation (PEM): published in the JWKS and accepted, never
    /// signed with.
    pub previous_keys_pem: Vec<Secret>,
    /// Pull tokens, when the file has a `[pull_tokens]` table.
    pub pull_tokens: Option<PullTokensConfig>,
    /// The audit of private decisions, when the file has an `[audit]` table.
    pub audit: Option<AuditConfig>,
    /// How long a registry token is valid.
    pub token_lifetime: Duration,
    /// Repository patterns anyone may pull without a token.
    pub public: Vec<String>,
    /// The OIDC issuers whose ID tokens are accepted; no other issuer is ever contacted.
    pub issuers: Vec<IssuerConfig>,
    /// Who may pull (or push) which private repositories.
    pub trust: Vec<TrustConfig>,
    /// Connection cap, timeouts and head size.
    pub limits: Limits,
}

/// Longest pull token lifetime when `[pull_tokens]` does not say: 90 days.
pub const DEFAULT_PULL_TOKEN_MAX_TTL: &str = "90d";
/// Seconds between reads of the revocation list when `[pull_tokens]` does not say.
pub const DEFAULT_REVOCATION_CHECK: u64 = 10;

/// `[pull_tokens]`: long-lived tokens for clients without OIDC, signed by the handler's key.
#[derive(Debug, Clone)]
pub struct PullTokensConfig {
    /// The longest lifetime a pull token may have (longer ones are refused when made and used).
    pub max_ttl: Duration,
    /// The revocation list: one revoked `jti` a line (`#` starts a comment); a missing file
    /// revokes nothing.
    pub revoked: PathBuf,
    /// The list is read again at most this long after it was last read.
    pub revocation_check: Duration,
    /// Repository patterns no pull token may pull, whatever it names.
    pub forbid: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullTokensFile {
    max_ttl: Option<String>,
    revoked: String,
    revocation_check: Option<u64>,
    #[serde(default)]
    forbid: Vec<String>,
}

/// `[audit]`: where every `/check` decision about a private repository goes.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Appended with one JSON line (a CloudEvent) per decision.
    pub log: PathBuf,
    /// Also POST the events here, batched (`application/cloudevents-batch+json`).
    pub events_url: Option<String>,
    /// Sent as the Bearer token of those POSTs (`REGPRESS_EVENTS_TOKEN`).
    pub events_token: Option<Secret>,
}

/// The variable holding the Bearer token for audit event POSTs (the publisher's too).
pub const EVENTS_TOKEN_ENV: &str = "REGPRESS_EVENTS_TOKEN";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    log: String,
    events_url: Option<String>,
}

/// One allowed OIDC issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer URL, exactly as in its tokens' `iss` (https, or http on loopback).
    pub url: String,
    /// Accepted `aud` values of its ID tokens [default: the service name].
    #[serde(default)]
    pub audience: Vec<String>,
    /// Signature algorithms accepted from it [default: RS256].
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The JWKS URL; default: `jwks_uri` from `<url>/.well-known/openid-configuration`, which
    /// must then be on the issuer's origin (scheme, host and port).
    pub jwks_uri: Option<String>,
    /// Seconds between JWKS refreshes triggered by an unknown `kid` [default: 30, at least 5].
    #[serde(default = "default_cooldown")]
    pub jwks_cooldown: u64,
}

/// One trust rule: identities (issuer, subject, audience, claims) that may act on repositories.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Repository patterns (`acme/app`, `acme/*`, `acme/**`).
    pub repositories: Vec<String>,
    /// Actions granted: `pull` (and `push`, for later).
    #[serde(default = "default_actions")]
    pub actions: Vec<String>,
    /// The issuer URL; must be one of the `[[issuer]]` entries.
    pub issuer: String,
    /// The exact `sub` claim.
    pub subject: Option<String>,
    /// An anchored regular expression on the `sub` claim.
    pub subject_pattern: Option<String>,
    /// An `aud` value the token must carry, on top of the issuer's audience check.
    pub audience: Option<String>,
    /// Anchored regular expressions on named claims; a missing claim fails the rule.
    #[serde(default)]
    pub claim_pattern: BTreeMap<String, String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_string()]
}

fn default_cooldown() -> u64 {
    DEFAULT_JWKS_COOLDOWN
}

fn default_actions() -> Vec<String> {
    vec!["pull".to_string()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    listen: Option<SocketAddr>,
    service: String,
    realm: String,
    signing_key: Option<String>,
    signing_key_env: Option<String>,
    #[serde(default)]
    previous_keys: Vec<String>,
    pull_tokens: Option<PullTokensFile>,
    audit: Option<AuditFile>,
    token_lifetime: Option<u64>,
    #[serde(default)]
    public: Vec<String>,
    #[serde(default, rename = "issuer")]
    issuers: Vec<IssuerConfig>,
    #[serde(default)]
    trust: Vec<TrustConfig>,
    max_connections: Option<usize>,
    idle_timeout: Option<u64>,
    header_timeout: Option<u64>,
    request_timeout: Option<u64>,
    max_header_bytes: Option<usize>,
}

impl AuthConfig {
    /// Read and check a config file; a relative `signing_key` is relative to the file.
    pub fn load(path: &Path) -> Result<AuthConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::ReadConfig {
            path: path.to_path_buf(),
            error,
        })?;
        AuthConfig::parse(&text, path.parent().unwrap_or(Path::new(".")), |name| {
            std::env::var(name).ok()
        })
        .map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parse config text; `base` resolves a relative key path, `env` reads `signing_key_env`.
    pub fn parse(
        text: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AuthConfig, String> {
        let file: AuthFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.service.is_empty() {
            return Err("service must not be empty".to_string());
        }
        check_challenge_text("service", &file.service)?;
        check_challenge_text("realm", &file.realm)?;
        check_url("realm", &file.realm)?;
        let signing_key_pem = match (file.signing_key, file.signing_key_env) {
            (Some(p), None) => {
                let path = base.join(p);
                std::fs::read_to_string(&path).map_err(|e| {
                    format!("cannot read signing_key {}: {e}", path.display())
                })?
            }
            (None, Some(var)) => env(&var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("signing_key_env: environment variable {var} is not set"))?,
            _ => return Err("give exactly one of signing_key (a PEM file) and signing_key_env (a variable holding the PEM)".to_string()),
        };
        let previous_keys_pem = file
            .previous_keys
            .iter()
            .map(|p| {
                let path = base.join(p);
                std::fs::read_to_string(&path)
                    .map(Secret::new)
                    .map_err(|e| format!("cannot read previous_keys {}: {e}", path.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pull_tokens = match file.pull_tokens {
            None => None,
            Some(p) => {
                let text = p.max_ttl.as_deref().unwrap_or(DEFAULT_PULL_TOKEN_MAX_TTL);
                let max_ttl = crate::duration::parse_duration(text)
                    .map_err(|e| format!("pull_tokens.max_ttl: {e}"))?;
                if max_ttl.as_secs() < 60 {
                    return Err(format!("pull_tokens.max_ttl {text}: at least 60 s"));
                }
                Some(PullTokensConfig {
                    max_ttl,
                    revoked: base.join(p.revoked),
                    revocation_check: seconds(
                        "pull_tokens.revocation_check",
                        p.revocation_check,
                        DEFAULT_REVOCATION_CHECK,
                    )?,
                    forbid: p.forbid,
                })
            }
        };
        let audit = match file.audit {
            None => None,
            Some(a) => {
                if let Some(url) = &a.events_url {
                    check_url("audit.events_url", url)?;
                }
                Some(AuditConfig {
                    log: base.join(a.log),
                    events_token: a
                        .events_url
                        .as_ref()
                        .and_then(|_| env(EVENTS_TOKEN_ENV))
                        .filter(|v| !v.is_empty())
                        .map(Secret::new),
                    events_url: a.events_url,
                })
            }
        };
        let lifetime = file.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        if !(10..=3600).contains(&lifetime) {
            return Err(format!(
                "token_lifetime {lifetime}: must be between 10 and 3600 seconds"
            ));
        }
        let limits = Limits {
            max_connections: within(
                "max_connections",
                file.max_connections,
                DEFAULT_MAX_CONNECTIONS,
                1..=1_000_000,
                "",
            )?,
            idle_timeout: seconds("idle_timeout", file.idle_timeout, DEFAULT_IDLE_TIMEOUT)?,
            header_timeout: seconds(
                "header_timeout",
                file.header_timeout,
                DEFAULT_HEADER_TIMEOUT,
            )?,
            request_timeout: seconds(
                "request_timeout",
                file.request_timeout,
                DEFAULT_REQUEST_TIMEOUT,
            )?,
            max_header_bytes: within(
                "max_header_bytes",
                file.max_header_bytes,
                DEFAULT_MAX_HEADER_BYTES,
                4096..=1024 * 1024,
                " bytes",
            )?,
        };
        let mut issuers = file.issuers;
        for issuer in &mut issuers {
            check_url("issuer url", &issuer.url)?;
            if let Some(jwks) = &issuer.jwks_uri {
                check_url("issuer jwks_uri", jwks)?;
            }
            if issuer.jwks_cooldown < MIN_JWKS_COOLDOWN {
                return Err(format!(
                    "issuer {}: jwks_cooldown {} is too short: at least {MIN_JWKS_COOLDOWN} seconds",
                    issuer.url, issuer.jwks_cooldown
                ));
            }
            if issuer.audience.is_empty() {
                issuer.audience.push(file.service.clone());
            }
        }
        for (i, rule) in file.trust.iter().enumerate() {
            if !issuers.iter().any(|iss| iss.url == rule.issuer) {
                return Err(format!(
                    "trust rule {}: issuer {:?} is not one of the [[issuer]] urls",
                    i + 1,
                    rule.issuer
                ));
            }
        }
        Ok(AuthConfig {
            listen: file
                .listen
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("static address")),
            service: file.service,
            realm: file.realm,
            signing_key_pem: Secret::new(signing_key_pem),
            previous_keys_pem,
            pull_tokens,
            audit,
            token_lifetime: Duration::from_secs(lifetime),
            public: file.public,
            issuers,
            trust: file.trust,
            limits,
        })
    }
}

/// `value` (or `default`), refused outside `range` with the key's name; `unit` follows numbers.
fn within<T>(
    key: &str,
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, String>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{key} {value}: must be between {}{unit} and {}{unit}",
            range.start(),
            range.end()
        ))
    }
}

/// A timeout key in seconds: 1 to 3600.
fn seconds(key: &str, value: Option<u64>, default: u64) -> Result<Duration, String> {
    within(key, value, default, 1..=3600, " s").map(Duration::from_secs)
}

/// `service` and `realm` are quoted into every `WWW-Authenticate` challenge: refuse what would
/// end or escape the quoted string (`"`, `\`) or cannot be in a header (control characters,
/// anything outside printable ASCII: punycode and percent-encode instead).
fn check_challenge_text(what: &str, value: &str) -> Result<(), String> {
    match value
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' ') || matches!(c, '"' | '\\'))
    {
        Some(c) => Err(format!(
            "{what} {value:?}: {c:?} cannot be quoted in a WWW-Authenticate challenge \
             (printable ASCII only, no \" or \\)"
        )),
        None => Ok(()),
    }
}

/// Require an absolute https URL, or http on a loopback host (tests, a sidecar issuer).
pub fn check_url(what: &str, url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{what} {url:?}: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{what} {url:?}: must be https (http only on a loopback host)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
service = "cr.example.com"
realm = "https://cr.example.com/token"
signing_key_env = "KEY"
public = ["public/*"]

[[issuer]]
url = "https://token.actions.githubusercontent.com"

[[trust]]
repositories = ["acme/*"]
issuer = "https://token.actions.githubusercontent.com"
subject_pattern = "repo:acme/app:.*"
claim_pattern = { repository = "acme/app" }
"#;

    fn parse(text: &str) -> Result<AuthConfig, String> {
        AuthConfig::parse(text, Path::new("."), |v| {
            (v == "KEY").then(|| "pem".to_string())
        })
    }

    #[test]
    fn defaults_fill_in() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.token_lifetime, Duration::from_secs(300));
        assert_eq!(c.issuers[0].audience, vec!["cr.example.com"]);
        assert_eq!(c.issuers[0].algorithms, vec!["RS256"]);
        assert_eq!(c.trust[0].actions, vec!["pull"]);
        assert_eq!(c.signing_key_pem.expose(), "pem");
        assert_eq!(c.limits, Limits::default());
        assert!(c.limits.idle_timeout <= Duration::from_secs(60));
        assert!(c.limits.header_timeout <= Duration::from_secs(60));
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let cases = [
            (
                GOOD.replace(
                    "https://cr.example.com/token",
                    "http://cr.example.com/token",
                ),
                "must be https",
            ),
            (
                GOOD.replace("signing_key_env = \"KEY\"", ""),
                "exactly one of signing_key",
            ),
            (GOOD.replace("\"KEY\"", "\"UNSET\""), "UNSET is not set"),
            (GOOD.replace("public = ", "publik = "), "unknown field"),
            (
                GOOD.replace(
                    "issuer = \"https://token.actions",
                    "issuer = \"https://other",
                ),
                "not one of the [[issuer]] urls",
            ),
            (format!("token_lifetime = 5\n{GOOD}"), "between 10 and 3600"),
            (
                format!("idle_timeout = 0\n{GOOD}"),
                "idle_timeout 0: must be between 1 s and 3600 s",
            ),
            (
                format!("max_connections = 0\n{GOOD}"),
                "max_connections 0: must be between 1 and 1000000",
            ),
            (
                format!("max_header_bytes = 1024\n{GOOD}"),
                "max_header_bytes 1024: must be between 4096 bytes and 1048576 bytes",
            ),
            (
                GOOD.replace(
                    "url = \"https://token.actions.githubusercontent.com\"",
                    "url = \"https://token.actions.githubusercontent.com\"\njwks_cooldown = 4",
                ),
                "jwks_cooldown 4 is too short: at least 5 seconds",
            ),
            (
                GOOD.replace("\"cr.example.com\"", r#""cr.example.com\",error=\"x""#),
                "service \"cr.example.com\\\",error=\\\"x\": '\"' cannot be quoted",
            ),
            (
                GOOD.replace("\"cr.example.com\"", r#""cr\\example""#),
                "'\\\\' cannot be quoted",
            ),
            (
                GOOD.replace("\"cr.example.com\"", r#""cr.example.com\n""#),
                "'\\n' cannot be quoted",
            ),
            (
                GOOD.replace(
                    "https://cr.example.com/token",
                    "https://cr.example.com/token\\\"",
                ),
                "realm \"https://cr.example.com/token\\\"\": '\"' cannot be quoted",
            ),
            (
                GOOD.replace(
                    "https://cr.example.com/token",
                    "https://cr.exämple.com/token",
                ),
                "'ä' cannot be quoted",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_signing_key() {
        let pem = crate::token::generate_key().unwrap();
        let c = AuthConfig::parse(GOOD, Path::new("."), |_| Some(pem.clone())).unwrap();
        let shown = format!("{c:?} {c:#?}");
        let body = pem.lines().nth(1).unwrap();
        assert!(
            !shown.contains(body) && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
        assert!(shown.contains("cr.example.com"), "{shown}");
    }

    #[test]
    fn loopback_http_is_allowed_for_issuers() {
        assert!(check_url("x", "http://127.0.0.1:8080").is_ok());
        assert!(check_url("x", "http://localhost:8080/").is_ok());
        assert!(check_url("x", "http://10.0.0.1/").is_err());
        assert!(check_url("x", "ftp://127.0.0.1/").is_err());
    }
}
