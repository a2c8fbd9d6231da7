//! End to end against the local-directory target: publish with the real binary, serve the site
//! with `regpress serve`, and pull with skopeo.

mod common;

use std::fs;
use std::path::Path;

use common::synth::{self, Breakage, Flavor, Layer};
use common::{
    Server, fixture, platform_digest, platforms_of, pull_all, pulled_platforms, regpress, report,
    s, skopeo, snapshot, user_tags,
};

/// Publish one layout under one tag, quietly, and insist it succeeds.
fn publish_quiet(layout: &Path, repo: &str, tag: &str, site: &Path) {
    regpress(&[
        "publish",
        &s(layout),
        "--repo",
        repo,
        "--tag",
        tag,
        "--to",
        &s(site),
        "-q",
    ])
    .ok();
}

#[test]
fn apko_golden_is_published_served_and_pulled_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = fixture("apko/golden");
    let index_bytes = fs::read(golden.join("index.json")).unwrap();
    let index_digest = synth::digest_of(&index_bytes);
    let rep = tmp.path().join("report.json");

    let publish = || {
        regpress(&[
            "publish",
            &s(&golden),
            "--repo",
            "apko/golden",
            "--tag",
            "latest",
            "--tag",
            "1.0",
            "--to",
            &s(&site),
            "--report",
            &s(&rep),
        ])
    };
    let out = publish();
    out.ok();
    assert!(
        out.stdout
            .contains(&format!("published apko/golden:latest {index_digest}")),
        "{}",
        out.stdout
    );
    let r = report(&rep);
    // 4 blobs, 2 platform manifests, the index, their 3 referrers lists, 2 tags and their 2
    // first-publication records, tags/list,
    // _catalog, v2/ and v2/index.html; and the 3 apko SBOMs as referrers: their manifests, the
    // SBOM files, the empty config, and the 3 sha256-<hex> referrers tags with their lists by
    // digest.
    // And the package index of the SBOMs' packages: 6 shards and the repository's tag map.
    assert_eq!(r["objects_written"], 31);
    assert_eq!(r["index_written"], 7);
    assert_eq!(r["objects_unchanged"], 0);
    assert_eq!(r["tags"][0]["digest"], index_digest.as_str());
    assert!(r["bytes_written"].as_u64().unwrap() > 7000);

    let server = Server::start(&site);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &server.image("apko/golden:latest"),
    ]);
    raw.ok();
    assert_eq!(
        raw.stdout.as_bytes(),
        &index_bytes[..],
        "inspect --raw returns index.json's exact bytes"
    );

    pull_all(&server.image("apko/golden:1.0"), &tmp.path().join("pull"));
    assert_eq!(
        pulled_platforms(&tmp.path().join("pull")),
        platforms_of(&index_bytes)
    );
    let index: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        assert_eq!(
            platform_digest(
                &server.image("apko/golden:latest"),
                arch,
                &tmp.path().join("single")
            ),
            index["manifests"][i]["digest"].as_str().unwrap()
        );
    }

    // A second publish of the same input writes nothing and touches no file.
    let before = snapshot(&site);
    publish().ok();
    let r = report(&rep);
    assert_eq!(r["objects_written"], 0);
    assert_eq!(r["bytes_written"], 0);
    assert_eq!(r["objects_unchanged"], 31);
    assert_eq!(snapshot(&site), before);
}

