//! SBOMs: every image we serve carries its list of ingredients, bound to its exact digests.
//!
//! For each layout, SBOM files are found ([`discover`]), each is read (size-capped), validated
//! as SPDX 2.3 ([`spdx`]) or CycloneDX 1.4–1.6 ([`cyclonedx`]) against the official schemas
//! ([`schema`]), bound to the image index or platform manifest it describes ([`bind`]) and
//! judged for the NTIA minimum elements ([`ntia`]); then the [`SbomPolicy`] decides whether an
//! image without SBOMs, a platform without its own, or an incomplete SBOM refuses the image.
//! [`check_document`] validates a document from bytes alone, for SBOMs found in the layout as
//! referrers and inside signed in-toto attestations; [`verified`] turns any of them into a
//! [`VerifiedSbom`] judged under the run's NTIA mode, so every SBOM of an image counts toward
//! the policy and is reported alike, wherever it came from.

pub mod bind;
pub mod cyclonedx;
pub mod discover;
pub mod ntia;
pub mod schema;
pub mod spdx;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::Problem;
use crate::verify::VerifiedImage;
use crate::verify::policy::{NtiaMode, Requirement, SbomPolicy};
use bind::{Subject, Unbound};
use cyclonedx::CycloneDxError;
pub use ntia::{Element, Missing};
use spdx::SpdxError;

/// Largest SBOM read: checked before parsing (file size, or the bytes given).
pub const MAX_SBOM_SIZE: u64 = 64 * 1024 * 1024;

/// The media type of SPDX JSON documents (the artifactType of an SPDX referrer).
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The media type of CycloneDX JSON documents.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// An SBOM format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.4–1.6 JSON.
    CycloneDx,
}

impl Format {
    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => SPDX_MEDIA_TYPE,
            Format::CycloneDx => CYCLONEDX_MEDIA_TYPE,
        }
    }

    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Spdx => "SPDX",
            Format::CycloneDx => "CycloneDX",
        }
    }

    /// The format an in-toto statement's `predicateType` carries, if it is an SBOM.
    pub fn of_predicate_type(predicate_type: &str) -> Option<Format> {
        match predicate_type.trim_end_matches('/') {
            "https://spdx.dev/Document" => Some(Format::Spdx),
            "https://cyclonedx.org/bom" => Some(Format::CycloneDx),
            _ => None,
        }
    }
}

/// What a valid SBOM document says, as far as policy and reports need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SbomSummary {
    /// SPDX or CycloneDX.
    pub format: Format,
    /// `SPDX-2.3`, `CycloneDX-1.5`, …
    pub version: String,
    /// SPDX packages, or CycloneDX components (nested ones included, not the described one).
    pub packages: usize,
    /// The digests the document says it describes: the SHA-256 checksums and `pkg:oci` purls of
    /// its described package (SPDX) or `metadata.component` (CycloneDX).
    pub describes: Vec<Digest>,
    /// NTIA minimum elements it lacks, and where; empty when complete.
    pub ntia_missing: Vec<Missing>,
}

/// What the NTIA check concluded under the run's policy (a failure under `require` refuses the
/// image instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NtiaOutcome {
    /// Every minimum element is present.
    Pass,
    /// Elements are missing; the policy is `warn`.
    Warn,
    /// The policy is `off`.
    Off,
}

/// Where an SBOM came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file (apko's `--sbom-path`, `--sboms`, `sboms` in the config): published by regpress
    /// as a referrer of its subject.
    File(PathBuf),
    /// The predicate of an in-toto attestation: the attachment manifest (a referrer in the
    /// layout, or the one regpress writes for a sidecar bundle), already published.
    Attestation(Digest),
    /// An SBOM artifact already attached in the layout (its manifest), already published.
    Referrer(Digest),
}

impl Origin {
    /// The file, when it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Origin::File(path) => Some(path),
            _ => None,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Attestation(d) => write!(f, "attestation {d}"),
            Origin::Referrer(d) => write!(f, "referrer {d}"),
        }
    }
}

/// An SBOM that passed verification, bound to what it describes.
#[derive(Clone, Debug)]
pub struct VerifiedSbom {
    /// The image index or platform manifest it describes.
    pub subject: Digest,
    /// The platform (`linux/amd64`) when the subject is a platform manifest of an index.
    pub platform: Option<String>,
    /// `application/spdx+json` or `application/vnd.cyclonedx+json`.
    pub media_type: &'static str,
    /// Where it came from.
    pub origin: Origin,
    /// sha256 of the document's bytes (an attestation's: of its predicate as validated).
    pub digest: Digest,
    /// The document's size in bytes.
    pub size: u64,
    /// The exact bytes verified (a file's are published byte for byte).
    pub bytes: Arc<[u8]>,
    /// What it says.
    pub summary: SbomSummary,
    /// The NTIA result under the run's policy.
    pub ntia: NtiaOutcome,
}

