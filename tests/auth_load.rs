//! `regpress auth serve` under hostile load, as the real binary on real sockets, started with
//! the 1,024 soft descriptor limit a default service gets: thousands of idle and byte-a-second
//! connections, slow bodies and huge headers, a JWKS endpoint that never answers, an issuer that
//! points its keys elsewhere or fails, and requests that try to write into the log.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::auth::{JWKS_COOLDOWN, SERVICE, write_config};
use common::oidc::{SigningKey, TestIssuer};
use common::{Server, s};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::Value;

const REALM: &str = "http://127.0.0.1:9/token";
const APP: &str = "repository:acme/app:pull";
const MANIFEST: &str = "/v2/acme/app/manifests/latest";
/// The soft descriptor limit a service gets by default (systemd, most shells).
const SOFT_LIMIT: u64 = 1024;
/// What "still answering" means here.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// `regpress auth serve --config <config>` with a soft `RLIMIT_NOFILE` of [`SOFT_LIMIT`], as a
/// service manager starts it; its stderr goes to `log` when given.
fn serve_limited(config: &Path, log: Option<&Path>) -> Server {
    let config = s(config);
    let args = [
        "auth",
        "serve",
        "--config",
        config.as_str(),
        "--listen",
        "127.0.0.1:0",
    ];
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -S -n {SOFT_LIMIT} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_regpress"))
        .args(args);
    if let Some(log) = log {
        command.stderr(File::create(log).expect("create log"));
    }
    Server::spawn_command(command, &args)
}

/// The soft and hard `Max open files` of process `pid`.
fn open_files_limit(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut numbers = line
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok());
    let soft = numbers.next().expect("soft limit");
    let hard = numbers.next().expect("hard limit");
    (soft, hard)
}

/// How many descriptors process `pid` has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fd dir")
        .count()
}

/// This test process holds thousands of sockets too: raise its own soft limit to the hard one.
fn raise_own_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raise the test's descriptor limit");
}

/// A handler from `examples/auth.toml` against a test issuer, with `edit` applied to the config.
struct Handler {
    issuer: TestIssuer,
    auth: Server,
    log: PathBuf,
    _dir: tempfile::TempDir,
    http: Client,
}

impl Handler {
    fn start(edit: impl Fn(&str) -> String) -> Handler {
        Handler::start_for(TestIssuer::start(), edit)
    }

