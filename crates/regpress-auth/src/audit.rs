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

use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use serde_json::{Value, json};

use crate::log;

/// Events waiting to be written at most; more are dropped (and logged).
const QUEUE: usize = 10_000;

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
    /// Open `path` for appending (created if missing) and start the writer thread; events'
    /// `source` is `source` (the realm).
    pub fn open(path: &Path, source: &str) -> Result<Audit, String> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("audit log {}: {e}", path.display()))?;
        let (queue, lines) = sync_channel::<String>(QUEUE);
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("regpress-audit".to_string())
            .spawn(move || {
                for line in lines {
                    if let Err(e) = file.write_all(line.as_bytes()) {
                        log::line(format_args!("cannot write the audit log {shown}: {e}"));
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
        let separator = if d.reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        json!({
            "specversion": "1.0",
            "id": crate::token::random_id().unwrap_or_default(),
            "type": "dev.regpress.pull",
            "source": self.source,
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
}
