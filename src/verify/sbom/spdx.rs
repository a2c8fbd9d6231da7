//! SPDX 2.3 JSON documents (apko writes these): the official schema, then what the schema
//! cannot say — identifier patterns, unique SPDXIDs, relationships and `documentDescribes`
//! pointing at elements that exist, the creation time and creators' form — and what the
//! document describes (checksums and `pkg:oci` purls of the described packages).
//!
//! apko and the SPDX schema disagree on a few spellings (`OPERATING_SYSTEM` in the schema and
//! apko, `OPERATING-SYSTEM` in the specification's text; `documentDescribes` beside `DESCRIBES`
//! relationships): both are accepted. SPDX 2.2 documents are read as 2.3, whose schema only
//! relaxes 2.2's.

use std::collections::{BTreeSet, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::schema::{Schema, SchemaError};
use super::{Checked, Findings, PurlError, findings, ntia, oci_purl_digest};
use crate::digest::Digest;

/// The `spdxVersion`s read.
const VERSIONS: [&str; 2] = ["SPDX-2.3", "SPDX-2.2"];

/// Why a document is not a valid SPDX document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpdxError {
    /// An `spdxVersion` other than those read.
    #[error("spdxVersion {version:?} is not supported (expected {})", VERSIONS.join(" or "))]
    Unsupported {
        /// The version it says.
        version: String,
    },
    /// It breaks the SPDX 2.3 schema.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// It passes the schema but does not read as a document (a type the schema leaves open).
    #[error("not a valid SPDX document: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// What the schema cannot say is wrong.
    #[error("{0}")]
    Findings(Findings<Finding>),
}

/// One thing wrong with an SPDX document that its schema cannot say.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    /// The document's own SPDXID is not `SPDXRef-DOCUMENT`.
    #[error("the document's SPDXID is {found:?}, not {:?}", DOCUMENT_ID)]
    DocumentId {
        /// The SPDXID it has.
        found: String,
    },
    /// `dataLicense` is not `CC0-1.0`.
    #[error("dataLicense is {found:?}, not \"CC0-1.0\"")]
    DataLicense {
        /// The license it has.
        found: String,
    },
    /// `documentNamespace` is not an absolute URI without a fragment.
    #[error("documentNamespace {namespace:?} is not an absolute URI without '#'")]
    Namespace {
        /// The namespace.
        namespace: String,
    },
    /// `creationInfo.created` is not a UTC time.
    #[error("creationInfo.created {created:?} is not a UTC time like 2024-01-31T12:00:00Z")]
    Created {
        /// The time as written.
        created: String,
    },
    /// No creators.
    #[error("creationInfo.creators is empty")]
    NoCreators,
    /// A creator that is not a person, organization or tool.
    #[error("creator {creator:?} is not \"Person: …\", \"Organization: …\" or \"Tool: …\"")]
    Creator {
        /// The creator as written.
        creator: String,
    },
    /// An element's SPDXID is not `SPDXRef-` and an identifier.
    #[error(
        "{element} has SPDXID {id:?}: not \"SPDXRef-\" followed by letters, digits, '.' or '-'"
    )]
    ElementId {
        /// The element: `package "<name>"`, `file` or `snippet`.
        element: String,
        /// Its SPDXID.
        id: String,
    },
    /// Two elements share an SPDXID.
    #[error("SPDXID {id:?} is used by more than one element")]
    DuplicateId {
        /// The SPDXID.
        id: String,
    },
    /// An external document reference's id is not `DocumentRef-` and an identifier.
    #[error(
        "externalDocumentId {id:?} is not \"DocumentRef-\" followed by letters, digits, '.' or '-'"
    )]
    ExternalDocumentId {
        /// The id.
        id: String,
    },
    /// `documentDescribes` names an element the document does not have.
    #[error("documentDescribes names {id:?}, which is not an element of this document")]
    UnknownDescribed {
        /// The SPDXID named.
        id: String,
    },
    /// A relationship names an element the document does not have.
    #[error(
        "relationship {index} ({from} {kind} {to}): {missing:?} is not an element of this document"
    )]
    UnknownRelated {
        /// The relationship's place in `relationships`.
        index: usize,
        /// Its `spdxElementId`.
        from: String,
        /// Its `relationshipType`.
        kind: String,
        /// Its `relatedSpdxElement`.
        to: String,
        /// Which of the two is missing.
        missing: String,
    },
    /// A package's `hasFiles` names an element the document does not have.
    #[error(
        "package {package:?} ({id}) hasFiles {file:?}, which is not an element of this document"
    )]
    UnknownFile {
        /// The package's name.
        package: String,
        /// Its SPDXID.
        id: String,
        /// The SPDXID named.
        file: String,
    },
    /// A described package's SHA256 checksum is not a digest.
    #[error("package {package:?} ({id}): SHA256 checksum: {reason}")]
    Checksum {
        /// The package's name.
        package: String,
        /// Its SPDXID.
        id: String,
        /// Why the digest was refused.
        reason: String,
    },
    /// A described package's `pkg:oci` purl names no digest.
    #[error("package {package:?} ({id}): {error}")]
    Purl {
        /// The package's name.
        package: String,
        /// Its SPDXID.
        id: String,
        /// What is wrong with the purl.
        error: PurlError,
    },
    /// A described package's checksum and purl name different digests.
    #[error(
        "package {package:?} ({id}): its SHA256 checksum ({}) and its pkg:oci purl ({}) name \
         different digests",
        join(checksums),
        join(purls)
    )]
    DigestsDisagree {
        /// The package's name.
        package: String,
        /// Its SPDXID.
        id: String,
        /// The digests its checksums name.
        checksums: BTreeSet<Digest>,
        /// The digests its purls name.
        purls: BTreeSet<Digest>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    spdx_version: String,
    data_license: String,
    document_namespace: String,
    creation_info: CreationInfo,
    #[serde(default)]
    document_describes: Vec<String>,
    #[serde(default)]
    external_document_refs: Vec<ExternalDocumentRef>,
    #[serde(default)]
    packages: Vec<Package>,
    #[serde(default)]
    files: Vec<Element>,
    #[serde(default)]
    snippets: Vec<Element>,
    #[serde(default)]
    relationships: Vec<Relationship>,
}

