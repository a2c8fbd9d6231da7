//! Sigstore signatures of images: find them in a layout, verify them against the trust policy,
//! and turn what verified into attachments the site publishes next to the image.
//!
//! Three places hold signatures, all keyed by the digest they sign (the image index, or a
//! platform manifest):
//! - OCI 1.1 referrers: manifests whose `subject` is the image and whose artifactType is a
//!   Sigstore bundle (cosign v3's default). apko-style layouts cannot list them in
//!   `index.json` (that file *is* the image), so every small blob of the layout is scanned;
//! - legacy cosign `sha256-<hex>.sig` images: simple-signing payloads whose
//!   `docker-manifest-digest` is the image, with the signature, certificate and Rekor bundle in
//!   layer annotations; they are rebuilt as Sigstore v0.1 bundles and verified the same way;
//! - legacy cosign `sha256-<hex>.att` images (`cosign attest` before v3): DSSE envelope layers
//!   whose in-toto statement names the image, the certificate and Rekor bundle in annotations;
//!   rebuilt as v0.1 DSSE bundles likewise;
//! - sidecar bundle files named in the config (`cosign sign-blob --bundle` over `index.json`).
//!
//! Verification itself is [`super::trust::TrustPolicy`], i.e. `sigstore-verify`, given what
//! each signature is over: a message signature (legacy payloads, `sign-blob` bundles) the exact
//! bytes signed, a DSSE envelope the digest its in-toto subject must name.
//!
//! SBOMs found here — SBOM attestations (SPDX or CycloneDX predicates) and SBOM artifacts
//! already attached in the layout — are validated, must describe their subject, and come back
//! as [`VerifiedSbom`]s judged under the run's NTIA mode, so they count toward the SBOM policy
//! like SBOM files do; they are published as the attachments they came as.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_spec::image::{Descriptor, ImageManifest};
use serde_json::json;
use sigstore_verify::types::{Artifact, Bundle, Sha256Hash, SignatureContent};

use super::policy::NtiaMode;
use super::provenance::{self, Claim, ClaimError};
use super::sbom::{Format, Origin, SbomError, SbomSummary, VerifiedSbom};
use super::trust::{Rejected, TrustPolicy, Verified};
use super::{Attachment, AttachmentKind, Blob, Document, referrer, sbom};
use crate::digest::Digest;
use crate::error::Problem;
use crate::layout::{Layout, MAX_DOCUMENT_SIZE, media};

/// Largest bundle we read (real ones are a few KiB).
const MAX_BUNDLE_SIZE: u64 = 1 << 20;
/// artifactType (and layer media type) of cosign v3 signatures: a Sigstore bundle v0.3.
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Every Sigstore bundle media type starts so.
const BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// Layer media type of legacy cosign signatures.
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer media type of legacy cosign attestations (`.att`): a DSSE envelope.
const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The in-toto predicate of cosign v3 image signatures (anything else is an attestation).
const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const ANN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
const ANN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
const ANN_CHAIN: &str = "dev.sigstore.cosign/chain";
const ANN_BUNDLE: &str = "dev.sigstore.cosign/bundle";

/// Why a Sigstore bundle cannot be had. A bundle file's messages name the file; a bundle
/// blob's or sidecar's do not (the refusal around them names it).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file cannot be read.
    #[error("cannot read bundle {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: io::Error,
    },
    /// The file is larger than a bundle may be (not read).
    #[error(
        "bundle {} is {size} bytes, more than the {} a bundle may be",
        path.display(),
        MAX_BUNDLE_SIZE
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not text.
    #[error("bundle {} is not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a bundle.
    #[error("bundle {}: not a valid Sigstore bundle: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What `sigstore-verify` said.
        reason: String,
    },
    /// A bundle's bytes are not text.
    #[error("bundle is not UTF-8")]
    NotUtf8,
    /// A bundle's text is not a bundle.
    #[error("not a valid Sigstore bundle: {reason}")]
    Invalid {
        /// What `sigstore-verify` said.
        reason: String,
    },
}

