//! How the handler holds its sockets when clients are hostile: the descriptor limit, a cap on
//! connections, timeouts for idle connections, request heads and whole requests, and a cap on
//! request head size.
//!
//! The handler sits next to a proxy and is reachable from the network, so a client can open
//! connections and send nothing, or a byte a second. `axum::serve` would keep each one open for
//! as long as the client likes, and at the 1,024 descriptors a default service gets it stops
//! accepting altogether. Here instead:
//!
//! - the soft `RLIMIT_NOFILE` is raised to the hard limit at start, as Go servers do
//!   ([`raise_open_files_limit`]);
//! - at most [`Limits::max_connections`] are open (fewer if the descriptor limit leaves less
//!   room). When that many are open, the connection that has waited longest *without a request
//!   in flight* (idle, or still sending its head) is closed to make room for the new one, so
//!   idle connections cannot lock requests out; if every connection has a request in flight,
//!   accepting waits for one to finish (each is bounded by the request timeout);
//! - a connection with no request in flight is closed after [`Limits::idle_timeout`] without a
//!   byte (a new connection, or a kept-alive one after its answer), and once the first byte of
//!   a request head arrives, the whole head must arrive within [`Limits::header_timeout`];
//! - reading a request's body and answering it must end within [`Limits::request_timeout`]
//!   (408 otherwise); heads above [`Limits::max_header_bytes`] get 431 from hyper.
//!
//! HTTP/1 only, served by hyper's connection builder; the routes are [`crate::routes`]'.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::Limits;
use crate::log;

/// Descriptors kept back from connections: stdio, the listener, the runtime's, and requests to
/// issuers.
pub const RESERVED_FILES: u64 = 64;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit, as Go's runtime does at start, and return
/// the soft limit now in force (`None`: unlimited, or not known on this platform).
///
/// A service gets a soft limit of 1,024 by default, which a thousand idle clients exhaust;
/// the hard limit is what the administrator actually allows.
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let below_hard = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            log::line(format_args!(
                "cannot raise the open files limit from {:?} to {:?}: {e}",
                limit.current, limit.maximum
            ));
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Raise the soft `RLIMIT_NOFILE` (nothing to do on this platform).
#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<u64> {
    None
}

/// The connection cap in force: `configured`, or fewer when the descriptor limit `open_files`
/// leaves less room after [`RESERVED_FILES`].
pub fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    let room = open_files.map_or(usize::MAX, |n| {
        usize::try_from(n.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX)
    });
    configured.min(room).max(1)
}

