//! End to end against a real S3 store: publish to Garage, then pull with skopeo straight from
//! Garage's website endpoint (no registry in between).

mod common;

use std::fs;

use common::garage::Garage;
use common::synth::{self, Flavor, Layer};
use common::{
    fixture, platform_digest, platforms_of, pull_all, pulled_platforms, regpress_with_env, report,
    s, skopeo, user_tags,
};

#[test]
fn golden_and_a_catalog_publish_to_garage_and_pull_from_its_website() {
    let garage = Garage::start();
    let bucket = garage.bucket("catalog");
    let env = garage.env();
    let tmp = tempfile::tempdir().unwrap();

    // The apko golden image and three images sharing base layers, in one config.
    let base = vec![Layer::new(11, 300_000), Layer::new(12, 5_000)];
    let mut config = format!(
        "[target]\nto = \"s3://{bucket}\"\nendpoint = \"{}\"\nregion = \"garage\"\n\n\
         [[image]]\nlayout = \"{}\"\nrepository = \"apko/golden\"\ntags = [\"latest\"]\n",
        garage.endpoint,
        fixture("apko/golden").display()
    );
    let mut generated = Vec::new();
    for (i, name) in ["base", "python", "node"].iter().enumerate() {
        let dir = tmp.path().join(name);
        let image = synth::Image {
            name,
            seed: 40 + i as u64,
            base: &base,
            app_size: 80_000,
            platforms: &["amd64", "arm64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        };
        generated.push(synth::apko_layout(&dir, &image));
        config.push_str(&format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"hardened/{name}\"\ntags = [\"latest\", \"1\"]\n",
            dir.display()
        ));
    }
    let config_path = tmp.path().join("regpress.toml");
    fs::write(&config_path, config).unwrap();
    let rep = tmp.path().join("report.json");
    let publish = || {
        regpress_with_env(
            &[
                "publish",
                "--config",
                &s(&config_path),
                "--report",
                &s(&rep),
                "-q",
            ],
            &env,
        )
    };

    let started = std::time::Instant::now();
    publish().ok();
    let first = report(&rep);
    eprintln!(
        "cold publish: {} objects, {} bytes in {:?}",
        first["objects_written"],
        first["bytes_written"],
        started.elapsed()
    );
    assert_eq!(first["objects_unchanged"], 0);
    // The two base layers go up once; the other two repositories get server-side copies.
    assert_eq!(first["objects_copied"], 4);
    let listing = garage.listing(&bucket);
    assert_eq!(
        listing.len() as u64,
        first["objects_written"].as_u64().unwrap() + first["index_written"].as_u64().unwrap()
    );
    for (i, name) in ["base", "python", "node"].iter().enumerate() {
        for blob in &generated[i].blobs {
            assert!(
                listing.contains_key(&format!("v2/hardened/{name}/blobs/{blob}")),
                "{name} {blob}"
            );
        }
    }

    // A re-publish writes nothing: the report says so and the bucket's listing is unchanged.
    publish().ok();
    let second = report(&rep);
    assert_eq!(second["objects_written"], 0);
    // The catalog, then one listing of the whole registry (under 1,000 keys): nothing per object.
    assert_eq!(second["requests"], 2, "no-op re-publish requests");
    eprintln!("no-op re-publish: {} requests", second["requests"]);
    assert_eq!(second["objects_unchanged"], first["objects_written"]);
    assert_eq!(garage.listing(&bucket), listing);

    // One more tag for one of four repositories: the inventory lists just that repository.
    let extra = tmp.path().join("extra.json");
    regpress_with_env(
        &[
            "publish",
            &s(&fixture("apko/golden")),
            "--repo",
            "apko/golden",
            "--tag",
            "extra",
            "--to",
            &format!("s3://{bucket}"),
            "--endpoint",
            &garage.endpoint,
            "--report",
            &s(&extra),
            "-q",
        ],
        &env,
    )
    .ok();
    let third = report(&extra);
    assert_eq!(
        third["objects_written"], 3,
        "the tag, its first-publication record and its tag list"
    );
    // Catalog GET, one prefix listing, two root HEADs; the yank records listed (the prefix
    // listing did not cover them); three PUTs (no blob uploaded: no stale-upload sweep); then
    // the tag list settled: its tags listed and the list read back.
    // Then 14 for the package index (src/packages.rs): golden's shards read back (its packages
    // are indexed already) and the repository's tag map settled against the tags present; a
    // fixed cost per repository touched, the same for any size of catalog.
    assert_eq!(third["requests"], 4 + 1 + 3 + 2 + 14);

    let _web = garage.expose(&bucket);
    let image = |r: &str| format!("docker://{}/{r}", garage.web);
    let golden_index = fs::read(fixture("apko/golden/index.json")).unwrap();
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &image("apko/golden:latest"),
    ]);
    raw.ok();
    assert_eq!(raw.stdout.as_bytes(), &golden_index[..]);
    pull_all(
        &image("apko/golden:latest"),
        &tmp.path().join("pull-golden"),
    );
    assert_eq!(
        pulled_platforms(&tmp.path().join("pull-golden")),
        platforms_of(&golden_index)
    );
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let digest = platform_digest(
            &image("apko/golden:latest"),
            arch,
            &tmp.path().join("single"),
        );
        assert_eq!(digest, platforms_of(&golden_index)[i]);
    }
    for (i, name) in ["base", "python", "node"].iter().enumerate() {
        let dest = tmp.path().join(format!("pull-{name}"));
        pull_all(&image(&format!("hardened/{name}:1")), &dest);
        assert_eq!(pulled_platforms(&dest), generated[i].manifests);
        let arm = platform_digest(
            &image(&format!("hardened/{name}:latest")),
            "arm64",
            &tmp.path().join(format!("arm-{name}")),
        );
        assert_eq!(arm, generated[i].manifests[1]);
    }

    // What a client sees over HTTP: /v2/ is 200, a missing tag 404, and every manifest's
    // Content-Type is exactly its mediaType.
    let http = reqwest::blocking::Client::new();
    let web = |path: &str| {
        http.get(format!("http://{}{path}", garage.web))
            .send()
            .unwrap()
    };
    assert_eq!(web("/v2/").status(), 200);
    assert_eq!(web("/v2/apko/golden/manifests/nope").status(), 404);
    assert_eq!(web("/v2/nope/tags/list").status(), 404);
    for key in listing.keys().filter(|k| k.contains("/manifests/")) {
        let response = web(&format!("/{key}"));
        assert_eq!(response.status(), 200, "{key}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = response.bytes().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["mediaType"].as_str().unwrap(), content_type, "{key}");
    }
    // The apko SBOMs are referrers of what they describe (the index and each platform
    // manifest), served from the bucket byte for byte, both from the OCI 1.1 referrers list and
    // from the `sha256-<hex>` fallback tag that clients without the referrers API read.
    let index_digest = synth::digest_of(&golden_index);
    let platforms = platforms_of(&golden_index);
    let subjects = [
        (index_digest.clone(), "sbom-index.spdx.json"),
        (platforms[0].clone(), "sbom-x86_64.spdx.json"),
        (platforms[1].clone(), "sbom-aarch64.spdx.json"),
    ];
    for (subject, file) in &subjects {
        let hex = subject.strip_prefix("sha256:").unwrap();
        let mut lists = Vec::new();
        for path in [
            format!("/v2/apko/golden/referrers/{subject}"),
            format!("/v2/apko/golden/manifests/sha256-{hex}"),
        ] {
            let response = web(&path);
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/vnd.oci.image.index.v1+json",
                "{path}"
            );
            let list: serde_json::Value = response.json().unwrap();
            let listed = list["manifests"].as_array().unwrap().clone();
            assert_eq!(listed.len(), 1, "{path}: {list}");
            assert_eq!(listed[0]["artifactType"], "application/spdx+json", "{path}");
            lists.push(listed);
        }
        assert_eq!(
            lists[0], lists[1],
            "referrers list and fallback tag of {subject}"
        );
        let sbom: serde_json::Value = web(&format!(
            "/v2/apko/golden/manifests/{}",
            lists[0][0]["digest"].as_str().unwrap()
        ))
        .json()
        .unwrap();
        assert_eq!(sbom["subject"]["digest"], subject.as_str());
        let bytes = web(&format!(
            "/v2/apko/golden/blobs/{}",
            sbom["layers"][0]["digest"].as_str().unwrap()
        ))
        .bytes()
        .unwrap();
        assert_eq!(
            bytes.as_ref(),
            fs::read(fixture(&format!("apko/golden/sboms/{file}"))).unwrap(),
            "{file}"
        );
    }

    let check = common::regpress(&["check", &format!("http://{}", garage.web)]);
    check.ok();
    assert!(
        check.stdout.contains("4 repositories, 11 tags") && check.stdout.contains(" 0 problems"),
        "{}",
        check.stdout
    );
    let tags: serde_json::Value = web("/v2/apko/golden/tags/list").json().unwrap();
    assert_eq!(user_tags(&tags), ["extra", "latest"]);
    let catalog: serde_json::Value = web("/v2/_catalog").json().unwrap();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!([
            "apko/golden",
            "hardened/base",
            "hardened/node",
            "hardened/python"
        ])
    );
}

