//! CycloneDX 1.4–1.6 JSON documents: the official schema for the document's `specVersion`, then
//! what the schema cannot say — unique `bom-ref`s, `dependencies` naming components that exist
//! — and what the BOM describes (`metadata.component`: its SHA-256 hash and `pkg:oci` purl).

use std::collections::{BTreeSet, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::schema::{Schema, SchemaError};
use super::{Checked, Findings, PurlError, findings, ntia, oci_purl_digest};
use crate::digest::Digest;

/// Why a document is not a valid CycloneDX BOM.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CycloneDxError {
    /// A `specVersion` other than 1.4, 1.5 or 1.6.
    #[error("CycloneDX specVersion {version:?} is not supported (expected 1.4, 1.5 or 1.6)")]
    Unsupported {
        /// The version it says.
        version: String,
    },
    /// It breaks the schema of its version.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// It passes the schema but does not read as a BOM (a type the schema leaves open).
    #[error("not a valid CycloneDX document: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// What the schema cannot say is wrong.
    #[error("{0}")]
    Findings(Findings<Finding>),
    /// The described component's SHA-256 hash is not a digest.
    #[error("metadata.component: SHA-256 hash: {reason}")]
    Hash {
        /// Why the digest was refused.
        reason: String,
    },
    /// The described component's `pkg:oci` purl names no digest.
    #[error("metadata.component: {0}")]
    Purl(PurlError),
    /// The described component's hash and purl name different digests.
    #[error(
        "{} in metadata.component: its SHA-256 hash and its pkg:oci purl ({purl}) name different \
         digests",
        label_of(name, bom_ref.as_deref())
    )]
    DigestsDisagree {
        /// The component's name.
        name: String,
        /// Its bom-ref.
        bom_ref: Option<String>,
        /// The digest its purl names (its hashes name others).
        purl: Digest,
    },
}

/// One thing wrong with a BOM that its schema cannot say.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    /// Two components or services share a bom-ref.
    #[error("bom-ref {bom_ref:?} is used more than once")]
    DuplicateRef {
        /// The bom-ref.
        bom_ref: String,
    },
    /// `dependencies` names a bom-ref no component or service has.
    #[error("dependencies: {bom_ref:?} is not the bom-ref of a component or service of this BOM")]
    UnknownDependency {
        /// The bom-ref named.
        bom_ref: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    spec_version: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    components: Vec<Component>,
    #[serde(default)]
    services: Vec<Service>,
    #[serde(default)]
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    timestamp: Option<String>,
    #[serde(default)]
    authors: Vec<Contact>,
    component: Option<Component>,
    /// 1.4 and 1.5; `manufacturer` from 1.6.
    manufacture: Option<Entity>,
    manufacturer: Option<Entity>,
    supplier: Option<Entity>,
}

#[derive(Deserialize)]
struct Contact {
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct Entity {
    name: Option<String>,
    #[serde(default)]
    url: Vec<String>,
}

impl Entity {
    fn named(&self) -> bool {
        ntia::asserted(self.name.as_deref()) || self.url.iter().any(|u| !u.trim().is_empty())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    name: String,
    version: Option<String>,
    #[serde(rename = "bom-ref")]
    bom_ref: Option<String>,
    supplier: Option<Entity>,
    manufacturer: Option<Entity>,
    publisher: Option<String>,
    purl: Option<String>,
    cpe: Option<String>,
    swid: Option<Swid>,
    #[serde(default)]
    omnibor_id: Vec<String>,
    #[serde(default)]
    swhid: Vec<String>,
    #[serde(default)]
    hashes: Vec<Hash>,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Swid {
    tag_id: String,
}

#[derive(Deserialize)]
struct Hash {
    alg: String,
    content: String,
}

#[derive(Deserialize)]
struct Service {
    #[serde(rename = "bom-ref")]
    bom_ref: Option<String>,
    #[serde(default)]
    services: Vec<Service>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// Validate a CycloneDX JSON document (already parsed) and say what it describes.
pub fn check(value: Value) -> Result<Checked, CycloneDxError> {
    let version = value
        .get("specVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let schema = Schema::cyclonedx(version).ok_or_else(|| CycloneDxError::Unsupported {
        version: version.to_string(),
    })?;
    schema.check(&value)?;
    let bom = Bom::deserialize(&value).map_err(|e| CycloneDxError::Malformed {
        reason: e.to_string(),
    })?;

    let mut components = Vec::new();
    flatten(&bom.components, &mut components);
    let mut errors = Vec::new();
    let refs = check_refs(&bom, &components, &mut errors);
    for d in &bom.dependencies {
        for r in std::iter::once(&d.reference).chain(&d.depends_on) {
            if !refs.contains(r.as_str()) {
                errors.push(Finding::UnknownDependency { bom_ref: r.clone() });
            }
        }
    }
    findings(errors).map_err(CycloneDxError::Findings)?;

    let describes = match &bom.metadata.component {
        Some(c) => component_digests(c)?,
        None => BTreeSet::new(),
    };
    Ok(Checked {
        version: format!("CycloneDX-{}", bom.spec_version),
        packages: components.len(),
        describes: describes.into_iter().collect(),
        inventory: inventory(&bom, &components),
    })
}

/// The components a valid BOM lists, nested ones included, for the package index: all but the
/// described one (the image) and `pkg:oci` ones (its layers); `None` when the value is not a
/// BOM (already validated, so only for a caller's mistake).
pub fn packages(value: &Value) -> Option<Vec<super::Package>> {
    let bom = Bom::deserialize(value).ok()?;
    let mut components = Vec::new();
    flatten(&bom.components, &mut components);
    let packages = components
        .into_iter()
        .filter_map(|c| super::Package::ingredient(&c.name, c.version.as_deref(), c.purl.clone()));
    Some(packages.collect())
}

/// Every component, nested ones included, in document order.
fn flatten<'a>(components: &'a [Component], out: &mut Vec<&'a Component>) {
    for c in components {
        out.push(c);
        flatten(&c.components, out);
    }
}

/// Every `bom-ref` must be unique; return them all.
fn check_refs<'a>(
    bom: &'a Bom,
    components: &[&'a Component],
    errors: &mut Vec<Finding>,
) -> HashSet<&'a str> {
    fn services<'a>(list: &'a [Service], out: &mut Vec<&'a str>) {
        for s in list {
            out.extend(s.bom_ref.as_deref());
            services(&s.services, out);
        }
    }
    let mut all: Vec<&str> = bom
        .metadata
        .component
        .iter()
        .chain(components.iter().copied())
        .filter_map(|c| c.bom_ref.as_deref())
        .collect();
    services(&bom.services, &mut all);
    let mut seen = HashSet::new();
    for r in all {
        if !seen.insert(r) {
            errors.push(Finding::DuplicateRef {
                bom_ref: r.to_string(),
            });
        }
    }
    seen
}

