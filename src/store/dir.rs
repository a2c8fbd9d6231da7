//! The local-directory target: the bucket's keys as files, for dry runs and previews.
//!
//! Each object is a file at its key; its Content-Type, Cache-Control and sha256 live in a
//! sidecar record under `.regpress/meta/`, so `regpress serve` can answer exactly as a bucket
//! would and a re-publish can tell what is unchanged without re-hashing. Writes go to
//! `.regpress/tmp/` and are renamed into place (record first, then body), so a killed run never
//! leaves a half-written object visible. Keys ending in `/` (like `v2/`) are stored as a hidden
//! `.slash` file in that directory; no registry key can start with a dot, so nothing collides.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;
use walkdir::WalkDir;

use super::{Condition, Fetched, ObjectInfo, Store};
use crate::digest::{Digest, copy_and_hash};
use crate::error::TargetError;
use crate::site::{Body, SiteObject};

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

/// A site in a local directory.
pub struct DirStore {
    name: String,
    root: PathBuf,
    operations: AtomicU64,
}

impl DirStore {
    /// A store rooted at `root`, called `name` in messages. Nothing is created until a write.
    pub fn new(name: &str, root: PathBuf) -> DirStore {
        DirStore {
            name: name.to_string(),
            root,
            operations: AtomicU64::new(0),
        }
    }

    /// The body file and record of `key`, if the object exists.
    pub fn lookup(&self, key: &str) -> Option<(PathBuf, Meta)> {
        let rel = key_path(key)?;
        let body = self.root.join(&rel);
        if !body.is_file() {
            return None;
        }
        let meta = read_meta(&self.meta_path(&rel))?;
        Some((body, meta))
    }

    fn meta_path(&self, rel: &Path) -> PathBuf {
        let mut p = self.root.join(STATE_DIR).join("meta").join(rel);
        p.as_mut_os_string().push(".json");
        p
    }

    fn error(&self, key: Option<&str>, reason: impl Into<String>) -> TargetError {
        TargetError {
            target: self.name.clone(),
            key: key.map(str::to_string),
            reason: reason.into(),
        }
    }

    fn info(&self, key: String, body: &Path, rel: &Path) -> io::Result<ObjectInfo> {
        let stat = fs::metadata(body)?;
        let meta = read_meta(&self.meta_path(rel));
        Ok(ObjectInfo {
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
        })
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

    fn requests(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    fn clean_stale(&self, age: std::time::Duration) -> Result<u64, TargetError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
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

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
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
            out.push(info);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, TargetError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        let Some(rel) = key_path(key) else {
            return Ok(None);
        };
        let body = self.root.join(&rel);
        match self.info(key.to_string(), &body, &rel) {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(Some(key), format!("cannot stat: {e}"))),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>, TargetError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        let Some(rel) = key_path(key) else {
            return Ok(None);
        };
        match fs::read(self.root.join(rel)) {
            Ok(bytes) => Ok(Some(Fetched {
                etag: Some(Digest::of_bytes(&bytes).hex().to_string()),
                bytes,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(Some(key), format!("cannot read: {e}"))),
        }
    }

    fn put_if(&self, object: &SiteObject, condition: &Condition) -> Result<bool, TargetError> {
        let _lock = self
            .lock()
            .map_err(|e| self.error(Some(&object.key), format!("cannot lock the site: {e}")))?;
        let current = self.get(&object.key)?.and_then(|f| f.etag);
        let holds = match condition {
            Condition::Absent => current.is_none(),
            Condition::Matches(etag) => current.as_deref() == Some(etag.as_str()),
        };
        if holds {
            self.put(object)?;
        }
        Ok(holds)
    }

    fn conditional_writes(&self) -> Result<bool, TargetError> {
        Ok(true)
    }

    fn delete(&self, key: &str) -> Result<(), TargetError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        let Some(rel) = key_path(key) else {
            return Ok(());
        };
        // Body first, then its record: a visible body always has its record.
        for path in [self.root.join(&rel), self.meta_path(&rel)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.error(Some(key), format!("cannot remove: {e}"))),
            }
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), TargetError> {
        keys.iter().try_for_each(|key| self.delete(key))
    }

    fn put(&self, object: &SiteObject) -> Result<(), TargetError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        let key = object.key.as_str();
        let fail = |what: &str, e: io::Error| self.error(Some(key), format!("{what}: {e}"));
        let rel =
            key_path(key).ok_or_else(|| self.error(Some(key), "key cannot be stored as a file"))?;
        let mut body = self
            .temp_file()
            .map_err(|e| fail("cannot create temporary file", e))?;
        let (sha256, size) = match &object.body {
            Body::Bytes(bytes) => {
                body.write_all(bytes).map_err(|e| fail("cannot write", e))?;
                (Digest::of_bytes(bytes), bytes.len() as u64)
            }
            Body::File(path) => {
                let src = File::open(path)
                    .map_err(|e| fail(&format!("cannot open {}", path.display()), e))?;
                copy_and_hash(src, body.as_file_mut(), |_| {})
                    .map_err(|e| fail("cannot copy", e))?
            }
        };
        if sha256 != object.sha256 || size != object.size {
            return Err(self.error(
                Some(key),
                format!(
                    "source changed since verification: expected {} ({} bytes), read {sha256} ({size} bytes)",
                    object.sha256, object.size
                ),
            ));
        }
        self.place(object, &rel, body.into_temp_path())
    }