#[test]
fn a_second_tag_keeps_the_first_and_a_large_blob_round_trips_in_parts() {
    let garage = Garage::start();
    let bucket = garage.bucket("multipart");
    let env = garage.env();
    let tmp = tempfile::tempdir().unwrap();
    // A 13 MiB incompressible layer, uploaded in 5 MiB parts: 3 parts, the last one shorter.
    let big = vec![Layer::new(99, 13 << 20)];
    let layout = tmp.path().join("big");
    let image = synth::Image {
        name: "big",
        seed: 7,
        base: &big,
        app_size: 1_000,
        platforms: &["amd64", "arm64"],
        flavor: Flavor::Oci,
        arch_base: &[],
        small_layers: &[],
    };
    let generated = synth::apko_layout(&layout, &image);
    let target = format!("s3://{bucket}/registry");
    let threshold = (6u64 << 20).to_string();
    let part = (5u64 << 20).to_string();
    let publish = |tag: &str, target: &str| {
        regpress_with_env(
            &[
                "publish",
                &s(&layout),
                "--repo",
                "big",
                "--tag",
                tag,
                "--to",
                target,
                "--endpoint",
                &garage.endpoint,
                "--multipart-threshold",
                &threshold,
                "--part-size",
                &part,
                "-q",
            ],
            &env,
        )
    };
    publish("v1", &target).ok();
    publish("v2", &target).ok();
    let listing = garage.listing(&bucket);
    let list_key = "registry/v2/big/tags/list";
    assert!(listing.contains_key(list_key), "{listing:?}");
    let layer = big[0].digest();
    let (etag, _, size) = &listing[&format!("registry/v2/big/blobs/{layer}")];
    assert_eq!(*size as usize, big[0].bytes.len());
    assert!(
        etag.contains("-3"),
        "a 3-part upload has a multipart ETag, got {etag}"
    );

    // Re-planning against the bucket finds nothing to write (the prefix holds the registry).
    let dry = regpress_with_env(
        &[
            "publish",
            &s(&layout),
            "--repo",
            "big",
            "--tag",
            "v1",
            "--to",
            &target,
            "--endpoint",
            &garage.endpoint,
            "--dry-run",
        ],
        &env,
    );
    dry.ok();
    let totals = dry
        .stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap()
        .to_string();
    assert_eq!(
        totals.split_whitespace().nth(1),
        Some("0"),
        "{}",
        dry.stdout
    );

    // Byte for byte through a bucket without a prefix, pulled from the website endpoint.
    let plain = garage.bucket("multipart-web");
    publish("v1", &format!("s3://{plain}")).ok();
    let _web = garage.expose(&plain);
    let served = reqwest::blocking::get(format!("http://{}/v2/big/blobs/{layer}", garage.web))
        .unwrap()
        .bytes()
        .unwrap();
    assert!(
        served.as_ref() == &big[0].bytes[..],
        "the large blob round-trips byte for byte"
    );
    let dest = tmp.path().join("pull");
    pull_all(&format!("docker://{}/big:v1", garage.web), &dest);
    assert_eq!(pulled_platforms(&dest), generated.manifests);
    assert_eq!(
        fs::read(synth::blob_path(&dest, &layer)).unwrap(),
        big[0].bytes
    );
}

