//! Where a site is written: a narrow storage trait and the targets that implement it.
//!
//! Everything upstream (verify, plan, diff) is pure or local; all target I/O goes through
//! [`Store`], so adding a target (S3/R2) never touches the pipeline.

pub mod dir;

use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::{Error, TargetError};
use crate::site::SiteObject;

/// What the target knows about one stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// sha256 of its bytes, when the target records it.
    pub sha256: Option<Digest>,
    /// Its Content-Type, when the target reports it.
    pub content_type: Option<String>,
    /// Its Cache-Control, when the target reports it.
    pub cache_control: Option<String>,
}

/// A place objects are written to and read back from.
pub trait Store: Send + Sync {
    /// The target as the user named it (for messages and reports).
    fn name(&self) -> &str;
    /// Every object whose key starts with `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError>;
    /// What is known about one object, or `None` if it is absent.
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, TargetError>;
    /// One (small) object's bytes, or `None` if it is absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, TargetError>;
    /// Write one object atomically: a reader sees the old object or the whole new one.
    fn put(&self, object: &SiteObject) -> Result<(), TargetError>;
}

/// Open the target named by `target`: a directory path or `file:///abs/path`.
pub fn open(target: &str) -> Result<Box<dyn Store>, Error> {
    if let Some(path) = target.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(Error::Usage(format!(
                "target {target:?}: file:// URLs need an absolute path (file:///abs/path)"
            )));
        }
        return Ok(Box::new(dir::DirStore::new(target, PathBuf::from(path))));
    }
    if let Some((scheme, _)) = target.split_once("://") {
        return Err(Error::Usage(format!(
            "target {target:?}: unsupported scheme {scheme}:// (use a directory path or file:///abs/path)"
        )));
    }
    if target.is_empty() {
        return Err(Error::Usage("empty target".to_string()));
    }
    Ok(Box::new(dir::DirStore::new(target, PathBuf::from(target))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(open("./site").unwrap().name(), "./site");
        assert_eq!(open("file:///tmp/x").unwrap().name(), "file:///tmp/x");
        assert!(matches!(open("file://rel"), Err(Error::Usage(_))));
        assert!(matches!(open("ftp://x"), Err(Error::Usage(_))));
        assert!(matches!(open(""), Err(Error::Usage(_))));
    }
}