#[derive(Deserialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalDocumentRef {
    external_document_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    version_info: Option<String>,
    supplier: Option<String>,
    #[serde(default)]
    checksums: Vec<Checksum>,
    #[serde(default)]
    external_refs: Vec<ExternalRef>,
    #[serde(default)]
    has_files: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: String,
    checksum_value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_type: String,
    reference_locator: String,
}

#[derive(Deserialize)]
struct Element {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: String,
    related_spdx_element: String,
}

const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";

/// Validate an SPDX JSON document (already parsed) and say what it describes.
pub fn check(mut value: Value) -> Result<Checked, SpdxError> {
    let version = value
        .get("spdxVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !VERSIONS.contains(&version.as_str()) {
        return Err(SpdxError::Unsupported { version });
    }
    normalize(&mut value);
    Schema::Spdx23.check(&value)?;
    let doc = Document::deserialize(&value).map_err(|e| SpdxError::Malformed {
        reason: e.to_string(),
    })?;
    let mut errors = Vec::new();
    check_document_fields(&doc, &mut errors);
    let elements = check_ids(&doc, &mut errors);
    check_references(&doc, &elements, &mut errors);
    findings(errors).map_err(SpdxError::Findings)?;

    let described = described(&doc);
    let mut describes = BTreeSet::new();
    let mut errors = Vec::new();
    for package in doc
        .packages
        .iter()
        .filter(|p| described.contains(&p.spdx_id))
    {
        match package_digests(package) {
            Ok(digests) => describes.extend(digests),
            Err(e) => errors.push(e),
        }
    }
    findings(errors).map_err(SpdxError::Findings)?;
    Ok(Checked {
        version: doc.spdx_version.clone(),
        packages: doc.packages.len(),
        describes: describes.into_iter().collect(),
        inventory: inventory(&doc, &described),
    })
}

