//! Lifecycle and reliability against a real S3 store (Garage): prune and gc, concurrent
//! publishers on a store without conditional writes, SIGKILL at every request of a publish,
//! injected network and server faults, and `regpress check` catching a changed byte.
//!
//! Faults and kills go through `common::proxy`, a proxy between regpress and Garage's S3 API;
//! every intermediate state is checked from the store's side (`common::consistency`) and over
//! the website endpoint with `regpress check`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::garage::{Exposed, Garage};
use common::proxy::{self, Fault, Proxy, Seen};
use common::synth::{self, Flavor, Layer};
use common::{Run, consistency, fixture, regpress, regpress_with_env, report, s, user_tags};

/// Two catalogs: `a` (the bucket's state before) and `b` (the desired state a cron publishes
/// with `--prune`: a tag moves to an image with an 11 MiB layer sent in three parts, a tag and
/// a repository are added, a tag and a repository are dropped).
struct Scenario {
    _tmp: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

/// A generated apko layout in `tmp/name`.
fn layout(
    tmp: &Path,
    name: &str,
    seed: u64,
    base: &[Layer],
    app_size: usize,
    platforms: &'static [&'static str],
    small_layers: &[usize],
) -> PathBuf {
    let dir = tmp.join(name);
    synth::apko_layout(
        &dir,
        &synth::Image {
            name,
            seed,
            base,
            app_size,
            platforms,
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers,
        },
    );
    dir
}

fn scenario() -> Scenario {
    let tmp = tempfile::tempdir().unwrap();
    let base = vec![Layer::new(21, 200_000)];
    let big = [11 << 20];
    let image = |name: &str, seed: u64, platforms: &'static [&'static str], extra: &[usize]| {
        layout(tmp.path(), name, seed, &base, 30_000, platforms, extra)
    };
    let one = image("one", 1, &["amd64", "arm64"], &[]);
    let two = image("two", 2, &["amd64", "arm64"], &[]);
    let gone = image("gone", 3, &["amd64"], &[]);
    let large = image("large", 4, &["amd64"], &big);
    let write = |name: &str, images: &[(&Path, &str, &[&str])]| {
        let mut text = String::from(
            "[target]\nto = \"s3://unused\"\nregion = \"garage\"\ntimeout = \"2s\"\n\
             multipart_threshold = 6291456\npart_size = 5242880\n",
        );
        for (layout, repo, tags) in images {
            text.push_str(&format!(
                "[[image]]\nlayout = \"{}\"\nrepository = \"{repo}\"\ntags = {tags:?}\n",
                layout.display()
            ));
        }
        let path = tmp.path().join(name);
        fs::write(&path, text).unwrap();
        path
    };
    let a = write(
        "a.toml",
        &[
            (&one, "r/one", &["latest", "v1"]),
            (&two, "r/two", &["latest"]),
            (&gone, "r/gone", &["x"]),
        ],
    );
    let b = write(
        "b.toml",
        &[
            (&large, "r/one", &["latest", "v2"]),
            (&two, "r/two", &["latest", "stable"]),
            (&one, "r/new", &["1"]),
        ],
    );
    Scenario { _tmp: tmp, a, b }
}

/// The command publishing `config` to `bucket` through `endpoint`.
fn publish_command(
    garage: &Garage,
    config: &Path,
    bucket: &str,
    endpoint: &str,
    prune: bool,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_regpress"));
    command
        .args([
            "publish",
            "--config",
            &s(config),
            "--to",
            &format!("s3://{bucket}"),
        ])
        .args(["--endpoint", endpoint, "-q", "-j", "4"])
        .envs(garage.env());
    if prune {
        command.arg("--prune");
    }
    command
}

fn publish(garage: &Garage, config: &Path, bucket: &str, endpoint: &str, prune: bool) -> Run {
    Run::from(
        publish_command(garage, config, bucket, endpoint, prune)
            .output()
            .unwrap(),
    )
}

