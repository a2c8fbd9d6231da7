//! `regpress sbom search`: a catalog of 200 generated images, one package planted in one
//! platform SBOM of one image, found with one shard GET and one tag-map GET, from the directory
//! target and from `regpress serve`; a package nowhere present costs one GET and finds nothing;
//! a re-tag drops the match; `check --repair` rebuilds the index; and the same catalog in
//! Garage, searched through the S3 API.

mod common;

use std::fs;
use std::path::Path;

use common::synth::{self, Flavor, Layer};
use common::{Server, regpress, s};
use serde_json::{Value, json};

const IMAGES: usize = 200;
const PLANTED_IN: usize = 137;

/// An SPDX 2.3 document describing the manifest `digest`, listing `packages` (name, version).
fn spdx(digest: &str, packages: &[(&str, &str)]) -> Value {
    let hex = digest.trim_start_matches("sha256:");
    let mut listed = vec![json!({
        "SPDXID": "SPDXRef-Image", "name": digest, "versionInfo": digest,
        "downloadLocation": "NOASSERTION", "supplier": "Organization: Acme",
        "checksums": [{"algorithm": "SHA256", "checksumValue": hex}],
    })];
    let mut relationships = Vec::new();
    for (i, (name, version)) in packages.iter().enumerate() {
        listed.push(json!({
            "SPDXID": format!("SPDXRef-P{i}"), "name": name, "versionInfo": version,
            "downloadLocation": "NOASSERTION", "supplier": "Organization: Wolfi",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": format!("pkg:apk/wolfi/{name}@{version}?arch=x86_64")}],
        }));
        relationships.push(json!({"spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS", "relatedSpdxElement": format!("SPDXRef-P{i}")}));
    }
    json!({
        "SPDXID": "SPDXRef-DOCUMENT", "spdxVersion": "SPDX-2.3", "name": "synthetic",
        "dataLicense": "CC0-1.0", "documentNamespace": format!("https://example.com/sbom/{hex}"),
        "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Organization: Acme"]},
        "documentDescribes": ["SPDXRef-Image"],
        "packages": listed, "relationships": relationships,
    })
}

/// Image `i`: two platforms, an SBOM each; the arm64 one of `planted` also lists tainted-lib.
fn generate(dir: &Path, i: usize, planted: bool) -> synth::Generated {
    let base = [Layer::new(7, 64)];
    let name = format!("app{i}");
    let g = synth::apko_layout(
        dir,
        &synth::Image {
            name: &name,
            seed: 1000 + i as u64 + if planted { 500_000 } else { 0 },
            base: &base,
            arch_base: &[],
            small_layers: &[],
            app_size: 32,
            platforms: &["amd64", "arm64"],
            flavor: Flavor::Oci,
        },
    );
    let common = [("busybox", "1.36.1-r2"), ("ca-certificates", "20241121-r1")];
    let mut arm = common.to_vec();
    if planted {
        arm.push(("tainted-lib", "1.2.3-r0"));
    }
    let sboms = dir.join("sboms");
    fs::create_dir_all(&sboms).unwrap();
    for (arch, packages) in [("x86_64", common.to_vec()), ("aarch64", arm)] {
        let digest = &g.manifests[if arch == "x86_64" { 0 } else { 1 }];
        let doc = spdx(digest, &packages);
        fs::write(
            sboms.join(format!("sbom-{arch}.spdx.json")),
            doc.to_string(),
        )
        .unwrap();
    }
    g
}

fn search(args: &[&str]) -> Value {
    let mut all = vec!["sbom", "search", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&regpress(&all).ok().stdout).unwrap()
}