/// Read and parse a Sigstore bundle file. The error is a [`BundleError`]'s text: the CLI
/// takes it as a usage error's message as it is.
pub fn read_bundle(path: &Path) -> Result<Bundle, String> {
    let read = || {
        let bytes = read_bundle_bytes(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| BundleError::NotText {
            path: path.to_path_buf(),
        })?;
        Bundle::from_json(text).map_err(|e| BundleError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    read().map_err(|e| e.to_string())
}

fn read_bundle_bytes(path: &Path) -> Result<Vec<u8>, BundleError> {
    let unreadable = |reason| BundleError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_BUNDLE_SIZE {
        return Err(BundleError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    std::fs::read(path).map_err(unreadable)
}

/// Parse a Sigstore bundle from JSON text ([`BundleError::Invalid`] when it is not one).
pub fn parse_bundle(text: &str) -> Result<Bundle, BundleError> {
    Bundle::from_json(text).map_err(|e| BundleError::Invalid {
        reason: e.to_string(),
    })
}

/// Why an attachment was refused, before [`check`] says of what.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// Its manifest's bytes do not hash to the digest that names it.
    #[error("digest mismatch: its manifest {named} hashes to {actual}")]
    Corrupt {
        /// The digest naming the manifest.
        named: Digest,
        /// What its bytes hash to.
        actual: Digest,
    },
    /// A bundle artifact without a bundle.
    #[error("a Sigstore bundle artifact with no bundle layer")]
    NoBundleLayer,
    /// The subject's digest as `sigstore-verify` takes it (cannot fail for a valid digest).
    #[error("{reason}")]
    Artifact {
        /// What `sigstore-verify` said.
        reason: String,
    },
    /// A bundle that cannot be had.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A blob the attachment needs.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The policy's signers refused the signature.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// The bundle's content (an in-toto statement), read without a verified signature.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// The bundle's content, refused after its signature verified.
    #[error("{reason} (signed by {who})")]
    SignedBy {
        /// What is wrong with the content.
        reason: Box<StatementError>,
        /// The signer that verified.
        who: String,
    },
    /// An SBOM artifact in the layout.
    #[error(transparent)]
    SbomArtifact(#[from] SbomArtifactError),
    /// An attested SBOM judged under the NTIA policy.
    #[error(transparent)]
    Sbom(#[from] SbomError),
    /// A legacy cosign signature image.
    #[error(transparent)]
    Legacy(#[from] LegacyError),
    /// One payload of a legacy cosign signature image.
    #[error("payload {digest}: {reason}")]
    Payload {
        /// The payload layer's digest.
        digest: String,
        /// Why it was refused.
        reason: Box<Refusal>,
    },
}

/// Why a blob an attachment needs cannot be used.
#[derive(Debug, thiserror::Error)]
enum BlobError {
    /// Its descriptor's digest is not a digest.
    #[error("{reason}")]
    BadDigest {
        /// Why the digest was refused.
        reason: String,
    },
    /// Larger than a bundle or payload may be (not read).
    #[error("{digest} is {size} bytes, too large")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its descriptor's size.
        size: u64,
    },
    /// The layout does not hold it as its descriptor says.
    #[error("blob {digest}: {}", problem.reason)]
    Unreadable {
        /// The blob.
        digest: Digest,
        /// What the layout found.
        problem: Problem,
    },
    /// Not a file of the layout.
    #[error("{}", .0.reason)]
    Absent(Problem),
    /// Its size cannot be had.
    #[error("cannot stat blob {digest}: {reason}")]
    Stat {
        /// The blob.
        digest: Digest,
        /// Why.
        reason: io::Error,
    },
    /// Not the size its descriptor says.
    #[error("blob {digest}: descriptor says {expected} bytes, blob has {size}")]
    Size {
        /// The blob.
        digest: Digest,
        /// Its descriptor's size.
        expected: u64,
        /// Its size on disk.
        size: u64,
    },
}

/// Why an in-toto statement (a DSSE bundle's payload) is refused.
#[derive(Debug, thiserror::Error)]
enum StatementError {
    /// The payload is not a statement.
    #[error("DSSE payload is not an in-toto statement: {reason}")]
    NotStatement {
        /// What the JSON parser said.
        reason: String,
    },
    /// No predicate type.
    #[error("in-toto statement has no predicateType")]
    NoPredicateType,
    /// The statement is about something else.
    #[error("artifact mismatch: the in-toto statement's subject is not {subject}")]
    OtherSubject {
        /// The subject it had to name.
        subject: Digest,
    },
    /// The predicate cannot be serialised (cannot happen for parsed JSON).
    #[error("{reason}")]
    Predicate {
        /// What the JSON writer said.
        reason: String,
    },
    /// An SBOM predicate that is not a valid SBOM of the attachment's subject.
    #[error(transparent)]
    Sbom(#[from] SbomError),
    /// A provenance about another digest than the one it is attached to.
    #[error(
        "subject: the provenance names {}, the policy wants {subject} (the published digest it \
         is attached to)",
        if names.is_empty() { "no sha256 digest".to_string() } else { names.join(", ") }
    )]
    ProvenanceSubject {
        /// The sha256 digests its statement names.
        names: Vec<String>,
        /// The digest it had to name.
        subject: Digest,
    },
    /// A provenance predicate that cannot be read.
    #[error(transparent)]
    Provenance(#[from] ClaimError),
    /// An SBOM predicate of another format than its predicate type says.
    #[error(
        "SBOM attestation: predicate type {predicate} is {}, but the predicate is a {} \
         document",
        declared.name(),
        found.name()
    )]
    WrongFormat {
        /// The predicate type.
        predicate: String,
        /// The format it names.
        declared: Format,
        /// The format of the predicate.
        found: Format,
    },
}

/// Why an SBOM artifact found in the layout is refused.
#[derive(Debug, thiserror::Error)]
enum SbomArtifactError {
    /// No layer of its artifactType.
    #[error("a {media_type} artifact with no {media_type} layer")]
    NoLayer {
        /// Its artifactType.
        media_type: String,
    },
    /// Its layer is larger than an SBOM may be (not read).
    #[error("SBOM {digest} is {size} bytes, too large")]
    TooLarge {
        /// The layer.
        digest: Digest,
        /// Its descriptor's size.
        size: u64,
    },
    /// Its layer cannot be read.
    #[error("cannot read SBOM {digest}: {reason}")]
    Unreadable {
        /// The layer.
        digest: Digest,
        /// Why.
        reason: io::Error,
    },
    /// Its layer's bytes are not what its descriptor says.
    #[error("SBOM {digest}: digest mismatch or size mismatch with its descriptor")]
    Changed {
        /// The layer.
        digest: Digest,
    },
    /// The document is of another format than its artifactType says.
    #[error(
        "SBOM {digest}: artifactType {media_type}, but the document is {}",
        found.name()
    )]
    WrongFormat {
        /// The layer.
        digest: Digest,
        /// Its artifactType.
        media_type: String,
        /// The document's format.
        found: Format,
    },
    /// Its layer's blob.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The document.
    #[error(transparent)]
    Sbom(#[from] SbomError),
}

/// Why a legacy cosign signature image (a simple-signing payload with its signature,
/// certificate and Rekor entry in annotations) is refused before its signature is checked.
#[derive(Debug, thiserror::Error)]
enum LegacyError {
    /// The payload is not JSON.
    #[error("payload is not JSON: {reason}")]
    PayloadNotJson {
        /// What the JSON parser said.
        reason: String,
    },
    /// The payload signs another image.
    #[error("payload {digest} signs {}, not {subject}", named.as_deref().unwrap_or("nothing"))]
    SignsOther {
        /// The payload layer.
        digest: String,
        /// The digest it names, if any.
        named: Option<String>,
        /// The image it is attached to.
        subject: Digest,
    },
    /// No payload layer at all.
    #[error("a cosign signature image with no simple-signing payload")]
    NoPayload,
    /// An attestation layer that is not a DSSE envelope.
    #[error("attestation layer {digest} is not a DSSE envelope: {reason}")]
    Envelope {
        /// The layer.
        digest: String,
        /// What the JSON parser said.
        reason: String,
    },
    /// No signature annotation.
    #[error("no {} annotation", ANN_SIGNATURE)]
    NoSignature,
    /// The certificate annotation is not PEM.
    #[error("bad PEM certificate: {reason}")]
    Certificate {
        /// What the PEM parser said.
        reason: String,
    },
    /// The chain annotation is not PEM.
    #[error("bad PEM chain: {reason}")]
    Chain {
        /// What the PEM parser said.
        reason: String,
    },
    /// The Rekor bundle annotation is not JSON.
    #[error("{} is not JSON: {reason}", ANN_BUNDLE)]
    RekorNotJson {
        /// What the JSON parser said.
        reason: String,
    },
    /// The Rekor bundle lacks a field.
    #[error("Rekor bundle has no {field}")]
    RekorField {
        /// The field (`Payload.body`, `logID`, `logIndex`, `integratedTime`).
        field: &'static str,
    },
    /// The Rekor entry's body is not base64.
    #[error("Rekor body is not base64: {reason}")]
    RekorBase64 {
        /// What the decoder said.
        reason: String,
    },
    /// The Rekor entry's body is not JSON.
    #[error("Rekor body is not JSON: {reason}")]
    RekorBody {
        /// What the JSON parser said.
        reason: String,
    },
    /// The Rekor log id is not hex.
    #[error("Rekor logID is not hex: {reason}")]
    RekorLogId {
        /// What the decoder said.
        reason: String,
    },
    /// What the annotations make is not a bundle.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// What a signature is, once its bundle is read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// A signature of the image (cosign sign): counts toward "signed".
    Signature,
    /// An in-toto attestation about the image (scan results, VEX…).
    Attestation,
    /// An SLSA provenance attestation: what it says of the build.
    Provenance(Box<Claim>),
    /// An SBOM attestation (SPDX or CycloneDX predicate): its document, validated and
    /// describing the subject.
    Sbom(Box<AttestedSbom>),
}

/// The SBOM an attestation carries.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AttestedSbom {
    /// The predicate, as validated.
    bytes: Vec<u8>,
    summary: SbomSummary,
}

/// Why an attachment was refused. `untried` when it was refused before any signer of the
/// policy could judge it (an unreadable blob, a malformed bundle): the refusal then names the
/// signers that would have been tried. A signer's own refusal names the signer; a refusal that
/// has nothing to do with signers (an unsigned SBOM artifact, NTIA) names none.
struct Refused {
    reason: Refusal,
    untried: bool,
}

impl Refused {
    /// A refusal that needs no list of signers (a signer's, or one no signer could change).
    fn judged(reason: impl Into<Refusal>) -> Refused {
        Refused {
            reason: reason.into(),
            untried: false,
        }
    }
}

/// `?` on a reason: refused before any signer could judge.
macro_rules! untried_from {
    ($($from:ty),*) => {$(
        impl From<$from> for Refused {
            fn from(reason: $from) -> Refused {
                Refused {
                    reason: reason.into(),
                    untried: true,
                }
            }
        }
    )*};
}

untried_from!(Refusal, BundleError, BlobError, LegacyError);

/// A manifest of the layout that is about another manifest.
struct Candidate {
    document: Document,
    manifest: ImageManifest,
    subject: Digest,
    /// How it refers to its subject.
    form: Form,
    /// What its bytes hash to, when that is not the digest naming it: it cannot be trusted.
    corrupt: Option<Digest>,
}

/// How a candidate refers to its subject.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// An OCI 1.1 referrer (`subject`).
    Referrer,
    /// A legacy cosign `.sig` image (its simple-signing payload names the image).
    Signature,
    /// A legacy cosign `.att` image (its in-toto statement names the image).
    Attestation,
}

