//! Governance against a real S3 store (Garage): replication to two buckets with one made to
//! fail, immutable tags, retention rules, and yank, each checked by what the bucket holds and
//! by crawling or pulling it as clients do.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::garage::Garage;
use common::proxy::{Fault, Proxy};
use common::{fixture, regpress_with_env, report, s, user_tags};

/// The tags Garage's bucket lists for `repo` (its `tags/list`, generated tags left out).
fn tags(garage: &Garage, bucket: &str, repo: &str) -> Vec<String> {
    let list = garage
        .get(bucket, &format!("v2/{repo}/tags/list"))
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap());
    match list {
        Some(list) => user_tags(&list).iter().map(|t| t.to_string()).collect(),
        None => Vec::new(),
    }
}

/// Every tag key the bucket holds (`v2/<repo>/manifests/<tag>`), generated tags left out.
fn tag_keys(garage: &Garage, bucket: &str) -> BTreeSet<String> {
    garage
        .listing(bucket)
        .into_keys()
        .filter(|k| {
            k.rsplit_once("/manifests/")
                .is_some_and(|(_, t)| !t.starts_with("sha256"))
        })
        .collect()
}

/// `[target]`: `bucket` in Garage.
fn target(garage: &Garage, bucket: &str) -> String {
    format!(
        "[target]\nto = \"s3://{bucket}\"\nendpoint = \"{}\"\nregion = \"garage\"\n",
        garage.endpoint
    )
}

/// A config publishing `images` (layout fixture, repository, tags) to `targets` (TOML).
fn config(dir: &Path, targets: &str, extra: &str, images: &[(&str, &str, &[&str])]) -> String {
    let mut text = format!("{targets}\n{extra}\n");
    for (layout, repo, tags) in images {
        text.push_str(&format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"{repo}\"\ntags = {tags:?}\n",
            fixture(&format!("apko/{layout}")).display()
        ));
    }
    let path = dir.join("regpress.toml");
    fs::write(&path, text).unwrap();
    s(&path)
}

#[test]
fn replication_completes_every_target_that_works_and_the_failed_one_converges() {
    let garage = Garage::start();
    let (east, west) = (garage.bucket("east"), garage.bucket("west"));
    let env = garage.env();
    let tmp = tempfile::tempdir().unwrap();
    // West goes through a proxy that refuses every write.
    let proxy = Proxy::start(&garage.endpoint);
    proxy.set_rule(|seen| (seen.method == "PUT").then_some(Fault::Status(403)));
    let targets = format!(
        "[[target]]\nname = \"east\"\nto = \"s3://{east}\"\nendpoint = \"{}\"\nregion = \"garage\"\n\
         [[target]]\nname = \"west\"\nto = \"s3://{west}\"\nendpoint = \"{}\"\nregion = \"garage\"\n",
        garage.endpoint, proxy.url
    );
    let cfg = config(
        tmp.path(),
        &targets,
        "",
        &[("golden", "apko/golden", &["latest", "1.0"])],
    );
    let rep = tmp.path().join("report.json");
    let out = regpress_with_env(&["publish", "--config", &cfg, "--report", &s(&rep)], &env);
    assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("1 of the targets failed") && out.stderr.contains("west:"),
        "{}",
        out.stderr
    );
    let r = report(&rep);
    assert_eq!(r["targets"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["targets"][0]["name"], "east");
    assert_eq!(r["failed"][0]["target"], "west");
    assert_eq!(tags(&garage, &east, "apko/golden"), ["1.0", "latest"]);
    assert!(tags(&garage, &west, "apko/golden").is_empty());
    {
        let _web = garage.expose(&east);
        let check = regpress_with_env(&["check", &format!("http://{}", garage.web)], &env);
        check.ok();
    }
    // The Action's summary (which passes the exit code) says the run failed and still has a
    // section per target.
    let md = regpress_with_env(
        &["summarize", "--report", &s(&rep), "--exit-code", "4"],
        &env,
    );
    md.ok();
    assert!(
        md.stdout.contains("failed (exit 4")
            && md.stdout.contains("→ `east (s3://")
            && md.stdout.contains("failed → `west`"),
        "{}",
        md.stdout
    );

    // The store recovers: a re-run writes nothing to east and completes west.
    proxy.clear_rule();
    let out = regpress_with_env(&["publish", "--config", &cfg, "--report", &s(&rep)], &env);
    out.ok();
    let r = report(&rep);
    assert_eq!(r["targets"][0]["objects_written"], 0, "east was complete");
    assert!(r["targets"][1]["objects_written"].as_u64().unwrap() > 0);
    assert_eq!(r["failed"], serde_json::json!([]));
    assert_eq!(tags(&garage, &west, "apko/golden"), ["1.0", "latest"]);
    let _web = garage.expose(&west);
    let check = regpress_with_env(&["check", &format!("http://{}", garage.web)], &env);
    check.ok();
    assert!(check.stdout.contains(" 0 problems"), "{}", check.stdout);
}