/// The packages a valid document lists, for the package index: every package but the ones it
/// describes (the image) and `pkg:oci` ones (its layers); `None` when the bytes are not a
/// document of this format (already validated, so only for a caller's mistake).
pub fn packages(value: &Value) -> Option<Vec<super::Package>> {
    let doc = Document::deserialize(value).ok()?;
    let described = described(&doc);
    let listed = doc
        .packages
        .iter()
        .filter(|p| !described.contains(&p.spdx_id));
    let packages = listed.filter_map(|p| {
        let purl = p
            .external_refs
            .iter()
            .find(|r| r.reference_type == "purl")
            .map(|r| r.reference_locator.clone());
        super::Package::ingredient(&p.name, p.version_info.as_deref(), purl)
    });
    Some(packages.collect())
}

/// Accept the specification's spelling of package purposes (`OPERATING-SYSTEM`) where the
/// schema has `OPERATING_SYSTEM`. Only the parsed copy changes: the file is published as is.
fn normalize(value: &mut Value) {
    let Some(packages) = value.get_mut("packages").and_then(Value::as_array_mut) else {
        return;
    };
    for package in packages {
        if let Some(purpose) = package.get_mut("primaryPackagePurpose")
            && let Some(text) = purpose.as_str()
            && text.contains('-')
        {
            *purpose = Value::from(text.replace('-', "_"));
        }
    }
}

fn check_document_fields(doc: &Document, errors: &mut Vec<Finding>) {
    if doc.spdx_id != DOCUMENT_ID {
        errors.push(Finding::DocumentId {
            found: doc.spdx_id.clone(),
        });
    }
    if doc.data_license != "CC0-1.0" {
        errors.push(Finding::DataLicense {
            found: doc.data_license.clone(),
        });
    }
    let ns = &doc.document_namespace;
    let scheme = ns.split_once(':').map(|(s, _)| s).unwrap_or_default();
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        || ns.contains('#')
    {
        errors.push(Finding::Namespace {
            namespace: ns.clone(),
        });
    }
    let created = &doc.creation_info.created;
    if !created.ends_with('Z') || created.parse::<jiff::Timestamp>().is_err() {
        errors.push(Finding::Created {
            created: created.clone(),
        });
    }
    if doc.creation_info.creators.is_empty() {
        errors.push(Finding::NoCreators);
    }
    for creator in &doc.creation_info.creators {
        if !["Person:", "Organization:", "Tool:"]
            .iter()
            .any(|p| creator.starts_with(p))
        {
            errors.push(Finding::Creator {
                creator: creator.clone(),
            });
        }
    }
}

/// `SPDXRef-` followed by letters, digits, `.` and `-`.
fn is_ref(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    })
}

/// Check every element's SPDXID and return the set of them (the document's included).
fn check_ids(doc: &Document, errors: &mut Vec<Finding>) -> HashSet<String> {
    let mut ids = HashSet::from([DOCUMENT_ID.to_string()]);
    let named = doc
        .packages
        .iter()
        .map(|p| (format!("package {:?}", p.name), &p.spdx_id))
        .chain(doc.files.iter().map(|f| ("file".to_string(), &f.spdx_id)))
        .chain(
            doc.snippets
                .iter()
                .map(|s| ("snippet".to_string(), &s.spdx_id)),
        );
    for (what, id) in named {
        if !is_ref(id, "SPDXRef-") {
            errors.push(Finding::ElementId {
                element: what,
                id: id.clone(),
            });
        } else if !ids.insert(id.clone()) {
            errors.push(Finding::DuplicateId { id: id.clone() });
        }
    }
    for r in &doc.external_document_refs {
        if !is_ref(&r.external_document_id, "DocumentRef-") {
            errors.push(Finding::ExternalDocumentId {
                id: r.external_document_id.clone(),
            });
        }
    }
    ids
}

