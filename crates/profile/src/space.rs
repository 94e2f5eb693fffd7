//! The space users are clustered in: the standardised features weighted so that a
//! group of near-duplicates (events, sessions, active days, views ...) counts about
//! as much as one feature, a mostly imputed feature counts less, a share of a few
//! events counts by the evidence behind it, and no family outweighs what users are
//! worth, then projected on the principal components that hold `pca_variance` of
//! the weighted variance, which leaves out the directions of noise. When behaviour
//! blurs between personas, the duplicated volume features and the noise otherwise
//! decide the clusters; on a log of purchases only, the hour of the day would.
//!
//! The principal components come from a cyclic Jacobi eigen-decomposition of the
//! `d x d` covariance (hand-written: a few dozen features, no LAPACK dependency, and
//! the same bits on every machine); the covariance is summed block by block in row
//! order, as every reduction of [`crate::matrix`].

use rayon::prelude::*;

use userlens_model::FeatureFamily;

use crate::family::{FamilyWeight, VALUE_FAMILIES};
use crate::matrix::{CHUNK_ROWS, Matrix};
use crate::prepare::Shrinkage;

/// Sweeps of the Jacobi rotation before giving up on the last off-diagonal crumbs.
const MAX_SWEEPS: usize = 100;

/// Per feature: `(1 - missing share) / sqrt(sum over features of r²)`, where `r` is
/// the correlation of the columns of covariance `cov` (so `sum r²` is at least 1: a
/// feature with `m` exact copies gets `1 / sqrt(m)`, and the group weighs about one
/// feature).
fn weights(cov: &[f64], d: usize, missing_share: &[f64]) -> Vec<f64> {
    (0..d)
        .map(|j| {
            let diagonal = cov[j * d + j];
            let overlap: f64 = (0..d)
                .map(|l| {
                    let scale = (diagonal * cov[l * d + l]).sqrt();
                    let r = if scale > 0.0 {
                        cov[j * d + l] / scale
                    } else {
                        0.0
                    };
                    r * r
                })
                .sum();
            let present = 1.0 - missing_share.get(j).copied().unwrap_or(0.0);
            if overlap > 0.0 {
                present.clamp(0.0, 1.0) / overlap.sqrt()
            } else {
                0.0
            }
        })
        .collect()
}

/// No other family counts more than the value and behaviour families together: its
/// weighted variance is capped at theirs. Returns the factor per feature.
fn family_caps(variance: &[f64], families: &[Option<FeatureFamily>]) -> Vec<f64> {
    let total = |family: FeatureFamily| -> f64 {
        variance
            .iter()
            .zip(families)
            .filter(|(_, f)| **f == Some(family))
            .map(|(v, _)| v)
            .sum()
    };
    let budget: f64 = VALUE_FAMILIES.iter().map(|&f| total(f)).sum();
    families
        .iter()
        .map(|family| match family {
            Some(f) if budget > 0.0 && !VALUE_FAMILIES.contains(f) => {
                let own = total(*f);
                if own > budget {
                    (budget / own).sqrt()
                } else {
                    1.0
                }
            }
            _ => 1.0,
        })
        .collect()
}

/// Covariance of the columns of `rows` (centred: standardised, and shrunk towards
/// 0), `d x d` row-major, divided by `n`.
fn covariance(rows: &Rows) -> Vec<f64> {
    let (n, d) = (rows.x.n(), rows.x.d());
    let blocks: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|block| {
            let mut sum = vec![0.0; d * d];
            let mut buffer = vec![0.0; d];
            for i in block * CHUNK_ROWS..((block + 1) * CHUNK_ROWS).min(n) {
                let row = rows.row(i, &mut buffer);
                for a in 0..d {
                    let va = row[a];
                    for b in a..d {
                        sum[a * d + b] += va * row[b];
                    }
                }
            }
            sum
        })
        .collect();
    let mut total = vec![0.0; d * d];
    for block in blocks {
        for (t, s) in total.iter_mut().zip(block) {
            *t += s;
        }
    }
    let n = n.max(1) as f64;
    for a in 0..d {
        for b in a..d {
            total[a * d + b] /= n;
            total[b * d + a] = total[a * d + b];
        }
    }
    total
}