fn label(c: &Component) -> String {
    label_of(&c.name, c.bom_ref.as_deref())
}

fn label_of(name: &str, bom_ref: Option<&str>) -> String {
    match bom_ref {
        Some(r) => format!("component {name:?} ({r})"),
        None => format!("component {name:?}"),
    }
}

/// The sha256 digests the described component names: its SHA-256 hash and `pkg:oci` purl,
/// which must agree when both are present.
fn component_digests(c: &Component) -> Result<BTreeSet<Digest>, CycloneDxError> {
    let mut hashes = BTreeSet::new();
    for h in c.hashes.iter().filter(|h| h.alg == "SHA-256") {
        let hex = h.content.to_ascii_lowercase();
        let digest = Digest::parse(&format!("sha256:{hex}")).map_err(|e| CycloneDxError::Hash {
            reason: e.to_string(),
        })?;
        hashes.insert(digest);
    }
    let purl = match c.purl.as_deref() {
        Some(p) => oci_purl_digest(p).map_err(CycloneDxError::Purl)?,
        None => None,
    };
    if let Some(p) = &purl
        && !hashes.is_empty()
        && !hashes.contains(p)
    {
        return Err(CycloneDxError::DigestsDisagree {
            name: c.name.clone(),
            bom_ref: c.bom_ref.clone(),
            purl: p.clone(),
        });
    }
    hashes.extend(purl);
    Ok(hashes)
}