/// Pending connections the kernel may queue before the handler accepts them (capped by
/// `net.core.somaxconn`; 4096 on current Linux). tokio's default of 1024 (mio's, 128 here) lets
/// a burst of connections overflow the queue: Linux then completes the client's handshake but
/// drops it on the server's side, leaving the client a connection no timeout can close.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`] (and address reuse, so a restarted handler
/// binds at once).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serve `router` on `listener` within `limits` and at most `cap` connections, until `shutdown`
/// completes; then finish the requests in flight and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    cap: usize,
    shutdown: impl Future<Output = ()>,
) {
    let table = Arc::new(Table::default());
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                table.make_room(cap).await;
                let _ = stream.set_nodelay(true);
                let conn = table.insert();
                tokio::spawn(serve_connection(
                    stream,
                    conn,
                    table.clone(),
                    router.clone(),
                    limits.clone(),
                    stopped.clone(),
                ));
            }
            // The client gave up before we accepted: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            // Out of descriptors or memory: wait for connections to close rather than spin.
            Err(e) => {
                log::line(format_args!("cannot accept a connection: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    table.wait_empty().await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One connection's life: served by hyper until it ends, times out, is evicted or the
/// server stops.
async fn serve_connection(
    stream: TcpStream,
    conn: Arc<Conn>,
    table: Arc<Table>,
    router: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let request_timeout = limits.request_timeout;
    let busy = conn.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        let busy = busy.clone();
        async move {
            let _in_flight = InFlight::start(busy);
            let answer = tokio::time::timeout(request_timeout, router.oneshot(request)).await;
            Ok::<_, Infallible>(match answer {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => timed_out(request_timeout),
            })
        }
    });
    let io = TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
    });
    let connection = http1::Builder::new()
        .max_header_size(limits.max_header_bytes)
        .serve_connection(io, service);
    {
        tokio::pin!(connection);
        let mut draining = false;
        loop {
            let deadline = conn.activity().deadline(&limits);
            tokio::select! {
                _ = connection.as_mut() => break,
                () = tokio::time::sleep_until(deadline) => {
                    if conn.activity().expired(&limits) {
                        break;
                    }
                }
                () = conn.changed.notified() => {}
                () = conn.evict.notified() => break,
                _ = stopped.changed(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
        // Leaving the block drops the connection: the socket is closed before it leaves the table.
    }
    table.remove(&conn);
}

fn timed_out(limit: Duration) -> Response<Body> {
    let mut response = Response::new(Body::from(format!(
        "request not completed within {} s\n",
        limit.as_secs()
    )));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// What one connection is doing, as the watchdog needs to know.
struct Activity {
    /// Requests being answered (hyper answers one at a time; pipelined ones wait).
    in_flight: usize,
    /// Since when nothing has been in flight (the connection opened or answered).
    idle_since: Instant,
    /// When the first byte of the next request head arrived, while none is in flight.
    head_started: Option<Instant>,
    /// Closed to make room: no longer counted against the cap.
    evicted: bool,
}

impl Activity {
    /// When this connection is next due to be closed, if nothing changes.
    fn deadline(&self, limits: &Limits) -> Instant {
        if self.in_flight > 0 {
            // The request timeout bounds this; look again when it ends (`changed`).
            return Instant::now() + limits.request_timeout + limits.idle_timeout;
        }
        match self.head_started {
            Some(started) => started + limits.header_timeout,
            None => self.idle_since + limits.idle_timeout,
        }
    }

    fn expired(&self, limits: &Limits) -> bool {
        self.in_flight == 0 && self.deadline(limits) <= Instant::now()
    }
}

/// A connection as the table and its watchdog see it.
struct Conn {
    id: u64,
    activity: Mutex<Activity>,
    /// Woken when a request head starts or a request ends: the deadline moved.
    changed: Notify,
    /// Woken to close the connection to make room.
    evict: Notify,
}

impl Conn {
    fn activity(&self) -> MutexGuard<'_, Activity> {
        // The lock guards plain counters: a panic elsewhere leaves them usable.
        self.activity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mark this connection to be closed to make room, unless a request is in flight or it is
    /// marked already; say whether it was.
    fn try_evict(&self) -> bool {
        let mut a = self.activity();
        let evictable = !a.evicted && a.in_flight == 0;
        a.evicted |= evictable;
        evictable
    }

    /// Bytes arrived: the start of a request head, if none is in flight and none has started.
    fn saw_bytes(&self) {
        let mut a = self.activity();
        if a.in_flight == 0 && a.head_started.is_none() {
            a.head_started = Some(Instant::now());
            drop(a);
            self.changed.notify_one();
        }
    }
}

/// A request in flight on a connection, from its parsed head until its answer.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: Arc<Conn>) -> InFlight {
        {
            let mut a = conn.activity();
            a.in_flight += 1;
            a.head_started = None;
        }
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut a = self.0.activity();
            a.in_flight = a.in_flight.saturating_sub(1);
            if a.in_flight == 0 {
                a.idle_since = Instant::now();
                a.head_started = None;
            }
        }
        self.0.changed.notify_one();
    }
}

/// The open connections, oldest first.
#[derive(Default)]
struct Table {
    inner: Mutex<TableInner>,
    /// Woken when a connection ends.
    freed: Notify,
}

#[derive(Default)]
struct TableInner {
    next_id: u64,
    conns: BTreeMap<u64, Arc<Conn>>,
    /// Connections not evicted: what counts against the cap.
    live: usize,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, TableInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self) -> Arc<Conn> {
        let mut t = self.lock();
        let id = t.next_id;
        t.next_id += 1;
        let conn = Arc::new(Conn {
            id,
            activity: Mutex::new(Activity {
                in_flight: 0,
                idle_since: Instant::now(),
                head_started: None,
                evicted: false,
            }),
            changed: Notify::new(),
            evict: Notify::new(),
        });
        t.conns.insert(id, conn.clone());
        t.live += 1;
        conn
    }

    fn remove(&self, conn: &Conn) {
        let mut t = self.lock();
        if t.conns.remove(&conn.id).is_some() && !conn.activity().evicted {
            t.live -= 1;
        }
        drop(t);
        self.freed.notify_one();
    }

    /// Return once fewer than `cap` connections count against the cap: at once if there is
    /// room, after closing the oldest connection without a request in flight if there is one,
    /// or when a connection ends.
    async fn make_room(&self, cap: usize) {
        loop {
            let freed = self.freed.notified();
            {
                let mut t = self.lock();
                if t.live < cap {
                    return;
                }
                // Oldest first: ids grow with every connection accepted.
                let victim = t.conns.values().find(|c| c.try_evict()).cloned();
                if let Some(victim) = victim {
                    t.live -= 1;
                    victim.evict.notify_one();
                    return;
                }
            }
            freed.await;
        }
    }

    async fn wait_empty(&self) {
        loop {
            let freed = self.freed.notified();
            if self.lock().conns.is_empty() {
                return;
            }
            freed.await;
        }
    }
}

/// The socket, telling its connection when bytes arrive.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.saw_bytes();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_reserved_descriptors() {
        assert_eq!(
            connection_cap(4096, Some(1024)),
            1024 - RESERVED_FILES as usize
        );
        assert_eq!(connection_cap(4096, Some(1 << 20)), 4096);
        assert_eq!(connection_cap(4096, None), 4096);
        assert_eq!(connection_cap(4096, Some(10)), 1);
    }
}
