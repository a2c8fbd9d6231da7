//! The signature trust policy: which signers are accepted, and the root of trust they chain to.
//!
//! A signer is either a public key (cosign key pairs, KMS keys: ECDSA P-256/P-384, Ed25519,
//! RSA) or a keyless identity: the certificate's subject (exact, or an anchored regular
//! expression) together with the OIDC issuer that vouched for it, as Fulcio records them. All
//! cryptography — certificate chains, signed timestamps, transparency-log inclusion proofs and
//! checkpoints, DSSE envelopes and in-toto subjects — is Sigstore's own `sigstore-verify`;
//! this module only decides which of its policies apply and says which signer matched. The
//! root of trust is a file, or Sigstore's public-good root kept current through TUF
//! ([`super::tuf`]).

use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use sigstore_verify::crypto::FulcioCiClaims;
use sigstore_verify::trust_root::{
    SIGSTORE_PRODUCTION_TRUSTED_ROOT, SIGSTORE_STAGING_TRUSTED_ROOT, TrustedRoot,
};
use sigstore_verify::types::{Artifact, Bundle, DerPublicKey};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use super::tuf::{self, TufError};

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
    /// A Sigstore `trusted_root.json`; default: Sigstore's public-good root, through TUF.
    pub trusted_root: Option<PathBuf>,
    /// The TUF repository the trusted root is fetched from [default: Sigstore's public-good
    /// repository]; a mirror of it, or a private one with `tuf_root`.
    pub tuf_mirror: Option<String>,
    /// The initial `root.json` of `tuf_mirror` [default: Sigstore's, built in].
    pub tuf_root: Option<PathBuf>,
    /// Never fetch the trusted root: the TUF cache, else the built-in root.
    #[serde(default)]
    pub offline: bool,
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
        self.tuf_root = self.tuf_root.map(|p| base.join(p));
        for signer in &mut self.signers {
            signer.key = signer.key.take().map(|p| base.join(p));
        }
        self
    }

    /// Whether there is anything to check: signatures required, or signers to check them by.
    pub fn is_active(&self) -> bool {
        self.require || !self.signers.is_empty()
    }

    /// Where the trusted root comes from: the file, else TUF.
    pub fn root_source(&self) -> Result<RootSource, TrustError> {
        match &self.trusted_root {
            Some(_) if self.tuf_mirror.is_some() || self.tuf_root.is_some() => {
                Err(TrustError::RootAndTuf)
            }
            Some(path) => Ok(RootSource::File(path.clone())),
            None => Ok(RootSource::Tuf(self.tuf_source())),
        }
    }

    /// The TUF repository, initial root and offline flag of this policy.
    pub fn tuf_source(&self) -> tuf::Source {
        tuf::Source {
            mirror: self.tuf_mirror.clone(),
            root: self.tuf_root.clone(),
            offline: self.offline,
        }
    }
}

/// Which root of trust: the current one through TUF, the embedded production or staging
/// root, or a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// The current root of a TUF repository (Sigstore's public-good one by default).
    Tuf(tuf::Source),
    /// Sigstore's public-good production instance (embedded).
    Production,
    /// Sigstore's staging instance (embedded), for the conformance suite.
    Staging,
    /// A `trusted_root.json` file.
    File(PathBuf),
}

impl fmt::Display for RootSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootSource::Tuf(source) => write!(f, "the trusted root of TUF {}", source.mirror()),
            RootSource::Production => f.write_str("the embedded Sigstore production root"),
            RootSource::Staging => f.write_str("the embedded Sigstore staging root"),
            RootSource::File(path) => write!(f, "trusted root {}", path.display()),
        }
    }
}