/// The manifests of one layout that refer to other manifests, found once per layout.
#[derive(Default)]
pub struct Scan {
    candidates: Vec<Candidate>,
}

impl Scan {
    /// Scan every small JSON blob of `layout` for referrer manifests and legacy `.sig` images.
    /// Blobs that are not such manifests are skipped; only their first byte is read when they
    /// are not JSON.
    pub fn of(layout: &Layout) -> Scan {
        let dir = layout.dir().join("blobs").join("sha256");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Scan::default();
        };
        let mut candidates = Vec::new();
        for entry in entries.flatten() {
            let Ok(digest) =
                Digest::parse(&format!("sha256:{}", entry.file_name().to_string_lossy()))
            else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file()
                || meta.len() > MAX_DOCUMENT_SIZE
                || !starts_with_brace(&entry.path())
            {
                continue;
            }
            let Ok(path) = layout.blob_path(&digest) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // A signature manifest changed after it was written is refused where it would
            // count, not dropped: it is classified by what it now says.
            let actual = Digest::of_bytes(&bytes);
            if let Some(mut candidate) = classify(layout, digest.clone(), bytes) {
                if actual != digest {
                    candidate.corrupt = Some(actual);
                }
                candidates.push(candidate);
            }
        }
        candidates.sort_by(|a, b| a.document.digest.cmp(&b.document.digest));
        Scan { candidates }
    }
}

fn starts_with_brace(path: &Path) -> bool {
    use std::io::Read;
    let mut first = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok()
        && first[0] == b'{'
}

fn classify(layout: &Layout, digest: Digest, bytes: Vec<u8>) -> Option<Candidate> {
    let manifest: ImageManifest = serde_json::from_slice(&bytes).ok()?;
    let media_type = manifest
        .media_type()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    if media_type != media::OCI_MANIFEST && media_type != media::DOCKER_MANIFEST {
        return None;
    }
    let document = Document {
        digest,
        media_type,
        bytes: Arc::from(bytes),
        level: 0,
    };
    if let Some(subject) = manifest.subject() {
        let subject = Digest::parse(subject.digest().as_ref()).ok()?;
        return Some(Candidate {
            document,
            manifest,
            subject,
            form: Form::Referrer,
            corrupt: None,
        });
    }
    let layer = |media_type: &str| {
        manifest
            .layers()
            .iter()
            .find(|l| l.media_type().to_string() == media_type)
    };
    let (subject, form) = match layer(SIMPLE_SIGNING) {
        Some(payload) => (legacy_subject(layout, payload)?, Form::Signature),
        None => (
            attestation_subject(layout, layer(DSSE_ENVELOPE)?)?,
            Form::Attestation,
        ),
    };
    Some(Candidate {
        document,
        manifest,
        subject,
        form,
        corrupt: None,
    })
}

