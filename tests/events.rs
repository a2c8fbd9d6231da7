//! Publish events end to end: `regpress publish --events-url` (and `[events]`) against a
//! CloudEvents receiver on loopback (axum) that records what arrives and can answer 503 first;
//! the `dev.regpress.tag.removed` hook through the library; an unreachable receiver never fails
//! a publish.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{fixture, regpress, regpress_with_env, s};
use serde_json::Value;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    content_type: String,
    authorization: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Requests still to refuse with 503 before accepting.
    refuse: AtomicUsize,
    attempts: AtomicUsize,
}

/// A CloudEvents receiver at `http://addr/hook`.
struct Receiver {
    url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    fn start(refuse_first: usize) -> Receiver {
        let shared = Arc::new(Shared::default());
        shared.refuse.store(refuse_first, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/hook", axum::routing::post(receive))
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            })
        });
        Receiver { url, shared }
    }

    fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    fn attempts(&self) -> usize {
        self.shared.attempts.load(Ordering::SeqCst)
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    shared.attempts.fetch_add(1, Ordering::SeqCst);
    let refused = shared
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refused {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    shared.received.lock().unwrap().push(Received {
        content_type: header("content-type").unwrap_or_default(),
        authorization: header("authorization"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    StatusCode::ACCEPTED
}

#[test]
fn each_tag_created_or_moved_sends_one_cloudevent_retried_through_503s() {
    let receiver = Receiver::start(2);
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let report = dir.path().join("report.json");
    let args = [
        "publish",
        &s(&fixture("apko/golden")),
        "--repo",
        "apko/golden",
        "--tag",
        "latest",
        "--tag",
        "1.0",
        "--to",
        &s(&site),
        "--events-url",
        &receiver.url,
        "--events-source",
        "https://cr.example.com",
        "--report",
        &s(&report),
    ];
    let token = [("REGPRESS_EVENTS_TOKEN".to_string(), "t0ken".to_string())];
    let out = regpress_with_env(&args, &token);
    out.ok();
    assert!(
        out.stdout.contains(&format!(
            "events: 2 delivered to {}, 0 failed",
            receiver.url
        )),
        "{}",
        out.stdout
    );
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(receiver.attempts(), 4, "two 503s were retried");
    let digest = common::golden_digest();
    let mut subjects = Vec::new();
    let mut ids = Vec::new();
    for r in &received {
        assert_eq!(
            r.content_type,
            "application/cloudevents+json; charset=utf-8"
        );
        assert_eq!(r.authorization.as_deref(), Some("Bearer t0ken"));
        let e = &r.body;
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["type"], "dev.regpress.tag.published");
        assert_eq!(e["source"], "https://cr.example.com");
        assert_eq!(e["datacontenttype"], "application/json");
        assert!(
            e["time"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
        ids.push(e["id"].as_str().unwrap().to_string());
        subjects.push(e["subject"].as_str().unwrap().to_string());
        let data = &e["data"];
        assert_eq!(data["repository"], "apko/golden");
        assert_eq!(data["digest"], digest.as_str());
        assert_eq!(
            data["media_type"],
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(
            data["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"])
        );
        assert_eq!(data["signature"]["verified"], false);
        assert_eq!(data["sbom"]["verified"], true);
        assert_eq!(data["sbom"]["documents"].as_array().unwrap().len(), 3);
        assert_eq!(
            data["tag"],
            e["subject"].as_str().unwrap().split(':').nth(1).unwrap()
        );
    }
    subjects.sort();
    assert_eq!(subjects, ["apko/golden:1.0", "apko/golden:latest"]);
    assert_ne!(ids[0], ids[1]);
    let r = common::report(&report);
    assert_eq!(r["events"]["delivered"].as_array().unwrap().len(), 2);
    assert_eq!(r["events"]["failed"], serde_json::json!([]));

    // Nothing changed: no event. A tag moved: one event, for that tag only.
    regpress_with_env(&args, &token).ok();
    assert_eq!(receiver.received().len(), 2);
    let moved = regpress(&[
        "publish",
        &s(&fixture("apko/top_image")),
        "--repo",
        "apko/golden",
        "--tag",
        "1.0",
        "--to",
        &s(&site),
        "--events-url",
        &receiver.url,
    ]);
    moved.ok();
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let e = &received[2].body;
    assert_eq!(e["subject"], "apko/golden:1.0");
    assert_eq!(e["source"], s(&site), "the source defaults to the target");
    assert_ne!(e["data"]["digest"], digest.as_str());
    assert_eq!(received[2].authorization, None);
}

#[test]
fn an_unreachable_receiver_never_fails_the_publish() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("regpress.toml");
    std::fs::write(
        &config,
        format!(
            "[target]\nto = \"site\"\n[events]\nurl = \"http://127.0.0.1:{port}/hook?token=s3cret\"\n\
             [[image]]\nlayout = \"{}\"\nrepository = \"apko/top\"\ntags = [\"latest\"]\n",
            s(&fixture("apko/top_image"))
        ),
    )
    .unwrap();
    let report = dir.path().join("report.json");
    let out = regpress(&["publish", "--config", &s(&config), "--report", &s(&report)]);
    out.ok();
    assert!(
        out.stderr.contains(&format!(
            "warning: event dev.regpress.tag.published for apko/top:latest not delivered to \
             http://127.0.0.1:{port}/hook"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("gave up after 5 attempts"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("the run itself succeeded"));
    assert!(!out.stderr.contains("s3cret") && !out.stdout.contains("s3cret"));
    let r = common::report(&report);
    assert_eq!(r["events"]["url"], format!("http://127.0.0.1:{port}/hook"));
    assert_eq!(r["events"]["failed"][0]["subject"], "apko/top:latest");
    assert!(dir.path().join("site/v2/apko/top/tags/list").exists());

    // A dry run sends nothing; a bad URL is a usage error before anything is read.
    let dry = regpress(&["publish", "--config", &s(&config), "--dry-run", "--json"]);
    dry.ok();
    let plan: Value = serde_json::from_str(&dry.stdout).expect("--json prints the report");
    assert_eq!(plan["dry_run"], true);
    assert!(plan.get("events").is_none());
    let bad = regpress(&[
        "publish",
        "--config",
        &s(&config),
        "--events-url",
        "ftp://example.com/x",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("only http:// and https://"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_pruned_tag_sends_a_removed_event() {
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let config = |tags: &str| {
        let path = dir.path().join("regpress.toml");
        std::fs::write(
            &path,
            format!(
                "[target]\nto = \"{}\"\n[[image]]\nlayout = \"{}\"\nrepository = \"acme/app\"\ntags = [{tags}]\n",
                site.display(),
                fixture("apko/golden").display()
            ),
        )
        .unwrap();
        path
    };
    let publish = |tags: &str, prune: bool| {
        let path = config(tags);
        let mut args = vec!["publish", "--config", path.to_str().unwrap(), "-q"];
        args.extend(["--events-url", &receiver.url]);
        if prune {
            args.push("--prune");
        }
        regpress(&args).ok();
    };
    publish("\"latest\", \"old\"", false);
    assert_eq!(receiver.received().len(), 2);
    publish("\"latest\"", true);
    let received = receiver.received();
    assert_eq!(received.len(), 3, "{received:?}");
    let e = &received[2].body;
    assert_eq!(e["type"], "dev.regpress.tag.removed");
    assert_eq!(e["subject"], "acme/app:old");
    assert_eq!(e["specversion"], "1.0");
    let index = std::fs::read(fixture("apko/golden/index.json")).unwrap();
    assert_eq!(
        e["data"]["digest"],
        regpress::digest::Digest::of_bytes(&index).as_str()
    );
}

#[test]
fn a_yank_sends_a_removed_event_per_tag_with_its_reason() {
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().unwrap();
    let site = s(&dir.path().join("site"));
    let golden = s(&fixture("apko/golden"));
    let args = [
        "publish", &golden, "--repo", "acme/app", "--tag", "v1", "--tag", "latest",
    ];
    regpress(&[&args[..], &["--to", &site, "-q"]].concat()).ok();
    regpress(&[
        "yank",
        "--to",
        &site,
        "acme/app:v1",
        "--reason",
        "CVE-2026-0002",
        "--events-url",
        &receiver.url,
    ])
    .ok();
    let mut received: Vec<Value> = receiver.received().into_iter().map(|r| r.body).collect();
    received.sort_by_key(|e| e["subject"].as_str().map(str::to_string));
    let subjects: Vec<&str> = received
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    assert!(
        subjects.contains(&"acme/app:v1") && subjects.contains(&"acme/app:latest"),
        "{subjects:?}"
    );
    for e in &received {
        assert_eq!(e["type"], "dev.regpress.tag.removed");
        assert_eq!(e["data"]["reason"], "CVE-2026-0002");
        assert_eq!(e["data"]["target"], site.as_str());
    }
    let golden_digest = common::golden_digest();
    let v1 = received
        .iter()
        .find(|e| e["subject"] == "acme/app:v1")
        .unwrap();
    assert_eq!(v1["data"]["digest"], golden_digest.as_str());
}

#[test]
fn an_empty_events_url_variable_leaves_the_configs_url() {
    // A workflow's `REGPRESS_EVENTS_URL: ${{ secrets.X }}` of a secret not set is "".
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("regpress.toml");
    std::fs::write(
        &config,
        format!(
            "[target]\nto = \"site\"\n[events]\nurl = \"{}\"\n\
             [[image]]\nlayout = \"{}\"\nrepository = \"apko/top\"\ntags = [\"latest\"]\n",
            receiver.url,
            s(&fixture("apko/top_image"))
        ),
    )
    .unwrap();
    let empty = [("REGPRESS_EVENTS_URL".to_string(), String::new())];
    let out = regpress_with_env(&["publish", "--config", &s(&config)], &empty);
    out.ok();
    assert!(
        out.stdout
            .contains(&format!("events: 1 delivered to {}", receiver.url)),
        "{}",
        out.stdout
    );
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn a_receiver_that_never_answers_is_given_up_on_within_the_budget() {
    // Accepts connections and holds them open, never reading or answering.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let publish = |to: &str, extra: &[&str]| {
        let golden = s(&fixture("apko/golden"));
        let to = s(&dir.path().join(to));
        let mut args = vec!["publish", &golden, "--repo", "apko/golden", "--to", &to];
        args.extend(["--tag", "latest", "--tag", "1.0", "--events-url", &url]);
        args.extend(extra);
        regpress(&args)
    };
    let started = std::time::Instant::now();
    let limits = ["--events-timeout", "300ms", "--events-budget", "1s"];
    let out = publish("site", &[&limits[..], &["--report", &s(&report)]].concat());
    let took = started.elapsed();
    out.ok();
    // The budget, plus at most one backoff (8 s) and the publish itself; unbounded, two
    // events would take 2 × (5 attempts × the timeout + backoff).
    assert!(took < std::time::Duration::from_secs(12), "took {took:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 1, "nothing was sent");
    let r = common::report(&report);
    assert_eq!(r["events"]["delivered"], serde_json::json!([]));
    let failed = r["events"]["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{failed:?}");
    let first = failed[0]["error"].as_str().unwrap();
    assert!(
        first.contains("budget for delivering events (1s) ran out"),
        "{first}"
    );
    assert_eq!(
        failed[1]["error"],
        "not sent: the budget for delivering events (1s) ran out"
    );
    assert!(
        out.stderr.contains("the run itself succeeded"),
        "{}",
        out.stderr
    );

    // A duration that is not one is a usage error, before anything is published.
    let bad = publish("other", &["--events-budget", "soon"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--events-budget"), "{}", bad.stderr);
    assert!(!dir.path().join("other").exists());
}
