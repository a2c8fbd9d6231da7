//! Tag lists and the catalog that agree with the tags present, whatever concurrent runs do.
//!
//! `tags/list` and `_catalog` are the only keys two publishers both rewrite: each computes them
//! from what it saw when it started, so the later write can drop the other's new tag. After its
//! writes, a run therefore *settles* every list it wrote: it derives the list from a fresh
//! listing of the target (a repository's tags are its `manifests/<tag>` keys; the catalog holds
//! the repositories that have tags and a tag list) and compares it with the stored one.
//!
//! - Where the store honours conditional writes (R2, AWS S3, the directory target), a stored
//!   list that disagrees is replaced with compare-and-swap (`If-Match` on the ETag read before
//!   listing); a lost race reads, lists and tries again. A successful swap is final: any tag
//!   written after that listing belongs to a run whose own swap comes later.
//! - Where it does not (Garage 2.5 ignores the headers), the list is written and the run
//!   re-reads and re-lists until a round finds them in agreement. The last write to a list is
//!   followed by its writer's own check, which sees every tag written before it, so the final
//!   state is right once every run has finished.
//!
//! The catalog is settled the same way, from the stored catalog and the repositories the run
//! changed where the store honours compare-and-swap, and from a listing of every key where it
//! does not ([`settle_catalog`]). `regpress check --repair` settles every repository's list and
//! the catalog from one listing of everything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use rayon::prelude::*;

use crate::site::{self, CATALOG_KEY, SiteObject};
use crate::store::{Body, Condition, Fetched, ObjectInfo, Store, StoreError, Support};

/// Rounds of read, list and write before a list that keeps changing is reported.
pub(crate) const MAX_ROUNDS: u32 = 12;

/// What settling rewrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Lists (and catalogs) written or removed because they disagreed with the tags present.
    pub rewritten: u64,
}

/// Settle the tag lists of `repositories` (in parallel on `pool`), then, with `catalog`, the
/// catalog: each of `repositories` in it when it has tags (and now a tag list), out of it when
/// not (see [`settle_catalog`]).
pub fn settle(
    store: &dyn Store,
    repositories: &BTreeSet<String>,
    catalog: bool,
    pool: &rayon::ThreadPool,
) -> Result<Settled, StoreError> {
    // Whether each repository has tags, as its list's last settling round found.
    let tagged = Mutex::new(BTreeMap::new());
    let rewritten: Vec<u64> = pool.install(|| {
        repositories
            .par_iter()
            .map(|repo| {
                settle_key(store, &site::tag_list_key(repo), || {
                    let listing =
                        store.list(&format!("{}manifests/", site::repository_prefix(repo)))?;
                    let list = site::tags_in(listing.iter().map(|i| i.key.as_str()))
                        .remove(repo)
                        .map(|tags| site::tag_list_object(repo, &tags));
                    if let Ok(mut tagged) = tagged.lock() {
                        tagged.insert(repo.clone(), list.is_some());
                    }
                    Ok(list)
                })
            })
            .collect::<Result<_, StoreError>>()
    })?;
    let mut settled = Settled {
        rewritten: rewritten.iter().sum(),
    };
    if catalog {
        let tagged = tagged.into_inner().map_err(|_| {
            StoreError::new(
                store.name(),
                Some(CATALOG_KEY),
                "internal: a listing panicked",
            )
        })?;
        settled.rewritten += settle_catalog(store, &tagged)?;
    }
    Ok(settled)
}

/// Settle the catalog after a run changed the repositories of `tagged` (each: whether it has
/// tags, and so a tag list, now). Where the store honours compare-and-swap, the catalog is the
/// stored one with those repositories added or taken out, swapped against the read it was
/// made from: a successful swap built on every earlier one, so no run's repository is lost, and
/// the cost is what the change costs, whatever the size of the catalog. Elsewhere (Garage) a
/// write may land on a newer catalog than the one it was made from, so the catalog is derived
/// from a listing of every key of `v2/` each round (a request per 1,000 keys): the last write's
/// own check then sees every repository tagged before it.
fn settle_catalog(store: &dyn Store, tagged: &BTreeMap<String, bool>) -> Result<u64, StoreError> {
    if store.conditional_writes()? != Support::Yes {
        return settle_key(store, CATALOG_KEY, || listed_catalog(store));
    }
    settle_key_from(store, CATALOG_KEY, |current| {
        let mut repositories = match current {
            Some(fetched) => stored_catalog(store, &fetched.bytes)?,
            None => BTreeSet::new(),
        };
        for (repo, has_tags) in tagged {
            if *has_tags {
                repositories.insert(repo.clone());
            } else {
                repositories.remove(repo);
            }
        }
        Ok(Some(site::catalog_object(&repositories)))
    })
}

