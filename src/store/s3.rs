//! The S3 backend: Cloudflare R2, AWS S3, Garage, MinIO and any S3-compatible store.
//!
//! Requests are presigned with `rusty-s3` (every header we send is signed) and sent with
//! `reqwest`'s async client on a small runtime the worker threads block on. Each operation is
//! one request, sent once; its failure says whether trying again may help ([`Recovery`]), and
//! the retry layer ([`super::layer`]) decides. Bodies stream from disk. Each PUT carries
//! `x-amz-checksum-sha256` (a part, `x-amz-checksum-crc32`), so a store that checks it refuses
//! any byte that is not the digest's. Not all stores do: until one answers a write with the
//! checksum it was sent (proof that it computed it), the MD5 of what is sent is compared with
//! the ETag it answers ([`Sent`]), and bytes changed on the way are removed and sent again;
//! after that, MD5 (the slowest hash on the path) is no longer computed. The digest is kept in
//! `x-amz-meta-digest` for an edge rule to surface as `Docker-Content-Digest`. Multipart
//! uploads are the trait's own calls, driven by [`super::upload`]; keys are the bucket's own
//! (a prefix is [`super::layer::Prefixed`]).

use std::borrow::Cow;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt as _;
use md5::{Digest as _, Md5};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, HeaderMap};
use reqwest::{Client, RequestBuilder};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObjects,
    DeleteObjectsResponse, GetObject, HeadObject, ListObjectsV2, ObjectIdentifier, PutObject,
    UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio_util::io::ReaderStream;

use super::{
    Attributes, Body, Condition, Fetched, MAX_GET, ObjectInfo, Page, Part, Recovery, Store,
    StoreError, Support,
};
use crate::digest::Digest;

/// How long a presigned request stays valid.
const SIGN_FOR: Duration = Duration::from_secs(3600);
/// Object metadata holding the body's sha256 digest.
const DIGEST_HEADER: &str = "x-amz-meta-digest";
/// Slowest transfer rate we wait for before calling a request timed out.
const MIN_BYTES_PER_SEC: u64 = 256 * 1024;
/// Read size when streaming a file into a request body. reqwest's blocking client moved 8 KiB
/// chunks across threads, which a profile showed as the top client cost; 256 KiB chunks cut the
/// publisher's CPU by half while 16 uploads in flight stay under 40 MB of memory.
const BODY_CHUNK: usize = 256 << 10;
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
    /// Time a request without a body may take (uploads get more per byte).
    pub timeout: Duration,
}

/// A bucket as a [`Store`].
pub struct S3Store {
    name: String,
    bucket: Bucket,
    credentials: Credentials,
    http: Client,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
    /// The store has answered a write with the checksum it was sent: it checks them, so the
    /// MD5 of what is sent need not be compared with its ETag.
    checks_checksums: AtomicBool,
}

impl S3Store {
    /// A store for `bucket`, called `name` in messages.
    pub fn new(name: &str, bucket: &str, settings: S3Settings) -> Result<S3Store, String> {
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
        Ok(S3Store {
            name: name.to_string(),
            bucket,
            credentials: settings.credentials,
            http,
            runtime,
            timeout: settings.timeout,
            checks_checksums: AtomicBool::new(false),
        })
    }

    fn error(&self, key: Option<&str>, reason: impl Into<String>) -> StoreError {
        StoreError::new(&self.name, key, reason)
    }

    /// Send one request. 404 is returned, not an error.
    fn send(
        &self,
        key: Option<&str>,
        bytes: u64,
        request: Result<RequestBuilder, String>,
    ) -> Result<Reply, StoreError> {
        self.send_passing(key, bytes, &[StatusCode::NOT_FOUND], request)
    }

