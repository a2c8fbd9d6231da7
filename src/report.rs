//! What a run tells its user about the images it verified: per image, its digest, platforms,
//! contents, signers and SLSA provenance (builder, source, ref, revision, build type,
//! invocation) and, per SBOM, what it describes, its packages and its NTIA result with the
//! elements missing where. One shape for the JSON of `verify --report`, the `images` and
//! `sboms` of publish's report, publish events and the human lines, so all of them say the same
//! thing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use oci_spec::image::ImageManifest;
use serde::Serialize;

use crate::digest::Digest;
use crate::layout::DocumentKind;
use crate::site;
use crate::sync::Change;
use crate::verify::policy::SbomPolicy;
use crate::verify::provenance::VerifiedProvenance;
use crate::verify::sbom::{Format, Missing, NtiaOutcome, VerifiedSbom, bind, ntia};
use crate::verify::{AttachmentKind, VerifiedImage};

/// The most of an image config read to learn a single-platform image's platform.
const MAX_CONFIG_READ: u64 = 1024 * 1024;

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
    /// The repository it is published to (empty for `verify` without a name).
    pub repository: String,
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
    /// Bytes of its manifests and indexes.
    pub manifest_bytes: u64,
    /// Its platforms (`linux/amd64`, `linux/arm/v7`): of each manifest an index lists, or of
    /// the image config for a single manifest.
    pub platforms: Vec<String>,
    /// Who signed its tagged digest (verified signatures).
    pub signers: Vec<String>,
    /// Signatures, attestations and other artifacts published with it.
    pub attachments: Vec<AttachmentReport>,
    /// Its SBOMs.
    pub sboms: Vec<SbomReport>,
    /// OpenVEX documents attached to it (`--vex`, `vex`), among the attachments.
    pub vex: usize,
    /// Its SLSA provenance: who built it from what, and who signed that.
    pub provenance: Vec<VerifiedProvenance>,
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
    /// `signature`, `attestation`, `sbom`, `vex` or `other`.
    pub kind: AttachmentKind,
    /// What it is and how it was verified.
    pub summary: String,
}

/// One SBOM of an image.
#[derive(Clone, Debug, Serialize)]
pub struct SbomReport {
    /// `repository:tag` of the image it belongs to.
    pub image: String,
    /// Where it came from: the file's path, `attestation sha256:…` (an SBOM attestation's
    /// manifest) or `referrer sha256:…` (an SBOM artifact already in the layout).
    pub origin: String,
    /// The file, for an SBOM file.
    pub path: Option<PathBuf>,
    /// The index or platform manifest it describes.
    pub subject: Digest,
    /// The platform, when it describes a platform manifest.
    pub platform: Option<String>,
    /// Its media type.
    pub media_type: &'static str,
    /// sha256 of the document (an attestation's: of its predicate).
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
        repository: i.repository.clone(),
        tags: i.tags.clone(),
        digest: i.root.digest.clone(),
        media_type: i.root.media_type.clone(),
        manifests: i.documents.len(),
        blobs: i.blobs.len(),
        blob_bytes: i.blobs.iter().map(|b| b.size).sum(),
        manifest_bytes: i.documents.iter().map(|d| d.bytes.len() as u64).sum(),
        platforms: platforms(i),
        signers: i.signers.clone(),
        attachments: i
            .attachments
            .iter()
            .map(|a| AttachmentReport {
                digest: a.document.digest.clone(),
                subject: a.subject.clone(),
                artifact_type: a.artifact_type.clone(),
                tag: a.tag.clone(),
                kind: a.kind,
                summary: a.summary.clone(),
            })
            .collect(),
        sboms: i.sboms.iter().map(|s| sbom(&i.name(), s)).collect(),
        vex: i
            .attachments
            .iter()
            .filter(|a| a.kind == AttachmentKind::Vex)
            .count(),
        provenance: i.provenance.clone(),
    }
}

/// The platforms of an image: from its index's descriptors, or from the config of a single
/// manifest (`os`, `architecture`, `variant`). Empty when the config does not say.
fn platforms(i: &VerifiedImage) -> Vec<String> {
    if DocumentKind::of(&i.root.media_type) == Some(DocumentKind::Index) {
        return bind::subjects(i)
            .into_iter()
            .filter_map(|s| s.platform.map(|p| p.to_string()))
            .collect();
    }
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&i.root.bytes) else {
        return Vec::new();
    };
    let config = manifest.config().digest().to_string();
    let Some(blob) = i.blobs.iter().find(|b| b.digest.as_str() == config) else {
        return Vec::new();
    };
    #[derive(serde::Deserialize)]
    struct Config {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let read = std::fs::File::open(&blob.path).and_then(|f| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_CONFIG_READ), &mut bytes)
            .map(|_| bytes)
    });
    match read
        .ok()
        .and_then(|b| serde_json::from_slice::<Config>(&b).ok())
    {
        Some(Config {
            os: Some(os),
            architecture: Some(arch),
            variant,
        }) => vec![match variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        }],
        _ => Vec::new(),
    }
}