/// Keys with sizes, for the consistency check.
fn sizes(garage: &Garage, bucket: &str) -> BTreeMap<String, u64> {
    garage
        .listing(bucket)
        .into_iter()
        .map(|(k, (_, _, size))| (k, size))
        .collect()
}

/// What a reader may rely on holds in `bucket`.
#[track_caller]
fn assert_consistent(garage: &Garage, bucket: &str, when: &str) {
    let problems = consistency::problems(&sizes(garage, bucket), |k| garage.get(bucket, k));
    assert!(problems.is_empty(), "{when}: {problems:#?}");
}

/// Keys with ETags and sizes, without the probe objects of killed runs (outside `v2/`).
fn contents(garage: &Garage, bucket: &str) -> BTreeMap<String, (String, u64)> {
    garage
        .listing(bucket)
        .into_iter()
        .filter(|(k, _)| {
            let probe = k.starts_with(regpress::store::layer::PROBE_PREFIX);
            assert!(probe || k.starts_with("v2/"), "unexpected key {k}");
            !probe
        })
        .map(|(k, (etag, _, size))| (k, (etag, size)))
        .collect()
}

/// `regpress check` over the website endpoint (serving `bucket`) finds nothing wrong.
#[track_caller]
fn check_website(garage: &Garage, exposed: &Exposed, bucket: &str, when: &str) -> String {
    exposed.switch(bucket);
    let out = regpress(&["check", &format!("http://{}", garage.web)]);
    assert_eq!(out.code, 0, "{when}: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" 0 problems"), "{when}: {}", out.stdout);
    out.stdout
}

#[test]
fn prune_then_gc_on_garage_and_conditional_writes_are_probed() {
    let garage = Garage::start();
    let bucket = garage.bucket("prune-gc");
    let sc = scenario();
    let store = regpress::target::open(&garage.spec(&bucket), 4)
        .unwrap()
        .store;
    // Garage 2.5 accepts a PUT whatever its If-None-Match / If-Match say; the probe leaves
    // nothing behind.
    assert_eq!(
        store.conditional_writes().unwrap(),
        regpress::store::Support::No
    );
    assert!(garage.listing(&bucket).is_empty());

    let exposed = garage.expose(&bucket);
    publish(&garage, &sc.a, &bucket, &garage.endpoint, false).ok();
    check_website(&garage, &exposed, &bucket, "after a");
    let before_b: BTreeSet<String> = contents(&garage, &bucket).into_keys().collect();
    std::thread::sleep(Duration::from_secs(3));
    publish(&garage, &sc.b, &bucket, &garage.endpoint, true).ok();
    let out = check_website(&garage, &exposed, &bucket, "after b");
    assert!(out.contains("3 repositories, 5 tags"), "{out}");
    let catalog: serde_json::Value =
        serde_json::from_slice(&garage.get(&bucket, "v2/_catalog").unwrap()).unwrap();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["r/new", "r/one", "r/two"])
    );
    for gone in [
        "v2/r/one/manifests/v1",
        "v2/r/gone/manifests/x",
        "v2/r/gone/tags/list",
    ] {
        assert!(garage.get(&bucket, gone).is_none(), "{gone}");
    }

    let gc = |grace: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let rep = tmp.path().join("gc.json");
        let out = regpress_with_env(
            &[
                "gc",
                "--to",
                &format!("s3://{bucket}"),
                "--endpoint",
                &garage.endpoint,
                "--grace",
                grace,
                "--report",
                &s(&rep),
            ],
            &garage.env(),
        );
        out.ok();
        report(&rep)
    };
    // What `a` alone needed is older than 2 s; what `b` wrote is younger. The old content of
    // the moved tag and of the dropped repository is marked, then, 2 s later, goes; nothing
    // `b` wrote does.
    let marking = gc("2s");
    assert_eq!(marking["deleted"], 0);
    assert!(marking["marked"].as_u64().unwrap() > 0, "{marking}");
    std::thread::sleep(Duration::from_millis(2500));
    let r = gc("2s");
    let deleted: BTreeSet<String> = serde_json::from_value(r["garbage"].clone()).unwrap();
    assert!(!deleted.is_empty());
    assert!(
        deleted.is_subset(&before_b),
        "only objects older than the grace period"
    );
    assert!(deleted.iter().any(|k| k.starts_with("v2/r/gone/blobs/")));
    assert_eq!(r["deleted"].as_u64().unwrap() as usize, deleted.len());
    let after: BTreeSet<String> = contents(&garage, &bucket).into_keys().collect();
    assert!(after.is_disjoint(&deleted));
    assert_consistent(&garage, &bucket, "after gc");
    check_website(&garage, &exposed, &bucket, "after gc");
    // Everything left is reachable: with no grace period, there is nothing more to collect.
    let r = gc("0s");
    assert_eq!(
        (r["unreachable"].as_u64(), r["deleted"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn check_fails_on_a_bucket_where_one_byte_of_one_blob_changed() {
    let garage = Garage::start();
    let bucket = garage.bucket("flip");
    let env = garage.env();
    regpress_with_env(
        &[
            "publish",
            &s(&fixture("apko/golden")),
            "--repo",
            "apko/golden",
            "--tag",
            "latest",
            "--to",
            &format!("s3://{bucket}"),
            "--endpoint",
            &garage.endpoint,
            "-q",
        ],
        &env,
    )
    .ok();
    let exposed = garage.expose(&bucket);
    check_website(&garage, &exposed, &bucket, "as published");
    let layer = "sha256:c7557730da0e2d7fb242d8d1ac6dcf7e3a2439732aa5981270b4f3a02454b738";
    let key = format!("v2/apko/golden/blobs/{layer}");
    let mut bytes = garage.get(&bucket, &key).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    garage.put(&bucket, &key, bytes, "application/octet-stream");
    let out = regpress(&["check", &format!("http://{}", garage.web)]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(layer)
            && out.stderr.contains("hashes to")
            && out.stdout.contains(" 1 problems"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn concurrent_publishers_on_garage_lose_no_tag_and_no_repository() {
    let garage = Garage::start();
    let bucket = garage.bucket("race");
    let tmp = tempfile::tempdir().unwrap();
    let golden = fixture("apko/golden");
    let top = fixture("apko/top_image");
    let mut tags = BTreeSet::new();
    let mut repos = BTreeSet::from(["race".to_string()]);
    for round in 0..4 {
        // Six runs at once: each its own tag of `race` and a repository of its own; two of
        // them also fight over the tag `same` with different images.
        let children: Vec<Child> = (0..6)
            .map(|i| {
                let config = tmp.path().join(format!("r{round}-{i}.toml"));
                let mut text = format!(
                    "[[image]]\nlayout = \"{}\"\nrepository = \"race\"\ntags = [\"r{round}-p{i}\"]\n\
                     [[image]]\nlayout = \"{}\"\nrepository = \"own/r{round}-p{i}\"\ntags = [\"latest\"]\n",
                    golden.display(),
                    golden.display()
                );
                if i < 2 {
                    let layout = if i == 0 { &golden } else { &top };
                    text.push_str(&format!(
                        "[[image]]\nlayout = \"{}\"\nrepository = \"race\"\ntags = [\"same\"]\n",
                        layout.display()
                    ));
                }
                fs::write(&config, text).unwrap();
                publish_command(&garage, &config, &bucket, &garage.endpoint, false)
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        for i in 0..6 {
            tags.insert(format!("r{round}-p{i}"));
            repos.insert(format!("own/r{round}-p{i}"));
        }
        tags.insert("same".to_string());
        let read = |key: &str| -> serde_json::Value {
            serde_json::from_slice(&garage.get(&bucket, key).unwrap()).unwrap()
        };
        let list = read("v2/race/tags/list");
        let listed: BTreeSet<String> = user_tags(&list).into_iter().map(String::from).collect();
        assert_eq!(listed, tags, "round {round}");
        let catalog: BTreeSet<String> =
            serde_json::from_value(read("v2/_catalog")["repositories"].clone()).unwrap();
        assert_eq!(catalog, repos, "round {round}");
        assert_consistent(&garage, &bucket, &format!("round {round}"));
    }
    let exposed = garage.expose(&bucket);
    check_website(&garage, &exposed, &bucket, "after the races");
}

/// A clean publish of `b` over `a`: the requests it sends, its bucket, and what that holds.
struct Reference {
    requests: u64,
    bucket: String,
    contents: BTreeMap<String, (String, u64)>,
}

fn reference(garage: &Garage, sc: &Scenario, proxy: &Proxy) -> Reference {
    let bucket = garage.bucket("reference");
    publish(garage, &sc.a, &bucket, &garage.endpoint, false).ok();
    proxy.reset_log();
    publish(garage, &sc.b, &bucket, &proxy.url, true).ok();
    Reference {
        requests: proxy.log().len() as u64,
        contents: contents(garage, &bucket),
        bucket,
    }
}

#[test]
fn sigkill_at_every_request_of_a_publish_leaves_a_consistent_bucket_that_converges() {
    let garage = Garage::start();
    let sc = scenario();
    let probe = Proxy::start(&garage.endpoint);
    let Reference {
        requests,
        contents: expected,
        bucket: web_bucket,
    } = reference(&garage, &sc, &probe);
    eprintln!("a clean prune publish sends {requests} requests");
    // Every request number, killing before it reaches the store on odd numbers and after the
    // store answered (the answer never relayed) on even ones; both ways when that is under 30.
    let mut points: Vec<(u64, bool)> = (1..=requests).map(|n| (n, n % 2 == 0)).collect();
    if points.len() < 30 {
        points.extend((1..=requests).map(|n| (n, n % 2 == 1)));
    }
    let exposed = garage.expose(&web_bucket);
    let web = Mutex::new(&exposed);
    let killed = Mutex::new(Vec::new());
    let workers = 3;
    std::thread::scope(|scope| {
        for w in 0..workers {
            let (garage, sc, points, web, killed) = (&garage, &sc, &points, &web, &killed);
            let expected = &expected;
            scope.spawn(move || {
                let proxy = Proxy::start(&garage.endpoint);
                for &(n, after) in points.iter().skip(w).step_by(workers) {
                    let when = format!(
                        "killed at request {n} ({})",
                        if after {
                            "after the store answered"
                        } else {
                            "before it was sent"
                        }
                    );
                    let bucket = garage.bucket("kill");
                    publish(garage, &sc.a, &bucket, &garage.endpoint, false).ok();
                    proxy.reset_log();
                    proxy.kill_at(n, after);
                    let mut child = publish_command(garage, &sc.b, &bucket, &proxy.url, true)
                        .spawn()
                        .unwrap();
                    proxy.set_victim(child.id());
                    let status = child.wait().unwrap();
                    if proxy.killed() == 0 {
                        assert!(
                            status.success(),
                            "{when}: exited {status:?} without being killed"
                        );
                        continue;
                    }
                    assert_eq!(status.signal(), Some(9), "{when}");
                    killed.lock().unwrap().push(n);
                    // Requests the killed run had in flight still reach the store.
                    std::thread::sleep(Duration::from_millis(300));
                    assert_consistent(garage, &bucket, &when);
                    {
                        let web = web.lock().unwrap();
                        check_website(garage, &web, &bucket, &when);
                    }
                    publish(garage, &sc.b, &bucket, &garage.endpoint, true).ok();
                    assert_eq!(
                        &contents(garage, &bucket),
                        expected,
                        "{when}: re-run converges"
                    );
                    let web = web.lock().unwrap();
                    check_website(garage, &web, &bucket, &format!("{when}, re-run"));
                }
            });
        }
    });
    let killed = killed.into_inner().unwrap();
    eprintln!(
        "{} kill points, every one consistent and converging",
        killed.len()
    );
    assert!(killed.len() >= 30, "only {} kill points", killed.len());
}

/// A rule faulting `fraction` of requests with `faults`, never the same request (method and
/// path) more than three times in a row, so that publishing must succeed within the retry
/// budget (six attempts).
fn flaky(
    seed: u64,
    fraction: f64,
    faults: Vec<Fault>,
) -> impl Fn(&Seen) -> Option<Fault> + Send + Sync {
    let pick = proxy::share(seed, fraction, faults);
    let streaks: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());
    move |seen| {
        let mut streaks = streaks.lock().unwrap();
        let streak = streaks
            .entry(format!("{} {}", seen.method, seen.path))
            .or_default();
        let fault = pick(seen).filter(|_| *streak < 3);
        *streak = if fault.is_some() { *streak + 1 } else { 0 };
        fault
    }
}

#[test]
fn a_completion_whose_answer_is_lost_is_not_retried_into_a_failure() {
    let garage = Garage::start();
    let sc = scenario();
    let proxy = Proxy::start(&garage.endpoint);
    // The first CompleteMultipartUpload reaches Garage, which completes it; its answer is cut
    // short, so the retry finds the upload gone (NoSuchUpload).
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_cut = cut.clone();
    proxy.set_rule(move |seen| {
        let completion = seen.method == "POST" && seen.path.contains("uploadId=");
        let first = completion && !seen_cut.swap(true, std::sync::atomic::Ordering::SeqCst);
        first.then_some(Fault::Truncate)
    });
    let bucket = garage.bucket("lost-answer");
    // b holds the 11 MiB layer, uploaded in parts.
    publish(&garage, &sc.b, &bucket, &proxy.url, false).ok();
    assert!(
        cut.load(std::sync::atomic::Ordering::SeqCst),
        "a completion was sent"
    );
    assert_consistent(&garage, &bucket, "after a lost completion answer");
}

#[test]
fn injected_faults_still_publish_byte_for_byte() {
    let garage = Garage::start();
    let sc = scenario();
    let proxy = Proxy::start(&garage.endpoint);
    let Reference {
        contents: expected,
        bucket: clean,
        ..
    } = reference(&garage, &sc, &proxy);
    let kinds = vec![
        Fault::Status(500),
        Fault::Status(503),
        Fault::TooMany(1),
        Fault::Reset,
        Fault::Stall(Duration::from_secs(3)),
        Fault::Delay(Duration::from_millis(300)),
        Fault::CutUpload,
        Fault::Truncate,
    ];
    let bucket = garage.bucket("faults");
    proxy.reset_log();
    proxy.set_rule(flaky(7, 0.3, kinds.clone()));
    publish(&garage, &sc.a, &bucket, &proxy.url, false).ok();
    assert_consistent(&garage, &bucket, "a through faults");
    publish(&garage, &sc.b, &bucket, &proxy.url, true).ok();
    let log = proxy.log();
    proxy.clear_rule();
    let got = contents(&garage, &bucket);
    assert_eq!(got, expected, "same keys, sizes and ETags as a clean run");
    for key in got.keys() {
        assert!(
            garage.get(&bucket, key) == garage.get(&clean, key),
            "{key} differs"
        );
    }
    let exposed = garage.expose(&bucket);
    check_website(&garage, &exposed, &bucket, "after faults");

    let faulted: Vec<&Seen> = log.iter().filter(|s| s.fault.is_some()).collect();
    eprintln!("{} requests, {} faulted", log.len(), faulted.len());
    for kind in &kinds {
        assert!(
            faulted.iter().any(|s| s.fault == Some(*kind)),
            "{kind:?} never injected"
        );
    }
    // Retry-After is honoured: the retry of a request answered 429 comes a second later.
    for s in faulted
        .iter()
        .filter(|s| s.fault == Some(Fault::TooMany(1)))
    {
        if let Some(retry) = log
            .iter()
            .find(|r| r.n > s.n && r.method == s.method && r.path == s.path)
        {
            assert!(
                retry.at - s.at >= Duration::from_secs(1),
                "{} {} retried after {:?}",
                s.method,
                s.path,
                retry.at - s.at
            );
        }
    }

    // gc through faults removes what a clean gc removes.
    let gc = |endpoint: &str, bucket: &str| {
        regpress_with_env(
            &[
                "gc",
                "--to",
                &format!("s3://{bucket}"),
                "--endpoint",
                endpoint,
                "--grace",
                "0s",
                "-q",
            ],
            &garage.env(),
        )
        .ok();
    };
    gc(&garage.endpoint, &clean);
    proxy.set_rule(flaky(11, 0.3, kinds));
    gc(&proxy.url, &bucket);
    proxy.clear_rule();
    let keys = |b: &str| contents(&garage, b).into_keys().collect::<BTreeSet<_>>();
    assert_eq!(keys(&bucket), keys(&clean));
    check_website(&garage, &exposed, &bucket, "after gc through faults");
}

#[test]
fn persistent_faults_fail_cleanly_naming_what_failed() {
    let garage = Garage::start();
    let sc = scenario();
    let proxy = Proxy::start(&garage.endpoint);
    let Reference {
        contents: expected,
        bucket: web_bucket,
        ..
    } = reference(&garage, &sc, &proxy);
    let exposed = garage.expose(&web_bucket);
    type Rule = fn(&Seen) -> Option<Fault>;
    let cases: [(&str, Rule, &[&str]); 3] = [
        (
            "every manifest upload answered 503",
            |s| {
                (s.method == "PUT" && s.path.contains("/manifests/sha256"))
                    .then_some(Fault::Status(503))
            },
            &["/manifests/sha256:", "503", "gave up after 6 attempts"],
        ),
        (
            "one tag's upload stalls",
            |s| {
                (s.method == "PUT" && s.path.contains("/manifests/stable?"))
                    .then_some(Fault::Stall(Duration::from_secs(20)))
            },
            &[
                "key v2/r/two/manifests/stable",
                "timed out",
                "gave up after 6 attempts",
            ],
        ),
        (
            "every batch delete reset",
            |s| (s.method == "POST" && s.path.contains("delete")).then_some(Fault::Reset),
            // The first delete may be the conditional-write probe's (a prune swaps the catalog).
            &["key ", "request failed", "gave up after 6 attempts"],
        ),
    ];
    for (what, rule, needles) in cases {
        let bucket = garage.bucket("persistent");
        publish(&garage, &sc.a, &bucket, &garage.endpoint, false).ok();
        proxy.set_rule(rule);
        let out = publish(&garage, &sc.b, &bucket, &proxy.url, true);
        proxy.clear_rule();
        assert_eq!(out.code, 4, "{what}: {}", out.stderr);
        eprintln!("{what}: {}", out.stderr.trim());
        for needle in needles {
            assert!(
                out.stderr.contains(needle),
                "{what}: {needle:?} not in {}",
                out.stderr
            );
        }
        assert!(
            out.stderr.contains(&format!("target s3://{bucket}")),
            "{what}: {}",
            out.stderr
        );
        // Nothing dangling: every tag resolves, every listed tag exists.
        assert_consistent(&garage, &bucket, what);
        check_website(&garage, &exposed, &bucket, what);
        publish(&garage, &sc.b, &bucket, &garage.endpoint, true).ok();
        assert_eq!(
            contents(&garage, &bucket),
            expected,
            "{what}: re-run converges"
        );
    }
}

#[test]
fn eight_shards_of_a_catalog_published_at_once_then_gc_leave_it_whole() {
    // How a catalog too big for one job goes out from a CI matrix: 8 publishers at once into
    // one bucket, each with its shard (3 repositories) and the two tags every shard also
    // publishes (`base:latest` and `base:stable`, the same image), then one collection.
    let garage = Garage::start();
    let bucket = garage.bucket("shards");
    let tmp = tempfile::tempdir().unwrap();
    let base = vec![Layer::new(40, 50_000)];
    let platforms = &["amd64", "arm64"];
    let layout =
        |name: &str, seed: u64| layout(tmp.path(), name, seed, &base, 10_000, platforms, &[]);
    let shared = layout("base", 100);
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    expected.insert(
        "base".to_string(),
        BTreeSet::from(["latest".to_string(), "stable".to_string()]),
    );
    let shards: Vec<PathBuf> = (0..8u64)
        .map(|shard| {
            let mut text = format!(
                "[[image]]\nlayout = \"{}\"\nrepository = \"base\"\ntags = [\"latest\", \"stable\"]\n",
                shared.display()
            );
            for r in 0..3u64 {
                let repo = format!("s{shard}/app{r}");
                let dir = layout(&format!("s{shard}-{r}"), shard * 10 + r);
                text.push_str(&format!(
                    "[[image]]\nlayout = \"{}\"\nrepository = \"{repo}\"\ntags = [\"1.0\", \"latest\"]\n",
                    dir.display()
                ));
                expected.insert(repo, BTreeSet::from(["1.0".to_string(), "latest".to_string()]));
            }
            let config = tmp.path().join(format!("shard{shard}.toml"));
            fs::write(&config, text).unwrap();
            config
        })
        .collect();
    let children: Vec<Child> = shards
        .iter()
        .map(|config| {
            publish_command(&garage, config, &bucket, &garage.endpoint, false)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let gc = regpress_with_env(
        &[
            "gc",
            "--to",
            &format!("s3://{bucket}"),
            "--endpoint",
            &garage.endpoint,
            "--grace",
            "0s",
        ],
        &garage.env(),
    );
    gc.ok();

    // Every tag list and the catalog say exactly what the tags present are.
    let listing = garage.listing(&bucket);
    let present = regpress::site::tags_in(listing.keys().map(String::as_str));
    assert_eq!(present, expected);
    let read = |key: &str| -> serde_json::Value {
        serde_json::from_slice(&garage.get(&bucket, key).unwrap()).unwrap()
    };
    for (repo, tags) in &expected {
        let list = read(&format!("v2/{repo}/tags/list"));
        let listed: BTreeSet<String> = user_tags(&list).into_iter().map(String::from).collect();
        assert_eq!(&listed, tags, "{repo}");
    }
    let catalog: BTreeSet<String> =
        serde_json::from_value(read("v2/_catalog")["repositories"].clone()).unwrap();
    assert_eq!(catalog, expected.keys().cloned().collect());
    // Every tag resolves: what it names, and all that names, is there.
    assert_consistent(&garage, &bucket, "after 8 shards and gc");
    let exposed = garage.expose(&bucket);
    check_website(&garage, &exposed, &bucket, "after 8 shards and gc");
    // A re-run of every shard writes nothing.
    for config in &shards {
        let rep = tmp.path().join("rerun.json");
        let mut command = publish_command(&garage, config, &bucket, &garage.endpoint, false);
        command.args(["--report", &s(&rep)]);
        Run::from(command.output().unwrap()).ok();
        assert_eq!(report(&rep)["objects_written"], 0, "{}", config.display());
    }
}

#[test]
fn a_byte_changed_on_the_way_to_the_store_is_never_published() {
    // One bit of one single-part blob upload, and of one part of the 11 MiB layer's multipart
    // upload, flipped between regpress and Garage: same length, same headers.
    let garage = Garage::start();
    let sc = scenario();
    let proxy = Proxy::start(&garage.endpoint);
    let bucket = garage.bucket("flipped");
    let flipped = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = flipped.clone();
    proxy.set_rule(move |s| {
        let kind = match s.method.as_str() {
            "PUT" if s.path.contains("partNumber=2") => "part",
            "PUT" if s.path.contains("/blobs/") && !s.path.contains("uploadId") => "blob",
            _ => return None,
        };
        seen.lock().unwrap().insert(kind).then_some(Fault::FlipByte)
    });
    publish(&garage, &sc.a, &bucket, &proxy.url, false).ok();
    publish(&garage, &sc.b, &bucket, &proxy.url, false).ok();
    proxy.clear_rule();
    assert_eq!(flipped.lock().unwrap().len(), 2, "both flips were injected");
    // Every blob the bucket holds is the bytes its digest names.
    for key in garage.listing(&bucket).into_keys() {
        if let Some((_, digest)) = key.rsplit_once("/blobs/") {
            let bytes = garage.get(&bucket, &key).unwrap();
            assert_eq!(
                format!("sha256:{}", synth::sha256_hex(&bytes)),
                digest,
                "{key}"
            );
        }
    }
    assert_consistent(&garage, &bucket, "after flipped bytes");
    let exposed = garage.expose(&bucket);
    check_website(&garage, &exposed, &bucket, "after flipped bytes");

    // Garage refuses a body that does not match its checksum header (InvalidDigest, retried
    // above), and says it checked by answering with the checksum. For a store that checks no
    // checksum (the proxy hides every checksum Garage answers), regpress compares the MD5 of
    // what it sent with the ETag answered: here the proxy answers one blob PUT and one part
    // with the ETag of other bytes, and regpress removes the object and sends it again.
    let bucket = garage.bucket("etag");
    proxy.hide_checksums(true);
    let told = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = told.clone();
    proxy.reset_log();
    proxy.set_rule(move |s| {
        let kind = match s.method.as_str() {
            "PUT" if s.path.contains("partNumber=1") => "part",
            "PUT" if s.path.contains("/blobs/") && !s.path.contains("uploadId") => "blob",
            _ => return None,
        };
        seen.lock()
            .unwrap()
            .insert(kind)
            .then_some(Fault::WrongEtag)
    });
    publish(&garage, &sc.b, &bucket, &proxy.url, false).ok();
    proxy.clear_rule();
    proxy.hide_checksums(false);
    let log = proxy.log();
    let lied: Vec<&Seen> = log.iter().filter(|s| s.fault.is_some()).collect();
    assert_eq!(lied.len(), 2);
    // The object (or part) a request writes: its path, part number and upload, without the
    // presigned query that changes with each signature.
    let target = |path: &str| -> String {
        let (key, query) = path.split_once('?').unwrap_or((path, ""));
        let mut kept: Vec<&str> = query
            .split('&')
            .filter(|p| p.starts_with("partNumber=") || p.starts_with("uploadId="))
            .collect();
        kept.sort();
        format!("{key}?{}", kept.join("&"))
    };
    for s in &lied {
        let sent_again = log
            .iter()
            .filter(|r| r.n > s.n && r.method == "PUT" && target(&r.path) == target(&s.path))
            .count();
        assert!(sent_again >= 1, "{} was not sent again", s.path);
    }
    let blob = lied.iter().find(|s| !s.path.contains("uploadId")).unwrap();
    let key = blob.path.split('?').next().unwrap();
    assert!(
        log.iter()
            .any(|r| r.n > blob.n && r.method == "POST" && r.path.contains("delete")),
        "the object the store got wrong was removed before it was sent again ({key})"
    );
    for key in garage.listing(&bucket).into_keys() {
        if let Some((_, digest)) = key.rsplit_once("/blobs/") {
            let bytes = garage.get(&bucket, &key).unwrap();
            assert_eq!(
                format!("sha256:{}", synth::sha256_hex(&bytes)),
                digest,
                "{key}"
            );
        }
    }
    check_website(&garage, &exposed, &bucket, "after wrong ETags");
}