#[test]
fn an_immutable_tag_never_moves_and_prune_keeps_it() {
    let garage = Garage::start();
    let bucket = garage.bucket("immutable");
    let env = garage.env();
    let tmp = tempfile::tempdir().unwrap();
    let target = target(&garage, &bucket);
    let policy = "[policy]\nimmutable = [\"v*\"]\n";
    let cfg = config(
        tmp.path(),
        &target,
        policy,
        &[("golden", "acme/app", &["v1", "latest"])],
    );
    regpress_with_env(&["publish", "--config", &cfg, "-q"], &env).ok();
    let before = garage.listing(&bucket);

    // Another image for v1: refused before any write, naming both digests.
    let moved = config(
        tmp.path(),
        &target,
        policy,
        &[("top_image", "acme/app", &["v1", "latest"])],
    );
    let out = regpress_with_env(&["publish", "--config", &moved], &env);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let golden = common::golden_digest();
    assert!(
        out.stderr
            .contains("tag acme/app:v1 is immutable and holds")
            && out.stderr.contains(&golden),
        "{}",
        out.stderr
    );
    assert_eq!(garage.listing(&bucket), before, "nothing was written");
    // Moving `latest` alone is fine; the same digest for v1 again too.
    let same = config(
        tmp.path(),
        &target,
        policy,
        &[
            ("golden", "acme/app", &["v1"]),
            ("top_image", "acme/app", &["latest"]),
        ],
    );
    regpress_with_env(&["publish", "--config", &same, "-q"], &env).ok();

    // A config that no longer names v1: --prune removes latest's old siblings, keeps v1.
    let rep = tmp.path().join("prune.json");
    let pruned = config(
        tmp.path(),
        &target,
        policy,
        &[("top_image", "acme/app", &["latest"])],
    );
    let out = regpress_with_env(
        &[
            "publish",
            "--config",
            &pruned,
            "--prune",
            "--report",
            &s(&rep),
        ],
        &env,
    );
    out.ok();
    assert!(
        out.stdout.contains("kept acme/app:v1 (immutable"),
        "{}",
        out.stdout
    );
    assert_eq!(
        report(&rep)["kept_tags"],
        serde_json::json!([{"repository": "acme/app", "tag": "v1", "by": "immutable"}])
    );
    assert_eq!(tags(&garage, &bucket, "acme/app"), ["latest", "v1"]);
}

