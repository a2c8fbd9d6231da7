//! The local-directory target: the bucket's keys as files, for dry runs and previews.
//!
//! Each object is a file at its key; its Content-Type, Cache-Control and sha256 live in a
//! sidecar record under `.regpress/meta/`, so `regpress serve` can answer exactly as a bucket
//! would and a re-publish can tell what is unchanged without re-hashing. Writes go to
//! `.regpress/tmp/` and are renamed into place (record first, then body), so a killed run never
//! leaves a half-written object visible. A record is trusted only beside the body it was
//! written for (see [`Meta::describes`]): killed between the two renames, the new record
//! stands beside the old body, and that object is not served, and is listed with nothing known
//! of it but its size, until a re-run writes it again. Keys ending in `/` (like `v2/`) are stored as a hidden
//! `.slash` file in that directory; no registry key can start with a dot, so nothing collides.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;
use walkdir::WalkDir;

use super::{
    Attributes, Body, Condition, Fetched, LIST_PAGE, MAX_GET, ObjectInfo, Page, Store, StoreError,
    Support,
};
use crate::digest::{Digest, copy_and_hash};

/// Directory (under the root) holding regpress's own records; never served.
const STATE_DIR: &str = ".regpress";
/// File name standing for a key that ends in `/`.
const SLASH_FILE: &str = ".slash";

/// The sidecar record of one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Content-Type to serve.
    pub content_type: String,
    /// Cache-Control to serve.
    pub cache_control: String,
    /// sha256 of the body, `sha256:<hex>`.
    pub sha256: String,
    /// Body length.
    pub size: u64,
}

/// Largest body of a mutable object whose record is checked by hashing the body (manifests
/// are capped at 4 MiB; tag lists and the catalog are small).
const CHECKED_SIZE: u64 = 16 * 1024 * 1024;

impl Meta {
    /// Whether this record describes the body file at `path` (of metadata `stat`). A run
    /// killed between placing a record and its body leaves the new record beside the *old*
    /// body, often of the same size (a tag moving to another index of the same length). So a
    /// record of a mutable object (tags, lists) is trusted only when the body hashes to it; a
    /// content-addressed object (`immutable`) has the same bytes whichever write placed it,
    /// and its size is checked.
    fn describes(&self, path: &Path, stat: &fs::Metadata) -> bool {
        if !stat.is_file() || stat.len() != self.size {
            return false;
        }
        if self.cache_control.contains("immutable") {
            return true;
        }
        stat.len() <= CHECKED_SIZE
            && File::open(path)
                .and_then(|file| crate::digest::hash_reader(file, |_| {}))
                .is_ok_and(|(digest, _)| digest.as_str() == self.sha256)
    }
}

/// A site in a local directory.
pub struct DirStore {
    name: String,
    root: PathBuf,
    /// What the walk behind each listing page left for its next pages, by prefix and the
    /// page's `next`: a listing walks the tree once, not once per page (quadratic in a catalog).
    rest: Mutex<HashMap<(String, String), Vec<ObjectInfo>>>,
}

impl DirStore {
    /// A store rooted at `root`, called `name` in messages. Nothing is created until a write.
    pub fn new(name: &str, root: PathBuf) -> DirStore {
        DirStore {
            name: name.to_string(),
            root,
            rest: Mutex::new(HashMap::new()),
        }
    }

    /// The body file and record of `key`, if the object exists.
    pub fn lookup(&self, key: &str) -> Option<(PathBuf, Meta)> {
        let rel = key_path(key)?;
        let body = self.root.join(&rel);
        let stat = fs::metadata(&body).ok()?;
        let meta = read_meta(&self.meta_path(&rel)).filter(|meta| meta.describes(&body, &stat))?;
        Some((body, meta))
    }

    fn meta_path(&self, rel: &Path) -> PathBuf {
        let mut p = self.root.join(STATE_DIR).join("meta").join(rel);
        p.as_mut_os_string().push(".json");
        p
    }

    fn error(&self, key: Option<&str>, reason: impl Into<String>) -> StoreError {
        StoreError::new(&self.name, key, reason)
    }

