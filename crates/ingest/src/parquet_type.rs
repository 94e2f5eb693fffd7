//! The Parquet column types the ingest can take, decided from a file's Arrow schema
//! before any column is read: polars panics on a type it was built without (an
//! unsigned 8-bit integer, say), so such a column is either refused with its name or
//! never read.

use std::path::Path;

use polars::prelude::*;

use crate::error::Error;

/// Why a column cannot be used, in words for [`Error::UnsupportedColumn`].
#[derive(Debug)]
pub(crate) struct Unsupported {
    kind: String,
    fix: &'static str,
}

impl Unsupported {
    /// The error for column `column` of `path`, read as the canonical `target` (or
    /// a column of a side table when `None`).
    pub fn into_error(self, path: &Path, column: &str, target: Option<&str>) -> Error {
        let (role, alternative) = match target {
            Some(target) => (format!(" (read as `{target}`)"), "map another column"),
            None => (String::new(), "leave it out of the table"),
        };
        Error::UnsupportedColumn {
            path: path.to_path_buf(),
            column: column.to_string(),
            role,
            kind: self.kind,
            fix: format!("{}, or {alternative}", self.fix),
        }
    }
}

/// A column of lists, structs, maps or unions: more than one value per row.
fn one_value_per_row(dtype: &ArrowDataType) -> Result<(), Unsupported> {
    use ArrowDataType as A;
    match dtype {
        A::List(_)
        | A::LargeList(_)
        | A::FixedSizeList(..)
        | A::Struct(_)
        | A::Map(..)
        | A::Union(_) => Err(Unsupported {
            kind: format!("{}, not one value per row", describe(dtype)),
            fix: "write one value per row (such as the values joined into text)",
        }),
        _ => Ok(()),
    }
}

/// A column that can be a canonical event column: one value per row, of a type
/// polars reads.
pub(crate) fn check_event_field(dtype: &ArrowDataType) -> Result<(), Unsupported> {
    use ArrowDataType as A;
    one_value_per_row(dtype)?;
    match dtype {
        A::Time32(_) | A::Time64(_) => Err(Unsupported {
            kind: "a time of day without its date".into(),
            fix: "write the date and time in one column",
        }),
        _ => check_table_field(dtype),
    }
}

/// A column of a users table, each a feature or an attribute: one value per row.
pub(crate) fn check_attribute_field(dtype: &ArrowDataType) -> Result<(), Unsupported> {
    one_value_per_row(dtype)?;
    check_table_field(dtype)
}

/// A column polars reads (into a side table joined as it is).
pub(crate) fn check_table_field(dtype: &ArrowDataType) -> Result<(), Unsupported> {
    use ArrowDataType as A;
    if let A::Duration(_) = dtype {
        return Err(Unsupported {
            kind: "a duration, not a date, a number or text".into(),
            fix: "write it as a number (such as of seconds) or as text",
        });
    }
    if readable(dtype) {
        return Ok(());
    }
    let fix = match dtype {
        A::Decimal(..) | A::Decimal32(..) | A::Decimal64(..) | A::Decimal256(..) | A::Float16 => {
            "write it as a double or as text"
        }
        A::UInt8 | A::UInt16 | A::Int128 | A::UInt128 => "write it as a 64-bit integer or as text",
        _ => "write it as text",
    };
    Err(Unsupported {
        kind: format!("{}, which userlens cannot read", describe(dtype)),
        fix,
    })
}

/// Whether the polars of this workspace turns `dtype` into a column. Besides the
/// features the workspace asks for (decimals of up to 38 digits among them), its
/// `lazy` and `temporal` turn on 8- and 16-bit signed integers, times, categoricals
/// and structs; unsigned 8- and 16-bit integers, wider decimals, 16-bit floats and
/// 128-bit integers stay off.
fn readable(dtype: &ArrowDataType) -> bool {
    use ArrowDataType as A;
    match dtype {
        A::Null
        | A::Boolean
        | A::Int8
        | A::Int16
        | A::Int32
        | A::Int64
        | A::UInt32
        | A::UInt64
        | A::Float32
        | A::Float64
        | A::Timestamp(..)
        | A::Date32
        | A::Date64
        | A::Time32(_)
        | A::Time64(_)
        | A::Binary
        | A::LargeBinary
        | A::BinaryView
        | A::FixedSizeBinary(_)
        | A::Utf8
        | A::LargeUtf8
        | A::Utf8View => true,
        A::Decimal(precision, _) => *precision <= 38,
        A::Dictionary(_, values, _) => {
            matches!(values.as_ref(), A::Utf8 | A::LargeUtf8 | A::Utf8View)
        }
        A::List(inner) | A::LargeList(inner) => readable(&inner.dtype),
        A::Struct(fields) => !fields.is_empty() && fields.iter().all(|f| readable(&f.dtype)),
        _ => false,
    }
}