#[test]
fn retention_keeps_exactly_the_tags_its_rules_keep() {
    let garage = Garage::start();
    let bucket = garage.bucket("retention");
    let env = garage.env();
    let tmp = tempfile::tempdir().unwrap();
    let target = target(&garage, &bucket);
    let versions: &[&str] = &["1.0.0", "1.2.0", "1.10.0", "1.9.0", "latest"];
    let publish = |tags: &[&str]| {
        let cfg = config(tmp.path(), &target, "", &[("golden", "acme/app", tags)]);
        regpress_with_env(&["publish", "--config", &cfg, "-q"], &env).ok();
    };
    publish(versions);
    publish(&["nightly-1"]);
    std::thread::sleep(std::time::Duration::from_secs(6));
    publish(&["nightly-2"]);
    let rules = "[policy]\nimmutable = [\"1.0.0\"]\n\
        [[retention]]\nrepository = \"acme/*\"\ntag = \"1.*\"\nkeep_last = 2\n\
        [[retention]]\nrepository = \"acme/*\"\ntag = \"nightly-*\"\nkeep_within = \"5s\"\n";
    let cfg = config(tmp.path(), &target, rules, &[("golden", "acme/app", &[])]);
    let before = garage.listing(&bucket);
    let dry = regpress_with_env(&["retain", "--config", &cfg, "--dry-run", "--json"], &env);
    dry.ok();
    assert_eq!(garage.listing(&bucket), before, "a dry run removes nothing");
    let plan: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    let removed: Vec<&str> = plan["removed_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    // Semver order keeps 1.10.0 and 1.9.0 (not the two published last); 1.0.0 is immutable.
    assert_eq!(removed, ["1.2.0", "nightly-1"], "{}", dry.stdout);
    assert_eq!(plan["immutable_kept"][0]["tag"], "1.0.0");

    let out = regpress_with_env(&["retain", "--config", &cfg], &env);
    out.ok();
    assert_eq!(
        tags(&garage, &bucket, "acme/app"),
        ["1.0.0", "1.10.0", "1.9.0", "latest", "nightly-2"]
    );
    let keys = tag_keys(&garage, &bucket);
    assert!(!keys.contains("v2/acme/app/manifests/1.2.0"), "{keys:?}");
    assert!(
        garage
            .listing(&bucket)
            .keys()
            .all(|k| !k.ends_with("/_tags/1.2.0"))
    );
}

#[test]
fn a_yanked_digest_loses_every_tag_reaching_it_and_is_not_published_again() {
    let garage = Garage::start();
    let bucket = garage.bucket("yank");
    let env = garage.env();
    let tmp = tempfile::tempdir().unwrap();
    let target = target(&garage, &bucket);
    let images: &[(&str, &str, &[&str])] = &[
        ("golden", "acme/app", &["v1", "latest"]),
        ("golden", "other/copy", &["stable"]),
        ("top_image", "acme/app", &["keep"]),
    ];
    let cfg = config(tmp.path(), &target, "", images);
    regpress_with_env(&["publish", "--config", &cfg, "-q"], &env).ok();
    // Yank one platform manifest of golden's index: every tag of the index goes.
    let index_bytes = garage.get(&bucket, "v2/acme/app/manifests/v1").unwrap();
    let index_doc: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    let platform = index_doc["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let reference = format!("acme/app@{platform}");
    let before = garage.listing(&bucket);
    let dry = regpress_with_env(
        &[
            "yank",
            "--config",
            &cfg,
            &reference,
            "--reason",
            "CVE-2026-0001",
            "--dry-run",
        ],
        &env,
    );
    dry.ok();
    assert_eq!(garage.listing(&bucket), before, "a dry run writes nothing");
    let out = regpress_with_env(
        &[
            "yank",
            "--config",
            &cfg,
            &reference,
            "--reason",
            "CVE-2026-0001",
            "--json",
        ],
        &env,
    );
    out.ok();
    let r: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut removed: Vec<String> = r["removed_tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["tag"].as_str().unwrap().starts_with("sha256-"))
        .map(|t| {
            format!(
                "{}:{}",
                t["repository"].as_str().unwrap(),
                t["tag"].as_str().unwrap()
            )
        })
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        ["acme/app:latest", "acme/app:v1", "other/copy:stable"]
    );
    assert_eq!(tags(&garage, &bucket, "acme/app"), ["keep"]);
    assert!(tags(&garage, &bucket, "other/copy").is_empty());
    let catalog: serde_json::Value =
        serde_json::from_slice(&garage.get(&bucket, "v2/_catalog").unwrap()).unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["acme/app"]));
    let record = garage
        .get(&bucket, &format!("v2/_regpress/yanked/{platform}"))
        .expect("the yank is recorded");
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["reason"], "CVE-2026-0001");

    // Publishing it again is refused, naming the record, unless --allow-yanked.
    let before = garage.listing(&bucket);
    let out = regpress_with_env(&["publish", "--config", &cfg], &env);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("was yanked") && out.stderr.contains("CVE-2026-0001"),
        "{}",
        out.stderr
    );
    assert_eq!(garage.listing(&bucket), before, "nothing was written");
    regpress_with_env(&["publish", "--config", &cfg, "--allow-yanked", "-q"], &env).ok();
    assert_eq!(tags(&garage, &bucket, "acme/app"), ["keep", "latest", "v1"]);
    // Unyanked, it publishes without the flag.
    regpress_with_env(&["unyank", "--config", &cfg, &reference], &env).ok();
    regpress_with_env(&["publish", "--config", &cfg, "-q"], &env).ok();
}

