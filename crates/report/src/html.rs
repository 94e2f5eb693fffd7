//! The self-contained HTML report: one page, inline CSS and SVG charts, no script and
//! nothing loaded from the network, so it opens by double-click and prints well.
//!
//! Every chart sits in a `<figure>` with a caption and a `<details>` table of the
//! numbers it draws. Every string that comes from data (labels, categories, search
//! terms) is HTML-escaped, control characters in it are shown as `\u{202E}`, and
//! any `http` in it is written as a character reference so the page never holds an URL.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::DataFrame;

use crate::charts::{self, Bar, Group, HBars, HeatMap, LegendEntry, Mark, Panel, Panels, Scale};
use crate::frame;
use crate::projection;
use crate::run_record::{PersonasView, RunView, StageView};
use crate::safe_text::{bidi_escape, is_hidden};
use crate::{Result, write_atomic};

mod changes;
mod loyalty;
mod models;
mod personas;
mod recommend;
mod space;
mod summary;
mod terms;

use changes::{drift_section, migration_section};
use models::{calibration_section, lift_section, model_section};
use space::{feature_space, profile_section, projection_section};
use summary::{k_section, summary_section};

/// Most users drawn in the 2-D projection; more would only blur the picture and
/// swell the page.
pub(crate) const MAX_PROJECTION_POINTS: usize = 5_000;
/// Seed of the projection's user sample when the run record names none.
pub(crate) const DEFAULT_SEED: u64 = 42;
/// z-score at which the profile heat map's colours saturate.
const HEAT_LIMIT: f64 = 2.5;

/// The tables and record of a finished run that the HTML report is drawn from.
///
/// `personas`, `assignments` and `run` are required; every optional table adds its
/// section when present.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// `personas.csv`: `persona_id, label, users, share`, then `mean_<feature>`,
    /// `top_categories`, `top_queries`, `common_<column>`, `distinguishing`, and when
    /// predictions ran `mean_p_purchase`, `mean_predicted_revenue`, `segment_mix`.
    pub personas: &'a DataFrame,
    /// `user_personas.csv`: `user_id, persona_id, label, distance` and the raw features
    /// the clustering used.
    pub assignments: &'a DataFrame,
    /// `k_selection.csv`: `k, inertia, silhouette, calinski_harabasz, davies_bouldin,
    /// chosen`.
    pub k_selection: Option<&'a DataFrame>,
    /// `run.json`, the run record: rows, stages with seconds, as-of date, pipeline, run
    /// id, seed and the persona model.
    pub run: &'a RunView,
    /// `model_report.csv`: `predictor, target, status, auc, log_loss, brier,
    /// lift_top_decile, positives, negatives`.
    pub model_report: Option<&'a DataFrame>,
    /// Calibration bins: `predictor, target, bin, mean_predicted, observed_rate, count`.
    pub calibration: Option<&'a DataFrame>,
    /// Lift by decile: `predictor, target, decile, lift`.
    pub lift: Option<&'a DataFrame>,
    /// Persona migration since the previous run: `from_persona, to_persona, users`.
    pub migration: Option<&'a DataFrame>,
    /// Feature drift since the previous run: `feature, psi, level` (`ok`, `warning`,
    /// `alert`).
    pub drift: Option<&'a DataFrame>,
    /// The run's output folder, when the report is drawn from one: the sections of
    /// the recommend and loyalty stages read their own files there.
    pub dir: Option<&'a Path>,
}

impl<'a> ReportInput<'a> {
    /// An input with the required tables only; set the optional fields as available.
    pub fn new(personas: &'a DataFrame, assignments: &'a DataFrame, run: &'a RunView) -> Self {
        ReportInput {
            personas,
            assignments,
            k_selection: None,
            run,
            model_report: None,
            calibration: None,
            lift: None,
            migration: None,
            drift: None,
            dir: None,
        }
    }
}

