//! Personas of logs of purchases only (issue 21): a line-item export has no views,
//! searches, carts or ratings, so those families are left out and said to be; the
//! hour and the weekday of a few purchases must not name the personas.

mod common;

use std::path::Path;

use common::{read_csv, repo, text, userlens};
use userlens_model::{FEATURES, FeatureFamily};

const PIPELINE: &str = r#"
[pipeline]
name = "purchases"
seed = 3
output = "out"

[stages.ingest]
uses = "ingest"
with = { path = "purchases.csv" }

[stages.features]
uses = "features"
needs = ["ingest"]

[stages.personas]
uses = "profile"
needs = ["features"]

[stages.report]
uses = "report"
needs = ["features", "personas"]
"#;

/// The CDNOW sample as `pipelines/cdnow.toml` reads it, with every feature family
/// and a profile stage.
const CDNOW: &str = r#"
[pipeline]
name = "cdnow_personas"
seed = 42
output = "out"

[stages.ingest]
uses = "ingest"
[stages.ingest.with]
path = "CDNOW_sample.txt"
format = "text"
column_names = ["customer", "sample", "date", "cds", "dollars"]
time_format = "%Y%m%d"
max_quarantine_share = 0.0
drop_duplicates = false
columns = { user_id = "customer", event_time = "date", amount = "dollars", event_type = { constant = "purchase" } }

[stages.features]
uses = "features"
needs = ["ingest"]

[stages.personas]
uses = "profile"
needs = ["features"]

[stages.report]
uses = "report"
needs = ["features", "personas"]
"#;

/// Keeps the purchases of the generated `events.csv`, as a transactions export has
/// them: user, time, item and amount, nothing else.
fn purchases_only(dir: &Path) {
    let mut out = String::from("user_id,event_time,event_type,item_id,amount\n");
    for row in read_csv(&dir.join("events.csv")) {
        if row["event_type"] == "purchase" {
            out.push_str(&format!(
                "{},{},purchase,{},{}\n",
                row["user_id"], row["event_time"], row["item_id"], row["amount"]
            ));
        }
    }
    std::fs::write(dir.join("purchases.csv"), out).unwrap();
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("out/run.json")).unwrap()).unwrap()
}

fn labels(dir: &Path) -> Vec<String> {
    read_csv(&dir.join("out/personas.csv"))
        .into_iter()
        .map(|r| r["label"].clone())
        .collect()
}

/// Labels none of whose terms is a time-of-day word of the catalogue.
fn assert_no_time_of_day(labels: &[String]) {
    let words: Vec<&str> = FEATURES
        .iter()
        .filter(|f| f.family == FeatureFamily::TimeOfDay)
        .flat_map(|f| [f.high, f.low])
        .collect();
    for label in labels {
        assert!(
            !label.split(" · ").any(|term| words.contains(&term)),
            "{label:?} is named after the time of day: {labels:?}"
        );
    }
}

/// Labels that open with what their users are worth and how they buy.
fn assert_led_by_value(labels: &[String]) {
    let nouns = ["customers", "buyers", "regulars", "visitors"];
    for label in labels {
        let first = label.split(" · ").next().unwrap_or_default();
        assert!(
            nouns.iter().any(|noun| first.ends_with(noun)),
            "{label:?} does not open with value: {labels:?}"
        );
    }
}

/// `family` of each persona-model family weight, with its share.
fn family_shares(record: &serde_json::Value) -> Vec<(String, f64)> {
    record["personas"]["family_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["family"].as_str().unwrap().to_string(),
                w["share"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_purchase_only_log_leaves_out_empty_families_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::generate(dir, 600, 11);
    purchases_only(dir);
    std::fs::write(dir.join("purchases.toml"), PIPELINE).unwrap();
    let out = userlens(&["run", "purchases.toml", "-q"], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let record = run_json(dir);
    let left_out: Vec<&str> = record["personas"]["families_left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["family"].as_str().unwrap())
        .collect();
    assert_eq!(
        left_out,
        ["funnel", "categories", "search", "satisfaction"],
        "{record:#}"
    );
    let features: Vec<&str> = record["personas"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for feature in &features {
        let family = userlens_model::feature_info(feature).map(|f| f.family);
        assert!(
            !matches!(
                family,
                Some(FeatureFamily::Funnel | FeatureFamily::Search | FeatureFamily::Satisfaction)
            ),
            "{feature} is clustered on: {features:?}"
        );
    }
    assert!(features.contains(&"monetary") && features.contains(&"frequency"));
    let notes = record["notes"].to_string();
    assert!(
        notes.contains(
            "personas: feature families left out of the clustering, as they carry no \
             information in this log: funnel (every value equal or missing), categories \
             (every value equal), search (every value equal), satisfaction (every value \
             equal or missing)"
        ),
        "{notes}"
    );

    // the report's persona section says it too
    let html = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
    let personas = &html[html.find("id=\"personas\"").unwrap()..];
    let personas = &personas[..personas.find("</section>").unwrap_or(personas.len())];
    assert!(
        personas.contains(
            "Left out of the clustering because they carry no information in this log: \
             funnel (every value equal or missing), categories (every value equal)"
        ),
        "{personas}"
    );

    // A few purchases say little about the hour: value names the personas first (the
    // generator's night searchers do buy at night, which may follow).
    let shares = family_shares(&record);
    let share = |family: &str| {
        shares
            .iter()
            .find(|(f, _)| f == family)
            .map_or(0.0, |(_, s)| *s)
    };
    assert!(share("time_of_day") < share("rfm"), "{shares:?}");
    let labels = labels(dir);
    assert_led_by_value(&labels);
    for words in ["high-value", "one-time"] {
        assert!(
            labels.iter().any(|l| l.contains(words)),
            "no persona is {words}: {labels:?}"
        );
    }
}

#[test]
fn cdnow_personas_are_named_by_value_not_by_the_weekday() {
    // A real purchase-only log with dates and no times: before issue 21 its personas
    // were "weekday" and "weekend · low activity".
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(
        repo().join("sample_data/cdnow/CDNOW_sample.txt"),
        dir.join("CDNOW_sample.txt"),
    )
    .unwrap();
    std::fs::write(dir.join("cdnow.toml"), CDNOW).unwrap();
    let out = userlens(&["run", "cdnow.toml", "--as-of", "1997-10-01", "-q"], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let record = run_json(dir);
    let shares = family_shares(&record);
    let time_of_day = shares.iter().find(|(f, _)| f == "time_of_day");
    assert!(
        time_of_day.is_some_and(|(_, s)| *s < 0.05),
        "the weekday of one or two purchases is noise: {shares:?}"
    );
    let labels = labels(dir);
    assert!(labels.len() >= 2, "{labels:?}");
    assert_no_time_of_day(&labels);
    assert_led_by_value(&labels);
}
