//! Registry tokens: short-lived ES256 JWTs in the distribution token format, minted at `/token`
//! and checked at `/check`.
//!
//! A token carries `iss` (the realm), `sub`, `aud` (the service), `exp`, `nbf`, `iat`, a random
//! `jti` and `access: [{type, name, actions}]`, and names its key with `kid` (the key's RFC 7638
//! thumbprint). The public key is served as a JWKS at `/.well-known/jwks.json`, so anything else
//! that wants to check these tokens can. Tokens stay small (a few hundred bytes per scope) so
//! they fit comfortably in a proxy's request header buffers.
//!
//! Key rotation: the signer signs with one key and also holds the keys it signed with before
//! (`previous_keys`), publishing them all in the JWKS and accepting tokens of any of them, so a
//! token minted before a rotation keeps working until it expires.
//!
//! Pull tokens are JWTs of the same keys with another `typ` ([`PULL_TOKEN_TYPE`]) and audience
//! (`<service>/pull-token`), carrying repository patterns instead of `access`: neither kind of
//! token passes for the other. A registry token minted for a pull token names it
//! (`pull_token`: its `jti`), so `/check` can refuse it once the pull token is revoked.

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::oidc::LEEWAY;

/// Largest registry token `/check` will parse.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// One entry of the `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Always `repository` here.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name.
    pub name: String,
    /// Granted actions (`pull`, `push`).
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
    /// Where the identity came from: the OIDC issuer, or the realm for a pull token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idp: Option<String>,
    /// The `jti` of the pull token this was minted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pull_token: Option<String>,
}

/// How the holder of a registry token proved who it is.
#[derive(Debug, Clone, Default)]
pub struct Via {
    /// The ID token's issuer (or the realm, for a pull token).
    pub issuer: Option<String>,
    /// The pull token's `jti`.
    pub pull_token: Option<String>,
}

/// The JOSE `typ` of a pull token.
pub const PULL_TOKEN_TYPE: &str = "regpress-pull-token+jwt";

/// What a pull token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullClaims {
    /// The realm.
    pub iss: String,
    /// `pull-token:<name>`.
    pub sub: String,
    /// `<service>/pull-token`.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Its id, the one revocation names.
    pub jti: String,
    /// Its name: the username it is presented with.
    pub name: String,
    /// Repository patterns it may pull.
    pub repositories: Vec<String>,
}

/// A registry token that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its `sub`.
    pub subject: String,
    /// Its `jti`.
    pub jti: String,
    /// What it grants.
    pub access: Vec<Access>,
    /// How its holder proved who it is.
    pub via: Via,
}

/// One verification key, with its JWK.
struct Key {
    kid: String,
    decoding: DecodingKey,
    public: Jwk,
}

impl Key {
    fn from_pem(pem: &str) -> Result<(EncodingKey, Key), String> {
        let hint = "a signing key must be a P-256 private key in PKCS#8 PEM \
                    (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)";
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| format!("{hint}: {e}"))?;
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .map_err(|e| format!("{hint}: {e}"))?;
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("cannot compute key thumbprint: {e}"))?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&public).map_err(|e| format!("{hint}: {e}"))?;
        Ok((
            encoding,
            Key {
                kid,
                decoding,
                public,
            },
        ))
    }
}

/// A freshly minted token and what the token response reports about it.
#[derive(Debug)]
pub struct Minted {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// When it was issued, RFC 3339.
    pub issued_at: String,
}

/// Signs registry tokens with one P-256 key and checks them against it and the previous keys.
pub struct Signer {
    encoding: EncodingKey,
    /// The current key first, then the previous ones.
    keys: Vec<Key>,
    kid: String,
    issuer: String,
    service: String,
    lifetime: Duration,
}