/// The catalog a listing of every key of `v2/` calls for.
fn listed_catalog(store: &dyn Store) -> Result<Option<SiteObject>, StoreError> {
    Ok(Some(site::catalog_object(&catalog_of(&store.list("v2/")?))))
}

/// The repositories of a stored catalog.
fn stored_catalog(store: &dyn Store, bytes: &[u8]) -> Result<BTreeSet<String>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Catalog {
        repositories: BTreeSet<String>,
    }
    serde_json::from_slice::<Catalog>(bytes)
        .map(|c| c.repositories)
        .map_err(|e| {
            StoreError::new(
                store.name(),
                Some(CATALOG_KEY),
                format!("existing catalog is not a catalog ({e}); run `regpress check --repair`"),
            )
        })
}

/// Every repository that has tags or a tag list in `listing`.
fn repositories_in(listing: &[ObjectInfo]) -> BTreeSet<String> {
    let mut repos: BTreeSet<String> = site::tags_in(listing.iter().map(|i| i.key.as_str()))
        .into_keys()
        .collect();
    repos.extend(
        listing
            .iter()
            .filter_map(|i| site::parse_tag_list_key(&i.key))
            .map(str::to_string),
    );
    repos
}

/// The catalog a listing of `v2/` calls for: repositories with at least one tag and a tag list
/// (a run killed between a new repository's tags and its list leaves it out until it has one).
fn catalog_of(listing: &[ObjectInfo]) -> BTreeSet<String> {
    let listed: BTreeSet<&str> = listing
        .iter()
        .filter_map(|i| site::parse_tag_list_key(&i.key))
        .collect();
    site::tags_in(listing.iter().map(|i| i.key.as_str()))
        .into_keys()
        .filter(|repo| listed.contains(repo.as_str()))
        .collect()
}

/// Bring `key` in line with `truth` (the object it should hold, `None` for no object): read
/// it, derive the truth, and write (or remove) until they agree. Returns the writes made.
pub(crate) fn settle_key(
    store: &dyn Store,
    key: &str,
    truth: impl Fn() -> Result<Option<SiteObject>, StoreError>,
) -> Result<u64, StoreError> {
    settle_key_from(store, key, |_| truth())
}

/// [`settle_key`], with the truth derived from what was read each round (`None`: no object).
fn settle_key_from(
    store: &dyn Store,
    key: &str,
    truth: impl Fn(Option<&Fetched>) -> Result<Option<SiteObject>, StoreError>,
) -> Result<u64, StoreError> {
    let mut writes = 0;
    for round in 0..MAX_ROUNDS {
        // Read before listing: a compare-and-swap against this read then covers every tag
        // written before the listing.
        let current = store.get(key)?;
        let wanted = truth(current.as_ref())?;
        let Some(wanted) = wanted else {
            if current.is_none() {
                return Ok(writes);
            }
            store.delete(key)?;
            writes += 1;
            continue;
        };
        let Body::Bytes(bytes) = &wanted.body else {
            return Err(StoreError::new(
                store.name(),
                Some(key),
                "internal: a list planned as a file",
            ));
        };
        if current.as_ref().is_some_and(|c| c.bytes[..] == bytes[..]) {
            return Ok(writes);
        }
        let condition = match &current {
            None => Some(Condition::Absent),
            Some(c) => c.etag.clone().map(Condition::Matches),
        };
        match condition {
            Some(condition) if store.conditional_writes()? == Support::Yes => {
                let attributes = wanted.attributes();
                if store.put_if(key, &wanted.body, &attributes, &condition)? {
                    return Ok(writes + 1);
                }
                // Another run swapped first: back off a little, then read and list again.
                std::thread::sleep(Duration::from_millis(
                    fastrand::u64(10..=50) << round.min(4),
                ));
            }
            _ => {
                store.put(key, &wanted.body, &wanted.attributes())?;
                writes += 1;
            }
        }
    }
    Err(StoreError::new(
        store.name(),
        Some(key),
        format!(
            "still changing under concurrent writers after {MAX_ROUNDS} rounds; re-run, or run `regpress check --repair`"
        ),
    ))
}

/// `regpress check --repair`: settle every repository's tag list (removing the lists of
/// repositories left without tags) and the catalog, from one listing of `v2/`.
pub fn repair(store: &dyn Store, pool: &rayon::ThreadPool) -> Result<Settled, StoreError> {
    let listing = store.list("v2/")?;
    let mut settled = settle(store, &repositories_in(&listing), false, pool)?;
    settled.rewritten += settle_key(store, CATALOG_KEY, || listed_catalog(store))?;
    Ok(settled)
}