#[test]
fn serve_answers_like_a_bucket_website() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    publish_quiet(&fixture("apko/golden"), "a/b", "t", &site);
    let server = Server::start(&site);
    let http = reqwest::blocking::Client::new();

    let root = http.get(server.url("/v2/")).send().unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.headers()["content-type"], "application/json");
    assert_eq!(root.text().unwrap(), "{}");

    let index = fs::read(fixture("apko/golden/index.json")).unwrap();
    let tag = http.get(server.url("/v2/a/b/manifests/t")).send().unwrap();
    assert_eq!(tag.headers()["content-type"], synth::OCI_INDEX);
    assert_eq!(tag.headers()["cache-control"], "public, max-age=60");
    assert_eq!(
        tag.headers()["x-amz-meta-digest"],
        synth::digest_of(&index).as_str()
    );
    assert_eq!(tag.bytes().unwrap().as_ref(), &index[..]);

    let by_digest = http
        .get(server.url(&format!("/v2/a/b/manifests/{}", synth::digest_of(&index))))
        .send()
        .unwrap();
    assert_eq!(
        by_digest.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    let head = http.head(server.url("/v2/a/b/manifests/t")).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        index.len().to_string().as_str()
    );

    let range = http
        .get(server.url("/v2/a/b/manifests/t"))
        .header("Range", "bytes=2-9")
        .send()
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().unwrap().as_ref(), &index[2..10]);

    let list: serde_json::Value = http
        .get(server.url("/v2/a/b/tags/list"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["name"], "a/b");
    assert_eq!(user_tags(&list), ["t"]);
    for missing in [
        "/v2/a/b/manifests/nope",
        "/v2/nope/tags/list",
        "/.regpress/meta/v2/_catalog.json",
        "/v2/../x",
    ] {
        assert_eq!(
            http.get(server.url(missing)).send().unwrap().status(),
            404,
            "{missing}"
        );
    }
    assert_eq!(
        http.delete(server.url("/v2/")).send().unwrap().status(),
        405
    );

    // `regpress check` crawls it as a client would: clean, then one flipped byte is caught.
    let base = server.url("");
    let out = regpress(&["check", &base]);
    out.ok();
    assert!(
        out.stdout.contains(
            "1 repositories, 4 tags, 9 manifests, 3 referrers lists, 8 blobs checked, 0 problems"
        ),
        "{}",
        out.stdout
    );
    let layer = "sha256:c7557730da0e2d7fb242d8d1ac6dcf7e3a2439732aa5981270b4f3a02454b738";
    let path = site.join(format!("v2/a/b/blobs/{layer}"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 1;
    fs::write(&path, bytes).unwrap();
    let out = regpress(&["check", &base, "--repo", "a/b"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(layer) && out.stderr.contains("hashes to"),
        "{}",
        out.stderr
    );
    fs::write(
        &path,
        fs::read(fixture(&format!(
            "apko/golden/blobs/sha256/{}",
            &layer[7..]
        )))
        .unwrap(),
    )
    .unwrap();
    // A referrer the list names but the site lacks is caught too.
    let index = synth::digest_of(&fs::read(fixture("apko/golden/index.json")).unwrap());
    let list: serde_json::Value =
        serde_json::from_slice(&fs::read(site.join(format!("v2/a/b/referrers/{index}"))).unwrap())
            .unwrap();
    let sbom = list["manifests"][0]["digest"].as_str().unwrap();
    fs::remove_file(site.join(format!("v2/a/b/manifests/{sbom}"))).unwrap();
    let out = regpress(&["check", &base]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("manifests/{sbom}: HTTP 404")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_publish_adds_tags_and_repositories() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = fixture("apko/golden");
    publish_quiet(&golden, "apko/golden", "latest", &site);
    publish_quiet(&golden, "apko/golden", "1.0", &site);
    publish_quiet(&fixture("apko/top_image"), "apko/top", "v1", &site);
    let read = |k: &str| -> serde_json::Value {
        serde_json::from_slice(&fs::read(site.join(k)).unwrap()).unwrap()
    };
    assert_eq!(
        user_tags(&read("v2/apko/golden/tags/list")),
        ["1.0", "latest"]
    );
    assert_eq!(
        read("v2/_catalog")["repositories"],
        serde_json::json!(["apko/golden", "apko/top"])
    );

    let server = Server::start(&site);
    pull_all(&server.image("apko/top:v1"), &tmp.path().join("pull"));
    let top = fs::read(fixture("apko/top_image/index.json")).unwrap();
    assert_eq!(
        pulled_platforms(&tmp.path().join("pull")),
        platforms_of(&top)
    );
}

#[test]
fn a_synthetic_catalog_from_a_config_shares_base_layers_and_pulls() {
    let tmp = tempfile::tempdir().unwrap();
    let base = vec![Layer::new(1, 200_000), Layer::new(2, 3_000)];
    let mut generated = Vec::new();
    let mut config = String::from("[target]\nto = \"site\"\n");
    for (i, name) in ["base", "python", "nginx"].iter().enumerate() {
        let dir = tmp.path().join("layouts").join(name);
        let flavor = if i == 2 { Flavor::Docker } else { Flavor::Oci };
        generated.push(synth::apko_layout(
            &dir,
            &synth::Image {
                name,
                seed: 10 + i as u64,
                base: &base,
                app_size: 50_000,
                platforms: &["amd64", "arm64"],
                flavor,
                arch_base: &[],
                small_layers: &[],
            },
        ));
        config.push_str(&format!(
            "[[image]]\nlayout = \"layouts/{name}\"\nrepository = \"hardened/{name}\"\ntags = [\"latest\", \"1\"]\n"
        ));
    }
    let config_path = tmp.path().join("regpress.toml");
    fs::write(&config_path, config).unwrap();
    let site = tmp.path().join("site");

    // A dry run verifies and plans, and writes nothing at all.
    let dry = regpress(&["publish", "--config", &s(&config_path), "--dry-run"]);
    dry.ok();
    assert!(
        dry.stdout.contains("would write") && dry.stdout.contains("dry run"),
        "{}",
        dry.stdout
    );
    assert!(!site.exists());

    let rep = tmp.path().join("r.json");
    regpress(&[
        "publish",
        "--config",
        &s(&config_path),
        "--report",
        &s(&rep),
        "-q",
    ])
    .ok();
    let r = report(&rep);
    assert_eq!(r["tags"].as_array().unwrap().len(), 6);
    // Two shared base layers, stored once and linked into the two other repositories.
    assert_eq!(r["objects_copied"], 4);
    let server = Server::start(&site);
    for (i, name) in ["base", "python", "nginx"].iter().enumerate() {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &server.image(&format!("hardened/{name}:1")),
        ]);
        raw.ok();
        assert_eq!(raw.stdout.as_bytes(), &generated[i].index_bytes[..]);
        let dest = tmp.path().join(format!("pull-{name}"));
        if i == 2 {
            // Docker media types: an `oci:` destination would convert them, a `dir:` keeps them.
            skopeo(&[
                "copy",
                "--all",
                "--src-tls-verify=false",
                &server.image(&format!("hardened/{name}:latest")),
                &format!("dir:{}", dest.display()),
            ])
            .ok();
            assert_eq!(
                fs::read(dest.join("manifest.json")).unwrap(),
                generated[i].index_bytes
            );
            for manifest in &generated[i].manifests {
                let copied = fs::read(dest.join(format!(
                    "{}.manifest.json",
                    manifest.trim_start_matches("sha256:")
                )))
                .unwrap();
                assert_eq!(&synth::digest_of(&copied), manifest);
            }
        } else {
            pull_all(&server.image(&format!("hardened/{name}:latest")), &dest);
            assert_eq!(pulled_platforms(&dest), generated[i].manifests);
        }
        for blob in &generated[i].blobs {
            assert!(
                site.join(format!("v2/hardened/{name}/blobs/{blob}"))
                    .is_file()
            );
        }
    }
    let docker = reqwest::blocking::get(server.url("/v2/hardened/nginx/manifests/latest")).unwrap();
    assert_eq!(docker.headers()["content-type"], synth::DOCKER_LIST);
    let child = reqwest::blocking::get(server.url(&format!(
        "/v2/hardened/nginx/manifests/{}",
        generated[2].manifests[0]
    )))
    .unwrap();
    assert_eq!(child.headers()["content-type"], synth::DOCKER_MANIFEST);
}

#[test]
fn named_layouts_publish_each_image_under_its_ref_name() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("named");
    let base = vec![Layer::new(7, 10_000)];
    let images = synth::named_layout(&layout, &[("v1", 1), ("v2", 2)], &base, 5_000);
    let site = tmp.path().join("site");
    regpress(&[
        "publish",
        &s(&layout),
        "--repo",
        "named",
        "--to",
        &s(&site),
        "-q",
    ])
    .ok();
    for (tag, image) in ["v1", "v2"].iter().zip(&images) {
        assert_eq!(
            fs::read(site.join(format!("v2/named/manifests/{tag}"))).unwrap(),
            image.index_bytes
        );
    }
    // One image chosen by ref and given another tag.
    regpress(&[
        "publish",
        &s(&layout),
        "--repo",
        "named",
        "--ref",
        "v2",
        "--tag",
        "stable",
        "--to",
        &s(&site),
        "-q",
    ])
    .ok();
    assert_eq!(
        fs::read(site.join("v2/named/manifests/stable")).unwrap(),
        images[1].index_bytes
    );
    // A tag without a choice among several images is refused.
    let ambiguous = regpress(&[
        "publish",
        &s(&layout),
        "--repo",
        "named",
        "--tag",
        "x",
        "--to",
        &s(&site),
    ]);
    assert_eq!(ambiguous.code, 3);
    assert!(
        ambiguous.stderr.contains("choose one with --ref"),
        "{}",
        ambiguous.stderr
    );
}

#[test]
fn every_broken_layout_is_refused_and_the_target_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    publish_quiet(&fixture("apko/golden"), "good", "latest", &site);
    let before = snapshot(&site);
    let base = vec![Layer::new(3, 20_000)];
    for (i, breakage) in Breakage::ALL.iter().enumerate() {
        let dir = tmp.path().join(format!("broken-{i}"));
        let g = synth::apko_layout(
            &dir,
            &synth::Image {
                name: "broken",
                seed: 100 + i as u64,
                base: &base,
                app_size: 10_000,
                platforms: &["amd64", "arm64"],
                flavor: Flavor::Oci,
                arch_base: &[],
                small_layers: &[],
            },
        );
        let digest = breakage.apply(&g, &tmp.path().join(format!("outside-{i}")));
        for args in [
            vec![
                "publish",
                &s(&dir),
                "--repo",
                "broken",
                "--tag",
                "latest",
                "--to",
                &s(&site),
            ],
            vec!["verify", &s(&dir)],
        ] {
            let out = regpress(&args.iter().map(|a| a.as_ref()).collect::<Vec<&str>>());
            assert_eq!(out.code, 3, "{breakage:?}: {}", out.stderr);
            for needle in [breakage.expected_reason(), digest.as_str(), &s(&dir)] {
                assert!(
                    out.stderr.contains(needle),
                    "{breakage:?}: {needle:?} not in {}",
                    out.stderr
                );
            }
        }
        assert_eq!(snapshot(&site), before, "{breakage:?} changed the target");
        assert!(!site.join("v2/broken").exists());
    }
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = s(&fixture("apko/golden"));
    for args in [
        vec![
            "publish",
            &golden,
            "--repo",
            "Bad/Name",
            "--tag",
            "x",
            "--to",
            &s(&site),
        ],
        vec![
            "publish",
            &golden,
            "--repo",
            "ok",
            "--tag",
            "-bad",
            "--to",
            &s(&site),
        ],
        vec!["publish", &golden, "--tag", "x", "--to", &s(&site)],
        vec!["publish", &golden, "--repo", "ok", "--to", &s(&site)],
        vec!["publish", &golden, "--repo", "ok", "--tag", "x"],
        vec![
            "publish", &golden, "--repo", "ok", "--tag", "x", "--to", "ftp://x",
        ],
        vec!["publish"],
    ] {
        let out = regpress(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty());
    }
    assert!(!site.exists());
}

