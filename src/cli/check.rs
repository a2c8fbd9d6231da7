//! `regpress check`: crawl a served registry as clients do, optionally repairing its tag lists
//! and catalog first (`--repair`, the only reason it takes target flags).
//!
//! Its flags and the calls to [`crate::lists::repair`] and [`crate::check::check`].

use std::path::PathBuf;

use clap::Args;

use super::flags::{ReportArgs, TargetArgs, target_only};
use super::print::{self, Output};
use crate::error::{EXIT_CODES, Error};

const EXAMPLES: &str = "\
Examples:
  regpress check https://cr.example.com
  regpress check http://127.0.0.1:5000 --repo acme/base --json
  # rewrite tag lists and catalog a race left stale, then crawl
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
    /// a race between concurrent publishers can leave), writing to the target given with
    /// --to or --config; then crawl.
    #[arg(long)]
    repair: bool,
    /// With --repair: a regpress.toml whose `[target]` to repair.
    #[arg(long, value_name = "FILE", requires = "repair")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    reporting: ReportArgs,
}

/// Repair (with `--repair`), then crawl; problems found are an error (exit 3).
pub(super) fn run(args: CheckArgs, output: Output) -> Result<(), Error> {
    if args.repair {
        let target = target_only(args.config.as_deref(), args.target)?;
        let store = crate::target::open(&target, args.jobs)?.store;
        let pool = crate::sync::worker_pool(args.jobs)?;
        let settled = crate::lists::repair(store.as_ref(), &pool)?;
        print::repaired(store.name(), settled.rewritten, output);
    }
    let outcome = crate::check::check(&args.url, &args.repos, args.jobs).map_err(Error::Usage)?;
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
