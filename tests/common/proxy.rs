//! A fault-injecting HTTP proxy between regpress and Garage's S3 API.
//!
//! Every request is counted and logged; a rule decides per request whether to forward it or
//! to answer 500, 503, 429 with `Retry-After`, reset the connection (a TCP RST: every accepted
//! socket has a zero linger), stall, delay, cut the upload short, or forward it and truncate the
//! answer (or, for an answer without a body, forward it and reset: the store did the work, the
//! client never heard). It can also SIGKILL a process (with `kill -KILL`, from outside) when
//! the n-th request arrives, before or after forwarding it. The Host header is forwarded as
//! sent, so SigV4 signatures made for the proxy's address still verify at Garage.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

type Body = BoxBody<Bytes, std::io::Error>;

/// What to do to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (500, 503…) without forwarding.
    Status(u16),
    /// Answer 429 with `Retry-After: <seconds>` without forwarding.
    TooMany(u64),
    /// Reset the connection without forwarding.
    Reset,
    /// Wait this long, then reset without forwarding (a dead connection: the client must time
    /// out). Never forwarding late keeps a stale write from landing after the client moved on.
    Stall(Duration),
    /// Wait this long, then forward (a slow store the client waits for).
    Delay(Duration),
    /// Read part of the request body, then reset: the store never gets the whole upload.
    CutUpload,
    /// Forward, then send only half the answer's body and reset (an answer without a body:
    /// reset after the store has done the work).
    Truncate,
    /// Forward the request with one byte of its body changed (the middle one, one bit
    /// flipped): same length, same headers, other bytes.
    FlipByte,
    /// Forward, then answer with another ETag than the store's (the MD5 of other bytes), as
    /// a store that received changed bytes and checks no checksum would.
    WrongEtag,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// 1 for the first request since the last `reset_log`.
    pub n: u64,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub at: Instant,
    pub fault: Option<Fault>,
}

type Rule = Box<dyn Fn(&Seen) -> Option<Fault> + Send + Sync>;

struct State {
    upstream: SocketAddr,
    count: AtomicU64,
    log: Mutex<Vec<Seen>>,
    rule: Mutex<Rule>,
    /// (request number, after forwarding) of a pending kill.
    kill: Mutex<Option<(u64, bool)>>,
    /// The process to kill (0 until known).
    victim: AtomicU32,
    killed: AtomicU32,
    /// Answer without `x-amz-checksum-*` headers, as a store that checks no checksum does.
    hide_checksums: AtomicBool,
}

/// A running proxy (stopped when dropped).
pub struct Proxy {
    /// `http://127.0.0.1:<port>`: give it to regpress as `--endpoint`.
    pub url: String,
    state: Arc<State>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// Start a proxy in front of `upstream` (`http://host:port`), forwarding everything.
    pub fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://ip:port");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            count: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            rule: Mutex::new(Box::new(|_| None)),
            kill: Mutex::new(None),
            victim: AtomicU32::new(0),
            killed: AtomicU32::new(0),
            hide_checksums: AtomicBool::new(false),
        });
        let shared = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_zero_linger();
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { handle(state, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Proxy {
            url: format!("http://{addr}"),
            state,
            _runtime: runtime,
        }
    }

    /// Decide each request's fate with `rule` from now on.
    pub fn set_rule(&self, rule: impl Fn(&Seen) -> Option<Fault> + Send + Sync + 'static) {
        *self.state.rule.lock().unwrap() = Box::new(rule);
    }

    /// Forward everything from now on.
    pub fn clear_rule(&self) {
        self.set_rule(|_| None);
    }

    /// SIGKILL the victim (see `set_victim`) when request `n` (counted from the last
    /// `reset_log`) arrives: before forwarding it, or once the store has answered it (the
    /// answer is then never relayed). Arm it before starting the process.
    pub fn kill_at(&self, n: u64, after_forward: bool) {
        *self.state.kill.lock().unwrap() = Some((n, after_forward));
    }

    /// The process `kill_at` kills; request `n` waits until it is known.
    pub fn set_victim(&self, pid: u32) {
        self.state.victim.store(pid, Ordering::SeqCst);
    }

    /// The pid killed by the last `kill_at`, or 0 when the process never got that far.
    pub fn killed(&self) -> u32 {
        self.state.killed.load(Ordering::SeqCst)
    }

    /// Answer (or not) without the `x-amz-checksum-*` headers the store sends, as a store
    /// that checks no checksum (and so never echoes one) would.
    pub fn hide_checksums(&self, hide: bool) {
        self.state.hide_checksums.store(hide, Ordering::SeqCst);
    }

    /// Start counting from 1 again and forget the log (and any pending kill).
    pub fn reset_log(&self) {
        self.state.count.store(0, Ordering::SeqCst);
        self.state.log.lock().unwrap().clear();
        *self.state.kill.lock().unwrap() = None;
        self.state.victim.store(0, Ordering::SeqCst);
        self.state.killed.store(0, Ordering::SeqCst);
    }

    /// Every request since the last `reset_log`, in arrival order.
    pub fn log(&self) -> Vec<Seen> {
        let mut log = self.state.log.lock().unwrap().clone();
        log.sort_by_key(|s| s.n);
        log
    }
}

