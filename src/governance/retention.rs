//! Retention: `[[retention]]` rules saying which tags of which repositories are kept.
//!
//! A rule matches tags by repository and tag glob, and keeps the newest `keep_last` of them
//! in each repository and those first published within `keep_within`. A tag matched by some
//! rule and kept by none is expired; a tag no rule matches is never touched; a tag kept by any
//! rule stays. "Newest" is semver order when every tag a rule matches in a repository is a
//! version (`1.2.3`, `v1.2.3-rc.1`), else the time the tag was first published, which publish
//! records as `v2/<repo>/_tags/<tag>` (see [`crate::site::tag_record_key`]); a tag published
//! before that record existed is dated by its own last write.
//!
//! `publish --prune` keeps what a rule keeps among the tags its config no longer names;
//! `regpress retain` removes the expired tags; neither removes an immutable tag.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::duration::parse_duration;
use crate::error::Error;
use crate::governance::immutable::Immutable;
use crate::governance::{Globs, RetentionRule};
use crate::site;
use crate::store::{ObjectInfo, Store};

/// A tag of the target and when it was first published (if the target says).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dated {
    /// Repository name.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// When it was first published.
    pub first_published: Option<Timestamp>,
}

/// Every tag among `objects` (a listing), dated by its record, else by its own last write.
pub fn dated<'a>(objects: impl IntoIterator<Item = &'a ObjectInfo>) -> Vec<Dated> {
    /// Per tag: its own last write, if it is there at all; its record's time.
    type Seen = (Option<Option<Timestamp>>, Option<Timestamp>);
    let mut tags: BTreeMap<(String, String), Seen> = BTreeMap::new();
    for info in objects {
        if let Some((repo, tag)) = site::parse_tag_key(&info.key) {
            let entry = tags.entry((repo.to_string(), tag.to_string())).or_default();
            entry.0 = Some(info.modified);
        } else if let Some((repo, tag)) = site::parse_tag_record_key(&info.key) {
            let entry = tags.entry((repo.to_string(), tag.to_string())).or_default();
            entry.1 = info.modified;
        }
    }
    tags.into_iter()
        .filter_map(|((repository, tag), (written, recorded))| {
            Some(Dated {
                repository,
                tag,
                first_published: recorded.or(written?),
            })
        })
        .collect()
}

struct Rule {
    repositories: Globs,
    tags: Globs,
    keep_last: Option<usize>,
    keep_within: Option<Duration>,
}

/// The rules, compiled.
#[derive(Default)]
pub struct Retention {
    rules: Vec<Rule>,
}