#[test]
fn the_example_config_publishes_the_bundled_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/regpress.toml");
    let site = tmp.path().join("site");
    let out = regpress(&["publish", "--config", &s(&config), "--to", &s(&site)]);
    out.ok();
    assert!(
        out.stdout.contains("published apko/golden:latest"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("published apko/top:latest"),
        "{}",
        out.stdout
    );
    let catalog: serde_json::Value =
        serde_json::from_slice(&fs::read(site.join("v2/_catalog")).unwrap()).unwrap();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["apko/golden", "apko/top"])
    );
}

#[test]
fn publish_hashes_what_it_sends_and_trusts_what_the_target_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    publish_quiet(&fixture("apko/golden"), "apko/golden", "latest", &site);
    // A copy of the layout whose layer went bad after it was published.
    let layout = tmp.path().join("golden");
    common::copy_dir(&fixture("apko/golden"), &layout);
    let layer = "sha256:c7557730da0e2d7fb242d8d1ac6dcf7e3a2439732aa5981270b4f3a02454b738";
    let path = synth::blob_path(&layout, layer);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 1;
    fs::write(&path, bytes).unwrap();

    // The site already holds that layer, checked when it was written: nothing is sent, so the
    // re-publish succeeds and writes nothing; `verify` still reads everything and refuses it.
    let rep = tmp.path().join("r.json");
    regpress(&[
        "publish",
        &s(&layout),
        "--repo",
        "apko/golden",
        "--tag",
        "latest",
        "--to",
        &s(&site),
        "--report",
        &s(&rep),
        "-q",
    ])
    .ok();
    assert_eq!(report(&rep)["objects_written"], 0);
    let out = regpress(&["verify", &s(&layout)]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains(layer) && out.stderr.contains("digest mismatch"),
        "{}",
        out.stderr
    );
    // Publishing it to a new repository would send it: refused, nothing written.
    let out = regpress(&[
        "publish",
        &s(&layout),
        "--repo",
        "fresh",
        "--tag",
        "latest",
        "--to",
        &s(&tmp.path().join("new")),
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!tmp.path().join("new").exists());
}

