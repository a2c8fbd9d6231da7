//! regpress: publish OCI image layouts as a static container registry inside an object store.
//!
//! The pipeline is one module per arrow: [`layout`] reads, [`verify`] checks, [`site`] plans,
//! [`sync`] diffs and applies to a [`store`] opened by [`target`]; [`publish`] wires them as
//! named stages, [`cli`] drives them and [`serve`] previews the result; [`check`] crawls a
//! served registry as clients do; [`report`] says what was verified; [`auth`] is the companion
//! handler that guards private repositories with OIDC-based registry tokens; [`events`] tells
//! other systems what a publish changed; [`summary`] turns a publish report into the GitHub
//! Action's job summary. [`lists`] keeps tag lists and the catalog right under concurrent
//! publishers; [`gc`] collects what no tag reaches. [`retry`], [`duration`] and [`causes`] are
//! small leaves everyone may use. ARCHITECTURE.md draws the map; `tests/architecture.rs` keeps
//! the modules free of import cycles.

pub mod auth;
pub mod causes;
pub mod check;
pub mod cli;
pub mod config;
pub mod digest;
pub mod duration;
pub mod error;
pub mod events;
pub mod gc;
pub mod layout;
pub mod lists;
pub mod names;
pub mod progress;
pub mod publish;
pub mod report;
pub mod retry;
pub mod serve;
pub mod site;
pub mod store;
pub mod summary;
pub mod sync;
pub mod target;
pub mod verify;
