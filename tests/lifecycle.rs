//! The catalog's lifecycle on the local-directory target: `publish --prune` (desired state),
//! `regpress gc` (reachability from the site itself, grace period, referrers), concurrent
//! publishers (the directory target's compare-and-swap) and `check --repair`.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::synth::{self, Flavor, Generated, Layer};
use common::{
    Server, fixture, pull_all, pulled_platforms, regpress, report, s, snapshot, user_tags,
};

/// A generated single-image layout.
fn image(dir: &Path, name: &str, seed: u64, base: &[Layer]) -> Generated {
    synth::apko_layout(
        dir,
        &synth::Image {
            name,
            seed,
            base,
            app_size: 20_000,
            platforms: &["amd64", "arm64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        },
    )
}

/// Write a config: `[[image]]` per (layout, repository, tags).
fn config(path: &Path, site: &Path, images: &[(&Path, &str, &[&str])]) {
    let mut text = format!("[target]\nto = \"{}\"\n", site.display());
    for (layout, repo, tags) in images {
        text.push_str(&format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"{repo}\"\ntags = {tags:?}\n",
            layout.display()
        ));
    }
    fs::write(path, text).unwrap();
}

fn json(site: &Path, key: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(site.join(key)).unwrap()).unwrap()
}

/// Every key of the site (files outside `.regpress/`).
fn keys(site: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(site)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".regpress")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(site).unwrap().to_string_lossy();
            match rel.strip_suffix(".slash") {
                Some(dir) => dir.to_string(),
                None => rel.into_owned(),
            }
        })
        .collect()
}

/// The content keys an image's layout puts in `repo`: its blobs, manifests and index.
fn content_keys(repo: &str, g: &Generated) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = g
        .blobs
        .iter()
        .map(|b| format!("v2/{repo}/blobs/{b}"))
        .collect();
    for m in g.manifests.iter().chain([&g.index_digest]) {
        out.insert(format!("v2/{repo}/manifests/{m}"));
        out.insert(format!("v2/{repo}/referrers/{m}"));
    }
    out
}

/// Make every file of the site look `age` old.
fn age_site(site: &Path, age: Duration) {
    let then = SystemTime::now() - age;
    for entry in walkdir::WalkDir::new(site)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() {
            fs::File::options()
                .write(true)
                .open(entry.path())
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
    }
}

/// Whether a file of a directory site is gc's mark (or its record).
fn is_mark(path: &Path) -> bool {
    path.components()
        .any(|c| c.as_os_str() == regpress::site::MARKS)
}

/// Set back the modification time of gc's marks in `site` by `age`, as if written that long
/// ago.
fn age_marks(site: &Path, age: Duration) {
    let then = SystemTime::now() - age;
    for entry in walkdir::WalkDir::new(site)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() && is_mark(entry.path()) {
            let file = fs::File::options().write(true).open(entry.path()).unwrap();
            file.set_modified(then).unwrap();
        }
    }
}

