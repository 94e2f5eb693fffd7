//! The recommend stage through the binary: `userlens profile` on generated events.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{generate, read_csv, text, userlens};

/// (user, item) pairs of the events of the given types.
fn pairs(events: &[BTreeMap<String, String>], types: &[&str]) -> BTreeSet<(String, String)> {
    events
        .iter()
        .filter(|e| types.contains(&e["event_type"].as_str()) && !e["item_id"].is_empty())
        .map(|e| (e["user_id"].clone(), e["item_id"].clone()))
        .collect()
}

#[test]
fn profile_writes_recommendations_that_respect_the_exclusion() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 240, 4);
    let events = read_csv(&dir.path().join("events.csv"));
    for (exclude, types, out) in [
        ("purchased", &["purchase"][..], "out"),
        (
            "seen",
            &["view", "add_to_cart", "purchase", "rating"][..],
            "seen",
        ),
    ] {
        let set = format!("recommend.exclude=\"{exclude}\"");
        let run = userlens(
            &["profile", "events.csv", "--out", out, "--set", &set],
            dir.path(),
        );
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
        let out = dir.path().join(out);
        let recs = read_csv(&out.join("user_recommendations.csv"));
        let users: BTreeSet<&str> = events.iter().map(|e| e["user_id"].as_str()).collect();
        assert_eq!(recs.len(), users.len() * 10, "{exclude}");
        let excluded = pairs(&events, types);
        for r in &recs {
            let pair = (r["user_id"].clone(), r["item_id"].clone());
            assert!(!excluded.contains(&pair), "{exclude}: {pair:?} recommended");
            assert!(!r["because"].is_empty());
        }
        let report = read_csv(&out.join("recommend_report.csv"));
        let models: Vec<&str> = report.iter().map(|r| r["model"].as_str()).collect();
        assert_eq!(models, ["popular", "persona_popular", "item_knn", "als"]);
        assert_eq!(report.iter().filter(|r| r["chosen"] == "true").count(), 1);
        let chosen = report.iter().find(|r| r["chosen"] == "true").unwrap();
        assert_eq!(recs[0]["model"], chosen["model"]);
        let personas = read_csv(&out.join("persona_recommendations.csv"));
        assert!(!personas.is_empty());
        assert!(
            personas
                .iter()
                .all(|p| p["rank"].parse::<u32>().unwrap() <= 10)
        );
        assert!(!read_csv(&out.join("similar_items.csv")).is_empty());
        let page = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert!(
            page.contains("Each persona&#39;s top items")
                || page.contains("Each persona's top items")
        );
        // The lists, written a block at a time, are the stage's rows and come back
        // unchanged from its artifact when a second run reuses it.
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
        let stages = record["stages"].as_array().unwrap();
        let stage = stages.iter().find(|s| s["name"] == "recommend").unwrap();
        assert_eq!(stage["rows_out"].as_u64(), Some(recs.len() as u64));
        let bytes = std::fs::read(out.join("user_recommendations.csv")).unwrap();
        let again = userlens(
            &["profile", "events.csv", "--out", "again", "--set", &set],
            dir.path(),
        );
        assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("again/run.json")).unwrap(),
        )
        .unwrap();
        let stages = record["stages"].as_array().unwrap();
        assert!(
            stages.iter().all(|s| s["status"] == "skipped"),
            "{stages:?}"
        );
        let reused = std::fs::read(dir.path().join("again/user_recommendations.csv")).unwrap();
        assert_eq!(reused, bytes, "{exclude}");
    }
}

#[test]
fn a_bad_recommend_parameter_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 20, 1);
    let run = userlens(
        &["profile", "events.csv", "--set", "recommend.model=\"alss\""],
        dir.path(),
    );
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("unknown recommender `alss` (did you mean `als`?)"),
        "{stderr}"
    );
}

#[test]
fn a_pipeline_of_ingest_and_recommend_counts_its_users() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 60, 2);
    let pipeline = "[pipeline]\nname = \"recs\"\noutput = \"out\"\n\n\
                    [stages.ingest]\nuses = \"ingest\"\nwith = { path = \"events.csv\" }\n\n\
                    [stages.recommend]\nuses = \"recommend\"\nneeds = [\"ingest\"]\n";
    std::fs::write(dir.path().join("recs.toml"), pipeline).unwrap();
    let run = userlens(&["run", "recs.toml", "-q"], dir.path());
    assert!(run.status.success(), "{}", text(&run.stderr));
    let users: BTreeSet<String> = (read_csv(&dir.path().join("events.csv")).into_iter())
        .map(|e| e["user_id"].clone())
        .collect();
    let record = std::fs::read_to_string(dir.path().join("out/run.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(
        record["rows"]["users"],
        users.len() as u64,
        "{}",
        record["rows"]
    );
}