    /// Send one request; answers with a status in `pass` are returned, not errors. A failure
    /// says whether trying again may help: 5xx, 429 and transport errors may.
    fn send_passing(
        &self,
        key: Option<&str>,
        bytes: u64,
        pass: &[StatusCode],
        request: Result<RequestBuilder, String>,
    ) -> Result<Reply, StoreError> {
        let timeout = self.timeout + Duration::from_secs(bytes / MIN_BYTES_PER_SEC);
        let request = request.map_err(|e| self.error(key, e))?.timeout(timeout);
        match self.runtime.block_on(Reply::receive(request)) {
            Ok((_, true)) => Err(self.error(
                key,
                format!("answer longer than {MAX_GET} bytes, the most regpress reads of one"),
            )),
            Ok((r, _)) if r.status().is_success() || pass.contains(&r.status()) => Ok(r),
            Ok((r, _)) => {
                let status = r.status();
                let after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let recovery = match after {
                    // The bytes did not match their checksum: changed on the way, so sending
                    // them again may well work.
                    _ if status == StatusCode::BAD_REQUEST && refused_checksum(&r.text()) => {
                        Recovery::Transient
                    }
                    _ if !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS => {
                        Recovery::Permanent
                    }
                    Some(after) => Recovery::RetryAfter(after),
                    None => Recovery::Transient,
                };
                Err(self
                    .error(key, describe_error(status, r.text()))
                    .recovering(recovery))
            }
            Err(e) => Err(self
                .error(
                    key,
                    format!(
                        "request failed: {} (is --endpoint right and reachable?)",
                        crate::causes::chain(&e)
                    ),
                )
                .recovering(Recovery::Transient)),
        }
    }

    /// A single PUT with `extra` headers (signed too); answers with a status in `pass` are
    /// returned rather than failed.
    fn put_with(
        &self,
        key: &str,
        body: &Body,
        attributes: &Attributes,
        extra: &[(&'static str, String)],
        pass: &[StatusCode],
    ) -> Result<Reply, StoreError> {
        let mut action = PutObject::new(&self.bucket, Some(&self.credentials), key);
        let checksum = checksum_of(&attributes.sha256);
        let mut headers = object_headers(attributes);
        headers.push(("x-amz-checksum-sha256", checksum.clone()));
        headers.extend(extra.iter().cloned());
        for (name, value) in &headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(SIGN_FOR);
        let mut passing = vec![StatusCode::NOT_FOUND];
        passing.extend_from_slice(pass);
        let mut request = self.http.put(url);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let (request, sent) = match self.body_of(body) {
            Ok((b, sent)) => (Ok(request.header(CONTENT_LENGTH, body.len()).body(b)), sent),
            Err(e) => (Err(e), None),
        };
        let reply = self.send_passing(Some(key), body.len(), &passing, request)?;
        self.learn(&reply, "x-amz-checksum-sha256", &checksum);
        let etag = reply.headers().get("etag").and_then(|v| v.to_str().ok());
        let wrong = sent.and_then(|s| s.contradicted_by(etag));
        if let (true, Some(reason)) = (reply.status().is_success(), wrong) {
            // Nothing may name what the store holds under `key` now: remove it, and let the
            // retry layer send it again.
            let removed = match self.delete_many(&[key.to_string()]) {
                Ok(()) => "removed it",
                Err(_) => "could not remove it",
            };
            return Err(self
                .error(Some(key), format!("{reason}; {removed}"))
                .recovering(Recovery::Transient));
        }
        Ok(reply)
    }

    /// Incomplete multipart uploads under `prefix` (ListMultipartUploads, which rusty-s3 has
    /// no action for: signed here with its own signing function).
    fn list_uploads(&self, prefix: &str) -> Result<Vec<Upload>, StoreError> {
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            // As rusty-s3 does for CreateMultipartUpload: `uploads=1`, parameters sorted.
            let mut query = vec![("prefix", prefix.to_string()), ("uploads", "1".to_string())];
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
            let response = self.send(None, 0, Ok(self.http.get(url)))?;
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
    ) -> Result<Reply, StoreError> {
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
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = self.send(Some(key), 0, Ok(request))?;
        self.expect_found(response, Some(key))
    }

    /// `send` passes 404 through for HEAD and GET; for writes it is an error (no such bucket
    /// or upload).
    fn expect_found(&self, response: Reply, key: Option<&str>) -> Result<Reply, StoreError> {
        if response.status() == StatusCode::NOT_FOUND {
            let text = response.text();
            return Err(self.error(key, describe_error(StatusCode::NOT_FOUND, text)));
        }
        Ok(response)
    }

    /// A 200 answer that reports an error in its body (CopyObject, CompleteMultipartUpload
    /// do that), as an error: S3 says it may be retried.
    fn error_in_body(&self, key: &str, response: Reply) -> Result<Reply, StoreError> {
        let text = response.text();
        if text.contains("<Error>") {
            return Err(self
                .error(Some(key), describe_error(StatusCode::OK, text))
                .recovering(Recovery::Transient));
        }
        Ok(response)
    }
}

impl Store for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Page, StoreError> {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        action.with_prefix(prefix);
        action.with_max_keys(max.clamp(1, super::LIST_PAGE));
        if let Some(token) = after {
            action.with_continuation_token(Cow::Owned(token.to_string()));
        }
        let url = action.sign(SIGN_FOR);
        let response = self.send(None, 0, Ok(self.http.get(url)))?;
        let text = self.expect_found(response, None)?.text();
        let page = ListObjectsV2::parse_response(&text).map_err(|e| {
            self.error(None, format!("bad ListObjectsV2 answer: {e}"))
                .recovering(Recovery::Transient)
        })?;
        let objects = page
            .contents
            .into_iter()
            .map(|item| ObjectInfo {
                // rusty-s3 asks for `encoding-type=url`: keys come back percent-encoded.
                key: percent_decode_str(&item.key)
                    .decode_utf8_lossy()
                    .into_owned(),
                size: item.size,
                sha256: None,
                etag: Some(item.etag.trim_matches('"').to_string()),
                content_type: None,
                cache_control: None,
                modified: item.last_modified.parse().ok(),
            })
            .collect();
        Ok(Page {
            objects,
            next: page.next_continuation_token,
        })
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let url = HeadObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGN_FOR);
        let response = self.send(Some(key), 0, Ok(self.http.head(url)))?;
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

    fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let url = GetObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGN_FOR);
        let response = self.send(Some(key), 0, Ok(self.http.get(url)))?;
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