/// `documentDescribes`, relationships and `hasFiles` must point at elements that exist (or, for
/// relationships, at an element of a declared external document, or NONE / NOASSERTION).
fn check_references(doc: &Document, ids: &HashSet<String>, errors: &mut Vec<Finding>) {
    let external: HashSet<&str> = doc
        .external_document_refs
        .iter()
        .map(|r| r.external_document_id.as_str())
        .collect();
    let resolves = |id: &str| {
        ids.contains(id)
            || id.split_once(':').is_some_and(|(doc_ref, element)| {
                external.contains(doc_ref) && is_ref(element, "SPDXRef-")
            })
    };
    for id in &doc.document_describes {
        if !ids.contains(id) {
            errors.push(Finding::UnknownDescribed { id: id.clone() });
        }
    }
    for (index, r) in doc.relationships.iter().enumerate() {
        let unknown = |missing: &str| Finding::UnknownRelated {
            index,
            from: r.spdx_element_id.clone(),
            kind: r.relationship_type.clone(),
            to: r.related_spdx_element.clone(),
            missing: missing.to_string(),
        };
        if !resolves(&r.spdx_element_id) {
            errors.push(unknown(&r.spdx_element_id));
        }
        let related = r.related_spdx_element.as_str();
        if !(related == "NONE" || related == "NOASSERTION" || resolves(related)) {
            errors.push(unknown(related));
        }
    }
    for p in &doc.packages {
        for f in &p.has_files {
            if !ids.contains(f) {
                errors.push(Finding::UnknownFile {
                    package: p.name.clone(),
                    id: p.spdx_id.clone(),
                    file: f.clone(),
                });
            }
        }
    }
}

/// The elements the document describes: `documentDescribes`, `DOCUMENT DESCRIBES x` and
/// `x DESCRIBED_BY DOCUMENT`.
fn described(doc: &Document) -> HashSet<String> {
    let mut out: HashSet<String> = doc.document_describes.iter().cloned().collect();
    for r in &doc.relationships {
        match r.relationship_type.as_str() {
            "DESCRIBES" if r.spdx_element_id == DOCUMENT_ID => {
                out.insert(r.related_spdx_element.clone());
            }
            "DESCRIBED_BY" if r.related_spdx_element == DOCUMENT_ID => {
                out.insert(r.spdx_element_id.clone());
            }
            _ => {}
        }
    }
    out
}

/// The sha256 digests a described package names: SHA256 checksums and `pkg:oci` purls. When
/// both are present they must agree.
fn package_digests(p: &Package) -> Result<BTreeSet<Digest>, Finding> {
    let mut checksums = BTreeSet::new();
    for c in p.checksums.iter().filter(|c| c.algorithm == "SHA256") {
        let hex = c.checksum_value.to_ascii_lowercase();
        let digest = Digest::parse(&format!("sha256:{hex}")).map_err(|e| Finding::Checksum {
            package: p.name.clone(),
            id: p.spdx_id.clone(),
            reason: e.to_string(),
        })?;
        checksums.insert(digest);
    }
    let mut purls = BTreeSet::new();
    for r in p
        .external_refs
        .iter()
        .filter(|r| r.reference_type == "purl")
    {
        let named = oci_purl_digest(&r.reference_locator).map_err(|error| Finding::Purl {
            package: p.name.clone(),
            id: p.spdx_id.clone(),
            error,
        })?;
        purls.extend(named);
    }
    if !checksums.is_empty() && !purls.is_empty() && checksums != purls {
        return Err(Finding::DigestsDisagree {
            package: p.name.clone(),
            id: p.spdx_id.clone(),
            checksums,
            purls,
        });
    }
    checksums.extend(purls);
    Ok(checksums)
}

