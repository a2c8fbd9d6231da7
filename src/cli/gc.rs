//! `regpress gc`: delete what no tag reaches, once unreachable for longer than a grace period.
//!
//! Its flags and the call to [`crate::gc::gc`].

use std::path::PathBuf;

use clap::Args;

use super::flags::{ReportArgs, TargetArgs, target_only};
use super::print::{self, Output};
use crate::error::{EXIT_CODES, Error};

const EXAMPLES: &str = "\
Examples:
  # what would be deleted, as JSON; deletes nothing
  regpress gc --config regpress.toml --dry-run --json
  # mark what no tag reaches; delete what an earlier run marked over a week ago (the
  # default grace), if still unreachable: run it daily or weekly
  regpress gc --to s3://images --endpoint https://<account>.r2.cloudflarestorage.com
  # no publish can be running: delete everything unreachable now
  regpress gc --to ./site --grace 0s";

#[derive(Args, Debug)]
#[command(after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"))]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: objects listed, reachable, unreachable (with the keys to delete), kept \
     in grace, marked, deleted, marks cleared, missing",
    "Print that report as JSON on stdout instead of the lines",
)))]
pub(super) struct GcArgs {
    /// A regpress.toml whose `[target]` to collect (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Delete an unreachable object only once an earlier run marked it unreachable at least
    /// this long ago (a client may be mid-pull, a publish may have found it and be about to
    /// tag it); objects younger than this are not even marked. Longer than any publish takes:
    /// e.g. 7d, 36h, 30m; 0s deletes everything unreachable at once.
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    grace: String,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    reporting: ReportArgs,
    /// Requests in flight at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16)]
    jobs: usize,
}

/// Collect, and say what was (or would be) deleted.
pub(super) fn run(args: GcArgs, output: Output) -> Result<(), Error> {
    let options = crate::gc::Options {
        target: target_only(args.config.as_deref(), args.target)?,
        grace: crate::duration::parse_duration(&args.grace)
            .map_err(|e| Error::Usage(format!("--grace: {e}")))?,
        dry_run: args.dry_run,
        jobs: args.jobs,
    };
    let report = crate::gc::gc(&options)?;
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &report)?;
    }
    if args.reporting.json {
        return print::json(&report);
    }
    print::collected(&report, &args.grace, output);
    Ok(())
}