    fn put(&self, key: &str, body: &Body, attributes: &Attributes) -> Result<(), StoreError> {
        self.put_with(key, body, attributes, &[], &[])
            .and_then(|r| self.expect_found(r, Some(key)))
            .map(drop)
    }

    fn put_if(
        &self,
        key: &str,
        body: &Body,
        attributes: &Attributes,
        condition: &Condition,
    ) -> Result<bool, StoreError> {
        let header = match condition {
            Condition::Absent => ("if-none-match", "*".to_string()),
            Condition::Matches(etag) => ("if-match", format!("\"{}\"", etag.trim_matches('"'))),
        };
        // 412: the object changed; 409: another conditional write to the key is in flight
        // (AWS). 400 and 501: the store does not implement the header.
        let lost = [StatusCode::PRECONDITION_FAILED, StatusCode::CONFLICT];
        let unsupported = [StatusCode::BAD_REQUEST, StatusCode::NOT_IMPLEMENTED];
        let pass: Vec<StatusCode> = lost.iter().chain(&unsupported).copied().collect();
        let reply = self.put_with(key, body, attributes, &[header], &pass)?;
        if lost.contains(&reply.status()) {
            return Ok(false);
        }
        if unsupported.contains(&reply.status()) {
            return Err(self
                .error(Some(key), describe_error(reply.status(), reply.text()))
                .recovering(Recovery::Unsupported));
        }
        self.expect_found(reply, Some(key)).map(|_| true)
    }

    fn conditional_writes(&self) -> Result<Support, StoreError> {
        // S3-compatible stores differ (R2 and AWS honour the headers, Garage 2.5 ignores
        // them) and none says which it is.
        Ok(Support::Unknown)
    }

    fn copy(
        &self,
        source: &str,
        key: &str,
        size: u64,
        attributes: &Attributes,
    ) -> Result<bool, StoreError> {
        if size > MAX_COPY_SIZE {
            return Ok(false);
        }
        let source = format!(
            "/{}/{}",
            self.bucket.name(),
            utf8_percent_encode(source, COPY_SOURCE)
        );
        let mut headers = object_headers(attributes);
        headers.push(("x-amz-copy-source", source));
        headers.push(("x-amz-metadata-directive", "REPLACE".to_string()));
        let action = PutObject::new(&self.bucket, Some(&self.credentials), key);
        let reply = self.send_with_headers(action, &headers, key)?;
        self.error_in_body(key, reply).map(|_| true)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        let Some(first_key) = keys.first().map(String::as_str) else {
            return Ok(());
        };
        let ids: Vec<ObjectIdentifier> = keys
            .iter()
            .map(|k| ObjectIdentifier::new(k.clone()))
            .collect();
        let mut action = DeleteObjects::new(&self.bucket, Some(&self.credentials), ids.iter());
        action.set_quiet(true);
        let url = action.sign(SIGN_FOR);
        let (body, md5) = action.body_with_md5();
        let length = body.len() as u64;
        let request = self.http.post(url).header("content-md5", &md5).body(body);
        let reply = self.send(Some(first_key), length, Ok(request))?;
        let text = self.expect_found(reply, Some(first_key))?.text();
        let parsed = DeleteObjectsResponse::parse(&text).map_err(|e| {
            self.error(Some(first_key), format!("bad DeleteObjects answer: {e}"))
                .recovering(Recovery::Transient)
        })?;
        let Some(first) = parsed.errors.first() else {
            return Ok(());
        };
        let message = format!(
            "DeleteObjects: {}: {}: {} ({} of {} keys failed)",
            first.key,
            first.code,
            first.message,
            parsed.errors.len(),
            keys.len()
        );
        // Deleting again is harmless: a batch that failed for the store's own reasons is
        // retried whole.
        let transient = parsed.errors.iter().all(|e| {
            matches!(
                e.code.as_str(),
                "InternalError" | "ServiceUnavailable" | "SlowDown"
            )
        });
        let error = self.error(Some(first_key), message);
        Err(if transient {
            error.recovering(Recovery::Transient)
        } else {
            error
        })
    }

