//! regpress: publish OCI image layouts as a static container registry inside an object store.
//!
//! The pipeline is one module per arrow: [`layout`] reads, [`verify`] checks, [`site`] plans,
//! [`sync`] diffs and applies to a [`store`] opened by [`target`]; [`publish`] wires them as
//! named stages, [`cli`] drives them and [`serve`] previews the result; [`check`] crawls a
//! served registry as clients do; [`report`] says what was verified; [`auth`] is the companion
//! handler that guards private repositories with OIDC-based registry tokens; [`events`] tells
//! other systems what a publish changed; [`summary`] turns a publish report into the GitHub
//! Action's job summary; [`credential`] is the `docker-credential-regpress` helper's logic.
//! [`lists`] keeps tag lists and the catalog right under concurrent publishers, [`packages`]
//! keeps the package index `sbom search` reads, [`governance`] holds immutable tags, retention
//! and yanks, and [`repair`] writes again the blobs a crawl found bad; [`gc`] collects what no
//! tag reaches. [`retry`], [`duration`] (from `regpress-auth`), [`byte_size`] and [`causes`]
//! are small leaves everyone may use. ARCHITECTURE.md draws the map; `tests/architecture.rs`
//! keeps the modules free of import cycles.
//!
//! Two parts live in crates of their own and are re-exported here, so their paths read as
//! before: [`digest`] and [`names`] (what a digest, a repository name and a tag are) in
//! `regpress-oci`, shared with the handler, and [`auth`] in `regpress-auth`, which also builds
//! as a binary of its own without the publisher (`regpress auth` calls the same library).

pub mod byte_size;
pub mod causes;
pub mod check;
pub mod cli;
pub mod config;
pub mod credential;
pub mod error;
pub mod events;
pub mod gc;
pub mod governance;
pub mod layout;
pub mod lists;
pub mod packages;
pub mod progress;
pub mod publish;
pub mod repair;
pub mod report;
pub mod retry;
pub mod serve;
pub mod site;
pub mod store;
pub mod summary;
pub mod sync;
pub mod target;
pub mod verify;

pub use regpress_auth as auth;
pub use regpress_auth::duration;
pub use regpress_oci::{digest, names};