/// The first sha256 subject of the in-toto statement in a DSSE envelope layer (what cosign's
/// `.att` images are about), if it names one.
fn attestation_subject(layout: &Layout, envelope: &Descriptor) -> Option<Digest> {
    let bytes = read_blob(layout, envelope).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let payload = BASE64.decode(json["payload"].as_str()?).ok()?;
    let statement: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    let hex = statement["subject"].get(0)?["digest"]["sha256"].as_str()?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// The `critical.image.docker-manifest-digest` of a simple-signing payload, if it names one
/// (a payload that does not is no legacy signature of anything).
fn legacy_subject(layout: &Layout, payload: &Descriptor) -> Option<Digest> {
    let bytes = read_blob(layout, payload).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let named = json["critical"]["image"]["docker-manifest-digest"].as_str()?;
    Digest::parse(named).ok()
}

/// A descriptor's digest, parsed.
fn digest_of(desc: &Descriptor) -> Result<Digest, BlobError> {
    Digest::parse(desc.digest().as_ref()).map_err(|e| BlobError::BadDigest {
        reason: e.to_string(),
    })
}

fn read_blob(layout: &Layout, desc: &Descriptor) -> Result<Vec<u8>, BlobError> {
    let digest = digest_of(desc)?;
    if desc.size() > MAX_BUNDLE_SIZE {
        return Err(BlobError::TooLarge {
            digest,
            size: desc.size(),
        });
    }
    layout
        .read_document(&digest, desc.size())
        .map_err(|problem| BlobError::Unreadable { digest, problem })
}

/// An image's signatures and attestations, verified as the policy says.
#[derive(Default)]
pub struct Signed {
    /// Everything to publish with the image.
    pub attachments: Vec<Attachment>,
    /// Blobs the attachments need (bundles, payloads, configs), published with the image's.
    pub blobs: Vec<Blob>,
    /// Who signed the image's root digest (verified signatures only).
    pub signers: Vec<String>,
    /// SBOMs among the attachments (attestations, SBOM artifacts), validated and judged.
    pub sboms: Vec<VerifiedSbom>,
    /// SLSA provenance attestations among them, read (judged later, by the provenance policy).
    pub provenances: Vec<provenance::Found>,
}

/// What [`check`] looks at, for one image.
pub struct Image<'a> {
    /// The tagged document.
    pub root: &'a Document,
    /// Every manifest and index of the image (what signatures may be over).
    pub documents: &'a [Document],
    /// Sidecar bundle files over the root.
    pub sidecars: &'a [PathBuf],
}

/// Find the signatures of `image`'s manifests in `scan` and in its sidecars, and verify them.
/// With signers in the policy every signature found must verify; with `require`, the root must
/// carry a verified signature. SBOMs among them are judged under `ntia`.
pub fn check(
    layout: &Layout,
    scan: &Scan,
    image: &Image<'_>,
    policy: Option<&TrustPolicy>,
    ntia: NtiaMode,
) -> Result<Signed, Vec<Problem>> {
    let root = image.root;
    let subjects: BTreeMap<&Digest, &Document> =
        image.documents.iter().map(|d| (&d.digest, d)).collect();
    let mut signed = Signed::default();
    let mut problems = Vec::new();
    // Refusals no signer got to judge name the signers that would have.
    let untried = |refused: Refused| match policy.filter(|p| p.has_signers() && refused.untried) {
        Some(p) => format!(
            "{} (not checked against {})",
            refused.reason,
            p.describe_signers()
        ),
        None => refused.reason.to_string(),
    };
    let checker = Checker {
        layout,
        root: &root.digest,
        policy,
        ntia,
    };
    for candidate in &scan.candidates {
        let Some(subject) = subjects.get(&candidate.subject) else {
            continue;
        };
        let what = match candidate.form {
            Form::Signature => "cosign signature image",
            Form::Attestation => "cosign attestation image",
            Form::Referrer => "referrer",
        };
        let outcome = match (&candidate.corrupt, candidate.form) {
            (Some(actual), _) => Err(Refused::from(Refusal::Corrupt {
                named: candidate.document.digest.clone(),
                actual: actual.clone(),
            })),
            (None, Form::Signature) => checker.legacy(candidate, &mut signed),
            (None, Form::Attestation) => {
                checker.legacy_attestation(candidate, subject, &mut signed)
            }
            (None, Form::Referrer) => checker.referrer(candidate, subject, &mut signed),
        };
        if let Err(refused) = outcome {
            problems.push(Problem::at(
                &candidate.document.digest,
                format!("{what} of {}: {}", candidate.subject, untried(refused)),
            ));
        }
    }
    for path in image.sidecars {
        if let Err(refused) = checker.sidecar(path, root, &mut signed) {
            problems.push(Problem::at(
                &root.digest,
                format!(
                    "signature bundle {} over {}: {}",
                    path.display(),
                    root.digest,
                    untried(refused)
                ),
            ));
        }
    }
    if let Some(p) = policy.filter(|p| p.require)
        && signed.signers.is_empty()
        && problems.is_empty()
    {
        problems.push(Problem::at(
            &root.digest,
            format!(
                "unsigned: signatures are required, and none signs {} (looked for OCI referrers \
                 with this subject, a sha256-{}.sig image and sidecar bundles; accepted signers: \
                 {})",
                root.digest,
                root.digest.hex(),
                p.describe_signers()
            ),
        ));
    }
    if problems.is_empty() {
        Ok(signed)
    } else {
        Err(problems)
    }
}

