//! Binding an SBOM to what it describes: the image index, or one platform manifest.
//!
//! apko names its SBOMs for their subject — `sbom-index.spdx.json` for the index and
//! `sbom-<arch>.spdx.json` per platform, in apk's architecture names (`x86_64`, `aarch64`,
//! `armv7`…) — so such a file must describe exactly that subject's digest. Any other file is
//! bound by content: to whichever of the image's digests it names. Either way, the digest comes
//! from the document (a checksum or `pkg:oci` purl of what it describes), never from the name.

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex};

use crate::digest::Digest;
use crate::layout::DocumentKind;
use crate::verify::VerifiedImage;

/// What a file's name says it describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// `sbom-index.*`: the image index.
    Index,
    /// `sbom-<arch>.*`: the platform manifest of that architecture.
    Arch(Arch),
    /// Any other name: bound by content.
    Any,
}

/// An architecture as apko names it, and as OCI platforms spell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arch {
    /// As written in the file name (`x86_64`).
    pub apk: String,
    /// OCI `architecture` (`amd64`).
    pub oci: &'static str,
    /// OCI `variant`, when the architecture needs one (`v7`).
    pub variant: Option<&'static str>,
}

impl Arch {
    /// apk's architecture names (and OCI's own), mapped to OCI platforms as apko does.
    pub fn parse(name: &str) -> Option<Arch> {
        let (oci, variant) = match name {
            "x86_64" | "amd64" => ("amd64", None),
            "aarch64" | "arm64" => ("arm64", None),
            "armv7" => ("arm", Some("v7")),
            "armhf" | "armv6" => ("arm", Some("v6")),
            "x86" | "386" => ("386", None),
            "ppc64le" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "loongarch64" | "loong64" => ("loong64", None),
            _ => return None,
        };
        Some(Arch {
            apk: name.to_string(),
            oci,
            variant,
        })
    }

    fn matches(&self, p: &Platform) -> bool {
        p.architecture == self.oci && self.variant.is_none_or(|v| p.variant.as_deref() == Some(v))
    }
}

/// A platform of an image index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub architecture: String,
    /// `v7`.
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Something an SBOM can describe: an image's root, or a platform manifest of its index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// Its digest.
    pub digest: Digest,
    /// True for an image index (or manifest list).
    pub is_index: bool,
    /// The platform, for a manifest listed by the root index.
    pub platform: Option<Platform>,
}

impl Subject {
    /// `the image index sha256:…` / `the linux/amd64 manifest sha256:…`.
    pub fn describe(&self) -> String {
        match (&self.platform, self.is_index) {
            (Some(p), _) => format!("the {p} manifest {}", self.digest),
            (None, true) => format!("the image index {}", self.digest),
            (None, false) => format!("the image manifest {}", self.digest),
        }
    }
}

/// What an image's SBOMs may describe: its root first, then each platform manifest its root
/// index lists (attestation manifests, `unknown/unknown`, are not platforms).
pub fn subjects(image: &VerifiedImage) -> Vec<Subject> {
    let root = &image.root;
    let is_index = DocumentKind::of(&root.media_type) == Some(DocumentKind::Index);
    let mut out = vec![Subject {
        digest: root.digest.clone(),
        is_index,
        platform: None,
    }];
    if !is_index {
        return out;
    }
    // The root was parsed as an index during verification; a failure here cannot happen.
    let Ok(index) = serde_json::from_slice::<ImageIndex>(&root.bytes) else {
        return out;
    };
    out.extend(index.manifests().iter().filter_map(platform_subject));
    out
}

fn platform_subject(d: &Descriptor) -> Option<Subject> {
    if DocumentKind::of(d.media_type().as_ref()) != Some(DocumentKind::Manifest) {
        return None;
    }
    let attestation = d
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let p = d.platform().as_ref()?;
    let platform = Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone(),
    };
    if attestation || platform.os == "unknown" || platform.architecture == "unknown" {
        return None;
    }
    Some(Subject {
        digest: Digest::parse(d.digest().as_ref()).ok()?,
        is_index: false,
        platform: Some(platform),
    })
}

/// Why a document cannot be bound to a subject of its images.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unbound {
    /// Bound by content, it describes none of the images' digests.
    #[error(
        "describes {}, which is none of the image's digests ({})",
        named(describes),
        subjects.iter().map(Subject::describe).collect::<Vec<_>>().join(", ")
    )]
    NoneOfTheImage {
        /// The digests it describes.
        describes: Vec<Digest>,
        /// Every subject of the images.
        subjects: Vec<Subject>,
    },
    /// Named as an index's SBOM (`sbom-index`), for an image that is a single manifest.
    #[error(
        "is named as apko names an image index's SBOM, but the image is a single manifest, not \
         an index"
    )]
    NotAnIndex,
    /// Named for an architecture the image has no platform of.
    #[error(
        "is named for architecture {} ({}{}), but the image has no such platform (it has {})",
        arch.apk,
        arch.oci,
        arch.variant.map(|v| format!("/{v}")).unwrap_or_default(),
        platforms_of(platforms)
    )]
    NoSuchPlatform {
        /// The architecture its name says.
        arch: Arch,
        /// The platforms the images have.
        platforms: Vec<Platform>,
    },
    /// Named for a subject, it describes other digests.
    #[error(
        "describes {}, but {} is what it must describe",
        named(describes),
        expected.describe()
    )]
    Mismatch {
        /// The digests it describes.
        describes: Vec<Digest>,
        /// The subject its name says (the first, when several images have one).
        expected: Box<Subject>,
    },
}

