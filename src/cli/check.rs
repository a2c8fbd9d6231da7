//! `regpress check`: crawl a served registry as clients do, optionally repairing its tag lists
//! and catalog first, and the blobs the crawl finds bad after (`--repair`, the only reason it
//! takes target flags).
//!
//! Its flags and the calls to [`crate::lists::repair`], [`crate::packages::rebuild`],
//! [`crate::check::check`] and [`crate::repair::blobs`].

use std::path::PathBuf;

use clap::Args;

use super::flags::{ReportArgs, TargetArgs, target_only};
use super::print::{self, Output};
use crate::config::Config;
use crate::error::{EXIT_CODES, Error};
use crate::repair::BlobRepair;

const EXAMPLES: &str = "\
Examples:
  regpress check https://cr.example.com
  regpress check http://127.0.0.1:5000 --repo acme/base --json
  # rewrite tag lists and catalog a race left stale, crawl, and write again from the
  # config's layouts any blob found missing or damaged
  regpress check https://cr.example.com --repair --config regpress.toml";

#[derive(Args, Debug)]
#[command(after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"))]
// The target flags are only for --repair. (`mut_arg` moves each flag it changes last, which is
// why "Target:" follows "Output:" in `check --help`.)
#[command(mut_arg("to", |a| a.requires("repair")))]
#[command(mut_arg("endpoint", |a| a.requires("repair")))]
#[command(mut_arg("region", |a| a.requires("repair")))]
#[command(mut_arg("url_style", |a| a.requires("repair")))]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: every tag checked with its digest, the counts and every problem",
    "Print that report as JSON on stdout instead of the summary line",
)))]
pub(super) struct CheckArgs {
    /// The registry's base URL, e.g. https://cr.example.com or http://127.0.0.1:5000.
    #[arg(value_name = "URL")]
    url: String,
    /// Only these repositories (repeatable); default: every repository in the catalog.
    #[arg(long = "repo", value_name = "NAME")]
    repos: Vec<String>,
    /// Blobs fetched in parallel.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 8)]
    jobs: usize,
    /// First make every tag list and the catalog agree with the tags the target holds (what
    /// a race between concurrent publishers can leave), and rebuild the package index `sbom
    /// search` reads from the SBOMs the tags reach, writing to the target given with --to or
    /// --config; then crawl, and write again every blob found missing or damaged
    /// that a layout of --config holds (hashed first), and check it again.
    #[arg(long)]
    repair: bool,
    /// With --repair: a regpress.toml whose `[target]` to repair, and whose layouts hold the
    /// blobs to write again.
    #[arg(long, value_name = "FILE", requires = "repair")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    reporting: ReportArgs,
}

/// Repair (with `--repair`), then crawl; with `--repair`, write again the blobs the crawl found
/// bad that a layout of the config holds, and check them again. Problems left are an error
/// (exit 3).
pub(super) fn run(args: CheckArgs, output: Output) -> Result<(), Error> {
    let repairing = if args.repair {
        let layouts: Vec<PathBuf> = match args.config.as_deref() {
            Some(path) => Config::load(path)?
                .images
                .into_iter()
                .map(|i| i.layout)
                .collect(),
            None => Vec::new(),
        };
        let target = target_only(args.config.as_deref(), args.target)?;
        let target = crate::target::open(&target, args.jobs)?;
        let pool = crate::sync::worker_pool(args.jobs)?;
        let settled = crate::lists::repair(target.store.as_ref(), &pool)?;
        print::repaired(target.store.name(), settled.rewritten, output);
        let indexed = crate::packages::rebuild(target.store.as_ref(), &pool)?;
        print::reindexed(target.store.name(), indexed.written, output);
        Some((target, layouts))
    } else {
        None
    };
    let mut outcome =
        crate::check::check(&args.url, &args.repos, args.jobs).map_err(Error::Usage)?;
    if let Some((target, layouts)) = &repairing
        && !outcome.bad_blobs.is_empty()
    {
        let bad = std::mem::take(&mut outcome.bad_blobs);
        let done = crate::repair::blobs(target.store.as_ref(), &target.uploads, layouts, &bad)?;
        print::blobs_repaired(&done, output);
        let rewritten: Vec<(String, String, u64)> = bad
            .iter()
            .zip(&done)
            .filter(|(_, d)| matches!(d, BlobRepair::Rewritten { .. }))
            .map(|(b, _)| (b.repository.clone(), b.digest.clone(), b.size))
            .collect();
        let still_bad =
            crate::check::check_blobs(&args.url, &rewritten, args.jobs).map_err(Error::Usage)?;
        // The problems of the blobs written again are replaced by what their second check found.
        let fixed: Vec<&String> = bad
            .iter()
            .zip(&done)
            .filter(|(_, d)| matches!(d, BlobRepair::Rewritten { .. }))
            .map(|(b, _)| &b.problem)
            .collect();
        outcome.problems.retain(|p| !fixed.contains(&p));
        outcome
            .problems
            .extend(still_bad.iter().map(|b| b.problem.clone()));
        outcome.bad_blobs = bad
            .into_iter()
            .zip(&done)
            .filter(|(_, d)| matches!(d, BlobRepair::NotHeld { .. }))
            .map(|(b, _)| b)
            .chain(still_bad)
            .collect();
    }
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &outcome)?;
    }
    if args.reporting.json {
        print::json(&outcome)?;
    } else {
        print::checked(&args.url, &outcome, output);
    }
    if outcome.problems.is_empty() {
        return Ok(());
    }
    Err(Error::Check(outcome.problems))
}
