//! Lloyd's E-step on another engine (a cluster): the standardised rows are shared
//! once in blocks of whole chunks, then every iteration assigns each row to its
//! nearest centre there and sends back per-chunk sums and counts, which the driver
//! adds in chunk order, as a local fit does, so both give the same centres.

use polars::prelude::*;

use crate::error::{Error, Result, WhileDoing};
use crate::matrix::{CHUNK_ROWS, add_into};

/// Rows per chunk of the E-step's sums: a block holds whole chunks.
pub const LLOYD_CHUNK_ROWS: usize = CHUNK_ROWS;

/// An engine that runs Lloyd's E-step over rows it was given.
pub trait RemoteLloyd {
    /// Gives the engine `blocks` (each the bytes of [`encode_rows`] of whole chunks
    /// of a matrix with `d` columns, in row order).
    fn share(&self, blocks: Vec<Vec<u8>>, d: usize) -> Result<Box<dyn SharedRows + '_>>;
}

/// Rows an engine holds.
pub trait SharedRows {
    /// [`assign_block`] of every block with `centers` (`k x d`), in block order, as
    /// the tables of [`BlockAssignment::into_tables`].
    fn assign(&self, centers: &[f64], k: usize) -> Result<Vec<Vec<DataFrame>>>;
}

/// One block's E-step: each row's nearest centre (first on ties) and squared
/// distance, and every chunk's per-cluster sums (`k x d`) and counts.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockAssignment {
    /// Nearest centre of each row.
    pub labels: Vec<u32>,
    /// Squared distance of each row to that centre.
    pub dists: Vec<f64>,
    /// Per chunk of [`LLOYD_CHUNK_ROWS`] rows: sums of its rows by cluster, and counts.
    pub chunks: Vec<(Vec<f64>, Vec<u64>)>,
}

