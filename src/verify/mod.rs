//! Verification: turn what the user asked to publish into verified images, or a clear refusal.
//!
//! Every descriptor reachable from a published root is checked before anything is written: each
//! manifest and index is read (size-capped), hashed, parsed as its media type says and checked to
//! agree with its descriptor; every config and layer blob is checked for presence, size and
//! sha256 (streamed, in parallel, see [`digest`]). Each image's SBOMs are found, validated and
//! bound to its digests, and the [`policy`] applied (see [`sbom`]); its SLSA provenance is held
//! to the image's provenance policy (see [`provenance`]). All failures are collected,
//! so one run tells the user everything that is wrong.

pub mod digest;
pub mod policy;
pub mod provenance;
pub mod referrer;
pub mod sbom;
pub mod signature;
pub mod trust;
pub mod tuf;
pub mod vex;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Problem, VerifyError};
use crate::layout::{DocumentKind, Layout, Root, media};
use crate::progress;
use policy::Policy;
use provenance::{ProvenanceSpec, VerifiedProvenance};
use sbom::VerifiedSbom;
use trust::TrustPolicy;

/// Deepest nesting of indexes we follow (an index of indexes of manifests is depth 2).
const MAX_DEPTH: u32 = 8;

/// A manifest or index, exactly as it will be published.
#[derive(Clone, Debug)]
pub struct Document {
    /// sha256 of `bytes`.
    pub digest: Digest,
    /// Its media type (the descriptor's, equal to the document's own when it has one).
    pub media_type: String,
    /// The exact bytes: never re-serialised.
    pub bytes: Arc<[u8]>,
    /// 0 for a manifest; for an index, one more than its deepest child. Children publish first.
    pub level: u32,
}

/// A config or layer blob, verified on disk.
#[derive(Clone, Debug)]
pub struct Blob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Where it is (resolved, inside its layout).
    pub path: PathBuf,
}

/// One image to verify and publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// The OCI layout directory.
    pub layout: PathBuf,
    /// Repository to publish to, e.g. `chainguard/base` (empty for `verify` without a name).
    pub repository: String,
    /// Tags to publish (may be empty when the layout names its own tags).
    pub tags: Vec<String>,
    /// For layouts that list several named images: which one.
    pub ref_name: Option<String>,
    /// Sidecar Sigstore bundles signing the image's root digest.
    pub bundles: Vec<PathBuf>,
    /// The directory holding its SBOMs (`sboms`); `None` looks beside the layout.
    pub sboms: Option<PathBuf>,
    /// OpenVEX documents to attach to it (`vex`, `--vex`).
    pub vex: Vec<PathBuf>,
    /// Its provenance policy: `[provenance]`, its own `[image.provenance]` and the flags, laid
    /// over each other.
    pub provenance: ProvenanceSpec,
}

/// A manifest published next to an image: an OCI 1.1 referrer of `subject` (a signature,
/// attestation or SBOM artifact), or a legacy cosign `.sig` image under its tag.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// The manifest or index it is about.
    pub subject: Digest,
    /// The attachment's manifest, exactly as published.
    pub document: Document,
    /// Its artifactType, listed in the referrers index.
    pub artifact_type: Option<String>,
    /// Its manifest annotations, listed in the referrers index.
    pub annotations: BTreeMap<String, String>,
    /// A tag instead of a referrers entry (legacy cosign `sha256-<hex>.sig`).
    pub tag: Option<String>,
    /// Small generated blobs it needs (the OCI empty config `{}`).
    pub inline_blobs: Vec<(Digest, Arc<[u8]>)>,
    /// What it is.
    pub kind: AttachmentKind,
    /// What it is and how it was verified, for reports.
    pub summary: String,
}

/// What an attachment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    /// A signature of its subject (cosign sign, legacy `.sig`, a signature bundle).
    Signature,
    /// An in-toto attestation other than an SBOM.
    Attestation,
    /// An SBOM, as a file or as an attestation.
    Sbom,
    /// An OpenVEX document (`--vex`).
    Vex,
    /// Any other artifact found in the layout, published as it is.
    Other,
}

