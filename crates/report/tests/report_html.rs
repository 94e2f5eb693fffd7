//! The HTML report rendered from a small committed run (`tests/data/profile/`, see
//! `tests/data/README.md`): its structure, its numbers against the CSVs, escaping,
//! the absence of URLs, and byte-for-byte determinism.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use userlens_report::{ReportInput, RunView, files, render_html, render_run_dir, write_html};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/profile")
}

/// Copies the fixture run into a temporary folder, so rendering never writes into the
/// source tree.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn read_csv(path: &Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
}

/// The fixture's `run.json`, untyped: what the tests check the page against.
fn run_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture().join(files::RUN)).unwrap()).unwrap()
}

/// The fixture's `run.json` as the report reads it.
fn run_record() -> RunView {
    let path = fixture().join(files::RUN);
    RunView::from_slice(&std::fs::read(&path).unwrap(), &path).unwrap()
}

/// A run record from JSON written in a test.
fn run_from(json: serde_json::Value) -> RunView {
    serde_json::from_value(json).unwrap()
}

fn render_fixture() -> String {
    let dir = fixture_copy();
    let path = render_run_dir(dir.path()).unwrap();
    assert_eq!(path, dir.path().join("report.html"));
    std::fs::read_to_string(path).unwrap()
}

/// The rows of a CSV as string records (header excluded).
fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The HTML of the section with `id`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section `{id}`"));
    let end = start + html[start..].find("</section>").unwrap();
    &html[start..end]
}

fn num(text: &str) -> String {
    format!("<td class=\"num\">{text}</td>")
}

/// The first cell of a row, which names it.
fn head(text: &str) -> String {
    format!("<th scope=\"row\">{text}</th>")
}

/// [`head`] of a number.
fn num_head(text: &str) -> String {
    format!("<th scope=\"row\" class=\"num\">{text}</th>")
}

#[test]
fn every_section_of_a_profile_run_is_there_with_a_chart_caption_and_table() {
    let html = render_fixture();
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    for id in [
        "summary",
        "personas",
        "sizes",
        "profile",
        "projection",
        "k-selection",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\"")),
            "section {id}"
        );
        assert!(
            html.contains(&format!("<a href=\"#{id}\">")),
            "contents link to {id}"
        );
    }
    for id in ["prediction", "calibration", "lift", "migration", "drift"] {
        assert!(!html.contains(&format!("id=\"{id}\"")), "{id} has no input");
    }
    for figure in ["stages", "sizes", "profile", "projection", "k-selection"] {
        let start = html
            .find(&format!("<figure id=\"fig-{figure}\">"))
            .unwrap_or_else(|| panic!("figure {figure}"));
        let body = &html[start..start + html[start..].find("</figure>").unwrap()];
        assert!(body.contains("<svg role=\"img\" aria-label=\""), "{figure}");
        assert!(
            body.contains(&format!("<figcaption id=\"fig-{figure}-caption\">")),
            "{figure}"
        );
        assert!(
            body.contains(&format!("aria-labelledby=\"fig-{figure}-caption\">\n<svg ")),
            "{figure} scrolls in a box of its own"
        );
        assert!(body.contains("<details>\n<summary>"), "{figure}");
        assert!(body.contains("<table>"), "{figure}");
    }
    let svgs = html.matches("<svg ").count();
    assert_eq!(svgs, 5);
    assert_eq!(html.matches("role=\"img\" aria-label=\"").count(), svgs);
    for tag in ["section", "figure", "table", "details", "svg", "article"] {
        assert_eq!(
            html.matches(&format!("<{tag}")).count(),
            html.matches(&format!("</{tag}>")).count(),
            "balanced <{tag}>"
        );
    }
    assert_eq!(html.matches("<article class=\"card\"").count(), 5);
}

