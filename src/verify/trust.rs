//! The signature trust policy: which signers are accepted, and the root of trust they chain to.
//!
//! A signer is either a public key (cosign key pairs, KMS keys: ECDSA P-256/P-384, Ed25519,
//! RSA) or a keyless identity: the certificate's subject (exact, or an anchored regular
//! expression) together with the OIDC issuer that vouched for it, as Fulcio records them. All
//! cryptography — certificate chains, signed timestamps, transparency-log inclusion proofs and
//! checkpoints, DSSE envelopes and in-toto subjects — is Sigstore's own `sigstore-verify`;
//! this module only decides which of its policies apply and says which signer matched.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use sigstore_verify::trust_root::{
    SIGSTORE_PRODUCTION_TRUSTED_ROOT, SIGSTORE_STAGING_TRUSTED_ROOT, TrustedRoot,
};
use sigstore_verify::types::{Artifact, Bundle, DerPublicKey};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

/// Why `require` alone is not a policy.
const NO_SIGNERS: &str = "signatures are required (`require = true` in [signatures], or \
    --require-signature) but no signer is accepted, so no image could pass: name a signer with \
    `[[signatures.signer]]` (`key = \"cosign.pub\"`, or `issuer` with `identity` or \
    `identity_regexp`), or on the command line with --key, or --certificate-identity (or \
    --certificate-identity-regexp) with --certificate-oidc-issuer";

/// The policy as written in `regpress.toml` (`[signatures]`) or given as flags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Every published image must carry at least one signature an accepted signer made.
    #[serde(default)]
    pub require: bool,
    /// A Sigstore `trusted_root.json`; default: Sigstore's public-good production root,
    /// embedded in the binary.
    pub trusted_root: Option<PathBuf>,
    /// Accepted signers.
    #[serde(default, rename = "signer")]
    pub signers: Vec<SignerSpec>,
}

/// One accepted signer: `key`, or `issuer` with `identity` or `identity_regexp`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerSpec {
    /// A PEM public key file.
    pub key: Option<PathBuf>,
    /// The certificate identity, exactly (e.g. a workflow URI or an email address).
    pub identity: Option<String>,
    /// The certificate identity as a regular expression, anchored at both ends.
    pub identity_regexp: Option<String>,
    /// The OIDC issuer, exactly (e.g. `https://token.actions.githubusercontent.com`).
    pub issuer: Option<String>,
}

impl PolicySpec {
    /// Resolve relative paths (key files, trusted root) against `base`.
    pub fn resolve(mut self, base: &Path) -> PolicySpec {
        self.trusted_root = self.trusted_root.map(|p| base.join(p));
        for signer in &mut self.signers {
            signer.key = signer.key.take().map(|p| base.join(p));
        }
        self
    }

    /// Whether there is anything to check: signatures required, or signers to check them by.
    pub fn is_active(&self) -> bool {
        self.require || !self.signers.is_empty()
    }
}

/// Which root of trust: the embedded production or staging root, or a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// Sigstore's public-good production instance (embedded).
    Production,
    /// Sigstore's staging instance (embedded), for the conformance suite.
    Staging,
    /// A `trusted_root.json` file.
    File(PathBuf),
}

enum Identity {
    Exact(String),
    Pattern(Regex),
}

enum Signer {
    Key { file: String, key: DerPublicKey },
    Keyless { identity: Identity, issuer: String },
}

impl Signer {
    fn describe(&self) -> String {
        match self {
            Signer::Key { file, .. } => format!("key {file}"),
            Signer::Keyless { identity, issuer } => match identity {
                Identity::Exact(id) => format!("identity {id} (issuer {issuer})"),
                Identity::Pattern(re) => format!("identity ~ {re} (issuer {issuer})"),
            },
        }
    }
}

/// A loaded policy, ready to verify bundles.
pub struct TrustPolicy {
    /// Signatures are required.
    pub require: bool,
    signers: Vec<Signer>,
    verifier: Verifier,
    /// Certificates must carry a Signed Certificate Timestamp from a CT log of the root; a
    /// root that lists no CT log (a private Sigstore without CT) cannot vouch for any.
    require_sct: bool,
}