/// An image that passed verification, ready to be planned into a site.
#[derive(Clone, Debug)]
pub struct VerifiedImage {
    /// The layout directory it came from.
    pub layout: PathBuf,
    /// The repository it is published to.
    pub repository: String,
    /// Its tags in that repository.
    pub tags: Vec<String>,
    /// How the layout names it (`index.json` or its ref name).
    pub label: String,
    /// The tagged document.
    pub root: Document,
    /// Every manifest and index reachable from the root, children before parents, root last.
    pub documents: Vec<Document>,
    /// Every config and layer blob, by digest (the attachments' too).
    pub blobs: Vec<Blob>,
    /// Signatures, attestations and SBOMs to publish with it.
    pub attachments: Vec<Attachment>,
    /// Who signed the tagged digest, as verified against the trust policy.
    pub signers: Vec<String>,
    /// Its SBOMs, each bound to the index or platform manifest it describes: files, SBOM
    /// attestations and SBOM artifacts found in the layout alike.
    pub sboms: Vec<VerifiedSbom>,
    /// Its SLSA provenance, verified and judged by its provenance policy.
    pub provenance: Vec<VerifiedProvenance>,
}

impl VerifiedImage {
    /// `repository:tag` (first tag) for messages.
    pub fn name(&self) -> String {
        image_name(&self.repository, &self.tags, &self.label)
    }
}

fn image_name(repository: &str, tags: &[String], label: &str) -> String {
    match (repository.is_empty(), tags.first()) {
        (false, Some(t)) => format!("{repository}:{t}"),
        (false, None) => format!("{repository} ({label})"),
        (true, _) => label.to_string(),
    }
}

/// Verify every image in `specs` completely, every blob hashed. Returns all verified images, or
/// every problem found.
pub fn verify_all(
    specs: &[ImageSpec],
    policy: &Policy,
    trust: Option<&TrustPolicy>,
    mode: progress::Mode,
) -> Result<Vec<VerifiedImage>, Vec<VerifyError>> {
    let images = read_all(specs, policy, trust)?;
    hash_blobs(&images, |_| true, mode)?;
    Ok(images)
}

/// Every check but hashing blob contents: layouts, every manifest and index (read, hashed,
/// parsed, media types), every config and layer blob present inside its layout with its
/// descriptor's size, and SBOMs against `policy`. `publish` then hashes the blobs it sends with
/// [`hash_blobs`]; a blob the target already holds under its digest was checked by the store on
/// upload and is not sent.
///
/// Signatures are verified here too (they are small) against `trust`: see [`signature::check`].
pub fn read_all(
    specs: &[ImageSpec],
    policy: &Policy,
    trust: Option<&TrustPolicy>,
) -> Result<Vec<VerifiedImage>, Vec<VerifyError>> {
    let mut errors = Vec::new();
    let mut images = Vec::new();
    for spec in specs {
        let name = image_name(&spec.repository, &spec.tags, "index.json");
        let layout = match Layout::open(&spec.layout) {
            Ok(l) => l,
            Err(p) => {
                errors.push(p.in_image(&spec.layout, &name));
                continue;
            }
        };
        let selected = match layout.select(spec.ref_name.as_deref(), &spec.tags) {
            Ok(s) => s,
            Err(p) => {
                errors.push(p.in_image(&spec.layout, &name));
                continue;
            }
        };
        let scan = signature::Scan::of(&layout);
        let first = images.len();
        for sel in selected {
            let name = image_name(&spec.repository, &sel.tags, &sel.label);
            match walk(&layout, &sel.root) {
                Ok(((root, documents, mut blobs), missing)) => {
                    errors.extend(missing.into_iter().map(|p| p.in_image(&spec.layout, &name)));
                    let image = signature::Image {
                        root: &root,
                        documents: &documents,
                        sidecars: &spec.bundles,
                    };
                    let signed = signature::check(&layout, &scan, &image, trust, policy.sbom.ntia)
                        .unwrap_or_else(|problems| {
                            let at = |p: Problem| p.in_image(&spec.layout, &name);
                            errors.extend(problems.into_iter().map(at));
                            signature::Signed::default()
                        });
                    blobs.extend(signed.blobs);
                    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
                    blobs.dedup_by(|a, b| a.digest == b.digest);
                    let mut image = VerifiedImage {
                        layout: spec.layout.clone(),
                        repository: spec.repository.clone(),
                        tags: sel.tags,
                        label: sel.label,
                        root,
                        documents,
                        blobs,
                        attachments: signed.attachments,
                        signers: signed.signers,
                        sboms: signed.sboms,
                        provenance: Vec::new(),
                    };
                    match provenance::judge(&image, &spec.provenance, signed.provenances) {
                        Ok(found) => image.provenance = found,
                        Err(problems) => errors.extend(
                            problems
                                .into_iter()
                                .map(|p| p.in_image(&spec.layout, &name)),
                        ),
                    }
                    images.push(image)
                }
                Err(p) => errors.push(p.in_image(&spec.layout, &name)),
            }
        }
        if images.len() > first {
            let found = sbom::attach(
                &mut images[first..],
                &spec.layout,
                spec.sboms.as_deref(),
                &policy.sbom,
            );
            errors.extend(
                found
                    .into_iter()
                    .map(|(name, p)| p.in_image(&spec.layout, &name)),
            );
            for image in &mut images[first..] {
                let sboms = image
                    .sboms
                    .iter()
                    .filter_map(|sbom| referrer::of_sbom(&image.documents, sbom));
                image.attachments.extend(sboms.collect::<Vec<_>>());
                match vex::attach(&spec.vex, &image.root, &image.documents) {
                    Ok(vex) => image.attachments.extend(vex),
                    Err(e) => errors.push(Problem::new(e).in_image(&spec.layout, &image.name())),
                }
            }
        }
    }

    if errors.is_empty() {
        Ok(images)
    } else {
        Err(sorted(errors))
    }
}

