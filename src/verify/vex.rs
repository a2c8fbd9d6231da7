//! OpenVEX documents (<https://openvex.dev>, v0.2.0): a publisher's word on whether an image is
//! affected by a vulnerability, attached to the image as an OCI referrer.
//!
//! A document given with `--vex FILE` (or `vex` in an `[[image]]`) is read (size-capped),
//! validated — `@context`, `@id`, `author`, `timestamp`, `version`, and each statement's
//! `vulnerability`, `products` and `status`, with the justification, impact or action statement
//! its status calls for — and must be about the image: every statement names, among its
//! products, the image's digest (or one of its platform manifests), as a `pkg:oci` purl or the
//! bare digest. It is then published as an artifact of type `application/openvex+json` whose
//! subject is the image, and [`crate::packages`] files its statements with the packages they
//! name as subcomponents, for `sbom search --json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::referrer::{self, Layer};
use super::{Attachment, AttachmentKind, Document};
use crate::digest::Digest;

/// The artifactType and layer media type of a VEX referrer.
pub const VEX_MEDIA_TYPE: &str = "application/openvex+json";

/// The largest VEX document read.
pub const MAX_VEX_SIZE: u64 = 16 * 1024 * 1024;

const STATUSES: [&str; 4] = ["not_affected", "affected", "fixed", "under_investigation"];

const JUSTIFICATIONS: [&str; 5] = [
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
];

#[derive(Deserialize)]
struct Vex {
    #[serde(rename = "@context")]
    context: String,
    #[serde(rename = "@id")]
    id: String,
    author: String,
    timestamp: String,
    version: u64,
    statements: Vec<RawStatement>,
}

#[derive(Deserialize)]
struct RawStatement {
    vulnerability: Vulnerability,
    #[serde(default)]
    products: Vec<Product>,
    status: String,
    justification: Option<String>,
    impact_statement: Option<String>,
    action_statement: Option<String>,
}

#[derive(Deserialize)]
struct Vulnerability {
    name: Option<String>,
    #[serde(rename = "@id")]
    id: Option<String>,
}

#[derive(Deserialize)]
struct Product {
    #[serde(rename = "@id")]
    id: Option<String>,
    identifiers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    subcomponents: Vec<Product>,
}

impl Product {
    /// Its `@id` and identifiers (`purl`, `cpe23`, …).
    fn names(&self) -> impl Iterator<Item = &str> {
        self.id.as_deref().into_iter().chain(
            self.identifiers
                .iter()
                .flat_map(|m| m.values().map(String::as_str)),
        )
    }
}

/// One statement, as the package index keeps it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Statement {
    /// The vulnerability's name (`CVE-2024-1234`), or its `@id`.
    pub vulnerability: String,
    /// `not_affected`, `affected`, `fixed` or `under_investigation`.
    pub status: String,
    /// Why not affected, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// The purls (or ids) of the subcomponents it is about; empty: the image as a whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcomponents: Vec<String>,
    /// The VEX document's digest.
    pub document: String,
}

/// A VEX document that passed validation and names its image.
#[derive(Clone, Debug)]
pub struct VerifiedVex {
    /// sha256 of its bytes.
    pub digest: Digest,
    /// Its statements.
    pub statements: Vec<Statement>,
}