/// Renders the report page as a string (UTF-8 HTML).
pub fn render_html(input: &ReportInput) -> Result<String> {
    let personas = read_personas(input.personas)?;
    let mut page = Page::default();
    let run = input.run;

    let users: f64 = personas.iter().filter_map(|p| p.users).sum();
    page.headline = format!(
        "<strong>{}</strong> {} in <strong>{}</strong> {}",
        grouped(users),
        plural(users, "user"),
        personas.len(),
        plural(personas.len() as f64, "persona")
    );
    page.add(
        "personas",
        "Personas",
        personas::persona_cards(
            &personas,
            run.personas.as_ref(),
            input
                .model_report
                .map(personas::predictions_unchecked)
                .transpose()?
                .unwrap_or_default(),
        ),
    );
    page.add("sizes", "Persona sizes", sizes_section(&personas)?);

    let space = feature_space(input, &personas)?;
    page.add(
        "profile",
        "Persona profiles",
        profile_section(&personas, &space)?,
    );
    page.add(
        "projection",
        "Users in two dimensions",
        projection_section(&personas, &space, seed(run))?,
    );
    if let Some(k) = input.k_selection {
        page.add(
            "k-selection",
            "Choosing the number of personas",
            k_section(k, run)?,
        );
    }
    if let Some(report) = input.model_report {
        let split = run.models.as_ref();
        page.add("prediction", "Predictions", model_section(report, split)?);
    }
    if let Some(cal) = input.calibration {
        page.add("calibration", "Calibration", calibration_section(cal)?);
    }
    if let Some(lift) = input.lift {
        page.add("lift", "Lift by decile", lift_section(lift)?);
    }
    if let Some(migration) = input.migration {
        page.add(
            "migration",
            "Persona migration",
            migration_section(migration, &personas)?,
        );
    }
    if let Some(drift) = input.drift {
        page.add("drift", "Feature drift", drift_section(drift)?);
    }
    if let Some(dir) = input.dir {
        recommend::add_sections(&mut page, dir, &personas)?;
        loyalty::add_sections(&mut page, dir, &personas)?;
    }
    page.add("summary", "Run summary", summary_section(run)?);
    let ids = page.sections.iter().map(|(id, _, _)| id.as_str());
    if let Some(terms) = terms::terms_section(ids) {
        page.add("terms", "Terms", terms);
    }
    Ok(page.finish(run))
}

/// Renders the report and writes it to `path` atomically.
pub fn write_html(input: &ReportInput, path: &Path) -> Result<()> {
    let html = render_html(input)?;
    write_atomic(path, html.as_bytes())
}

// ---------------------------------------------------------------------------
// Text helpers

/// Escapes text for HTML content and attribute values, shows control characters as
/// `\u{202E}` (so no value reads differently from what it holds), and defuses URLs.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if is_hidden(c) => out.push_str(&bidi_escape(c)),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    defuse_urls(&out)
}

/// Writes the first letter of every `http` (any case) as a character reference: the
/// text reads and copies the same, but the page's bytes hold no URL.
pub(crate) fn defuse_urls(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if bytes[i..i + 4].eq_ignore_ascii_case(b"http") {
            // `http` is ASCII, so `i` is a character boundary.
            out.push_str(&text[start..i]);
            out.push_str(&format!("&#{};", bytes[i]));
            start = i + 1;
            i += 4;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[start..]);
    out
}

/// A number with `decimals` places; `—` when missing; never `-0`.
fn fixed(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let s = format!("{v:.decimals$}");
            if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                s[1..].to_string()
            } else {
                s
            }
        }
        _ => "—".to_string(),
    }
}

/// A signed number (`+1.50`), for z-scores.
fn signed(v: f64, decimals: usize) -> String {
    let s = fixed(Some(v), decimals);
    if s.starts_with('-') || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

/// `word` for a count of `n`: `user` for 1, `users` for any other.
fn plural(n: f64, word: &str) -> String {
    format!("{word}{}", if n == 1.0 { "" } else { "s" })
}

/// Escaped `text` with each pair of backticks around a name as code: `` `ml.churn` ``
/// as <code>ml.churn</code>.
fn with_code(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return escape(text); // a backtick without its pair: the text as written
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A count with thousands separators, for headline figures.
fn grouped(v: f64) -> String {
    let digits = fixed(Some(v), 0);
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest.to_string()),
        None => ("", digits),
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return format!("{sign}{digits}");
    }
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// A share as a percentage with `decimals` places (no `%` sign).
fn percent(share: Option<f64>, decimals: usize) -> String {
    fixed(share.map(|s| s * 100.0), decimals)
}

/// A value for a table cell: compact but exact enough to copy.
fn number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 => fixed(Some(v), 0),
        Some(v) if v.is_finite() && v.abs() >= 1000.0 => fixed(Some(v), 1),
        other => fixed(other, 3),
    }
}

// ---------------------------------------------------------------------------
// Page assembly

#[derive(Default)]
struct Page {
    /// The run in one line of HTML, under the title.
    headline: String,
    sections: Vec<(String, String, String)>,
}

impl Page {
    fn add(&mut self, id: &str, title: &str, body: String) {
        self.sections
            .push((id.to_string(), title.to_string(), body));
    }