    /// What is known of the object at `body`, `None` when there is none. A body its record
    /// does not describe ([`Meta::describes`]) is listed with nothing known but its size, so a
    /// re-publish rewrites it and gc still reads it.
    fn info(&self, key: String, body: &Path, rel: &Path) -> io::Result<Option<ObjectInfo>> {
        let stat = match fs::metadata(body) {
            Ok(stat) => stat,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = read_meta(&self.meta_path(rel)).filter(|meta| meta.describes(body, &stat));
        Ok(Some(ObjectInfo {
            key,
            size: stat.len(),
            sha256: meta.as_ref().and_then(|m| Digest::parse(&m.sha256).ok()),
            etag: None,
            content_type: meta.as_ref().map(|m| m.content_type.clone()),
            cache_control: meta.map(|m| m.cache_control),
            modified: stat
                .modified()
                .ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok()),
        }))
    }

    /// Hold the site's write lock (`.regpress/lock`) until the returned file is dropped:
    /// conditional writes compare and write under it.
    fn lock(&self) -> io::Result<File> {
        let dir = self.root.join(STATE_DIR);
        fs::create_dir_all(&dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        file.lock()?;
        Ok(file)
    }

    /// Every object under `prefix`, in key order.
    fn list_all(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let dir = match prefix.rfind('/') {
            Some(i) => self.root.join(&prefix[..i]),
            None => self.root.clone(),
        };
        let mut out = Vec::new();
        if !dir.is_dir() {
            return Ok(out);
        }
        for entry in WalkDir::new(&dir).into_iter().filter_entry(|e| {
            e.depth() == 0
                || e.file_name() == SLASH_FILE
                || !e.file_name().to_string_lossy().starts_with('.')
        }) {
            let entry = entry
                .map_err(|e| self.error(None, format!("cannot list {}: {e}", dir.display())))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let Some(key) = path_key(rel) else { continue };
            if !key.starts_with(prefix) {
                continue;
            }
            let info = self
                .info(key.clone(), entry.path(), rel)
                .map_err(|e| self.error(Some(&key), format!("cannot stat: {e}")))?;
            out.extend(info);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn temp_file(&self) -> io::Result<NamedTempFile> {
        let tmp = self.root.join(STATE_DIR).join("tmp");
        fs::create_dir_all(&tmp)?;
        let file = NamedTempFile::new_in(&tmp)?;
        set_readable(file.as_file())?;
        Ok(file)
    }
}

#[cfg(unix)]
fn set_readable(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_readable(_file: &File) -> io::Result<()> {
    Ok(())
}

/// The relative file path of a key, or `None` for a key that could escape the root or collide
/// with our hidden files.
pub fn key_path(key: &str) -> Option<PathBuf> {
    let (body, slash) = match key.strip_suffix('/') {
        Some(k) => (k, true),
        None => (key, false),
    };
    if body.is_empty() {
        return None;
    }
    let mut rel = PathBuf::new();
    for part in body.split('/') {
        if part.is_empty() || part.starts_with('.') || part.contains('\\') || part.contains('\0') {
            return None;
        }
        rel.push(part);
    }
    if slash {
        rel.push(SLASH_FILE);
    }
    Some(rel)
}

/// The key of a relative file path (inverse of [`key_path`]), `None` for our own files.
fn path_key(rel: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in rel.components() {
        parts.push(c.as_os_str().to_str()?);
    }
    let last = parts.pop()?;
    if parts.iter().any(|p| p.starts_with('.')) {
        return None;
    }
    match last {
        SLASH_FILE if !parts.is_empty() => Some(format!("{}/", parts.join("/"))),
        _ if last.starts_with('.') => None,
        _ => {
            parts.push(last);
            Some(parts.join("/"))
        }
    }
}

fn read_meta(path: &Path) -> Option<Meta> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Store for DirStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn clean_stale(&self, _prefix: &str, age: std::time::Duration) -> Result<u64, StoreError> {
        let tmp = self.root.join(STATE_DIR).join("tmp");
        let Ok(entries) = fs::read_dir(&tmp) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age);
            if old && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Page, StoreError> {
        // The first page walks the tree; the next ones continue from what it left.
        let left = after.and_then(|after| {
            let mut rest = self.rest.lock().ok()?;
            rest.remove(&(prefix.to_string(), after.to_string()))
        });
        let all = match left {
            Some(left) => left,
            None => {
                let all = self.list_all(prefix)?;
                let start = after.map_or(0, |a| all.partition_point(|i| i.key.as_str() <= a));
                all.into_iter().skip(start).collect()
            }
        };
        let max = max.clamp(1, LIST_PAGE);
        let mut objects = all;
        let more = objects.split_off(max.min(objects.len()));
        let next = (!more.is_empty())
            .then(|| objects.last().map(|i| i.key.clone()))
            .flatten();
        if let (Some(next), Ok(mut rest)) = (&next, self.rest.lock()) {
            rest.insert((prefix.to_string(), next.clone()), more);
        }
        Ok(Page { next, objects })
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let Some(rel) = key_path(key) else {
            return Ok(None);
        };
        let body = self.root.join(&rel);
        self.info(key.to_string(), &body, &rel)
            .map_err(|e| self.error(Some(key), format!("cannot stat: {e}")))
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let Some(rel) = key_path(key) else {
            return Ok(None);
        };
        let path = self.root.join(rel);
        match fs::metadata(&path) {
            Ok(stat) if stat.len() > MAX_GET => {
                let why = format!("{} bytes, over the {MAX_GET}-byte read limit", stat.len());
                return Err(self.error(Some(key), why));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(Fetched {
                etag: Some(Digest::of_bytes(&bytes).hex().to_string()),
                bytes,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(Some(key), format!("cannot read: {e}"))),
        }
    }

    fn put_if(
        &self,
        key: &str,
        body: &Body,
        attributes: &Attributes,
        condition: &Condition,
    ) -> Result<bool, StoreError> {
        let _lock = self
            .lock()
            .map_err(|e| self.error(Some(key), format!("cannot lock the site: {e}")))?;
        let current = self.get(key)?.and_then(|f| f.etag);
        let holds = match condition {
            Condition::Absent => current.is_none(),
            Condition::Matches(etag) => current.as_deref() == Some(etag.as_str()),
        };
        if holds {
            self.put(key, body, attributes)?;
        }
        Ok(holds)
    }

    fn conditional_writes(&self) -> Result<Support, StoreError> {
        Ok(Support::Yes)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            let Some(rel) = key_path(key) else {
                continue;
            };
            // Body first, then its record: a visible body always has its record.
            for path in [self.root.join(&rel), self.meta_path(&rel)] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.error(Some(key), format!("cannot remove: {e}"))),
                }
            }
        }
        Ok(())
    }

    fn put(&self, key: &str, body: &Body, attributes: &Attributes) -> Result<(), StoreError> {
        let fail = |what: &str, e: io::Error| self.error(Some(key), format!("{what}: {e}"));
        let rel =
            key_path(key).ok_or_else(|| self.error(Some(key), "key cannot be stored as a file"))?;
        let mut file = self
            .temp_file()
            .map_err(|e| fail("cannot create temporary file", e))?;
        let source = body.reader().map_err(|e| fail("cannot read", e))?;
        let (sha256, size) = copy_and_hash(source, file.as_file_mut(), |_| {})
            .map_err(|e| fail("cannot copy", e))?;
        if sha256 != attributes.sha256 || size != body.len() {
            return Err(self.error(
                Some(key),
                format!(
                    "source changed since verification: expected {} ({} bytes), read {sha256} ({size} bytes)",
                    attributes.sha256,
                    body.len()
                ),
            ));
        }
        self.place(key, attributes, size, &rel, file.into_temp_path())
    }

    fn copy(
        &self,
        source: &str,
        key: &str,
        size: u64,
        attributes: &Attributes,
    ) -> Result<bool, StoreError> {
        let fail = |what: &str, e: io::Error| self.error(Some(key), format!("{what}: {e}"));
        let rel =
            key_path(key).ok_or_else(|| self.error(Some(key), "key cannot be stored as a file"))?;
        let source_path = key_path(source)
            .map(|r| self.root.join(r))
            .ok_or_else(|| self.error(Some(source), "key cannot be stored as a file"))?;
        let found = fs::metadata(&source_path)
            .map_err(|e| fail(&format!("cannot copy from {source}"), e))?
            .len();
        if found != size {
            return Err(self.error(
                Some(key),
                format!("copy source {source} has {found} bytes, expected {size}"),
            ));
        }
        // Content-addressed objects never change in place, so a hard link is a safe copy.
        let body = self
            .temp_file()
            .map_err(|e| fail("cannot create temporary file", e))?
            .into_temp_path();
        fs::remove_file(&body).map_err(|e| fail("cannot prepare copy", e))?;
        if fs::hard_link(&source_path, &body).is_err() {
            fs::copy(&source_path, &body)
                .map_err(|e| fail(&format!("cannot copy from {source}"), e))?;
        }
        self.place(key, attributes, size, &rel, body).map(|()| true)
    }
}

impl DirStore {
    /// Put a finished body file in place: its record first, then the body, each renamed
    /// atomically, so a visible body is described by its record or by none.
    fn place(
        &self,
        key: &str,
        attributes: &Attributes,
        size: u64,
        rel: &Path,
        body: tempfile::TempPath,
    ) -> Result<(), StoreError> {
        let fail = |what: &str, e: io::Error| self.error(Some(key), format!("{what}: {e}"));
        let meta = Meta {
            content_type: attributes.content_type.clone(),
            cache_control: attributes.cache_control.clone(),
            sha256: attributes.sha256.to_string(),
            size,
        };
        let mut record = self
            .temp_file()
            .map_err(|e| fail("cannot create temporary file", e))?;
        serde_json::to_writer(&mut record, &meta)
            .map_err(|e| fail("cannot write record", io::Error::other(e)))?;
        let meta_path = self.meta_path(rel);
        let body_path = self.root.join(rel);
        for path in [&meta_path, &body_path] {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| fail("cannot create directory", e))?;
            }
        }
        record
            .persist(&meta_path)
            .map_err(|e| fail("cannot place record", e.error))?;
        body.persist(&body_path)
            .map_err(|e| fail("cannot place object", e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Bytes to write and the attributes they go with.
    fn object(bytes: &[u8], content_type: &str, cache_control: &str) -> (Arc<[u8]>, Attributes) {
        let attributes = Attributes {
            content_type: content_type.into(),
            cache_control: cache_control.into(),
            sha256: Digest::of_bytes(bytes),
        };
        (Arc::from(bytes.to_vec()), attributes)
    }

    #[test]
    fn key_paths_round_trip_and_refuse_escapes() {
        for key in [
            "v2/",
            "v2/index.html",
            "v2/a/b/manifests/sha256:00",
            "v2/_catalog",
        ] {
            let rel = key_path(key).unwrap();
            assert_eq!(path_key(&rel).as_deref(), Some(key));
        }
        for bad in [
            "",
            "/",
            "../x",
            "v2/../x",
            "v2//x",
            "v2/.regpress/x",
            "/abs",
        ] {
            assert!(key_path(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn records_serve_headers_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new("t", dir.path().to_path_buf());
        let (bytes, attributes) = object(b"{}", "application/json", "public, max-age=60");
        store.put("v2/", &Body::Bytes(bytes), &attributes).unwrap();
        let (path, meta) = store.lookup("v2/").unwrap();
        assert_eq!(path, dir.path().join("v2/.slash"));
        assert_eq!(meta.content_type, "application/json");
        assert_eq!(meta.cache_control, "public, max-age=60");
        assert_eq!(
            fs::read_dir(dir.path().join(".regpress/tmp"))
                .unwrap()
                .count(),
            0
        );
        store.delete("v2/").unwrap();
        assert!(store.lookup("v2/").is_none());
    }

    /// A listing of several pages walks the tree once: its later pages continue from that
    /// walk (shown by removing the tree after the first page), each page in key order.
    #[test]
    fn a_listing_walks_the_tree_once_not_once_per_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new("t", dir.path().to_path_buf());
        let (bytes, attributes) = object(b"x", "text/plain", "no-store");
        let keys: Vec<String> = (0..LIST_PAGE + 5)
            .map(|i| format!("v2/r/k{i:05}"))
            .collect();
        for key in &keys {
            store
                .put(key, &Body::Bytes(bytes.clone()), &attributes)
                .unwrap();
        }
        let first = store.list_page("v2/", None, LIST_PAGE).unwrap();
        assert_eq!(first.objects.len(), LIST_PAGE);
        fs::remove_dir_all(dir.path().join("v2")).unwrap();
        let second = store
            .list_page("v2/", first.next.as_deref(), LIST_PAGE)
            .unwrap();
        assert_eq!(second.next, None);
        let listed: Vec<String> = first
            .objects
            .iter()
            .chain(&second.objects)
            .map(|i| i.key.clone())
            .collect();
        assert_eq!(listed, keys);
        // A listing started afresh sees the tree as it is now.
        assert!(store.list("v2/").unwrap().is_empty());
    }
}
