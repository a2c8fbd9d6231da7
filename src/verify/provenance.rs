//! SLSA provenance: what an image's signed provenance attestations say about how it was built,
//! and the provenance gate that judges them against the policy (`[provenance]`, per
//! `[[image]]`, or flags).
//!
//! [`super::signature`] finds and verifies attestations wherever signatures are found (OCI
//! referrers, legacy `sha256-<hex>.att` images, sidecar bundles); an in-toto statement whose
//! predicate type is SLSA provenance v1 or v0.2 is read here into a [`Claim`] (both versions in
//! v1's terms: builder, build type, source repository, ref and revision, external parameters,
//! invocation). [`judge`] then holds every provenance of an image to the policy: the builder,
//! source, ref, build type and external parameters must each match an accepted pattern; a
//! keyless signer's certificate, when Fulcio recorded the source repository, ref and commit
//! its workflow ran on, must agree with the source the provenance claims; and with `require`
//! the image's digest (or, per platform, every platform manifest) must be a subject of a
//! verified provenance. A refusal names the field, what the provenance says and what the
//! policy wanted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sigstore_verify::crypto::FulcioCiClaims;

use super::sbom::bind;
use super::{ImageSpec, VerifiedImage};
use crate::digest::Digest;
use crate::error::Problem;

/// The predicate type of SLSA provenance v1.
pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// The predicate type of SLSA provenance v0.2.
pub const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";

/// Whether an in-toto predicate type is SLSA provenance this module reads.
pub fn is_provenance(predicate_type: &str) -> bool {
    predicate_type == SLSA_V1 || predicate_type == SLSA_V02
}

/// One pattern or several, as `regpress.toml` may give either.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct Patterns(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Patterns {
    fn from(v: OneOrMany) -> Patterns {
        match v {
            OneOrMany::One(s) => Patterns(vec![s]),
            OneOrMany::Many(v) => Patterns(v),
        }
    }
}

/// The provenance policy as written (`[provenance]`, `[image.provenance]`) or given as flags.
/// Every field is optional so that an image's table, and then the flags, can override the
/// global table field by field ([`ProvenanceSpec::over`]). Patterns are exact strings, or
/// anchored globs where `*` stands for any run of characters (`refs/tags/v*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceSpec {
    /// Every image must have a verified SLSA provenance naming its digest.
    pub require: Option<bool>,
    /// Every platform manifest must be named by a verified provenance (not only the index).
    pub per_platform: Option<bool>,
    /// Accepted builders (`runDetails.builder.id`, v0.2 `builder.id`).
    pub builder_id: Option<Patterns>,
    /// Accepted source repositories, e.g. `git+https://github.com/acme/images` (a leading
    /// `git+` is optional on either side).
    pub source_repository: Option<Patterns>,
    /// Accepted source refs, e.g. `refs/heads/main`, `refs/tags/v*`.
    pub source_ref: Option<Patterns>,
    /// Accepted build types (`buildDefinition.buildType`, v0.2 `buildType`).
    pub build_type: Option<Patterns>,
    /// Limits on external parameters (v1 `buildDefinition.externalParameters`, v0.2
    /// `invocation.parameters`): a dotted path (`workflow.path`) and its accepted values.
    pub external_parameters: Option<BTreeMap<String, Patterns>>,
}

impl ProvenanceSpec {
    /// These fields over `base`: every field given here wins.
    pub fn over(self, base: &ProvenanceSpec) -> ProvenanceSpec {
        ProvenanceSpec {
            require: self.require.or(base.require),
            per_platform: self.per_platform.or(base.per_platform),
            builder_id: self.builder_id.or_else(|| base.builder_id.clone()),
            source_repository: self
                .source_repository
                .or_else(|| base.source_repository.clone()),
            source_ref: self.source_ref.or_else(|| base.source_ref.clone()),
            build_type: self.build_type.or_else(|| base.build_type.clone()),
            external_parameters: self
                .external_parameters
                .or_else(|| base.external_parameters.clone()),
        }
    }

    /// Whether the gate has anything to check: provenance required, or a field constrained.
    pub fn is_active(&self) -> bool {
        self.require == Some(true)
            || self.builder_id.is_some()
            || self.source_repository.is_some()
            || self.source_ref.is_some()
            || self.build_type.is_some()
            || self.external_parameters.is_some()
    }
}