    fn finish(self, run: &RunView) -> String {
        let pipeline = run.pipeline.as_deref().unwrap_or("run");
        let mut meta = vec![self.headline.clone()];
        if let Some(as_of) = &run.as_of {
            // The as-of date counts the events before it: days and hours are UTC's.
            meta.push(format!(
                "as of <strong>{}</strong> (events before that day, UTC)",
                escape(as_of)
            ));
        }
        if let Some(id) = &run.run_id {
            meta.push(format!("run <code>{}</code>", escape(id)));
        }
        if let Some(status) = &run.status {
            meta.push(format!("status {}", escape(status)));
        }
        let mut html = String::with_capacity(1 << 20);
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.push_str("<meta name=\"generator\" content=\"userlens\">\n");
        html.push_str(&format!(
            "<title>userlens report: {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
            escape(pipeline)
        ));
        html.push_str(&format!(
            "<header class=\"top\"><div class=\"wrap\">\n<p class=\"kicker\">userlens report</p>\n<h1>{}</h1>\n<p class=\"meta\">{}</p>\n</div></header>\n",
            escape(pipeline),
            meta.join(" · ")
        ));
        html.push_str("<nav class=\"toc\" aria-label=\"Sections\"><div class=\"wrap\"><ul>\n");
        for (id, title, _) in &self.sections {
            html.push_str(&format!(
                "<li><a href=\"#{id}\">{}</a></li>\n",
                escape(title)
            ));
        }
        html.push_str("</ul></div></nav>\n<main class=\"wrap\">\n");
        for (id, title, body) in &self.sections {
            html.push_str(&format!(
                "<section id=\"{id}\" aria-labelledby=\"{id}-title\">\n<h2 id=\"{id}-title\">{}</h2>\n{body}</section>\n",
                escape(title)
            ));
        }
        let version = run
            .versions
            .get("userlens")
            .map(|v| format!(" {}", escape(v)))
            .unwrap_or_default();
        html.push_str(&format!(
            "</main>\n<footer class=\"wrap\"><p>Made by userlens{version} from the run record and output tables of this run. Charts are drawn as inline SVG; the numbers behind every chart are in the table below it.</p></footer>\n</body>\n</html>\n"
        ));
        defuse_urls(&html)
    }
}

/// The page's style sheet, inlined.
const CSS: &str = include_str!("html/report.css");

fn seed(run: &RunView) -> u64 {
    run.seed.unwrap_or(DEFAULT_SEED)
}

/// The number of personas in the run's model.
fn model_k(run: &RunView) -> Option<f64> {
    run.personas.as_ref()?.k.map(|k| k as f64)
}

/// A table cell: text (left-aligned) or a number (right-aligned).
enum Cell {
    Text(String),
    Num(String),
}

impl Cell {
    /// A flag as the page says one: `yes` or `no`.
    fn yes_no(flag: bool) -> Cell {
        Cell::Text(if flag { "yes" } else { "no" }.to_string())
    }
}

/// Most rows a table of the page holds; its CSV holds them all.
const MAX_TABLE_ROWS: usize = 1_000;

struct Table {
    caption: String,
    head: Vec<(String, bool)>,
    rows: Vec<Vec<Cell>>,
    /// Rows in time order, the latest last: a long table shows its last rows.
    latest_last: bool,
}

impl Table {
    fn new(caption: &str, head: &[(&str, bool)]) -> Self {
        Table {
            caption: caption.to_string(),
            head: head.iter().map(|(h, n)| (h.to_string(), *n)).collect(),
            rows: Vec::new(),
            latest_last: false,
        }
    }

    /// The table with its rows in time order, the latest last.
    fn in_time_order(mut self) -> Self {
        self.latest_last = true;
        self
    }