fn inventory(bom: &Bom, components: &[&Component]) -> ntia::Inventory {
    let m = &bom.metadata;
    let described = m.component.as_ref();
    let entry = |c: &Component| ntia::Component {
        label: label(c),
        name: !c.name.trim().is_empty(),
        version: ntia::asserted(c.version.as_deref()),
        supplier: [&c.supplier, &c.manufacturer]
            .into_iter()
            .flatten()
            .any(Entity::named)
            || ntia::asserted(c.publisher.as_deref()),
        identifier: [&c.purl, &c.cpe]
            .into_iter()
            .any(|id| ntia::asserted(id.as_deref()))
            || c.swid.as_ref().is_some_and(|s| !s.tag_id.is_empty())
            || !c.omnibor_id.is_empty()
            || !c.swhid.is_empty(),
    };
    let root_ref = described.and_then(|c| c.bom_ref.as_deref());
    let relates = bom
        .dependencies
        .iter()
        .any(|d| Some(d.reference.as_str()) == root_ref && !d.depends_on.is_empty());
    ntia::Inventory {
        components: described
            .into_iter()
            .chain(components.iter().copied())
            .map(entry)
            .collect(),
        author: m
            .authors
            .iter()
            .any(|a| ntia::asserted(a.name.as_deref()) || ntia::asserted(a.email.as_deref()))
            || [&m.manufacture, &m.manufacturer, &m.supplier]
                .into_iter()
                .flatten()
                .any(Entity::named),
        timestamp: m.timestamp.is_some(),
        dependencies: described.is_some() && (components.is_empty() || relates),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INDEX: &str = "b5f05e6fc882c97d61c1daee566954ae6fc09924f8e152293e2b97a06092069f";

    /// A complete CycloneDX BOM of the golden image index.
    fn bom(version: &str) -> Value {
        json!({
            "bomFormat": "CycloneDX", "specVersion": version, "version": 1,
            "serialNumber": "urn:uuid:9b0c2427-be94-439c-82e5-8928db124270",
            "metadata": {
                "timestamp": "2024-05-01T10:00:00Z",
                "authors": [{"name": "Build team"}],
                "component": {
                    "type": "container", "bom-ref": "image", "name": "golden", "version": "1.0",
                    "supplier": {"name": "Chainguard"},
                    "purl": format!("pkg:oci/golden@sha256%3A{INDEX}"),
                    "hashes": [{"alg": "SHA-256", "content": INDEX}]
                }
            },
            "components": [{
                "type": "library", "bom-ref": "busybox", "name": "busybox", "version": "1.36.1-r0",
                "supplier": {"name": "Wolfi"}, "purl": "pkg:apk/wolfi/busybox@1.36.1-r0?arch=x86_64",
                "components": [{"type": "file", "bom-ref": "sh", "name": "sh", "version": "1",
                    "supplier": {"name": "Wolfi"}, "cpe": "cpe:2.3:a:busybox:busybox:1.36.1:*:*:*:*:*:*:*"}]
            }],
            "dependencies": [{"ref": "image", "dependsOn": ["busybox"]}, {"ref": "busybox", "dependsOn": ["sh"]}]
        })
    }

    #[test]
    fn versions_1_4_to_1_6_describe_their_component() {
        for v in ["1.4", "1.5", "1.6"] {
            let checked = check(bom(v)).unwrap();
            assert_eq!(checked.version, format!("CycloneDX-{v}"));
            assert_eq!(checked.packages, 2);
            assert_eq!(
                checked.describes,
                [Digest::parse(&format!("sha256:{INDEX}")).unwrap()]
            );
            assert!(ntia::missing(&checked.inventory).is_empty(), "{v}");
        }
        let mut old = bom("1.3");
        old["specVersion"] = json!("1.3");
        let e = check(old).unwrap_err();
        assert_eq!(
            e,
            CycloneDxError::Unsupported {
                version: "1.3".into()
            }
        );
        assert!(e.to_string().contains("1.4, 1.5 or 1.6"));
    }

    #[test]
    fn schema_and_reference_errors() {
        let mut doc = bom("1.5");
        doc["components"][0].as_object_mut().unwrap().remove("name");
        let e = check(doc).unwrap_err();
        assert!(matches!(e, CycloneDxError::Schema(_)), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("at /components/0: \"name\" is a required property"),
            "{e}"
        );
        let mut doc = bom("1.6");
        doc["dependencies"][1]["dependsOn"] = json!(["ash"]);
        doc["components"][0]["components"][0]["bom-ref"] = json!("busybox");
        let e = check(doc).unwrap_err();
        assert_eq!(
            e,
            CycloneDxError::Findings(Findings(vec![
                Finding::DuplicateRef {
                    bom_ref: "busybox".into()
                },
                Finding::UnknownDependency {
                    bom_ref: "ash".into()
                },
            ]))
        );
        let e = e.to_string();
        assert!(
            e.contains("bom-ref \"busybox\" is used more than once"),
            "{e}"
        );
        assert!(e.contains("\"ash\" is not the bom-ref"), "{e}");
        let mut doc = bom("1.6");
        doc["metadata"]["authors"][0]["email"] = json!("build team at example");
        doc["metadata"]["timestamp"] = json!("May 1st");
        let e = check(doc).unwrap_err().to_string();
        assert!(e.contains("at /metadata/authors/0/email"), "{e}");
        assert!(e.contains("at /metadata/timestamp"), "{e}");
        let mut doc = bom("1.6");
        doc["metadata"]["component"]["hashes"][0]["content"] = json!("0".repeat(64));
        let e = check(doc).unwrap_err();
        assert!(
            matches!(&e, CycloneDxError::DigestsDisagree { name, .. } if name == "golden"),
            "{e}"
        );
        assert!(e.to_string().contains("name different digests"));
    }

    #[test]
    fn ntia_gaps_are_named_per_component() {
        let mut doc = bom("1.6");
        doc["metadata"].as_object_mut().unwrap().remove("timestamp");
        doc["metadata"].as_object_mut().unwrap().remove("authors");
        doc["components"][0].as_object_mut().unwrap().remove("purl");
        doc["components"][0]
            .as_object_mut()
            .unwrap()
            .remove("supplier");
        doc["dependencies"] = json!([]);
        let checked = check(doc).unwrap();
        assert_eq!(
            ntia::describe(&ntia::missing(&checked.inventory)),
            "supplier (component \"busybox\" (busybox)); unique identifier (component \"busybox\" (busybox)); \
             dependency relationship (document); author (document); timestamp (document)"
        );
    }
}