/// The signed artifact as `sigstore-verify` takes it, given its exact `bytes` and their
/// `digest`. A message signature is over the bytes, so it gets them: Ed25519 cannot verify from
/// a digest, and a P-384 or RSA signer may have hashed with other than SHA-256. A DSSE envelope
/// signs its own payload and binds the artifact by the digest its in-toto subject names.
fn artifact<'a>(
    bundle: &Bundle,
    bytes: &'a [u8],
    digest: &Digest,
) -> Result<Artifact<'a>, Refusal> {
    match bundle.content {
        SignatureContent::DsseEnvelope(_) => Sha256Hash::from_hex(digest.hex())
            .map(Artifact::from_digest)
            .map_err(|e| Refusal::Artifact {
                reason: e.to_string(),
            }),
        _ => Ok(Artifact::from_blob(bytes)),
    }
}

/// What a bundle holds: a signature or an attestation (with its predicate type). An SBOM
/// attestation's document is validated like an SBOM file, must be of the format its predicate
/// type says, and must describe the statement's subject.
fn kind_of(bundle: &Bundle, subject: &Digest) -> Result<(Kind, Option<String>), StatementError> {
    let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return Ok((Kind::Signature, None));
    };
    let statement: serde_json::Value = serde_json::from_slice(envelope.payload.as_bytes())
        .map_err(|e| StatementError::NotStatement {
            reason: e.to_string(),
        })?;
    let predicate = statement["predicateType"]
        .as_str()
        .ok_or(StatementError::NoPredicateType)?
        .to_string();
    if !names(&statement, subject) {
        return Err(StatementError::OtherSubject {
            subject: subject.clone(),
        });
    }
    if provenance::is_provenance(&predicate) {
        let claim = provenance::read(&statement)?;
        return Ok((Kind::Provenance(Box::new(claim)), Some(predicate)));
    }
    if predicate == COSIGN_SIGN_PREDICATE {
        return Ok((Kind::Signature, Some(predicate)));
    }
    if let Some(format) = Format::of_predicate_type(&predicate) {
        let bytes =
            serde_json::to_vec(&statement["predicate"]).map_err(|e| StatementError::Predicate {
                reason: e.to_string(),
            })?;
        let summary = sbom::check_document(&bytes, "SBOM attestation")?;
        if summary.format != format {
            return Err(StatementError::WrongFormat {
                predicate,
                declared: format,
                found: summary.format,
            });
        }
        sbom::check_describes(&summary, subject, "SBOM attestation: the predicate")?;
        return Ok((
            Kind::Sbom(Box::new(AttestedSbom { bytes, summary })),
            Some(predicate),
        ));
    }
    Ok((Kind::Attestation, Some(predicate)))
}

/// Whether an in-toto statement names `subject` among its subjects.
fn names(statement: &serde_json::Value, subject: &Digest) -> bool {
    statement["subject"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["digest"]["sha256"] == subject.hex()))
}

/// A provenance statement that does not name `subject`, refused before its signature is
/// checked so that the refusal says what it names (sigstore-verify would only say that the
/// digest is not among them). Anything else passes on to verification.
fn provenance_about_other(bundle: &Bundle, subject: &Digest) -> Result<(), StatementError> {
    let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return Ok(());
    };
    let Ok(statement) = serde_json::from_slice::<serde_json::Value>(envelope.payload.as_bytes())
    else {
        return Ok(());
    };
    let is_provenance = statement["predicateType"]
        .as_str()
        .is_some_and(provenance::is_provenance);
    if !is_provenance || names(&statement, subject) {
        return Ok(());
    }
    let named = statement["subject"].as_array().into_iter().flatten();
    Err(StatementError::ProvenanceSubject {
        names: named
            .filter_map(|s| s["digest"]["sha256"].as_str())
            .map(|hex| format!("sha256:{hex}"))
            .collect(),
        subject: subject.clone(),
    })
}

/// Note who signed (a verified signature over the root), and describe the attachment.
fn record(
    signed: &mut Signed,
    kind: &Kind,
    subject_is_root: bool,
    who: Option<String>,
) -> (AttachmentKind, String) {
    let (attachment, what) = match kind {
        Kind::Signature => (AttachmentKind::Signature, "signature".to_string()),
        Kind::Attestation => (AttachmentKind::Attestation, "attestation".to_string()),
        Kind::Provenance(claim) => (
            AttachmentKind::Attestation,
            format!(
                "SLSA provenance {} (builder {})",
                claim.predicate_type.rsplit('/').next().unwrap_or_default(),
                claim.builder_id
            ),
        ),
        Kind::Sbom(sbom) => (
            AttachmentKind::Sbom,
            format!(
                "SBOM attestation ({}, {} packages)",
                sbom.summary.version, sbom.summary.packages
            ),
        ),
    };
    let summary = match who {
        Some(who) => {
            if *kind == Kind::Signature && subject_is_root && !signed.signers.contains(&who) {
                signed.signers.push(who.clone());
            }
            format!("{what}, verified: {who}")
        }
        None => format!("{what}, not verified (no signers in the policy)"),
    };
    (attachment, summary)
}

/// What checking one attachment needs besides the attachment.
struct Checker<'a> {
    layout: &'a Layout,
    /// The image's tagged digest (signatures over it make the image signed).
    root: &'a Digest,
    policy: Option<&'a TrustPolicy>,
    ntia: NtiaMode,
}

