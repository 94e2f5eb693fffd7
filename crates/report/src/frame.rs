//! Typed reads of the columns of the tables handed to the HTML report.
//!
//! The tables come from the pipeline (typed) or from CSV files (inferred types), so
//! every read casts: a persona id may arrive as `u32` or `i64`, a flag as a boolean or
//! as the text `true`.

use polars::prelude::*;

use crate::{Error, Result};

/// Whether `df` has a column called `name`.
pub(crate) fn has(df: &DataFrame, name: &str) -> bool {
    df.column(name).is_ok()
}

fn column<'a>(df: &'a DataFrame, table: &'static str, name: &str) -> Result<&'a Column> {
    df.column(name).map_err(|_| Error::MissingColumn {
        table,
        column: name.to_string(),
    })
}

fn type_error(
    table: &'static str,
    name: &str,
    expected: &'static str,
) -> impl Fn(PolarsError) -> Error {
    let column = name.to_string();
    move |source| Error::ColumnType {
        table,
        column: column.clone(),
        expected,
        source,
    }
}

/// A column as floating-point numbers; values that are missing or not numbers are `None`.
pub(crate) fn f64s(df: &DataFrame, table: &'static str, name: &str) -> Result<Vec<Option<f64>>> {
    let col = column(df, table, name)?;
    let err = type_error(table, name, "numeric");
    // A CSV column with no values at all reads as text; it is simply all missing.
    if col.null_count() == col.len() {
        return Ok(vec![None; col.len()]);
    }
    if !(col.dtype().is_primitive_numeric() || col.dtype().is_bool()) {
        return Err(err(PolarsError::SchemaMismatch(
            format!("found {}", col.dtype()).into(),
        )));
    }
    let cast = col.cast(&DataType::Float64).map_err(&err)?;
    let values = cast.as_materialized_series().f64().map_err(&err)?;
    Ok(values.iter().map(|v| v.filter(|x| x.is_finite())).collect())
}

/// An optional numeric column: `None` when absent.
pub(crate) fn opt_f64s(
    df: &DataFrame,
    table: &'static str,
    name: &str,
) -> Result<Option<Vec<Option<f64>>>> {
    if has(df, name) {
        f64s(df, table, name).map(Some)
    } else {
        Ok(None)
    }
}

/// A column as whole numbers (ids, counts); non-integral values are `None`.
pub(crate) fn i64s(df: &DataFrame, table: &'static str, name: &str) -> Result<Vec<Option<i64>>> {
    let col = column(df, table, name)?;
    if col.dtype().is_primitive_numeric() || col.dtype().is_null() {
        return Ok(f64s(df, table, name)?
            .into_iter()
            .map(|v| {
                v.filter(|x| x.fract() == 0.0 && x.abs() < 9e15)
                    .map(|x| x as i64)
            })
            .collect());
    }
    Ok(strings(df, table, name)?
        .into_iter()
        .map(|v| v.and_then(|s| s.trim().parse::<i64>().ok()))
        .collect())
}

/// A column as text, whatever its type.
pub(crate) fn strings(
    df: &DataFrame,
    table: &'static str,
    name: &str,
) -> Result<Vec<Option<String>>> {
    let col = column(df, table, name)?;
    let err = type_error(table, name, "text");
    let cast = col.cast(&DataType::String).map_err(&err)?;
    let values = cast.as_materialized_series().str().map_err(&err)?;
    Ok(values.iter().map(|v| v.map(str::to_string)).collect())
}

/// An optional text column: `None` when absent.
pub(crate) fn opt_strings(
    df: &DataFrame,
    table: &'static str,
    name: &str,
) -> Result<Option<Vec<Option<String>>>> {
    if has(df, name) {
        strings(df, table, name).map(Some)
    } else {
        Ok(None)
    }
}

/// A flag column: booleans, numbers (non-zero is true) or the text `true`/`yes`.
pub(crate) fn bools(df: &DataFrame, table: &'static str, name: &str) -> Result<Vec<bool>> {
    let col = column(df, table, name)?;
    if col.dtype().is_bool() || col.dtype().is_primitive_numeric() {
        return Ok(f64s(df, table, name)?
            .into_iter()
            .map(|v| v.is_some_and(|x| x != 0.0))
            .collect());
    }
    Ok(strings(df, table, name)?
        .into_iter()
        .map(|v| {
            v.is_some_and(|s| {
                let s = s.trim();
                s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") || s == "1"
            })
        })
        .collect())
}

/// Names of the numeric columns of `df`, in table order.
pub(crate) fn numeric_columns(df: &DataFrame) -> Vec<String> {
    df.columns()
        .iter()
        .filter(|c| c.dtype().is_primitive_numeric())
        .map(|c| c.name().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_flags_and_numbers_whatever_their_type() {
        let df = df!(
            "id" => [1u32, 2],
            "text_id" => ["3", "x"],
            "flag" => [true, false],
            "text_flag" => ["true", "no"],
            "value" => [Some(1.5), None],
        )
        .unwrap();
        assert_eq!(i64s(&df, "t", "id").unwrap(), [Some(1), Some(2)]);
        assert_eq!(i64s(&df, "t", "text_id").unwrap(), [Some(3), None]);
        assert_eq!(bools(&df, "t", "flag").unwrap(), [true, false]);
        assert_eq!(bools(&df, "t", "text_flag").unwrap(), [true, false]);
        assert_eq!(f64s(&df, "t", "value").unwrap(), [Some(1.5), None]);
        assert_eq!(numeric_columns(&df), ["id", "value"]);
    }

    #[test]
    fn missing_and_mistyped_columns_are_named() {
        let df = df!("label" => ["a"]).unwrap();
        assert_eq!(
            f64s(&df, "personas", "users").unwrap_err().to_string(),
            "table `personas` has no `users` column"
        );
        assert_eq!(
            f64s(&df, "personas", "label").unwrap_err().to_string(),
            "column `label` of table `personas` is not numeric"
        );
    }
}