/// Each image of a report counts the objects of its own repository, not those of a repository
/// nested under its name (`nest` and `nest/inner` share every digest and the `v2/nest/` prefix).
#[test]
fn each_image_of_a_report_counts_its_own_repositorys_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = s(&fixture("apko/golden"));
    let cfg = tmp.path().join("nested.toml");
    let table = |repo: &str| {
        format!("[[image]]\nlayout = \"{golden}\"\nrepository = \"{repo}\"\ntags = [\"v1\"]\n")
    };
    fs::write(&cfg, table("nest") + &table("nest/inner")).unwrap();
    let out = tmp.path().join("report.json");
    let run = ["publish", "--config", &s(&cfg), "--to", &s(&site), "-q"];
    regpress(&[&run[..], &["--report", &s(&out)]].concat()).ok();
    let images = report(&out)["images"].as_array().unwrap().clone();
    assert_eq!(images.len(), 2);
    let count = |i: usize| images[i]["objects_to_write"].as_u64().unwrap();
    assert!(count(0) > 10, "{images:?}");
    assert_eq!(count(0), count(1), "the same image, once per repository");
    assert_eq!(images[0]["tags_changed"], serde_json::json!(["v1"]));
}

/// The files under `dir`, by path below it, with their bytes.
fn tree(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .map(|(path, (bytes, _))| (path.strip_prefix(dir).unwrap().to_path_buf(), bytes))
        .collect()
}

