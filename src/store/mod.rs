//! Where a site is written: a narrow storage trait and the targets that implement it.
//!
//! Everything upstream (verify, plan, diff) is pure or local; all target I/O goes through
//! [`Store`], so adding a target (S3/R2) never touches the pipeline.

pub mod dir;
pub mod retry;
pub mod s3;

use std::path::PathBuf;

use serde::Deserialize;

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
    /// Its ETag without quotes (for single-part uploads, the hex MD5 of its bytes).
    pub etag: Option<String>,
    /// Its Content-Type, when the target reports it.
    pub content_type: Option<String>,
    /// Its Cache-Control, when the target reports it.
    pub cache_control: Option<String>,
    /// When it was last written, when the target reports it.
    pub modified: Option<jiff::Timestamp>,
}

/// A (small) object's bytes as read, with the tag a conditional write compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its ETag (S3) or content hash (directory): what [`Condition::Matches`] takes.
    pub etag: Option<String>,
}

/// The precondition of a compare-and-swap write ([`Store::put_if`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Only if no object is stored at the key (`If-None-Match: *`).
    Absent,
    /// Only if the stored object still has this ETag (`If-Match`).
    Matches(String),
}

/// Most keys one delete request removes (the S3 DeleteObjects limit).
pub const DELETE_BATCH: usize = 1000;

/// A place objects are written to and read back from.
pub trait Store: Send + Sync {
    /// The target as the user named it (for messages and reports).
    fn name(&self) -> &str;
    /// Every object whose key starts with `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError>;
    /// What is known about one object, or `None` if it is absent.
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, TargetError>;
    /// One (small) object's bytes and ETag, or `None` if it is absent.
    fn get(&self, key: &str) -> Result<Option<Fetched>, TargetError>;
    /// Write one object atomically: a reader sees the old object or the whole new one.
    fn put(&self, object: &SiteObject) -> Result<(), TargetError>;
    /// Write one small in-memory object only if `condition` holds (compare-and-swap); `false`
    /// when it did not (another writer got there first). Meaningful only when
    /// [`Store::conditional_writes`] is true: other stores write unconditionally.
    fn put_if(&self, object: &SiteObject, condition: &Condition) -> Result<bool, TargetError>;
    /// Whether the target honours [`Store::put_if`]'s conditions. S3 targets find out once per
    /// run with a probe object (R2 and AWS S3 do; Garage 2.5 ignores the headers).
    fn conditional_writes(&self) -> Result<bool, TargetError>;
    /// Remove one object; an absent key is not an error.
    fn delete(&self, key: &str) -> Result<(), TargetError>;
    /// Remove up to [`DELETE_BATCH`] objects in one request where the target allows it (S3
    /// DeleteObjects); absent keys are not an error.
    fn delete_many(&self, keys: &[String]) -> Result<(), TargetError>;
    /// Write `object` by copying the identical bytes already stored at `source`, inside the
    /// target (no upload); Content-Type, Cache-Control and digest come from `object`.
    fn copy(&self, source: &str, object: &SiteObject) -> Result<(), TargetError>;
    /// Requests sent to the target so far (each retry and each multipart step counts).
    fn requests(&self) -> u64;
    /// Remove what killed runs left half-done and no reader can see (incomplete multipart
    /// uploads, temporary files) once older than `age`; returns how many were removed.
    fn clean_stale(&self, age: std::time::Duration) -> Result<u64, TargetError>;
}

/// Default size from which blobs are uploaded in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Default part size (all parts but the last are this size, as R2 requires).
pub const DEFAULT_PART_SIZE: u64 = 16 * 1024 * 1024;

/// Where to publish, as given by `[target]` in the config and overridden by flags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `./site`, `file:///abs/path` or `s3://BUCKET[/PREFIX]`.
    pub to: String,
    /// S3 endpoint URL (R2: `https://<account>.r2.cloudflarestorage.com`).
    pub endpoint: Option<String>,
    /// S3 region (R2: `auto`).
    pub region: Option<String>,
    /// `path` (default with an endpoint) or `virtual-host` (default for AWS).
    pub url_style: Option<String>,
    /// Access key id (default: `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// Secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<String>,
    /// Session token (default: `AWS_SESSION_TOKEN`).
    pub session_token: Option<String>,
    /// Blobs at least this many bytes are uploaded in parts.
    pub multipart_threshold: Option<u64>,
    /// Bytes per part (at least 5 MiB).
    pub part_size: Option<u64>,
    /// How long one request without a body may take before it is retried, e.g. `"30s"`
    /// (uploads get more time per byte). Default 60s.
    pub timeout: Option<String>,
}