impl TrustPolicy {
    /// Load a policy: read key files and the trusted root, compile identity patterns. Requiring
    /// signatures without accepting any signer is refused here, as the usage error it is (it
    /// would otherwise refuse every image as unsigned).
    pub fn load(spec: &PolicySpec) -> Result<TrustPolicy, String> {
        if spec.require && spec.signers.is_empty() {
            return Err(NO_SIGNERS.to_string());
        }
        let root = match &spec.trusted_root {
            Some(path) => RootSource::File(path.clone()),
            None => RootSource::Production,
        };
        let signers = spec
            .signers
            .iter()
            .map(load_signer)
            .collect::<Result<Vec<_>, _>>()?;
        let (verifier, require_sct) = verifier(&root)?;
        Ok(TrustPolicy {
            require: spec.require,
            signers,
            verifier,
            require_sct,
        })
    }

    /// Load with an explicit root source (the conformance CLI's `--staging`).
    pub fn with_root(spec: &PolicySpec, root: &RootSource) -> Result<TrustPolicy, String> {
        let mut policy = TrustPolicy::load(&PolicySpec {
            trusted_root: None,
            ..spec.clone()
        })?;
        (policy.verifier, policy.require_sct) = verifier(root)?;
        Ok(policy)
    }

    /// Whether any signer is accepted at all.
    pub fn has_signers(&self) -> bool {
        !self.signers.is_empty()
    }

