//! Reading OCI image layouts from disk: `oci-layout`, `index.json` and `blobs/sha256/<hex>`.
//!
//! Two shapes are understood. apko writes `index.json` as the multi-arch image index itself (its
//! digest is the sha256 of the file's exact bytes; the tag comes from the user). skopeo, umoci and
//! `cosign save` write an `index.json` that lists images, each named by an
//! `org.opencontainers.image.ref.name` annotation and pointing at a blob. This module resolves
//! either into roots to publish and opens files without ever leaving the layout directory.
//! It does no network I/O and does not hash blobs (that is `verify`'s job).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageIndex};

use crate::digest::Digest;
use crate::error::Problem;

/// Largest manifest or index we accept, as registries do.
pub const MAX_DOCUMENT_SIZE: u64 = 4 * 1024 * 1024;

/// The annotation that names an image in the common layout shape.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Media types of the documents a registry serves from `/manifests/`.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker image manifest v2, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
}

/// Whether a document is a single-image manifest or an index of manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// An image manifest: a config and layers.
    Manifest,
    /// An image index or manifest list: other manifests.
    Index,
}

impl DocumentKind {
    /// Classify a media type; `None` for anything that is not a manifest or index we publish.
    pub fn of(media_type: &str) -> Option<DocumentKind> {
        match media_type {
            media::OCI_MANIFEST | media::DOCKER_MANIFEST => Some(DocumentKind::Manifest),
            media::OCI_INDEX | media::DOCKER_LIST => Some(DocumentKind::Index),
            _ => None,
        }
    }
}

/// What a selected image's root document is.
#[derive(Clone, Debug)]
pub enum Root {
    /// `index.json` itself is the image index (apko's shape).
    IndexJson,
    /// A blob named by an entry of `index.json` (the common shape).
    Entry(Box<Descriptor>),
}

/// An image chosen from a layout, with the tags it is to be published under.
#[derive(Clone, Debug)]
pub struct Selected {
    /// Where its root document lives.
    pub root: Root,
    /// Tags to publish it under (may be empty for `verify`).
    pub tags: Vec<String>,
    /// How the layout names it: its ref name, or `index.json`.
    pub label: String,
}

/// Why a file of the layout cannot be read, named as the layout names it (`index.json`,
/// `blobs/sha256/<hex>`) or by its resolved path. Becomes a [`Problem`]'s reason.
#[derive(Debug, thiserror::Error)]
enum FileError {
    /// It does not exist.
    #[error("{} is missing", name.display())]
    Missing {
        /// The file.
        name: PathBuf,
    },
    /// It cannot be opened.
    #[error("cannot open {}: {reason}", name.display())]
    Unopenable {
        /// The file.
        name: PathBuf,
        /// Why.
        reason: io::Error,
    },
    /// A symlink to outside the layout.
    #[error(
        "{} leaves the layout directory (it resolves to {}); refusing to follow it",
        name.display(),
        real.display()
    )]
    Escapes {
        /// The file.
        name: PathBuf,
        /// Where it resolves to.
        real: PathBuf,
    },
    /// Its metadata cannot be had.
    #[error("cannot stat {}: {reason}", name.display())]
    Stat {
        /// The file.
        name: PathBuf,
        /// Why.
        reason: io::Error,
    },
    /// A directory, device or such.
    #[error("{} is not a regular file", name.display())]
    NotFile {
        /// The file.
        name: PathBuf,
    },
    /// Reading it failed.
    #[error("cannot read {}: {reason}", name.display())]
    Unreadable {
        /// The file.
        name: PathBuf,
        /// Why.
        reason: io::Error,
    },
}

/// An opened layout directory.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
    canonical: PathBuf,
    index_bytes: Arc<[u8]>,
    entries: Vec<Descriptor>,
}

impl Layout {
    /// Open a layout: check `oci-layout`, read and parse `index.json`.
    pub fn open(dir: &Path) -> Result<Layout, Problem> {
        let canonical = fs::canonicalize(dir)
            .map_err(|e| Problem::new(format!("cannot open layout directory: {e}")))?;
        if !canonical.is_dir() {
            return Err(Problem::new("not a directory"));
        }
        let mut layout = Layout {
            dir: dir.to_path_buf(),
            canonical,
            index_bytes: Arc::from(Vec::new()),
            entries: Vec::new(),
        };
        let marker = layout.read_small("oci-layout", 64 * 1024)?;
        let marker: serde_json::Value = serde_json::from_slice(&marker)
            .map_err(|e| Problem::new(format!("oci-layout is not JSON: {e}")))?;
        if !marker
            .get("imageLayoutVersion")
            .is_some_and(|v| v.is_string())
        {
            return Err(Problem::new(
                "oci-layout has no imageLayoutVersion: not an OCI image layout",
            ));
        }
        let bytes = layout.read_small("index.json", MAX_DOCUMENT_SIZE)?;
        layout.entries = parse_index(&bytes)?;
        layout.index_bytes = Arc::from(bytes);
        Ok(layout)
    }

