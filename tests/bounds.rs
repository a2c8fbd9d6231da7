//! Everything regpress reads from a registry or a target has a bound, named in the error when
//! it is hit: `check` against a server that never stops answering, indexes nested without
//! end, and a target whose catalog is larger than any catalog can be.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::synth::{self, Flavor, OCI_INDEX};
use common::{Server, regpress, s, snapshot};
use regpress::digest::Digest;
use regpress::store::{Attributes, Body, Store, dir::DirStore};

/// A registry on loopback whose `/v2/` answers 200 and whose every other answer is a JSON
/// document that never ends. Returns its `http://host:port`.
fn endless_registry() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let _ = reader.read_line(&mut request);
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n";
                if request.starts_with("GET /v2/ ") {
                    let _ = write!(stream, "{head}Content-Length: 2\r\n\r\n{{}}");
                    return;
                }
                let _ = write!(stream, "{head}\r\n{{\"repositories\": [\"");
                let chunk = vec![b'a'; 1 << 16];
                // Until the client hangs up.
                while stream.write_all(&chunk).is_ok() {}
            });
        }
    });
    url
}

#[test]
fn check_stops_reading_an_endless_catalog_at_its_limit_and_names_it() {
    let url = endless_registry();
    let started = Instant::now();
    let out = regpress(&["check", &url]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    let limit = regpress::check::MAX_LIST_SIZE.to_string();
    assert!(
        out.stderr.contains(&format!("{url}/v2/_catalog"))
            && out.stderr.contains(&format!("more than {limit} bytes")),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A one-platform layout of a few KiB.
fn tiny_layout(dir: &Path, name: &str, seed: u64) {
    synth::apko_layout(
        dir,
        &synth::Image {
            name,
            seed,
            base: &[],
            app_size: 1_000,
            platforms: &["amd64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        },
    );
}

/// Store `bytes` in `site` under `key` as a publish would.
fn put(site: &Path, key: &str, bytes: &[u8], content_type: &str) {
    let store = DirStore::new("site", site.to_path_buf());
    let attributes = Attributes {
        content_type: content_type.to_string(),
        cache_control: regpress::site::CACHE_IMMUTABLE.to_string(),
        sha256: Digest::of_bytes(bytes),
    };
    store
        .put(key, &Body::Bytes(bytes.to_vec().into()), &attributes)
        .unwrap();
}

#[test]
fn check_walks_indexes_nested_past_the_depth_limit_without_recursing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let layout = tmp.path().join("layout");
    tiny_layout(&layout, "deep", 3);
    regpress(&[
        "publish",
        &s(&layout),
        "--repo",
        "deep",
        "--tag",
        "ok",
        "--to",
        &s(&site),
        "-q",
    ])
    .ok();
    // An index of an index of … (12 levels) of the published index, tagged `deep:nested`.
    let tag = std::fs::read(site.join("v2/deep/manifests/ok")).unwrap();
    let mut child = (Digest::of_bytes(&tag).to_string(), tag.len());
    let mut top = Vec::new();
    for _ in 0..12 {
        top = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": child.0, "size": child.1}],
        }))
        .unwrap();
        let digest = Digest::of_bytes(&top).to_string();
        put(
            &site,
            &format!("v2/deep/manifests/{digest}"),
            &top,
            OCI_INDEX,
        );
        child = (digest, top.len());
    }
    put(&site, "v2/deep/manifests/nested", &top, OCI_INDEX);
    let list = serde_json::json!({"name": "deep", "tags": ["nested", "ok"]});
    put(
        &site,
        "v2/deep/tags/list",
        list.to_string().as_bytes(),
        "application/json",
    );
    let server = Server::start(&site);
    let out = regpress(&["check", &server.url("")]);
    assert_ne!(out.code, 0);
    let text = format!("{}{}", out.stdout, out.stderr);
    let limit = regpress::check::MAX_DEPTH;
    assert!(
        text.contains(&format!("indexes nested more than {limit} deep")),
        "{text}"
    );
}

#[test]
fn publish_refuses_a_target_catalog_over_the_read_limit_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let layout = tmp.path().join("layout");
    tiny_layout(&layout, "c", 4);
    // Valid JSON, and larger than any catalog regpress reads.
    let limit = regpress::store::MAX_GET as usize;
    let mut catalog = b"{\"repositories\": [], \"padding\": \"".to_vec();
    catalog.resize(limit + 16, b' ');
    catalog.extend_from_slice(b"\"}");
    std::fs::create_dir_all(site.join("v2")).unwrap();
    std::fs::write(site.join("v2/_catalog"), &catalog).unwrap();
    drop(catalog);
    let before = snapshot(&site);
    let out = regpress(&[
        "publish",
        &s(&layout),
        "--repo",
        "c",
        "--tag",
        "1",
        "--to",
        &s(&site),
    ]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("v2/_catalog") && out.stderr.contains(&limit.to_string()),
        "{}",
        out.stderr
    );
    let mut after = snapshot(&site);
    after.retain(|p, _| !p.starts_with(site.join(".regpress")));
    let mut before = before;
    before.retain(|p, _| !p.starts_with(site.join(".regpress")));
    assert_eq!(after, before, "nothing written");
}