fn sbom(image: &str, s: &VerifiedSbom) -> SbomReport {
    SbomReport {
        image: image.to_string(),
        origin: s.origin.to_string(),
        path: s.origin.path().map(PathBuf::from),
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

/// One image of a publish: what `verify --report` says of it, and what the run did with it.
#[derive(Clone, Debug, Serialize)]
pub struct PublishedImage {
    /// The image, as verified.
    #[serde(flatten)]
    pub image: ImageReport,
    /// Its tags that this run created or moved (a dry run: would); the others were in place.
    pub tags_changed: Vec<String>,
    /// Of its objects in the target (blobs, manifests by digest, signatures, its tags), those
    /// written (a dry run: to write).
    pub objects_to_write: u64,
    /// Bytes uploaded for them (server-side copies send none).
    pub bytes_to_write: u64,
    /// Its objects already in place.
    pub objects_unchanged: u64,
}

/// Every image of a publish with its share of `changes`. An object counts for an image when it
/// is under the image's repository and holds one of its digests (a tag holds its root's), so
/// a blob two images share counts for both; lists (tags, referrers, catalog) count for none.
pub fn published(images: &[VerifiedImage], changes: &[Change]) -> Vec<PublishedImage> {
    // The changes by repository and digest, in plan order: each image looks up its own (every
    // image scanning every change is quadratic in a whole catalog).
    let mut by_repository: HashMap<(&str, &Digest), Vec<(usize, &Change)>> = HashMap::new();
    for (n, c) in changes.iter().enumerate() {
        let key = c.object.key.as_str();
        let repository = site::parse_content_key(key)
            .map(|(repo, _, _)| repo)
            .or_else(|| site::parse_tag_key(key).map(|(repo, _)| repo));
        if let Some(repository) = repository {
            by_repository
                .entry((repository, &c.object.sha256))
                .or_default()
                .push((n, c));
        }
    }
    images
        .iter()
        .map(|i| {
            let mut digests: HashSet<&Digest> = HashSet::new();
            digests.extend(i.documents.iter().map(|d| &d.digest));
            digests.extend(i.blobs.iter().map(|b| &b.digest));
            for a in &i.attachments {
                digests.insert(&a.document.digest);
                digests.extend(a.inline_blobs.iter().map(|(d, _)| d));
            }
            let mut mine: Vec<(usize, &Change)> = digests
                .iter()
                .filter_map(|d| by_repository.get(&(i.repository.as_str(), *d)))
                .flatten()
                .copied()
                .collect();
            // Plan order (the order of `changes`), whatever the set's.
            mine.sort_by_key(|(n, _)| *n);
            let mut out = PublishedImage {
                image: image(i),
                tags_changed: Vec::new(),
                objects_to_write: 0,
                bytes_to_write: 0,
                objects_unchanged: 0,
            };
            for (_, c) in mine {
                if !c.write {
                    out.objects_unchanged += 1;
                    continue;
                }
                out.objects_to_write += 1;
                if c.copy_from.is_none() {
                    out.bytes_to_write += c.object.size;
                }
                if let Some((_, tag)) = site::parse_tag_key(&c.object.key)
                    && i.tags.iter().any(|t| t == tag)
                {
                    out.tags_changed.push(tag.to_string());
                }
            }
            out
        })
        .collect()
}

/// The human lines for one SBOM: `sbom <what it describes>: <origin> <format>, N packages, NTIA …`.
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
        s.origin, s.version, s.packages
    )
}

/// The human line for one provenance: `provenance <source>@<ref> (<revision>) built by
/// <builder>, signed by <signer>`.
pub fn provenance_line(p: &VerifiedProvenance) -> String {
    let c = &p.claim;
    let source = c
        .source_repository
        .as_deref()
        .unwrap_or("an unnamed source");
    let at = c
        .source_ref
        .as_deref()
        .map(|r| format!("@{r}"))
        .unwrap_or_default();
    let revision = c
        .revision
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let signer = p
        .signer
        .as_deref()
        .unwrap_or("nobody verified (no signers in the policy)");
    format!(
        "  provenance {source}{at}{revision} built by {}, signed by {signer}",
        c.builder_id
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
                s.origin,
                ntia::describe(&s.ntia_missing)
            )
        })
        .collect()
}
