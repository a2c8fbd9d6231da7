//! Publish events: tell downstream systems (scanners, mirrors, audit logs) what a run changed,
//! as [CloudEvents 1.0](https://github.com/cloudevents/spec) in structured JSON mode, one HTTP
//! POST per event.
//!
//! Events are sent only once the target holds everything, so a receiver that pulls the tag it
//! is told about finds it. Delivery never fails a run that already succeeded: each event is
//! retried with backoff ([`Retry`]) and what still fails is returned as a [`Delivery`] for the
//! report and stderr. Delivery never holds a run up for long either: each POST has a timeout
//! ([`TIMEOUT`]) and all of a run's events share one budget ([`BUDGET`]); once it is spent, the
//! events not yet delivered are reported as failed without being sent.
//!
//! Types: [`TAG_PUBLISHED`] for a tag this run created or moved (built by [`published`]), and
//! [`TAG_REMOVED`] for a tag taken out of the registry (built by [`removed`], for whatever
//! removes tags — `publish --prune`, `regpress gc`). Both go through [`Sink::deliver`].

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::report::{PublishedImage, SbomReport};
use crate::retry::{Attempt, Retry};
use crate::verify::provenance::VerifiedProvenance;

/// `type` of the event for a tag created or moved.
pub const TAG_PUBLISHED: &str = "dev.regpress.tag.published";
/// `type` of the event for a tag removed from the registry.
pub const TAG_REMOVED: &str = "dev.regpress.tag.removed";
/// The Content-Type of a structured-mode JSON CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";
/// The environment variable whose value, when set, is sent as `Authorization: Bearer <value>`.
pub const TOKEN_ENV: &str = "REGPRESS_EVENTS_TOKEN";

/// How long one POST may take, by default.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long delivering all of a run's events may take, retries included, by default.
pub const BUDGET: Duration = Duration::from_secs(60);

/// `[events]` in regpress.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    /// Where to POST events (`--events-url` overrides).
    pub url: Option<String>,
    /// The events' `source`, e.g. the registry's public URL `https://cr.example.com`
    /// (default: the target as named, e.g. `s3://images/registry`).
    pub source: Option<String>,
    /// How long one POST may take, e.g. `10s` (`--events-timeout` overrides; default
    /// [`TIMEOUT`]).
    pub timeout: Option<String>,
    /// How long delivering all events may take, retries included, e.g. `60s`
    /// (`--events-budget` overrides; default [`BUDGET`]).
    pub budget: Option<String>,
}

/// `data` of a [`TAG_PUBLISHED`] event.
#[derive(Clone, Debug, Serialize)]
pub struct TagPublished {
    /// The target written (its `[[target]] name`, else where it is).
    pub target: String,
    /// The repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The digest the tag now points at.
    pub digest: Digest,
    /// Its media type (an image index or a manifest).
    pub media_type: String,
    /// Its platforms, `os/architecture[/variant]`.
    pub platforms: Vec<String>,
    /// Signature verification of the tagged digest.
    pub signature: SignatureResult,
    /// SBOM verification.
    pub sbom: SbomResult,
    /// SLSA provenance verification.
    pub provenance: ProvenanceResult,
}

/// The SLSA provenance of an image, each statement verified and judged by the policy.
#[derive(Clone, Debug, Serialize)]
pub struct ProvenanceResult {
    /// At least one provenance names the tagged digest, signed by an accepted signer.
    pub verified: bool,
    /// Each provenance as the report describes it.
    pub statements: Vec<VerifiedProvenance>,
}

/// Signature verification of a tagged digest.
#[derive(Clone, Debug, Serialize)]
pub struct SignatureResult {
    /// At least one signature over the tagged digest verified against the trust policy.
    pub verified: bool,
    /// Who signed it.
    pub signers: Vec<String>,
}

/// The SBOMs of an image, each validated and bound to the digest it describes.
#[derive(Clone, Debug, Serialize)]
pub struct SbomResult {
    /// The image has at least one SBOM and all of them passed.
    pub verified: bool,
    /// Each SBOM as the report describes it.
    pub documents: Vec<SbomReport>,
}

/// `data` of a [`TAG_REMOVED`] event.
#[derive(Clone, Debug, Serialize)]
pub struct TagRemoved {
    /// The target written (its `[[target]] name`, else where it is).
    pub target: String,
    /// The repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The digest it pointed at, when the target records it (a directory target does; an S3
    /// listing does not, and regpress sends no extra request to find out).
    pub digest: Option<Digest>,
    /// Why it was removed, when a command was told (`regpress yank --reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `specversion` of every event.
const SPEC_VERSION: &str = "1.0";
/// `datacontenttype` of every event: `data` is a JSON object.
const DATA_CONTENT_TYPE: &str = "application/json";

/// One CloudEvent 1.0 whose structured-mode JSON (serde, fields in the spec's order) is the
/// body of its POST. Built only by [`published`] and [`removed`].
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    specversion: &'static str,
    /// `id`: a random UUID.
    pub id: String,
    /// `type`: [`TAG_PUBLISHED`] or [`TAG_REMOVED`].
    #[serde(rename = "type")]
    pub ty: String,
    /// `source`: the registry, as configured or as the target is named.
    pub source: String,
    datacontenttype: &'static str,
    /// `subject`: `repository:tag`.
    pub subject: String,
    /// `time`: when the event was built, RFC 3339 in UTC.
    pub time: String,
    /// `data`: a [`TagPublished`] or a [`TagRemoved`].
    pub data: serde_json::Value,
}