#[test]
fn a_package_planted_in_one_platform_of_one_of_200_images_is_found_in_two_gets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = String::new();
    let mut planted = None;
    for i in 0..IMAGES {
        let g = generate(
            &tmp.path().join(format!("layouts/app{i}")),
            i,
            i == PLANTED_IN,
        );
        if i == PLANTED_IN {
            planted = Some(g);
        }
        config.push_str(&format!(
            "[[image]]\nlayout = \"layouts/app{i}\"\nrepository = \"team{}/app{i}\"\ntags = [\"latest\", \"1.0\"]\n",
            i % 7
        ));
    }
    let planted = planted.unwrap();
    let site = tmp.path().join("site");
    fs::write(tmp.path().join("regpress.toml"), &config).unwrap();
    let config_path = tmp.path().join("regpress.toml");
    regpress(&[
        "publish",
        "--config",
        &s(&config_path),
        "--to",
        &s(&site),
        "-q",
    ])
    .ok();

    let found = search(&["--to", &s(&site), "tainted-lib"]);
    let repo = format!("team{}/app{PLANTED_IN}", PLANTED_IN % 7);
    let matches = found["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2, "{found:#}");
    for (m, tag) in matches.iter().zip(["1.0", "latest"]) {
        assert_eq!(m["repository"], repo.as_str());
        assert_eq!(m["tag"], tag);
        assert_eq!(m["digest"], planted.manifests[1].as_str());
        assert_eq!(m["index"], planted.index_digest.as_str());
        assert_eq!(m["platform"], "linux/arm64");
        assert_eq!(m["version"], "1.2.3-r0");
        assert_eq!(m["purl"], "pkg:apk/wolfi/tainted-lib@1.2.3-r0?arch=x86_64");
        assert!(m["sbom"].as_str().unwrap().starts_with("sha256:"));
    }
    assert_eq!(found["requests"], 2, "one shard, one tag map");

    let none = search(&["--to", &s(&site), "nowhere-present"]);
    assert_eq!(none["matches"], json!([]));
    assert_eq!(none["requests"], 1);
    // Version constraints and purls, from the same shard.
    for (query, n) in [
        ("tainted-lib@<1.2.10", 2),
        ("tainted-lib@<=1.2.3-r0", 2),
        ("tainted-lib@>=1.3", 0),
        ("tainted-lib@1.2.3-r0", 2),
        ("pkg:apk/wolfi/tainted-lib", 2),
        ("pkg:apk/alpine/tainted-lib", 0),
    ] {
        let found = search(&["--to", &s(&site), query]);
        assert_eq!(
            found["matches"].as_array().unwrap().len(),
            n,
            "{query}: {found:#}"
        );
    }
    // busybox is in every platform of every image: 200 images × 2 tags × 2 platforms.
    let busybox = search(&["--to", &s(&site), "BusyBox@>=1.36"]);
    assert_eq!(busybox["matches"].as_array().unwrap().len(), IMAGES * 4);
    assert_eq!(
        busybox["requests"],
        1 + 200,
        "one shard, a tag map per repository"
    );

    // The URL form, from regpress serve.
    let server = Server::start(&site);
    let served = search(&[&server.url(""), "tainted-lib"]);
    assert_eq!(served["matches"], found["matches"]);
    assert_eq!(served["requests"], 2);
    let text = regpress(&["sbom", "search", &server.url(""), "tainted-lib"]);
    assert!(
        text.ok()
            .stdout
            .contains(&format!("{repo}:latest\tlinux/arm64\ttainted-lib 1.2.3-r0")),
        "{}",
        text.stdout
    );
    drop(server);

    // check --repair derives the index again from the SBOM referrers the tags reach.
    drop(rebuild_index(&site));
    assert_eq!(
        search(&["--to", &s(&site), "tainted-lib"])["matches"],
        found["matches"]
    );
    assert_eq!(
        search(&["--to", &s(&site), "busybox"])["matches"],
        busybox["matches"]
    );

    // Re-tag the planted repository with a clean image: the match goes with the tags, and
    // the shards the publish rewrote drop the old image's entries.
    let clean = tmp.path().join("clean");
    generate(&clean, PLANTED_IN + 10_000, false);
    regpress(&[
        "publish",
        "--to",
        &s(&site),
        &s(&clean),
        "--repo",
        &repo,
        "--tag",
        "latest",
        "--tag",
        "1.0",
        "-q",
    ])
    .ok();
    let gone = search(&["--to", &s(&site), "tainted-lib"]);
    assert_eq!(gone["matches"], json!([]), "{gone:#}");
    let busybox = search(&["--to", &s(&site), "busybox"]);
    assert_eq!(busybox["matches"].as_array().unwrap().len(), IMAGES * 4);
    let shard = fs::read_to_string(
        site.join("v2/_regpress/packages/shards")
            .join(shard_file("busybox")),
    )
    .unwrap();
    assert!(
        !shard.contains(&planted.index_digest),
        "stale entries were kept"
    );
}

/// The shard file of a package name (the first byte of its lowercased name's sha256, in hex).
fn shard_file(name: &str) -> String {
    format!(
        "{}.json",
        &synth::sha256_hex(name.to_lowercase().as_bytes())[..2]
    )
}

fn vex_doc(product: &str, status: &str) -> Value {
    json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/golden-1",
        "author": "Acme security", "timestamp": "2026-12-01T00:00:00Z", "version": 1,
        "statements": [{
            "vulnerability": {"name": "CVE-2026-0001"},
            "products": [{"@id": product,
                          "subcomponents": [{"@id": "pkg:apk/unknown/replayout@1.0.0-r0"}]}],
            "status": status, "justification": "vulnerable_code_not_in_execute_path",
        }],
    })
}