#[test]
fn tags_list_merges_and_bad_credentials_are_a_target_error() {
    let garage = Garage::start();
    let bucket = garage.bucket("tags");
    let env = garage.env();
    let golden = s(&fixture("apko/golden"));
    let target = format!("s3://{bucket}");
    for tag in ["latest", "1.0"] {
        regpress_with_env(
            &[
                "publish",
                &golden,
                "--repo",
                "apko/golden",
                "--tag",
                tag,
                "--to",
                &target,
                "--endpoint",
                &garage.endpoint,
                "-q",
            ],
            &env,
        )
        .ok();
    }
    {
        let _web = garage.expose(&bucket);
        let list: serde_json::Value =
            reqwest::blocking::get(format!("http://{}/v2/apko/golden/tags/list", garage.web))
                .unwrap()
                .json()
                .unwrap();
        assert_eq!(list["name"], "apko/golden");
        assert_eq!(user_tags(&list), ["1.0", "latest"]);
    }

    let mut wrong = env.clone();
    for (k, v) in &mut wrong {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "0".repeat(64);
        }
    }
    let before = garage.listing(&bucket);
    let out = regpress_with_env(
        &[
            "publish",
            &golden,
            "--repo",
            "apko/other",
            "--tag",
            "x",
            "--to",
            &target,
            "--endpoint",
            &garage.endpoint,
        ],
        &wrong,
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains(&target) && out.stderr.contains("403"),
        "{}",
        out.stderr
    );
    assert_eq!(garage.listing(&bucket), before);

    let no_creds: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_"))
        .cloned()
        .collect();
    let out = common::Run::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_regpress"))
            .args([
                "publish",
                &golden,
                "--repo",
                "a",
                "--tag",
                "x",
                "--to",
                &target,
                "--endpoint",
                &garage.endpoint,
            ])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .envs(no_creds)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no credentials"), "{}", out.stderr);
}