/// The gate needs verified signers: a provenance is only as good as who signed it.
#[derive(Debug, thiserror::Error)]
#[error(
    "image {image}: a provenance policy is set, but no signer is accepted, so no provenance \
     could be verified: name the signer of your build pipeline with `[[signatures.signer]]` (or \
     --key, or --certificate-identity with --certificate-oidc-issuer)"
)]
pub struct NeedsSigners {
    /// The first image with an active provenance policy.
    image: String,
}

/// Refuse a provenance policy without signers to verify provenance by (a usage error).
pub fn check_signers(specs: &[ImageSpec], has_signers: bool) -> Result<(), NeedsSigners> {
    match specs.iter().find(|s| s.provenance.is_active()) {
        Some(spec) if !has_signers => Err(NeedsSigners {
            image: if spec.repository.is_empty() {
                spec.layout.display().to_string()
            } else {
                spec.repository.clone()
            },
        }),
        _ => Ok(()),
    }
}

/// What a provenance statement says, in SLSA v1's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// `https://slsa.dev/provenance/v1` or `…/v0.2`.
    pub predicate_type: String,
    /// The statement's sha256 subjects (the report lists those of the image).
    #[serde(skip)]
    pub subjects: Vec<Digest>,
    /// The builder.
    pub builder_id: String,
    /// The build type.
    pub build_type: Option<String>,
    /// The source repository, as the provenance writes it (`git+https://…`).
    pub source_repository: Option<String>,
    /// The source ref (`refs/heads/main`).
    pub source_ref: Option<String>,
    /// The source revision (a git commit).
    pub revision: Option<String>,
    /// The build's invocation id (GitHub: the run's URL).
    pub invocation_id: Option<String>,
    /// The external parameters (v0.2: `invocation.parameters`).
    pub external_parameters: Value,
}

/// Why a provenance statement cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The predicate is not a JSON object.
    #[error("SLSA provenance ({predicate_type}): the predicate is not an object")]
    NotObject {
        /// The predicate type.
        predicate_type: String,
    },
    /// No builder id: no provenance at all.
    #[error("SLSA provenance ({predicate_type}): no {field}")]
    NoBuilder {
        /// The predicate type.
        predicate_type: String,
        /// Where the builder id should be.
        field: &'static str,
    },
}

/// Read an in-toto statement whose predicate type is SLSA provenance.
pub fn read(statement: &Value) -> Result<Claim, ClaimError> {
    let predicate_type = statement["predicateType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let p = &statement["predicate"];
    if !p.is_object() {
        return Err(ClaimError::NotObject { predicate_type });
    }
    let text = |v: &Value| v.as_str().map(str::to_string);
    let subjects = statement["subject"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["digest"]["sha256"].as_str())
                .filter_map(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
                .collect()
        })
        .unwrap_or_default();
    let v1 = predicate_type == SLSA_V1;
    let (builder, builder_field) = if v1 {
        (&p["runDetails"]["builder"]["id"], "runDetails.builder.id")
    } else {
        (&p["builder"]["id"], "builder.id")
    };
    let builder_id = text(builder).ok_or_else(|| ClaimError::NoBuilder {
        predicate_type: predicate_type.clone(),
        field: builder_field,
    })?;
    let claim = |build_type, source: Option<&Value>, invocation_id, external_parameters| {
        let (source_repository, source_ref) = source
            .and_then(|s| s["uri"].as_str())
            .map(split_ref)
            .unwrap_or_default();
        let revision = source.and_then(|s| {
            let d = &s["digest"];
            text(&d["gitCommit"]).or_else(|| text(&d["sha1"]))
        });
        Claim {
            predicate_type: predicate_type.clone(),
            subjects,
            builder_id,
            build_type,
            source_repository,
            source_ref,
            revision,
            invocation_id,
            external_parameters,
        }
    };
    if v1 {
        let definition = &p["buildDefinition"];
        let external = definition["externalParameters"].clone();
        // The source is the first resolved dependency that is a git repository (the GitHub
        // Actions build types list the workflow's repository first).
        let source = definition["resolvedDependencies"]
            .as_array()
            .and_then(|deps| {
                deps.iter()
                    .find(|d| d["uri"].as_str().is_some_and(|u| u.starts_with("git+")))
            });
        let mut claim = claim(
            text(&definition["buildType"]),
            source,
            text(&p["runDetails"]["metadata"]["invocationId"]),
            external,
        );
        // Without one, GitHub's build type names it in `externalParameters.workflow`.
        if claim.source_repository.is_none() {
            let workflow = &claim.external_parameters["workflow"];
            claim.source_repository = text(&workflow["repository"]).map(|r| format!("git+{r}"));
            claim.source_ref = text(&workflow["ref"]);
        }
        Ok(claim)
    } else {
        let invocation = &p["invocation"];
        Ok(claim(
            text(&p["buildType"]),
            Some(&invocation["configSource"]).filter(|s| s.is_object()),
            text(&p["metadata"]["buildInvocationId"]),
            invocation["parameters"].clone(),
        ))
    }
}

