//! The NTIA minimum elements of an SBOM ("The Minimum Elements For a Software Bill of
//! Materials", NTIA 2021): per component a supplier, name, version and unique identifier; per
//! document a dependency relationship, an author and a timestamp.
//!
//! The format modules describe a document as an [`Inventory`] (what each component and the
//! document state), and [`missing`] applies the rules once for SPDX and CycloneDX alike, naming
//! each missing element and where (the package's name and SPDXID, or component's name and
//! bom-ref).

use std::fmt;

use serde::Serialize;

/// One of the seven minimum elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    /// Supplier name of a component.
    Supplier,
    /// Component name.
    Name,
    /// Component version.
    Version,
    /// Another unique identifier of a component (SPDXID, purl, CPE, SWID).
    UniqueIdentifier,
    /// The relationship of the described software to its components.
    DependencyRelationship,
    /// Author of the SBOM data.
    Author,
    /// When the SBOM data was assembled.
    Timestamp,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Element::Supplier => "supplier",
            Element::Name => "name",
            Element::Version => "version",
            Element::UniqueIdentifier => "unique identifier",
            Element::DependencyRelationship => "dependency relationship",
            Element::Author => "author",
            Element::Timestamp => "timestamp",
        })
    }
}

/// A missing element and where it is missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// Which element.
    pub element: Element,
    /// `document`, or the component (`package "name" (SPDXRef-…)`).
    pub at: String,
}

/// What one component states, as the NTIA elements need it.
#[derive(Clone, Debug, Default)]
pub struct Component {
    /// How messages name it: `package "busybox" (SPDXRef-Package-busybox)`.
    pub label: String,
    /// It has a non-empty name.
    pub name: bool,
    /// It has a version that asserts something (not empty, `NOASSERTION` or `NONE`).
    pub version: bool,
    /// It names a supplier (not `NOASSERTION`).
    pub supplier: bool,
    /// It carries a unique identifier.
    pub identifier: bool,
}

/// What a document states, as the NTIA elements need it.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Every component (SPDX package, CycloneDX component), the described one included.
    pub components: Vec<Component>,
    /// It names a person or organisation as author.
    pub author: bool,
    /// It carries its creation time.
    pub timestamp: bool,
    /// It states what it describes and how that relates to its components.
    pub dependencies: bool,
}

/// Whether a stated value asserts something.
pub fn asserted(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "NOASSERTION" && v != "NONE"
    })
}

/// Every minimum element the inventory lacks, document elements first.
pub fn missing(inventory: &Inventory) -> Vec<Missing> {
    let document = |element| Missing {
        element,
        at: "document".to_string(),
    };
    let mut out = Vec::new();
    for (present, element) in [
        (inventory.author, Element::Author),
        (inventory.timestamp, Element::Timestamp),
        (inventory.dependencies, Element::DependencyRelationship),
    ] {
        if !present {
            out.push(document(element));
        }
    }
    for c in &inventory.components {
        for (present, element) in [
            (c.name, Element::Name),
            (c.version, Element::Version),
            (c.supplier, Element::Supplier),
            (c.identifier, Element::UniqueIdentifier),
        ] {
            if !present {
                out.push(Missing {
                    element,
                    at: c.label.clone(),
                });
            }
        }
    }
    out
}

/// A one-line account of what is missing: per element, the first few places and a count.
pub fn describe(missing: &[Missing]) -> String {
    const LISTED: usize = 3;
    let mut elements: Vec<Element> = missing.iter().map(|m| m.element).collect();
    elements.sort();
    elements.dedup();
    elements
        .into_iter()
        .map(|element| {
            let places: Vec<&str> = missing
                .iter()
                .filter(|m| m.element == element)
                .map(|m| m.at.as_str())
                .collect();
            let mut text = format!(
                "{element} ({}",
                places[..places.len().min(LISTED)].join(", ")
            );
            if places.len() > LISTED {
                text.push_str(&format!(" and {} more", places.len() - LISTED));
            }
            text.push(')');
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(label: &str) -> Component {
        Component {
            label: label.to_string(),
            name: true,
            version: true,
            supplier: true,
            identifier: true,
        }
    }

    #[test]
    fn a_complete_inventory_misses_nothing() {
        let inv = Inventory {
            components: vec![component("a")],
            author: true,
            timestamp: true,
            dependencies: true,
        };
        assert!(missing(&inv).is_empty());
    }

    #[test]
    fn each_gap_is_named_where_it_is() {
        let mut inv = Inventory {
            components: (0..5).map(|i| component(&format!("p{i}"))).collect(),
            author: false,
            timestamp: true,
            dependencies: true,
        };
        for c in &mut inv.components {
            c.supplier = false;
        }
        inv.components[1].version = false;
        let m = missing(&inv);
        assert_eq!(m[0].element, Element::Author);
        assert_eq!(m[0].at, "document");
        assert_eq!(m.len(), 7);
        let text = describe(&m);
        assert_eq!(
            text,
            "supplier (p0, p1, p2 and 2 more); version (p1); author (document)"
        );
    }

    #[test]
    fn placeholders_assert_nothing() {
        for v in [None, Some(""), Some(" "), Some("NOASSERTION"), Some("NONE")] {
            assert!(!asserted(v), "{v:?}");
        }
        assert!(asserted(Some("Organization: Chainguard, Inc.")));
    }
}