/// Eigenvalues (descending) and eigenvectors (columns of a `d x d` row-major
/// matrix, each with its largest component positive) of a symmetric matrix.
fn eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..d)
            .flat_map(|p| (p + 1..d).map(move |q| (p, q)))
            .map(|(p, q)| a[p * d + q] * a[p * d + q])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-14 * norm.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| a[j * d + j].total_cmp(&a[i * d + i]).then(i.cmp(&j)));
    let values: Vec<f64> = order.iter().map(|&i| a[i * d + i].max(0.0)).collect();
    let mut vectors = vec![0.0; d * d];
    for (col, &i) in order.iter().enumerate() {
        let largest = (0..d)
            .map(|k| v[k * d + i])
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if largest < 0.0 { -1.0 } else { 1.0 };
        for k in 0..d {
            vectors[k * d + col] = sign * v[k * d + i];
        }
    }
    (values, vectors)
}

/// What the clustering sees of each feature of the standardised matrix.
pub(crate) struct Columns<'a> {
    /// Per feature: share of users whose value was imputed.
    pub(crate) missing_share: &'a [f64],
    /// Per feature that is an event share: how its z-scores shrink.
    pub(crate) shrink: &'a [Option<Shrinkage>],
    /// Per user: the draws behind their shares, if counted.
    pub(crate) draws: Option<&'a [f64]>,
    /// Per feature: its family, if it has one.
    pub(crate) families: &'a [Option<FeatureFamily>],
    /// The share of the weighted variance the components kept hold.
    pub(crate) kept_variance: f64,
}

/// The rows of the standardised matrix with event shares shrunk, made one at a time
/// so that no second copy of the matrix is needed.
struct Rows<'a> {
    x: &'a Matrix,
    /// Per feature: the shrinkage, when there are counts to shrink by.
    shrink: Vec<(usize, Shrinkage)>,
    draws: &'a [f64],
}

impl<'a> Rows<'a> {
    fn new(x: &'a Matrix, columns: &Columns<'a>) -> Self {
        let draws = columns.draws.unwrap_or(&[]);
        let shrink = if draws.is_empty() {
            Vec::new()
        } else {
            let fits = columns.shrink.iter().enumerate().take(x.d());
            fits.filter_map(|(j, s)| s.map(|s| (j, s))).collect()
        };
        Rows { x, shrink, draws }
    }

    /// Row `i`, shrunk into `buffer` when a feature shrinks.
    fn row<'b>(&'b self, i: usize, buffer: &'b mut [f64]) -> &'b [f64] {
        let row = self.x.row(i);
        if self.shrink.is_empty() {
            return row;
        }
        buffer.copy_from_slice(row);
        let draws = self.draws.get(i).copied().unwrap_or(f64::NAN);
        for &(j, shrink) in &self.shrink {
            buffer[j] *= shrink.factor(draws);
        }
        buffer
    }

    /// Every row, shrunk.
    fn matrix(&self) -> Matrix {
        if self.shrink.is_empty() {
            return self.x.clone();
        }
        let (n, d) = (self.x.n(), self.x.d());
        let mut data = vec![0.0; n * d];
        data.par_chunks_mut(d.max(1))
            .enumerate()
            .for_each(|(i, out)| {
                let mut buffer = vec![0.0; d];
                out.copy_from_slice(self.row(i, &mut buffer));
            });
        Matrix::new(n, d, data)
    }
}

/// The space users are clustered in.
pub(crate) struct Space {
    /// Users on the kept principal components.
    pub(crate) matrix: Matrix,
    /// Principal components kept.
    pub(crate) components: usize,
    /// How much each family clustered on counts, in family order.
    pub(crate) families: Vec<FamilyWeight>,
}