/// What a format module found in a valid document.
#[derive(Debug)]
pub struct Checked {
    /// `SPDX-2.3`, `CycloneDX-1.5`, …
    pub version: String,
    /// Packages or components counted.
    pub packages: usize,
    /// Digests of what it describes.
    pub describes: Vec<Digest>,
    /// What the NTIA elements need.
    pub inventory: ntia::Inventory,
}

/// Why an SBOM is refused. Every message starts with the SBOM's origin, as the caller named
/// it (`SBOM <file>`, `SBOM attestation`, …).
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// The file cannot be read.
    #[error("{origin}: {reason}")]
    Unreadable {
        /// The SBOM.
        origin: String,
        /// Why.
        reason: ReadError,
    },
    /// The bytes are not a valid SPDX or CycloneDX document.
    #[error("{origin}: {reason}")]
    Invalid {
        /// The SBOM.
        origin: String,
        /// What is wrong with it.
        reason: Box<DocumentError>,
    },
    /// Attached to a subject (a referrer, an attestation's predicate), it describes others.
    #[error("{origin} describes {}, not its subject {subject}", named(describes))]
    DescribesOther {
        /// The SBOM.
        origin: String,
        /// The digests it describes.
        describes: Vec<Digest>,
        /// The subject it is attached to.
        subject: Digest,
    },
    /// A file that cannot be bound to any subject of its images.
    #[error("{origin}: {reason}")]
    Unbound {
        /// The SBOM.
        origin: String,
        /// Why.
        reason: Unbound,
    },
    /// NTIA minimum elements are missing, and the policy is `require`.
    #[error("{origin}: NTIA minimum elements missing: {}", ntia::describe(missing))]
    NtiaIncomplete {
        /// The SBOM.
        origin: String,
        /// What is missing where.
        missing: Vec<Missing>,
    },
}

/// Why an SBOM file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It cannot be opened.
    #[error("cannot open: {0}")]
    Open(io::Error),
    /// Its size cannot be had.
    #[error("cannot stat: {0}")]
    Stat(io::Error),
    /// It is larger than [`MAX_SBOM_SIZE`] (not read).
    #[error("{size} bytes is more than the {} MiB an SBOM may have", MAX_SBOM_SIZE >> 20)]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// Reading it failed.
    #[error("cannot read: {0}")]
    Read(io::Error),
}

/// Why bytes are not a valid SBOM document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Larger than [`MAX_SBOM_SIZE`] (not parsed).
    #[error("{size} bytes is more than the {} MiB an SBOM may have", MAX_SBOM_SIZE >> 20)]
    TooLarge {
        /// The size given.
        size: u64,
    },
    /// Not JSON.
    #[error("not valid JSON{}: {reason}", if *truncated { " (truncated?)" } else { "" })]
    NotJson {
        /// It ended early.
        truncated: bool,
        /// What the parser said.
        reason: String,
    },
    /// JSON, but neither format.
    #[error("neither an SPDX document (no spdxVersion) nor a CycloneDX BOM (no bomFormat)")]
    UnknownFormat,
    /// An invalid SPDX document.
    #[error(transparent)]
    Spdx(#[from] SpdxError),
    /// An invalid CycloneDX BOM.
    #[error(transparent)]
    CycloneDx(#[from] CycloneDxError),
}

/// What a format module found wrong in one document beyond its schema: every finding is kept;
/// the message lists the first five and counts the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Findings<T>(pub Vec<T>);

impl<T: fmt::Display> fmt::Display for Findings<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LISTED: usize = 5;
        for (i, finding) in self.0.iter().take(LISTED).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{finding}")?;
        }
        if self.0.len() > LISTED {
            write!(f, "; and {} more", self.0.len() - LISTED)?;
        }
        Ok(())
    }
}

/// A `pkg:oci` purl that does not name a digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PurlError {
    /// Not a package URL at all.
    #[error("purl {locator:?} is not a valid package URL: {reason}")]
    Invalid {
        /// The purl.
        locator: String,
        /// What the purl parser said.
        reason: String,
    },
    /// Its version is not a digest.
    #[error("purl {locator:?}: {reason}")]
    BadDigest {
        /// The purl.
        locator: String,
        /// Why the digest was refused.
        reason: String,
    },
}