    /// The accepted signers, for messages: `key cosign.pub, identity … (issuer …)`.
    pub fn describe_signers(&self) -> String {
        self.signers
            .iter()
            .map(Signer::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Verify `bundle` over `artifact` (its bytes, or its sha256 digest) completely. Every
    /// signer of the bundle's kind (key or certificate) is tried; the first that verifies is
    /// described in the result, otherwise every signer's reason is.
    pub fn verify(&self, bundle: &Bundle, artifact: Artifact<'_>) -> Result<String, String> {
        let keyless = bundle.signing_certificate().is_some();
        let candidates: Vec<&Signer> = self
            .signers
            .iter()
            .filter(|s| matches!(s, Signer::Keyless { .. }) == keyless)
            .collect();
        if candidates.is_empty() {
            let what = if keyless {
                "signed with a certificate (keyless), but the policy accepts no identities"
            } else {
                "signed with a key, but the policy accepts no keys"
            };
            return Err(format!("{what} (it accepts {})", self.describe_signers()));
        }
        let mut reasons = Vec::new();
        for signer in candidates {
            match self.verify_as(signer, bundle, artifact.clone()) {
                Ok(who) => return Ok(who),
                Err(reason) => reasons.push(format!("{}: {reason}", signer.describe())),
            }
        }
        Err(reasons.join("; "))
    }

    fn verify_as(
        &self,
        signer: &Signer,
        bundle: &Bundle,
        artifact: Artifact<'_>,
    ) -> Result<String, String> {
        match signer {
            Signer::Key { key, .. } => {
                let policy = PublicKeyVerificationPolicy::new(key.clone());
                self.verifier
                    .verify(artifact, bundle, &policy)
                    .map_err(|e| e.to_string())?;
                Ok(signer.describe())
            }
            Signer::Keyless { identity, issuer } => {
                let mut policy = match identity {
                    Identity::Exact(id) => VerificationPolicy::new(id.as_str(), issuer.as_str()),
                    Identity::Pattern(_) => {
                        VerificationPolicy::any_identity().require_issuer(issuer.as_str())
                    }
                };
                if !self.require_sct {
                    policy = policy.skip_sct();
                }
                let result = self
                    .verifier
                    .verify(artifact, bundle, &policy)
                    .map_err(|e| e.to_string())?;
                let actual = result.identity().map(|s| s.as_str().to_string());
                if let Identity::Pattern(re) = identity
                    && !actual.as_deref().is_some_and(|a| re.is_match(a))
                {
                    return Err(format!(
                        "identity mismatch: expected a match of {re}, got {}",
                        actual.as_deref().unwrap_or("no identity")
                    ));
                }
                Ok(format!(
                    "identity {} (issuer {issuer})",
                    actual.unwrap_or_default()
                ))
            }
        }
    }
}

/// The verifier for a root, and whether that root can vouch for SCTs (lists a CT log).
fn verifier(root: &RootSource) -> Result<(Verifier, bool), String> {
    let (json, name) = match root {
        RootSource::Production => (
            SIGSTORE_PRODUCTION_TRUSTED_ROOT.to_string(),
            "the embedded Sigstore production root".to_string(),
        ),
        RootSource::Staging => (
            SIGSTORE_STAGING_TRUSTED_ROOT.to_string(),
            "the embedded Sigstore staging root".to_string(),
        ),
        RootSource::File(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read trusted root {}: {e}", path.display()))?,
            format!("trusted root {}", path.display()),
        ),
    };
    let root = TrustedRoot::from_json(&json).map_err(|e| format!("{name}: {e}"))?;
    let verifier = Verifier::new(&root).map_err(|e| format!("{name}: {e}"))?;
    Ok((verifier, !root.ctlogs.is_empty()))
}

fn load_signer(spec: &SignerSpec) -> Result<Signer, String> {
    match (
        &spec.key,
        &spec.identity,
        &spec.identity_regexp,
        &spec.issuer,
    ) {
        (Some(path), None, None, None) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
            let key =
                DerPublicKey::from_pem(&pem).map_err(|e| format!("key {}: {e}", path.display()))?;
            Ok(Signer::Key {
                file: path.display().to_string(),
                key,
            })
        }
        (None, Some(id), None, Some(issuer)) => Ok(Signer::Keyless {
            identity: Identity::Exact(id.clone()),
            issuer: issuer.clone(),
        }),
        (None, None, Some(pattern), Some(issuer)) => {
            let re = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("identity_regexp {pattern:?}: {e}"))?;
            Ok(Signer::Keyless {
                identity: Identity::Pattern(re),
                issuer: issuer.clone(),
            })
        }
        _ => Err(
            "a signer is either `key = \"FILE\"`, or `issuer` with one of `identity` or \
             `identity_regexp`"
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_shapes_are_checked() {
        let bad = [
            SignerSpec::default(),
            SignerSpec {
                identity: Some("a".into()),
                ..Default::default()
            },
            SignerSpec {
                key: Some("k.pub".into()),
                issuer: Some("i".into()),
                ..Default::default()
            },
            SignerSpec {
                identity: Some("a".into()),
                identity_regexp: Some("a".into()),
                issuer: Some("i".into()),
                ..Default::default()
            },
        ];
        for spec in bad {
            assert!(load_signer(&spec).is_err(), "{spec:?}");
        }
        let pattern = SignerSpec {
            identity_regexp: Some("https://github.com/acme/.*".into()),
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            ..Default::default()
        };
        match load_signer(&pattern).unwrap() {
            Signer::Keyless {
                identity: Identity::Pattern(re),
                ..
            } => {
                assert!(re.is_match("https://github.com/acme/x"));
                assert!(!re.is_match("evil https://github.com/acme/x"));
            }
            _ => panic!("expected a pattern"),
        }
    }

    #[test]
    fn requiring_signatures_without_signers_is_a_usage_error() {
        let spec = PolicySpec {
            require: true,
            ..Default::default()
        };
        let e = TrustPolicy::load(&spec).err().expect("refused");
        assert!(e.contains("no signer is accepted"), "{e}");
        assert!(
            e.contains("--key") && e.contains("[[signatures.signer]]"),
            "{e}"
        );
        // Signers without `require` (check what is there) and both together are policies.
        let key = tempfile::NamedTempFile::new().unwrap();
        let pem = sigstore_verify::crypto::KeyPair::generate_ecdsa_p256()
            .unwrap()
            .public_key_der()
            .unwrap()
            .to_pem();
        std::fs::write(key.path(), pem).unwrap();
        let signer = SignerSpec {
            key: Some(key.path().to_path_buf()),
            ..Default::default()
        };
        for require in [false, true] {
            let spec = PolicySpec {
                require,
                signers: vec![signer.clone()],
                ..Default::default()
            };
            let policy = TrustPolicy::load(&spec).unwrap_or_else(|e| panic!("{e}"));
            assert!(policy.describe_signers().starts_with("key "));
        }
    }

    #[test]
    fn embedded_root_is_the_shared_production_root() {
        let ours: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/sigstore/trusted_root.json"))
                .unwrap();
        let embedded: serde_json::Value =
            serde_json::from_str(SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
        assert_eq!(ours, embedded);
        assert!(verifier(&RootSource::Production).is_ok());
    }
}
