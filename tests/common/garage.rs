//! The Garage test store: started once (idempotently) by `tests/garage.sh`, a bucket per test,
//! and the website endpoint pointed at one bucket at a time under a cross-process lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusty_s3::actions::{GetObject, ListObjectsV2, PutObject};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// A running Garage node.
pub struct Garage {
    /// S3 API endpoint URL.
    pub endpoint: String,
    /// Website endpoint `host:port` (serves the exposed bucket).
    pub web: String,
    env: Vec<(String, String)>,
}

/// Holds the website endpoint until dropped.
pub struct Exposed {
    _lock: File,
}

impl Exposed {
    /// Serve another bucket on the website endpoint (the lock is still held).
    pub fn switch(&self, bucket: &str) {
        run_script(&["expose", bucket]);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/garage.sh")
}

fn run_script(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .output()
        .expect("run tests/garage.sh");
    assert!(
        out.status.success(),
        "tests/garage.sh {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Garage {
    /// Start Garage if it is not running (installing it if missing) and read its settings.
    pub fn start() -> Garage {
        let mut env = Vec::new();
        for line in run_script(&["start"]).lines() {
            if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
                env.push((k.to_string(), v.to_string()));
            }
        }
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("tests/garage.sh start printed no {k}"))
        };
        Garage {
            endpoint: get("REGPRESS_TEST_S3_ENDPOINT"),
            web: get("REGPRESS_TEST_WEB"),
            env,
        }
    }

    /// A fresh bucket, unique to this call.
    pub fn bucket(&self, label: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        let name = format!("{label}-{}-{}", std::process::id(), nanos % 1_000_000_000);
        run_script(&["bucket", &name]);
        name
    }

    /// Serve `bucket` on the website endpoint until the guard drops.
    pub fn expose(&self, bucket: &str) -> Exposed {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/garage");
        let lock = File::create(dir.join("web.lock")).expect("create web lock");
        lock.lock().expect("lock website endpoint");
        run_script(&["expose", bucket]);
        Exposed { _lock: lock }
    }

    /// The environment regpress needs (credentials, region).
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    fn var(&self, k: &str) -> String {
        self.env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    fn s3(&self, bucket: &str) -> (Bucket, Credentials) {
        let bucket = Bucket::new(
            self.endpoint.parse().unwrap(),
            UrlStyle::Path,
            bucket.to_string(),
            "garage",
        )
        .unwrap();
        let creds = Credentials::new(
            self.var("AWS_ACCESS_KEY_ID"),
            self.var("AWS_SECRET_ACCESS_KEY"),
        );
        (bucket, creds)
    }

    /// The target spec of `bucket` for the library's own store (`regpress::target::open`).
    pub fn spec(&self, bucket: &str) -> regpress::target::TargetSpec {
        regpress::target::TargetSpec {
            to: format!("s3://{bucket}"),
            endpoint: Some(self.endpoint.clone()),
            region: Some("garage".into()),
            access_key_id: Some(self.var("AWS_ACCESS_KEY_ID")),
            secret_access_key: Some(self.var("AWS_SECRET_ACCESS_KEY")),
            ..Default::default()
        }
    }

    /// An object's bytes, straight from the S3 API.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (bucket, creds) = self.s3(bucket);
        let url = GetObject::new(&bucket, Some(&creds), key).sign(Duration::from_secs(600));
        let response = reqwest::blocking::get(url).unwrap();
        if response.status() == 404 {
            return None;
        }
        assert!(
            response.status().is_success(),
            "GET {key}: {}",
            response.status()
        );
        Some(response.bytes().unwrap().to_vec())
    }

    /// Overwrite an object behind regpress's back (as damage or another tool would).
    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) {
        let (bucket, creds) = self.s3(bucket);
        let mut action = PutObject::new(&bucket, Some(&creds), key);
        action
            .headers_mut()
            .insert("content-type", content_type.to_string());
        let url = action.sign(Duration::from_secs(600));
        let response = reqwest::blocking::Client::new()
            .put(url)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "PUT {key}: {}",
            response.status()
        );
    }

    /// Every key in `bucket` with its ETag and Last-Modified, from the S3 API.
    pub fn listing(&self, bucket: &str) -> BTreeMap<String, (String, String, u64)> {
        let (bucket, creds) = self.s3(bucket);
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut list = ListObjectsV2::new(&bucket, Some(&creds));
            if let Some(t) = &token {
                list.with_continuation_token(t.clone());
            }
            let text = reqwest::blocking::get(list.sign(Duration::from_secs(600)))
                .unwrap()
                .text()
                .unwrap();
            let page = ListObjectsV2::parse_response(&text).unwrap();
            for c in page.contents {
                let key = percent_encoding::percent_decode_str(&c.key)
                    .decode_utf8_lossy()
                    .into_owned();
                out.insert(key, (c.etag, c.last_modified, c.size));
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        out
    }
}