/// The events for every tag of `images` that this run created or moved.
pub fn published(
    source: &str,
    target: &str,
    images: &[PublishedImage],
) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    for i in images {
        let image = &i.image;
        for tag in &i.tags_changed {
            let data = TagPublished {
                target: target.to_string(),
                repository: image.repository.clone(),
                tag: tag.clone(),
                digest: image.digest.clone(),
                media_type: image.media_type.clone(),
                platforms: image.platforms.clone(),
                signature: SignatureResult {
                    verified: !image.signers.is_empty(),
                    signers: image.signers.clone(),
                },
                sbom: SbomResult {
                    verified: !image.sboms.is_empty(),
                    documents: image.sboms.clone(),
                },
                provenance: ProvenanceResult {
                    verified: image
                        .provenance
                        .iter()
                        .any(|p| p.signer.is_some() && p.subjects.contains(&image.digest)),
                    statements: image.provenance.clone(),
                },
            };
            events.push(event(
                source,
                TAG_PUBLISHED,
                &format!("{}:{tag}", image.repository),
                &data,
            )?);
        }
    }
    Ok(events)
}

/// The event for a tag removed from the registry at `source`.
pub fn removed(source: &str, removed: &TagRemoved) -> Result<Event, String> {
    let subject = format!("{}:{}", removed.repository, removed.tag);
    event(source, TAG_REMOVED, &subject, removed)
}

fn event(source: &str, ty: &str, subject: &str, data: &impl Serialize) -> Result<Event, String> {
    let data = serde_json::to_value(data)
        .map_err(|e| format!("cannot encode {ty} event for {subject}: {e}"))?;
    Ok(Event {
        specversion: SPEC_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        ty: ty.to_string(),
        source: source.to_string(),
        datacontenttype: DATA_CONTENT_TYPE,
        subject: subject.to_string(),
        time: rfc3339(jiff::Timestamp::now()),
        data,
    })
}

/// `time` as RFC 3339 in UTC (`Z`), with 0, 3, 6 or 9 fractional digits, whichever is exact:
/// how these events have always written it.
fn rfc3339(t: jiff::Timestamp) -> String {
    let ns = t.subsec_nanosecond();
    let digits = match ns {
        0 => 0,
        _ if ns % 1_000_000 == 0 => 3,
        _ if ns % 1_000 == 0 => 6,
        _ => 9,
    };
    format!("{t:.digits$}")
}

/// Where events go.
#[derive(Clone, Debug)]
pub struct Sink {
    url: reqwest::Url,
    token: Option<String>,
    retry: Retry,
    timeout: Duration,
    budget: Duration,
}

/// What became of a run's events.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delivery {
    /// The receiver, without query or credentials (they may hold secrets).
    pub url: String,
    /// Events the receiver accepted (2xx).
    pub delivered: Vec<Sent>,
    /// Events that could not be delivered, with why.
    pub failed: Vec<Sent>,
}

/// One event sent (or not).
#[derive(Clone, Debug, Serialize)]
pub struct Sent {
    /// Its `id`.
    pub id: String,
    /// Its `type`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Its `subject` (`repository:tag`).
    pub subject: String,
    /// Why it was not delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Delivery {
    /// Add what became of another batch's events to the same receiver.
    pub fn absorb(&mut self, other: Delivery) {
        self.delivered.extend(other.delivered);
        self.failed.extend(other.failed);
    }

    /// Nothing sent to `sink`: the events could not be built.
    pub fn not_built(sink: &Sink, error: String) -> Delivery {
        Delivery {
            url: redact(&sink.url),
            delivered: Vec::new(),
            failed: vec![Sent {
                id: String::new(),
                ty: TAG_PUBLISHED.to_string(),
                subject: String::new(),
                error: Some(error),
            }],
        }
    }
}