/// A catalog of more images than `--batch` is published in batches of whole repositories: the
/// same site as in one pass, a re-run that writes nothing, and a bad image or a refusal in the
/// last batch that writes nothing at all, in any batch.
#[test]
fn a_catalog_published_in_batches_is_the_same_site_and_a_late_failure_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (golden, top) = (fixture("apko/golden"), fixture("apko/top_image"));
    let write_config = |name: &str, images: &[(&Path, &str, &str)]| {
        let path = dir.path().join(name);
        let text: String = images
            .iter()
            .map(|(layout, repo, tag)| {
                format!(
                    "[[image]]\nlayout = \"{}\"\nrepository = \"{repo}\"\ntags = [\"{tag}\"]\n",
                    s(layout)
                )
            })
            .collect();
        fs::write(&path, text).unwrap();
        s(&path)
    };
    let catalog = [
        (golden.as_path(), "acme/one", "latest"),
        (top.as_path(), "acme/two", "latest"),
        (golden.as_path(), "acme/three", "v1"),
        (top.as_path(), "acme/four", "v1"),
    ];
    let config = write_config("all.toml", &catalog);
    let publish = |config: &str, site: &Path, extra: &[&str]| {
        let report = dir.path().join("report.json");
        let mut args = vec!["publish", "--config", config, "--to"];
        let (site, report_arg) = (s(site), s(&report));
        args.extend([site.as_str(), "-q", "--report", report_arg.as_str()]);
        args.extend(extra);
        let out = regpress(&args);
        let report = (out.code == 0).then(|| common::report(&report));
        (out, report)
    };

    let whole = dir.path().join("whole");
    let (out, one_pass) = publish(&config, &whole, &[]);
    out.ok();
    let batched = dir.path().join("batched");
    let (out, dry) = publish(&config, &batched, &["--batch", "1", "--dry-run"]);
    out.ok();
    assert!(tree(&batched).is_empty(), "a batched dry run wrote");
    let dry = dry.unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["images"].as_array().unwrap().len(), 4);
    let (out, report) = publish(&config, &batched, &["--batch", "1"]);
    out.ok();
    assert_eq!(
        tree(&batched),
        tree(&whole),
        "batches make another site than one pass"
    );
    let (report, one_pass) = (report.unwrap(), one_pass.unwrap());
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["tags"], one_pass["tags"]);
    assert_eq!(report["images"].as_array().unwrap().len(), 4);
    assert_eq!(report["phases"][0]["phase"], one_pass["phases"][0]["phase"]);
    // Every image's objects, and the catalog once per batch that added a repository.
    assert!(report["objects_written"].as_u64() >= one_pass["objects_written"].as_u64());
    let (out, again) = publish(&config, &batched, &["--batch", "1"]);
    out.ok();
    let again = again.unwrap();
    assert_eq!(again["objects_written"], 0, "{again}");
    assert_eq!(again["dry_run"], false);
    assert_eq!(again["images"].as_array().unwrap().len(), 4);

    // A layout missing a blob, in the last batch: nothing is written, not even the first
    // batches' new repository.
    let broken = dir.path().join("broken");
    common::copy_dir(&golden, &broken);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(broken.join("index.json")).unwrap()).unwrap();
    let root = index["manifests"][0]["digest"].as_str().unwrap();
    fs::remove_file(
        broken
            .join("blobs/sha256")
            .join(root.trim_start_matches("sha256:")),
    )
    .unwrap();
    let mut late = vec![(golden.as_path(), "acme/new", "latest")];
    late.extend(catalog);
    late.push((broken.as_path(), "zz/last", "latest"));
    let before = tree(&batched);
    let (out, _) = publish(
        &write_config("late.toml", &late),
        &batched,
        &["--batch", "1"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains(&s(&broken)), "{}", out.stderr);
    assert_eq!(
        tree(&batched),
        before,
        "a batch was written before the failure"
    );

    // An immutable tag that would move, in the last batch: refused before any batch writes.
    let (out, _) = publish(
        &write_config("zz.toml", &[(golden.as_path(), "zz/last", "v1")]),
        &batched,
        &[],
    );
    out.ok();
    let before = tree(&batched);
    let mut moved = vec![(golden.as_path(), "acme/new", "latest")];
    moved.extend(catalog);
    moved.push((top.as_path(), "zz/last", "v1"));
    let (out, _) = publish(
        &write_config("moved.toml", &moved),
        &batched,
        &["--batch", "1", "--immutable", "v1"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("zz/last:v1 is immutable"),
        "{}",
        out.stderr
    );
    assert_eq!(
        tree(&batched),
        before,
        "a batch was written before the refusal"
    );
}
