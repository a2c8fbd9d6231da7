//! The S3 target: Cloudflare R2, AWS S3, Garage, MinIO and any S3-compatible store.
//!
//! Requests are presigned with `rusty-s3` (every header we send is signed) and sent with
//! `reqwest`'s async client on a small runtime the worker threads block on; every request goes
//! through the [`Retry`] layer. Bodies stream from disk. Each PUT
//! carries `x-amz-checksum-sha256`, so the store itself checks every byte against the digest we
//! already know, and the digest is kept in `x-amz-meta-digest` for an edge rule to surface as
//! `Docker-Content-Digest`. Large blobs go up as multipart uploads with equal-sized parts (R2
//! requires it), in parallel, each part checksummed, aborted on failure.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rayon::prelude::*;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, HeaderMap};
use reqwest::{Body, Client, RequestBuilder};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject,
    DeleteObjects, DeleteObjectsResponse, GetObject, HeadObject, ListObjectsV2, ObjectIdentifier,
    PutObject, UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::{Digest as _, Sha256};
use tokio_util::io::ReaderStream;

use super::retry::{Attempt, Retry};
use super::{Condition, Fetched, ObjectInfo, Store};
use crate::digest::Digest;
use crate::error::TargetError;
use crate::site::{self, SiteObject};

/// How long a presigned request stays valid.
const SIGN_FOR: Duration = Duration::from_secs(3600);
/// Key prefix (outside `v2/`) of the objects probing for conditional writes.
pub const PROBE_PREFIX: &str = ".regpress-probe-";
/// Object metadata holding the body's sha256 digest.
const DIGEST_HEADER: &str = "x-amz-meta-digest";
/// Slowest transfer rate we wait for before calling a request timed out.
const MIN_BYTES_PER_SEC: u64 = 256 * 1024;
/// Read size when streaming a file into a request body. reqwest's blocking client moved 8 KiB
/// chunks across threads, which a profile showed as the top client cost; 256 KiB chunks cut the
/// publisher's CPU by half while 16 uploads in flight stay under 40 MB of memory.
const BODY_CHUNK: usize = 256 << 10;
/// Most parts S3 accepts in one multipart upload.
const MAX_PARTS: u64 = 10_000;
/// Largest object a single CopyObject may copy; larger ones are uploaded instead.
const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// What `x-amz-copy-source` percent-encodes: everything but unreserved characters and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Connection settings for an S3 target.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Endpoint URL, e.g. `https://<account>.r2.cloudflarestorage.com`.
    pub endpoint: String,
    /// Region (`auto` for R2).
    pub region: String,
    /// Path-style (`endpoint/bucket/key`) or virtual-host style (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Access key id, secret and optional session token.
    pub credentials: Credentials,
    /// Blobs at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    /// Size of each part but the last.
    pub part_size: u64,
    /// Time a request without a body may take (uploads get more per byte).
    pub timeout: Duration,
}

/// A bucket (and key prefix) as a [`Store`].
pub struct S3Store {
    name: String,
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    http: Client,
    runtime: tokio::runtime::Runtime,
    retry: Retry,
    multipart_threshold: u64,
    part_size: u64,
    timeout: Duration,
    requests: AtomicU64,
    conditional: OnceLock<bool>,
}