#[test]
fn the_page_holds_no_url_no_script_and_no_external_resource() {
    let html = render_fixture();
    assert!(!html.to_ascii_lowercase().contains("http"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("xmlns"));
    assert!(!html.contains("src=") && !html.contains("@import") && !html.contains("url("));
    // Only in-page links.
    for (i, _) in html.match_indices("href=\"") {
        assert_eq!(&html[i + 6..i + 7], "#");
    }
}

#[test]
fn sizes_table_holds_each_personas_users_and_share_from_the_csv() {
    let html = render_fixture();
    let sizes = section(&html, "sizes");
    let (header, rows) = csv_rows(&fixture().join(files::PERSONAS));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 5);
    for row in &rows {
        let share: f64 = row[col("share")].parse().unwrap();
        let expected = format!(
            "<tr>{}<td>{}</td>{}{}</tr>",
            num_head(&row[col("persona_id")]),
            row[col("label")],
            num(&row[col("users")]),
            num(&format!("{:.2}", share * 100.0))
        );
        assert!(sizes.contains(&expected), "missing {expected}");
        // The card says it in words too.
        let card = format!(
            "<strong>{}</strong> users · <strong>{:.1}%</strong>",
            row[col("users")],
            share * 100.0
        );
        assert!(section(&html, "personas").contains(&card), "missing {card}");
        let distinguishing = &row[col("distinguishing")];
        assert!(html.contains(distinguishing.as_str()), "{distinguishing}");
    }
}

#[test]
fn k_selection_and_run_summary_tables_match_their_sources() {
    let html = render_fixture();
    let k_section = section(&html, "k-selection");
    let (header, rows) = csv_rows(&fixture().join(files::K_SELECTION));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &rows {
        let silhouette: f64 = row[col("silhouette")].parse().unwrap();
        let davies: f64 = row[col("davies_bouldin")].parse().unwrap();
        let chosen = if row[col("chosen")] == "true" {
            "yes"
        } else {
            ""
        };
        let expected = format!(
            "<tr>{}{}{}{}{}<td>{chosen}</td></tr>",
            num_head(&row[col("k")]),
            num(&format!(
                "{:.1}",
                row[col("inertia")].parse::<f64>().unwrap()
            )),
            num(&format!("{silhouette:.3}")),
            num(&format!(
                "{:.3}",
                row[col("calinski_harabasz")].parse::<f64>().unwrap()
            )),
            num(&format!("{davies:.3}")),
        );
        assert!(k_section.contains(&expected), "missing {expected}");
    }
    assert!(k_section.contains("chosen k = 5"));

    let run = run_json();
    let summary = section(&html, "summary");
    for key in ["read", "kept", "quarantined", "duplicates", "users"] {
        let v = run["rows"][key].as_u64().unwrap();
        let row = format!("<tr>{}{}</tr>", head(key), num(&v.to_string()));
        assert!(summary.contains(&row), "{row}");
    }
    for stage in run["stages"].as_array().unwrap() {
        let name = stage["name"].as_str().unwrap();
        let seconds = format!("{:.3}", stage["seconds"].as_f64().unwrap());
        assert!(summary.contains(&format!("<tr>{}", head(name))), "{name}");
        assert!(summary.contains(&num(&seconds)), "{name} {seconds}");
    }
}

#[test]
fn two_renders_of_the_run_are_the_same_bytes_and_show_its_record() {
    // Two folders, so nothing of the first render (a cached page, a leftover file) can
    // stand in for the second.
    let first = std::fs::read(render_run_dir(fixture_copy().path()).unwrap()).unwrap();
    let second = std::fs::read(render_run_dir(fixture_copy().path()).unwrap()).unwrap();
    assert!(first == second, "two renders of the same run differ");

    let html = String::from_utf8(first).unwrap();
    let run = run_json();
    let run_id = run["run_id"].as_str().unwrap();
    assert!(
        html.contains(&format!("run <code>{run_id}</code>")),
        "{run_id}"
    );
    let (header, rows) = csv_rows(&fixture().join(files::PERSONAS));
    let label = header.iter().position(|h| h == "label").unwrap();
    assert_eq!(rows.len(), 5);
    for row in &rows {
        let card = format!("</span> {}</h3>", row[label]);
        assert!(section(&html, "personas").contains(&card), "missing {card}");
    }
}