/// `git+https://github.com/acme/images@refs/heads/main` → the repository and the ref. An `@`
/// that is part of the authority (`git+ssh://git@host/…`) is not a ref.
fn split_ref(uri: &str) -> (Option<String>, Option<String>) {
    match uri.rsplit_once('@') {
        Some((repo, r)) if !r.contains(':') && repo.contains("://") && !r.is_empty() => {
            let authority_at = repo.split_once("://").is_some_and(|(_, rest)| {
                !rest.contains('/') // `ssh://git@host/path` without a ref
            });
            if authority_at {
                (Some(uri.to_string()), None)
            } else {
                (Some(repo.to_string()), Some(r.to_string()))
            }
        }
        _ => (Some(uri.to_string()), None),
    }
}

/// A provenance found with an image: what it says, where it was attached and who signed it.
#[derive(Clone, Debug)]
pub struct Found {
    /// The attachment's manifest digest (a referrer, the referrer made of a sidecar, an
    /// `.att` image).
    pub attachment: Digest,
    /// The digest it was attached to.
    pub attached_to: Digest,
    /// What it says.
    pub claim: Claim,
    /// Who signed it, as the trust policy verified (None: no signers to check by).
    pub signer: Option<String>,
    /// The signer's certificate's CI claims (keyless).
    pub certificate: Option<FulcioCiClaims>,
}

/// A provenance of an image, as the report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedProvenance {
    /// The attestation's manifest digest.
    pub attachment: Digest,
    /// The image's digests it names (its index, platform manifests).
    pub subjects: Vec<Digest>,
    /// What it says.
    #[serde(flatten)]
    pub claim: Claim,
    /// Who signed it (None: not verified, no signers in the policy).
    pub signer: Option<String>,
    /// Whether a provenance policy judged it (it passed: refused ones are errors).
    pub policy: bool,
}

/// One accepted value: exact, or an anchored glob.
struct Pattern {
    /// As the policy writes it.
    text: String,
    re: Regex,
}

impl Pattern {
    /// `text` as written, matching as `normalized` says.
    fn new(text: &str, normalized: &str) -> Pattern {
        let body: Vec<String> = normalized.split('*').map(regex::escape).collect();
        let re = Regex::new(&format!("^{}$", body.join(".*")))
            .unwrap_or_else(|_| Regex::new("$^").expect("a regex that matches nothing"));
        Pattern {
            text: text.to_string(),
            re,
        }
    }
}

/// Accepted values of one field, and how values of it compare (patterns and values alike).
struct Accepted {
    patterns: Vec<Pattern>,
    normalize: fn(&str) -> &str,
}

impl Accepted {
    fn of(patterns: &Patterns, normalize: fn(&str) -> &str) -> Accepted {
        Accepted {
            patterns: patterns
                .0
                .iter()
                .map(|p| Pattern::new(p, normalize(p)))
                .collect(),
            normalize,
        }
    }

    fn matches(&self, value: &str) -> bool {
        let value = (self.normalize)(value);
        self.patterns.iter().any(|p| p.re.is_match(value))
    }
}

impl fmt::Display for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self
            .patterns
            .iter()
            .map(|p| format!("{:?}", p.text))
            .collect();
        match quoted.as_slice() {
            [] => f.write_str("nothing"),
            [one] => f.write_str(one),
            _ => write!(f, "one of {}", quoted.join(", ")),
        }
    }
}

fn same(s: &str) -> &str {
    s
}

/// A repository without its `git+` prefix, so either form matches.
fn repository(s: &str) -> &str {
    s.strip_prefix("git+").unwrap_or(s)
}