#[test]
fn stale_multipart_uploads_are_found_and_aborted() {
    let garage = Garage::start();
    let bucket = garage.bucket("stale");
    let get = |k: &str| {
        garage
            .env()
            .into_iter()
            .find(|(key, _)| key == k)
            .unwrap()
            .1
    };
    let spec = regpress::target::TargetSpec {
        to: format!("s3://{bucket}"),
        endpoint: Some(garage.endpoint.clone()),
        region: Some("garage".into()),
        access_key_id: Some(get("AWS_ACCESS_KEY_ID")),
        secret_access_key: Some(get("AWS_SECRET_ACCESS_KEY")),
        ..Default::default()
    };
    let store = regpress::target::open(&spec, 4).unwrap().store;
    // A killed run's upload: created, never completed.
    let s3 = rusty_s3::Bucket::new(
        garage.endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        bucket.clone(),
        "garage",
    )
    .unwrap();
    let creds = rusty_s3::Credentials::new(get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"));
    use rusty_s3::S3Action as _;
    let url =
        rusty_s3::actions::CreateMultipartUpload::new(&s3, Some(&creds), "v2/x/blobs/sha256:00")
            .sign(std::time::Duration::from_secs(60));
    assert!(
        reqwest::blocking::Client::new()
            .post(url)
            .send()
            .unwrap()
            .status()
            .is_success()
    );

    assert_eq!(
        store
            .clean_stale("v2/", std::time::Duration::from_secs(3600))
            .unwrap(),
        0,
        "a fresh upload is kept"
    );
    assert_eq!(
        store.clean_stale("v2/", std::time::Duration::ZERO).unwrap(),
        1
    );
    assert_eq!(
        store.clean_stale("v2/", std::time::Duration::ZERO).unwrap(),
        0,
        "it is gone"
    );
}
