//! A corpus of malformed layouts, each refused by `verify` and `publish` with a clear error
//! (exit 3, naming the layout and the reason), never a panic, and nothing written.
//!
//! The seven breakages of `common::synth::Breakage` are exercised by `local_publish`; these are
//! the shapes a fuzzer or a broken build tool produces: missing and non-JSON files, documents of
//! the wrong shape or type, bad digests and sizes, directories where files belong, nesting
//! without end.

mod common;

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use common::synth::{self, Flavor, Generated, OCI_INDEX, OCI_MANIFEST};
use common::{regpress, s};

fn good(dir: &Path) -> Generated {
    synth::apko_layout(
        dir,
        &synth::Image {
            name: "m",
            seed: 9,
            base: &[],
            app_size: 1_000,
            platforms: &["amd64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        },
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Replace the platform manifest with `manifest`, pointing index.json at it.
fn set_manifest(g: &Generated, manifest: &Value) {
    let bytes = serde_json::to_vec(manifest).unwrap();
    let digest = synth::write_blob(&g.dir, &bytes);
    let mut index = read_json(&g.dir.join("index.json"));
    index["manifests"][0]["digest"] = json!(digest);
    index["manifests"][0]["size"] = json!(bytes.len());
    fs::write(
        g.dir.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

fn edit_index(g: &Generated, edit: impl FnOnce(&mut Value)) {
    let mut index = read_json(&g.dir.join("index.json"));
    edit(&mut index);
    fs::write(
        g.dir.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

fn manifest(g: &Generated) -> Value {
    read_json(&synth::blob_path(&g.dir, &g.manifests[0]))
}

type Break = fn(&Generated);

/// (name, how to break a good layout, words the error must contain)
fn corpus() -> Vec<(&'static str, Break, &'static str)> {
    vec![
        (
            "no oci-layout",
            |g| fs::remove_file(g.dir.join("oci-layout")).unwrap(),
            "oci-layout is missing",
        ),
        (
            "oci-layout not JSON",
            |g| fs::write(g.dir.join("oci-layout"), "1.0.0").unwrap(),
            "oci-layout is not JSON",
        ),
        (
            "oci-layout without version",
            |g| fs::write(g.dir.join("oci-layout"), "{}").unwrap(),
            "no imageLayoutVersion",
        ),
        (
            "no index.json",
            |g| fs::remove_file(g.dir.join("index.json")).unwrap(),
            "index.json is missing",
        ),
        (
            "empty index.json",
            |g| fs::write(g.dir.join("index.json"), "").unwrap(),
            "index.json is not a valid OCI image index",
        ),
        (
            "index.json cut short",
            |g| {
                let bytes = fs::read(g.dir.join("index.json")).unwrap();
                fs::write(g.dir.join("index.json"), &bytes[..bytes.len() / 2]).unwrap()
            },
            "index.json is not a valid OCI image index",
        ),
        (
            "index.json not UTF-8",
            |g| {
                fs::write(
                    g.dir.join("index.json"),
                    b"{\"schemaVersion\":2,\"manifests\":[\xff]}",
                )
                .unwrap()
            },
            "index.json is not a valid OCI image index",
        ),
        (
            "index.json an array",
            |g| fs::write(g.dir.join("index.json"), "[]").unwrap(),
            "index.json is not a valid OCI image index",
        ),
        (
            "manifests not a list",
            |g| edit_index(g, |i| i["manifests"] = json!({})),
            "index.json is not a valid OCI image index",
        ),
        (
            "index.json a directory",
            |g| {
                fs::remove_file(g.dir.join("index.json")).unwrap();
                fs::create_dir(g.dir.join("index.json")).unwrap()
            },
            "index.json is not a regular file",
        ),
        (
            "index.json over 4 MiB",
            |g| {
                edit_index(g, |i| {
                    i["annotations"] = json!({"pad": "x".repeat(5 << 20)})
                })
            },
            "larger than the",
        ),
        (
            "index.json says it is a manifest",
            |g| edit_index(g, |i| i["mediaType"] = json!(OCI_MANIFEST)),
            "not an image index",
        ),
        (
            "schemaVersion 1 index",
            |g| edit_index(g, |i| i["schemaVersion"] = json!(1)),
            "schemaVersion is not 2",
        ),
        (
            "descriptor digest sha512",
            |g| {
                edit_index(g, |i| {
                    i["manifests"][0]["digest"] = json!(format!("sha512:{}", "a".repeat(128)))
                })
            },
            "sha512",
        ),
        (
            "descriptor digest not hex",
            |g| {
                edit_index(g, |i| {
                    i["manifests"][0]["digest"] = json!(format!("sha256:{}", "z".repeat(64)))
                })
            },
            "index.json is not a valid OCI image index",
        ),
        (
            "descriptor digest escaping",
            |g| {
                edit_index(g, |i| {
                    i["manifests"][0]["digest"] = json!("sha256:../../../../etc/passwd")
                })
            },
            "index.json is not a valid OCI image index",
        ),
        (
            "descriptor size negative",
            |g| edit_index(g, |i| i["manifests"][0]["size"] = json!(-1)),
            "index.json is not a valid OCI image index",
        ),
        (
            "descriptor size enormous",
            |g| edit_index(g, |i| i["manifests"][0]["size"] = json!(u64::MAX)),
            "over the 4194304-byte limit",
        ),
        (
            "descriptor size too small",
            |g| edit_index(g, |i| i["manifests"][0]["size"] = json!(3)),
            "size mismatch",
        ),
        (
            "schema1 media type",
            |g| {
                edit_index(g, |i| {
                    i["manifests"][0]["mediaType"] =
                        json!("application/vnd.docker.distribution.manifest.v1+prettyjws")
                })
            },
            "unsupported media type",
        ),
        (
            "manifest without config",
            |g| {
                let mut m = manifest(g);
                m.as_object_mut().unwrap().remove("config");
                set_manifest(g, &m)
            },
            "not a valid application/vnd.oci.image.manifest.v1+json",
        ),
        (
            "manifest layers null",
            |g| {
                let mut m = manifest(g);
                m["layers"] = Value::Null;
                set_manifest(g, &m)
            },
            "not a valid application/vnd.oci.image.manifest.v1+json",
        ),
        (
            "manifest schemaVersion a string",
            |g| {
                let mut m = manifest(g);
                m["schemaVersion"] = json!("2");
                set_manifest(g, &m)
            },
            "schemaVersion is not 2",
        ),
        (
            "layer digest malformed",
            |g| {
                let mut m = manifest(g);
                m["layers"][0]["digest"] = json!("sha256:1234");
                set_manifest(g, &m)
            },
            "not a valid application/vnd.oci.image.manifest.v1+json",
        ),
        (
            "layer missing",
            |g| {
                let mut m = manifest(g);
                m["layers"][0]["digest"] = json!(format!("sha256:{}", "0".repeat(64)));
                set_manifest(g, &m)
            },
            "is missing",
        ),
        (
            "layer blob a directory",
            |g| {
                let layer = synth::blob_path(&g.dir, g.blobs.last().unwrap());
                fs::remove_file(&layer).unwrap();
                fs::create_dir(&layer).unwrap()
            },
            "is not a regular file",
        ),
        (
            "layer a dangling symlink",
            |g| {
                let layer = synth::blob_path(&g.dir, g.blobs.last().unwrap());
                fs::remove_file(&layer).unwrap();
                std::os::unix::fs::symlink(g.dir.join("nowhere"), &layer).unwrap()
            },
            "is missing",
        ),
        (
            "config size wrong",
            |g| {
                let mut m = manifest(g);
                m["config"]["size"] = json!(m["config"]["size"].as_u64().unwrap() + 1);
                set_manifest(g, &m)
            },
            "size mismatch",
        ),
        (
            "annotations not strings",
            |g| edit_index(g, |i| i["manifests"][0]["annotations"] = json!({"a": 1})),
            "index.json is not a valid OCI image index",
        ),
        (
            "manifest JSON null",
            |g| set_manifest(g, &Value::Null),
            "not",
        ),
        (
            "manifest an index of itself in another shape",
            |g| {
                let mut m = manifest(g);
                m["mediaType"] = json!(OCI_INDEX);
                set_manifest(g, &m)
            },
            "but the document says",
        ),
        (
            "indexes nested without end",
            |g| {
                // index.json -> index -> index -> ... ten levels -> the manifest.
                let (mut digest, mut size, mut media) =
                    (g.manifests[0].clone(), manifest_len(g), OCI_MANIFEST);
                for _ in 0..10 {
                    let bytes =
                        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
                    "manifests": [{"mediaType": media, "digest": digest, "size": size}]}))
                        .unwrap();
                    size = bytes.len() as u64;
                    digest = synth::write_blob(&g.dir, &bytes);
                    media = OCI_INDEX;
                }
                edit_index(g, |i| {
                    i["manifests"] =
                        json!([{"mediaType": OCI_INDEX, "digest": digest, "size": size}])
                })
            },
            "nested deeper than",
        ),
    ]
}

fn manifest_len(g: &Generated) -> u64 {
    fs::metadata(synth::blob_path(&g.dir, &g.manifests[0]))
        .unwrap()
        .len()
}

#[test]
fn every_malformed_layout_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let cases = corpus();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for (i, (name, breakage, reason)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case-{i}"));
        let g = good(&dir);
        breakage(&g);
        for args in [
            vec!["verify".to_string(), s(&dir)],
            vec![
                "publish".into(),
                s(&dir),
                "--repo".into(),
                "m".into(),
                "--tag".into(),
                "t".into(),
                "--to".into(),
                s(&site),
            ],
        ] {
            let out = regpress(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(out.code, 3, "{name}: {args:?}\n{}", out.stderr);
            assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
            assert!(
                out.stderr.contains(&s(&dir)),
                "{name}: the error names the layout: {}",
                out.stderr
            );
            assert!(
                out.stderr.contains(reason),
                "{name}: {reason:?} not in {}",
                out.stderr
            );
        }
        assert!(!site.exists(), "{name}: nothing written");
    }
}
