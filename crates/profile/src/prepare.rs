//! From feature columns to the scaled matrix that clustering sees.

use polars::prelude::*;
use rayon::prelude::*;
use userlens_model::is_heavy_tailed;
use userlens_model::stats::Standardiser;

use crate::error::{Result, WhileDoing};
use crate::matrix::Matrix;

/// The clustering matrix and how it was made from the raw columns.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// `n x d` z-scores of the kept features.
    pub(crate) matrix: Matrix,
    /// Kept features, in matrix column order.
    pub(crate) features: Vec<String>,
    /// Kept features that were log-transformed.
    pub(crate) log_transformed: Vec<String>,
    /// Per kept feature: mean in the transformed space.
    pub(crate) center: Vec<f64>,
    /// Per kept feature: population standard deviation in the transformed space.
    pub(crate) scale: Vec<f64>,
    /// Per kept feature: median used for missing values, in the transformed space.
    pub(crate) impute: Vec<f64>,
    /// Candidate features without variance (including all-null ones).
    pub(crate) dropped_constant: Vec<String>,
    /// Per kept feature: share of users whose value is missing (imputed).
    pub(crate) missing_share: Vec<f64>,
}

/// Reads `candidates` (numeric columns of `df`) into one row-major matrix, applies the
/// signed log to heavy-tailed features, imputes medians, standardises, and drops
/// constant columns.
pub(crate) fn prepare(df: &DataFrame, candidates: &[String]) -> Result<Prepared> {
    let n = df.height();
    let width = candidates.len();
    let mut raw = vec![f64::NAN; n * width];
    for (j, name) in candidates.iter().enumerate() {
        let heavy = is_heavy_tailed(name);
        let context = || format!("read feature `{name}` as a number");
        let column = df.column(name).while_doing(context)?;
        let series = column
            .as_materialized_series()
            .cast(&DataType::Float64)
            .while_doing(context)?;
        let values = series.f64().while_doing(context)?;
        for (i, value) in values.iter().enumerate().take(n) {
            if let Some(v) = value
                && v.is_finite()
            {
                raw[i * width + j] = Standardiser::transform(v, heavy);
            }
        }
    }

    // Columns are independent: each is imputed and scaled on its own thread.
    let fitted: Vec<Option<Standardiser>> = (0..width)
        .into_par_iter()
        .map(|j| Standardiser::fit((0..n).map(|i| raw[i * width + j])))
        .collect();
    let mut kept: Vec<(usize, Standardiser)> = Vec::new();
    let mut dropped_constant = Vec::new();
    for (j, (name, fit)) in candidates.iter().zip(fitted).enumerate() {
        match fit {
            Some(scaling) => kept.push((j, scaling)),
            None => dropped_constant.push(name.clone()),
        }
    }

    let d = kept.len();
    let mut data = vec![0.0; n * d];
    if d > 0 {
        data.par_chunks_mut(d).enumerate().for_each(|(i, out)| {
            let row = &raw[i * width..(i + 1) * width];
            for (slot, (j, scaling)) in out.iter_mut().zip(&kept) {
                *slot = scaling.z(row[*j]);
            }
        });
    }

    let features: Vec<String> = kept.iter().map(|(j, _)| candidates[*j].clone()).collect();
    let missing_share = kept
        .iter()
        .map(|(j, _)| {
            (0..n).filter(|i| raw[i * width + j].is_nan()).count() as f64 / n.max(1) as f64
        })
        .collect();
    Ok(Prepared {
        matrix: Matrix::new(n, d, data),
        log_transformed: features
            .iter()
            .filter(|f| is_heavy_tailed(f))
            .cloned()
            .collect(),
        center: kept.iter().map(|(_, s)| s.center()).collect(),
        scale: kept.iter().map(|(_, s)| s.scale()).collect(),
        impute: kept.iter().map(|(_, s)| s.impute()).collect(),
        features,
        dropped_constant,
        missing_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_imputes_and_drops() {
        let df = df!(
            "monetary" => [Some(0.0), Some(99.0), None, Some(9.0)],
            "flat" => [0.1, 0.1, 0.1, 0.1],
            "empty" => [None::<f64>, None, None, None],
            "age" => [20i64, 30, 40, 50],
        )
        .unwrap();
        let names: Vec<String> = ["monetary", "flat", "empty", "age"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = prepare(&df, &names).unwrap();
        assert_eq!(p.features, vec!["monetary", "age"]);
        assert_eq!(p.log_transformed, vec!["monetary"]);
        assert_eq!(p.dropped_constant, vec!["flat", "empty"]);
        assert_eq!(p.impute[0], 10f64.ln());
        assert!((p.center[1] - 35.0).abs() < 1e-12);
        assert!((p.scale[1] - 125f64.sqrt()).abs() < 1e-12);
        let m = &p.matrix;
        assert_eq!((m.n(), m.d()), (4, 2));
        for j in 0..2 {
            let col: Vec<f64> = (0..4).map(|i| m.row(i)[j]).collect();
            let mean = col.iter().sum::<f64>() / 4.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
            assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
        }
        // the missing spend is imputed to the median, ln(1 + 9)
        let z = (10f64.ln() - p.center[0]) / p.scale[0];
        assert!((m.row(2)[0] - z).abs() < 1e-12);
    }
}
