//! Progress reporting: a bar on a terminal, plain periodic lines anywhere else (CI logs).
//!
//! Hashing and uploading can take minutes for big catalogs; people watching a terminal want a
//! bar, and CI logs want a few readable lines rather than thousands of carriage returns.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Progress through a known number of bytes and items.
pub struct Progress {
    label: String,
    bar: Option<ProgressBar>,
    plain: Option<Mutex<PlainState>>,
    total_bytes: u64,
    total_items: u64,
}

struct PlainState {
    bytes: u64,
    items: u64,
    last_line: Instant,
}

/// Whether progress output is wanted at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A bar on a terminal, periodic lines otherwise.
    Auto,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// Start reporting progress of `label` over `total_items` items of `total_bytes` bytes.
    pub fn start(mode: Mode, label: &str, total_items: u64, total_bytes: u64) -> Progress {
        let mut progress = Progress {
            label: label.to_string(),
            bar: None,
            plain: None,
            total_bytes,
            total_items,
        };
        if mode == Mode::Quiet || total_items == 0 {
            return progress;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            progress.bar = Some(bar);
        } else {
            progress.plain = Some(Mutex::new(PlainState {
                bytes: 0,
                items: 0,
                last_line: Instant::now(),
            }));
        }
        progress
    }

    /// Record `bytes` more bytes done.
    pub fn add_bytes(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        self.plain_update(bytes, 0);
    }

    /// Record one more item done.
    pub fn add_item(&self) {
        self.plain_update(0, 1);
    }

    fn plain_update(&self, bytes: u64, items: u64) {
        let Some(plain) = &self.plain else { return };
        let Ok(mut state) = plain.lock() else { return };
        state.bytes += bytes;
        state.items += items;
        if state.last_line.elapsed() >= LINE_INTERVAL {
            state.last_line = Instant::now();
            eprintln!(
                "{}: {}/{} items, {}/{}",
                self.label,
                state.items,
                self.total_items,
                HumanBytes(state.bytes),
                HumanBytes(self.total_bytes)
            );
        }
    }

    /// Stop reporting (clears the bar).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
