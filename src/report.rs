//! What a run tells its user about the images it verified: per image, its digest and contents
//! and, per SBOM, what it describes, its packages and its NTIA result with the elements missing
//! where. One shape for the JSON of `verify --report`, the `sboms` of publish's report and the
//! human lines, so all three say the same thing.

use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Digest;
use crate::verify::VerifiedImage;
use crate::verify::policy::SbomPolicy;
use crate::verify::sbom::{Format, Missing, NtiaOutcome, VerifiedSbom, ntia};

/// `verify --report FILE`.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The SBOM policy applied.
    pub sbom_policy: SbomPolicy,
    /// Every image verified.
    pub images: Vec<ImageReport>,
}

/// One verified image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    /// The layout directory.
    pub layout: PathBuf,
    /// `repository:tag`, or how the layout names it.
    pub image: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// The root document's digest.
    pub digest: Digest,
    /// The root document's media type.
    pub media_type: String,
    /// Manifests and indexes.
    pub manifests: usize,
    /// Config and layer blobs.
    pub blobs: usize,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Who signed its tagged digest (verified signatures).
    pub signers: Vec<String>,
    /// Signatures, attestations and other artifacts published with it.
    pub attachments: Vec<AttachmentReport>,
    /// Its SBOMs.
    pub sboms: Vec<SbomReport>,
}

/// One signature, attestation or other artifact attached to an image.
#[derive(Clone, Debug, Serialize)]
pub struct AttachmentReport {
    /// The attachment's manifest digest.
    pub digest: Digest,
    /// The manifest it is about.
    pub subject: Digest,
    /// Its artifactType (referrers), if any.
    pub artifact_type: Option<String>,
    /// Its tag (legacy cosign `.sig`), if any.
    pub tag: Option<String>,
    /// What it is and how it was verified.
    pub summary: String,
}

/// One SBOM of an image.
#[derive(Clone, Debug, Serialize)]
pub struct SbomReport {
    /// `repository:tag` of the image it belongs to.
    pub image: String,
    /// The file.
    pub path: PathBuf,
    /// The index or platform manifest it describes.
    pub subject: Digest,
    /// The platform, when it describes a platform manifest.
    pub platform: Option<String>,
    /// Its media type.
    pub media_type: &'static str,
    /// sha256 of the file.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// `spdx` or `cyclonedx`.
    pub format: Format,
    /// `SPDX-2.3`, `CycloneDX-1.5`, …
    pub version: String,
    /// Packages (SPDX) or components (CycloneDX).
    pub packages: usize,
    /// `pass`, `warn` or `off`.
    pub ntia: NtiaOutcome,
    /// The NTIA minimum elements missing, and where.
    pub ntia_missing: Vec<Missing>,
}

impl VerifyReport {
    /// The report of a verify run.
    pub fn new(images: &[VerifiedImage], sbom_policy: SbomPolicy) -> VerifyReport {
        VerifyReport {
            sbom_policy,
            images: images.iter().map(image).collect(),
        }
    }
}

fn image(i: &VerifiedImage) -> ImageReport {
    ImageReport {
        layout: i.layout.clone(),
        image: i.name(),
        tags: i.tags.clone(),
        digest: i.root.digest.clone(),
        media_type: i.root.media_type.clone(),
        manifests: i.documents.len(),
        blobs: i.blobs.len(),
        blob_bytes: i.blobs.iter().map(|b| b.size).sum(),
        signers: i.signers.clone(),
        attachments: i
            .attachments
            .iter()
            .map(|a| AttachmentReport {
                digest: a.document.digest.clone(),
                subject: a.subject.clone(),
                artifact_type: a.artifact_type.clone(),
                tag: a.tag.clone(),
                summary: a.summary.clone(),
            })
            .collect(),
        sboms: i.sboms.iter().map(|s| sbom(&i.name(), s)).collect(),
    }
}

fn sbom(image: &str, s: &VerifiedSbom) -> SbomReport {
    SbomReport {
        image: image.to_string(),
        path: s.path.clone(),
        subject: s.subject.clone(),
        platform: s.platform.clone(),
        media_type: s.media_type,
        digest: s.digest.clone(),
        size: s.size,
        format: s.summary.format,
        version: s.summary.version.clone(),
        packages: s.summary.packages,
        ntia: s.ntia,
        ntia_missing: s.summary.ntia_missing.clone(),
    }
}

/// Every SBOM of every image, for publish's report.
pub fn sboms(images: &[VerifiedImage]) -> Vec<SbomReport> {
    images
        .iter()
        .flat_map(|i| i.sboms.iter().map(move |s| sbom(&i.name(), s)))
        .collect()
}

/// The human lines for one SBOM: `sbom <what it describes>: <file> <format>, N packages, NTIA …`.
pub fn sbom_line(s: &SbomReport) -> String {
    let what = match &s.platform {
        Some(p) => format!("{p} {}", s.subject),
        None => format!("image {}", s.subject),
    };
    let ntia = match s.ntia {
        NtiaOutcome::Pass => "NTIA complete".to_string(),
        NtiaOutcome::Warn => format!("NTIA incomplete: {}", ntia::describe(&s.ntia_missing)),
        NtiaOutcome::Off => "NTIA not checked".to_string(),
    };
    format!(
        "  sbom {what}: {} ({}, {} packages, {ntia})",
        s.path.display(),
        s.version,
        s.packages
    )
}

/// Warnings to print: one per SBOM whose NTIA elements are incomplete under `warn`.
pub fn warnings(sboms: &[SbomReport]) -> Vec<String> {
    sboms
        .iter()
        .filter(|s| s.ntia == NtiaOutcome::Warn)
        .map(|s| {
            format!(
                "warning: image {}: SBOM {}: NTIA minimum elements missing: {}",
                s.image,
                s.path.display(),
                ntia::describe(&s.ntia_missing)
            )
        })
        .collect()
}