#[test]
fn vex_documents_attach_as_referrers_and_show_in_search() {
    let tmp = tempfile::tempdir().unwrap();
    let index = common::golden_digest();
    let site = tmp.path().join("site");

    // A statement about another image is refused, and nothing is written.
    let other = tmp.path().join("other.vex.json");
    let stranger = format!("pkg:oci/golden@sha256:{}", "0".repeat(64));
    fs::write(&other, vex_doc(&stranger, "not_affected").to_string()).unwrap();
    let refused = common::publish_as_golden(
        &common::fixture("apko/golden"),
        &site,
        &["--vex", &s(&other)],
    );
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("other.vex.json")
            && refused.stderr.contains("no product names this image"),
        "{}",
        refused.stderr
    );
    assert!(!site.join("v2").exists(), "a refused VEX wrote something");

    // The fixture docs/sboms.md publishes: its product is the index's pkg:oci purl.
    let good = common::fixture("vex/golden.openvex.json");
    let purl = format!("pkg:oci/golden@{}", index.replace(':', "%3A"));
    assert_eq!(
        serde_json::from_slice::<Value>(&fs::read(&good).unwrap()).unwrap(),
        vex_doc(&purl, "not_affected")
    );
    let report = tmp.path().join("report.json");
    common::publish_as_golden(
        &common::fixture("apko/golden"),
        &site,
        &["--vex", &s(&good), "--report", &s(&report), "-q"],
    )
    .ok();
    let report = common::report(&report);
    assert_eq!(report["images"][0]["vex"], 1, "{report:#}");
    let referrers: Value = serde_json::from_slice(
        &fs::read(site.join(format!("v2/apko/golden/referrers/{index}"))).unwrap(),
    )
    .unwrap();
    let vex: Vec<&Value> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/openvex+json")
        .collect();
    assert_eq!(vex.len(), 1, "{referrers:#}");

    let check = |found: &Value| {
        let matches = found["matches"].as_array().unwrap();
        assert_eq!(matches.len(), 2, "{found:#}");
        for m in matches {
            let statement = &m["vex"]["statements"][0];
            assert_eq!(statement["vulnerability"], "CVE-2026-0001");
            assert_eq!(statement["status"], "not_affected");
            assert_eq!(
                statement["justification"],
                "vulnerable_code_not_in_execute_path"
            );
            assert!(
                statement["document"]
                    .as_str()
                    .unwrap()
                    .starts_with("sha256:")
            );
        }
    };
    check(&search(&["--to", &s(&site), "replayout"]));
    let other_package = search(&["--to", &s(&site), "pretend-baselayout"]);
    for m in other_package["matches"].as_array().unwrap() {
        assert_eq!(m["vex"], Value::Null, "{m:#}");
    }
    // The rebuilt index reads the statements back from the VEX referrer.
    let server = rebuild_index(&site);
    check(&search(&[&server.url(""), "replayout"]));
}

