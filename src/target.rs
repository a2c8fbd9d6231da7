//! A target as the user names it (`./site`, `file:///abs`, `s3://bucket/prefix`), and the
//! store stack built for it.
//!
//! This is where flags and config become a [`Store`]: the backend, wrapped in the layers
//! every backend gets (see [`crate::store::layer`]), with the upload settings that go with it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::parse_duration;
use crate::error::Error;
use crate::retry::Retry;
use crate::store::layer::{Counter, Layered, Limit, Prefixed, Probed};
use crate::store::upload::{DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, Uploads};
use crate::store::{Store, dir, s3};

/// Where to publish, as given by `[target]` in the config and overridden by flags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// What reports, events and errors call it (default: `to`).
    pub name: Option<String>,
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
    /// Blobs at least this large are uploaded in parts: bytes, or a string with a unit
    /// (`"64MiB"`).
    #[serde(default, deserialize_with = "crate::byte_size::deserialize")]
    pub multipart_threshold: Option<u64>,
    /// Size of each part (at least 5 MiB): bytes, or a string with a unit (`"8MiB"`).
    #[serde(default, deserialize_with = "crate::byte_size::deserialize")]
    pub part_size: Option<u64>,
    /// How long one request without a body may take before it is retried, e.g. `"30s"`
    /// (uploads get more time per byte). Default 60s.
    pub timeout: Option<String>,
}

impl TargetSpec {
    /// What reports, events and errors call it: its `name`, else `to`.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.to)
    }
}

/// Default time a request without a body may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// An opened target: the store stack, and what goes with it.
pub struct Target {
    /// The layered store.
    pub store: Box<dyn Store>,
    /// Operations sent to it so far.
    pub requests: Counter,
    /// How large files are uploaded.
    pub uploads: Uploads,
}

/// Open the target `spec` names, with at most `jobs` operations in flight.
pub fn open(spec: &TargetSpec, jobs: usize) -> Result<Target, Error> {
    let target = spec.to.as_str();
    let usage = |reason: String| Error::Usage(format!("target {target:?}: {reason}"));
    let requests = Counter::default();
    let uploads = Uploads::new(
        spec.multipart_threshold
            .unwrap_or(DEFAULT_MULTIPART_THRESHOLD),
        spec.part_size.unwrap_or(DEFAULT_PART_SIZE),
    )
    .map_err(usage)?;
    let store = if let Some(rest) = target.strip_prefix("s3://") {
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
        let backend = s3::S3Store::new(target, bucket, settings).map_err(usage)?;
        stack(&prefix, backend, jobs, &requests)
    } else if let Some(path) = target.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(usage(
                "file:// URLs need an absolute path (file:///abs/path)".into(),
            ));
        }
        stack(
            "",
            dir::DirStore::new(target, PathBuf::from(path)),
            jobs,
            &requests,
        )
    } else if let Some((scheme, _)) = target.split_once("://") {
        return Err(usage(format!(
            "unsupported scheme {scheme}:// (use a directory, file:///abs/path or s3://BUCKET/PREFIX)"
        )));
    } else if target.is_empty() {
        return Err(Error::Usage("empty target".to_string()));
    } else {
        stack(
            "",
            dir::DirStore::new(target, PathBuf::from(target)),
            jobs,
            &requests,
        )
    };
    Ok(Target {
        store,
        requests,
        uploads,
    })
}

/// `backend` under `prefix`, in every layer: probe, retry, limit, count, prefix.
fn stack<S: Store + 'static>(
    prefix: &str,
    backend: S,
    jobs: usize,
    requests: &Counter,
) -> Box<dyn Store> {
    Box::new(Probed::probed(Layered::new(
        Retry::default(),
        Layered::new(
            Limit::new(jobs),
            Layered::new(requests.clone(), Prefixed::new(prefix, backend)),
        ),
    )))
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
        timeout: match &spec.timeout {
            Some(text) => parse_duration(text).map_err(|e| format!("timeout: {e}"))?,
            None => DEFAULT_TIMEOUT,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let open = |to: &str| {
            open(
                &TargetSpec {
                    to: to.into(),
                    access_key_id: Some("k".into()),
                    secret_access_key: Some("s".into()),
                    ..TargetSpec::default()
                },
                4,
            )
        };
        assert_eq!(open("./site").unwrap().store.name(), "./site");
        assert_eq!(open("file:///tmp/x").unwrap().store.name(), "file:///tmp/x");
        assert_eq!(
            open("s3://bucket/some/prefix").unwrap().store.name(),
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
        assert!(matches!(super::open(&bad_style, 4), Err(Error::Usage(_))));
        let small_parts = TargetSpec {
            to: "./site".into(),
            part_size: Some(1024),
            ..TargetSpec::default()
        };
        assert!(matches!(super::open(&small_parts, 4), Err(Error::Usage(_))));
    }
}
