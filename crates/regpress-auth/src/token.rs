//! Registry tokens: short-lived ES256 JWTs in the distribution token format, minted at `/token`
//! and checked at `/check`.
//!
//! A token carries `iss` (the realm), `sub`, `aud` (the service), `exp`, `nbf`, `iat`, a random
//! `jti` and `access: [{type, name, actions}]`, and names its key with `kid` (the key's RFC 7638
//! thumbprint). The public key is served as a JWKS at `/.well-known/jwks.json`, so anything else
//! that wants to check these tokens can. Tokens stay small (a few hundred bytes per scope) so
//! they fit comfortably in a proxy's request header buffers.

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

/// Signs and checks registry tokens with one P-256 key.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: Jwk,
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
        let hint = "the signing key must be a P-256 private key in PKCS#8 PEM \
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
        Ok(Signer {
            encoding,
            decoding,
            public,
            kid,
            issuer: issuer.to_string(),
            service: service.to_string(),
            lifetime,
        })
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public] })
    }

    /// Mint a token for `subject` with `access`.
    pub fn mint(&self, subject: &str, access: Vec<Access>) -> Result<Minted, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let lifetime = self.lifetime.as_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| "no randomness for jti".to_string())?;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: self.service.clone(),
            exp: now + lifetime,
            nbf: now,
            iat: now,
            jti: hex::encode(jti),
            access,
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

    /// Check a token's size, key, signature, issuer, audience and times; return its access.
    pub fn verify(&self, token: &str) -> Result<Vec<Access>, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!("token larger than {MAX_TOKEN_BYTES} bytes"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed: {e}"))?;
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err("signed with another key".to_string());
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "nbf"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.service]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims.access)
            .map_err(|e| e.to_string())
    }
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
            .mint("repo:acme/app:ref:refs/heads/main", vec![pull("acme/app")])
            .unwrap();
        assert_eq!(minted.expires_in, 300);
        assert!(minted.token.len() < 1024, "{} bytes", minted.token.len());
        let access = s.verify(&minted.token).unwrap();
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
        let token = signer(300).mint(&"s".repeat(200), access).unwrap().token;
        assert!(token.len() < 4096, "{} bytes", token.len());
    }

    #[test]
    fn other_keys_services_expired_and_garbage_are_refused() {
        let ours = signer(300);
        let theirs = signer(300);
        let token = theirs.mint("x", vec![pull("acme/app")]).unwrap().token;
        assert!(ours.verify(&token).unwrap_err().contains("another key"));

        let pem = generate_key().unwrap();
        let with_service = |service: &str| {
            Signer::new(&pem, &ours.issuer, service, Duration::from_secs(300)).unwrap()
        };
        let token = with_service("other").mint("x", vec![]).unwrap().token;
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