/// The weighted, shrunk features of `x` on their leading principal components; the
/// shrunk `x` itself when it has one feature or no variance.
pub(crate) fn clustering_space(x: &Matrix, columns: &Columns) -> Space {
    let (n, d) = (x.n(), x.d());
    let rows = Rows::new(x, columns);
    let unchanged = || Space {
        matrix: rows.matrix(),
        components: d,
        families: Vec::new(),
    };
    if d < 2 || n == 0 {
        return unchanged();
    }
    let cov = covariance(&rows);
    let mut w = weights(&cov, d, columns.missing_share);
    let variance: Vec<f64> = (0..d).map(|j| w[j] * w[j] * cov[j * d + j]).collect();
    let caps = family_caps(&variance, columns.families);
    for (w, cap) in w.iter_mut().zip(&caps) {
        *w *= cap;
    }
    let mut weighted = vec![0.0; d * d];
    for a in 0..d {
        for b in 0..d {
            weighted[a * d + b] = w[a] * w[b] * cov[a * d + b];
        }
    }
    let families = family_weights(&weighted, d, columns.families, &caps);
    let (values, vectors) = eigen(weighted, d);
    let total: f64 = values.iter().sum();
    if total <= 0.0 {
        return unchanged();
    }
    let mut kept = 0;
    let mut held = 0.0;
    while kept < d && held < columns.kept_variance * total {
        held += values[kept];
        kept += 1;
    }
    let kept = kept.max(1);
    let mut data = vec![0.0; n * kept];
    data.par_chunks_mut(kept).enumerate().for_each_init(
        || vec![0.0; d],
        |buffer, (i, out)| {
            let row = rows.row(i, buffer);
            for (c, slot) in out.iter_mut().enumerate() {
                *slot = (0..d).map(|j| row[j] * w[j] * vectors[j * d + c]).sum();
            }
        },
    );
    Space {
        matrix: Matrix::new(n, kept, data),
        components: kept,
        families,
    }
}

