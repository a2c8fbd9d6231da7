//! `regpress summarize`: a publish report as a Markdown job summary and GitHub step outputs
//! (what the GitHub Action runs after `publish --report`).
//!
//! Its flags and the calls to [`crate::summary`]. The Markdown is this command's product, so
//! it is written here, not by [`super::print`].

use std::path::PathBuf;

use clap::Args;

use crate::error::{EXIT_CODES, Error};
use crate::summary::{self, Reports};

const EXAMPLES: &str = "\
Examples:
  # what the GitHub Action runs after publish
  regpress summarize --report report.json --summary \"$GITHUB_STEP_SUMMARY\" --output \"$GITHUB_OUTPUT\"
  # a plan as a pull-request comment
  regpress publish --config regpress.toml --dry-run --report plan.json
  regpress summarize --report plan.json > plan.md
  # a publish that failed (exit 3) and left no report
  regpress summarize --exit-code 3 --summary \"$GITHUB_STEP_SUMMARY\"";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(super) struct SummarizeArgs {
    /// The JSON report of `regpress publish --report FILE` (a dry run's too).
    #[arg(long, value_name = "FILE", required_unless_present = "exit_code")]
    report: Option<PathBuf>,
    /// The publish's exit code. Not 0: the summary says the publish failed (exit N, and what
    /// N means) and to see the log, whether or not the report exists (a failed publish
    /// writes none); the step outputs are `digests` = {} and an empty `report`. A publish to
    /// several targets that failed on some reports the others: that report is summarised too.
    #[arg(long, value_name = "N")]
    exit_code: Option<i32>,
    /// Append the Markdown summary to this file, e.g. "$GITHUB_STEP_SUMMARY" [default: print
    /// it on stdout].
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Append the step outputs `digests` (JSON: {"repo:tag": "sha256:…"}) and `report` (the
    /// report's path) to this file, e.g. "$GITHUB_OUTPUT".
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Write the summary and the step outputs.
pub(super) fn run(args: SummarizeArgs) -> Result<(), Error> {
    // A publish to several targets that failed on some still reports the others: summarise it.
    let partial = match (args.exit_code, &args.report) {
        (Some(code), Some(path)) if code != 0 && path.exists() => {
            Reports::load(path).ok().filter(Reports::is_replicated)
        }
        _ => None,
    };
    let (markdown, digests, report_path) = match (args.exit_code, &args.report) {
        (Some(code), Some(path)) if let Some(report) = &partial => (
            format!(
                "{}{}",
                summary::failed(code, exit_meaning(code)),
                report.markdown()
            ),
            report.digests(),
            path.display().to_string(),
        ),
        (Some(code), _) if code != 0 => (
            summary::failed(code, exit_meaning(code)),
            Default::default(),
            String::new(),
        ),
        (_, Some(path)) => {
            let report = Reports::load(path).map_err(Error::Usage)?;
            (
                report.markdown(),
                report.digests(),
                path.display().to_string(),
            )
        }
        (_, None) => {
            return Err(Error::Usage(
                "--exit-code 0 needs the report: give --report FILE".to_string(),
            ));
        }
    };
    match &args.summary {
        Some(path) => summary::append(path, &markdown).map_err(Error::Usage)?,
        None => print!("{markdown}"),
    }
    if let Some(path) = &args.output {
        let digests = serde_json::to_string(&digests)
            .map_err(|e| Error::Internal(format!("cannot encode digests: {e}")))?;
        let outputs = [("digests", digests), ("report", report_path)];
        summary::write_outputs(path, &outputs).map_err(Error::Usage)?;
    }
    Ok(())
}

/// What an exit code of `publish` means, from [`EXIT_CODES`] (without what it means for
/// `check`, in parentheses).
fn exit_meaning(code: i32) -> Option<&'static str> {
    EXIT_CODES.lines().find_map(|line| {
        let (n, meaning) = line.trim().split_once("  ")?;
        let meaning = meaning.split(" (").next().unwrap_or(meaning);
        (n.parse() == Ok(code)).then(|| meaning.trim())
    })
}