fn join(digests: &BTreeSet<Digest>) -> String {
    digests
        .iter()
        .map(Digest::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn inventory(doc: &Document, described: &HashSet<String>) -> ntia::Inventory {
    let components = doc
        .packages
        .iter()
        .map(|p| ntia::Component {
            label: format!("package {:?} ({})", p.name, p.spdx_id),
            name: !p.name.trim().is_empty(),
            version: ntia::asserted(p.version_info.as_deref()),
            supplier: ntia::asserted(p.supplier.as_deref()),
            // Every SPDX element has an SPDXID, unique within the document's namespace.
            identifier: true,
        })
        .collect();
    let relates = doc.relationships.iter().any(|r| {
        r.spdx_element_id != DOCUMENT_ID
            && r.related_spdx_element != DOCUMENT_ID
            && (described.contains(&r.spdx_element_id)
                || described.contains(&r.related_spdx_element))
    });
    ntia::Inventory {
        components,
        author: doc
            .creation_info
            .creators
            .iter()
            .any(|c| c.starts_with("Person:") || c.starts_with("Organization:")),
        // Checked above: present and a valid time.
        timestamp: true,
        dependencies: !described.is_empty() && (doc.packages.len() <= 1 || relates),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INDEX: &str = "sha256:b5f05e6fc882c97d61c1daee566954ae6fc09924f8e152293e2b97a06092069f";
    const AMD64: &str = "sha256:69f0237c7f8cf0b8a329d1bf1d6870c870c4ec323e39d3a6da59596632d0f2f4";

    fn golden(name: &str) -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/apko/golden/sboms/");
        serde_json::from_slice(&std::fs::read(format!("{path}{name}")).unwrap()).unwrap()
    }

    fn error(doc: Value) -> SpdxError {
        match check(doc) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    /// The findings of a document refused for them.
    fn found(doc: Value) -> Vec<Finding> {
        match error(doc) {
            SpdxError::Findings(Findings(all)) => all,
            e => panic!("{e}"),
        }
    }

    #[test]
    fn apkos_documents_describe_the_index_and_the_platform_manifest() {
        let index = check(golden("sbom-index.spdx.json")).unwrap();
        assert_eq!(index.version, "SPDX-2.3");
        assert_eq!(index.packages, 3);
        assert_eq!(index.describes, [Digest::parse(INDEX).unwrap()]);
        assert!(ntia::missing(&index.inventory).is_empty());
        let amd64 = check(golden("sbom-x86_64.spdx.json")).unwrap();
        assert_eq!(amd64.describes, [Digest::parse(AMD64).unwrap()]);
        assert_eq!(amd64.packages, 7);
        assert!(ntia::missing(&amd64.inventory).is_empty());
    }

    #[test]
    fn both_spellings_and_both_ways_of_describing_are_accepted() {
        let mut doc = golden("sbom-x86_64.spdx.json");
        doc["packages"][2]["primaryPackagePurpose"] = json!("OPERATING-SYSTEM");
        let described = doc["documentDescribes"][0].clone();
        doc.as_object_mut().unwrap().remove("documentDescribes");
        doc["relationships"].as_array_mut().unwrap().push(json!({
            "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
            "relatedSpdxElement": described}));
        assert_eq!(
            check(doc).unwrap().describes,
            [Digest::parse(AMD64).unwrap()]
        );
    }

    #[test]
    fn schema_violations_name_the_field_and_path() {
        let mut doc = golden("sbom-index.spdx.json");
        doc.as_object_mut().unwrap().remove("creationInfo");
        doc["packages"][1]
            .as_object_mut()
            .unwrap()
            .remove("downloadLocation");
        let e = error(doc);
        assert!(
            matches!(
                &e,
                SpdxError::Schema(SchemaError::Mismatch {
                    schema: Schema::Spdx23,
                    ..
                })
            ),
            "{e}"
        );
        let e = e.to_string();
        assert!(e.contains("SPDX 2.3 schema"), "{e}");
        assert!(e.contains("\"creationInfo\" is a required property"), "{e}");
        assert!(
            e.contains("at /packages/1: \"downloadLocation\" is a required property"),
            "{e}"
        );
        let mut doc = golden("sbom-index.spdx.json");
        doc["spdxVersion"] = json!("SPDX-3.0");
        assert_eq!(
            error(doc),
            SpdxError::Unsupported {
                version: "SPDX-3.0".into()
            }
        );
    }

    #[test]
    fn identifiers_and_references_must_hold_together() {
        let mut doc = golden("sbom-x86_64.spdx.json");
        doc["packages"][3]["SPDXID"] = json!("SPDXRef-apk_busybox");
        doc["packages"][4]["SPDXID"] = doc["packages"][5]["SPDXID"].clone();
        doc["relationships"][0]["relatedSpdxElement"] = json!("SPDXRef-Nowhere");
        doc["documentDescribes"] = json!(["SPDXRef-Gone"]);
        doc["creationInfo"]["created"] = json!("yesterday");
        doc["creationInfo"]["creators"] = json!(["apko"]);
        doc["dataLicense"] = json!("MIT");
        let all = found(doc.clone());
        let busybox = doc["packages"][3]["name"].as_str().unwrap();
        for want in [
            Finding::DataLicense {
                found: "MIT".into(),
            },
            Finding::Created {
                created: "yesterday".into(),
            },
            Finding::Creator {
                creator: "apko".into(),
            },
            Finding::ElementId {
                element: format!("package {busybox:?}"),
                id: "SPDXRef-apk_busybox".into(),
            },
            Finding::UnknownDescribed {
                id: "SPDXRef-Gone".into(),
            },
        ] {
            assert!(all.contains(&want), "{want}: {all:?}");
        }
        assert!(
            all.iter().any(|f| matches!(f, Finding::DuplicateId { .. })),
            "{all:?}"
        );
        assert_eq!(all.len(), 10, "{all:?}");
        let e = error(doc).to_string();
        assert!(e.contains("dataLicense is \"MIT\", not \"CC0-1.0\""), "{e}");
        assert!(e.ends_with("; and 5 more"), "{e}");
        let mut doc = golden("sbom-x86_64.spdx.json");
        doc["relationships"][0]["relatedSpdxElement"] = json!("SPDXRef-Nowhere");
        let all = found(doc);
        assert!(
            matches!(
                all.as_slice(),
                [Finding::UnknownRelated { index: 0, missing, .. }] if missing == "SPDXRef-Nowhere"
            ),
            "{all:?}"
        );
        assert!(
            all[0]
                .to_string()
                .ends_with(": \"SPDXRef-Nowhere\" is not an element of this document"),
            "{}",
            all[0]
        );
    }

    #[test]
    fn a_checksum_and_purl_that_disagree_are_refused() {
        let mut doc = golden("sbom-x86_64.spdx.json");
        let purl = doc["packages"][0]["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .replace(&AMD64[7..], &INDEX[7..]);
        doc["packages"][0]["externalRefs"][0]["referenceLocator"] = json!(purl);
        let all = found(doc);
        let [
            Finding::DigestsDisagree {
                checksums, purls, ..
            },
        ] = all.as_slice()
        else {
            panic!("{all:?}")
        };
        assert_eq!(
            checksums.iter().collect::<Vec<_>>(),
            [&Digest::parse(AMD64).unwrap()]
        );
        assert_eq!(
            purls.iter().collect::<Vec<_>>(),
            [&Digest::parse(INDEX).unwrap()]
        );
        assert!(all[0].to_string().contains("name different digests"));
    }

    #[test]
    fn ntia_gaps_are_named_per_package() {
        let mut doc = golden("sbom-x86_64.spdx.json");
        doc["packages"][3]
            .as_object_mut()
            .unwrap()
            .remove("supplier");
        doc["packages"][5]["versionInfo"] = json!("NOASSERTION");
        doc["creationInfo"]["creators"] = json!(["Tool: apko"]);
        let checked = check(doc).unwrap();
        let text = ntia::describe(&ntia::missing(&checked.inventory));
        assert_eq!(
            text,
            "supplier (package \"pretend-baselayout\" (SPDXRef-Package-apk-pretend-baselayout-1.0.0-r0)); \
             version (package \"replayout\" (SPDXRef-Package-apk-replayout-1.0.0-r0)); author (document)"
        );
    }
}