fn kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -KILL {pid} failed");
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed());
    *response.status_mut() = status;
    response
}

fn reset() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset")
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let n = state.count.fetch_add(1, Ordering::SeqCst) + 1;
    let mut seen = Seen {
        n,
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        at: Instant::now(),
        fault: None,
    };
    seen.fault = (state.rule.lock().unwrap())(&seen);
    state.log.lock().unwrap().push(seen.clone());
    let kill_now = |after: bool| {
        let state = state.clone();
        async move {
            let pending = *state.kill.lock().unwrap();
            if pending != Some((n, after)) {
                return false;
            }
            let mut pid = state.victim.load(Ordering::SeqCst);
            while pid == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                pid = state.victim.load(Ordering::SeqCst);
            }
            // Recorded first: the test sees the kill as soon as the process is gone.
            state.killed.store(pid, Ordering::SeqCst);
            kill(pid);
            true
        }
    };
    if kill_now(false).await {
        return Err(reset());
    }
    match seen.fault {
        Some(Fault::Status(code)) => {
            return Ok(empty(StatusCode::from_u16(code).unwrap()));
        }
        Some(Fault::TooMany(secs)) => {
            let mut response = empty(StatusCode::TOO_MANY_REQUESTS);
            response
                .headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            return Ok(response);
        }
        Some(Fault::Reset) => return Err(reset()),
        Some(Fault::Stall(time)) => {
            tokio::time::sleep(time).await;
            return Err(reset());
        }
        Some(Fault::Delay(time)) => tokio::time::sleep(time).await,
        Some(Fault::CutUpload) => {
            let mut body = req.into_body();
            let _ = body.frame().await;
            return Err(reset());
        }
        Some(Fault::FlipByte) => {
            let (parts, body) = req.into_parts();
            let mut bytes = body
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes()
                .to_vec();
            let middle = bytes.len() / 2;
            if let Some(byte) = bytes.get_mut(middle) {
                *byte ^= 0x01;
            }
            let changed = Request::from_parts(parts, Full::new(Bytes::from(bytes)));
            let response = state.answer(forward(&state, changed).await?);
            return Ok(response.map(|b| b.map_err(std::io::Error::other).boxed()));
        }
        Some(Fault::Truncate | Fault::WrongEtag) | None => {}
    }
    let response = state.answer(forward(&state, req).await?);
    if kill_now(true).await {
        return Err(reset());
    }
    if seen.fault == Some(Fault::WrongEtag) {
        let (mut parts, body) = response.into_parts();
        let other = "\"0123456789abcdef0123456789abcdef\"";
        parts.headers.insert("etag", other.parse().unwrap());
        return Ok(Response::from_parts(
            parts,
            body.map_err(std::io::Error::other).boxed(),
        ));
    }
    if seen.fault != Some(Fault::Truncate) {
        return Ok(response.map(|b| b.map_err(std::io::Error::other).boxed()));
    }
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    if bytes.is_empty() {
        return Err(reset());
    }
    let half = bytes.slice(..bytes.len() / 2);
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> =
        vec![Ok(Frame::data(half)), Err(reset())];
    Ok(Response::from_parts(
        parts,
        StreamBody::new(stream::iter(frames)).boxed(),
    ))
}

impl State {
    /// The store's answer as relayed (its checksum headers hidden, when asked).
    fn answer<B>(&self, mut response: Response<B>) -> Response<B> {
        if self.hide_checksums.load(Ordering::SeqCst) {
            let headers = response.headers_mut();
            let names: Vec<_> = headers
                .keys()
                .filter(|k| k.as_str().starts_with("x-amz-checksum"))
                .cloned()
                .collect();
            for name in names {
                headers.remove(&name);
            }
        }
        response
    }
}

/// Send `req` to the upstream on a fresh connection, Host header and body as received.
async fn forward<B>(state: &State, req: Request<B>) -> Result<Response<Incoming>, std::io::Error>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(state.upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)
}

/// A rule for a share of requests: `share` in 0..=1, chosen by a hash of the request number
/// and `seed`, cycling through `faults`.
pub fn share(
    seed: u64,
    fraction: f64,
    faults: Vec<Fault>,
) -> impl Fn(&Seen) -> Option<Fault> + Send + Sync {
    move |seen| {
        let mut x = seen
            .n
            .wrapping_add(seed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        let roll = (x % 10_000) as f64 / 10_000.0;
        (roll < fraction).then(|| faults[(x / 10_000) as usize % faults.len()])
    }
}