/// Each family's share of the trace of the weighted covariance, with its cap.
fn family_weights(
    weighted: &[f64],
    d: usize,
    families: &[Option<FeatureFamily>],
    caps: &[f64],
) -> Vec<FamilyWeight> {
    let total: f64 = (0..d).map(|j| weighted[j * d + j]).sum();
    FeatureFamily::ALL
        .iter()
        .filter_map(|&family| {
            let members: Vec<usize> = (0..d.min(families.len()))
                .filter(|&j| families[j] == Some(family))
                .collect();
            let first = *members.first()?;
            let own: f64 = members.iter().map(|&j| weighted[j * d + j]).sum();
            Some(FamilyWeight {
                family,
                features: members.len(),
                share: if total > 0.0 { own / total } else { 0.0 },
                scale: caps[first],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_recovers_a_known_decomposition() {
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1 along (1, 1) and (1, -1).
        let (values, vectors) = eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        let h = 0.5f64.sqrt();
        assert!((vectors[0] - h).abs() < 1e-12 && (vectors[2] - h).abs() < 1e-12);
        assert!((vectors[1].abs() - h).abs() < 1e-12 && (vectors[3].abs() - h).abs() < 1e-12);
    }

    #[test]
    fn duplicates_weigh_as_one_feature_and_missing_ones_less() {
        // Columns 0 and 1 are copies, column 2 is independent of them.
        let rows = [
            [1.0, 1.0, 1.0],
            [-1.0, -1.0, 1.0],
            [1.0, 1.0, -1.0],
            [-1.0, -1.0, -1.0],
        ];
        let x = Matrix::new(4, 3, rows.concat());
        let columns = Columns {
            missing_share: &[0.0, 0.0, 0.0],
            shrink: &[None, None, None],
            draws: None,
            families: &[None, None, None],
            kept_variance: 0.85,
        };
        let w = weights(&covariance(&Rows::new(&x, &columns)), 3, &[0.0, 0.0, 0.5]);
        let h = 0.5f64.sqrt();
        assert!((w[0] - h).abs() < 1e-12 && (w[1] - h).abs() < 1e-12);
        assert!((w[2] - 0.5).abs() < 1e-12);
        let space = clustering_space(&x, &columns);
        // Two directions carry the variance: the copies' and the third column's.
        assert_eq!(space.components, 2);
        assert_eq!(space.matrix.n(), 4);
        // A share of 1 keeps every direction that holds any (the copies' second holds none).
        let all = Columns {
            kept_variance: 1.0,
            ..columns
        };
        assert_eq!(clustering_space(&x, &all).components, 2);
        let one = Columns {
            kept_variance: 0.1,
            ..all
        };
        assert_eq!(clustering_space(&x, &one).components, 1);
    }

    /// Columns of an 8 x 8 Hadamard matrix without the constant one: orthogonal,
    /// centred and of variance 1.
    fn orthogonal(d: usize) -> Matrix {
        let h = |i: usize, j: usize| {
            if (i & j).count_ones().is_multiple_of(2) {
                1.0
            } else {
                -1.0
            }
        };
        let data = (0..8).flat_map(|i| (1..=d).map(move |j| h(i, j))).collect();
        Matrix::new(8, d, data)
    }

    #[test]
    fn no_family_outweighs_the_value_families_together() {
        use FeatureFamily::*;
        let x = orthogonal(6);
        let families = [
            Some(Rfm),
            Some(Interpurchase),
            Some(TimeOfDay),
            Some(TimeOfDay),
            Some(TimeOfDay),
            None,
        ];
        let columns = Columns {
            missing_share: &[0.0; 6],
            shrink: &[None, None, None, None, None, None],
            draws: None,
            families: &families,
            kept_variance: 0.85,
        };
        let space = clustering_space(&x, &columns);
        // time of day holds 3 units of variance against 2: it is scaled to 2
        let capped = (2.0f64 / 3.0).sqrt();
        let want = [
            (Rfm, 1, 0.2, 1.0),
            (TimeOfDay, 3, 0.4, capped),
            (Interpurchase, 1, 0.2, 1.0),
        ];
        assert_eq!(space.families.len(), want.len());
        for (got, (family, features, share, scale)) in space.families.iter().zip(want) {
            assert_eq!((got.family, got.features), (family, features));
            assert!((got.share - share).abs() < 1e-12, "{got:?}");
            assert!((got.scale - scale).abs() < 1e-12, "{got:?}");
        }
        // without a value family there is nothing to compare with
        let columns = Columns {
            families: &[
                None,
                None,
                Some(TimeOfDay),
                Some(TimeOfDay),
                Some(TimeOfDay),
                None,
            ],
            ..columns
        };
        let space = clustering_space(&x, &columns);
        assert!(space.families.iter().all(|w| w.scale == 1.0));
    }

    #[test]
    fn shrunk_shares_count_by_their_evidence() {
        let x = orthogonal(2);
        // users of one session and of many: shares of one session say little
        let draws = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let shares = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let shrink = Shrinkage::fit(shares.into_iter().zip(draws)).unwrap();
        assert_eq!(shrink.factor(1.0), 0.0);
        let columns = Columns {
            missing_share: &[0.0, 0.0],
            shrink: &[None, Some(shrink)],
            draws: Some(&draws),
            families: &[Some(FeatureFamily::Rfm), Some(FeatureFamily::TimeOfDay)],
            kept_variance: 0.85,
        };
        let space = clustering_space(&x, &columns);
        assert_eq!(space.families[0].share, 1.0);
        assert_eq!(space.families[1].share, 0.0);
        assert_eq!(space.families[1].scale, 1.0);
        // the second column no longer varies: one component holds everything
        assert_eq!(space.components, 1);
    }
}