/// Validate the OpenVEX `bytes` (named `origin` in errors) and check that every statement
/// names one of `digests` (the image's root and platform manifests) among its products.
pub fn check(bytes: &[u8], origin: &str, digests: &[Digest]) -> Result<VerifiedVex, String> {
    if bytes.len() as u64 > MAX_VEX_SIZE {
        return Err(format!(
            "VEX {origin}: {} bytes is more than the {} MiB a VEX document may have",
            bytes.len(),
            MAX_VEX_SIZE >> 20
        ));
    }
    let vex: Vex = serde_json::from_slice(bytes)
        .map_err(|e| format!("VEX {origin}: not an OpenVEX document: {e}"))?;
    let mut problems = Vec::new();
    if !vex.context.starts_with("https://openvex.dev/ns") {
        problems.push(format!(
            "@context {:?} is not OpenVEX (https://openvex.dev/ns/v0.2.0)",
            vex.context
        ));
    }
    for (field, value) in [("@id", &vex.id), ("author", &vex.author)] {
        if value.trim().is_empty() {
            problems.push(format!("{field} is empty"));
        }
    }
    if jiff::Timestamp::from_str(&vex.timestamp).is_err() {
        problems.push(format!(
            "timestamp {:?} is not an RFC 3339 time",
            vex.timestamp
        ));
    }
    if vex.version == 0 {
        problems.push("version must be 1 or more".to_string());
    }
    if vex.statements.is_empty() {
        problems.push("no statements".to_string());
    }
    let digest = Digest::of_bytes(bytes);
    let mut statements = Vec::new();
    for (i, s) in vex.statements.iter().enumerate() {
        let at = format!("statements[{i}]");
        let Some(vulnerability) = s.vulnerability.name.clone().or(s.vulnerability.id.clone())
        else {
            problems.push(format!("{at}: the vulnerability has no name or @id"));
            continue;
        };
        if !STATUSES.contains(&s.status.as_str()) {
            problems.push(format!(
                "{at}: status {:?} is not one of {}",
                s.status,
                STATUSES.join(", ")
            ));
        }
        match s.status.as_str() {
            "not_affected" if s.justification.is_none() && s.impact_statement.is_none() => problems
                .push(format!(
                    "{at}: not_affected needs a justification or an impact_statement"
                )),
            "affected" if s.action_statement.is_none() => {
                problems.push(format!("{at}: affected needs an action_statement"))
            }
            _ => {}
        }
        if let Some(j) = &s.justification
            && !JUSTIFICATIONS.contains(&j.as_str())
        {
            problems.push(format!("{at}: justification {j:?} is not an OpenVEX one"));
        }
        let ours: Vec<&Product> = s
            .products
            .iter()
            .filter(|p| names_image(p, digests))
            .collect();
        if ours.is_empty() {
            problems.push(format!(
                "{at}: no product names this image ({}): give its digest or its pkg:oci purl",
                digests.first().map(Digest::as_str).unwrap_or_default()
            ));
        }
        let subcomponents = ours
            .iter()
            .flat_map(|p| &p.subcomponents)
            .flat_map(|c| c.names().next())
            .map(str::to_string)
            .collect();
        statements.push(Statement {
            vulnerability,
            status: s.status.clone(),
            justification: s.justification.clone(),
            subcomponents,
            document: digest.to_string(),
        });
    }
    if !problems.is_empty() {
        return Err(format!("VEX {origin}: {}", problems.join("; ")));
    }
    Ok(VerifiedVex { digest, statements })
}

/// Whether a product names one of `digests`: as the bare digest, or a `pkg:oci` purl whose
/// version is it (percent-encoded or not).
fn names_image(product: &Product, digests: &[Digest]) -> bool {
    product.names().any(|name| {
        let named = match name.strip_prefix("pkg:oci/") {
            Some(_) => packageurl::PackageUrl::from_str(name)
                .ok()
                .and_then(|p| p.version().map(str::to_string)),
            None => Some(name.to_string()),
        };
        named
            .and_then(|d| Digest::parse(&d).ok())
            .is_some_and(|d| digests.contains(&d))
    })
}

/// Read, validate and attach each of `files` to `root` (whose `documents` are the image's
/// manifests): the referrers to publish.
pub fn attach(
    files: &[impl AsRef<Path>],
    root: &Document,
    documents: &[Document],
) -> Result<Vec<Attachment>, String> {
    let digests: Vec<Digest> = std::iter::once(root.digest.clone())
        .chain(documents.iter().map(|d| d.digest.clone()))
        .collect();
    let mut out = Vec::new();
    for file in files {
        let path = file.as_ref();
        let origin = path.display().to_string();
        let bytes = read_capped(path).map_err(|e| format!("VEX {origin}: {e}"))?;
        let vex = check(&bytes, &origin, &digests)?;
        let mut annotations = BTreeMap::new();
        if let Some(name) = path.file_name() {
            annotations.insert(
                "org.opencontainers.image.title".to_string(),
                name.to_string_lossy().into_owned(),
            );
        }
        let layer = Layer {
            media_type: VEX_MEDIA_TYPE,
            digest: &vex.digest,
            size: bytes.len() as u64,
        };
        let summary = format!("VEX, {} statements", vex.statements.len());
        let mut attachment =
            referrer::artifact(root, layer, annotations, AttachmentKind::Vex, summary);
        attachment
            .inline_blobs
            .push((vex.digest.clone(), std::sync::Arc::from(bytes)));
        out.push(attachment);
    }
    Ok(out)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_VEX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(bytes)
}