/// A type in words, after "is".
fn describe(dtype: &ArrowDataType) -> String {
    use ArrowDataType as A;
    match dtype {
        A::Decimal(p, s) | A::Decimal32(p, s) | A::Decimal64(p, s) | A::Decimal256(p, s) => {
            format!("a decimal({p}, {s})")
        }
        A::List(_) | A::LargeList(_) | A::FixedSizeList(..) => "a list".into(),
        A::Struct(_) => "a struct".into(),
        A::Map(..) => "a map".into(),
        A::Union(_) => "a union".into(),
        A::UInt8 => "an unsigned 8-bit integer".into(),
        A::UInt16 => "an unsigned 16-bit integer".into(),
        A::Int128 | A::UInt128 => "a 128-bit integer".into(),
        A::Float16 => "a 16-bit float".into(),
        other => format!("of the Arrow type {other:?}"),
    }
}

/// `column` with a time-zoned timestamp made a plain UTC one: the instants are
/// the same (Arrow keeps them in UTC), and polars, built without time zones,
/// cannot format a zoned one as text.
pub(crate) fn naive_utc(column: &Column) -> Column {
    match (column.dtype(), column.datetime()) {
        (DataType::Datetime(unit, Some(_)), Ok(zoned)) => zoned
            .physical()
            .clone()
            .into_datetime(*unit, None)
            .into_column(),
        _ => column.clone(),
    }
}

/// First and last second that dates are written as text from: the years 1 to 9999.
const FIRST_SECOND: i64 = -62_135_596_800;
const END_SECOND: i64 = 253_402_300_800;

/// `column` with the dates that polars cannot write as text (outside the years
/// 1-9999) made null, and which rows those were (`None`: none). Nanosecond
/// timestamps all fit.
pub(crate) fn formattable(column: &Column) -> PolarsResult<(Column, Option<Vec<bool>>)> {
    let range = match column.dtype() {
        DataType::Datetime(TimeUnit::Milliseconds, _) => (FIRST_SECOND * 1_000, END_SECOND * 1_000),
        DataType::Datetime(TimeUnit::Microseconds, _) => {
            (FIRST_SECOND * 1_000_000, END_SECOND * 1_000_000)
        }
        DataType::Date => (FIRST_SECOND / 86_400, END_SECOND / 86_400),
        _ => return Ok((column.clone(), None)),
    };
    let physical = column.to_physical_repr().cast(&DataType::Int64)?;
    let physical = physical.i64()?;
    let outside: Vec<bool> = physical
        .iter()
        .map(|v| v.is_some_and(|v| !(range.0..range.1).contains(&v)))
        .collect();
    if !outside.contains(&true) {
        return Ok((column.clone(), None));
    }
    let kept: Int64Chunked = physical
        .iter()
        .zip(&outside)
        .map(|(v, &out)| v.filter(|_| !out))
        .collect();
    let kept = kept
        .with_name(column.name().clone())
        .into_column()
        .cast(column.dtype())?;
    Ok((kept, Some(outside)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(dtype: ArrowDataType) -> ArrowField {
        ArrowField::new("x".into(), dtype, true)
    }

    #[test]
    fn scalars_polars_reads_are_taken_and_the_rest_named() {
        use ArrowDataType as A;
        for ok in [
            A::Int64,
            A::Int8,
            A::Float64,
            A::Utf8View,
            A::Timestamp(ArrowTimeUnit::Microsecond, Some("UTC".into())),
            A::Date32,
            A::Boolean,
        ] {
            assert!(check_event_field(&ok).is_ok(), "{ok:?}");
        }
        let kind = |dtype: A| check_event_field(&dtype).unwrap_err().kind;
        // Money as a warehouse keeps it is read; 256-bit decimals are not.
        assert!(check_event_field(&A::Decimal(10, 2)).is_ok());
        assert_eq!(
            kind(A::Decimal256(40, 0)),
            "a decimal(40, 0), which userlens cannot read"
        );
        assert_eq!(
            kind(A::UInt8),
            "an unsigned 8-bit integer, which userlens cannot read"
        );
        let list = A::LargeList(Box::new(field(A::Int64)));
        assert_eq!(kind(list.clone()), "a list, not one value per row");
        let entries = field(A::Struct(vec![field(A::Utf8), field(A::Int64)]));
        assert_eq!(
            kind(A::Map(Box::new(entries.clone()), false)),
            "a map, not one value per row"
        );
        assert_eq!(
            kind(A::Struct(vec![field(A::Utf8)])),
            "a struct, not one value per row"
        );
        // Durations cannot be written as text, and a time of day alone is no event time.
        let duration = A::Duration(ArrowTimeUnit::Millisecond);
        assert!(check_table_field(&duration).is_err());
        assert!(check_event_field(&duration).is_err());
        assert_eq!(
            kind(A::Time64(ArrowTimeUnit::Nanosecond)),
            "a time of day without its date"
        );
        // In a side table, nested columns polars reads are taken as they are.
        assert!(check_table_field(&list).is_ok());
        assert!(check_table_field(&A::LargeList(Box::new(field(A::Decimal256(5, 1))))).is_err());
        assert!(check_table_field(&A::Map(Box::new(entries), false)).is_err());
    }
}