impl Signer {
    /// Load a P-256 private key (PKCS#8 PEM, as `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256` writes). `issuer` and `service` go into every token.
    pub fn new(
        pem: &str,
        issuer: &str,
        service: &str,
        lifetime: Duration,
    ) -> Result<Signer, String> {
        let (encoding, key) = Key::from_pem(pem)?;
        Ok(Signer {
            encoding,
            kid: key.kid.clone(),
            keys: vec![key],
            issuer: issuer.to_string(),
            service: service.to_string(),
            lifetime,
        })
    }

    /// Also accept (and publish) tokens of the keys in `pems`, signed with before a rotation.
    pub fn with_previous(mut self, pems: &[&str]) -> Result<Signer, String> {
        for (i, pem) in pems.iter().enumerate() {
            let (_, key) =
                Key::from_pem(pem).map_err(|e| format!("previous_keys {}: {e}", i + 1))?;
            if !self.keys.iter().any(|k| k.kid == key.kid) {
                self.keys.push(key);
            }
        }
        Ok(self)
    }

    /// The public keys, current first, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&Jwk> = self.keys.iter().map(|k| &k.public).collect();
        serde_json::json!({ "keys": keys })
    }

    /// The key that signed `token` (by its `kid`), if it is one of ours.
    fn key_of(&self, token: &str) -> Result<(jsonwebtoken::Header, &Key), String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!("token larger than {MAX_TOKEN_BYTES} bytes"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed: {e}"))?;
        let key = self
            .keys
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
            .ok_or("signed with another key")?;
        Ok((header, key))
    }

    /// Is `token` a pull token (by its `typ`; not checked)?
    pub fn is_pull_token(token: &str) -> bool {
        jsonwebtoken::decode_header(token).is_ok_and(|h| h.typ.as_deref() == Some(PULL_TOKEN_TYPE))
    }

    fn validation(&self, audience: &str, claims: &[&str]) -> Validation {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_required_spec_claims(claims);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation
    }

    /// The audience of pull tokens: `<service>/pull-token`.
    fn pull_audience(&self) -> String {
        format!("{}/pull-token", self.service)
    }

    /// Make a pull token named `name` for `repositories`, valid for `ttl`.
    pub fn mint_pull_token(
        &self,
        name: &str,
        repositories: &[String],
        ttl: Duration,
    ) -> Result<(String, PullClaims), String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = PullClaims {
            iss: self.issuer.clone(),
            sub: format!("pull-token:{name}"),
            aud: self.pull_audience(),
            exp: now + ttl.as_secs(),
            iat: now,
            nbf: now,
            jti: random_id()?,
            name: name.to_string(),
            repositories: repositories.to_vec(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(PULL_TOKEN_TYPE.to_string());
        let token = encode(&header, &claims, &self.encoding)
            .map_err(|e| format!("cannot sign the pull token: {e}"))?;
        Ok((token, claims))
    }

    /// Check a pull token's key, type, signature, issuer, audience and times.
    pub fn verify_pull_token(&self, token: &str) -> Result<PullClaims, String> {
        let (header, key) = self.key_of(token)?;
        if header.typ.as_deref() != Some(PULL_TOKEN_TYPE) {
            return Err("not a pull token".to_string());
        }
        let validation =
            self.validation(&self.pull_audience(), &["iss", "sub", "aud", "exp", "nbf"]);
        decode::<PullClaims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }

    /// Mint a token for `subject` with `access`, naming the pull token it is for, if any.
    pub fn mint(&self, subject: &str, access: Vec<Access>, via: &Via) -> Result<Minted, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let lifetime = self.lifetime.as_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: self.service.clone(),
            exp: now + lifetime,
            nbf: now,
            iat: now,
            jti: random_id()?,
            access,
            idp: via.issuer.clone(),
            pull_token: via.pull_token.clone(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token = encode(&header, &claims, &self.encoding)
            .map_err(|e| format!("cannot sign token: {e}"))?;
        let issued_at = i64::try_from(now)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map(|t| t.to_string())
            .unwrap_or_default();
        Ok(Minted {
            token,
            expires_in: lifetime,
            issued_at,
        })
    }

    /// Check a registry token's size, key, signature, issuer, audience and times.
    pub fn verify(&self, token: &str) -> Result<Verified, String> {
        let (header, key) = self.key_of(token)?;
        if header.typ.as_deref() == Some(PULL_TOKEN_TYPE) {
            return Err("a pull token is a password for /token, not a registry token".to_string());
        }
        let validation = self.validation(&self.service, &["iss", "sub", "aud", "exp", "nbf"]);
        decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| Verified {
                subject: data.claims.sub,
                jti: data.claims.jti,
                access: data.claims.access,
                via: Via {
                    issuer: data.claims.idp,
                    pull_token: data.claims.pull_token,
                },
            })
            .map_err(|e| e.to_string())
    }
}