    fn start_for(issuer: TestIssuer, edit: impl Fn(&str) -> String) -> Handler {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &issuer.url, REALM);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, edit(&text)).unwrap();
        let log = dir.path().join("auth.log");
        let auth = serve_limited(&config, Some(&log));
        Handler {
            issuer,
            auth,
            log,
            _dir: dir,
            // A new connection per request, as a proxy opening one under load would.
            http: Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    /// GET /token with the ID token as Basic password: status, body and how long it took.
    fn token(&self, id_token: &str) -> (StatusCode, Value, Duration) {
        let started = Instant::now();
        let response = self
            .http
            .get(self.auth.url("/token"))
            .query(&[("service", SERVICE), ("scope", APP)])
            .basic_auth("x", Some(id_token))
            .send();
        let elapsed = started.elapsed();
        match response {
            Ok(r) => (r.status(), r.json().unwrap_or(Value::Null), elapsed),
            Err(e) => panic!("/token not answered after {elapsed:?}: {e}"),
        }
    }

    /// GET /check for a pull of acme/app with `bearer`: status and how long it took.
    fn check(&self, bearer: &str) -> (StatusCode, Duration) {
        let started = Instant::now();
        let response = self
            .http
            .get(self.auth.url("/check"))
            .header("X-Original-URI", MANIFEST)
            .header("X-Forwarded-Method", "GET")
            .bearer_auth(bearer)
            .send();
        let elapsed = started.elapsed();
        match response {
            Ok(r) => (r.status(), elapsed),
            Err(e) => panic!("/check not answered after {elapsed:?}: {e}"),
        }
    }

    /// Both endpoints answer, right, within [`ANSWER_WITHIN`] on a new connection each.
    fn assert_answering(&self, when: &str) {
        // The first token of a handler fetches discovery and the JWKS: not what is timed here.
        self.token(&self.issuer.id_token("acme/app", SERVICE));
        let (status, body, took) = self.token(&self.issuer.id_token("acme/app", SERVICE));
        assert_eq!(status, StatusCode::OK, "{when}: /token: {body}");
        assert!(took < ANSWER_WITHIN, "{when}: /token took {took:?}");
        let registry_token = body["token"].as_str().unwrap();
        let (status, took) = self.check(registry_token);
        assert_eq!(status, StatusCode::OK, "{when}: /check");
        assert!(took < ANSWER_WITHIN, "{when}: /check took {took:?}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Hostile clients on a runtime of their own: each connection is a task that records how long
/// the handler kept it open.
struct Hostile {
    runtime: tokio::runtime::Runtime,
    addr: String,
}

/// A connection's fate: connected or not, and when the handler closed it.
type Fate = tokio::task::JoinHandle<Option<Duration>>;

impl Hostile {
    fn new(addr: &str) -> Hostile {
        Hostile {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            addr: addr.to_string(),
        }
    }

    /// Open `n` connections (in batches, as a flood arrives); each then does `behave` until the
    /// handler closes it. Returns one fate per connection.
    fn open<F, Fut>(&self, n: usize, behave: F) -> Vec<Fate>
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Copy + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut fates = Vec::new();
        for batch in 0..n.div_ceil(500) {
            let size = 500.min(n - batch * 500);
            let handles: Vec<_> = (0..size)
                .map(|_| {
                    let addr = self.addr.clone();
                    self.runtime.spawn(async move {
                        tokio::time::timeout(
                            Duration::from_secs(3),
                            tokio::net::TcpStream::connect(addr),
                        )
                        .await
                        .ok()
                        .and_then(Result::ok)
                    })
                })
                .collect();
            for handle in handles {
                let stream = self.runtime.block_on(handle).expect("connect task");
                fates.push(self.runtime.spawn(async move {
                    let stream = stream?;
                    let opened = Instant::now();
                    behave(stream).await;
                    Some(opened.elapsed())
                }));
            }
        }
        fates
    }

    /// How many of `fates` connected, and how long each connected one stayed open (`None`
    /// for one still open after `wait`).
    fn settle(&self, fates: Vec<Fate>, wait: Duration) -> (usize, Vec<Option<Duration>>) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut connected = 0;
        let mut lifetimes = Vec::new();
        for fate in fates {
            // The timer is made inside the runtime: outside it, tokio has no clock to arm.
            match self
                .runtime
                .block_on(async { tokio::time::timeout_at(deadline, fate).await })
            {
                Ok(Ok(None)) => {}
                Ok(Ok(Some(lived))) => {
                    connected += 1;
                    lifetimes.push(Some(lived));
                }
                Ok(Err(e)) => panic!("connection task: {e}"),
                Err(_) => {
                    connected += 1;
                    lifetimes.push(None);
                }
            }
        }
        (connected, lifetimes)
    }
}

/// Send nothing; wait for the handler to close the connection.
async fn idle(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Send a request head one byte a second, never finishing it, until the handler closes.
async fn byte_a_second(stream: tokio::net::TcpStream) {
    dribble(stream, Duration::from_secs(1)).await;
}

/// Send a never-ending request head one byte per `pace`, until the handler closes.
async fn dribble(mut stream: tokio::net::TcpStream, pace: Duration) {
    use tokio::io::AsyncWriteExt;
    let head = b"GET /check HTTP/1.1\r\nHost: x\r\nX-Original-URI: /v2/";
    for i in 0.. {
        let byte = head.get(i).copied().unwrap_or(b'a');
        if stream.write_all(&[byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(pace).await;
    }
}

fn longest(lifetimes: &[Option<Duration>]) -> Option<Duration> {
    lifetimes
        .iter()
        .copied()
        .collect::<Option<Vec<_>>>()
        .and_then(|l| l.into_iter().max())
}

#[test]
fn idle_and_byte_a_second_connections_do_not_stop_check_and_token() {
    raise_own_limit();
    // Defaults only: what a service started from examples/auth.toml does.
    let t = Handler::start(str::to_string);
    let (soft, hard) = open_files_limit(t.auth.pid());
    assert_eq!(
        soft, hard,
        "the handler keeps a soft descriptor limit of {soft} under a hard one of {hard}"
    );
    t.assert_answering("before the flood");
    let hostile = Hostile::new(&t.auth.addr);
    let opened = Instant::now();
    let idle_fates = hostile.open(3000, idle);
    let slow_fates = hostile.open(300, byte_a_second);
    // While both hold on (the slow ones keep sending for several seconds), both endpoints
    // answer on new connections.
    for round in 0..4 {
        t.assert_answering(&format!(
            "{:?} into 3,000 idle and 300 byte-a-second connections (round {round})",
            opened.elapsed()
        ));
        std::thread::sleep(Duration::from_millis(1500));
    }
    // Idle connections are closed within a minute with the default idle timeout, the slow ones
    // too (they never finish a request head).
    let (idle_connected, idle_lived) = hostile.settle(idle_fates, Duration::from_secs(65));
    let (slow_connected, slow_lived) = hostile.settle(slow_fates, Duration::from_secs(5));
    assert_eq!(
        (idle_connected, slow_connected),
        (3000, 300),
        "connections accepted"
    );
    let idle_longest = longest(&idle_lived);
    let slow_longest = longest(&slow_lived);
    eprintln!("idle connections closed after at most {idle_longest:?}, slow ones {slow_longest:?}");
    assert!(
        idle_longest.is_some_and(|d| d <= Duration::from_secs(60)),
        "an idle connection stayed open {idle_longest:?} (None: still open after 65 s)"
    );
    assert!(
        slow_longest.is_some_and(|d| d <= Duration::from_secs(60)),
        "a byte-a-second connection stayed open {slow_longest:?}"
    );
    t.assert_answering("after the flood");
}

#[test]
fn configured_timeouts_close_idle_slow_and_kept_alive_connections_and_cap_headers() {
    let t = Handler::start(|text| {
        format!("idle_timeout = 2\nheader_timeout = 3\nrequest_timeout = 3\n{text}")
    });
    let hostile = Hostile::new(&t.auth.addr);
    let idle_fates = hostile.open(20, idle);
    let slow_fates = hostile.open(20, |stream| dribble(stream, Duration::from_millis(200)));
    let (_, idle_lived) = hostile.settle(idle_fates, Duration::from_secs(10));
    let (_, slow_lived) = hostile.settle(slow_fates, Duration::from_secs(10));
    for (what, lived, at_least, at_most) in [
        ("idle", idle_lived, 1.5, 4.5),
        ("slow head", slow_lived, 2.5, 5.5),
    ] {
        for l in &lived {
            let l = l.unwrap_or_else(|| panic!("a {what} connection is still open after 10 s"));
            assert!(
                (at_least..at_most).contains(&l.as_secs_f64()),
                "a {what} connection was closed after {l:?}"
            );
        }
    }

    // A kept-alive connection, idle after its answer, is closed after the idle timeout too.
    let mut kept = TcpStream::connect(&t.auth.addr).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    kept.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = kept.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let answered = Instant::now();
    let closed = loop {
        match kept.read(&mut buf) {
            Ok(0) => break answered.elapsed(),
            Ok(_) => continue,
            Err(e) => panic!(
                "kept-alive connection not closed after {:?}: {e}",
                answered.elapsed()
            ),
        }
    };
    assert!(
        (1.5..4.5).contains(&closed.as_secs_f64()),
        "kept-alive idle connection closed after {closed:?}"
    );

    // A body sent a byte at a time is cut off at the request timeout.
    let mut slow_body = TcpStream::connect(&t.auth.addr).unwrap();
    slow_body
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    slow_body
        .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        if slow_body.write_all(b"a").is_err() {
            break;
        }
        match slow_body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let cut = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a slow body got {answer:?} after {cut:?}"
    );
    assert!(
        cut < Duration::from_secs(5),
        "a slow body was read for {cut:?}"
    );

    // Request heads above the cap (32 KiB by default) get a 431; a large Authorization header
    // (a maximal ID token in Basic) still fits.
    let head = |extra: usize| {
        let mut stream = TcpStream::connect(&t.auth.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let request = format!(
            "GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(extra)
        );
        let _ = stream.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    let fits = head(12 * 1024);
    assert!(fits.starts_with("HTTP/1.1 200"), "{fits:?}");
    let too_large = head(40 * 1024);
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large:?}");
}

#[test]
fn the_connection_cap_bounds_descriptors_and_makes_room_by_closing_idle_connections() {
    raise_own_limit();
    let t = Handler::start(|text| format!("max_connections = 100\n{text}"));
    t.assert_answering("before the flood");
    let baseline = open_files(t.auth.pid());
    let hostile = Hostile::new(&t.auth.addr);
    let fates = hostile.open(400, idle);
    std::thread::sleep(Duration::from_millis(500));
    let held = open_files(t.auth.pid());
    assert!(
        held <= baseline + 100 + 5,
        "400 idle connections made the handler hold {held} descriptors (baseline {baseline}, cap 100)"
    );
    // The cap is full of idle connections; new requests still get in, at their expense.
    for round in 0..3 {
        t.assert_answering(&format!("with the cap full of idle connections ({round})"));
    }
    let (connected, lived) = hostile.settle(fates, Duration::from_millis(100));
    assert_eq!(connected, 400);
    let closed = lived.iter().filter(|l| l.is_some()).count();
    assert!(
        closed >= 300,
        "only {closed} of 400 idle connections were closed to make room"
    );
}

/// `text` with `from` replaced by `to`, insisting that `from` occurs.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the config");
    text.replacen(from, to, 1)
}

#[test]
fn a_jwks_endpoint_that_never_answers_does_not_slow_cached_keys_or_other_issuers() {
    let other = TestIssuer::start();
    let other_url = other.url.clone();
    let t = Handler::start(move |text| {
        format!(
            "{text}\n[[issuer]]\nurl = \"{other_url}\"\njwks_cooldown = {}\n\n\
             [[trust]]\nrepositories = [\"acme/app\"]\nissuer = \"{other_url}\"\n\
             subject = \"repo:acme/app:ref:refs/heads/main\"\n",
            JWKS_COOLDOWN.as_secs()
        )
    });
    let cached = t.issuer.id_token("acme/app", SERVICE);
    let from_other = other.id_token("acme/app", SERVICE);
    assert_eq!(t.token(&cached).0, StatusCode::OK);
    assert_eq!(t.token(&from_other).0, StatusCode::OK);
    assert_eq!(t.issuer.jwks_hits(), 1);

    // The issuer's JWKS endpoint stops answering; after the cooldown a token with a new kid
    // makes the handler ask it again, and that request hangs.
    t.issuer.hang_jwks(true);
    std::thread::sleep(JWKS_COOLDOWN + Duration::from_millis(200));
    let rotated = SigningKey::generate("key-2").sign(&t.issuer.github_claims("acme/app", SERVICE));
    let t = std::sync::Arc::new(t);
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let (t, rotated) = (t.clone(), rotated.clone());
            std::thread::spawn(move || t.token(&rotated))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // One refresh in flight for all of them (single flight).
    assert_eq!(t.issuer.jwks_hits(), 2);
    // Meanwhile tokens whose key is cached, and tokens of the other issuer, pass at once.
    for round in 0..5 {
        for (what, token) in [("cached key", &cached), ("other issuer", &from_other)] {
            let (status, body, took) = t.token(token);
            assert_eq!(status, StatusCode::OK, "{what} ({round}): {body}");
            assert!(
                took < ANSWER_WITHIN,
                "{what} ({round}) took {took:?} while a JWKS refresh hangs"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(t.issuer.jwks_hits(), 2, "one refresh, however many ask");
    // The new kid is refused once the refresh gives up (the keys it knows are still served).
    for w in waiting {
        let (status, body, _) = w.join().unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_eq!(t.token(&cached).0, StatusCode::OK);
}

#[test]
fn a_discovered_jwks_uri_must_share_the_issuers_origin_unless_configured() {
    // An issuer whose discovery document sends the handler to keys somewhere else.
    let elsewhere = TestIssuer::start();
    let issuer = TestIssuer::start();
    elsewhere.publish(&issuer.key);
    let jwks = format!("{}/jwks", elsewhere.url);
    issuer.announce_jwks_uri(&jwks);
    let t = Handler::start_for(issuer, str::to_string);
    let (status, body, _) = t.token(&t.issuer.id_token("acme/app", SERVICE));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(elsewhere.jwks_hits(), 0, "keys fetched from another origin");
    assert!(
        t.log().contains("not on the issuer's origin"),
        "{}",
        t.log()
    );

    // Configured explicitly, another origin is the operator's choice.
    let issuer = TestIssuer::start();
    elsewhere.publish(&issuer.key);
    let t = Handler::start_for(issuer, |text| {
        edit(
            text,
            "# jwks_uri = \"https://…/jwks\"",
            &format!("jwks_uri = \"{jwks}\""),
        )
    });
    let (status, body, _) = t.token(&t.issuer.id_token("acme/app", SERVICE));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(elsewhere.jwks_hits(), 1);
}

#[test]
fn clients_see_no_upstream_urls_or_statuses_and_the_log_escapes_control_characters() {
    let t = Handler::start(str::to_string);
    t.issuer.fail_jwks(502);
    let (status, body, _) = t.token(&t.issuer.id_token("acme/app", SERVICE));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("issuer unavailable"), "{body}");
    let port = t.issuer.url.rsplit(':').next().unwrap();
    for internal in [
        "502",
        "Bad Gateway",
        "jwks",
        "openid-configuration",
        "http",
        port,
    ] {
        assert!(
            !body.to_string().contains(internal),
            "{internal:?} in the client's answer: {body}"
        );
    }
    // The operator's log has the details.
    assert!(t.log().contains("502"), "{}", t.log());

    // A scope with a newline and an escape sequence, to forge a log line and repaint the
    // operator's terminal.
    let forged = "repository:acme/app:pull\n\u{1b}[2Jregpress auth: token for \"root\"";
    let response = t
        .http
        .get(t.auth.url("/token"))
        .query(&[("service", SERVICE), ("scope", forged)])
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    std::thread::sleep(Duration::from_millis(200));
    let log = t.log();
    assert!(
        log.contains("regpress auth: token for \"anonymous\""),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "raw escape in the log: {log:?}");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("regpress auth: token for \"root\"")),
        "a client forged a log line: {log}"
    );
}
