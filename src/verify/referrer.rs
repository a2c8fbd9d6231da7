//! OCI 1.1 artifact manifests that regpress writes itself, for things that arrive as files
//! rather than as manifests in the layout: sidecar signature bundles and apko's SBOM files.
//! Each becomes a referrer of its subject, shaped as cosign v3 and ORAS write them: the empty
//! config, one layer holding the file byte for byte, `artifactType` naming what it is.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::sbom::VerifiedSbom;
use super::{Attachment, AttachmentKind, Document};
use crate::digest::Digest;
use crate::layout::media;

/// The OCI empty descriptor's media type; its content is `{}`.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";

/// The one file an artifact carries.
pub struct Layer<'a> {
    /// Its media type (also the artifact's type).
    pub media_type: &'a str,
    /// sha256 of its bytes.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
}

/// An artifact manifest for `layer` referring to `subject`, with `annotations` (listed in the
/// referrers index too). Deterministic: the same input gives the same digest, so re-publishing
/// writes nothing.
pub fn artifact(
    subject: &Document,
    layer: Layer<'_>,
    annotations: BTreeMap<String, String>,
    kind: AttachmentKind,
    summary: String,
) -> Attachment {
    let empty = Digest::of_bytes(EMPTY_JSON);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": layer.media_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": empty.as_str(),
            "size": EMPTY_JSON.len(),
            "data": BASE64.encode(EMPTY_JSON),
        },
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest.as_str(), "size": layer.size}],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest.as_str(),
            "size": subject.bytes.len(),
        },
        "annotations": annotations,
    });
    let bytes = manifest.to_string().into_bytes();
    Attachment {
        subject: subject.digest.clone(),
        document: Document {
            digest: Digest::of_bytes(&bytes),
            media_type: media::OCI_MANIFEST.to_string(),
            bytes: Arc::from(bytes),
            level: 0,
        },
        artifact_type: Some(layer.media_type.to_string()),
        annotations,
        tag: None,
        inline_blobs: vec![(empty, Arc::from(EMPTY_JSON))],
        kind,
        summary,
    }
}

/// The referrer publishing a verified SBOM file next to the manifest it describes: its
/// verified bytes as the layer, the file name as `org.opencontainers.image.title`. None for an
/// SBOM that came as a referrer or an attestation: that one is published as it came.
pub fn of_sbom(documents: &[Document], sbom: &VerifiedSbom) -> Option<Attachment> {
    let path = sbom.origin.path()?;
    let subject = documents.iter().find(|d| d.digest == sbom.subject)?;
    let mut annotations = BTreeMap::new();
    if let Some(name) = path.file_name() {
        annotations.insert(
            "org.opencontainers.image.title".to_string(),
            name.to_string_lossy().into_owned(),
        );
    }
    let summary = format!(
        "SBOM {}, {} packages",
        sbom.summary.version, sbom.summary.packages
    );
    let layer = Layer {
        media_type: sbom.media_type,
        digest: &sbom.digest,
        size: sbom.size,
    };
    let mut attachment = artifact(subject, layer, annotations, AttachmentKind::Sbom, summary);
    attachment
        .inline_blobs
        .push((sbom.digest.clone(), sbom.bytes.clone()));
    Some(attachment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_deterministic_referrers_of_their_subject() {
        let subject = Document {
            digest: Digest::of_bytes(b"index"),
            media_type: media::OCI_INDEX.to_string(),
            bytes: Arc::from(&b"index"[..]),
            level: 1,
        };
        let file = Digest::of_bytes(b"sbom");
        let make = || {
            artifact(
                &subject,
                Layer {
                    media_type: "application/spdx+json",
                    digest: &file,
                    size: 4,
                },
                BTreeMap::new(),
                AttachmentKind::Sbom,
                String::new(),
            )
        };
        let a = make();
        assert_eq!(a.document.digest, make().document.digest);
        let json: serde_json::Value = serde_json::from_slice(&a.document.bytes).unwrap();
        assert_eq!(json["subject"]["digest"], subject.digest.as_str());
        assert_eq!(json["subject"]["size"], 5);
        assert_eq!(json["artifactType"], "application/spdx+json");
        assert_eq!(json["layers"][0]["digest"], file.as_str());
        assert_eq!(json["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(a.inline_blobs[0].0, Digest::of_bytes(b"{}"));
    }
}
