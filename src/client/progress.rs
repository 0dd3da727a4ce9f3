//! Progress bars for uploads and downloads (indicatif): bytes, rate and ETA, drawn on stderr
//! only when a person is watching it (a terminal, without `--json` or `--quiet`), so scripts and
//! logs never get escape codes. A hidden bar costs nothing, so callers always update one.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::Output;

/// A transfer's bar (possibly hidden).
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    visible: bool,
}

impl Progress {
    /// A bar for `total` bytes (None: unknown) starting at `done`, titled `label`.
    pub fn new(out: &Output, label: &str, total: Option<u64>, done: u64) -> Progress {
        let visible = !out.json && !out.quiet && std::io::stderr().is_terminal();
        let bar = match total {
            Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::hidden()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
        };
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{msg} {bytes} {binary_bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        bar.set_position(done);
        // The rate and ETA count from here, not from byte 0 of a resumed transfer.
        bar.reset_eta();
        if visible {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Progress { bar, visible }
    }

    /// `n` more bytes went through.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    /// The transfer stands at `pos` bytes (after a resume or a restart from zero).
    pub fn set(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    /// The total became known (a download's length comes with its first answer).
    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
        {
            self.bar.set_style(style.progress_chars("=> "));
        }
    }

    /// Done: the bar goes (the command prints its result line instead).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Stopped early: the bar stays as far as it got, and the error goes on the next line.
    pub fn abandon(&self) {
        self.bar.abandon();
        if self.visible {
            eprintln!();
        }
    }
}