    fn create_multipart(
        &self,
        key: &str,
        attributes: &Attributes,
    ) -> Result<Option<String>, StoreError> {
        let create = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key);
        let mut headers = object_headers(attributes);
        headers.push(("x-amz-checksum-algorithm", "CRC32".to_string()));
        let text = self.send_with_headers(create, &headers, key)?.text();
        let created = CreateMultipartUpload::parse_response(&text).map_err(|e| {
            self.error(Some(key), format!("bad CreateMultipartUpload answer: {e}"))
                .recovering(Recovery::Transient)
        })?;
        Ok(Some(created.upload_id().to_string()))
    }

    fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: u16,
        body: &Body,
        crc32: u32,
    ) -> Result<String, StoreError> {
        let checksum = BASE64.encode(crc32.to_be_bytes());
        let mut action =
            UploadPart::new(&self.bucket, Some(&self.credentials), key, number, upload);
        action
            .headers_mut()
            .insert("x-amz-checksum-crc32", checksum.clone());
        let url = action.sign(SIGN_FOR);
        let len = body.len();
        let (body, sent) = self.body_of(body).map_err(|e| self.error(Some(key), e))?;
        let request = self
            .http
            .put(url)
            .header("x-amz-checksum-crc32", &checksum)
            .header(CONTENT_LENGTH, len)
            .body(body);
        let response = self.send(Some(key), len, Ok(request))?;
        let response = self.expect_found(response, Some(key))?;
        self.learn(&response, "x-amz-checksum-crc32", &checksum);
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                self.error(Some(key), format!("part {number}: no ETag in answer"))
                    .recovering(Recovery::Transient)
            })?;
        // A part the store got wrong is sent again under the same number, which replaces it.
        match sent.and_then(|s| s.contradicted_by(Some(&etag))) {
            Some(reason) => Err(self
                .error(Some(key), format!("part {number}: {reason}"))
                .recovering(Recovery::Transient)),
            None => Ok(etag),
        }
    }

    fn complete_multipart(
        &self,
        key: &str,
        upload: &str,
        parts: &[Part],
    ) -> Result<(), StoreError> {
        let url = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            upload,
            parts.iter().map(|p| p.etag.as_str()),
        )
        .sign(SIGN_FOR);
        let mut xml = String::from("<CompleteMultipartUpload>");
        for part in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag><ChecksumCRC32>{}</ChecksumCRC32></Part>",
                part.number,
                part.etag.replace('"', "&quot;"),
                BASE64.encode(part.crc32.to_be_bytes())
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let length = xml.len() as u64;
        let response = self.send(Some(key), length, Ok(self.http.post(url).body(xml)))?;
        let response = self.expect_found(response, Some(key))?;
        self.error_in_body(key, response).map(drop)
    }

    fn abort_multipart(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        let url = AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), key, upload)
            .sign(SIGN_FOR);
        self.send(Some(key), 0, Ok(self.http.delete(url))).map(drop)
    }

    fn clean_stale(&self, prefix: &str, age: Duration) -> Result<u64, StoreError> {
        let cutoff = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(jiff::Timestamp::MIN);
        let mut removed = 0;
        for upload in self.list_uploads(prefix)? {
            let started = upload
                .initiated
                .parse::<jiff::Timestamp>()
                .unwrap_or(jiff::Timestamp::MAX);
            if started > cutoff {
                continue;
            }
            self.abort_multipart(&upload.key, &upload.upload_id)?;
            removed += 1;
        }
        Ok(removed)
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

/// The headers every stored object carries.
fn object_headers(attributes: &Attributes) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", attributes.content_type.clone()),
        ("cache-control", attributes.cache_control.clone()),
        (DIGEST_HEADER, attributes.sha256.to_string()),
    ]
}