/// One package (SPDX) or component (CycloneDX) an SBOM lists: what the package index keeps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// Its name.
    pub name: String,
    /// Its version, when the document asserts one.
    pub version: Option<String>,
    /// Its package URL, when it has one.
    pub purl: Option<String>,
}

impl Package {
    /// A package the image is made of: `None` for the image's own layers (`pkg:oci` purls).
    fn ingredient(name: &str, version: Option<&str>, purl: Option<String>) -> Option<Package> {
        if purl.as_deref().is_some_and(|p| p.starts_with("pkg:oci/")) || name.trim().is_empty() {
            return None;
        }
        Some(Package {
            name: name.to_string(),
            version: version
                .filter(|v| ntia::asserted(Some(v)))
                .map(str::to_string),
            purl,
        })
    }
}

/// The packages an SBOM that passed [`check_document`] lists (empty for bytes that do not
/// parse: they were validated before).
pub fn packages(bytes: &[u8]) -> Vec<Package> {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let listed = if value.get("spdxVersion").is_some() {
        spdx::packages(&value)
    } else {
        cyclonedx::packages(&value)
    };
    listed.unwrap_or_default()
}

/// Validate an SBOM document from its bytes, whatever it came from: a file, or the predicate
/// of an in-toto statement (`origin` names it in errors, e.g. the file path or
/// `attestation sha256:… predicate`). Errors start with `origin`.
pub fn check_document(bytes: &[u8], origin: &str) -> Result<SbomSummary, SbomError> {
    check_bytes(bytes).map_err(|reason| SbomError::Invalid {
        origin: origin.to_string(),
        reason: Box::new(reason),
    })
}