impl S3Store {
    /// A store for `bucket`, keys under `prefix` (empty, or ending in `/`).
    pub fn new(
        name: &str,
        bucket: &str,
        prefix: &str,
        settings: S3Settings,
    ) -> Result<S3Store, String> {
        let endpoint = settings
            .endpoint
            .parse()
            .map_err(|e| format!("invalid endpoint {:?}: {e}", settings.endpoint))?;
        let style = if settings.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, style, bucket.to_string(), settings.region.clone())
            .map_err(|e| format!("invalid bucket or endpoint: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        if settings.part_size < 5 * 1024 * 1024 {
            return Err("part size must be at least 5 MiB (S3 and R2 refuse smaller parts)".into());
        }
        Ok(S3Store {
            name: name.to_string(),
            bucket,
            credentials: settings.credentials,
            prefix: prefix.to_string(),
            http,
            runtime,
            retry: Retry::default(),
            multipart_threshold: settings.multipart_threshold.max(settings.part_size),
            part_size: settings.part_size,
            timeout: settings.timeout,
            requests: AtomicU64::new(0),
            conditional: OnceLock::new(),
        })
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error(&self, key: Option<&str>, reason: impl Into<String>) -> TargetError {
        TargetError {
            target: self.name.clone(),
            key: key.map(str::to_string),
            reason: reason.into(),
        }
    }

    /// Send a request (rebuilt for each attempt) with retries. 404 is returned, not an error.
    fn send(
        &self,
        key: Option<&str>,
        bytes: u64,
        build: impl Fn() -> Result<RequestBuilder, String>,
    ) -> Result<Reply, TargetError> {
        self.send_passing(key, bytes, &[StatusCode::NOT_FOUND], build)
    }

    /// Send with retries; answers with a status in `pass` are returned, not errors.
    fn send_passing(
        &self,
        key: Option<&str>,
        bytes: u64,
        pass: &[StatusCode],
        build: impl Fn() -> Result<RequestBuilder, String>,
    ) -> Result<Reply, TargetError> {
        let timeout = self.timeout + Duration::from_secs(bytes / MIN_BYTES_PER_SEC);
        self.retry
            .run(|| {
                let request = match build() {
                    Ok(r) => r.timeout(timeout),
                    Err(e) => return Attempt::Permanent(e),
                };
                self.requests.fetch_add(1, Ordering::Relaxed);
                match self.runtime.block_on(Reply::receive(request)) {
                    Ok(r) if r.status().is_success() || pass.contains(&r.status()) => {
                        Attempt::Done(r)
                    }
                    Ok(r) => {
                        let status = r.status();
                        let after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        let message = describe_error(status, r.text());
                        match after {
                            _ if !status.is_server_error()
                                && status != StatusCode::TOO_MANY_REQUESTS =>
                            {
                                Attempt::Permanent(message)
                            }
                            Some(after) => Attempt::RetryAfter(message, after),
                            None => Attempt::Transient(message),
                        }
                    }
                    Err(e) => Attempt::Transient(format!(
                        "request failed: {} (is --endpoint right and reachable?)",
                        crate::error::chain(&e)
                    )),
                }
            })
            .map_err(|e| self.error(key, e))
    }

    fn put_single(&self, object: &SiteObject, key: &str) -> Result<(), TargetError> {
        self.put_with(object, key, &[], &[])
            .and_then(|r| self.expect_found(r, Some(&object.key)))
            .map(drop)
    }

    /// A single PUT of `object` with `extra` headers (signed too); answers with a status in
    /// `pass` are returned rather than retried or failed.
    fn put_with(
        &self,
        object: &SiteObject,
        key: &str,
        extra: &[(&'static str, String)],
        pass: &[StatusCode],
    ) -> Result<Reply, TargetError> {
        let mut action = PutObject::new(&self.bucket, Some(&self.credentials), key);
        let mut headers = object_headers(object, true);
        headers.extend(extra.iter().cloned());
        for (name, value) in &headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(SIGN_FOR);
        let mut passing = vec![StatusCode::NOT_FOUND];
        passing.extend_from_slice(pass);
        self.send_passing(Some(&object.key), object.size, &passing, || {
            let mut request = self.http.put(url.clone());
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            Ok(request
                .header(CONTENT_LENGTH, object.size)
                .body(body_of(object)?))
        })
    }

    /// Find out whether the store honours `If-None-Match: *` and `If-Match` on PUT: write a
    /// probe object outside `v2/` twice with `If-None-Match: *` (the second must be refused
    /// with 412), once with a wrong `If-Match` (refused too), then delete it.
    fn probe_conditional_writes(&self) -> Result<bool, TargetError> {
        let probe = site::json_object(
            format!("{PROBE_PREFIX}{:016x}", fastrand::u64(..)),
            &serde_json::json!({}),
            site::Phase::Root,
        );
        let key = self.full_key(&probe.key);
        // Anything but 412 means the condition was not honoured (ignored, or not implemented).
        let unsupported = [
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_IMPLEMENTED,
            StatusCode::PRECONDITION_FAILED,
        ];
        let absent = [("if-none-match", "*".to_string())];
        let first = self.put_with(&probe, &key, &absent, &unsupported)?;
        let first = self.expect_found(first, Some(&probe.key))?;
        let supported = first.status().is_success()
            && self.put_with(&probe, &key, &absent, &unsupported)?.status()
                == StatusCode::PRECONDITION_FAILED
            && self
                .put_with(
                    &probe,
                    &key,
                    &[("if-match", "\"0123456789abcdef\"".to_string())],
                    &unsupported,
                )?
                .status()
                == StatusCode::PRECONDITION_FAILED;
        self.delete(&probe.key)?;
        Ok(supported)
    }

    /// One DeleteObjects request for `keys` (at most [`super::DELETE_BATCH`]), retried as a
    /// whole on transient failures and for the keys the store reported as failed.
    fn delete_batch(&self, keys: &[String]) -> Result<(), TargetError> {
        let mut remaining: Vec<String> = keys.to_vec();
        let first_key = keys.first().map(String::as_str);
        self.retry
            .run(|| {
                let ids: Vec<ObjectIdentifier> = remaining
                    .iter()
                    .map(|k| ObjectIdentifier::new(self.full_key(k)))
                    .collect();
                let mut action =
                    DeleteObjects::new(&self.bucket, Some(&self.credentials), ids.iter());
                action.set_quiet(true);
                let url = action.sign(SIGN_FOR);
                let (body, md5) = action.body_with_md5();
                let answer = self.send(first_key, body.len() as u64, || {
                    Ok(self
                        .http
                        .post(url.clone())
                        .header("content-md5", &md5)
                        .body(body.clone()))
                });
                let text = match answer.and_then(|r| self.expect_found(r, first_key)) {
                    Ok(r) => r.text(),
                    Err(e) => return Attempt::Permanent(e.reason),
                };
                let parsed = match DeleteObjectsResponse::parse(&text) {
                    Ok(p) => p,
                    Err(e) => {
                        return Attempt::Transient(format!("bad DeleteObjects answer: {e}"));
                    }
                };
                let Some(first) = parsed.errors.first() else {
                    return Attempt::Done(());
                };
                let message = format!(
                    "DeleteObjects: {}: {}: {} ({} of {} keys failed)",
                    first.key,
                    first.code,
                    first.message,
                    parsed.errors.len(),
                    remaining.len()
                );
                let transient = parsed.errors.iter().all(|e| {
                    matches!(
                        e.code.as_str(),
                        "InternalError" | "ServiceUnavailable" | "SlowDown"
                    )
                });
                let failed: std::collections::HashSet<&str> =
                    parsed.errors.iter().map(|e| e.key.as_str()).collect();
                remaining.retain(|k| failed.contains(self.full_key(k).as_str()));
                if transient {
                    Attempt::Transient(message)
                } else {
                    Attempt::Permanent(message)
                }
            })
            .map_err(|e| self.error(first_key, e))
    }

    fn put_multipart(
        &self,
        object: &SiteObject,
        key: &str,
        path: &Path,
    ) -> Result<(), TargetError> {
        let part_size = self.part_size.max(object.size.div_ceil(MAX_PARTS));
        let parts = object.size.div_ceil(part_size);
        // One sequential pass: part checksums, and proof the source still has the verified digest.
        let checksums = part_checksums(path, object.size, part_size, &object.sha256)
            .map_err(|e| self.error(Some(&object.key), e))?;

        let create = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key);
        let mut headers = object_headers(object, false);
        headers.push(("x-amz-checksum-algorithm", "SHA256".to_string()));
        let text = self
            .send_with_headers(create, &headers, &object.key)?
            .text();
        let created = CreateMultipartUpload::parse_response(&text).map_err(|e| {
            self.error(
                Some(&object.key),
                format!("bad CreateMultipartUpload answer: {e}"),
            )
        })?;
        let upload_id = created.upload_id();

        let result = (1..=parts)
            .into_par_iter()
            .map(|number| {
                let offset = (number - 1) * part_size;
                let len = part_size.min(object.size - offset);
                let checksum = &checksums[(number - 1) as usize];
                self.upload_part(object, key, upload_id, number, offset, len, checksum)
            })
            .collect::<Result<Vec<String>, TargetError>>()
            .and_then(|etags| self.complete(object, key, upload_id, &etags, &checksums));
        if result.is_err() {
            let abort =
                AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), key, upload_id)
                    .sign(SIGN_FOR);
            let _ = self.send(Some(&object.key), 0, || Ok(self.http.delete(abort.clone())));
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn upload_part(
        &self,
        object: &SiteObject,
        key: &str,
        upload_id: &str,
        number: u64,
        offset: u64,
        len: u64,
        checksum: &str,
    ) -> Result<String, TargetError> {
        let part =
            u16::try_from(number).map_err(|_| self.error(Some(&object.key), "too many parts"))?;
        let mut action =
            UploadPart::new(&self.bucket, Some(&self.credentials), key, part, upload_id);
        action
            .headers_mut()
            .insert("x-amz-checksum-sha256", checksum.to_string());
        let url = action.sign(SIGN_FOR);
        let site::Body::File(path) = &object.body else {
            return Err(self.error(Some(&object.key), "multipart upload of an in-memory body"));
        };
        let response = self.send(Some(&object.key), len, || {
            let mut file =
                File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| format!("cannot seek: {e}"))?;
            let part = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), len);
            Ok(self
                .http
                .put(url.clone())
                .header("x-amz-checksum-sha256", checksum)
                .header(CONTENT_LENGTH, len)
                .body(Body::wrap_stream(ReaderStream::with_capacity(
                    part, BODY_CHUNK,
                ))))
        })?;
        self.expect_found(response, Some(&object.key))
            .and_then(|r| {
                r.headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        self.error(
                            Some(&object.key),
                            format!("part {number}: no ETag in answer"),
                        )
                    })
            })
    }

    fn complete(
        &self,
        object: &SiteObject,
        key: &str,
        upload_id: &str,
        etags: &[String],
        checksums: &[String],
    ) -> Result<(), TargetError> {
        let url = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        )
        .sign(SIGN_FOR);
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, (etag, checksum)) in etags.iter().zip(checksums).enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag><ChecksumSHA256>{checksum}</ChecksumSHA256></Part>",
                i + 1,
                etag.replace('"', "&quot;")
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let response = self.send(Some(&object.key), xml.len() as u64, || {
            Ok(self.http.post(url.clone()).body(xml.clone()))
        })?;
        let response = self.expect_found(response, Some(&object.key))?;
        // S3 may answer 200 and still report an error in the body.
        let text = response.text();
        if text.contains("<Error>") {
            return Err(self.error(Some(&object.key), describe_error(StatusCode::OK, text)));
        }
        Ok(())
    }

    /// Incomplete multipart uploads under our prefix (ListMultipartUploads, which rusty-s3 has
    /// no action for: signed here with its own signing function).
    fn list_uploads(&self) -> Result<Vec<Upload>, TargetError> {
        let prefix = self.full_key("v2/");
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            // As rusty-s3 does for CreateMultipartUpload: `uploads=1`, parameters sorted.
            let mut query = vec![("prefix", prefix.clone()), ("uploads", "1".to_string())];
            if let Some((key, id)) = &markers {
                query.push(("key-marker", key.clone()));
                query.push(("upload-id-marker", id.clone()));
            }
            query.sort();
            let url = rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                rusty_s3::Method::Get,
                self.bucket.base_url().clone(),
                self.credentials.key(),
                self.credentials.secret(),
                self.credentials.token(),
                self.bucket.region(),
                SIGN_FOR.as_secs(),
                query.iter().map(|(k, v)| (*k, v.as_str())),
                std::iter::empty(),
            );
            let response = self.send(None, 0, || Ok(self.http.get(url.clone())))?;
            let text = self.expect_found(response, None)?.text();
            let page: ListUploads = quick_xml::de::from_str(&text)
                .map_err(|e| self.error(None, format!("bad ListMultipartUploads answer: {e}")))?;
            uploads.extend(page.uploads);
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (Some(true), Some(key), Some(id)) => markers = Some((key, id)),
                _ => break,
            }
        }
        Ok(uploads)
    }

    /// Sign `action` with `headers` (every one of them signed), send it without a body, and
    /// treat 404 as an error.
    fn send_with_headers<'a, A: S3Action<'a>>(
        &self,
        mut action: A,
        headers: &[(&'static str, String)],
        key: &str,
    ) -> Result<Reply, TargetError> {
        for (name, value) in headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(SIGN_FOR);
        let method = match A::METHOD {
            rusty_s3::Method::Head => reqwest::Method::HEAD,
            rusty_s3::Method::Get => reqwest::Method::GET,
            rusty_s3::Method::Post => reqwest::Method::POST,
            rusty_s3::Method::Put => reqwest::Method::PUT,
            rusty_s3::Method::Delete => reqwest::Method::DELETE,
        };
        let response = self.send(Some(key), 0, || {
            let mut request = self.http.request(method.clone(), url.clone());
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            Ok(request)
        })?;
        self.expect_found(response, Some(key))
    }

    /// `send` passes 404 through for HEAD and GET; for writes it is an error (no such bucket
    /// or upload).
    fn expect_found(&self, response: Reply, key: Option<&str>) -> Result<Reply, TargetError> {
        if response.status() == StatusCode::NOT_FOUND {
            let text = response.text();
            return Err(self.error(key, describe_error(StatusCode::NOT_FOUND, text)));
        }
        Ok(response)
    }
}

impl Store for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn clean_stale(&self, age: Duration) -> Result<u64, TargetError> {
        let cutoff = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(jiff::Timestamp::MIN);
        let mut removed = 0;
        for upload in self.list_uploads()? {
            let started = upload
                .initiated
                .parse::<jiff::Timestamp>()
                .unwrap_or(jiff::Timestamp::MAX);
            if started > cutoff {
                continue;
            }
            let url = AbortMultipartUpload::new(
                &self.bucket,
                Some(&self.credentials),
                &upload.key,
                &upload.upload_id,
            )
            .sign(SIGN_FOR);
            self.send(Some(&upload.key), 0, || Ok(self.http.delete(url.clone())))?;
            removed += 1;
        }
        Ok(removed)
    }

    fn copy(&self, source: &str, object: &SiteObject) -> Result<(), TargetError> {
        if object.size > MAX_COPY_SIZE {
            return self.put(object);
        }
        let key = self.full_key(&object.key);
        let source = format!(
            "/{}/{}",
            self.bucket.name(),
            utf8_percent_encode(&self.full_key(source), COPY_SOURCE)
        );
        let mut headers = object_headers(object, false);
        headers.push(("x-amz-copy-source", source));
        headers.push(("x-amz-metadata-directive", "REPLACE".to_string()));
        let action = PutObject::new(&self.bucket, Some(&self.credentials), &key);
        // CopyObject may answer 200 and report an error in the body.
        let text = self
            .send_with_headers(action, &headers, &object.key)?
            .text();
        if text.contains("<Error>") {
            return Err(self.error(Some(&object.key), describe_error(StatusCode::OK, text)));
        }
        Ok(())
    }

    fn put_if(&self, object: &SiteObject, condition: &Condition) -> Result<bool, TargetError> {
        let header = match condition {
            Condition::Absent => ("if-none-match", "*".to_string()),
            Condition::Matches(etag) => ("if-match", format!("\"{}\"", etag.trim_matches('"'))),
        };
        // 412: the object changed; 409: another conditional write to the key is in flight (AWS).
        let lost = [StatusCode::PRECONDITION_FAILED, StatusCode::CONFLICT];
        let reply = self.put_with(object, &self.full_key(&object.key), &[header], &lost)?;
        if lost.contains(&reply.status()) {
            return Ok(false);
        }
        self.expect_found(reply, Some(&object.key)).map(|_| true)
    }

    fn conditional_writes(&self) -> Result<bool, TargetError> {
        if let Some(known) = self.conditional.get() {
            return Ok(*known);
        }
        let supported = self.probe_conditional_writes()?;
        Ok(*self.conditional.get_or_init(|| supported))
    }

    fn delete(&self, key: &str) -> Result<(), TargetError> {
        let url = DeleteObject::new(&self.bucket, Some(&self.credentials), &self.full_key(key))
            .sign(SIGN_FOR);
        self.send(Some(key), 0, || Ok(self.http.delete(url.clone())))
            .map(drop)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), TargetError> {
        keys.chunks(super::DELETE_BATCH)
            .try_for_each(|batch| self.delete_batch(batch))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError> {
        let full = self.full_key(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(full.as_str());
            action.with_max_keys(1000);
            if let Some(t) = &token {
                action.with_continuation_token(Cow::Owned(t.clone()));
            }
            let url = action.sign(SIGN_FOR);
            let response = self.send(None, 0, || Ok(self.http.get(url.clone())))?;
            let response = self.expect_found(response, None)?;
            let text = response.text();
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| self.error(None, format!("bad ListObjectsV2 answer: {e}")))?;
            for item in page.contents {
                // rusty-s3 asks for `encoding-type=url`: keys come back percent-encoded.
                let decoded = percent_decode_str(&item.key).decode_utf8_lossy();
                let Some(key) = decoded.strip_prefix(&self.prefix) else {
                    continue;
                };
                out.push(ObjectInfo {
                    key: key.to_string(),
                    size: item.size,
                    sha256: None,
                    etag: Some(item.etag.trim_matches('"').to_string()),
                    content_type: None,
                    cache_control: None,
                    modified: item.last_modified.parse().ok(),
                });
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, TargetError> {
        let full = self.full_key(key);
        let url = HeadObject::new(&self.bucket, Some(&self.credentials), &full).sign(SIGN_FOR);
        let response = self.send(Some(key), 0, || Ok(self.http.head(url.clone())))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Some(ObjectInfo {
            key: key.to_string(),
            size: header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            sha256: header(DIGEST_HEADER).and_then(|d| Digest::parse(&d).ok()),
            etag: header("etag").map(|e| e.trim_matches('"').to_string()),
            content_type: header("content-type"),
            cache_control: header("cache-control"),
            modified: header("last-modified")
                .and_then(|v| jiff::fmt::rfc2822::parse(&v).ok())
                .map(|zoned| zoned.timestamp()),
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>, TargetError> {
        let full = self.full_key(key);
        let url = GetObject::new(&self.bucket, Some(&self.credentials), &full).sign(SIGN_FOR);
        let response = self.send(Some(key), 0, || Ok(self.http.get(url.clone())))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|e| e.trim_matches('"').to_string());
        Ok(Some(Fetched {
            bytes: response.body.to_vec(),
            etag,
        }))
    }

    fn put(&self, object: &SiteObject) -> Result<(), TargetError> {
        let key = self.full_key(&object.key);
        match &object.body {
            site::Body::File(path) if object.size >= self.multipart_threshold => {
                self.put_multipart(object, &key, path)
            }
            _ => self.put_single(object, &key),
        }
    }
}

/// A ListMultipartUploads answer page.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUploads {
    #[serde(default, rename = "Upload")]
    uploads: Vec<Upload>,
    is_truncated: Option<bool>,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

/// One incomplete multipart upload.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
    initiated: String,
}

/// The headers every stored object carries (and, for single PUTs, its checksum).
fn object_headers(object: &SiteObject, with_checksum: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("content-type", object.content_type.clone()),
        ("cache-control", object.cache_control.to_string()),
        (DIGEST_HEADER, object.sha256.to_string()),
    ];
    if with_checksum {
        headers.push(("x-amz-checksum-sha256", checksum_of(&object.sha256)));
    }
    headers
}

/// `x-amz-checksum-sha256`: base64 of the raw digest.
fn checksum_of(digest: &Digest) -> String {
    BASE64.encode(hex::decode(digest.hex()).unwrap_or_default())
}

/// A request body: small documents from memory, files streamed in large chunks.
fn body_of(object: &SiteObject) -> Result<Body, String> {
    Ok(match &object.body {
        site::Body::Bytes(bytes) => Body::from(bytes.to_vec()),
        site::Body::File(path) => {
            let file =
                File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), BODY_CHUNK);
            Body::wrap_stream(stream)
        }
    })
}

/// A whole answer: status, headers and (small) body, read inside the runtime.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Reply {
    async fn receive(request: RequestBuilder) -> Result<Reply, reqwest::Error> {
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn status(&self) -> StatusCode {
        self.status
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Hash the file once: each part's checksum, and the whole file's digest, which must still be
/// the verified one (so a layout changed after verification is never uploaded).
fn part_checksums(
    path: &Path,
    size: u64,
    part_size: u64,
    expected: &Digest,
) -> Result<Vec<String>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut whole = Sha256::new();
    let mut part = Sha256::new();
    let mut in_part = 0u64;
    let mut total = 0u64;
    let mut checksums = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let want = (part_size - in_part).min(buf.len() as u64) as usize;
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        part.update(&buf[..n]);
        whole.update(&buf[..n]);
        in_part += n as u64;
        total += n as u64;
        if in_part == part_size {
            checksums.push(BASE64.encode(std::mem::take(&mut part).finalize()));
            in_part = 0;
        }
    }
    if in_part > 0 {
        checksums.push(BASE64.encode(part.finalize()));
    }
    let actual = format!("sha256:{}", hex::encode(whole.finalize()));
    if total != size || actual != expected.as_str() {
        return Err(format!(
            "source changed since verification: expected {expected} ({size} bytes), now {actual} ({total} bytes)"
        ));
    }
    Ok(checksums)
}

/// A readable message from an S3 error answer (`<Code>` and `<Message>`).
fn describe_error(status: StatusCode, body: String) -> String {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))?;
        Some(body[start..start + end].to_string())
    };
    let code = field("Code");
    let described = match (&code, field("Message")) {
        (Some(code), Some(message)) => format!("HTTP {status}: {code}: {message}"),
        (Some(code), None) => format!("HTTP {status}: {code}"),
        _ => format!("HTTP {status}"),
    };
    match next_step(status, code.as_deref()) {
        Some(hint) => format!("{described} ({hint})"),
        None => described,
    }
}

/// What to do about an S3 error answer, when the answer says.
fn next_step(status: StatusCode, code: Option<&str>) -> Option<&'static str> {
    Some(match code {
        Some("InvalidAccessKeyId") => {
            "the store does not know this access key: check AWS_ACCESS_KEY_ID and --endpoint"
        }
        Some("SignatureDoesNotMatch") => "check AWS_SECRET_ACCESS_KEY, and --region (R2: auto)",
        Some("NoSuchBucket") => "create the bucket, or fix its name in --to s3://BUCKET",
        Some("ExpiredToken" | "InvalidToken") => {
            "the session token expired or is invalid: renew AWS_SESSION_TOKEN"
        }
        Some("AccessDenied") | None if status == StatusCode::FORBIDDEN => {
            "the credentials may not do this: give them read and write on the bucket (R2: \
             an API token with Object Read & Write on it)"
        }
        _ => return None,
    })
}
