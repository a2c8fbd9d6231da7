//! Immutable tags: once published, a tag matching an immutable pattern only ever points at the
//! digest it was first given.
//!
//! Checked before any write: a publish that would move one is refused whole ([`guard`]),
//! naming the tag, the digest it holds and the one offered; publishing the same digest again
//! is a no-op. A new immutable tag is created with `If-None-Match: *` where the store honours
//! it ([`crate::sync::Change::create_only`]), so of two publishers racing to create it with
//! different digests only one succeeds. `--prune` and retention never remove one.

use std::collections::HashMap;

use crate::digest::Digest;
use crate::error::Error;
use crate::governance::{Globs, ImmutableRule};
use crate::site::{self, Phase, PublishedTag};
use crate::store::Store;
use crate::sync::{Change, Inventory};

/// The immutable patterns, compiled.
#[derive(Clone, Debug, Default)]
pub struct Immutable {
    rules: Vec<(Option<String>, Globs)>,
}

impl Immutable {
    /// Compile `rules`.
    pub fn new(rules: &[ImmutableRule]) -> Result<Immutable, String> {
        let rules = rules
            .iter()
            .map(|r| Ok((r.repository.clone(), Globs::new(&r.tags, false)?)))
            .collect::<Result<_, String>>()?;
        Ok(Immutable { rules })
    }

    /// Whether `repository:tag` is immutable.
    pub fn covers(&self, repository: &str, tag: &str) -> bool {
        self.rules.iter().any(|(repo, globs)| {
            repo.as_deref().is_none_or(|r| r == repository) && globs.matches(tag)
        })
    }
}

/// Before any write: refuse the run if it would move an immutable tag of `tags` that the
/// target holds (each such tag whose stored bytes may differ is read back: one GET), and mark
/// the immutable tags it does not hold yet as create-only.
pub fn guard(
    store: &dyn Store,
    inventory: &Inventory,
    tags: &[PublishedTag],
    changes: &mut [Change],
    immutable: &Immutable,
) -> Result<(), Error> {
    let mut moved = Vec::new();
    let at: HashMap<String, usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.object.phase == Phase::Tags)
        .map(|(i, c)| (c.object.key.clone(), i))
        .collect();
    for tag in tags
        .iter()
        .filter(|t| immutable.covers(&t.repository, &t.tag))
    {
        let key = site::tag_key(&tag.repository, &tag.tag);
        let Some(change) = at.get(&key).map(|&i| &mut changes[i]) else {
            continue;
        };
        if !inventory.objects.contains_key(&key) {
            change.create_only = true;
            continue;
        }
        if !change.write {
            continue;
        }
        // Written again: other bytes, or only other headers. Which, the bytes say.
        let held = match store.get(&key)? {
            Some(fetched) => Digest::of_bytes(&fetched.bytes),
            None => {
                change.create_only = true;
                continue;
            }
        };
        if held != tag.digest {
            moved.push(format!(
                "tag {}:{} is immutable and holds {held}; this publish offers {}",
                tag.repository, tag.tag, tag.digest
            ));
        }
    }
    if moved.is_empty() {
        return Ok(());
    }
    Err(Error::Governance(format!(
        "{} (target {}; nothing was written: publish under a new tag, or take the old image \
         down with `regpress yank` first)",
        moved.join("; "),
        store.name()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_covers_its_repository_or_every_one() {
        let rules = [
            ImmutableRule {
                repository: None,
                tags: vec!["v*".into()],
            },
            ImmutableRule {
                repository: Some("acme/app".into()),
                tags: vec!["stable".into()],
            },
        ];
        let immutable = Immutable::new(&rules).unwrap();
        assert!(immutable.covers("any/repo", "v1"));
        assert!(immutable.covers("acme/app", "stable"));
        assert!(!immutable.covers("other", "stable"));
        assert!(!immutable.covers("acme/app", "latest"));
    }
}