#[test]
fn labels_and_texts_from_data_are_escaped() {
    let mut personas = read_csv(&fixture().join(files::PERSONAS));
    let evil = "<script>alert(\"x\")</script> & <b>bold</b> HTTPS://evil.example";
    let labels: Vec<String> = (0..personas.height())
        .map(|i| {
            if i == 0 {
                evil.to_string()
            } else {
                format!("p{i}")
            }
        })
        .collect();
    personas
        .replace("label", Column::new("label".into(), labels))
        .unwrap();
    personas
        .replace(
            "top_queries",
            Column::new(
                "top_queries".into(),
                vec!["<img src=x onerror=alert(1)>"; 5],
            ),
        )
        .unwrap();
    let assignments = read_csv(&fixture().join(files::USER_PERSONAS));
    let mut run = run_record();
    run.pipeline = Some("<i>pipe</i>".to_string());
    let html = render_html(&ReportInput::new(&personas, &assignments, &run)).unwrap();
    assert!(!html.contains("<script"));
    assert!(!html.contains("<b>bold"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<i>pipe"));
    assert!(!html.to_ascii_lowercase().contains("http"));
    assert!(html.contains(
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; &#72;TTPS://evil.example"
    ));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("<h1>&lt;i&gt;pipe&lt;/i&gt;</h1>"));
}

#[test]
fn bidi_controls_in_labels_and_categories_are_shown_escaped() {
    let mut personas = read_csv(&fixture().join(files::PERSONAS));
    // U+202E turns "persona exe.txt" into what reads as "persona txt.exe"
    let labels: Vec<String> = (0..personas.height())
        .map(|i| format!("persona{i} \u{202E}exe.txt"))
        .collect();
    personas
        .replace("label", Column::new("label".into(), labels))
        .unwrap();
    personas
        .replace(
            "top_categories",
            Column::new(
                "top_categories".into(),
                vec!["\u{2066}books\u{2069} 60%, \u{200F}toys 40%"; personas.height()],
            ),
        )
        .unwrap();
    let assignments = read_csv(&fixture().join(files::USER_PERSONAS));
    let html = render_html(&ReportInput::new(&personas, &assignments, &run_record())).unwrap();
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
    assert!(!html.contains(bidi), "a bidi control reached the page");
    assert!(html.contains("</span> persona0 \\u{202E}exe.txt</h3>"));
    assert!(html.contains("\\u{2066}books\\u{2069} 60%, \\u{200F}toys 40%"));
    // the charts' labels too
    let sizes = section(&html, "sizes");
    let svg = &sizes[sizes.find("<svg").unwrap()..sizes.find("</svg>").unwrap()];
    assert!(svg.contains("\\u{202E}"), "{svg}");
}

fn optional_tables() -> [DataFrame; 5] {
    let model_report = df!(
        "predictor" => ["rules", "bgnbd", "logistic"],
        "target" => ["purchase", "purchase", "purchase"],
        "status" => ["ok", "ok", "ok"],
        "auc" => [0.61, 0.7234, 0.8125],
        "log_loss" => [0.66, 0.59, 0.51],
        "brier" => [0.23, 0.2, 0.17],
        "lift_top_decile" => [1.4, 2.1, 2.75],
        "positives" => [120u32, 120, 120],
        "negatives" => [880u32, 880, 880],
    )
    .unwrap();
    let mut predictor = Vec::new();
    let mut bin = Vec::new();
    let mut predicted = Vec::new();
    let mut observed = Vec::new();
    for (p, bias) in [("bgnbd", 0.08), ("logistic", -0.02)] {
        for b in 0..5u32 {
            predictor.push(p);
            bin.push(b + 1);
            predicted.push(0.1 + 0.2 * b as f64);
            observed.push((0.1 + 0.2 * b as f64 - bias).clamp(0.0, 1.0));
        }
    }
    let calibration = df!(
        "predictor" => &predictor,
        "target" => vec!["purchase"; predictor.len()],
        "bin" => bin,
        "mean_predicted" => predicted,
        "observed_rate" => observed,
        "count" => vec![200u32; predictor.len()],
    )
    .unwrap();
    let deciles: Vec<u32> = (1..=10).chain(1..=10).collect();
    let lift_predictor: Vec<&str> = (0..20)
        .map(|i| if i < 10 { "bgnbd" } else { "logistic" })
        .collect();
    let lift_values: Vec<f64> = (0..20).map(|i| 3.125 - 0.3 * (i % 10) as f64).collect();
    let lift = df!(
        "predictor" => lift_predictor,
        "target" => vec!["purchase"; 20],
        "decile" => deciles,
        "lift" => lift_values,
    )
    .unwrap();
    let migration = df!(
        "from_persona" => [Some(1i64), Some(1), Some(2), Some(3), None],
        "to_persona" => [1i64, 2, 2, 3, 4],
        "users" => [480u32, 17, 448, 395, 12],
    )
    .unwrap();
    let drift = df!(
        "feature" => ["monetary", "recency_days", "night_share"],
        "psi" => [0.3125, 0.02, 0.14],
        "level" => ["alert", "ok", "warning"],
    )
    .unwrap();
    [model_report, calibration, lift, migration, drift]
}

#[test]
fn prediction_and_nightly_sections_appear_with_their_numbers() {
    let personas = read_csv(&fixture().join(files::PERSONAS));
    let assignments = read_csv(&fixture().join(files::USER_PERSONAS));
    let run = run_record();
    let [model_report, calibration, lift, migration, drift] = optional_tables();
    let k_selection = read_csv(&fixture().join(files::K_SELECTION));
    let input = ReportInput {
        k_selection: Some(&k_selection),
        model_report: Some(&model_report),
        calibration: Some(&calibration),
        lift: Some(&lift),
        migration: Some(&migration),
        drift: Some(&drift),
        ..ReportInput::new(&personas, &assignments, &run)
    };
    let html = render_html(&input).unwrap();
    for id in ["prediction", "calibration", "lift", "migration", "drift"] {
        let body = section(&html, id);
        assert!(body.contains("<svg role=\"img\" aria-label=\""), "{id}");
        assert!(body.contains("<table>"), "{id}");
    }
    let prediction = section(&html, "prediction");
    assert!(prediction.contains(&format!(
        "<tr>{}<td>purchase</td><td>ok</td>{}{}{}{}{}{}</tr>",
        head("logistic"),
        num("0.812"),
        num("0.510"),
        num("0.170"),
        num("2.750"),
        num("120"),
        num("880")
    )));
    assert!(section(&html, "lift").contains(&format!(
        "<tr>{}<td>purchase</td>{}{}</tr>",
        head("bgnbd"),
        num("1"),
        num("3.125")
    )));
    let migration = section(&html, "migration");
    assert!(migration.contains(&format!(
        "<tr>{}<td>#2 lapsed · beauty</td>{}{}</tr>",
        head("#1 fashion · home"),
        num("17"),
        num("3.4")
    )));
    assert!(migration.contains(&format!("{}<td>#4 garden · sports</td>", head("(none)"))));
    assert!(migration.contains("1,323 of 1,352"));
    let drift = section(&html, "drift");
    assert!(drift.contains(&format!(
        "<tr>{}{}<td>alert</td></tr>",
        head("monetary"),
        num("0.3125")
    )));
    assert!(drift.contains("1 alert, 1 warning, 1 ok"));
    assert!(!html.to_ascii_lowercase().contains("http"));
    assert_eq!(html, render_html(&input).unwrap());

    // The same tables as files in a run folder are picked up by name.
    let dir = fixture_copy();
    let [mut a, mut b, mut c, mut d, mut e] = optional_tables();
    for (df, name) in [
        (&mut a, files::MODEL_REPORT),
        (&mut b, files::CALIBRATION),
        (&mut c, files::LIFT),
        (&mut d, files::MIGRATION),
        (&mut e, files::DRIFT),
    ] {
        userlens_report::write_csv(df, &dir.path().join(name)).unwrap();
    }
    let from_files = std::fs::read_to_string(render_run_dir(dir.path()).unwrap()).unwrap();
    for id in ["prediction", "calibration", "lift", "migration", "drift"] {
        assert!(
            from_files.contains(&format!("<section id=\"{id}\"")),
            "{id}"
        );
    }
}

#[test]
fn the_projection_plots_a_seeded_sample_of_at_most_5000_users() {
    let n = 6_000;
    let persona: Vec<u32> = (0..n).map(|i| 1 + (i % 3) as u32).collect();
    let monetary: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f64 + (i % 3) as f64 * 500.0)
        .collect();
    let recency: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 365) as f64).collect();
    let night: Vec<f64> = (0..n).map(|i| ((i * 31) % 100) as f64 / 100.0).collect();
    let assignments = df!(
        "user_id" => (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>(),
        "persona_id" => persona,
        "label" => vec!["x"; n],
        "distance" => vec![1.0; n],
        "monetary" => monetary,
        "recency_days" => recency,
        "night_share" => night,
    )
    .unwrap();
    let personas = df!(
        "persona_id" => [1u32, 2, 3],
        "label" => ["a", "b", "c"],
        "users" => [2000u32, 2000, 2000],
    )
    .unwrap();
    let run = run_from(serde_json::json!({"pipeline": "big", "seed": 7}));
    let html = render_html(&ReportInput::new(&personas, &assignments, &run)).unwrap();
    let projection = section(&html, "projection");
    assert!(projection.contains("a random sample of 5,000 of the 6,000 users (seed 7)"));
    let plotted: usize = projection
        .split("<tr>")
        .skip(2)
        .take(3)
        .map(|row| {
            // The row's first cell is its head, so the third number is its fourth cell.
            let cells: Vec<&str> = row.split("<td class=\"num\">").collect();
            cells[2]
                .split('<')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(plotted, 5_000);
    // Shares are derived from users when the table has none.
    assert!(section(&html, "sizes").contains(&num("33.33")));
}

#[test]
fn written_reports_are_whole_files() {
    let personas = read_csv(&fixture().join(files::PERSONAS));
    let assignments = read_csv(&fixture().join(files::USER_PERSONAS));
    let run = run_record();
    let input = ReportInput::new(&personas, &assignments, &run);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/report.html");
    write_html(&input, &path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        render_html(&input).unwrap()
    );
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn errors_name_the_file_or_the_missing_column() {
    let dir = tempfile::tempdir().unwrap();
    let err = render_run_dir(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to read `{}`",
            dir.path().join("personas.csv").display()
        )
    );

    let copy = fixture_copy();
    std::fs::write(copy.path().join(files::RUN), "{ not json").unwrap();
    let err = render_run_dir(copy.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to parse `{}`",
            copy.path().join("run.json").display()
        )
    );

    let personas = df!("persona_id" => [1u32], "label" => ["a"]).unwrap();
    let assignments = df!("persona_id" => [1u32]).unwrap();
    let run = RunView::default();
    let err = render_html(&ReportInput::new(&personas, &assignments, &run)).unwrap_err();
    assert_eq!(err.to_string(), "table `personas` has no `users` column");

    let personas = df!("persona_id" => [1u32], "label" => ["a"], "users" => ["many"]).unwrap();
    let err = render_html(&ReportInput::new(&personas, &assignments, &run)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `users` of table `personas` is not numeric"
    );
}

#[test]
fn degenerate_runs_still_render() {
    // No users, no features, an empty run record: the page says so instead of failing.
    let personas = df!(
        "persona_id" => Vec::<u32>::new(),
        "label" => Vec::<String>::new(),
        "users" => Vec::<u32>::new(),
    )
    .unwrap();
    let assignments = df!("persona_id" => Vec::<u32>::new()).unwrap();
    let run = RunView::default();
    let html = render_html(&ReportInput::new(&personas, &assignments, &run)).unwrap();
    assert!(html.contains("This run has no personas."));
    assert!(html.contains("No projection: "));

    // One user, one persona, one feature, odd values.
    let personas =
        df!("persona_id" => [1i64], "label" => [""], "users" => [1u32], "share" => [f64::NAN])
            .unwrap();
    let assignments = df!("persona_id" => [1i64], "monetary" => [f64::INFINITY]).unwrap();
    let html = render_html(&ReportInput::new(&personas, &assignments, &run)).unwrap();
    assert!(html.contains("<section id=\"sizes\""));

    // Absurd numbers everywhere: drawn pinned, tabled as they are, never a panic.
    let huge = f64::MAX;
    let personas = df!(
        "persona_id" => [1i64, 2],
        "label" => ["a", "b"],
        "users" => [huge, 0.0],
        "share" => [huge, -1.0],
    )
    .unwrap();
    let assignments = df!(
        "persona_id" => [1i64, 2, 1, 2],
        "x" => [huge, -huge, 0.0, 1.0],
        "y" => [1e300, 2.0, 3.0, 4.0],
        "z" => [1.0, 2.0, 4.0, 8.0],
        "w" => [0.5, 0.25, 1.5, 3.5],
    )
    .unwrap();
    let k_selection = df!(
        "k" => [1e300, -1e300],
        "silhouette" => [huge, -huge],
        "chosen" => [true, true],
    )
    .unwrap();
    let model_report = df!(
        "predictor" => [Some("p"), None],
        "target" => ["t", "t"],
        "auc" => [f64::NAN, huge],
    )
    .unwrap();
    let calibration = df!(
        "predictor" => ["p", "p"],
        "target" => ["t", "t"],
        "mean_predicted" => [huge, -3.0],
        "observed_rate" => [f64::INFINITY, 2.0],
    )
    .unwrap();
    let lift = df!(
        "predictor" => ["p"],
        "target" => ["t"],
        "decile" => [1e18],
        "lift" => [-huge],
    )
    .unwrap();
    let migration = df!(
        "from_persona" => ["1", "x"],
        "to_persona" => ["9", ""],
        "users" => [huge, huge],
    )
    .unwrap();
    let drift = df!(
        "feature" => ["f", "g"],
        "psi" => [-huge, f64::NAN],
        "level" => [None, Some("odd")],
    )
    .unwrap();
    let input = ReportInput {
        k_selection: Some(&k_selection),
        model_report: Some(&model_report),
        calibration: Some(&calibration),
        lift: Some(&lift),
        migration: Some(&migration),
        drift: Some(&drift),
        ..ReportInput::new(&personas, &assignments, &run)
    };
    let html = render_html(&input).unwrap();
    for id in [
        "k-selection",
        "prediction",
        "calibration",
        "lift",
        "migration",
        "drift",
    ] {
        assert!(html.contains(&format!("<section id=\"{id}\"")), "{id}");
    }
}

#[test]
fn the_run_record_notes_are_listed_escaped() {
    let dir = fixture_copy();
    let mut record = run_json();
    record["notes"] = serde_json::json!(["users-table columns left out: user_<b>orders</b>"]);
    std::fs::write(
        dir.path().join(files::RUN),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let html = std::fs::read_to_string(render_run_dir(dir.path()).unwrap()).unwrap();
    assert!(
        html.contains("<li>users-table columns left out: user_&lt;b&gt;orders&lt;/b&gt;</li>"),
        "the note is missing or unescaped"
    );
    assert!(
        !render_fixture().contains("class=\"notes\""),
        "no notes, no list"
    );
}