/// Why one provenance was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// A field the policy constrains does not match.
    #[error("{field}: the provenance says {}, the policy wants {wanted}", says.as_deref().map(|s| format!("{s:?}")).unwrap_or_else(|| "nothing".to_string()))]
    Field {
        /// The policy's name of the field.
        field: String,
        /// What the provenance says (None: nothing).
        says: Option<String>,
        /// The accepted values, described.
        wanted: String,
    },
    /// The provenance's source disagrees with its signer's certificate.
    #[error(
        "{field}: the provenance says {says:?}, but its signer's certificate says {certificate:?} \
         (Fulcio extension {oid}): the signing workflow did not run there"
    )]
    Certificate {
        /// The field.
        field: &'static str,
        /// What the provenance says.
        says: String,
        /// What the certificate says.
        certificate: String,
        /// The Fulcio OID it says it in.
        oid: &'static str,
    },
    /// Not verified by a signer.
    #[error("not verified: the trust policy has no signers")]
    Unverified,
}

/// A constrained field: its name in the policy, the values accepted, and where the claim has it.
type Field = (&'static str, Accepted, fn(&Claim) -> Option<&str>);

/// The compiled policy of one image.
struct Policy {
    require: bool,
    per_platform: bool,
    fields: Vec<Field>,
    external: Vec<(String, Accepted)>,
}

impl Policy {
    fn of(spec: &ProvenanceSpec) -> Policy {
        let mut fields: Vec<Field> = Vec::new();
        if let Some(p) = &spec.builder_id {
            fields.push(("builder_id", Accepted::of(p, same), |c| {
                Some(c.builder_id.as_str())
            }));
        }
        if let Some(p) = &spec.source_repository {
            fields.push(("source_repository", Accepted::of(p, repository), |c| {
                c.source_repository.as_deref()
            }));
        }
        if let Some(p) = &spec.source_ref {
            fields.push(("source_ref", Accepted::of(p, same), |c| {
                c.source_ref.as_deref()
            }));
        }
        if let Some(p) = &spec.build_type {
            fields.push(("build_type", Accepted::of(p, same), |c| {
                c.build_type.as_deref()
            }));
        }
        let external = spec
            .external_parameters
            .iter()
            .flatten()
            .map(|(path, p)| (path.clone(), Accepted::of(p, same)))
            .collect();
        Policy {
            require: spec.require == Some(true),
            per_platform: spec.per_platform == Some(true),
            fields,
            external,
        }
    }

    /// Every way `found` does not satisfy the policy.
    fn mismatches(&self, found: &Found) -> Vec<Mismatch> {
        let claim = &found.claim;
        if found.signer.is_none() {
            return vec![Mismatch::Unverified];
        }
        let mut out = Vec::new();
        for (field, accepted, get) in &self.fields {
            let says = get(claim);
            if !says.is_some_and(|s| accepted.matches(s)) {
                out.push(Mismatch::Field {
                    field: field.to_string(),
                    says: says.map(str::to_string),
                    wanted: accepted.to_string(),
                });
            }
        }
        for (path, accepted) in &self.external {
            let value = path
                .split('.')
                .try_fold(&claim.external_parameters, |v, key| v.get(key));
            let says = value.map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            if !says.as_deref().is_some_and(|s| accepted.matches(s)) {
                out.push(Mismatch::Field {
                    field: format!("external_parameters.{path}"),
                    says,
                    wanted: accepted.to_string(),
                });
            }
        }
        out.extend(certificate_mismatches(found));
        out
    }
}

/// Where a GitHub keyless certificate says its workflow ran, against the provenance's source.
fn certificate_mismatches(found: &Found) -> Vec<Mismatch> {
    let Some(cert) = &found.certificate else {
        return Vec::new();
    };
    let claim = &found.claim;
    let old = &cert.deprecated_github;
    let repo = cert
        .source_repository_uri
        .clone()
        .map(|r| (r, "1.3.6.1.4.1.57264.1.12"))
        .or_else(|| {
            old.workflow_repository
                .as_ref()
                .map(|r| (format!("https://github.com/{r}"), "1.3.6.1.4.1.57264.1.5"))
        });
    let reference = (cert.source_repository_ref.as_ref())
        .map(|r| (r, "1.3.6.1.4.1.57264.1.14"))
        .or_else(|| {
            old.workflow_ref
                .as_ref()
                .map(|r| (r, "1.3.6.1.4.1.57264.1.6"))
        });
    let commit = (cert.source_repository_digest.as_ref())
        .map(|r| (r, "1.3.6.1.4.1.57264.1.13"))
        .or_else(|| {
            old.workflow_sha
                .as_ref()
                .map(|r| (r, "1.3.6.1.4.1.57264.1.3"))
        });
    let mut out = Vec::new();
    let mut compare = |field,
                       says: Option<&String>,
                       cert: Option<(&str, &'static str)>,
                       norm: fn(&str) -> &str| {
        if let (Some(says), Some((certificate, oid))) = (says, cert)
            && norm(says) != norm(certificate)
        {
            out.push(Mismatch::Certificate {
                field,
                says: says.clone(),
                certificate: certificate.to_string(),
                oid,
            });
        }
    };
    compare(
        "source_repository",
        claim.source_repository.as_ref(),
        repo.as_ref().map(|(r, o)| (r.as_str(), *o)),
        repository,
    );
    compare(
        "source_ref",
        claim.source_ref.as_ref(),
        reference.map(|(r, o)| (r.as_str(), o)),
        same,
    );
    compare(
        "revision",
        claim.revision.as_ref(),
        commit.map(|(r, o)| (r.as_str(), o)),
        same,
    );
    out
}

/// Hold every provenance `found` with `image` to `spec`: each must satisfy it, and with
/// `require` the image (or every platform manifest) must be named by one. Returns the
/// provenances for the report, or the problems.
pub fn judge(
    image: &VerifiedImage,
    spec: &ProvenanceSpec,
    found: Vec<Found>,
) -> Result<Vec<VerifiedProvenance>, Vec<Problem>> {
    let active = spec.is_active();
    let policy = Policy::of(spec);
    let subjects = bind::subjects(image);
    let ours: BTreeSet<&Digest> = subjects.iter().map(|s| &s.digest).collect();
    let mut problems = Vec::new();
    let mut covered: BTreeSet<Digest> = BTreeSet::new();
    let mut out = Vec::new();
    for f in found {
        if active {
            let refused = policy.mismatches(&f);
            if !refused.is_empty() {
                let who = f
                    .signer
                    .as_deref()
                    .map(|w| format!(" (signed by {w})"))
                    .unwrap_or_default();
                let reasons: Vec<String> = refused.iter().map(ToString::to_string).collect();
                problems.push(Problem::at(
                    &f.attachment,
                    format!(
                        "provenance of {}: {}{who}",
                        f.attached_to,
                        reasons.join("; ")
                    ),
                ));
                continue;
            }
        }
        let names: Vec<Digest> = f
            .claim
            .subjects
            .iter()
            .filter(|d| ours.contains(d))
            .cloned()
            .collect();
        if f.signer.is_some() {
            covered.extend(names.iter().cloned());
        }
        out.push(VerifiedProvenance {
            attachment: f.attachment,
            subjects: names,
            claim: f.claim,
            signer: f.signer,
            policy: active,
        });
    }
    if policy.require && problems.is_empty() {
        let is_manifest_only = subjects.len() == 1;
        let needed: Vec<&bind::Subject> = if policy.per_platform && !is_manifest_only {
            subjects.iter().filter(|s| s.platform.is_some()).collect()
        } else {
            subjects.iter().take(1).collect()
        };
        for s in needed.into_iter().filter(|s| !covered.contains(&s.digest)) {
            problems.push(Problem::at(
                &s.digest,
                format!(
                    "no provenance: provenance is required{}, and no verified SLSA provenance \
                     ({SLSA_V1} or {SLSA_V02}) names {} (looked for in-toto attestations in OCI \
                     referrers, sha256-<hex>.att images and sidecar bundles)",
                    if policy.per_platform {
                        " for every platform"
                    } else {
                        ""
                    },
                    s.describe()
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn v1() -> Value {
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "x", "digest": {"sha256": HEX}}],
            "predicateType": SLSA_V1,
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                    "externalParameters": {"workflow": {
                        "ref": "refs/heads/main",
                        "repository": "https://github.com/acme/images",
                        "path": ".github/workflows/release.yml"}},
                    "resolvedDependencies": [{
                        "uri": "git+https://github.com/acme/images@refs/heads/main",
                        "digest": {"gitCommit": "abc123"}}]
                },
                "runDetails": {
                    "builder": {"id": "https://github.com/acme/images/.github/workflows/release.yml@refs/heads/main"},
                    "metadata": {"invocationId": "https://github.com/acme/images/actions/runs/1/attempts/1"}
                }
            }
        })
    }

    #[test]
    fn reads_v1_and_v02_in_the_same_terms() {
        let c = read(&v1()).unwrap();
        assert_eq!(
            c.source_repository.as_deref(),
            Some("git+https://github.com/acme/images")
        );
        assert_eq!(c.source_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(c.revision.as_deref(), Some("abc123"));
        assert_eq!(
            c.subjects,
            [Digest::parse(&format!("sha256:{HEX}")).unwrap()]
        );
        let v02 = json!({
            "subject": [{"digest": {"sha256": HEX}}],
            "predicateType": SLSA_V02,
            "predicate": {
                "builder": {"id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v1.9.0"},
                "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
                "invocation": {"configSource": {
                    "uri": "git+https://github.com/acme/images@refs/tags/v1.2.0",
                    "digest": {"sha1": "def456"},
                    "entryPoint": ".github/workflows/release.yml"}},
                "metadata": {"buildInvocationId": "7-1"}
            }
        });
        let c = read(&v02).unwrap();
        assert_eq!(c.source_ref.as_deref(), Some("refs/tags/v1.2.0"));
        assert_eq!(c.revision.as_deref(), Some("def456"));
        assert_eq!(c.invocation_id.as_deref(), Some("7-1"));
        let mut none = v1();
        none["predicate"]["runDetails"] = json!({});
        assert!(matches!(
            read(&none),
            Err(ClaimError::NoBuilder {
                field: "runDetails.builder.id",
                ..
            })
        ));
    }

    #[test]
    fn refs_split_only_outside_the_authority() {
        assert_eq!(
            split_ref("git+ssh://git@github.com/acme/x"),
            (Some("git+ssh://git@github.com/acme/x".into()), None)
        );
        assert_eq!(
            split_ref("git+https://h/a@refs/tags/v1"),
            (Some("git+https://h/a".into()), Some("refs/tags/v1".into()))
        );
    }

    fn found(claim: Claim, certificate: Option<FulcioCiClaims>) -> Found {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        Found {
            attachment: d.clone(),
            attached_to: d,
            claim,
            signer: Some("key k".into()),
            certificate,
        }
    }

    #[test]
    fn fields_patterns_and_the_certificate_are_checked() {
        let spec: ProvenanceSpec = toml::from_str(
            r#"
            builder_id = "https://github.com/acme/images/.github/workflows/release.yml@refs/*"
            source_repository = "https://github.com/acme/images"
            source_ref = ["refs/heads/main", "refs/tags/v*"]
            external_parameters = { "workflow.path" = ".github/workflows/release.yml" }
            "#,
        )
        .unwrap();
        let policy = Policy::of(&spec);
        let claim = read(&v1()).unwrap();
        assert_eq!(policy.mismatches(&found(claim.clone(), None)), []);
        let mut other = claim.clone();
        other.source_ref = Some("refs/heads/dev".into());
        other.external_parameters = json!({"workflow": {"path": "x.yml"}});
        let refused = policy.mismatches(&found(other, None));
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert_eq!(
            refused[0].to_string(),
            "source_ref: the provenance says \"refs/heads/dev\", the policy wants one of \
             \"refs/heads/main\", \"refs/tags/v*\""
        );
        assert!(
            refused[1]
                .to_string()
                .starts_with("external_parameters.workflow.path")
        );
        let mut cert = FulcioCiClaims::default();
        cert.source_repository_uri = Some("https://github.com/evil/images".into());
        cert.source_repository_ref = Some("refs/heads/main".into());
        let refused = policy.mismatches(&found(claim, Some(cert)));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(matches!(
            &refused[0],
            Mismatch::Certificate {
                field: "source_repository",
                oid: "1.3.6.1.4.1.57264.1.12",
                ..
            }
        ));
    }

    #[test]
    fn an_image_table_overrides_field_by_field() {
        let global = ProvenanceSpec {
            require: Some(true),
            source_ref: Some(Patterns(vec!["refs/heads/main".into()])),
            ..Default::default()
        };
        let image = ProvenanceSpec {
            source_ref: Some(Patterns(vec!["refs/tags/v*".into()])),
            ..Default::default()
        };
        let merged = image.over(&global);
        assert_eq!(merged.require, Some(true));
        assert_eq!(merged.source_ref.unwrap().0, ["refs/tags/v*"]);
        assert!(!ProvenanceSpec::default().is_active());
    }
}