/// Why a policy cannot be loaded: each a usage error (the policy as written cannot work).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Signatures are required, but no signer is accepted.
    #[error("{}", NO_SIGNERS)]
    NoSigners,
    /// A signer is neither a key nor an issuer with one identity.
    #[error(
        "a signer is either `key = \"FILE\"`, or `issuer` with one of `identity` or \
         `identity_regexp`"
    )]
    SignerShape,
    /// A key file cannot be read.
    #[error("cannot read key {}: {reason}", path.display())]
    KeyUnreadable {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// A key file is not a public key.
    #[error("key {}: {reason}", path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What `sigstore-verify` said.
        reason: String,
    },
    /// An identity pattern is not a regular expression.
    #[error("identity_regexp {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What the regex compiler said.
        reason: regex::Error,
    },
    /// A trusted root file cannot be read.
    #[error("cannot read trusted root {}: {reason}", path.display())]
    RootUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// A trusted root file and a TUF repository are both named.
    #[error(
        "`trusted_root` (--trusted-root) names the root itself: `tuf_mirror` and `tuf_root` \
         (--tuf-mirror, --tuf-root) cannot be given with it"
    )]
    RootAndTuf,
    /// No trusted root could be had through TUF.
    #[error("{0}")]
    Tuf(#[from] TufError),
    /// A trusted root is not one `sigstore-verify` can verify with.
    #[error("{root}: {reason}")]
    BadRoot {
        /// Which root.
        root: RootSource,
        /// What `sigstore-verify` said.
        reason: String,
    },
}

/// Why a bundle did not verify against the policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The policy accepts no signer of the bundle's kind (key, or certificate).
    #[error(
        "{} (it accepts {accepted})",
        if *keyless {
            "signed with a certificate (keyless), but the policy accepts no identities"
        } else {
            "signed with a key, but the policy accepts no keys"
        }
    )]
    NoSignerOfKind {
        /// The bundle is signed with a certificate.
        keyless: bool,
        /// The signers the policy accepts, described.
        accepted: String,
    },
    /// Every signer of its kind was tried; none verified it.
    #[error("{}", join(.0))]
    BySigners(Vec<SignerRefusal>),
}

/// One accepted signer's refusal of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{signer}: {reason}")]
pub struct SignerRefusal {
    /// The signer, described (`key cosign.pub`, `identity … (issuer …)`).
    pub signer: String,
    /// Why it refused.
    pub reason: Refusal,
}

/// Why one signer refused a bundle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `sigstore-verify` refused it (signature, certificate chain, timestamps, log proofs,
    /// identity or issuer).
    #[error("{0}")]
    Sigstore(String),
    /// The certificate's identity does not match the signer's pattern.
    #[error(
        "identity mismatch: expected a match of {pattern}, got {}",
        actual.as_deref().unwrap_or("no identity")
    )]
    IdentityMismatch {
        /// The anchored pattern.
        pattern: String,
        /// The certificate's identity, if it has one.
        actual: Option<String>,
    },
}