    fn html(&self) -> String {
        // A box that scrolls is reached and scrolled by keyboard too.
        let mut out = format!(
            "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table>\n",
            escape(&self.caption)
        );
        out.push_str(&format!(
            "<caption>{}</caption>\n<thead><tr>",
            escape(&self.caption)
        ));
        for (h, numeric) in &self.head {
            let class = if *numeric { " class=\"num\"" } else { "" };
            out.push_str(&format!("<th scope=\"col\"{class}>{}</th>", escape(h)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        let shown = self.rows.len().min(MAX_TABLE_ROWS);
        let first = if self.latest_last {
            self.rows.len() - shown
        } else {
            0
        };
        for row in &self.rows[first..first + shown] {
            out.push_str("<tr>");
            // The first cell names its row, for a screen reader reading across.
            for (i, cell) in row.iter().enumerate() {
                let (tag, scope) = if i == 0 {
                    ("th", " scope=\"row\"")
                } else {
                    ("td", "")
                };
                let (class, text) = match cell {
                    Cell::Text(t) => ("", t),
                    Cell::Num(t) => (" class=\"num\"", t),
                };
                out.push_str(&format!("<{tag}{scope}{class}>{}</{tag}>", escape(text)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table></div>\n");
        if shown < self.rows.len() {
            out.push_str(&note(&format!(
                "The page shows the {} {} of {} rows; the CSV holds every one.",
                if self.latest_last { "latest" } else { "first" },
                grouped(shown as f64),
                grouped(self.rows.len() as f64)
            )));
        }
        out
    }
}

/// A chart in a figure with its caption and the tables of its numbers.
fn figure(id: &str, svg: &str, caption: &str, tables: &[Table]) -> String {
    figure_with(id, svg, caption, tables, false)
}

/// A figure whose tables are shown (`open`) rather than folded away.
fn figure_with(id: &str, svg: &str, caption: &str, tables: &[Table], open: bool) -> String {
    // The chart scrolls sideways where the page is narrower than it can shrink to
    // and stay legible (report.css, `.chart`).
    let mut out = format!(
        "<figure id=\"fig-{id}\">\n<div class=\"scroll chart\" tabindex=\"0\" role=\"region\" \
         aria-labelledby=\"fig-{id}-caption\">\n{svg}</div>\n\
         <p class=\"swipe\" aria-hidden=\"true\">Scroll the chart sideways to see all of it.</p>\n\
         <figcaption id=\"fig-{id}-caption\">{caption}</figcaption>\n"
    );
    if !tables.is_empty() {
        out.push_str(if open {
            "<details open>\n"
        } else {
            "<details>\n"
        });
        // Named by what they hold: a list of the page's summaries reads on its own.
        let what: Vec<&str> = tables.iter().map(|t| t.caption.as_str()).collect();
        out.push_str(&format!(
            "<summary>Numbers: {}</summary>\n",
            escape(&what.join("; "))
        ));
        for t in tables {
            out.push_str(&t.html());
        }
        out.push_str("</details>\n");
    }
    out.push_str("</figure>\n");
    out
}

fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>\n", escape(text))
}

// ---------------------------------------------------------------------------
// Personas

/// One row of the personas table.
#[derive(Default)]
struct Persona {
    id: Option<i64>,
    id_text: String,
    label: String,
    users: Option<f64>,
    share: Option<f64>,
    distinguishing: Option<String>,
    top_categories: Option<String>,
    top_queries: Option<String>,
    common: Vec<(String, String)>,
    p_purchase: Option<f64>,
    revenue: Option<f64>,
    segment_mix: Option<String>,
    averages: Vec<(&'static str, f64)>,
}

impl Persona {
    /// `#3 books · night owl`.
    fn name(&self) -> String {
        if self.label.is_empty() {
            format!("#{}", self.id_text)
        } else {
            format!("#{} {}", self.id_text, self.label)
        }
    }
}

const PERSONAS: &str = "personas";

/// Averages shown on a persona card when their columns exist: column, words, decimals.
const CARD_AVERAGES: [(&str, &str, usize); 4] = [
    ("mean_recency_days", "days since last seen", 1),
    ("mean_frequency", "purchases", 2),
    ("mean_monetary", "spend", 2),
    ("mean_sessions", "sessions", 1),
];

fn read_personas(df: &DataFrame) -> Result<Vec<Persona>> {
    use userlens_model::columns::{LABEL, PERSONA_ID};
    let ids = frame::i64s(df, PERSONAS, PERSONA_ID)?;
    let id_texts = frame::strings(df, PERSONAS, PERSONA_ID)?;
    let labels = frame::strings(df, PERSONAS, LABEL)?;
    let users = frame::f64s(df, PERSONAS, "users")?;
    let total: f64 = users.iter().flatten().sum();
    let shares = frame::opt_f64s(df, PERSONAS, "share")?;
    let text = |name: &str| frame::opt_strings(df, PERSONAS, name);
    let distinguishing = text("distinguishing")?;
    let top_categories = text("top_categories")?;
    let top_queries = text("top_queries")?;
    let segment_mix = text("segment_mix")?;
    let p_purchase = frame::opt_f64s(df, PERSONAS, "mean_p_purchase")?;
    let revenue = frame::opt_f64s(df, PERSONAS, "mean_predicted_revenue")?;
    let mut common = Vec::new();
    for name in df.get_column_names() {
        if let Some(what) = name.as_str().strip_prefix("common_") {
            common.push((what.replace('_', " "), frame::strings(df, PERSONAS, name)?));
        }
    }
    let mut averages = Vec::new();
    for (column, words, decimals) in CARD_AVERAGES {
        if let Some(values) = frame::opt_f64s(df, PERSONAS, column)? {
            averages.push((words, decimals, values));
        }
    }
    let cell = |col: &Option<Vec<Option<String>>>, i: usize| {
        col.as_ref()
            .and_then(|c| c[i].clone())
            .filter(|s| !s.trim().is_empty())
    };
    Ok((0..df.height())
        .map(|i| Persona {
            id: ids[i],
            id_text: id_texts[i].clone().unwrap_or_else(|| "?".to_string()),
            label: labels[i].clone().unwrap_or_default(),
            users: users[i],
            share: shares
                .as_ref()
                .map(|s| s[i])
                .unwrap_or_else(|| users[i].filter(|_| total > 0.0).map(|u| u / total)),
            distinguishing: cell(&distinguishing, i),
            top_categories: cell(&top_categories, i),
            top_queries: cell(&top_queries, i),
            common: common
                .iter()
                .filter_map(|(what, values)| {
                    values[i]
                        .clone()
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| (what.clone(), v))
                })
                .collect(),
            p_purchase: p_purchase.as_ref().and_then(|v| v[i]),
            revenue: revenue.as_ref().and_then(|v| v[i]),
            segment_mix: cell(&segment_mix, i),
            averages: averages
                .iter()
                .filter_map(|(words, _, values)| values[i].map(|v| (*words, v)))
                .collect(),
        })
        .collect())
}

fn sizes_section(personas: &[Persona]) -> Result<String> {
    let bars: Vec<Bar> = personas
        .iter()
        .enumerate()
        .map(|(i, p)| Bar {
            label: p.name(),
            value: p.users.unwrap_or(0.0),
            color: charts::color(i),
            note: format!(
                "{} {} · {}%",
                p.users.map_or("—".to_string(), grouped),
                plural(p.users.unwrap_or(0.0), "user"),
                fixed(p.share.map(|s| s * 100.0), 1)
            ),
        })
        .collect();
    let most = (personas.iter())
        .map(|p| p.users.unwrap_or(0.0))
        .fold(f64::NEG_INFINITY, f64::max);
    let largest: Vec<String> = (personas.iter())
        .filter(|p| p.users.unwrap_or(0.0) == most)
        .map(Persona::name)
        .collect();
    let aria = match largest.len() {
        0 => "Horizontal bar chart of persona sizes; there are no personas".to_string(),
        n => format!(
            "Horizontal bar chart of the number of users in each of {} {}; the largest {} {} with {} {}{}",
            personas.len(),
            plural(personas.len() as f64, "persona"),
            if n == 1 { "is" } else { "are" },
            and_list(&largest),
            fixed(Some(most), 0),
            plural(most, "user"),
            if n == 1 { "" } else { " each" }
        ),
    };
    let svg = charts::hbars(&HBars {
        chart: "persona sizes",
        title: "Users per persona",
        x_desc: "users",
        y_desc: "",
        bars: &bars,
        legend: &[],
        aria: &aria,
    })?;
    let mut table = Table::new(
        "Persona sizes",
        &[
            ("persona_id", true),
            ("label", false),
            ("users", true),
            ("share (%)", true),
        ],
    );
    for p in personas {
        table.rows.push(vec![
            Cell::Num(p.id_text.clone()),
            Cell::Text(p.label.clone()),
            Cell::Num(fixed(p.users, 0)),
            Cell::Num(percent(p.share, 2)),
        ]);
    }
    Ok(figure(
        "sizes",
        &svg,
        "Number of users in each persona, with each persona's share of all users.",
        &[table],
    ))
}

// ---------------------------------------------------------------------------
// Nightly: migration and drift

/// Where in `personas` this run's persona of the id a cell holds (`"3"`) is, if it
/// has one: the one lookup of a persona by its id that every section makes.
fn persona_at(personas: &[Persona], id: &str) -> Option<usize> {
    let id = id.trim().parse::<i64>().ok()?;
    personas.iter().position(|p| p.id == Some(id))
}

/// This run's persona of the id in `cell`, if it has one.
fn persona_by_id<'p>(cell: &Option<String>, personas: &'p [Persona]) -> Option<&'p Persona> {
    persona_at(personas, cell.as_deref()?).map(|i| &personas[i])
}

fn persona_display(value: &Option<String>, personas: &[Persona]) -> String {
    match value.as_deref().map(str::trim) {
        None | Some("") => "(none)".to_string(),
        Some(v) => match persona_by_id(value, personas) {
            Some(p) => p.name(),
            None if v.parse::<i64>().is_ok() => format!("#{v}"),
            None => v.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