fn check_bytes(bytes: &[u8]) -> Result<SbomSummary, DocumentError> {
    if bytes.len() as u64 > MAX_SBOM_SIZE {
        return Err(DocumentError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DocumentError::NotJson {
        truncated: e.is_eof(),
        reason: e.to_string(),
    })?;
    let (format, checked) = if value.get("spdxVersion").is_some() {
        (Format::Spdx, spdx::check(value)?)
    } else if value.get("bomFormat").is_some() {
        (Format::CycloneDx, cyclonedx::check(value)?)
    } else {
        return Err(DocumentError::UnknownFormat);
    };
    Ok(SbomSummary {
        format,
        version: checked.version,
        packages: checked.packages,
        describes: checked.describes,
        ntia_missing: ntia::missing(&checked.inventory),
    })
}

/// An SBOM validated from `bytes` (`summary`), bound to `subject`, judged under `mode`: `Err`
/// (naming it as `SBOM <origin>`) when NTIA elements are missing under `require`.
pub fn verified(
    subject: Digest,
    origin: Origin,
    bytes: Vec<u8>,
    summary: SbomSummary,
    mode: NtiaMode,
) -> Result<VerifiedSbom, SbomError> {
    let ntia = judge_ntia(&summary, mode, &format!("SBOM {origin}"))?;
    Ok(VerifiedSbom {
        subject,
        platform: None,
        media_type: summary.format.media_type(),
        origin,
        digest: Digest::of_bytes(&bytes),
        size: bytes.len() as u64,
        bytes: Arc::from(bytes),
        summary,
        ntia,
    })
}

/// An SBOM attached to `subject` (a referrer, an attestation's predicate) must describe it.
pub fn check_describes(
    summary: &SbomSummary,
    subject: &Digest,
    origin: &str,
) -> Result<(), SbomError> {
    if summary.describes.contains(subject) {
        return Ok(());
    }
    Err(SbomError::DescribesOther {
        origin: origin.to_string(),
        describes: summary.describes.clone(),
        subject: subject.clone(),
    })
}

/// The digests an SBOM describes, for messages.
fn named(describes: &[Digest]) -> String {
    if describes.is_empty() {
        return "no digest".to_string();
    }
    describes
        .iter()
        .map(Digest::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judge an SBOM's NTIA completeness under `mode`: `Err` (naming `origin` and what is missing
/// where) when elements are missing and the mode is `require`.
pub fn judge_ntia(
    summary: &SbomSummary,
    mode: NtiaMode,
    origin: &str,
) -> Result<NtiaOutcome, SbomError> {
    match (mode, summary.ntia_missing.is_empty()) {
        (NtiaMode::Off, _) => Ok(NtiaOutcome::Off),
        (_, true) => Ok(NtiaOutcome::Pass),
        (NtiaMode::Warn, false) => Ok(NtiaOutcome::Warn),
        (NtiaMode::Require, false) => Err(SbomError::NtiaIncomplete {
            origin: origin.to_string(),
            missing: summary.ntia_missing.clone(),
        }),
    }
}

/// The findings of a format module, as an error when there are any.
fn findings<T>(found: Vec<T>) -> Result<(), Findings<T>> {
    if found.is_empty() {
        Ok(())
    } else {
        Err(Findings(found))
    }
}

/// The digest a `pkg:oci/…@sha256:…` purl names (`None` for other purl types). The version may
/// be percent-encoded (`sha256%3A…`, the purl specification's form) or not (apko's).
fn oci_purl_digest(locator: &str) -> Result<Option<Digest>, PurlError> {
    if !locator.starts_with("pkg:oci/") {
        return Ok(None);
    }
    let purl = packageurl::PackageUrl::from_str(locator).map_err(|e| PurlError::Invalid {
        locator: locator.to_string(),
        reason: e.to_string(),
    })?;
    match purl.version() {
        Some(version) => Digest::parse(version)
            .map(Some)
            .map_err(|e| PurlError::BadDigest {
                locator: locator.to_string(),
                reason: e.to_string(),
            }),
        None => Ok(None),
    }
}

/// Find, check and bind the SBOMs of the images selected from one layout (`images`, all from
/// `layout`), and apply the policy. Each SBOM is attached to the image it describes; every
/// problem comes back with the name of the image (or images) it concerns.
pub(crate) fn attach(
    images: &mut [VerifiedImage],
    layout: &Path,
    explicit: Option<&Path>,
    policy: &SbomPolicy,
) -> Vec<(String, Problem)> {
    let everyone = images
        .iter()
        .map(VerifiedImage::name)
        .collect::<Vec<_>>()
        .join(", ");
    let mut problems = Vec::new();
    let discovery = match discover::find(layout, explicit) {
        Ok(d) => d,
        Err(e) => return vec![(everyone, Problem::new(e.to_string()))],
    };
    let subjects: Vec<Vec<Subject>> = images.iter().map(bind::subjects).collect();
    for found in &discovery.files {
        match check_file(found, &subjects, policy.ntia) {
            Ok((i, sbom)) => images[i].sboms.push(sbom),
            Err(p) => problems.push((everyone.clone(), p)),
        }
    }
    for (image, subjects) in images.iter_mut().zip(&subjects) {
        // SBOMs found as referrers and attestations are bound by their subject already.
        for sbom in image.sboms.iter_mut().filter(|s| s.platform.is_none()) {
            sbom.platform = subjects
                .iter()
                .find(|s| s.digest == sbom.subject)
                .and_then(|s| s.platform.as_ref().map(ToString::to_string));
        }
        // The root's SBOMs first, then each platform's in index order.
        image
            .sboms
            .sort_by_key(|s| subjects.iter().position(|x| x.digest == s.subject));
        for p in coverage(image, subjects, policy, &discovery.searched) {
            problems.push((image.name(), p));
        }
    }
    problems
}

/// Read, validate and bind one file: the index of the image it belongs to, and the SBOM.
fn check_file(
    found: &discover::Found,
    subjects: &[Vec<Subject>],
    mode: NtiaMode,
) -> Result<(usize, VerifiedSbom), Problem> {
    let origin = format!("SBOM {}", found.path.display());
    let refused = |e: SbomError| Problem::new(e.to_string());
    let bytes = read_capped(&found.path).map_err(|reason| {
        refused(SbomError::Unreadable {
            origin: origin.clone(),
            reason,
        })
    })?;
    let summary = check_document(&bytes, &origin).map_err(refused)?;
    let (i, subject) = bind::bind(&found.role, &summary.describes, subjects).map_err(|reason| {
        let digest = reason.expected().cloned();
        let e = SbomError::Unbound {
            origin: origin.clone(),
            reason,
        };
        Problem {
            digest,
            reason: e.to_string(),
        }
    })?;
    let mut sbom = verified(
        subject.digest.clone(),
        Origin::File(found.path.clone()),
        bytes,
        summary,
        mode,
    )
    .map_err(|e| Problem::at(&subject.digest, e.to_string()))?;
    sbom.platform = subject.platform.as_ref().map(ToString::to_string);
    Ok((i, sbom))
}

/// The whole file, refusing one larger than [`MAX_SBOM_SIZE`] before reading it.
fn read_capped(path: &Path) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path).map_err(ReadError::Open)?;
    let size = file.metadata().map_err(ReadError::Stat)?.len();
    if size > MAX_SBOM_SIZE {
        return Err(ReadError::TooLarge { size });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_SBOM_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Read)?;
    Ok(bytes)
}

/// The policy's demands on one image's set of SBOMs: at least one when required; one per
/// platform manifest when `per_platform` (and the image has SBOMs or must have them).
fn coverage(
    image: &VerifiedImage,
    subjects: &[Subject],
    policy: &SbomPolicy,
    searched: &[PathBuf],
) -> Vec<Problem> {
    let looked = || {
        searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let required = policy.policy == Requirement::Required;
    if image.sboms.is_empty() && required {
        return vec![Problem::at(
            &image.root.digest,
            format!(
                "no SBOM found (SBOM policy: required); looked in {} and for SBOM referrers and \
                 SBOM attestations of the image in the layout (name the directory with --sboms, or \
                 `sboms` in [[image]])",
                looked()
            ),
        )];
    }
    if !policy.per_platform || image.sboms.is_empty() {
        return Vec::new();
    }
    subjects
        .iter()
        .filter(|s| !s.is_index)
        .filter(|s| !image.sboms.iter().any(|b| b.subject == s.digest))
        .map(|s| {
            Problem::at(
                &s.digest,
                format!(
                    "{} has no SBOM of its own (per_platform = true)",
                    s.describe()
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicate_types_and_media_types() {
        assert_eq!(
            Format::of_predicate_type("https://spdx.dev/Document"),
            Some(Format::Spdx)
        );
        assert_eq!(
            Format::of_predicate_type("https://cyclonedx.org/bom"),
            Some(Format::CycloneDx)
        );
        assert_eq!(
            Format::of_predicate_type("https://slsa.dev/provenance/v1"),
            None
        );
        assert_eq!(Format::CycloneDx.media_type(), CYCLONEDX_MEDIA_TYPE);
    }

    #[test]
    fn oci_purls_name_digests_encoded_or_not() {
        let hex = "b5f05e6fc882c97d61c1daee566954ae6fc09924f8e152293e2b97a06092069f";
        let want = Digest::parse(&format!("sha256:{hex}")).unwrap();
        for purl in [
            format!(
                "pkg:oci/golden@sha256:{hex}?mediaType=application%2Fvnd.oci.image.index.v1%2Bjson"
            ),
            format!("pkg:oci/golden@sha256%3A{hex}?arch=amd64"),
        ] {
            assert_eq!(
                oci_purl_digest(&purl).unwrap(),
                Some(want.clone()),
                "{purl}"
            );
        }
        assert_eq!(oci_purl_digest("pkg:apk/wolfi/busybox@1.36").unwrap(), None);
        let e = oci_purl_digest("pkg:oci/x@sha256:abc").unwrap_err();
        assert!(
            matches!(&e, PurlError::BadDigest { locator, .. } if locator == "pkg:oci/x@sha256:abc"),
            "{e}"
        );
        assert!(matches!(
            oci_purl_digest("pkg:oci/@sha256:abc"),
            Err(PurlError::Invalid { .. })
        ));
    }

    /// The document error of an SBOM refused as invalid, and its message.
    fn invalid(bytes: &[u8], origin: &str) -> (DocumentError, String) {
        match check_document(bytes, origin) {
            Err(e @ SbomError::Invalid { .. }) => {
                let text = e.to_string();
                let SbomError::Invalid { origin: o, reason } = e else {
                    unreachable!()
                };
                assert_eq!(o, origin);
                (*reason, text)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_bytes_are_refused_with_their_origin() {
        let (e, text) = invalid(b"{\"spdxVersion\": \"SPDX-2.3\", \"na", "f.json");
        assert!(
            matches!(
                e,
                DocumentError::NotJson {
                    truncated: true,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            text.starts_with("f.json: not valid JSON (truncated?): "),
            "{text}"
        );
        let (e, text) = invalid(b"[1, 2]", "x");
        assert_eq!(e, DocumentError::UnknownFormat);
        assert_eq!(
            text,
            "x: neither an SPDX document (no spdxVersion) nor a CycloneDX BOM (no bomFormat)"
        );
        let big = vec![b' '; MAX_SBOM_SIZE as usize + 1];
        let (e, text) = invalid(&big, "x");
        assert_eq!(
            e,
            DocumentError::TooLarge {
                size: MAX_SBOM_SIZE + 1
            }
        );
        assert_eq!(
            text,
            "x: 67108865 bytes is more than the 64 MiB an SBOM may have"
        );
    }

    #[test]
    fn findings_list_five_and_count_the_rest() {
        assert_eq!(Findings(vec!["a", "b"]).to_string(), "a; b");
        let seven = Findings((1..=7).collect::<Vec<_>>());
        assert_eq!(seven.to_string(), "1; 2; 3; 4; 5; and 2 more");
        assert!(findings(Vec::<String>::new()).is_ok());
    }
}