/// Open the target: a directory path, `file:///abs/path`, or `s3://BUCKET[/PREFIX]`.
pub fn open(spec: &TargetSpec) -> Result<Box<dyn Store>, Error> {
    let target = spec.to.as_str();
    let usage = |reason: String| Error::Usage(format!("target {target:?}: {reason}"));
    if let Some(rest) = target.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(usage("no bucket name (s3://BUCKET[/PREFIX])".into()));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let settings = s3_settings(spec).map_err(usage)?;
        let store = s3::S3Store::new(target, bucket, &prefix, settings).map_err(usage)?;
        return Ok(Box::new(store));
    }
    if let Some(path) = target.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(usage(
                "file:// URLs need an absolute path (file:///abs/path)".into(),
            ));
        }
        return Ok(Box::new(dir::DirStore::new(target, PathBuf::from(path))));
    }
    if let Some((scheme, _)) = target.split_once("://") {
        return Err(usage(format!(
            "unsupported scheme {scheme}:// (use a directory, file:///abs/path or s3://BUCKET/PREFIX)"
        )));
    }
    if target.is_empty() {
        return Err(Error::Usage("empty target".to_string()));
    }
    Ok(Box::new(dir::DirStore::new(target, PathBuf::from(target))))
}

fn s3_settings(spec: &TargetSpec) -> Result<s3::S3Settings, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = spec
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| {
            if spec.endpoint.is_some() {
                "auto"
            } else {
                "us-east-1"
            }
            .to_string()
        });
    let endpoint = spec
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let path_style = match spec.url_style.as_deref() {
        None => spec.endpoint.is_some(),
        Some("path") => true,
        Some("virtual-host") => false,
        Some(other) => return Err(format!("url style {other:?}: use path or virtual-host")),
    };
    let key = spec
        .access_key_id
        .clone()
        .or_else(|| env("AWS_ACCESS_KEY_ID"));
    let secret = spec
        .secret_access_key
        .clone()
        .or_else(|| env("AWS_SECRET_ACCESS_KEY"));
    let token = spec
        .session_token
        .clone()
        .or_else(|| env("AWS_SESSION_TOKEN"));
    let (Some(key), Some(secret)) = (key, secret) else {
        return Err("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or access_key_id and secret_access_key in [target])".into());
    };
    let credentials = match token {
        Some(token) => rusty_s3::Credentials::new_with_token(key, secret, token),
        None => rusty_s3::Credentials::new(key, secret),
    };
    Ok(s3::S3Settings {
        endpoint,
        region,
        path_style,
        credentials,
        multipart_threshold: spec
            .multipart_threshold
            .unwrap_or(DEFAULT_MULTIPART_THRESHOLD),
        part_size: spec.part_size.unwrap_or(DEFAULT_PART_SIZE),
        timeout: match &spec.timeout {
            Some(text) => parse_duration(text).map_err(|e| format!("timeout: {e}"))?,
            None => DEFAULT_TIMEOUT,
        },
    })
}

/// Default time a request without a body may take.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A duration written like `7d`, `36h`, `90s` or `1h 30m` (days are 24 hours).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let span: jiff::Span = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a duration like 7d, 12h or 30s: {e}"))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?}: {e}"))?;
    std::time::Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("7d"), Ok(7 * 86400));
        assert_eq!(secs("36h"), Ok(36 * 3600));
        assert_eq!(secs("1h 30m"), Ok(5400));
        assert_eq!(secs("0s"), Ok(0));
        for bad in ["", "7", "soon", "-1d", "1 fortnight"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_targets() {
        let open = |to: &str| {
            open(&TargetSpec {
                to: to.into(),
                access_key_id: Some("k".into()),
                secret_access_key: Some("s".into()),
                ..TargetSpec::default()
            })
        };
        assert_eq!(open("./site").unwrap().name(), "./site");
        assert_eq!(open("file:///tmp/x").unwrap().name(), "file:///tmp/x");
        assert_eq!(
            open("s3://bucket/some/prefix").unwrap().name(),
            "s3://bucket/some/prefix"
        );
        for bad in ["file://rel", "ftp://x", "", "s3://", "s3:///p"] {
            assert!(matches!(open(bad), Err(Error::Usage(_))), "{bad}");
        }
        let bad_style = TargetSpec {
            to: "s3://b".into(),
            url_style: Some("sideways".into()),
            ..TargetSpec::default()
        };
        assert!(matches!(super::open(&bad_style), Err(Error::Usage(_))));
    }
}