/// The statements of the VEX referrers among `attachments` (bytes as validated).
pub fn statements(attachments: &[Attachment]) -> Vec<Statement> {
    attachments
        .iter()
        .filter(|a| a.kind == AttachmentKind::Vex)
        .flat_map(|a| &a.inline_blobs)
        .filter_map(|(_, bytes)| parse_statements(bytes))
        .flatten()
        .collect()
}

/// The statements of VEX bytes already validated (`None` if they are not OpenVEX).
pub fn parse_statements(bytes: &[u8]) -> Option<Vec<Statement>> {
    let vex: Vex = serde_json::from_slice(bytes).ok()?;
    let digest = Digest::of_bytes(bytes).to_string();
    Some(
        vex.statements
            .into_iter()
            .filter_map(|s| {
                Some(Statement {
                    vulnerability: s.vulnerability.name.or(s.vulnerability.id)?,
                    status: s.status,
                    justification: s.justification,
                    subcomponents: s
                        .products
                        .iter()
                        .flat_map(|p| &p.subcomponents)
                        .flat_map(|c| c.names().next())
                        .map(str::to_string)
                        .collect(),
                    document: digest.clone(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGE: &str = "sha256:b5f05e6fc882c97d61c1daee566954ae6fc09924f8e152293e2b97a06092069f";

    fn doc(statements: serde_json::Value) -> Vec<u8> {
        json!({
            "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1",
            "author": "Acme security", "timestamp": "2026-12-01T00:00:00Z", "version": 1,
            "statements": statements,
        })
        .to_string()
        .into_bytes()
    }

    fn digests() -> Vec<Digest> {
        vec![Digest::parse(IMAGE).unwrap()]
    }

    #[test]
    fn a_statement_about_the_image_and_a_subcomponent_is_kept() {
        let bytes = doc(json!([{
            "vulnerability": {"name": "CVE-2024-0001"},
            "products": [{"@id": format!("pkg:oci/golden@sha256%3A{}", &IMAGE[7..]),
                          "subcomponents": [{"@id": "pkg:apk/wolfi/busybox@1.36.1-r2"}]}],
            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
        }]));
        let vex = check(&bytes, "v.json", &digests()).unwrap();
        assert_eq!(vex.statements.len(), 1);
        assert_eq!(vex.statements[0].status, "not_affected");
        assert_eq!(
            vex.statements[0].subcomponents,
            ["pkg:apk/wolfi/busybox@1.36.1-r2"]
        );
        assert_eq!(parse_statements(&bytes).unwrap(), vex.statements);
    }

    #[test]
    fn bad_documents_are_refused_with_every_reason() {
        let bytes = doc(json!([
            {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": IMAGE}], "status": "maybe"},
            {"vulnerability": {"name": "CVE-2"}, "products": [{"@id": IMAGE}], "status": "not_affected"},
            {"vulnerability": {"name": "CVE-3"}, "products": [{"@id": "pkg:oci/x@sha256:0000000000000000000000000000000000000000000000000000000000000000"}], "status": "fixed"},
        ]));
        let e = check(&bytes, "v.json", &digests()).unwrap_err();
        assert!(e.starts_with("VEX v.json: "), "{e}");
        assert!(e.contains("statements[0]: status \"maybe\""), "{e}");
        assert!(e.contains("statements[1]: not_affected needs"), "{e}");
        assert!(
            e.contains("statements[2]: no product names this image"),
            "{e}"
        );
        let e = check(b"{\"@context\": 1}", "w.json", &digests()).unwrap_err();
        assert!(e.starts_with("VEX w.json: not an OpenVEX document"), "{e}");
    }
}