#[test]
fn prune_makes_the_site_hold_exactly_the_configured_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = fixture("apko/golden");
    let top = fixture("apko/top_image");
    let old = tmp.path().join("old");
    image(&old, "old", 1, &[]);
    let first = tmp.path().join("first.toml");
    config(
        &first,
        &site,
        &[
            (&golden, "apko/golden", &["latest", "1.0"]),
            (&top, "apko/top", &["latest"]),
            (&old, "old/repo", &["v1"]),
        ],
    );
    regpress(&["publish", "--config", &s(&first), "-q"]).ok();
    let second = tmp.path().join("second.toml");
    config(
        &second,
        &site,
        &[
            (&golden, "apko/golden", &["latest"]),
            (&top, "apko/top", &["latest", "2"]),
        ],
    );

    // Without --prune, publishing the smaller config only adds.
    regpress(&["publish", "--config", &s(&second), "-q"]).ok();
    assert_eq!(
        user_tags(&json(&site, "v2/apko/golden/tags/list")),
        ["1.0", "latest"]
    );

    // A dry run says what would go and changes nothing.
    let before = snapshot(&site);
    let dry = regpress(&["publish", "--config", &s(&second), "--prune", "--dry-run"]);
    dry.ok();
    for line in ["would remove apko/golden:1.0", "would remove old/repo:v1"] {
        assert!(dry.stdout.contains(line), "{line}: {}", dry.stdout);
    }
    assert_eq!(snapshot(&site), before);

    let rep = tmp.path().join("prune.json");
    let prune = || {
        regpress(&[
            "publish",
            "--config",
            &s(&second),
            "--prune",
            "--report",
            &s(&rep),
            "-q",
        ])
        .ok();
        report(&rep)
    };
    let r = prune();
    assert_eq!(
        r["removed_tags"],
        serde_json::json!([
            {"repository": "apko/golden", "tag": "1.0"},
            {"repository": "old/repo", "tag": "v1"},
        ])
    );
    // Two tags, their records and the tag list of the repository no longer configured.
    assert_eq!(r["objects_deleted"], 5);
    assert_eq!(
        user_tags(&json(&site, "v2/apko/golden/tags/list")),
        ["latest"]
    );
    assert_eq!(
        json(&site, "v2/apko/top/tags/list")["tags"],
        serde_json::json!(["2", "latest"])
    );
    assert_eq!(
        json(&site, "v2/_catalog")["repositories"],
        serde_json::json!(["apko/golden", "apko/top"])
    );
    let present = keys(&site);
    for gone in [
        "v2/apko/golden/manifests/1.0",
        "v2/old/repo/manifests/v1",
        "v2/old/repo/tags/list",
    ] {
        assert!(!present.contains(gone), "{gone}");
    }
    // Content stays for `gc`.
    let old_content = content_keys("old/repo", &image(&old, "old", 1, &[]));
    assert!(old_content.is_subset(&present));

    // Desired state reached: a second prune changes nothing.
    let before = snapshot(&site);
    let r = prune();
    assert_eq!(
        (r["objects_written"].as_u64(), r["objects_deleted"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(snapshot(&site), before);

    let server = Server::start(&site);
    let check = regpress(&["check", &server.url("")]);
    check.ok();
    assert!(
        check.stdout.contains("2 repositories, 6 tags"),
        "{}",
        check.stdout
    );
}

#[test]
fn gc_deletes_exactly_the_unreachable_objects_older_than_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let base = vec![Layer::new(5, 30_000)];
    let (keep, old, young) = (
        tmp.path().join("keep"),
        tmp.path().join("old"),
        tmp.path().join("young"),
    );
    let keep_g = image(&keep, "keep", 1, &base);
    let old_g = image(&old, "old", 2, &base);
    let young_g = image(&young, "young", 3, &base);
    let cfg = tmp.path().join("c.toml");
    let publish = |images: &[(&Path, &str, &[&str])], prune: bool| {
        config(&cfg, &site, images);
        let mut args = vec!["publish", "--config", cfg.to_str().unwrap(), "-q"];
        if prune {
            args.push("--prune");
        }
        regpress(&args).ok();
    };
    // `old` was tagged in `app` and a repository of its own; then both moved on.
    publish(
        &[
            (&keep, "app", &["stable"]),
            (&old, "app", &["v1"]),
            (&old, "gone", &["v1"]),
        ],
        false,
    );
    publish(&[(&keep, "app", &["stable"])], true);
    let gc = |grace: &str, dry: bool| {
        let rep = tmp.path().join("gc.json");
        let mut args = vec![
            "gc",
            "--to",
            site.to_str().unwrap(),
            "--grace",
            grace,
            "--report",
            rep.to_str().unwrap(),
        ];
        if dry {
            args.push("--dry-run");
        }
        let out = regpress(&args);
        out.ok();
        (report(&rep), out.stdout)
    };
    let garbage_old: BTreeSet<String> = content_keys("app", &old_g)
        .difference(&content_keys("app", &keep_g))
        .cloned()
        .chain(content_keys("gone", &old_g))
        .collect();

    // Everything is younger than an hour: nothing goes.
    let before = snapshot(&site);
    let (r, _) = gc("1h", false);
    assert_eq!(r["unreachable"], garbage_old.len());
    assert_eq!(r["kept_in_grace"], garbage_old.len());
    assert_eq!(r["deleted"], 0);
    assert_eq!(snapshot(&site), before);

    // Two hours later, `young` is published and pruned right away: its garbage is fresh.
    age_site(&site, Duration::from_secs(7200));
    publish(
        &[(&keep, "app", &["stable"]), (&young, "app", &["tmp"])],
        false,
    );
    publish(&[(&keep, "app", &["stable"])], true);
    let garbage_young: BTreeSet<String> = content_keys("app", &young_g)
        .difference(&content_keys("app", &keep_g))
        .cloned()
        .collect();

    // The first collection to see the old garbage old enough marks it, and deletes nothing:
    // a publish may have found it and be about to tag it.
    let before = snapshot(&site);
    let (r, _) = gc("1h", false);
    assert_eq!(r["marked"], garbage_old.len());
    assert_eq!(r["deleted"], 0);
    let marks = keys(&site)
        .iter()
        .filter_map(|k| regpress::site::parse_mark_key(k))
        .collect::<BTreeSet<_>>();
    assert_eq!(marks, garbage_old, "a mark on each, and only on them");
    let mut after = snapshot(&site);
    after.retain(|path, _| !is_mark(path));
    assert_eq!(after, before, "nothing else changed");

    // Two hours after the marks, the marked garbage goes; the young garbage stays.
    age_marks(&site, Duration::from_secs(7200));
    let (dry, stdout) = gc("1h", true);
    let listed: BTreeSet<String> = serde_json::from_value(dry["garbage"].clone()).unwrap();
    assert_eq!(listed, garbage_old, "exactly the old unreachable objects");
    assert!(stdout.contains("dry run"), "{stdout}");
    let all = keys(&site);
    let (r, _) = gc("1h", false);
    assert_eq!(r["deleted"], garbage_old.len());
    assert_eq!(r["marks_cleared"], garbage_old.len());
    assert_eq!(r["kept_in_grace"], garbage_young.len());
    let all: BTreeSet<String> = all
        .into_iter()
        .filter(|k| regpress::site::parse_mark_key(k).is_none())
        .collect();
    assert_eq!(
        keys(&site),
        all.difference(&garbage_old)
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    let (r, _) = gc("0s", false);
    assert_eq!(r["deleted"], garbage_young.len());
    let (r, _) = gc("0s", false);
    assert_eq!(
        (r["unreachable"].as_u64(), r["deleted"].as_u64()),
        (Some(0), Some(0))
    );

    // What is left is exactly what the tags need, and it still pulls.
    let mut expected = content_keys("app", &keep_g);
    for key in [
        "v2/",
        "v2/index.html",
        "v2/_catalog",
        "v2/app/tags/list",
        "v2/app/manifests/stable",
        "v2/app/_tags/stable",
    ] {
        expected.insert(key.to_string());
    }
    assert_eq!(keys(&site), expected);
    let server = Server::start(&site);
    regpress(&["check", &server.url("")]).ok();
    let dest = tmp.path().join("pull");
    pull_all(&server.image("app:stable"), &dest);
    assert_eq!(pulled_platforms(&dest), keep_g.manifests);
}

/// Store a document or blob in the site as a publish would (content-addressed, immutable).
fn put(site: &Path, key: String, bytes: &[u8], content_type: &str) {
    let store = regpress::store::dir::DirStore::new("site", site.to_path_buf());
    let attributes = regpress::store::Attributes {
        content_type: content_type.to_string(),
        cache_control: regpress::site::CACHE_IMMUTABLE.to_string(),
        sha256: regpress::digest::Digest::of_bytes(bytes),
    };
    let body = regpress::store::Body::Bytes(bytes.to_vec().into());
    regpress::store::Store::put(&store, &key, &body, &attributes).unwrap();
}

/// A referrer (signature-like artifact manifest) of `subject` in `repo`: its blobs, the
/// manifest and the referrers index listing it. Returns the keys written and the manifest's
/// digest.
fn referrer(site: &Path, repo: &str, subject: &str, seed: u8) -> (BTreeSet<String>, String) {
    let empty = b"{}";
    let payload = vec![seed; 100];
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": synth::OCI_MANIFEST,
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": synth::digest_of(empty), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": synth::digest_of(&payload), "size": 100}],
        "subject": {"mediaType": synth::OCI_INDEX, "digest": subject, "size": 1},
    }))
    .unwrap();
    let digest = synth::digest_of(&manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": synth::OCI_INDEX,
        "manifests": [{"mediaType": synth::OCI_MANIFEST, "digest": digest, "size": manifest.len()}],
    }))
    .unwrap();
    let keys = [
        (
            format!("v2/{repo}/blobs/{}", synth::digest_of(empty)),
            &empty[..],
            "application/octet-stream",
        ),
        (
            format!("v2/{repo}/blobs/{}", synth::digest_of(&payload)),
            &payload[..],
            "application/octet-stream",
        ),
        (
            format!("v2/{repo}/manifests/{digest}"),
            &manifest[..],
            synth::OCI_MANIFEST,
        ),
        (
            format!("v2/{repo}/referrers/{subject}"),
            &index[..],
            synth::OCI_INDEX,
        ),
    ];
    let mut out = BTreeSet::new();
    for (key, bytes, content_type) in keys {
        put(site, key.clone(), bytes, content_type);
        out.insert(key);
    }
    (out, digest)
}