impl Checker<'_> {
    /// Verify `bundle` over `subject` if the policy has signers, then read what it is: who
    /// signed (None unchecked), its kind and predicate type. A refusal of the content after a
    /// verified signature names the signer.
    fn bundle(
        &self,
        bundle: &Bundle,
        subject: &Document,
    ) -> Result<(Kind, Option<String>, Option<Verified>), Refused> {
        provenance_about_other(bundle, &subject.digest).map_err(Refusal::Statement)?;
        let verified = match self.policy.filter(|p| p.has_signers()) {
            Some(policy) => {
                let artifact = artifact(bundle, &subject.bytes, &subject.digest)?;
                Some(
                    policy
                        .verify_signer(bundle, artifact)
                        .map_err(Refused::judged)?,
                )
            }
            None => None,
        };
        let (kind, predicate) =
            kind_of(bundle, &subject.digest).map_err(|reason| match &verified {
                Some(v) => Refused::judged(Refusal::SignedBy {
                    reason: Box::new(reason),
                    who: v.who.clone(),
                }),
                None => Refused::from(Refusal::Statement(reason)),
            })?;
        Ok((kind, predicate, verified))
    }

    /// Record the SBOM or provenance an attestation `kind` carries, published as the
    /// attachment `manifest` and verified as `verified` says.
    fn attested(
        &self,
        kind: Kind,
        subject: &Digest,
        manifest: &Digest,
        verified: Option<Verified>,
        signed: &mut Signed,
    ) -> Result<(), Refused> {
        if let Kind::Provenance(claim) = kind {
            let (signer, certificate) = match verified {
                Some(v) => (Some(v.who), v.claims),
                None => (None, None),
            };
            signed.provenances.push(provenance::Found {
                attachment: manifest.clone(),
                attached_to: subject.clone(),
                claim: *claim,
                signer,
                certificate,
            });
        } else if let Kind::Sbom(sbom) = kind {
            let origin = Origin::Attestation(manifest.clone());
            let record =
                sbom::verified(subject.clone(), origin, sbom.bytes, sbom.summary, self.ntia)
                    .map_err(Refused::judged)?;
            signed.sboms.push(record);
        }
        Ok(())
    }

    fn referrer(
        &self,
        candidate: &Candidate,
        subject: &Document,
        signed: &mut Signed,
    ) -> Result<(), Refused> {
        let manifest = &candidate.manifest;
        let artifact_type = manifest
            .artifact_type()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| manifest.config().media_type().to_string());
        let mut kind = AttachmentKind::Other;
        let mut summary = format!("attachment {artifact_type}, not verified");
        let mut attested = None;
        if artifact_type.starts_with(BUNDLE_PREFIX) {
            let layer = manifest
                .layers()
                .iter()
                .find(|l| l.media_type().to_string().starts_with(BUNDLE_PREFIX))
                .ok_or(Refusal::NoBundleLayer)?;
            let bytes = read_blob(self.layout, layer)?;
            let text = std::str::from_utf8(&bytes).map_err(|_| BundleError::NotUtf8)?;
            let bundle = parse_bundle(text)?;
            let (what, _, verified) = self.bundle(&bundle, subject)?;
            let who = verified.as_ref().map(|v| v.who.clone());
            (kind, summary) = record(signed, &what, candidate.subject == *self.root, who);
            attested = Some((what, verified));
        } else if artifact_type == sbom::SPDX_MEDIA_TYPE
            || artifact_type == sbom::CYCLONEDX_MEDIA_TYPE
        {
            kind = AttachmentKind::Sbom;
            let found = self
                .layout_sbom(candidate, &artifact_type)
                .map_err(Refused::judged)?;
            summary = format!(
                "SBOM ({}, {} packages)",
                found.summary.version, found.summary.packages
            );
            signed.sboms.push(found);
        }
        let blobs = manifest_blobs(self.layout, manifest)?;
        if let Some((what, verified)) = attested {
            let manifest = &candidate.document.digest;
            self.attested(what, &candidate.subject, manifest, verified, signed)?;
        }
        signed.blobs.extend(blobs);
        signed.attachments.push(Attachment {
            subject: candidate.subject.clone(),
            document: candidate.document.clone(),
            artifact_type: Some(artifact_type),
            annotations: manifest
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            tag: None,
            inline_blobs: Vec::new(),
            kind,
            summary,
        });
        Ok(())
    }

    /// An SBOM already attached in the layout: intact, valid, of its artifactType's format,
    /// and describing its subject.
    fn layout_sbom(
        &self,
        candidate: &Candidate,
        media_type: &str,
    ) -> Result<VerifiedSbom, SbomArtifactError> {
        use std::io::Read;
        let subject = &candidate.subject;
        let layer = candidate
            .manifest
            .layers()
            .iter()
            .find(|l| l.media_type().to_string() == media_type)
            .ok_or_else(|| SbomArtifactError::NoLayer {
                media_type: media_type.to_string(),
            })?;
        let digest = digest_of(layer)?;
        if layer.size() > sbom::MAX_SBOM_SIZE {
            return Err(SbomArtifactError::TooLarge {
                digest,
                size: layer.size(),
            });
        }
        let path = self.layout.blob_path(&digest).map_err(BlobError::Absent)?;
        let mut bytes = Vec::new();
        if let Err(reason) = std::fs::File::open(&path)
            .and_then(|f| f.take(layer.size() + 1).read_to_end(&mut bytes))
        {
            return Err(SbomArtifactError::Unreadable { digest, reason });
        }
        if bytes.len() as u64 != layer.size() || Digest::of_bytes(&bytes) != digest {
            return Err(SbomArtifactError::Changed { digest });
        }
        let origin = format!("SBOM {digest}");
        let summary = sbom::check_document(&bytes, &origin)?;
        if summary.format.media_type() != media_type {
            return Err(SbomArtifactError::WrongFormat {
                digest,
                media_type: media_type.to_string(),
                found: summary.format,
            });
        }
        sbom::check_describes(&summary, subject, &origin)?;
        let origin = Origin::Referrer(candidate.document.digest.clone());
        Ok(sbom::verified(
            subject.clone(),
            origin,
            bytes,
            summary,
            self.ntia,
        )?)
    }

    fn legacy(&self, candidate: &Candidate, signed: &mut Signed) -> Result<(), Refused> {
        let manifest = &candidate.manifest;
        let mut summaries = Vec::new();
        for layer in manifest.layers() {
            if layer.media_type().to_string() != SIMPLE_SIGNING {
                continue;
            }
            let payload = read_blob(self.layout, layer)?;
            let json: serde_json::Value =
                serde_json::from_slice(&payload).map_err(|e| LegacyError::PayloadNotJson {
                    reason: e.to_string(),
                })?;
            let named = json["critical"]["image"]["docker-manifest-digest"].as_str();
            if named != Some(candidate.subject.as_str()) {
                return Err(LegacyError::SignsOther {
                    digest: layer.digest().to_string(),
                    named: named.map(str::to_string),
                    subject: candidate.subject.clone(),
                }
                .into());
            }
            let annotations = layer.annotations().clone().unwrap_or_default();
            let who = self
                .legacy_verify(&payload, &annotations)
                .map_err(|r| Refused {
                    reason: Refusal::Payload {
                        digest: layer.digest().to_string(),
                        reason: Box::new(r.reason),
                    },
                    ..r
                })?;
            let (_, summary) = record(
                signed,
                &Kind::Signature,
                candidate.subject == *self.root,
                who,
            );
            summaries.push(summary);
        }
        if summaries.is_empty() {
            return Err(LegacyError::NoPayload.into());
        }
        self.legacy_attachment(
            candidate,
            "sig",
            AttachmentKind::Signature,
            &summaries,
            signed,
        )
    }

    /// Publish a verified legacy cosign image under its `sha256-<hex>.<suffix>` tag, with its
    /// blobs.
    fn legacy_attachment(
        &self,
        candidate: &Candidate,
        suffix: &str,
        kind: AttachmentKind,
        summaries: &[String],
        signed: &mut Signed,
    ) -> Result<(), Refused> {
        signed
            .blobs
            .extend(manifest_blobs(self.layout, &candidate.manifest)?);
        signed.attachments.push(Attachment {
            subject: candidate.subject.clone(),
            document: candidate.document.clone(),
            artifact_type: None,
            annotations: BTreeMap::new(),
            tag: Some(format!("sha256-{}.{suffix}", candidate.subject.hex())),
            inline_blobs: Vec::new(),
            kind,
            summary: summaries.join("; "),
        });
        Ok(())
    }

    /// A legacy cosign `.att` image: each DSSE envelope layer, rebuilt as a v0.1 bundle from its
    /// annotations, verified over `subject` and read like any attestation bundle; the image is
    /// published under its `sha256-<hex>.att` tag.
    fn legacy_attestation(
        &self,
        candidate: &Candidate,
        subject: &Document,
        signed: &mut Signed,
    ) -> Result<(), Refused> {
        let manifest = &candidate.manifest;
        let mut summaries = Vec::new();
        let mut kind = AttachmentKind::Attestation;
        for layer in manifest.layers() {
            if layer.media_type().to_string() != DSSE_ENVELOPE {
                continue;
            }
            let in_layer = |reason: Refusal| Refusal::Payload {
                digest: layer.digest().to_string(),
                reason: Box::new(reason),
            };
            let envelope = read_blob(self.layout, layer)?;
            let envelope: serde_json::Value =
                serde_json::from_slice(&envelope).map_err(|e| LegacyError::Envelope {
                    digest: layer.digest().to_string(),
                    reason: e.to_string(),
                })?;
            let annotations = layer.annotations().clone().unwrap_or_default();
            let bundle = legacy_dsse_bundle(&annotations, envelope)
                .map_err(|e| Refused::from(in_layer(Refusal::Legacy(e))))?;
            let (what, _, verified) = self.bundle(&bundle, subject).map_err(|r| Refused {
                reason: in_layer(r.reason),
                ..r
            })?;
            let who = verified.as_ref().map(|v| v.who.clone());
            let (k, summary) = record(signed, &what, candidate.subject == *self.root, who);
            if summaries.is_empty() {
                kind = k;
            }
            summaries.push(summary);
            self.attested(
                what,
                &candidate.subject,
                &candidate.document.digest,
                verified,
                signed,
            )?;
        }
        self.legacy_attachment(candidate, "att", kind, &summaries, signed)
    }

    /// Verify a legacy payload's signature, over the payload's exact bytes, if the policy has
    /// signers: who signed, or None unchecked. The signature is tried under the key's own
    /// Sigstore scheme (SHA-384 for P-384, pure Ed25519), then hashed with SHA-256, which cosign
    /// has long used with every key type; the first attempt's reason is the one reported.
    fn legacy_verify(
        &self,
        payload: &[u8],
        annotations: &std::collections::HashMap<String, String>,
    ) -> Result<Option<String>, Refused> {
        let native = legacy_bundle(annotations, None)?;
        let Some(policy) = self.policy.filter(|p| p.has_signers()) else {
            return Ok(None);
        };
        let first = match policy.verify(&native, Artifact::from_blob(payload)) {
            Ok(who) => return Ok(Some(who)),
            Err(reason) => reason,
        };
        let sha256 = legacy_bundle(annotations, Some(&sha2_256(payload)))?;
        match policy.verify(&sha256, Artifact::from_blob(payload)) {
            Ok(who) => Ok(Some(who)),
            Err(_) => Err(Refused::judged(first)),
        }
    }

    /// A sidecar bundle over the image root (e.g. `cosign sign-blob --bundle` over
    /// `index.json`): verified, then published as a cosign v3-style referrer (an OCI artifact
    /// manifest whose layer is the bundle, byte for byte).
    fn sidecar(&self, path: &Path, root: &Document, signed: &mut Signed) -> Result<(), Refused> {
        let bytes = read_bundle_bytes(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| BundleError::NotUtf8)?;
        let bundle = parse_bundle(text)?;
        let (kind, predicate, verified) = self.bundle(&bundle, root)?;
        let who = verified.as_ref().map(|v| v.who.clone());
        let (attachment_kind, summary) = record(signed, &kind, true, who);
        let bundle_type = bundle.media_type().as_str().to_string();
        let bundle_digest = Digest::of_bytes(&bytes);
        let mut annotations = BTreeMap::new();
        let content = match bundle.content {
            SignatureContent::DsseEnvelope(_) => "dsse-envelope",
            _ => "message-signature",
        };
        annotations.insert(
            "dev.sigstore.bundle.content".to_string(),
            content.to_string(),
        );
        if let Some(predicate) = predicate {
            annotations.insert("dev.sigstore.bundle.predicateType".to_string(), predicate);
        }
        let layer = referrer::Layer {
            media_type: &bundle_type,
            digest: &bundle_digest,
            size: bytes.len() as u64,
        };
        let attachment = referrer::artifact(root, layer, annotations, attachment_kind, summary);
        let manifest = attachment.document.digest.clone();
        self.attested(kind, &root.digest, &manifest, verified, signed)?;
        signed.attachments.push(attachment);
        signed.blobs.push(Blob {
            digest: bundle_digest,
            size: bytes.len() as u64,
            path: path.to_path_buf(),
        });
        Ok(())
    }
}

