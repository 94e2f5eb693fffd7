//! Runs the recommend stage's work on a canonical event CSV and scores other
//! recommenders' lists by the same protocol (`make bench`'s recommendation peer).
//!
//!     recs_eval EVENTS.csv --as-of 2026-06-30 [--personas user_personas.csv]
//!         [--peer DIR] [--set key=value]...
//!
//! Prints one line per recommender (`name ndcg precision recall map hit_rate
//! coverage novelty users`) and the time of `recommend`. `--peer DIR` scores every
//! `DIR/*.csv` (`user_id,rank,item_id`, made at the cutoff: the as-of date minus
//! the horizon, with the user's training items excluded).

use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;
use userlens_recommend::{RecommendParams, metrics::Summary, recommend, score_lists};

fn main() {
    if let Err(e) = run() {
        eprintln!("recs_eval: {e}");
        std::process::exit(2);
    }
}

/// The canonical events of a CSV, times as microseconds.
fn read_events(path: &Path) -> Result<DataFrame, Box<dyn std::error::Error>> {
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))?
        .finish()?;
    let times: Int64Chunked = df
        .column("event_time")?
        .str()?
        .iter()
        .map(|t| t.and_then(userlens_model::time::parse_auto))
        .collect();
    df.with_column(times.with_name("event_time".into()).into_column())?;
    let rating = df.column("rating")?.cast(&DataType::Float64)?;
    df.with_column(rating)?;
    Ok(df)
}

fn line(name: &str, s: &Summary) {
    println!(
        "{name:<16} ndcg={:.4} precision={:.4} recall={:.4} map={:.4} hit_rate={:.4} coverage={:.4} novelty={:.2} users={}",
        s.ndcg, s.precision, s.recall, s.map, s.hit_rate, s.coverage, s.novelty, s.users
    );
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut events, mut as_of, mut personas, mut peer) = (None, None, None, None);
    let mut set = String::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--as-of" => {
                as_of = args
                    .next()
                    .as_deref()
                    .and_then(userlens_model::time::parse_auto)
            }
            "--personas" => personas = args.next().map(PathBuf::from),
            "--peer" => peer = args.next().map(PathBuf::from),
            "--set" => {
                let kv = args.next().ok_or("--set needs key=value")?;
                let (k, v) = kv.split_once('=').ok_or("--set needs key=value")?;
                set.push_str(&format!("{k} = {v}\n"));
            }
            _ => events = Some(PathBuf::from(arg)),
        }
    }
    let events = events.ok_or("give an events CSV")?;
    let as_of = as_of.ok_or("give --as-of YYYY-MM-DD")?;
    let params: RecommendParams = toml::from_str(&set)?;
    let params = params.check()?;
    let started = Instant::now();
    let df = read_events(&events)?;
    let read = started.elapsed().as_secs_f64();
    let assignments = match personas {
        Some(path) => Some(
            CsvReadOptions::default()
                .with_has_header(true)
                .try_into_reader_with_file_path(Some(path))?
                .finish()?,
        ),
        None => None,
    };
    let started = Instant::now();
    let out = recommend(
        vec![df.clone().lazy()],
        assignments.as_ref(),
        as_of,
        &params,
        42,
    )?;
    let took = started.elapsed().as_secs_f64();
    for row in &out.rows {
        match &row.outcome {
            Ok(s) => line(row.model.name(), s),
            Err(reason) => println!("{:<16} skipped: {reason}", row.model.name()),
        }
    }
    for note in &out.notes {
        println!("note: {note}");
    }
    println!(
        "userlens chosen={} read={read:.2}s recommend={took:.2}s rows={}",
        out.chosen.map_or("none", |m| m.name()),
        out.user_recommendations.height()
    );
    if let Some(dir) = peer {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        for file in files {
            let lists = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .try_into_reader_with_file_path(Some(file.clone()))?
                .finish()?;
            let s = score_lists(&[df.clone().lazy()], as_of, &params, &lists)?;
            let name = file
                .file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into_owned());
            line(&format!("peer:{name}"), &s);
        }
    }
    Ok(())
}