#[test]
fn gc_keeps_the_referrers_of_reachable_manifests_and_collects_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let (keep, old) = (tmp.path().join("keep"), tmp.path().join("old"));
    let keep_g = image(&keep, "keep", 1, &[]);
    let old_g = image(&old, "old", 2, &[]);
    let cfg = tmp.path().join("c.toml");
    config(
        &cfg,
        &site,
        &[(&keep, "app", &["stable"]), (&old, "app", &["v1"])],
    );
    regpress(&["publish", "--config", &s(&cfg), "-q"]).ok();
    config(&cfg, &site, &[(&keep, "app", &["stable"])]);
    regpress(&["publish", "--config", &s(&cfg), "--prune", "-q"]).ok();
    // A signature of the kept index, and a signature of that signature (recursion); a
    // signature of a platform manifest of the old image, no longer tagged. (Written after the
    // publishes: a publish rewrites the referrers lists of the images it publishes.)
    let (signed, sig) = referrer(&site, "app", &keep_g.index_digest, 1);
    let (signed_twice, _) = referrer(&site, "app", &sig, 2);
    let (orphaned, _) = referrer(&site, "app", &old_g.manifests[0], 3);
    age_site(&site, Duration::from_secs(3600));

    // One collection marks what no tag reaches; the first one a grace period later deletes it.
    let gc = |report: &Path| {
        let args = [
            "gc",
            "--to",
            &s(&site),
            "--grace",
            "10m",
            "--report",
            &s(report),
            "-q",
        ];
        regpress(&args).ok();
    };
    let rep = tmp.path().join("gc.json");
    gc(&rep);
    assert_eq!(report(&rep)["deleted"], 0);
    age_marks(&site, Duration::from_secs(3600));
    gc(&rep);
    let present = keys(&site);
    for key in signed.iter().chain(&signed_twice) {
        assert!(present.contains(key), "kept: {key}");
    }
    // The empty config blob is shared with the kept signatures, so only it survives.
    let shared: BTreeSet<String> = signed.intersection(&orphaned).cloned().collect();
    for key in orphaned.difference(&shared) {
        assert!(!present.contains(key), "collected: {key}");
    }
    let old_only: BTreeSet<String> = content_keys("app", &old_g)
        .difference(&content_keys("app", &keep_g))
        .cloned()
        .collect();
    assert!(old_only.is_disjoint(&present));
    let r = report(&rep);
    let collected: BTreeSet<&String> = old_only
        .iter()
        .chain(orphaned.difference(&shared))
        .collect();
    assert_eq!(r["deleted"].as_u64().unwrap() as usize, collected.len());
    assert_eq!(r["missing"], serde_json::json!([]));
    let server = Server::start(&site);
    regpress(&["check", &server.url("")]).ok();
}