fn sha2_256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// A legacy cosign signature (payload layer annotations) as a Sigstore v0.1 bundle: message
/// signature over the payload, certificate or key, and the Rekor entry with its signed entry
/// timestamp. The payload's `sha256`, when given, is declared as the message digest (the
/// signature then hashes with SHA-256 whatever the key); without it the key's own scheme
/// applies.
fn legacy_bundle(
    annotations: &std::collections::HashMap<String, String>,
    sha256: Option<&[u8; 32]>,
) -> Result<Bundle, LegacyError> {
    let signature = annotations
        .get(ANN_SIGNATURE)
        .ok_or(LegacyError::NoSignature)?;
    let content = json!({
        "messageSignature": {
            "messageDigest": sha256
                .map(|d| json!({"algorithm": "SHA2_256", "digest": BASE64.encode(d)})),
            "signature": signature,
        },
    });
    v01_bundle(annotations, content)
}

/// A legacy cosign attestation layer (a DSSE envelope, with the certificate and Rekor bundle
/// in its annotations) as a Sigstore v0.1 bundle.
fn legacy_dsse_bundle(
    annotations: &std::collections::HashMap<String, String>,
    envelope: serde_json::Value,
) -> Result<Bundle, LegacyError> {
    v01_bundle(annotations, json!({"dsseEnvelope": envelope}))
}