    fn copy(&self, source: &str, object: &SiteObject) -> Result<(), TargetError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        let key = object.key.as_str();
        let fail = |what: &str, e: io::Error| self.error(Some(key), format!("{what}: {e}"));
        let rel =
            key_path(key).ok_or_else(|| self.error(Some(key), "key cannot be stored as a file"))?;
        let source_path = key_path(source)
            .map(|r| self.root.join(r))
            .ok_or_else(|| self.error(Some(source), "key cannot be stored as a file"))?;
        let size = fs::metadata(&source_path)
            .map_err(|e| fail(&format!("cannot copy from {source}"), e))?
            .len();
        if size != object.size {
            return Err(self.error(
                Some(key),
                format!(
                    "copy source {source} has {size} bytes, expected {}",
                    object.size
                ),
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
        self.place(object, &rel, body)
    }
}

impl DirStore {
    /// Put a finished body file in place: its record first, then the body, each renamed
    /// atomically, so a visible body always has its record.
    fn place(
        &self,
        object: &SiteObject,
        rel: &Path,
        body: tempfile::TempPath,
    ) -> Result<(), TargetError> {
        let key = object.key.as_str();
        let fail = |what: &str, e: io::Error| self.error(Some(key), format!("{what}: {e}"));
        let meta = Meta {
            content_type: object.content_type.clone(),
            cache_control: object.cache_control.to_string(),
            sha256: object.sha256.to_string(),
            size: object.size,
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
    use crate::site::{CACHE_SHORT, Phase};
    use std::sync::Arc;

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
    fn put_list_head_get() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new("t", dir.path().to_path_buf());
        assert!(store.list("v2/").unwrap().is_empty());
        let bytes: Arc<[u8]> = Arc::from(b"{}".to_vec());
        let object = SiteObject {
            key: "v2/".into(),
            size: 2,
            sha256: Digest::of_bytes(&bytes),
            body: Body::Bytes(bytes),
            content_type: "application/json".into(),
            cache_control: CACHE_SHORT,
            phase: Phase::Root,
        };
        store.put(&object).unwrap();
        let listed = store.list("v2/").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "v2/");
        assert_eq!(listed[0].sha256, Some(object.sha256.clone()));
        assert_eq!(listed[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(
            store.get("v2/").unwrap().map(|f| f.bytes).as_deref(),
            Some(&b"{}"[..])
        );
        assert!(store.head("v2/x").unwrap().is_none());
        assert_eq!(
            store.lookup("v2/").unwrap().1.content_type,
            "application/json"
        );
        // Nothing temporary is left behind.
        assert_eq!(
            fs::read_dir(dir.path().join(".regpress/tmp"))
                .unwrap()
                .count(),
            0
        );

        // Compare-and-swap against the content hash a read returned; deletes are idempotent.
        let etag = store.get("v2/").unwrap().unwrap().etag.unwrap();
        assert!(store.conditional_writes().unwrap());
        assert!(!store.put_if(&object, &Condition::Absent).unwrap());
        assert!(
            !store
                .put_if(&object, &Condition::Matches("0".repeat(64)))
                .unwrap()
        );
        assert!(store.put_if(&object, &Condition::Matches(etag)).unwrap());
        store.delete("v2/").unwrap();
        store.delete("v2/").unwrap();
        assert!(store.head("v2/").unwrap().is_none());
        assert!(store.lookup("v2/").is_none());
        assert!(store.put_if(&object, &Condition::Absent).unwrap());
        store
            .delete_many(&["v2/".to_string(), "v2/x".to_string()])
            .unwrap();
        assert!(store.list("v2/").unwrap().is_empty());

        let mut wrong = object.clone();
        wrong.key = "v2/wrong".into();
        wrong.sha256 = Digest::of_bytes(b"other");
        assert!(store.put(&wrong).unwrap_err().reason.contains("changed"));
        assert!(store.head("v2/wrong").unwrap().is_none());
    }
}