    /// The directory as the user named it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The exact bytes of `index.json`.
    pub fn index_bytes(&self) -> Arc<[u8]> {
        self.index_bytes.clone()
    }

    /// Choose the images to publish. `ref_name` picks one entry of a common-shape layout; `tags`
    /// are the user's tags (for the common shape, a lone image's or the picked entry's).
    pub fn select(
        &self,
        ref_name: Option<&str>,
        tags: &[String],
    ) -> Result<Vec<Selected>, Problem> {
        select(&self.entries, ref_name, tags)
    }

    /// The path of a blob, checked to exist as a regular file inside the layout directory
    /// (symlinks are followed only while they stay inside).
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf, Problem> {
        let rel = Path::new("blobs").join("sha256").join(digest.hex());
        self.resolve(&rel)
            .map_err(|e| Problem::at(digest, e.to_string()))
    }

    /// Read a manifest or index blob: at most [`MAX_DOCUMENT_SIZE`], checked against the
    /// descriptor's size and digest.
    pub fn read_document(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, Problem> {
        if size > MAX_DOCUMENT_SIZE {
            return Err(Problem::at(
                digest,
                format!(
                    "manifest is {size} bytes, over the {MAX_DOCUMENT_SIZE}-byte limit registries accept"
                ),
            ));
        }
        let path = self.blob_path(digest)?;
        let bytes = read_capped(&path, MAX_DOCUMENT_SIZE)
            .map_err(|e| Problem::at(digest, e.to_string()))?;
        if bytes.len() as u64 != size {
            return Err(Problem::at(
                digest,
                format!(
                    "size mismatch: descriptor says {size} bytes, blob has {}{}",
                    bytes.len(),
                    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
                        "+"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let actual = Digest::of_bytes(&bytes);
        if &actual != digest {
            return Err(Problem::at(
                digest,
                format!("digest mismatch: content hashes to {actual}"),
            ));
        }
        Ok(bytes)
    }

    fn read_small(&self, name: &str, cap: u64) -> Result<Vec<u8>, Problem> {
        let refused = |e: FileError| Problem::new(e.to_string());
        let path = self.resolve(Path::new(name)).map_err(refused)?;
        let bytes = read_capped(&path, cap).map_err(refused)?;
        if bytes.len() as u64 > cap {
            return Err(Problem::new(format!(
                "{name} is larger than the {cap}-byte limit"
            )));
        }
        Ok(bytes)
    }

    fn resolve(&self, rel: &Path) -> Result<PathBuf, FileError> {
        let path = self.canonical.join(rel);
        let name = || rel.to_path_buf();
        let real = fs::canonicalize(&path).map_err(|reason| match reason.kind() {
            io::ErrorKind::NotFound => FileError::Missing { name: name() },
            _ => FileError::Unopenable {
                name: name(),
                reason,
            },
        })?;
        if !real.starts_with(&self.canonical) {
            return Err(FileError::Escapes { name: name(), real });
        }
        let meta = fs::metadata(&real).map_err(|reason| FileError::Stat {
            name: name(),
            reason,
        })?;
        if !meta.is_file() {
            return Err(FileError::NotFile { name: name() });
        }
        Ok(real)
    }
}

/// The entries of an `index.json`, parsed as an OCI image index.
pub fn parse_index(bytes: &[u8]) -> Result<Vec<Descriptor>, Problem> {
    let index: ImageIndex = serde_json::from_slice(bytes)
        .map_err(|e| Problem::new(format!("index.json is not a valid OCI image index: {e}")))?;
    Ok(index.manifests().clone())
}

/// Choose the images to publish among `entries` of an `index.json` (see [`Layout::select`]).
pub fn select(
    entries: &[Descriptor],
    ref_name: Option<&str>,
    tags: &[String],
) -> Result<Vec<Selected>, Problem> {
    let named: Vec<(&str, &Descriptor)> = entries
        .iter()
        .filter_map(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .map(|name| (name.as_str(), d))
        })
        .filter(|(name, _)| !is_attached_tag(name))
        .collect();
    if named.is_empty() {
        if let Some(r) = ref_name {
            return Err(Problem::new(format!(
                "ref {r:?} requested, but index.json names no images ({REF_NAME}): this is an apko-style layout, publish it whole"
            )));
        }
        return Ok(vec![Selected {
            root: Root::IndexJson,
            tags: tags.to_vec(),
            label: "index.json".to_string(),
        }]);
    }
    let refs = || {
        named
            .iter()
            .map(|(n, _)| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pick = |name: &str, d: &Descriptor, tags: &[String]| -> Result<Selected, Problem> {
        let tags = if tags.is_empty() {
            vec![tag_of_ref(name).ok_or_else(|| {
                Problem::new(format!(
                    "image {name:?} in index.json has no usable tag in its name; give tags explicitly"
                ))
            })?]
        } else {
            tags.to_vec()
        };
        Ok(Selected {
            root: Root::Entry(Box::new(d.clone())),
            tags,
            label: name.to_string(),
        })
    };
    if let Some(r) = ref_name {
        let found: Vec<_> = named
            .iter()
            .filter(|(n, _)| *n == r || tag_of_ref(n).as_deref() == Some(r))
            .collect();
        return match found.as_slice() {
            [(n, d)] => Ok(vec![pick(n, d, tags)?]),
            [] => Err(Problem::new(format!(
                "no image named {r:?} in index.json (it names {})",
                refs()
            ))),
            _ => Err(Problem::new(format!(
                "more than one image named {r:?} in index.json"
            ))),
        };
    }
    if !tags.is_empty() {
        return match named.as_slice() {
            [(n, d)] => Ok(vec![pick(n, d, tags)?]),
            _ => Err(Problem::new(format!(
                "index.json names {} images ({}); choose one with --ref (or `ref` in the config)",
                named.len(),
                refs()
            ))),
        };
    }
    named.iter().map(|(n, d)| pick(n, d, &[])).collect()
}

/// The tag in an image's ref name: `latest` for `latest` or `example.com/app:latest`.
/// Whether a ref names something cosign attaches to an image (`sha256-<hex>` referrers
/// fallback, `.sig`, `.att`, `.sbom`) rather than an image: those publish with their subject.
fn is_attached_tag(name: &str) -> bool {
    let Some(tag) = tag_of_ref(name) else {
        return false;
    };
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let (hex, suffix) = rest.split_at(rest.len().min(64));
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && ["", ".sig", ".att", ".sbom"].contains(&suffix)
}

fn tag_of_ref(name: &str) -> Option<String> {
    let candidate = match name.rsplit_once(':') {
        Some((_, t)) if !t.contains('/') => t,
        _ => name,
    };
    crate::names::check_tag(candidate)
        .ok()
        .map(|_| candidate.to_string())
}

/// Read at most `cap + 1` bytes, so an oversized file is detected without reading it whole.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let file = File::open(path).map_err(|reason| FileError::Unopenable {
        name: path.to_path_buf(),
        reason,
    })?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|reason| FileError::Unreadable {
            name: path.to_path_buf(),
            reason,
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_from_ref_names() {
        assert_eq!(tag_of_ref("latest").as_deref(), Some("latest"));
        assert_eq!(
            tag_of_ref("example.com:5000/app:1.2").as_deref(),
            Some("1.2")
        );
        assert_eq!(tag_of_ref("example.com:5000/app"), None);
        assert_eq!(
            tag_of_ref("sha256-abc.sig").as_deref(),
            Some("sha256-abc.sig")
        );
    }

    #[test]
    fn cosign_attached_tags_are_not_images() {
        let hex = "a".repeat(64);
        for attached in ["", ".sig", ".att", ".sbom"] {
            assert!(is_attached_tag(&format!("sha256-{hex}{attached}")));
            assert!(is_attached_tag(&format!("r.io/app:sha256-{hex}{attached}")));
        }
        assert!(!is_attached_tag(&format!("sha256-{hex}.tar")));
        assert!(!is_attached_tag("sha256-abc.sig"));
        assert!(!is_attached_tag("latest"));
    }

    #[test]
    fn files_stay_inside_the_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        fs::write(
            dir.join("index.json"),
            r#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        fs::write(tmp.path().join("outside"), b"{}").unwrap();
        let layout = Layout::open(&dir).unwrap();
        let resolve = |name: &str| layout.resolve(Path::new(name));
        assert!(resolve("index.json").is_ok());
        assert!(
            matches!(resolve("gone"), Err(FileError::Missing { name }) if name == Path::new("gone"))
        );
        assert!(matches!(resolve("blobs"), Err(FileError::NotFile { .. })));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(tmp.path().join("outside"), dir.join("link")).unwrap();
            let e = resolve("link").unwrap_err();
            assert!(matches!(&e, FileError::Escapes { real, .. } if real.ends_with("outside")));
            assert!(
                e.to_string()
                    .starts_with("link leaves the layout directory (it resolves to ")
            );
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(
            DocumentKind::of(media::DOCKER_LIST),
            Some(DocumentKind::Index)
        );
        assert_eq!(
            DocumentKind::of(media::OCI_MANIFEST),
            Some(DocumentKind::Manifest)
        );
        assert_eq!(
            DocumentKind::of("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None
        );
    }
}
