//! A fitted model applied to features: a block of rows prepared at a time.

use polars::prelude::*;
use userlens_model::columns::USER_ID;

use super::data::{self, Table, read_table};
use super::{Error, Model, PROBABILITY, Propensity, Result, polars_err, prepared};

/// Rows prepared at a time when scoring (in tests, few, so that small tables are
/// scored in blocks too).
#[cfg(not(test))]
const BLOCK_ROWS: usize = 16 * 1024;
#[cfg(test)]
const BLOCK_ROWS: usize = 300;

impl Propensity {
    /// Probabilities for prepared row-major rows.
    pub(super) fn predict_prepared(&self, x: &[f64], n: usize) -> Vec<f64> {
        let d = self.scalers.len();
        match &self.model {
            Model::Logistic {
                intercept,
                coefficients,
            } => (0..n)
                .map(|i| {
                    let row = &x[i * d..(i + 1) * d];
                    let z: f64 = intercept
                        + row
                            .iter()
                            .zip(coefficients)
                            .map(|(v, c)| v * c)
                            .sum::<f64>();
                    crate::stats::special::sigmoid(z)
                })
                .collect(),
            Model::Forest(forest) => forest.predict(x, n, d),
        }
    }

    /// Scores every user of a features table (which must have the training
    /// features): `user_id` and `probability`, sorted by `user_id`.
    pub fn predict(&self, features: &DataFrame) -> Result<DataFrame> {
        let names: Vec<String> = self.scalers.iter().map(|s| s.name.clone()).collect();
        let table = read_table(features, "features", &names)?;
        let p = self.predict_table(&table)?;
        DataFrame::new(
            p.len(),
            vec![
                Column::new(USER_ID.into(), table.ids),
                Column::new(PROBABILITY.into(), p),
            ],
        )
        .map_err(polars_err("build the predictions table"))
    }

    /// The probability of every user of `table`, in its order; `table` holds the
    /// training features in the training order ([`Table::read`] with the same names).
    pub fn predict_table(&self, table: &Table) -> Result<Vec<f64>> {
        if !self.scalers.iter().map(|s| &s.name).eq(&table.names) {
            let names = |n: &mut dyn Iterator<Item = &String>| {
                n.map(String::as_str).collect::<Vec<_>>().join(", ")
            };
            return Err(Error::OtherFeatures {
                expected: names(&mut self.scalers.iter().map(|s| &s.name)),
                found: names(&mut table.names.iter()),
            });
        }
        // A block of rows prepared at a time: each row's probability is its own.
        let rows: Vec<usize> = (0..table.ids.len()).collect();
        let mut out = Vec::with_capacity(rows.len());
        for block in rows.chunks(BLOCK_ROWS) {
            let x = prepared(&self.scalers, &table.columns, block);
            out.extend(self.predict_prepared(&x, block.len()));
        }
        Ok(out)
    }

    /// The probability of every row of a features table with the training features,
    /// in its row order, the table read a block of rows at a time: never copied whole.
    pub fn predict_frame(&self, features: &DataFrame) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(features.height());
        for offset in (0..features.height()).step_by(BLOCK_ROWS) {
            let block = features.slice(offset as i64, BLOCK_ROWS);
            let columns = self
                .scalers
                .iter()
                .map(|s| data::read_features(&block, "features", &s.name))
                .collect::<Result<Vec<_>>>()?;
            let rows: Vec<usize> = (0..block.height()).collect();
            let x = prepared(&self.scalers, &columns, &rows);
            out.extend(self.predict_prepared(&x, rows.len()));
        }
        Ok(out)
    }
}