/// A matrix's rows (row-major `f64`) as bytes, little-endian.
pub fn encode_rows(rows: &[f64]) -> Vec<u8> {
    rows.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The rows of [`encode_rows`]: an error unless they make whole rows of `d` values.
pub fn decode_rows(bytes: &[u8], d: usize) -> Result<Vec<f64>> {
    if d == 0 || !bytes.len().is_multiple_of(8 * d) {
        return Err(Error::Remote(format!(
            "{} bytes are not whole rows of {d} values",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect())
}

/// Lloyd's E-step on a block of rows (`d` columns) with `centers` (`k x d`): the
/// same arithmetic, row order and chunks as a local fit's.
pub fn assign_block(rows: &[f64], d: usize, centers: &[f64], k: usize) -> Result<BlockAssignment> {
    if d == 0 || !rows.len().is_multiple_of(d) || centers.len() != k * d || k == 0 {
        return Err(Error::Remote(format!(
            "{} values and {} centre values do not make rows of {d} and {k} centres",
            rows.len(),
            centers.len()
        )));
    }
    let n = rows.len() / d;
    let mut labels = Vec::with_capacity(n);
    let mut dists = Vec::with_capacity(n);
    let mut chunks = Vec::with_capacity(n.div_ceil(LLOYD_CHUNK_ROWS));
    for chunk in rows.chunks(LLOYD_CHUNK_ROWS * d) {
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0u64; k];
        for row in chunk.chunks_exact(d) {
            let (c, dist) = crate::kmeans::nearest(row, centers, k);
            labels.push(c);
            dists.push(dist);
            let c = c as usize;
            counts[c] += 1;
            add_into(&mut sums[c * d..(c + 1) * d], row);
        }
        chunks.push((sums, counts));
    }
    Ok(BlockAssignment {
        labels,
        dists,
        chunks,
    })
}

impl BlockAssignment {
    /// Two tables: `label`, `dist` per row; and per chunk and cluster, `count` and
    /// the sums `s0..s{d-1}`.
    pub fn into_tables(self, k: usize, d: usize) -> Result<Vec<DataFrame>> {
        let context = || "tabulate an E-step".to_string();
        let rows = DataFrame::new_infer_height(vec![
            Column::new("label".into(), self.labels),
            Column::new("dist".into(), self.dists),
        ])
        .while_doing(context)?;
        let mut columns = vec![Column::new(
            "count".into(),
            self.chunks
                .iter()
                .flat_map(|(_, counts)| counts.iter().copied())
                .collect::<Vec<u64>>(),
        )];
        for j in 0..d {
            let sums: Vec<f64> = self
                .chunks
                .iter()
                .flat_map(|(sums, _)| (0..k).map(move |c| sums[c * d + j]))
                .collect();
            columns.push(Column::new(format!("s{j}").into(), sums));
        }
        let chunks = DataFrame::new_infer_height(columns).while_doing(context)?;
        Ok(vec![rows, chunks])
    }

    /// The assignment of [`BlockAssignment::into_tables`], checked to hold
    /// `k` clusters of `d` columns.
    pub fn from_tables(tables: Vec<DataFrame>, k: usize, d: usize) -> Result<BlockAssignment> {
        let malformed = |why: &str| Error::Remote(format!("a malformed E-step: {why}"));
        let [rows, chunks] = <[DataFrame; 2]>::try_from(tables)
            .map_err(|tables| malformed(&format!("{} tables, not 2", tables.len())))?;
        let context = || "read an E-step".to_string();
        let values = |frame: &DataFrame, name: &str| -> Result<Vec<f64>> {
            let column = frame.column(name).while_doing(context)?;
            let values = column.f64().while_doing(context)?;
            values
                .iter()
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| malformed(&format!("nulls in `{name}`")))
        };
        let labels = rows.column("label").while_doing(context)?;
        let labels = labels.u32().while_doing(context)?;
        let labels: Vec<u32> = labels
            .iter()
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("nulls in `label`"))?;
        let dists = values(&rows, "dist")?;
        if labels.iter().any(|&l| l as usize >= k) {
            return Err(malformed("a label beyond k"));
        }
        let counts = chunks.column("count").while_doing(context)?;
        let counts = counts.u64().while_doing(context)?;
        let counts: Vec<u64> = counts
            .iter()
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("nulls in `count`"))?;
        let sums = (0..d)
            .map(|j| values(&chunks, &format!("s{j}")))
            .collect::<Result<Vec<_>>>()?;
        if !counts.len().is_multiple_of(k)
            || counts.len() / k != labels.len().div_ceil(LLOYD_CHUNK_ROWS)
        {
            return Err(malformed("the chunks do not cover the rows"));
        }
        let chunks = counts
            .chunks(k)
            .enumerate()
            .map(|(chunk, counts)| {
                let mut chunk_sums = vec![0.0; k * d];
                for c in 0..k {
                    for (j, column) in sums.iter().enumerate() {
                        chunk_sums[c * d + j] = column[chunk * k + c];
                    }
                }
                (chunk_sums, counts.to_vec())
            })
            .collect();
        Ok(BlockAssignment {
            labels,
            dists,
            chunks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assignment_survives_its_tables_and_rows_their_bytes() {
        let d = 2;
        let n = LLOYD_CHUNK_ROWS + 7;
        let rows: Vec<f64> = (0..n * d).map(|i| (i as f64 * 0.37).sin()).collect();
        assert_eq!(decode_rows(&encode_rows(&rows), d).unwrap(), rows);
        assert!(decode_rows(&encode_rows(&rows)[1..], d).is_err());
        let centers = [0.5, 0.5, -0.5, -0.5, 0.0, 0.9];
        let block = assign_block(&rows, d, &centers, 3).unwrap();
        assert_eq!(block.chunks.len(), 2);
        assert_eq!(block.labels.len(), n);
        let counted: u64 = block.chunks.iter().flat_map(|(_, c)| c).sum();
        assert_eq!(counted, n as u64);
        let tables = block.clone().into_tables(3, d).unwrap();
        assert_eq!(
            BlockAssignment::from_tables(tables.clone(), 3, d).unwrap(),
            block
        );
        assert!(BlockAssignment::from_tables(tables.clone(), 2, d).is_err());
        assert!(BlockAssignment::from_tables(tables[..1].to_vec(), 3, d).is_err());
        assert!(assign_block(&rows[1..], d, &centers, 3).is_err());
    }
}