impl Sink {
    /// A receiver at `url` (http or https); the bearer token, when any, is sent with each POST.
    pub fn new(url: &str, token: Option<String>) -> Result<Sink, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            format!(
                "events URL {:?}: {e} (give an http:// or https:// URL)",
                redact_str(url)
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "events URL {}: scheme {}: only http:// and https:// are supported",
                redact(&parsed),
                parsed.scheme()
            ));
        }
        Ok(Sink {
            url: parsed,
            token: token.filter(|t| !t.is_empty()),
            retry: Retry {
                attempts: 5,
                base: Duration::from_millis(500),
                max: Duration::from_secs(8),
            },
            timeout: TIMEOUT,
            budget: BUDGET,
        })
    }

    /// The same receiver with another timeout per POST and budget for all of a run's events.
    pub fn with_limits(mut self, timeout: Duration, budget: Duration) -> Sink {
        self.timeout = timeout;
        self.budget = budget;
        self
    }

    /// POST each event in order, each retried on 408, 429, 5xx and network errors, until
    /// every event is delivered or the budget is spent; the events left are reported as not
    /// delivered. (A retry's backoff, at most 8 s, may end after the budget; nothing is sent
    /// then.)
    pub fn deliver(&self, events: Vec<Event>) -> Delivery {
        let mut delivery = Delivery {
            url: redact(&self.url),
            ..Delivery::default()
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build();
        let deadline = Instant::now() + self.budget;
        for event in events {
            let mut sent = Sent {
                id: event.id.clone(),
                ty: event.ty.clone(),
                subject: event.subject.clone(),
                error: None,
            };
            let result = match &client {
                Ok(client) => self.post(client, &event, deadline),
                Err(e) => Err(format!("cannot build HTTP client: {e}")),
            };
            match result {
                Ok(()) => delivery.delivered.push(sent),
                Err(e) => {
                    sent.error = Some(e);
                    delivery.failed.push(sent);
                }
            }
        }
        delivery
    }

    fn post(
        &self,
        client: &reqwest::blocking::Client,
        event: &Event,
        deadline: Instant,
    ) -> Result<(), String> {
        let body = serde_json::to_vec(event).map_err(|e| format!("cannot encode event: {e}"))?;
        let mut last: Option<String> = None;
        self.retry.run(|| {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let spent = format!(
                    "the budget for delivering events ({:?}) ran out",
                    self.budget
                );
                return Attempt::Permanent(match &last {
                    Some(e) => format!("{e}; not retried: {spent}"),
                    None => format!("not sent: {spent}"),
                });
            }
            let mut request = client
                .post(self.url.clone())
                .timeout(self.timeout.min(left))
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(body.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let attempt = match request.send() {
                Ok(r) if r.status().is_success() => Attempt::Done(()),
                Ok(r) => {
                    let status = r.status();
                    let why = format!("{} answered HTTP {status}", redact(&self.url));
                    let transient = status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error();
                    if transient {
                        Attempt::Transient(why)
                    } else {
                        Attempt::Permanent(why)
                    }
                }
                // The error's own URL may carry a secret in its query: leave it out.
                Err(e) => Attempt::Transient(format!(
                    "{}: {}",
                    redact(&self.url),
                    crate::causes::chain(&e.without_url())
                )),
            };
            if let Attempt::Transient(why) = &attempt {
                last = Some(why.clone());
            }
            attempt
        })
    }
}

/// A URL fit for logs and reports: no user, password, query or fragment.
fn redact(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The part of an unparsable URL before any `?` or `@` that could start a secret.
fn redact_str(url: &str) -> String {
    let end = url.find(['?', '@', '#']).unwrap_or(url.len());
    format!("{}…", &url[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_secrets_never_shown() {
        let sink = Sink::new("https://user:pw@hooks.example.com/in?token=s3cret", None).unwrap();
        assert_eq!(redact(&sink.url), "https://hooks.example.com/in");
        let e = Sink::new("ftp://h/x", None).unwrap_err();
        assert!(e.contains("only http:// and https://"), "{e}");
        let e = Sink::new("not a url?token=s3cret", None).unwrap_err();
        assert!(!e.contains("s3cret") && e.contains("give an http"), "{e}");
    }

    #[test]
    fn removed_events_follow_the_spec() {
        let digest = Digest::of_bytes(b"x");
        let gone = TagRemoved {
            target: "r2".into(),
            repository: "acme/app".into(),
            tag: "1.0".into(),
            reason: None,
            digest: Some(digest.clone()),
        };
        let event = removed("https://cr.example.com", &gone).unwrap();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], TAG_REMOVED);
        assert_eq!(json["source"], "https://cr.example.com");
        assert_eq!(json["subject"], "acme/app:1.0");
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["data"]["digest"], digest.as_str());
        assert_eq!(json["id"].as_str().unwrap().len(), 36);
        assert!(
            json["time"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
        // The SDK this replaced wrote the spec's order; receivers that read the body as text
        // see the same.
        let body = serde_json::to_string(&event).unwrap();
        let at = |k: &str| body.find(&format!("\"{k}\":")).unwrap();
        let order = [
            "specversion",
            "id",
            "type",
            "source",
            "datacontenttype",
            "subject",
            "time",
            "data",
        ];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{body}");
    }

    #[test]
    fn time_is_utc_with_as_many_fraction_digits_as_exact() {
        let at = |s: i64, ns: i32| rfc3339(jiff::Timestamp::new(s, ns).unwrap());
        assert_eq!(at(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(at(1_700_000_000, 120_000_000), "2023-11-14T22:13:20.120Z");
        assert_eq!(
            at(1_700_000_000, 123_456_000),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            at(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(at(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
    }
}
