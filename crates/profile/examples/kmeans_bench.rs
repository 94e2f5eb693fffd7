//! Times `userlens_profile::profile` with a fixed k on a features table, for
//! `bench/kmeans_vs_sklearn.py`.
//!
//! usage: kmeans_bench FEATURES.(parquet|csv) K [SEED] [name=value ...]
//!
//! The table needs a text `user_id` column; every other numeric column is a feature
//! (name them so that `userlens_model::is_heavy_tailed` is false, e.g. `f00`, or they
//! are log-transformed). Optional `name=value` overrides of the profile parameters:
//! `n_init`, `max_iter`, `tolerance`, `fit_sample`, `silhouette_sample`.
//!
//! Prints one JSON line: `n`, `d`, `k`, `inertia` (from `k_selection`, in the
//! standardised space), `fit_seconds` (the `profile` call only, not reading),
//! `kmeans_seconds` and `kmeans_inertia` (the k-means step alone,
//! `userlens_profile::kmeans`, on the same standardised matrix), and the parameters
//! used.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use polars::prelude::*;
use userlens_profile::{KChoice, ProfileParams, profile};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: kmeans_bench FEATURES.(parquet|csv) K [SEED] [name=value ...]\n  \
     name: n_init | max_iter | tolerance | fit_sample | silhouette_sample";

fn read_table(path: &PathBuf) -> Result<DataFrame, Box<dyn Error>> {
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let df = if is_parquet {
        ParquetReader::new(std::fs::File::open(path)?).finish()?
    } else {
        let overwrite = Schema::from_iter([Field::new("user_id".into(), DataType::String)]);
        CsvReadOptions::default()
            .with_has_header(true)
            .with_schema_overwrite(Some(Arc::new(overwrite)))
            .try_into_reader_with_file_path(Some(path.clone()))?
            .finish()?
    };
    Ok(df)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err(USAGE.into());
    }
    let path = PathBuf::from(&args[0]);
    let k: usize = args[1].parse().map_err(|_| USAGE)?;
    let mut rest = &args[2..];
    let mut seed = 0u64;
    if let Some(first) = rest.first()
        && !first.contains('=')
    {
        seed = first.parse().map_err(|_| USAGE)?;
        rest = &rest[1..];
    }
    let mut params = ProfileParams {
        k: KChoice::Fixed(k),
        ..ProfileParams::default()
    };
    for arg in rest {
        let (name, value) = arg.split_once('=').ok_or(USAGE)?;
        match name {
            "n_init" => params.n_init = value.parse()?,
            "max_iter" => params.max_iter = value.parse()?,
            "tolerance" => params.tolerance = value.parse()?,
            "fit_sample" => params.fit_sample = value.parse()?,
            "silhouette_sample" => params.silhouette_sample = value.parse()?,
            _ => return Err(format!("unknown parameter `{name}`\n{USAGE}").into()),
        }
    }
    let checked = params.clone().check()?;

    let features = read_table(&path)?;
    let n = features.height();
    let d = features
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != "user_id" && c.dtype().is_primitive_numeric())
        .count();

    let start = Instant::now();
    let result = profile(&features, &checked, seed)?;
    let fit_seconds = start.elapsed().as_secs_f64();

    let row = result
        .k_selection
        .column("k")?
        .cast(&DataType::UInt64)?
        .u64()?
        .iter()
        .position(|v| v == Some(k as u64))
        .unwrap_or(0);
    let inertia = result
        .k_selection
        .column("inertia")?
        .cast(&DataType::Float64)?
        .f64()?
        .get(row)
        .ok_or("no inertia in k_selection")?;
    // The k-means step alone, on the matrix `profile` clusters (the numeric columns
    // standardised with the population sd): what scikit-learn's `.fit` does.
    let columns: Vec<Vec<f64>> = features
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != "user_id" && c.dtype().is_primitive_numeric())
        .map(|c| -> Result<Vec<f64>, Box<dyn Error>> {
            let values = c.cast(&DataType::Float64)?;
            let values: Vec<f64> = values.f64()?.iter().map(|v| v.unwrap_or(0.0)).collect();
            let mean = values.iter().sum::<f64>() / n as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
            Ok(values.iter().map(|v| (v - mean) / sd).collect())
        })
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(n * d);
    for i in 0..n {
        rows.extend(columns.iter().map(|column| column[i]));
    }
    let start = Instant::now();
    let (_, kmeans_inertia) = userlens_profile::kmeans(rows, d, k, &checked, seed)?;
    let kmeans_seconds = start.elapsed().as_secs_f64();

    let line = serde_json::json!({
        "kmeans_seconds": kmeans_seconds,
        "kmeans_inertia": kmeans_inertia,
        "n": n,
        "d": d,
        "k": k,
        "k_found": result.model.k,
        "features_used": result.model.features.len(),
        "log_transformed": result.model.log_transformed.len(),
        "seed": seed,
        "inertia": inertia,
        "fit_seconds": fit_seconds,
        "n_init": params.n_init,
        "max_iter": params.max_iter,
        "tolerance": params.tolerance,
        "fit_sample": params.fit_sample,
        "silhouette_sample": params.silhouette_sample,
        "threads": rayon_threads(),
    });
    println!("{line}");
    Ok(())
}

/// Threads rayon will use: `RAYON_NUM_THREADS` if set, else the available cores.
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get()))
}