/// Remove the package index of `site` (a search then finds nothing) and rebuild it with
/// `check --repair` against `regpress serve`; the server keeps running.
fn rebuild_index(site: &Path) -> Server {
    fs::remove_dir_all(site.join("v2/_regpress/packages")).unwrap();
    assert_eq!(search(&["--to", &s(site), "busybox"])["matches"], json!([]));
    assert_eq!(
        search(&["--to", &s(site), "replayout"])["matches"],
        json!([])
    );
    let server = Server::start(site);
    let url = server.url("");
    regpress(&["check", &url, "--repair", "--to", &s(site), "-q"]).ok();
    server
}

#[test]
fn racing_publishers_lose_no_index_entry() {
    // Six runs at once, each publishing the golden image to a repository of its own: their
    // entries go to the same shards, so their swaps collide.
    let tmp = tempfile::tempdir().unwrap();
    let golden = s(&common::fixture("apko/golden"));
    for round in 0..4 {
        let site = s(&tmp.path().join(format!("site{round}")));
        let runs: Vec<std::process::Child> = (0..6)
            .map(|i| {
                std::process::Command::new(env!("CARGO_BIN_EXE_regpress"))
                    .args(["publish", &golden, "--repo", &format!("racer{i}/golden")])
                    .args(["--tag", "latest", "--to", &site, "-q"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut run in runs {
            assert!(run.wait().unwrap().success());
        }
        let found = search(&["--to", &site, "replayout"]);
        let repos: std::collections::BTreeSet<&str> = found["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["repository"].as_str().unwrap())
            .collect();
        assert_eq!(repos.len(), 6, "round {round}: {repos:?}");
    }
}

#[test]
fn in_garage_a_catalog_of_200_images_is_searched_in_two_gets() {
    let garage = common::garage::Garage::start();
    let bucket = garage.bucket("search");
    let env = garage.env();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[target]\nto = \"s3://{bucket}\"\nendpoint = \"{}\"\nregion = \"garage\"\n",
        garage.endpoint
    );
    for i in 0..IMAGES {
        generate(
            &tmp.path().join(format!("layouts/app{i}")),
            i,
            i == PLANTED_IN,
        );
        config.push_str(&format!(
            "[[image]]\nlayout = \"layouts/app{i}\"\nrepository = \"team{}/app{i}\"\ntags = [\"latest\"]\n",
            i % 7
        ));
    }
    let config_path = tmp.path().join("regpress.toml");
    fs::write(&config_path, &config).unwrap();
    let cfg = s(&config_path);
    common::regpress_with_env(&["publish", "--config", &cfg, "-q"], &env).ok();
    let run = |query: &str| -> Value {
        let out =
            common::regpress_with_env(&["sbom", "search", "--config", &cfg, query, "--json"], &env);
        out.ok();
        serde_json::from_str(&out.stdout).unwrap()
    };
    let found = run("tainted-lib");
    let matches = found["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{found:#}");
    assert_eq!(
        matches[0]["repository"],
        format!("team{}/app{PLANTED_IN}", PLANTED_IN % 7).as_str()
    );
    assert_eq!(matches[0]["platform"], "linux/arm64");
    assert_eq!(found["requests"], 2, "one shard, one tag map");
    let none = run("nowhere-present");
    assert_eq!(none["matches"], json!([]));
    assert_eq!(none["requests"], 1);
}