fn join(refusals: &[SignerRefusal]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
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

/// A bundle that verified: who signed it, and for a keyless signer what its certificate's
/// Fulcio extensions claim about the CI workload it was issued to (repository, ref, commit).
#[derive(Clone, Debug)]
pub struct Verified {
    /// The signer that matched, described (`key …`, `identity … (issuer …)`).
    pub who: String,
    /// The certificate's CI claims (none for a key).
    pub claims: Option<FulcioCiClaims>,
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
    pub fn load(spec: &PolicySpec) -> Result<TrustPolicy, TrustError> {
        TrustPolicy::load_with(spec, &spec.root_source()?)
    }

    /// Load with an explicit root source (the conformance CLI's `--staging`). The error is
    /// a [`TrustError`]'s text: the CLI takes it as a usage error's message as it is.
    pub fn with_root(spec: &PolicySpec, root: &RootSource) -> Result<TrustPolicy, String> {
        TrustPolicy::load_with(spec, root).map_err(|e| e.to_string())
    }

    fn load_with(spec: &PolicySpec, root: &RootSource) -> Result<TrustPolicy, TrustError> {
        if spec.require && spec.signers.is_empty() {
            return Err(TrustError::NoSigners);
        }
        let signers = spec
            .signers
            .iter()
            .map(load_signer)
            .collect::<Result<Vec<_>, _>>()?;
        let (verifier, require_sct) = verifier(root)?;
        Ok(TrustPolicy {
            require: spec.require,
            signers,
            verifier,
            require_sct,
        })
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
    pub fn verify(&self, bundle: &Bundle, artifact: Artifact<'_>) -> Result<String, Rejected> {
        self.verify_signer(bundle, artifact).map(|v| v.who)
    }

    /// [`TrustPolicy::verify`], also returning what the signer's certificate claims about the
    /// CI workload that signed (for provenance: the source it ran in).
    pub fn verify_signer(
        &self,
        bundle: &Bundle,
        artifact: Artifact<'_>,
    ) -> Result<Verified, Rejected> {
        let keyless = bundle.signing_certificate().is_some();
        let candidates: Vec<&Signer> = self
            .signers
            .iter()
            .filter(|s| matches!(s, Signer::Keyless { .. }) == keyless)
            .collect();
        if candidates.is_empty() {
            return Err(Rejected::NoSignerOfKind {
                keyless,
                accepted: self.describe_signers(),
            });
        }
        let mut refusals = Vec::new();
        for signer in candidates {
            match self.verify_as(signer, bundle, artifact.clone()) {
                Ok(who) => return Ok(who),
                Err(reason) => refusals.push(SignerRefusal {
                    signer: signer.describe(),
                    reason,
                }),
            }
        }
        Err(Rejected::BySigners(refusals))
    }

    fn verify_as(
        &self,
        signer: &Signer,
        bundle: &Bundle,
        artifact: Artifact<'_>,
    ) -> Result<Verified, Refusal> {
        match signer {
            Signer::Key { key, .. } => {
                let policy = PublicKeyVerificationPolicy::new(key.clone());
                self.verifier
                    .verify(artifact, bundle, &policy)
                    .map_err(|e| Refusal::Sigstore(e.to_string()))?;
                Ok(Verified {
                    who: signer.describe(),
                    claims: None,
                })
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
                    .map_err(|e| Refusal::Sigstore(e.to_string()))?;
                let actual = result.identity().map(|s| s.as_str().to_string());
                if let Identity::Pattern(re) = identity
                    && !actual.as_deref().is_some_and(|a| re.is_match(a))
                {
                    return Err(Refusal::IdentityMismatch {
                        pattern: re.to_string(),
                        actual,
                    });
                }
                Ok(Verified {
                    who: format!("identity {} (issuer {issuer})", actual.unwrap_or_default()),
                    claims: result.certificate().map(|c| c.ci_claims.clone()),
                })
            }
        }
    }
}

/// The verifier for a root, and whether that root can vouch for SCTs (lists a CT log).
fn verifier(root: &RootSource) -> Result<(Verifier, bool), TrustError> {
    let json = match root {
        RootSource::Tuf(source) => tuf::resolve(source)?.json,
        RootSource::Production => SIGSTORE_PRODUCTION_TRUSTED_ROOT.to_string(),
        RootSource::Staging => SIGSTORE_STAGING_TRUSTED_ROOT.to_string(),
        RootSource::File(path) => {
            std::fs::read_to_string(path).map_err(|reason| TrustError::RootUnreadable {
                path: path.clone(),
                reason,
            })?
        }
    };
    let bad = |e: &dyn fmt::Display| TrustError::BadRoot {
        root: root.clone(),
        reason: e.to_string(),
    };
    let trusted = TrustedRoot::from_json(&json).map_err(|e| bad(&e))?;
    let verifier = Verifier::new(&trusted).map_err(|e| bad(&e))?;
    Ok((verifier, !trusted.ctlogs.is_empty()))
}

fn load_signer(spec: &SignerSpec) -> Result<Signer, TrustError> {
    match (
        &spec.key,
        &spec.identity,
        &spec.identity_regexp,
        &spec.issuer,
    ) {
        (Some(path), None, None, None) => {
            let pem =
                std::fs::read_to_string(path).map_err(|reason| TrustError::KeyUnreadable {
                    path: path.clone(),
                    reason,
                })?;
            let key = DerPublicKey::from_pem(&pem).map_err(|e| TrustError::BadKey {
                path: path.clone(),
                reason: e.to_string(),
            })?;
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
            let re = Regex::new(&format!("^(?:{pattern})$")).map_err(|reason| {
                TrustError::BadPattern {
                    pattern: pattern.clone(),
                    reason,
                }
            })?;
            Ok(Signer::Keyless {
                identity: Identity::Pattern(re),
                issuer: issuer.clone(),
            })
        }
        _ => Err(TrustError::SignerShape),
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
            assert!(
                matches!(load_signer(&spec), Err(TrustError::SignerShape)),
                "{spec:?}"
            );
        }
        let unclosed = SignerSpec {
            identity_regexp: Some("(".into()),
            issuer: Some("i".into()),
            ..Default::default()
        };
        assert!(matches!(
            load_signer(&unclosed),
            Err(TrustError::BadPattern { pattern, .. }) if pattern == "("
        ));
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
        assert!(matches!(e, TrustError::NoSigners), "{e}");
        let e = e.to_string();
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
                trusted_root: Some("fixtures/sigstore/trusted_root.json".into()),
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