#[test]
fn gc_refuses_to_collect_around_a_document_it_cannot_read() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    regpress(&[
        "publish",
        &s(&fixture("apko/golden")),
        "--repo",
        "a",
        "--tag",
        "t",
        "--to",
        &s(&site),
        "-q",
    ])
    .ok();
    fs::write(site.join("v2/a/manifests/t"), b"{\"schemaVersion\": 1}").unwrap();
    age_site(&site, Duration::from_secs(3600));
    let before = snapshot(&site);
    let out = regpress(&["gc", "--to", &s(&site), "--grace", "0s"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("v2/a/manifests/t") && out.stderr.contains("nothing was deleted"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&site), before);
    let out = regpress(&["gc", "--to", &s(&site), "--grace", "soon"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// Run `publishers` at once; each publishes the golden image as its own tag of `race` and
/// to a repository of its own. Returns their exit codes.
fn race(site: &Path, round: usize, publishers: usize) -> Vec<i32> {
    let golden = fixture("apko/golden");
    let children: Vec<std::process::Child> = (0..publishers)
        .map(|i| {
            let dir = site.parent().unwrap().join(format!("cfg-{round}-{i}.toml"));
            config(
                &dir,
                site,
                &[
                    (&golden, "race", &[format!("r{round}-p{i}").as_str()]),
                    (&golden, &format!("own/r{round}-p{i}"), &["latest"]),
                ],
            );
            std::process::Command::new(env!("CARGO_BIN_EXE_regpress"))
                .args(["publish", "--config", &s(&dir), "-q"])
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap_or(-1))
        .collect()
}

#[test]
fn concurrent_publishers_lose_no_tag_and_no_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let mut tags = BTreeSet::new();
    let mut repos = BTreeSet::from(["race".to_string()]);
    for round in 0..4 {
        let codes = race(&site, round, 6);
        assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
        for i in 0..6 {
            tags.insert(format!("r{round}-p{i}"));
            repos.insert(format!("own/r{round}-p{i}"));
        }
        let list = json(&site, "v2/race/tags/list");
        let listed: BTreeSet<String> = user_tags(&list).into_iter().map(String::from).collect();
        assert_eq!(listed, tags, "round {round}");
        let catalog: BTreeSet<String> =
            serde_json::from_value(json(&site, "v2/_catalog")["repositories"].clone()).unwrap();
        assert_eq!(catalog, repos, "round {round}");
    }
    let server = Server::start(&site);
    regpress(&["check", &server.url("")]).ok();
}

#[test]
fn check_repair_heals_lists_a_race_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = s(&fixture("apko/golden"));
    for (repo, tag) in [("a", "1"), ("a", "2"), ("b", "1")] {
        regpress(&[
            "publish",
            &golden,
            "--repo",
            repo,
            "--tag",
            tag,
            "--to",
            &s(&site),
            "-q",
        ])
        .ok();
    }
    // What a lost update looks like: a list missing a tag, a catalog missing a repository,
    // and a list left for a repository whose tags are gone.
    let write = |key: &str, body: &str| {
        let path: PathBuf = site.join(key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    };
    write("v2/a/tags/list", r#"{"name":"a","tags":["1"]}"#);
    write("v2/_catalog", r#"{"repositories":["a"]}"#);
    write("v2/c/tags/list", r#"{"name":"c","tags":["x"]}"#);
    let server = Server::start(&site);
    let out = regpress(&["check", &server.url(""), "--repo", "c"]);
    assert_eq!(out.code, 3, "{}", out.stderr);

    let out = regpress(&["check", &server.url(""), "--repair", "--to", &s(&site)]);
    out.ok();
    assert!(
        out.stdout.contains("3 tag lists or catalog rewritten"),
        "{}",
        out.stdout
    );
    assert_eq!(user_tags(&json(&site, "v2/a/tags/list")), ["1", "2"]);
    assert_eq!(
        json(&site, "v2/_catalog")["repositories"],
        serde_json::json!(["a", "b"])
    );
    assert!(!site.join("v2/c/tags/list").exists());
    let out = regpress(&["check", &server.url(""), "--repair", "--to", &s(&site)]);
    assert!(
        out.stdout.contains("0 tag lists or catalog rewritten"),
        "{}",
        out.stdout
    );
    let out = regpress(&["check", &server.url(""), "--to", &s(&site)]);
    assert_eq!(out.code, 2, "a target without --repair: {}", out.stderr);
}

/// A publish of `cfg` into `site` run stage by stage, with `between(stage)` called after the
/// inventory (`"inventory"`) and after the writes (`"apply"`): the points where a collection
/// running at the same time could hurt it. Returns the publish's summary.
fn publish_in_stages(
    cfg: &Path,
    site: &Path,
    mut between: impl FnMut(&str),
) -> regpress::sync::Summary {
    use regpress::publish;
    let config = regpress::config::Config::load(cfg).unwrap();
    let spec = regpress::target::TargetSpec {
        to: s(site),
        ..Default::default()
    };
    let target = regpress::target::open(&spec, 4).unwrap();
    let images = publish::read(&config, None).unwrap();
    let pool = regpress::sync::worker_pool(4).unwrap();
    let inventory = publish::inventory(&target, &images, false, &pool).unwrap();
    between("inventory");
    let existing = inventory.existing.clone();
    let site_plan = publish::plan(&target, &images, &inventory, existing, &pool).unwrap();
    let diff = publish::diff(&site_plan, &inventory, false);
    let mode = regpress::progress::Mode::Quiet;
    let hashed = publish::hash(&images, vec![(diff, Some(target.uploads))], mode)
        .unwrap()
        .remove(0);
    let summary = regpress::sync::summarize("site", &site_plan, hashed.changes(), &[]);
    let summary = publish::apply(&target, &hashed, summary, &pool, mode).unwrap();
    between("apply");
    publish::settle(&target, &inventory, &hashed, summary, &pool, true).unwrap()
}

/// `regpress gc` of `site` with the library, as a concurrent cron would run it.
fn collect(site: &Path, grace: Duration) -> regpress::gc::Report {
    regpress::gc::gc(&regpress::gc::Options {
        target: regpress::target::TargetSpec {
            to: s(site),
            ..Default::default()
        },
        grace,
        dry_run: false,
        jobs: 4,
    })
    .unwrap()
}

/// A site where `old` was published to `app:v1` and then pruned away (only `keep` is tagged),
/// two hours ago; and a config that publishes `old` again as `app:v2`. Returns the config and
/// the keys `app:v2` needs, which the site holds, unreachable.
fn old_garbage_about_to_be_reused(tmp: &Path, site: &Path) -> (PathBuf, BTreeSet<String>) {
    let (keep, old) = (tmp.join("keep"), tmp.join("old"));
    let keep_g = image(&keep, "keep", 1, &[]);
    let old_g = image(&old, "old", 2, &[]);
    let cfg = tmp.join("c.toml");
    let publish = |images: &[(&Path, &str, &[&str])], prune: bool| {
        config(&cfg, site, images);
        let mut args = vec!["publish", "--config", cfg.to_str().unwrap(), "-q"];
        if prune {
            args.push("--prune");
        }
        regpress(&args).ok();
    };
    publish(
        &[(&keep, "app", &["stable"]), (&old, "app", &["v1"])],
        false,
    );
    publish(&[(&keep, "app", &["stable"])], true);
    age_site(site, Duration::from_secs(7200));
    let needed: BTreeSet<String> = content_keys("app", &old_g)
        .difference(&content_keys("app", &keep_g))
        .cloned()
        .collect();
    assert!(needed.iter().all(|k| site.join(k).exists()));
    config(
        &cfg,
        site,
        &[(&keep, "app", &["stable"]), (&old, "app", &["v2"])],
    );
    (cfg, needed)
}

/// Every key of `needed` is in the site, and `app:v2` pulls.
fn assert_v2_whole(tmp: &Path, site: &Path, needed: &BTreeSet<String>) {
    let missing: Vec<&String> = needed.iter().filter(|k| !site.join(k).exists()).collect();
    assert!(
        missing.is_empty(),
        "app:v2 names missing content: {missing:?}"
    );
    let server = Server::start(site);
    regpress(&["check", &server.url("")]).ok();
    pull_all(&server.image("app:v2"), &tmp.join("pull"));
}

#[test]
fn a_collection_during_a_publish_never_deletes_what_the_publish_found_and_reuses() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let (cfg, needed) = old_garbage_about_to_be_reused(tmp.path(), &site);
    let grace = Duration::from_secs(3600);
    // The publish lists the site and finds old's blobs and manifests; a collection runs before
    // it writes its tag. The garbage is two hours old, past the grace period.
    let mut during = None;
    let summary = publish_in_stages(&cfg, &site, |stage| {
        if stage == "inventory" {
            during = Some(collect(&site, grace));
        }
    });
    let during = during.unwrap();
    assert_eq!(during.deleted, 0, "{during:?}");
    assert_eq!(during.marked, needed.len() as u64);
    assert_eq!(summary.marked_rewritten, 0, "it found them unmarked");
    assert_v2_whole(tmp.path(), &site, &needed);

    // Two hours on, the marks are old, but app:v2 reaches everything: nothing goes, the marks
    // are cleared.
    age_site(&site, Duration::from_secs(7200));
    let after = collect(&site, grace);
    assert_eq!((after.deleted, after.unreachable), (0, 0), "{after:?}");
    assert_eq!(after.marks_cleared, needed.len() as u64);
    let marks: Vec<String> = keys(&site)
        .into_iter()
        .filter(|k| regpress::site::parse_mark_key(k).is_some())
        .collect();
    assert!(marks.is_empty(), "{marks:?}");
    assert_v2_whole(tmp.path(), &site, &needed);
}

#[test]
fn a_publish_writes_anew_what_gc_marked_so_a_sweep_meanwhile_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let (cfg, needed) = old_garbage_about_to_be_reused(tmp.path(), &site);
    let grace = Duration::from_secs(3600);
    let marking = collect(&site, grace);
    assert_eq!((marking.marked, marking.deleted), (needed.len() as u64, 0));
    age_site(&site, Duration::from_secs(7200));
    // The publish finds everything it needs marked, and a sweep deletes it all right after
    // the publish's listing; then, after the publish's writes, a sweep that had checked one
    // blob just before its write deletes it just after.
    let blob = needed
        .iter()
        .find(|k| k.contains("/blobs/"))
        .unwrap()
        .clone();
    let summary = publish_in_stages(&cfg, &site, |stage| match stage {
        "inventory" => {
            let sweep = collect(&site, grace);
            assert_eq!(sweep.deleted, needed.len() as u64, "{sweep:?}");
            assert!(needed.iter().all(|k| !site.join(k).exists()));
        }
        "apply" => fs::remove_file(site.join(&blob)).unwrap(),
        _ => {}
    });
    assert_eq!(summary.marked_rewritten, needed.len() as u64);
    assert_v2_whole(tmp.path(), &site, &needed);
}

#[test]
fn check_repair_writes_again_a_blob_the_target_lost_or_damaged_from_the_configs_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = fixture("apko/golden");
    let cfg = tmp.path().join("c.toml");
    config(&cfg, &site, &[(&golden, "app", &["latest"])]);
    regpress(&["publish", "--config", &s(&cfg), "-q"]).ok();
    // Two of the layout's blobs (not the SBOMs' and signatures' that regpress made): one loses
    // a bit in place (same size), the other is gone.
    let mut blobs: Vec<(u64, PathBuf)> = fs::read_dir(golden.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .map(|hex| site.join(format!("v2/app/blobs/sha256:{hex}")))
        .filter(|p| p.exists())
        .map(|p| (fs::metadata(&p).unwrap().len(), p))
        .collect();
    blobs.sort();
    let (damaged, lost) = (blobs.pop().unwrap().1, blobs.pop().unwrap().1);
    let good = fs::read(&damaged).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    fs::write(&damaged, &bad).unwrap();
    let lost_bytes = fs::read(&lost).unwrap();
    fs::remove_file(&lost).unwrap();
    let server = Server::start(&site);
    let out = regpress(&["check", &server.url("")]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);

    // A config whose layouts do not hold them repairs nothing, and says so.
    let other = tmp.path().join("other.toml");
    config(
        &other,
        &site,
        &[(&fixture("apko/top_image"), "app", &["latest"])],
    );
    let out = regpress(&["check", &server.url(""), "--repair", "--config", &s(&other)]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stderr
            .matches("no layout of the config holds its bytes")
            .count(),
        2,
        "{}",
        out.stderr
    );
    assert_eq!(fs::read(&damaged).unwrap(), bad);

    // The config they were published from holds both: written again, checked again, clean.
    let out = regpress(&["check", &server.url(""), "--repair", "--config", &s(&cfg)]);
    out.ok();
    assert_eq!(
        out.stdout.matches("rewrote v2/app/blobs/").count(),
        2,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(" 0 problems"), "{}", out.stdout);
    assert_eq!(fs::read(&damaged).unwrap(), good);
    assert_eq!(fs::read(&lost).unwrap(), lost_bytes);
    regpress(&["check", &server.url("")]).ok();
}

/// `publish --shard K/N` of one config by N publishers at once: each publishes exactly its
/// repositories, together every one, with the catalog and every tag list complete; again,
/// they write nothing.
#[test]
fn sharded_publishers_together_publish_the_whole_config_once() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = fixture("apko/golden");
    let repos: Vec<String> = (0..7).map(|i| format!("shard/r{i}")).collect();
    let images: Vec<(&Path, &str, &[&str])> = repos
        .iter()
        .map(|r| (golden.as_path(), r.as_str(), &["v1", "latest"][..]))
        .collect();
    let cfg = tmp.path().join("all.toml");
    config(&cfg, &site, &images);
    let shards = |round: &str| -> Vec<serde_json::Value> {
        let children: Vec<(std::process::Child, PathBuf)> = (1..=3)
            .map(|k| {
                let out = tmp.path().join(format!("{round}-{k}.json"));
                let child = std::process::Command::new(env!("CARGO_BIN_EXE_regpress"))
                    .args(["publish", "--config", &s(&cfg), "-q", "--report", &s(&out)])
                    .args(["--shard", &format!("{k}/3")])
                    .spawn()
                    .unwrap();
                (child, out)
            })
            .collect();
        children
            .into_iter()
            .map(|(mut child, out)| {
                assert!(
                    child.wait().unwrap().success(),
                    "{round}: {}",
                    out.display()
                );
                report(&out)
            })
            .collect()
    };
    let published = |r: &serde_json::Value| -> BTreeSet<String> {
        r["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["repository"].as_str().unwrap().to_string())
            .collect()
    };
    let first = shards("first");
    let mut seen = BTreeSet::new();
    for (k, r) in first.iter().enumerate() {
        let mine = published(r);
        let dealt: BTreeSet<String> = repos.iter().skip(k).step_by(3).cloned().collect();
        assert_eq!(
            mine,
            dealt,
            "shard {}/3 publishes its repositories only",
            k + 1
        );
        assert!(
            mine.iter().all(|m| seen.insert(m.clone())),
            "in one shard each"
        );
    }
    let catalog: BTreeSet<String> =
        serde_json::from_value(json(&site, "v2/_catalog")["repositories"].clone()).unwrap();
    assert_eq!(catalog, repos.iter().cloned().collect());
    for repo in &repos {
        let list = json(&site, &format!("v2/{repo}/tags/list"));
        assert_eq!(user_tags(&list), ["latest", "v1"], "{repo}");
    }
    let dry = tmp.path().join("dry.json");
    regpress(&[
        "publish",
        "--config",
        &s(&cfg),
        "--dry-run",
        "-q",
        "--report",
        &s(&dry),
    ])
    .ok();
    assert_eq!(
        report(&dry)["objects_to_write"],
        0,
        "nothing left for the whole config"
    );
    for r in shards("again") {
        assert_eq!(r["objects_written"], 0, "a re-run writes nothing");
    }

    // More shards than repositories: the extra ones publish nothing, successfully.
    let before = snapshot(&site);
    let empty = regpress(&["publish", "--config", &s(&cfg), "--shard", "9/9"]);
    empty.ok();
    assert!(
        empty.stdout.contains("nothing to publish"),
        "{}",
        empty.stdout
    );
    assert_eq!(snapshot(&site), before);
    for bad in [
        &["--shard", "0/3"][..],
        &["--shard", "4/3"],
        &["--shard", "three"],
        &["--shard", "1/2", "--prune"],
    ] {
        let cfg = s(&cfg);
        let mut args = vec!["publish", "--config", &cfg];
        args.extend_from_slice(bad);
        let run = regpress(&args);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
    }
    let site_arg = s(&site);
    let layout = [&s(&golden), "--repo", "x", "--tag", "t", "--to", &site_arg];
    let without_config = regpress(&[&["publish"][..], &layout, &["--shard", "1/2"]].concat());
    assert_eq!(without_config.code, 2, "a shard of a config only");
    assert_eq!(snapshot(&site), before, "refused runs write nothing");
}

/// Publishing one image into a new repository changes the catalog: settling it costs what the
/// change costs (the stored catalog read, swapped), not a listing of the whole site; and
/// `check --repo` of it crawls that repository only.
#[test]
fn a_new_repository_and_its_check_cost_the_same_requests_in_a_catalog_of_5_or_150() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = fixture("apko/golden");
    let grow = |from: usize, to: usize| {
        let repos: Vec<String> = (from..to).map(|i| format!("cat/r{i:03}")).collect();
        let images: Vec<(&Path, &str, &[&str])> = repos
            .iter()
            .map(|r| (golden.as_path(), r.as_str(), &["v1"][..]))
            .collect();
        let cfg = tmp.path().join(format!("grow-{to}.toml"));
        config(&cfg, &site, &images);
        regpress(&["publish", "--config", &s(&cfg), "-q"]).ok();
    };
    let new_repository = |name: &str| -> serde_json::Value {
        let out = tmp.path().join(format!("{}.json", name.replace('/', "-")));
        let args = [
            "publish",
            &s(&golden),
            "--repo",
            name,
            "--tag",
            "v1",
            "--to",
            &s(&site),
        ];
        regpress(&[&args[..], &["-q", "--report", &s(&out)]].concat()).ok();
        report(&out)
    };
    grow(0, 5);
    let small = new_repository("new/small");
    let server = Server::start(&site);
    let check = || -> serde_json::Value {
        let run = regpress(&["check", &server.url(""), "--repo", "new/small", "--json"]);
        serde_json::from_str(&run.ok().stdout).unwrap()
    };
    let checked_small = check();
    grow(5, 150);
    assert!(keys(&site).len() > 3000, "several listing pages of keys");
    let large = new_repository("new/large");
    let checked_large = check();
    assert!(checked_small["requests"].as_u64().unwrap() > 10);
    assert_eq!(
        checked_small["requests"], checked_large["requests"],
        "checking one repository costs the same in either catalog"
    );
    assert_eq!(small["objects_written"], large["objects_written"]);
    assert_eq!(
        small["requests"], large["requests"],
        "a new repository in a catalog of 150 costs what it costs in one of 5"
    );
    let catalog: BTreeSet<String> =
        serde_json::from_value(json(&site, "v2/_catalog")["repositories"].clone()).unwrap();
    assert_eq!(catalog.len(), 152);
    assert!(catalog.contains("new/small") && catalog.contains("new/large"));
}

/// gc reads each tag's document and what it lists, but not the empty referrers index of every
/// manifest nothing refers to: the listing shows their bytes (recorded sha256, or MD5 ETag).
#[test]
fn gc_reads_one_document_per_manifest_not_the_empty_referrers_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let layouts: Vec<(PathBuf, String)> = (0..3)
        .map(|i| {
            let dir = tmp.path().join(format!("img{i}"));
            image(&dir, &format!("img{i}"), 100 + i, &[]);
            (dir, format!("plain/r{i}"))
        })
        .collect();
    let images: Vec<(&Path, &str, &[&str])> = layouts
        .iter()
        .map(|(dir, repo)| (dir.as_path(), repo.as_str(), &["v1"][..]))
        .collect();
    let cfg = tmp.path().join("plain.toml");
    config(&cfg, &site, &images);
    regpress(&["publish", "--config", &s(&cfg), "-q"]).ok();
    let referrers = keys(&site)
        .iter()
        .filter(|k| k.contains("/referrers/"))
        .count();
    assert_eq!(
        referrers, 9,
        "an (empty) referrers index per index and platform manifest"
    );
    let report = collect(&site, Duration::from_secs(3600));
    assert_eq!(report.tags, 3);
    assert_eq!(report.reachable as usize, 3 * (3 + 3) + 3 * 4, "{report:?}");
    // Each tag's index and its two platform manifests; one listing of v2/, one of the probes.
    assert_eq!(report.documents_read, 3 * 3, "{report:?}");
    assert_eq!(report.requests, 3 * 3 + 2);
    assert!(report.garbage.is_empty() && report.missing.is_empty());
}
