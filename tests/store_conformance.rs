//! One conformance suite for every store: the in-memory reference, the directory backend, and
//! S3 on Garage — each raw and through the full layer stack `regpress::target::open` builds
//! (probe, retry, limit, count, prefix). What the pipeline relies on is asserted here once:
//! put/get/head/list/delete, digests checked on every write, conditional writes where the store
//! honours them, server-side copies, listing pagination and prefixes, big bodies in parts, file
//! sections, and stale uploads.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::garage::Garage;
use regpress::digest::Digest;
use regpress::store::upload::Uploads;
use regpress::store::{Attributes, Body, Condition, Store, Support};

const MIB: u64 = 1024 * 1024;

fn attributes(bytes: &[u8], content_type: &str) -> Attributes {
    Attributes {
        content_type: content_type.to_string(),
        cache_control: "public, max-age=60".to_string(),
        sha256: Digest::of_bytes(bytes),
    }
}

fn bytes(b: &[u8]) -> Body {
    Body::Bytes(Arc::from(b))
}

fn keys(store: &dyn Store, prefix: &str) -> Vec<String> {
    store
        .list(prefix)
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect()
}

/// Everything a store must do, on an empty store. `uploads` decides when files go in parts.
fn conformance(store: &dyn Store, uploads: &Uploads, scratch: &Path) {
    let name = store.name().to_string();
    // Empty.
    assert!(store.list("v2/").unwrap().is_empty(), "{name}: not empty");
    assert!(store.head("v2/a").unwrap().is_none());
    assert!(store.get("v2/a").unwrap().is_none());

    // Put, then read back every way.
    let doc = br#"{"schemaVersion":2}"#;
    let json = attributes(doc, "application/vnd.oci.image.index.v1+json");
    store.put("v2/a/manifests/t", &bytes(doc), &json).unwrap();
    let fetched = store.get("v2/a/manifests/t").unwrap().expect("written");
    assert_eq!(fetched.bytes, doc);
    assert!(fetched.etag.is_some(), "{name}: a read gives an ETag");
    let info = store.head("v2/a/manifests/t").unwrap().expect("written");
    assert_eq!(info.key, "v2/a/manifests/t");
    assert_eq!(info.size, doc.len() as u64);
    assert_eq!(
        info.content_type.as_deref(),
        Some(json.content_type.as_str())
    );
    assert_eq!(info.cache_control.as_deref(), Some("public, max-age=60"));
    assert_eq!(
        info.sha256.as_ref(),
        Some(&json.sha256),
        "{name}: digest kept"
    );
    let listed = store.list("v2/a/").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, doc.len() as u64);

    // A body that does not hash to its digest is refused and stores nothing.
    let wrong = attributes(b"other bytes", "application/json");
    let e = store.put("v2/a/wrong", &bytes(doc), &wrong).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("v2/a/wrong"), "{name}: {e}");
    assert!(store.head("v2/a/wrong").unwrap().is_none(), "{name}");

    // Overwrite.
    let moved = br#"{"schemaVersion":2,"moved":true}"#;
    let moved_attributes = attributes(moved, "application/json");
    store
        .put("v2/a/manifests/t", &bytes(moved), &moved_attributes)
        .unwrap();
    assert_eq!(store.get("v2/a/manifests/t").unwrap().unwrap().bytes, moved);

    // Conditional writes, where honoured.
    let etag = store
        .get("v2/a/manifests/t")
        .unwrap()
        .unwrap()
        .etag
        .unwrap();
    match store.conditional_writes().unwrap() {
        Support::Yes => {
            let put_if = |key: &str, c: &Condition| {
                store
                    .put_if(key, &bytes(doc), &json, c)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
            };
            assert!(!put_if("v2/a/manifests/t", &Condition::Absent));
            assert!(!put_if(
                "v2/a/manifests/t",
                &Condition::Matches("0123456789abcdef".into())
            ));
            assert_eq!(store.get("v2/a/manifests/t").unwrap().unwrap().bytes, moved);
            assert!(put_if("v2/a/manifests/t", &Condition::Matches(etag)));
            assert_eq!(store.get("v2/a/manifests/t").unwrap().unwrap().bytes, doc);
            assert!(put_if("v2/a/manifests/new", &Condition::Absent));
            store.delete("v2/a/manifests/new").unwrap();
        }
        Support::No => {
            // It writes anyway: the lists module then settles by re-reading.
            assert!(
                store
                    .put_if("v2/a/manifests/t", &bytes(doc), &json, &Condition::Absent)
                    .unwrap()
            );
            assert_eq!(store.get("v2/a/manifests/t").unwrap().unwrap().bytes, doc);
        }
        Support::Unknown => panic!("{name}: the stack probes; it must know by now"),
    }

    // Server-side copy, served with the attributes given.
    let blob = b"layer bytes";
    let blob_attributes = Attributes {
        cache_control: "public, max-age=31536000, immutable".to_string(),
        ..attributes(blob, "application/octet-stream")
    };
    store
        .put("v2/a/blobs/x", &bytes(blob), &blob_attributes)
        .unwrap();
    assert!(
        store
            .copy(
                "v2/a/blobs/x",
                "v2/b/blobs/x",
                blob.len() as u64,
                &blob_attributes
            )
            .unwrap()
    );
    assert_eq!(store.get("v2/b/blobs/x").unwrap().unwrap().bytes, blob);
    let copied = store.head("v2/b/blobs/x").unwrap().unwrap();
    assert_eq!(
        copied.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(copied.sha256, Some(blob_attributes.sha256.clone()));

    // Deletes: batches, absent keys are fine, deleting twice is fine.
    store
        .delete_many(&["v2/b/blobs/x".to_string(), "v2/b/never".to_string()])
        .unwrap();
    store.delete("v2/b/blobs/x").unwrap();
    assert!(store.head("v2/b/blobs/x").unwrap().is_none());
    assert_eq!(keys(store, "v2/"), ["v2/a/blobs/x", "v2/a/manifests/t"]);

    // Listing: pages in key order, nothing twice, nothing outside the prefix.
    let names: Vec<String> = (0..7).map(|n| format!("v2/p/k{n}")).collect();
    for key in names.iter().chain(["v2/pz".to_string()].iter()) {
        store
            .put(key, &bytes(b"{}"), &attributes(b"{}", "application/json"))
            .unwrap();
    }
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list_page("v2/p/", after.as_deref(), 3).unwrap();
        assert!(page.objects.len() <= 3, "{name}: page too long");
        pages += 1;
        paged.extend(page.objects.into_iter().map(|i| i.key));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, names, "{name}: paged listing");
    assert!(
        (3..=4).contains(&pages),
        "{name}: {pages} pages of 3 for 7 keys"
    );
    assert_eq!(keys(store, "v2/p/"), names);
    assert_eq!(keys(store, "v2/p").len(), 8);
    let all: Vec<String> = names.clone();
    store.delete_many(&all).unwrap();
    store.delete("v2/pz").unwrap();

    // A section of a file.
    let file = scratch.join("section");
    std::fs::write(&file, b"0123456789abcdef").unwrap();
    let section = Body::File {
        path: file.clone(),
        offset: 3,
        len: 5,
    };
    store
        .put(
            "v2/a/blobs/s",
            &section,
            &attributes(b"34567", "application/octet-stream"),
        )
        .unwrap();
    assert_eq!(store.get("v2/a/blobs/s").unwrap().unwrap().bytes, b"34567");

    // A big body, in parts where the store has them.
    let big = scratch.join("big");
    let mut content = Vec::with_capacity((11 * MIB + 1) as usize);
    let mut x: u32 = 1;
    while content.len() < content.capacity() {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        content.push((x >> 24) as u8);
    }
    std::fs::File::create(&big)
        .unwrap()
        .write_all(&content)
        .unwrap();
    let big_attributes = attributes(&content, "application/octet-stream");
    let big_body = Body::file(big.clone(), content.len() as u64);
    uploads
        .put(store, "v2/a/blobs/big", &big_body, &big_attributes)
        .unwrap();
    let got = store.get("v2/a/blobs/big").unwrap().unwrap().bytes;
    assert_eq!(got.len(), content.len());
    assert!(got == content, "{name}: big body differs");
    assert_eq!(
        store.head("v2/a/blobs/big").unwrap().unwrap().size,
        content.len() as u64
    );

    // A big body that changed since it was verified: refused, nothing stored, nothing left.
    let e = uploads
        .put(store, "v2/a/blobs/changed", &big_body, &wrong)
        .unwrap_err();
    assert!(
        e.reason.contains("does not have the blob's digest"),
        "{name}: {e}"
    );
    assert!(store.head("v2/a/blobs/changed").unwrap().is_none());
    assert_eq!(
        store.clean_stale("v2/", Duration::ZERO).unwrap(),
        0,
        "{name}"
    );

    // Stale uploads: a killed run's upload is kept while young, then removed.
    if let Some(upload) = store
        .create_multipart("v2/a/blobs/killed", &big_attributes)
        .unwrap()
    {
        assert!(!upload.is_empty());
        assert_eq!(
            store.clean_stale("v2/", Duration::from_secs(3600)).unwrap(),
            0,
            "{name}: a fresh upload is kept"
        );
        assert_eq!(
            store.clean_stale("v2/", Duration::ZERO).unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            store.clean_stale("v2/", Duration::ZERO).unwrap(),
            0,
            "{name}"
        );
        assert!(store.head("v2/a/blobs/killed").unwrap().is_none());
    }
}