/// `x-amz-checksum-sha256`: base64 of the raw digest.
fn checksum_of(digest: &Digest) -> String {
    BASE64.encode(hex::decode(digest.hex()).unwrap_or_default())
}

impl S3Store {
    /// A request body: documents and parts from memory (not copied), files streamed in large
    /// chunks; with the MD5 of what is sent taken as it goes, unless the store is known to
    /// check the checksum headers itself.
    fn body_of(&self, body: &Body) -> Result<(reqwest::Body, Option<Sent>), String> {
        let sent = (!self.checks_checksums.load(Ordering::Relaxed)).then(Sent::default);
        Ok(match body {
            Body::Bytes(bytes) => {
                if let Some(sent) = &sent {
                    sent.add(bytes);
                }
                let bytes = bytes::Bytes::from_owner(Arc::clone(bytes));
                (reqwest::Body::from(bytes), sent)
            }
            Body::File { path, offset, len } => {
                let mut file =
                    File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                file.seek(SeekFrom::Start(*offset))
                    .map_err(|e| format!("cannot seek in {}: {e}", path.display()))?;
                let section = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), *len);
                let stream = ReaderStream::with_capacity(section, BODY_CHUNK);
                let body = match sent.clone() {
                    Some(seen) => reqwest::Body::wrap_stream(stream.inspect(move |chunk| {
                        if let Ok(chunk) = chunk {
                            seen.add(chunk);
                        }
                    })),
                    None => reqwest::Body::wrap_stream(stream),
                };
                (body, sent)
            }
        })
    }

    /// Remember that the store checks checksums when its answer to a write carries the
    /// checksum `header` it was sent, `sent`: it computed it from the bytes it received.
    fn learn(&self, reply: &Reply, header: &str, sent: &str) {
        let echoed = reply.headers().get(header).and_then(|v| v.to_str().ok());
        if reply.status().is_success() && echoed == Some(sent) {
            self.checks_checksums.store(true, Ordering::Relaxed);
        }
    }
}

/// Whether an error answer says the body did not match a checksum header (AWS: BadDigest,
/// InvalidDigest, XAmzContentChecksumMismatch; other stores say it in words).
fn refused_checksum(answer: &str) -> bool {
    let answer = answer.to_ascii_lowercase();
    [
        "baddigest",
        "invaliddigest",
        "checksummismatch",
        "checksum mismatch",
    ]
    .iter()
    .any(|code| answer.contains(code))
        || (answer.contains("checksum") && answer.contains("match"))
}

/// The MD5 of the bytes a request body actually sent, taken as they go out.
///
/// The `x-amz-checksum-sha256` each write carries lets a store refuse bytes that are not
/// the digest's, but not every S3-compatible store checks it. Every one of them answers a
/// single-part PUT and an UploadPart with the MD5 of what it received as the ETag, so the
/// two are compared after each write: a byte changed on the way is found whatever the store.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Md5>>);

impl Sent {
    fn add(&self, bytes: &[u8]) {
        if let Ok(mut md5) = self.0.lock() {
            md5.update(bytes);
        }
    }

    /// Hex MD5 of everything sent.
    fn md5(&self) -> String {
        let md5 = self.0.lock().map(|m| m.clone()).unwrap_or_default();
        hex::encode(md5.finalize())
    }

    /// Whether the store's `etag` says it received other bytes. An ETag that is not a plain
    /// MD5 (AWS with SSE-KMS, say) proves nothing either way; the checksum header stands.
    fn contradicted_by(&self, etag: Option<&str>) -> Option<String> {
        let etag = etag?.trim_matches('"');
        let is_md5 = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        let sent = self.md5();
        (is_md5 && !etag.eq_ignore_ascii_case(&sent)).then(|| {
            format!(
                "the store received other bytes than were sent (its ETag {etag}, the MD5 of \
                 the bytes sent {sent})"
            )
        })
    }
}

/// A whole answer: status, headers and (small) body, read inside the runtime.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Reply {
    /// Send and read the whole answer, but never more than [`MAX_GET`] bytes of it: `None`
    /// for the body of a longer answer.
    async fn receive(request: RequestBuilder) -> Result<(Reply, bool), reqwest::Error> {
        let mut response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if (body.len() + chunk.len()) as u64 > MAX_GET {
                let reply = Reply {
                    status,
                    headers,
                    body: bytes::Bytes::new(),
                };
                return Ok((reply, true));
            }
            body.extend_from_slice(&chunk);
        }
        let reply = Reply {
            status,
            headers,
            body: body.into(),
        };
        Ok((reply, false))
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
