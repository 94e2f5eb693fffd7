//! Renders runner progress on stderr: a bar on a terminal, plain lines otherwise,
//! or one JSON object per line for schedulers.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
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
    bar: Option<ProgressBar>,
    total: usize,
}

impl Renderer {
    /// A renderer writing to stderr.
    pub fn new(format: LogFormat, quiet: bool) -> Renderer {
        Renderer {
            format,
            quiet,
            bar: None,
            total: 0,
        }
    }

    /// Handles one progress event.
    pub fn handle(&mut self, event: &Progress) {
        if self.quiet {
            return;
        }
        if self.format == LogFormat::Json {
            let line = match event {
                Progress::RunStarted {
                    pipeline,
                    run_id,
                    stages,
                } => {
                    serde_json::json!({"event": "run_started", "pipeline": pipeline, "run_id": run_id, "stages": stages})
                }
                Progress::StageStarted { index, name, uses } => {
                    serde_json::json!({"event": "stage_started", "index": index, "stage": name, "uses": uses})
                }
                Progress::StageFinished {
                    index,
                    name,
                    seconds,
                    rows,
                } => {
                    serde_json::json!({"event": "stage_finished", "index": index, "stage": name, "seconds": seconds, "rows": rows})
                }
                Progress::StageSkipped {
                    index,
                    name,
                    reused_from,
                } => {
                    serde_json::json!({"event": "stage_skipped", "index": index, "stage": name, "reused_from": reused_from})
                }
                Progress::Retrying {
                    name,
                    attempt,
                    delay_seconds,
                    error,
                } => {
                    serde_json::json!({"event": "stage_retrying", "stage": name, "attempt": attempt, "delay_seconds": delay_seconds, "error": error})
                }
                Progress::Warning(message) => {
                    serde_json::json!({"event": "warning", "message": message})
                }
            };
            eprintln!("{line}");
            return;
        }
        match event {
            Progress::RunStarted {
                pipeline,
                run_id,
                stages,
            } => {
                self.total = *stages;
                if std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(*stages as u64);
                    let style = ProgressStyle::with_template(
                        "{spinner} [{pos}/{len}] {wide_msg} {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar.println(format!("running {pipeline} ({run_id})"));
                    self.bar = Some(bar);
                } else {
                    eprintln!("running {pipeline} ({run_id})");
                }
            }
            Progress::StageStarted { index, name, uses } => match &self.bar {
                Some(bar) => bar.set_message(format!("{name} ({uses})")),
                None => eprintln!("[{}/{}] {name} ({uses})", index + 1, self.total),
            },
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
                let line = format!(
                    "[{}/{}] {name} unchanged, skipped (artifact of run {reused_from})",
                    index + 1,
                    self.total
                );
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
            Progress::Warning(message) => self.line(format!("warning: {message}"), false),
        }
        let _ = std::io::stderr().flush();
    }

    fn line(&self, line: String, step: bool) {
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                if step {
                    bar.inc(1);
                }
            }
            None => eprintln!("{line}"),
        }
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
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
