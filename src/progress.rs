//! Renders runner progress on stderr: a bar on a terminal, plain lines otherwise,
//! or one JSON object per line for schedulers.

use std::io::{IsTerminal, Write};

use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use userlens_pipeline::Progress;

/// How progress and logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (a bar on a terminal).
    Plain,
    /// One JSON object per line.
    Json,
}

/// A progress renderer for one run.
pub struct Renderer {
    format: LogFormat,
    quiet: bool,
    bars: Option<MultiProgress>,
    bar: Option<ProgressBar>,
    /// Bytes bar of the running stage, on a terminal.
    stage_bar: Option<ProgressBar>,
    /// When the running stage started, for throughput and ETA off a terminal.
    stage_started: Instant,
    /// Last tenth of the work reported off a terminal.
    reported_tenth: u64,
    total: usize,
    /// The run under way (a resumed run reuses its own stages).
    run_id: String,
}

impl Renderer {
    /// A renderer writing to stderr.
    pub fn new(format: LogFormat, quiet: bool) -> Renderer {
        Renderer {
            format,
            quiet,
            bars: None,
            bar: None,
            stage_bar: None,
            stage_started: Instant::now(),
            reported_tenth: 0,
            total: 0,
            run_id: String::new(),
        }
    }

    /// Handles one progress event.
    pub fn handle(&mut self, event: &Progress) {
        if self.quiet {
            return;
        }
        if let Progress::StageAdvanced {
            done, total, unit, ..
        } = event
        {
            self.advance(event, *done, *total, unit);
            return;
        }
        if let Some(stage_bar) = self.stage_bar.take() {
            stage_bar.finish_and_clear();
        }
        if self.format == LogFormat::Json {
            print_json(event, &[]);
            return;
        }
        match event {
            Progress::RunStarted {
                pipeline,
                run_id,
                stages,
            } => {
                self.total = *stages;
                self.run_id.clone_from(run_id);
                if std::io::stderr().is_terminal() {
                    let bars = MultiProgress::new();
                    let bar = bars.add(ProgressBar::new(*stages as u64));
                    let style = ProgressStyle::with_template(
                        "{spinner} [{pos}/{len}] {wide_msg} {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar.println(format!("running {pipeline} ({run_id})"));
                    self.bar = Some(bar);
                    self.bars = Some(bars);
                } else {
                    say!("running {pipeline} ({run_id})");
                }
            }
            Progress::StageStarted { index, name, uses } => {
                self.stage_started = Instant::now();
                self.reported_tenth = 0;
                match &self.bar {
                    Some(bar) => bar.set_message(format!("{name} ({uses})")),
                    None => say!("[{}/{}] {name} ({uses})", index + 1, self.total),
                }
            }
            Progress::StageFinished {
                index,
                name,
                seconds,
                rows,
            } => {
                let line = format!(
                    "[{}/{}] {name} done in {seconds:.2}s, {} rows",
                    index + 1,
                    self.total,
                    thousands(*rows)
                );
                self.line(line, true);
            }
            Progress::StageSkipped {
                index,
                name,
                reused_from,
            } => {
                let line = match *reused_from == self.run_id {
                    true => format!(
                        "[{}/{}] {name} done before the run stopped, reused",
                        index + 1,
                        self.total
                    ),
                    false => format!(
                        "[{}/{}] {name} unchanged, skipped (artifact of run {reused_from})",
                        index + 1,
                        self.total
                    ),
                };
                self.line(line, true);
            }
            Progress::Retrying {
                name,
                attempt,
                delay_seconds,
                error,
            } => {
                let line =
                    format!("{name} failed ({error}); attempt {attempt} in {delay_seconds:.1}s");
                self.line(line, false);
            }
            Progress::OutOfCore { name, .. } => {
                self.line(
                    format!("{name}: events in Parquet parts, read part by part"),
                    false,
                );
            }
            Progress::Warning { message } => self.line(format!("warning: {message}"), false),
            Progress::StageAdvanced { .. } => {}
        }
        let _ = std::io::stderr().flush();
    }

    /// Within-stage progress: a bytes bar with throughput and ETA on a terminal; off
    /// it, a line (or JSON object) at every tenth of the work.
    fn advance(&mut self, event: &Progress, done: u64, total: u64, unit: &str) {
        if let Some(bars) = &self.bars {
            let stage_bar = self.stage_bar.get_or_insert_with(|| {
                let bar = bars.add(ProgressBar::new(total));
                let template = if unit == "bytes" {
                    "  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, ETA {eta}"
                } else {
                    "  [{bar:30}] {human_pos}/{human_len} {per_sec}, ETA {eta}"
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar
            });
            stage_bar.set_length(total);
            stage_bar.set_position(done);
            return;
        }
        let tenth = done.saturating_mul(10) / total.max(1);
        if tenth <= self.reported_tenth {
            return;
        }
        self.reported_tenth = tenth;
        let seconds = self.stage_started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / seconds;
        let eta = if rate > 0.0 {
            total.saturating_sub(done) as f64 / rate
        } else {
            0.0
        };
        if self.format == LogFormat::Json {
            let eta = (eta * 10.0).round() / 10.0;
            print_json(event, &[("per_second", rate.round()), ("eta_seconds", eta)]);
        } else if unit == "bytes" {
            // Tenths of a MiB below 10 MiB, where whole ones would read "0 of 0".
            let mib = |bytes: u64| match total < 10 << 20 {
                true => format!("{:.1}", bytes as f64 / f64::from(1u32 << 20)),
                false => thousands(bytes >> 20),
            };
            say!(
                "  {:.0}% ({} of {} MiB, {:.1} MiB/s, ETA {eta:.0}s)",
                100.0 * done as f64 / total.max(1) as f64,
                mib(done),
                mib(total),
                rate / f64::from(1u32 << 20)
            );
        } else {
            say!(
                "  {:.0}% ({} of {} {unit}, {:.0}/s, ETA {eta:.0}s)",
                100.0 * done as f64 / total.max(1) as f64,
                thousands(done),
                thousands(total),
                rate
            );
        }
    }

    fn line(&self, line: String, step: bool) {
        let line = userlens_report::escape_hidden(&line).into_owned();
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                if step {
                    bar.inc(1);
                }
            }
            None => say!("{line}"),
        }
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if let Some(stage_bar) = self.stage_bar.take() {
            stage_bar.finish_and_clear();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Writes an event as one JSON object on stderr, with `extra` fields added to it.
fn print_json(event: &Progress, extra: &[(&str, f64)]) {
    let mut line = match serde_json::to_value(event) {
        Ok(line) => line,
        Err(error) => {
            tracing::warn!("failed to serialise a progress event: {error}");
            return;
        }
    };
    if let Some(fields) = line.as_object_mut() {
        for &(key, value) in extra {
            fields.insert(key.to_string(), value.into());
        }
    }
    say!("{line}");
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