/// A Sigstore v0.1 bundle of `content` (its `messageSignature` or `dsseEnvelope`), with the
/// verification material cosign keeps in layer annotations: the certificate and chain (or a
/// key), and the Rekor entry with its signed entry timestamp.
fn v01_bundle(
    annotations: &std::collections::HashMap<String, String>,
    content: serde_json::Value,
) -> Result<Bundle, LegacyError> {
    let material = match annotations.get(ANN_CERTIFICATE).filter(|c| !c.is_empty()) {
        Some(pem) => {
            let mut chain = vec![pem_der(pem)?];
            if let Some(rest) = annotations.get(ANN_CHAIN).filter(|c| !c.is_empty()) {
                chain.extend(pem_blocks(rest)?);
            }
            json!({"x509CertificateChain": {"certificates":
                chain.iter().map(|der| json!({"rawBytes": BASE64.encode(der)})).collect::<Vec<_>>()}})
        }
        None => json!({"publicKey": {"hint": ""}}),
    };
    let mut tlog_entries = Vec::new();
    if let Some(rekor) = annotations.get(ANN_BUNDLE) {
        let rekor: serde_json::Value =
            serde_json::from_str(rekor).map_err(|e| LegacyError::RekorNotJson {
                reason: e.to_string(),
            })?;
        let p = &rekor["Payload"];
        let missing = |field| LegacyError::RekorField { field };
        let body_b64 = p["body"].as_str().ok_or(missing("Payload.body"))?;
        let body: serde_json::Value =
            serde_json::from_slice(&BASE64.decode(body_b64).map_err(|e| {
                LegacyError::RekorBase64 {
                    reason: e.to_string(),
                }
            })?)
            .map_err(|e| LegacyError::RekorBody {
                reason: e.to_string(),
            })?;
        let log_id = hex::decode(p["logID"].as_str().ok_or(missing("logID"))?).map_err(|e| {
            LegacyError::RekorLogId {
                reason: e.to_string(),
            }
        })?;
        tlog_entries.push(json!({
            "logIndex": p["logIndex"].as_i64().ok_or(missing("logIndex"))?.to_string(),
            "logId": {"keyId": BASE64.encode(log_id)},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "integratedTime": p["integratedTime"].as_i64().ok_or(missing("integratedTime"))?.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": rekor["SignedEntryTimestamp"]},
            "canonicalizedBody": body_b64,
        }));
    }
    let mut bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "tlogEntries": tlog_entries,
            "x509CertificateChain": material.get("x509CertificateChain"),
            "publicKey": material.get("publicKey"),
        },
    });
    if let (Some(b), serde_json::Value::Object(content)) = (bundle.as_object_mut(), content) {
        b.extend(content);
    }
    if let Some(vm) = bundle["verificationMaterial"].as_object_mut() {
        vm.retain(|_, v| !v.is_null());
    }
    if let Some(ms) = bundle["messageSignature"].as_object_mut() {
        ms.retain(|_, v| !v.is_null());
    }
    Ok(parse_bundle(&bundle.to_string())?)
}

fn pem_der(pem: &str) -> Result<Vec<u8>, LegacyError> {
    Ok(pem::parse(pem)
        .map_err(|e| LegacyError::Certificate {
            reason: e.to_string(),
        })?
        .into_contents())
}

fn pem_blocks(pem: &str) -> Result<Vec<Vec<u8>>, LegacyError> {
    Ok(pem::parse_many(pem)
        .map_err(|e| LegacyError::Chain {
            reason: e.to_string(),
        })?
        .into_iter()
        .map(|p| p.into_contents())
        .collect())
}

/// The config and layers of an attachment manifest, present in the layout with their sizes.
fn manifest_blobs(layout: &Layout, manifest: &ImageManifest) -> Result<Vec<Blob>, BlobError> {
    std::iter::once(manifest.config())
        .chain(manifest.layers())
        .map(|desc| {
            let digest = digest_of(desc)?;
            let path = layout.blob_path(&digest).map_err(BlobError::Absent)?;
            let size = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(reason) => return Err(BlobError::Stat { digest, reason }),
            };
            if size != desc.size() {
                return Err(BlobError::Size {
                    digest,
                    expected: desc.size(),
                    size,
                });
            }
            Ok(Blob { digest, size, path })
        })
        .collect()
}