impl Unbound {
    /// The digest the document had to describe, when its name says one.
    pub fn expected(&self) -> Option<&Digest> {
        match self {
            Unbound::Mismatch { expected, .. } => Some(&expected.digest),
            _ => None,
        }
    }
}

fn named(describes: &[Digest]) -> String {
    if describes.is_empty() {
        return "no digest (no SHA256 checksum or pkg:oci purl on what it describes)".to_string();
    }
    describes
        .iter()
        .map(Digest::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn platforms_of(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_string();
    }
    platforms
        .iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bind a document that `describes` these digests, found under a name with `role`, to one
/// subject of one of the images (`subjects[i]` are image `i`'s): returns `i` and the subject.
pub fn bind<'a>(
    role: &Role,
    describes: &[Digest],
    subjects: &'a [Vec<Subject>],
) -> Result<(usize, &'a Subject), Unbound> {
    let all = || {
        subjects
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.iter().map(move |s| (i, s)))
    };
    let expected: Vec<(usize, &Subject)> = match role {
        Role::Any => {
            return all()
                .find(|(_, s)| describes.contains(&s.digest))
                .ok_or_else(|| Unbound::NoneOfTheImage {
                    describes: describes.to_vec(),
                    subjects: all().map(|(_, s)| s.clone()).collect(),
                });
        }
        Role::Index => {
            let roots: Vec<_> = all()
                .filter(|(_, s)| s.is_index && s.platform.is_none())
                .collect();
            if roots.is_empty() {
                return Err(Unbound::NotAnIndex);
            }
            roots
        }
        Role::Arch(arch) => {
            let platforms: Vec<_> = all()
                .filter(|(_, s)| s.platform.as_ref().is_some_and(|p| arch.matches(p)))
                .collect();
            if platforms.is_empty() {
                return Err(Unbound::NoSuchPlatform {
                    arch: arch.clone(),
                    platforms: all().filter_map(|(_, s)| s.platform.clone()).collect(),
                });
            }
            platforms
        }
    };
    if let Some(hit) = expected.iter().find(|(_, s)| describes.contains(&s.digest)) {
        return Ok(*hit);
    }
    let (_, first) = expected[0];
    Err(Unbound::Mismatch {
        describes: describes.to_vec(),
        expected: Box::new(first.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn image() -> Vec<Subject> {
        let platform = |arch: &str, variant: Option<&str>| {
            Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(String::from),
            })
        };
        vec![
            Subject {
                digest: d('a'),
                is_index: true,
                platform: None,
            },
            Subject {
                digest: d('b'),
                is_index: false,
                platform: platform("amd64", None),
            },
            Subject {
                digest: d('c'),
                is_index: false,
                platform: platform("arm", Some("v7")),
            },
        ]
    }

    #[test]
    fn apko_names_bind_to_their_subject_only() {
        let subjects = vec![image()];
        let x86 = Role::Arch(Arch::parse("x86_64").unwrap());
        let arm = Role::Arch(Arch::parse("armv7").unwrap());
        assert_eq!(
            bind(&Role::Index, &[d('a')], &subjects).unwrap().1.digest,
            d('a')
        );
        assert_eq!(bind(&x86, &[d('b')], &subjects).unwrap().1.digest, d('b'));
        assert_eq!(bind(&arm, &[d('c')], &subjects).unwrap().1.digest, d('c'));
        // The x86_64 SBOM naming the arm manifest is a mismatch that names both digests.
        let e = bind(&x86, &[d('c')], &subjects).unwrap_err();
        assert_eq!(
            e,
            Unbound::Mismatch {
                describes: vec![d('c')],
                expected: Box::new(subjects[0][1].clone()),
            }
        );
        assert_eq!(e.expected(), Some(&d('b')));
        let why = e.to_string();
        assert!(
            why.contains(d('c').as_str()) && why.contains("linux/amd64 manifest"),
            "{why}"
        );
        let e = bind(
            &Role::Arch(Arch::parse("s390x").unwrap()),
            &[d('b')],
            &subjects,
        )
        .unwrap_err();
        assert!(matches!(&e, Unbound::NoSuchPlatform { platforms, .. } if platforms.len() == 2));
        assert_eq!(e.expected(), None);
        let why = e.to_string();
        assert!(
            why.contains("no such platform (it has linux/amd64, linux/arm/v7)"),
            "{why}"
        );
        let why = bind(&Role::Index, &[], &subjects).unwrap_err().to_string();
        assert!(why.contains("describes no digest"), "{why}");
        let single = vec![vec![Subject {
            is_index: false,
            ..subjects[0][1].clone()
        }]];
        assert_eq!(
            bind(&Role::Index, &[d('b')], &single).unwrap_err(),
            Unbound::NotAnIndex
        );
    }

    #[test]
    fn other_names_bind_by_content() {
        let subjects = vec![image()];
        assert_eq!(
            bind(&Role::Any, &[d('c')], &subjects).unwrap().1.digest,
            d('c')
        );
        let e = bind(&Role::Any, &[d('f')], &subjects).unwrap_err();
        assert!(matches!(&e, Unbound::NoneOfTheImage { describes, .. } if describes == &[d('f')]));
        assert_eq!(e.expected(), None);
        let why = e.to_string();
        assert!(
            why.contains("none of the image's digests (the image index"),
            "{why}"
        );
    }
}