/// Files go up in 5 MiB parts from 5 MiB: the big body is three parts.
fn small_parts() -> Uploads {
    Uploads::new(5 * MIB, 5 * MIB).unwrap()
}

#[test]
fn memory_store() {
    let scratch = tempfile::tempdir().unwrap();
    let store = regpress::store::memory::MemoryStore::new("memory");
    conformance(&store, &small_parts(), scratch.path());
}

#[test]
fn directory_store() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("site");
    let store = regpress::store::dir::DirStore::new("dir", root);
    conformance(&store, &small_parts(), scratch.path());
}

#[test]
fn directory_target_through_every_layer() {
    let scratch = tempfile::tempdir().unwrap();
    let spec = regpress::target::TargetSpec {
        to: common::s(&scratch.path().join("site")),
        multipart_threshold: Some(5 * MIB),
        part_size: Some(5 * MIB),
        ..Default::default()
    };
    let target = regpress::target::open(&spec, 4).unwrap();
    conformance(target.store.as_ref(), &target.uploads, scratch.path());
    assert!(target.requests.get() > 20, "every operation is counted");
}

#[test]
fn s3_on_garage_through_every_layer_under_a_prefix() {
    let garage = Garage::start();
    let bucket = garage.bucket("conformance");
    let scratch = tempfile::tempdir().unwrap();
    let spec = regpress::target::TargetSpec {
        to: format!("s3://{bucket}/some/prefix"),
        multipart_threshold: Some(5 * MIB),
        part_size: Some(5 * MIB),
        ..garage.spec(&bucket)
    };
    let target = regpress::target::open(&spec, 4).unwrap();
    conformance(target.store.as_ref(), &target.uploads, scratch.path());
    // Nothing was written outside the prefix (the probe included).
    let outside: Vec<String> = garage
        .listing(&bucket)
        .into_keys()
        .filter(|k| !k.starts_with("some/prefix/"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}