/// 16 random bytes in hex: a `jti`, an event id.
pub fn random_id() -> Result<String, String> {
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).map_err(|_| "no randomness for jti".to_string())?;
    Ok(hex::encode(jti))
}

/// A new P-256 private key as PKCS#8 PEM, for `regpress auth keygen`.
pub fn generate_key() -> Result<String, String> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|_| "cannot generate a P-256 key".to_string())?;
    Ok(pem("PRIVATE KEY", der.as_ref()))
}

/// DER bytes as a PEM block with `label` (`PRIVATE KEY`, `PUBLIC KEY`), 64 columns with LF
/// line ends as openssl writes it (`pem::encode` alone would end lines with CRLF).
pub fn pem(label: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}

/// Does `access` allow `action` on `repository`?
pub fn covers(access: &[Access], repository: &str, action: &str) -> bool {
    access.iter().any(|a| {
        a.kind == "repository" && a.name == repository && a.actions.iter().any(|x| x == action)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(lifetime: u64) -> Signer {
        Signer::new(
            &generate_key().unwrap(),
            "https://cr.example.com/token",
            "cr.example.com",
            Duration::from_secs(lifetime),
        )
        .unwrap()
    }

    fn pull(name: &str) -> Access {
        Access {
            kind: "repository".to_string(),
            name: name.to_string(),
            actions: vec!["pull".to_string()],
        }
    }

    #[test]
    fn minted_tokens_verify_and_carry_their_access() {
        let s = signer(300);
        let minted = s
            .mint(
                "repo:acme/app:ref:refs/heads/main",
                vec![pull("acme/app")],
                &Via::default(),
            )
            .unwrap();
        assert_eq!(minted.expires_in, 300);
        assert!(minted.token.len() < 1024, "{} bytes", minted.token.len());
        let access = s.verify(&minted.token).unwrap().access;
        assert!(covers(&access, "acme/app", "pull"));
        assert!(!covers(&access, "acme/app", "push"));
        assert!(!covers(&access, "acme/other", "pull"));
        let jwks = s.jwks();
        assert_eq!(jwks["keys"][0]["kid"], s.kid.as_str());
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "private part leaked: {jwks}"
        );
    }

    #[test]
    fn the_largest_grant_stays_under_4_kb() {
        let access = (0..8)
            .map(|i| Access {
                kind: "repository".to_string(),
                name: format!("{i}{}", "a".repeat(254)),
                actions: vec!["pull".to_string(), "push".to_string()],
            })
            .collect();
        let token = signer(300)
            .mint(&"s".repeat(200), access, &Via::default())
            .unwrap()
            .token;
        assert!(token.len() < 4096, "{} bytes", token.len());
    }

    #[test]
    fn other_keys_services_expired_and_garbage_are_refused() {
        let ours = signer(300);
        let theirs = signer(300);
        let token = theirs
            .mint("x", vec![pull("acme/app")], &Via::default())
            .unwrap()
            .token;
        assert!(ours.verify(&token).unwrap_err().contains("another key"));

        let pem = generate_key().unwrap();
        let with_service = |service: &str| {
            Signer::new(&pem, &ours.issuer, service, Duration::from_secs(300)).unwrap()
        };
        let token = with_service("other")
            .mint("x", vec![], &Via::default())
            .unwrap()
            .token;
        assert!(with_service("cr.example.com").verify(&token).is_err());

        let now = jsonwebtoken::get_current_timestamp();
        let at = |exp: u64, nbf: u64| {
            let claims = Claims {
                iss: ours.issuer.clone(),
                sub: "x".to_string(),
                aud: ours.service.clone(),
                exp,
                nbf,
                iat: nbf,
                jti: "j".to_string(),
                access: vec![pull("acme/app")],
                idp: None,
                pull_token: None,
            };
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(ours.kid.clone());
            encode(&header, &claims, &ours.encoding).unwrap()
        };
        assert!(ours.verify(&at(now + 300, now)).is_ok());
        assert!(
            ours.verify(&at(now - LEEWAY - 5, now - 400))
                .unwrap_err()
                .contains("Expired")
        );
        assert!(
            ours.verify(&at(now + 900, now + 600))
                .unwrap_err()
                .contains("Immature")
        );
        assert!(ours.verify("not.a.token").is_err());
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(ours.verify(&huge).unwrap_err().contains("larger"));
    }

    #[test]
    fn previous_keys_verify_and_are_published_and_pull_tokens_are_not_registry_tokens() {
        let old_pem = generate_key().unwrap();
        let new_pem = generate_key().unwrap();
        let make = |pem: &str| {
            Signer::new(
                pem,
                "https://cr.example.com/token",
                "cr.example.com",
                Duration::from_secs(300),
            )
            .unwrap()
        };
        let old = make(&old_pem);
        let before = old
            .mint("x", vec![pull("acme/app")], &Via::default())
            .unwrap()
            .token;
        let rotated = make(&new_pem).with_previous(&[&old_pem]).unwrap();
        assert!(rotated.verify(&before).is_ok());
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(rotated.jwks()["keys"][0]["kid"], rotated.kid.as_str());
        assert!(
            make(&new_pem)
                .verify(&before)
                .unwrap_err()
                .contains("another key")
        );

        let (pull_token, claims) = rotated
            .mint_pull_token("ci", &["acme/*".to_string()], Duration::from_secs(3600))
            .unwrap();
        assert!(Signer::is_pull_token(&pull_token));
        assert_eq!(
            rotated.verify_pull_token(&pull_token).unwrap().jti,
            claims.jti
        );
        assert!(
            rotated
                .verify(&pull_token)
                .unwrap_err()
                .contains("pull token")
        );
        assert!(
            rotated
                .verify_pull_token(&before)
                .unwrap_err()
                .contains("not a pull token")
        );
        let via = Via {
            issuer: None,
            pull_token: Some(claims.jti.clone()),
        };
        let minted = rotated.mint("pull-token:ci", vec![], &via).unwrap();
        assert_eq!(
            rotated.verify(&minted.token).unwrap().via.pull_token,
            Some(claims.jti)
        );
    }

    #[test]
    fn pem_blocks_are_64_columns_with_lf() {
        let der: Vec<u8> = (0..=255).collect();
        let text = pem("PUBLIC KEY", &der);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[lines.len() - 1], "-----END PUBLIC KEY-----");
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64));
        assert_eq!(lines[1].len(), 64);
        assert!(
            text.ends_with("-----\n") && !text.contains('\r'),
            "{text:?}"
        );
        assert_eq!(pem::parse(&text).unwrap().contents(), der.as_slice());
    }

    #[test]
    fn bad_keys_are_refused_with_a_hint() {
        let Err(err) = Signer::new("nope", "i", "s", Duration::from_secs(60)) else {
            panic!("a garbage key was accepted");
        };
        assert!(err.contains("P-256"), "{err}");
    }
}
