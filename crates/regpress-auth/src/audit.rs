//! The audit of private pulls: every decision `/check` makes about a private repository,
//! allowed or refused, appended as one JSON line to `[audit] log`.
//!
//! Each line is a CloudEvent in the shape of the edge Worker's pull events (`type`
//! `dev.regpress.pull`, `data` with `repository`, `reference`, `type`, `method`, `status`,
//! `identity`, `user_agent`, `remote_address`; docs/events.md), with what only the handler
//! knows added to `data`: `action`, the identity's `issuer`, the registry token's `jti`, the
//! `pull_token` it was minted for, and the `reason` of a refusal. Lines are written by a
//! thread of their own from a bounded queue: a slow disk never delays an answer, and when the
//! queue is full the event is counted as dropped and logged, never waited for.
//!
//! With `events_url`, the same events are also POSTed as the edge Worker sends its own: in
//! batches (`application/cloudevents-batch+json`, up to [`MAX_BATCH`] events gathered over
//! [`WINDOW`]), each POST limited to [`DELIVERY_TIMEOUT`], by another thread, so a receiver that
//! hangs delays neither answers nor the log; a batch that cannot be sent is logged, not retried.

use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::AuditConfig;
use crate::log;

/// Events waiting to be written at most; more are dropped (and logged).
const QUEUE: usize = 10_000;
/// Events per POST at most.
pub const MAX_BATCH: usize = 100;
/// How long a batch stays open for more events.
pub const WINDOW: Duration = Duration::from_millis(200);
/// How long one POST may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Batches waiting to be POSTed at most; more are dropped (and logged).
const BATCHES: usize = 100;

/// One decision, as `/check` saw it.
#[derive(Debug, Default)]
pub struct Decision<'a> {
    /// The repository.
    pub repository: &'a str,
    /// The tag or digest (`list` for a tag list).
    pub reference: &'a str,
    /// `manifest`, `blob`, `tags` or `referrers`.
    pub kind: &'a str,
    /// The original method.
    pub method: &'a str,
    /// `pull` or `push`.
    pub action: &'a str,
    /// What `/check` answered.
    pub status: u16,
    /// The token's `sub`, or `anonymous`.
    pub identity: &'a str,
    /// The identity's issuer, when the token names it.
    pub issuer: Option<&'a str>,
    /// The registry token's `jti`.
    pub jti: Option<&'a str>,
    /// The pull token the registry token was minted for.
    pub pull_token: Option<&'a str>,
    /// Why it was refused.
    pub reason: Option<&'a str>,
    /// The client's `User-Agent`, as the proxy passed it.
    pub user_agent: Option<&'a str>,
    /// The client's address, from the proxy's `X-Real-IP` or `X-Forwarded-For`.
    pub remote_address: Option<&'a str>,
}

/// The audit log's writer.
pub struct Audit {
    source: String,
    queue: SyncSender<String>,
}

impl Audit {
    /// Open the log for appending (created if missing) and start the writer thread (and the
    /// sender's, with `events_url`); events' `source` is `source` (the realm).
    pub fn open(config: &AuditConfig, source: &str) -> Result<Audit, String> {
        let path = &config.log;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("audit log {}: {e}", path.display()))?;
        let sender = match &config.events_url {
            None => None,
            Some(url) => Some(start_sender(
                url.clone(),
                config.events_token.as_ref().map(|t| t.expose().to_string()),
            )?),
        };
        let (queue, lines) = sync_channel::<String>(QUEUE);
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("regpress-audit".to_string())
            .spawn(move || {
                while let Some(batch) = next_batch(&lines) {
                    if let Err(e) = file.write_all(batch.concat().as_bytes()) {
                        log::line(format_args!("cannot write the audit log {shown}: {e}"));
                    }
                    if let Some(sender) = &sender
                        && sender.try_send(batch).is_err()
                    {
                        log::line(format_args!(
                            "audit events dropped: more than {BATCHES} batches waiting to be sent"
                        ));
                    }
                }
            })
            .map_err(|e| format!("cannot start the audit writer: {e}"))?;
        Ok(Audit {
            source: source.to_string(),
            queue,
        })
    }

    /// Record `decision` (queued; never waits).
    pub fn record(&self, decision: &Decision<'_>) {
        let mut line = self.event(decision).to_string();
        line.push('\n');
        match self.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => log::line(format_args!(
                "audit event dropped: more than {QUEUE} waiting to be written"
            )),
            Err(TrySendError::Disconnected(_)) => {
                log::line(format_args!("audit event dropped: the writer stopped"));
            }
        }
    }

    fn event(&self, d: &Decision<'_>) -> Value {
        event(&self.source, d)
    }
}

/// The events that arrive within [`WINDOW`] of the first (at most [`MAX_BATCH`]); `None` once
/// every sender is gone.
fn next_batch(lines: &Receiver<String>) -> Option<Vec<String>> {
    let first = lines.recv().ok()?;
    let deadline = Instant::now() + WINDOW;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => batch.push(line),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(batch)
}

/// A thread POSTing batches of event lines to `url`.
fn start_sender(url: String, token: Option<String>) -> Result<SyncSender<Vec<String>>, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the audit events client: {e}"))?;
    let (queue, batches) = sync_channel::<Vec<String>>(BATCHES);
    std::thread::Builder::new()
        .name("regpress-audit-events".to_string())
        .spawn(move || {
            for batch in batches {
                let body = format!(
                    "[{}]",
                    batch
                        .iter()
                        .map(|l| l.trim_end())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/cloudevents-batch+json")
                    .body(body);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                match request.send() {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => log::line(format_args!(
                        "{} audit events not delivered: HTTP {}",
                        batch.len(),
                        r.status().as_u16()
                    )),
                    Err(e) => log::line(format_args!(
                        "{} audit events not delivered: {}",
                        batch.len(),
                        e.without_url()
                    )),
                }
            }
        })
        .map_err(|e| format!("cannot start the audit events sender: {e}"))?;
    Ok(queue)
}

/// The CloudEvent for one decision at `source`.
fn event(source: &str, d: &Decision<'_>) -> Value {
    let separator = if d.reference.starts_with("sha256:") {
        "@"
    } else {
        ":"
    };
    json!({
        "specversion": "1.0",
        "id": crate::token::random_id().unwrap_or_default(),
        "type": "dev.regpress.pull",
        "source": source,
        "datacontenttype": "application/json",
        "subject": format!("{}{separator}{}", d.repository, d.reference),
        "time": jiff::Timestamp::now().to_string(),
        "data": {
            "repository": d.repository,
            "reference": d.reference,
            "digest": null,
            "type": d.kind,
            "method": d.method,
            "action": d.action,
            "status": d.status,
            "identity": d.identity,
            "issuer": d.issuer,
            "jti": d.jti,
            "pull_token": d.pull_token,
            "reason": d.reason,
            "user_agent": d.user_agent,
            "remote_address": d.remote_address,
        },
    })
}