impl Retention {
    /// Compile `rules`; each must keep something (`keep_last`, `keep_within` or both).
    pub fn new(rules: &[RetentionRule]) -> Result<Retention, String> {
        let rules = rules
            .iter()
            .map(|r| {
                if r.keep_last.is_none() && r.keep_within.is_none() {
                    return Err(format!(
                        "the rule for {} tags {} keeps nothing: give keep_last, keep_within or both",
                        r.repository, r.tag
                    ));
                }
                Ok(Rule {
                    repositories: Globs::new(std::slice::from_ref(&r.repository), true)?,
                    tags: Globs::new(std::slice::from_ref(&r.tag), false)?,
                    keep_last: r.keep_last,
                    keep_within: r.keep_within.as_deref().map(parse_duration).transpose()?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Retention { rules })
    }

    /// Whether there are any rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Of `tags`, every one some rule matches, with whether a rule keeps it (`true`) or it
    /// has expired (`false`), as of `now`.
    pub fn judge(&self, tags: &[Dated], now: Timestamp) -> BTreeMap<(String, String), bool> {
        let mut verdicts = BTreeMap::new();
        for rule in &self.rules {
            let mut by_repo: HashMap<&str, Vec<&Dated>> = HashMap::new();
            for t in tags {
                if rule.repositories.matches(&t.repository) && rule.tags.matches(&t.tag) {
                    by_repo.entry(&t.repository).or_default().push(t);
                }
            }
            for (_, mut matched) in by_repo {
                newest_first(&mut matched);
                for (i, t) in matched.iter().enumerate() {
                    let recent = rule.keep_within.is_some_and(|within| {
                        t.first_published.is_some_and(|at| {
                            now.duration_since(at).unsigned_abs() <= within || at > now
                        })
                    });
                    let kept = rule.keep_last.is_some_and(|n| i < n) || recent;
                    let verdict = verdicts
                        .entry((t.repository.clone(), t.tag.clone()))
                        .or_insert(false);
                    *verdict |= kept;
                }
            }
        }
        verdicts
    }
}

/// What `regpress retain` did (or, on a dry run, would do) to one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The target.
    pub target: String,
    /// True when nothing was removed on purpose.
    pub dry_run: bool,
    /// Tags some rule matches, all told.
    pub matched: u64,
    /// Of those, kept by a rule.
    pub kept: u64,
    /// Expired tags removed (a dry run: to remove).
    pub removed_tags: Vec<Dated>,
    /// Expired tags left because they are immutable.
    pub immutable_kept: Vec<Dated>,
    /// Tag lists and catalogs rewritten to match.
    pub lists_rewritten: u64,
}

/// Apply `retention` to `store`: remove every expired tag that is not `immutable` (and its
/// record), then settle the tag lists and catalog. One listing of `v2/`, then the deletes.
pub fn retain(
    store: &dyn Store,
    retention: &Retention,
    immutable: &Immutable,
    dry_run: bool,
    pool: &rayon::ThreadPool,
) -> Result<Report, Error> {
    let listing = store.list("v2/")?;
    let tags = dated(&listing);
    let verdicts = retention.judge(&tags, Timestamp::now());
    let mut report = Report {
        target: store.name().to_string(),
        dry_run,
        matched: verdicts.len() as u64,
        kept: verdicts.values().filter(|kept| **kept).count() as u64,
        ..Report::default()
    };
    for tag in tags {
        if verdicts.get(&(tag.repository.clone(), tag.tag.clone())) != Some(&false) {
            continue;
        }
        if immutable.covers(&tag.repository, &tag.tag) {
            report.immutable_kept.push(tag);
        } else {
            report.removed_tags.push(tag);
        }
    }
    if dry_run {
        return Ok(report);
    }
    let removed = report
        .removed_tags
        .iter()
        .map(|t| (t.repository.as_str(), t.tag.as_str()));
    report.lists_rewritten = super::remove_tags(store, removed, pool)?;
    Ok(report)
}

/// Semver order when every tag is a version, else first publication (unknown times last),
/// newest first; ties by tag, highest first.
fn newest_first(tags: &mut [&Dated]) {
    let versions: Option<Vec<semver::Version>> = tags.iter().map(|t| version(&t.tag)).collect();
    match versions {
        Some(_) => tags.sort_by_key(|t| std::cmp::Reverse(version(&t.tag))),
        None => tags.sort_by(|a, b| (b.first_published, &b.tag).cmp(&(a.first_published, &a.tag))),
    }
}

fn version(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(repo: &str, tag: &str, age_days: i64, now: Timestamp) -> Dated {
        Dated {
            repository: repo.into(),
            tag: tag.into(),
            first_published: Some(now - jiff::SignedDuration::from_hours(24 * age_days)),
        }
    }

    #[test]
    fn keep_last_by_semver_or_by_time_and_keep_within() {
        let now = Timestamp::now();
        let tags = vec![
            tag("a", "v1.10.0", 30, now),
            tag("a", "v1.9.0", 1, now), // published later, but an older version
            tag("a", "v1.2.0", 60, now),
            tag("b", "nightly-1", 3, now),
            tag("b", "nightly-2", 2, now),
            tag("b", "nightly-3", 1, now),
            tag("b", "latest", 100, now),
        ];
        let rules = [
            RetentionRule {
                repository: "a".into(),
                tag: "v*".into(),
                keep_last: Some(2),
                keep_within: None,
            },
            RetentionRule {
                repository: "*".into(),
                tag: "nightly-*".into(),
                keep_last: Some(1),
                keep_within: Some("50h".into()),
            },
        ];
        let verdicts = Retention::new(&rules).unwrap().judge(&tags, now);
        let kept = |r: &str, t: &str| verdicts.get(&(r.to_string(), t.to_string())).copied();
        assert_eq!(kept("a", "v1.10.0"), Some(true));
        assert_eq!(kept("a", "v1.9.0"), Some(true));
        assert_eq!(kept("a", "v1.2.0"), Some(false));
        assert_eq!(kept("b", "nightly-3"), Some(true), "the last");
        assert_eq!(kept("b", "nightly-2"), Some(true), "within 50h");
        assert_eq!(kept("b", "nightly-1"), Some(false));
        assert_eq!(kept("b", "latest"), None, "no rule matches it");
    }

    #[test]
    fn a_rule_that_keeps_nothing_is_refused() {
        let rule = RetentionRule {
            repository: "*".into(),
            tag: "*".into(),
            ..RetentionRule::default()
        };
        let error = Retention::new(&[rule]).err().unwrap_or_default();
        assert!(error.contains("keeps nothing"), "{error}");
    }
}