#[test]
fn of_two_publishers_racing_to_create_an_immutable_tag_the_second_loses() {
    use regpress::governance::ImmutableRule;
    use regpress::governance::immutable::{self, Immutable};
    use regpress::publish;
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let golden = fixture("apko/golden");
    let cfg = tmp.path().join("regpress.toml");
    fs::write(
        &cfg,
        format!(
            "[target]\nto = \"{}\"\n[policy]\nimmutable = [\"v*\"]\n\
             [[image]]\nlayout = \"{}\"\nrepository = \"acme/app\"\ntags = [\"v1\"]\n",
            site.display(),
            golden.display()
        ),
    )
    .unwrap();
    // This publisher takes its inventory and passes its checks while v1 does not exist yet...
    let config = regpress::config::Config::load(&cfg).unwrap();
    let spec = regpress::target::TargetSpec {
        to: s(&site),
        ..Default::default()
    };
    let target = regpress::target::open(&spec, 4).unwrap();
    let pool = regpress::sync::worker_pool(4).unwrap();
    let images = publish::read(&config, None).unwrap();
    let inventory = publish::inventory(&target, &images, false, &pool).unwrap();
    let existing = inventory.existing.clone();
    let site_plan = publish::plan(&target, &images, &inventory, existing, &pool).unwrap();
    let mut diff = publish::diff(&site_plan, &inventory, false);
    let rules = Immutable::new(&[ImmutableRule {
        repository: None,
        tags: vec!["v*".into()],
    }])
    .unwrap();
    immutable::guard(
        target.store.as_ref(),
        &inventory,
        &site_plan.tags,
        &mut diff.changes,
        &rules,
    )
    .unwrap();
    // ...then another creates v1 with another image...
    let other = fixture("apko/top_image");
    let args = ["publish", &s(&other), "--repo", "acme/app", "--tag", "v1"];
    common::regpress(&[&args[..], &["--immutable", "v*", "--to", &s(&site), "-q"]].concat()).ok();
    // ...and this one's write of v1 fails, leaving the other's.
    let mode = regpress::progress::Mode::Quiet;
    let hashed = publish::hash(&images, vec![(diff, Some(target.uploads))], mode)
        .unwrap()
        .remove(0);
    let summary = regpress::sync::summarize("site", &site_plan, hashed.changes(), &[]);
    let error = publish::apply(&target, &hashed, summary, &pool, mode)
        .map(drop)
        .expect_err("the second creation of v1 fails");
    assert!(
        error
            .to_string()
            .contains("immutable tag created meanwhile"),
        "{error}"
    );
    let held = fs::read(site.join("v2/acme/app/manifests/v1")).unwrap();
    assert_eq!(held, fs::read(other.join("index.json")).unwrap());
}

#[test]
fn a_search_result_feeds_yank_which_takes_down_every_image_listing_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let site = s(&tmp.path().join("site"));
    let golden = s(&fixture("apko/golden"));
    let other = s(&fixture("apko/top_image"));
    for (layout, repo) in [
        (&golden, "acme/app"),
        (&golden, "mirror/app"),
        (&other, "acme/other"),
    ] {
        common::regpress(&[
            "publish", layout, "--repo", repo, "--tag", "v1", "--to", &site, "-q",
        ])
        .ok();
    }
    let search = common::regpress(&["sbom", "search", "--to", &site, "replayout", "--json"]);
    search.ok();
    let found: serde_json::Value = serde_json::from_str(&search.stdout).unwrap();
    let repos: BTreeSet<&str> = found["matches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["repository"].as_str())
        .collect();
    assert_eq!(
        repos,
        ["acme/app", "mirror/app"].into(),
        "{}",
        search.stdout
    );
    let result = tmp.path().join("search.json");
    fs::write(&result, &search.stdout).unwrap();
    let out = common::regpress(&[
        "yank",
        "--to",
        &site,
        "--from-search",
        &s(&result),
        "--reason",
        "replayout is compromised",
    ]);
    out.ok();
    let tag = |repo: &str| {
        Path::new(&site)
            .join(format!("v2/{repo}/manifests/v1"))
            .exists()
    };
    assert!(!tag("acme/app") && !tag("mirror/app"), "{}", out.stdout);
    assert!(
        tag("acme/other"),
        "an image without the package keeps its tag"
    );
    let again = common::regpress(&["sbom", "search", "--to", &site, "replayout", "--json"]);
    let after: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        after["matches"],
        serde_json::json!([]),
        "no tag reaches it any more"
    );
}
