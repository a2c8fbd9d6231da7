//! Governance a registry server would enforce at push time, enforced here at publish time and by
//! the commands that tend a published catalog: tags that never move ([`immutable`]), rules for
//! which tags are kept ([`retention`]), and images taken off the shelves ([`yank`]).
//!
//! This module holds the rules as a config writes them and the shell globs they are made of;
//! each submodule turns them into decisions over what a target holds. They read the target
//! through [`crate::sync`]'s inventory and [`crate::site`]'s key names and write nothing
//! themselves except what their command is for.

pub mod immutable;
pub mod retention;
pub mod yank;

use std::collections::BTreeSet;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::error::Error;
use crate::site;
use crate::store::Store;

/// Tags that never move to another digest once published, as a config gives them: in
/// `[policy] immutable` for every repository, or in an `[[image]]` for its repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImmutableRule {
    /// The repository it applies to; `None`: every repository.
    pub repository: Option<String>,
    /// Tag globs, e.g. `v*` or `[0-9]*.[0-9]*.[0-9]*`.
    pub tags: Vec<String>,
}

/// One `[[retention]]` rule: of the tags matching `repository` and `tag`, which to keep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Repository glob (`*` stays within one path component, `**` crosses them).
    pub repository: String,
    /// Tag glob (default `*`: every tag).
    #[serde(default = "every_tag")]
    pub tag: String,
    /// Keep the newest N (semver order when every matching tag is a version, else by first
    /// publication).
    pub keep_last: Option<usize>,
    /// Keep those first published within this long, e.g. `90d`.
    pub keep_within: Option<String>,
}

fn every_tag() -> String {
    "*".to_string()
}

/// `[policy]`: the catalog-wide rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTable {
    /// Tag globs that never move, in every repository.
    #[serde(default)]
    pub immutable: Vec<String>,
}

/// Shell globs compiled once: `*`, `?`, `[…]`, `{a,b}`, and `**` across `/` when
/// `within_component` is set.
#[derive(Clone, Debug)]
pub struct Globs(GlobSet);

impl Globs {
    /// Compile `patterns`; `within_component`: `*` does not match `/` (repository names).
    pub fn new(patterns: &[String], within_component: bool) -> Result<Globs, String> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(within_component)
                .build()
                .map_err(|e| format!("pattern {pattern:?}: {e}"))?;
            set.add(glob);
        }
        set.build().map(Globs).map_err(|e| e.to_string())
    }

    /// Whether any pattern matches `text` whole.
    pub fn matches(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// Remove the tags `(repository, tag)` and their records, then settle the tag lists of their
/// repositories, the catalog and the package index's tag maps. Returns how many lists (and catalogs) were rewritten.
pub fn remove_tags<'a>(
    store: &dyn Store,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    pool: &rayon::ThreadPool,
) -> Result<u64, Error> {
    let tags: Vec<(&str, &str)> = tags.into_iter().collect();
    if tags.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = tags
        .iter()
        .flat_map(|(repo, tag)| [site::tag_key(repo, tag), site::tag_record_key(repo, tag)])
        .collect();
    let (_, failures) = crate::sync::delete_in_batches(store, &keys, pool);
    if let Some(first) = crate::sync::first_failure(failures) {
        return Err(Error::Target(first));
    }
    let repos: BTreeSet<String> = tags.iter().map(|(repo, _)| repo.to_string()).collect();
    let rewritten = crate::lists::settle(store, &repos, true, pool)?.rewritten;
    // The package index follows the tags present: `sbom search` no longer finds these.
    let removals: Vec<site::Removal> = tags
        .iter()
        .map(|(repo, tag)| site::Removal {
            key: site::tag_key(repo, tag),
            phase: site::Phase::RemoveTags,
        })
        .collect();
    crate::packages::update(store, &[], &[], &removals, pool)?;
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names_and_repository_stars_stay_in_a_component() {
        let tags = Globs::new(&["v*".into(), "[0-9]*.[0-9]*.[0-9]*".into()], false).unwrap();
        assert!(tags.matches("v1.2"));
        assert!(tags.matches("1.2.3"));
        assert!(!tags.matches("latest"));
        assert!(!tags.matches("1.2"));
        let repos = Globs::new(&["acme/*".into()], true).unwrap();
        assert!(repos.matches("acme/app"));
        assert!(!repos.matches("acme/team/app"));
        assert!(
            Globs::new(&["acme/**".into()], true)
                .unwrap()
                .matches("acme/team/app")
        );
        assert!(Globs::new(&["[".into()], false).is_err());
    }
}
