//! `auth.toml`: what `regpress auth serve` trusts and how it signs, as read from a file.
//!
//! The file is the whole security policy of the handler, so it is read strictly (unknown keys
//! are errors) and checked as a whole before the server listens: a typo must stop the start,
//! not silently grant or refuse pulls. Compiling the trust rules and issuers into matchers is
//! left to [`crate::policy`] and [`crate::oidc`]; this module only reads and checks the shape.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
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
    pub signing_key_pem: String,
    /// How long a registry token is valid.
    pub token_lifetime: Duration,
    /// Repository patterns anyone may pull without a token.
    pub public: Vec<String>,
    /// The OIDC issuers whose ID tokens are accepted; no other issuer is ever contacted.
    pub issuers: Vec<IssuerConfig>,
    /// Who may pull (or push) which private repositories.
    pub trust: Vec<TrustConfig>,
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
    /// The JWKS URL; default: `jwks_uri` from `<url>/.well-known/openid-configuration`.
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
    token_lifetime: Option<u64>,
    #[serde(default)]
    public: Vec<String>,
    #[serde(default, rename = "issuer")]
    issuers: Vec<IssuerConfig>,
    #[serde(default)]
    trust: Vec<TrustConfig>,
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
        let lifetime = file.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        if !(10..=3600).contains(&lifetime) {
            return Err(format!(
                "token_lifetime {lifetime}: must be between 10 and 3600 seconds"
            ));
        }
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
            signing_key_pem,
            token_lifetime: Duration::from_secs(lifetime),
            public: file.public,
            issuers,
            trust: file.trust,
        })
    }
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
        assert_eq!(c.signing_key_pem, "pem");
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
