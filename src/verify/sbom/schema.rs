//! The official JSON schemas of SPDX 2.3 and CycloneDX 1.4–1.6, vendored in `schemas/` (origins
//! in `schemas/README.md`), compiled on first use, and their findings as short messages.
//!
//! Schema validation catches every missing required field, wrong type and unknown enum value the
//! standards define, with the JSON path of each, so the format modules only add what a schema
//! cannot say (identifier patterns, references between elements, binding to an image).

use std::fmt;
use std::sync::OnceLock;

use jsonschema::{Registry, Resource, Validator};
use serde_json::Value;

/// How many schema errors one message lists before "and N more".
const MAX_LISTED: usize = 5;

/// A vendored schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// SPDX 2.3 (draft 2019-09).
    Spdx23,
    /// CycloneDX 1.4 (draft-07).
    CycloneDx14,
    /// CycloneDX 1.5 (draft-07).
    CycloneDx15,
    /// CycloneDX 1.6 (draft-07).
    CycloneDx16,
}

/// Why a document does not pass its schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The document breaks the schema: the first findings, and how many there are.
    #[error(
        "does not match the {}: {}{}",
        schema.name(),
        listed(findings),
        more(findings.len(), *total)
    )]
    Mismatch {
        /// The schema.
        schema: Schema,
        /// The first [`MAX_LISTED`] findings.
        findings: Vec<SchemaFinding>,
        /// How many findings there are in all.
        total: usize,
    },
    /// The vendored schema itself does not compile (a bug in the build, not in the document).
    #[error("internal: the vendored {} does not load: {reason}", schema.name())]
    Unloadable {
        /// The schema.
        schema: Schema,
        /// What the JSON or schema compiler said.
        reason: String,
    },
}

/// One place a document breaks its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaFinding {
    /// The JSON pointer of the offending value (`/` for the document).
    pub path: String,
    /// What the schema requires there.
    pub message: String,
}

impl fmt::Display for SchemaFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.path, self.message)
    }
}

fn listed(findings: &[SchemaFinding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn more(listed: usize, total: usize) -> String {
    if total > listed {
        format!("; and {} more", total - listed)
    } else {
        String::new()
    }
}

const SPDX_2_3: &str = include_str!("../../../schemas/spdx-2.3.schema.json");
const BOM_1_4: &str = include_str!("../../../schemas/bom-1.4.SNAPSHOT.schema.json");
const BOM_1_5: &str = include_str!("../../../schemas/bom-1.5.SNAPSHOT.schema.json");
const BOM_1_6: &str = include_str!("../../../schemas/bom-1.6.SNAPSHOT.schema.json");
/// Referenced by the CycloneDX schemas (license identifiers, signatures) by these URIs.
const CYCLONEDX_SHARED: [(&str, &str); 2] = [
    (
        "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json",
        include_str!("../../../schemas/spdx.SNAPSHOT.schema.json"),
    ),
    (
        "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json",
        include_str!("../../../schemas/jsf-0.82.SNAPSHOT.schema.json"),
    ),
];

impl Schema {
    /// The CycloneDX schema for `specVersion`, if supported.
    pub fn cyclonedx(spec_version: &str) -> Option<Schema> {
        match spec_version {
            "1.4" => Some(Schema::CycloneDx14),
            "1.5" => Some(Schema::CycloneDx15),
            "1.6" => Some(Schema::CycloneDx16),
            _ => None,
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Schema::Spdx23 => "SPDX 2.3 schema",
            Schema::CycloneDx14 => "CycloneDX 1.4 schema",
            Schema::CycloneDx15 => "CycloneDX 1.5 schema",
            Schema::CycloneDx16 => "CycloneDX 1.6 schema",
        }
    }

    /// Validate `document`; the error lists the first findings, each with its JSON path.
    pub fn check(self, document: &Value) -> Result<(), SchemaError> {
        let validator = self.validator()?;
        let mut findings = Vec::new();
        let mut total = 0usize;
        for error in validator.iter_errors(document) {
            total += 1;
            if findings.len() < MAX_LISTED {
                let path = error.instance_path().to_string();
                findings.push(SchemaFinding {
                    path: if path.is_empty() {
                        "/".to_string()
                    } else {
                        path
                    },
                    message: error.masked().to_string(),
                });
            }
        }
        if total == 0 {
            return Ok(());
        }
        Err(SchemaError::Mismatch {
            schema: self,
            findings,
            total,
        })
    }

    fn validator(self) -> Result<&'static Validator, SchemaError> {
        // The compiler's reason, kept once per schema (its error types are not Clone).
        static COMPILED: [OnceLock<Result<Validator, String>>; 4] = [const { OnceLock::new() }; 4];
        COMPILED[self as usize]
            .get_or_init(|| self.compile())
            .as_ref()
            .map_err(|reason| SchemaError::Unloadable {
                schema: self,
                reason: reason.clone(),
            })
    }

    /// Compile the schema; the error is what `serde_json` or `jsonschema` said.
    fn compile(self) -> Result<Validator, String> {
        let text = match self {
            Schema::Spdx23 => SPDX_2_3,
            Schema::CycloneDx14 => BOM_1_4,
            Schema::CycloneDx15 => BOM_1_5,
            Schema::CycloneDx16 => BOM_1_6,
        };
        let schema: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut registry = Registry::new();
        if self != Schema::Spdx23 {
            for (uri, text) in CYCLONEDX_SHARED {
                let contents: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                registry = registry
                    .add(uri, Resource::from_contents(contents))
                    .map_err(|e| e.to_string())?;
            }
        }
        let registry = registry.prepare().map_err(|e| e.to_string())?;
        jsonschema::options()
            .offline()
            .with_registry(&registry)
            .build(&schema)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_vendored_schema_compiles_offline() {
        for s in [
            Schema::Spdx23,
            Schema::CycloneDx14,
            Schema::CycloneDx15,
            Schema::CycloneDx16,
        ] {
            s.validator().unwrap();
        }
    }

    #[test]
    fn findings_name_the_path_and_are_capped() {
        let bom = json!({"bomFormat": "CycloneDX", "specVersion": "1.5",
            "components": (0..8).map(|i| json!({"type": "library", "nme": i})).collect::<Vec<_>>()});
        let e = Schema::CycloneDx15.check(&bom).unwrap_err();
        let SchemaError::Mismatch {
            schema,
            findings,
            total,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(*schema, Schema::CycloneDx15);
        assert_eq!(findings.len(), MAX_LISTED);
        assert_eq!(findings[0].path, "/components/0");
        assert!(*total > MAX_LISTED);
        let text = e.to_string();
        assert!(
            text.starts_with("does not match the CycloneDX 1.5 schema: at /components/0: "),
            "{text}"
        );
        assert!(text.ends_with(&format!("; and {} more", total - MAX_LISTED)));
    }
}