/// Hash the blobs `wanted` selects, each file once however many images share it; every
/// mismatch is reported for every image that uses the blob.
pub fn hash_blobs(
    images: &[VerifiedImage],
    wanted: impl Fn(&Blob) -> bool,
    mode: progress::Mode,
) -> Result<(), Vec<VerifyError>> {
    let mut errors = Vec::new();
    let mut users: HashMap<(PathBuf, Digest), Vec<usize>> = HashMap::new();
    let mut unique: Vec<&Blob> = Vec::new();
    for (i, image) in images.iter().enumerate() {
        for blob in image.blobs.iter().filter(|b| wanted(b)) {
            let entry = users.entry((blob.path.clone(), blob.digest.clone()));
            let list = entry.or_insert_with(|| {
                unique.push(blob);
                Vec::new()
            });
            list.push(i);
        }
    }
    for (blob, problem) in digest::check_blobs(&unique, mode) {
        for &i in &users[&(blob.path.clone(), blob.digest.clone())] {
            let image = &images[i];
            errors.push(problem.clone().in_image(&image.layout, &image.name()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(sorted(errors))
    }
}

fn sorted(mut errors: Vec<VerifyError>) -> Vec<VerifyError> {
    errors.sort_by(|a, b| (&a.layout, &a.image).cmp(&(&b.layout, &b.image)));
    errors.dedup();
    errors
}

/// The fields every manifest and index share, read before parsing as a specific type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
}

struct Walk<'a> {
    layout: &'a Layout,
    documents: Vec<Document>,
    levels: HashMap<Digest, u32>,
    blobs: BTreeMap<Digest, Blob>,
    /// Blobs that cannot be opened; reported together with any hash failures.
    unreadable: Vec<Problem>,
}

type Walked = (Document, Vec<Document>, Vec<Blob>);

/// Read and check every document reachable from `root`; collect (unhashed) blobs, and the
/// problems of blobs that cannot be opened at all.
fn walk(layout: &Layout, root: &Root) -> Result<(Walked, Vec<Problem>), Problem> {
    let mut w = Walk {
        layout,
        documents: Vec::new(),
        levels: HashMap::new(),
        blobs: BTreeMap::new(),
        unreadable: Vec::new(),
    };
    match root {
        Root::IndexJson => {
            let bytes = layout.index_bytes();
            let digest = Digest::of_bytes(&bytes);
            let head: Head = serde_json::from_slice(&bytes)
                .map_err(|e| Problem::at(&digest, format!("index.json is not valid JSON: {e}")))?;
            let media_type = head
                .media_type
                .unwrap_or_else(|| media::OCI_INDEX.to_string());
            if DocumentKind::of(&media_type) != Some(DocumentKind::Index) {
                return Err(Problem::at(
                    &digest,
                    format!("index.json has mediaType {media_type:?}, not an image index"),
                ));
            }
            w.visit(digest, media_type, bytes, 0)?;
        }
        Root::Entry(desc) => {
            let (digest, media_type) = describe(desc)?;
            let bytes = layout.read_document(&digest, desc.size())?;
            w.visit(digest, media_type, Arc::from(bytes), 0)?;
        }
    }
    let root = w
        .documents
        .last()
        .cloned()
        .ok_or_else(|| Problem::new("internal: walk produced no root"))?;
    Ok((
        (root, w.documents, w.blobs.into_values().collect()),
        w.unreadable,
    ))
}

/// A descriptor's digest and media type, refusing anything that is not a manifest or index.
fn describe(desc: &Descriptor) -> Result<(Digest, String), Problem> {
    let digest = Digest::parse(desc.digest().as_ref()).map_err(Problem::new)?;
    let media_type = desc.media_type().to_string();
    if DocumentKind::of(&media_type).is_none() {
        return Err(Problem::at(
            &digest,
            format!(
                "unsupported media type {media_type:?} (expected an OCI or Docker v2 manifest or index)"
            ),
        ));
    }
    Ok((digest, media_type))
}

impl Walk<'_> {
    fn visit(
        &mut self,
        digest: Digest,
        media_type: String,
        bytes: Arc<[u8]>,
        depth: u32,
    ) -> Result<u32, Problem> {
        if depth > MAX_DEPTH {
            return Err(Problem::at(
                &digest,
                format!("indexes nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let kind = DocumentKind::of(&media_type).ok_or_else(|| {
            Problem::at(&digest, format!("unsupported media type {media_type:?}"))
        })?;
        let head: Head = serde_json::from_slice(&bytes)
            .map_err(|e| Problem::at(&digest, format!("document is not valid JSON: {e}")))?;
        if let Some(own) = &head.media_type
            && own != &media_type
        {
            return Err(Problem::at(
                &digest,
                format!("descriptor says mediaType {media_type:?} but the document says {own:?}"),
            ));
        }
        if head.schema_version != Some(serde_json::Value::from(2)) {
            return Err(Problem::at(&digest, "schemaVersion is not 2"));
        }
        let level = match kind {
            DocumentKind::Index => {
                let index: ImageIndex = serde_json::from_slice(&bytes)
                    .map_err(|e| Problem::at(&digest, format!("not a valid {media_type}: {e}")))?;
                let mut level = 0;
                for child in index.manifests() {
                    let (child_digest, child_type) = describe(child)?;
                    let child_level = match self.levels.get(&child_digest) {
                        Some(l) => *l,
                        None => {
                            let child_bytes =
                                self.layout.read_document(&child_digest, child.size())?;
                            self.visit(child_digest, child_type, Arc::from(child_bytes), depth + 1)?
                        }
                    };
                    level = level.max(child_level + 1);
                }
                level.max(1)
            }
            DocumentKind::Manifest => {
                let manifest: ImageManifest = serde_json::from_slice(&bytes)
                    .map_err(|e| Problem::at(&digest, format!("not a valid {media_type}: {e}")))?;
                for desc in std::iter::once(manifest.config()).chain(manifest.layers()) {
                    let blob_digest = Digest::parse(desc.digest().as_ref()).map_err(|e| {
                        Problem::at(&digest, format!("manifest refers to a bad digest: {e}"))
                    })?;
                    let path = match self.layout.blob_path(&blob_digest).and_then(|path| {
                        let on_disk = std::fs::metadata(&path)
                            .map_err(|e| {
                                Problem::at(&blob_digest, format!("cannot stat blob: {e}"))
                            })?
                            .len();
                        if on_disk != desc.size() {
                            return Err(Problem::at(
                                &blob_digest,
                                format!(
                                    "size mismatch: descriptor says {} bytes, blob has {on_disk}",
                                    desc.size()
                                ),
                            ));
                        }
                        Ok(path)
                    }) {
                        Ok(path) => path,
                        Err(problem) => {
                            self.unreadable.push(problem);
                            continue;
                        }
                    };
                    self.blobs.insert(
                        blob_digest.clone(),
                        Blob {
                            digest: blob_digest,
                            size: desc.size(),
                            path,
                        },
                    );
                }
                0
            }
        };
        self.levels.insert(digest.clone(), level);
        self.documents.push(Document {
            digest,
            media_type,
            bytes,
            level,
        });
        Ok(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::media;
    use std::fs;
    use std::path::Path;

    fn blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
        let digest = Digest::of_bytes(bytes);
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        (digest.to_string(), bytes.len())
    }

    /// A one-platform apko-shaped layout; `tweak` edits the manifest JSON before it is stored.
    fn layout(dir: &Path, tweak: impl Fn(&mut serde_json::Value)) -> String {
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let (config, config_size) = blob(dir, b"{}");
        let (layer, layer_size) = blob(dir, b"layer bytes");
        let mut manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
        });
        tweak(&mut manifest);
        let (digest, size) = blob(dir, manifest.to_string().as_bytes());
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX,
            "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": digest, "size": size}]});
        fs::write(dir.join("index.json"), index.to_string()).unwrap();
        layer
    }

    fn spec(dir: &Path) -> Vec<ImageSpec> {
        vec![ImageSpec {
            layout: dir.to_path_buf(),
            repository: "r".into(),
            tags: vec!["t".into()],
            ref_name: None,
            bundles: Vec::new(),
            sboms: None,
            vex: Vec::new(),
            provenance: ProvenanceSpec::default(),
        }]
    }

    #[test]
    fn a_good_layout_verifies_children_first() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path(), |_| {});
        let images = verify_all(
            &spec(dir.path()),
            &Policy::default(),
            None,
            progress::Mode::Quiet,
        )
        .unwrap();
        let image = &images[0];
        assert_eq!(image.name(), "r:t");
        assert_eq!(image.documents.len(), 2);
        assert_eq!(image.documents[0].level, 0);
        assert_eq!(image.documents[1].level, 1);
        assert_eq!(image.root.digest, image.documents[1].digest);
        assert_eq!(image.blobs.len(), 2);
    }

    #[test]
    fn read_all_checks_sizes_and_hash_blobs_checks_contents() {
        let dir = tempfile::tempdir().unwrap();
        let layer = layout(dir.path(), |_| {});
        let path = dir
            .path()
            .join("blobs/sha256")
            .join(Digest::parse(&layer).unwrap().hex());
        fs::write(&path, b"LAYER BYTES").unwrap(); // same size, other bytes
        let images = read_all(&spec(dir.path()), &Policy::default(), None).unwrap();
        assert!(
            hash_blobs(
                &images,
                |b| b.digest.as_str() != layer,
                progress::Mode::Quiet
            )
            .is_ok()
        );
        let errors = hash_blobs(&images, |_| true, progress::Mode::Quiet).unwrap_err();
        assert!(errors[0].reason.contains("digest mismatch"), "{errors:?}");
        fs::write(&path, b"short").unwrap();
        let errors = read_all(&spec(dir.path()), &Policy::default(), None).unwrap_err();
        assert!(errors[0].reason.contains("size mismatch"), "{errors:?}");
    }

    #[test]
    fn documents_must_agree_with_their_descriptors() {
        type Tweak = fn(&mut serde_json::Value);
        let cases: [(Tweak, &str); 3] = [
            (
                |m| m["mediaType"] = media::DOCKER_MANIFEST.into(),
                "but the document says",
            ),
            (|m| m["schemaVersion"] = 1.into(), "schemaVersion is not 2"),
            (|m| m["layers"] = "nope".into(), "not a valid"),
        ];
        for (tweak, reason) in cases {
            let dir = tempfile::tempdir().unwrap();
            layout(dir.path(), tweak);
            let errors = read_all(&spec(dir.path()), &Policy::default(), None).unwrap_err();
            assert!(errors[0].reason.contains(reason), "{reason}: {errors:?}");
            assert!(errors[0].digest.is_some());
        }
    }
}
