//! A table's rows as CSV text: the bytes polars' `CsvWriter` writes with its
//! defaults and floats at [`crate::CSV_FLOAT_PRECISION`] decimals, for tables of text,
//! integer, boolean and 64-bit float columns. Cells go straight into each block's
//! buffer, with [`crate::fixed`]'s floats (docs/benchmarks.md).

use polars::prelude::*;
use rayon::prelude::*;

use crate::fixed;

/// Rows per block of text made on one thread.
const BLOCK_ROWS: usize = 8192;

/// Blocks made at a time before they are written, so the text never costs much
/// memory.
const BLOCKS_AT_ONCE: usize = 32;

/// One column's values, of a type [`write`] writes.
enum Cells<'a> {
    Text(&'a StringChunked),
    Float(&'a Float64Chunked),
    Bool(&'a BooleanChunked),
    I32(&'a Int32Chunked),
    I64(&'a Int64Chunked),
    U32(&'a UInt32Chunked),
    U64(&'a UInt64Chunked),
}

/// Writes `df`'s rows (no header) to `out` and returns `true`, or returns `false`
/// without writing when a column has a type polars' writer should write.
pub(crate) fn write(out: &mut impl std::io::Write, df: &DataFrame) -> PolarsResult<bool> {
    // One column's null rows are written `""` by polars; a type not below, its way.
    if df.width() < 2 || !df.columns().iter().all(|c| supported(c.dtype())) {
        return Ok(false);
    }
    if df.height() == 0 {
        return Ok(true);
    }
    let blocks: Vec<usize> = (0..df.height()).step_by(BLOCK_ROWS).collect();
    for group in blocks.chunks(BLOCKS_AT_ONCE) {
        let texts = group
            .par_iter()
            .map(|&first| block(&df.slice(first as i64, BLOCK_ROWS)))
            .collect::<PolarsResult<Vec<Vec<u8>>>>()?;
        for text in texts {
            out.write_all(&text)?;
        }
    }
    Ok(true)
}

fn supported(dtype: &DataType) -> bool {
    matches!(
        dtype,
        DataType::String
            | DataType::Float64
            | DataType::Boolean
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt32
            | DataType::UInt64
    )
}

/// The cells of a column (rechunked: a cell is found at once).
fn cells_of(series: &Series) -> PolarsResult<Cells<'_>> {
    Ok(match series.dtype() {
        DataType::String => Cells::Text(series.str()?),
        DataType::Float64 => Cells::Float(series.f64()?),
        DataType::Boolean => Cells::Bool(series.bool()?),
        DataType::Int32 => Cells::I32(series.i32()?),
        DataType::Int64 => Cells::I64(series.i64()?),
        DataType::UInt32 => Cells::U32(series.u32()?),
        DataType::UInt64 => Cells::U64(series.u64()?),
        other => polars_bail!(ComputeError: "no CSV cells for {other}"),
    })
}

/// The text of `rows`' rows, each ended by a line feed.
fn block(rows: &DataFrame) -> PolarsResult<Vec<u8>> {
    // A block's columns in one chunk each (a copy only where the block spans two).
    let columns: Vec<Series> = rows
        .columns()
        .iter()
        .map(|c| c.as_materialized_series().rechunk())
        .collect();
    let cells = columns
        .iter()
        .map(cells_of)
        .collect::<PolarsResult<Vec<_>>>()?;
    let mut text = Vec::with_capacity(rows.height() * cells.len() * 10);
    let (mut float, mut int) = (fixed::Text::default(), itoa::Buffer::new());
    for row in 0..rows.height() {
        for (i, column) in cells.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            match column {
                Cells::Text(c) => {
                    if let Some(cell) = c.get(row) {
                        push_text(&mut text, cell);
                    }
                }
                Cells::Float(c) => {
                    if let Some(x) = c.get(row) {
                        fixed::push(&mut text, x, &mut float);
                    }
                }
                Cells::Bool(c) => {
                    if let Some(b) = c.get(row) {
                        text.extend_from_slice(if b { b"true" } else { b"false" });
                    }
                }
                Cells::I32(c) => push_int(&mut text, &mut int, c.get(row)),
                Cells::I64(c) => push_int(&mut text, &mut int, c.get(row)),
                Cells::U32(c) => push_int(&mut text, &mut int, c.get(row)),
                Cells::U64(c) => push_int(&mut text, &mut int, c.get(row)),
            }
        }
        text.push(b'\n');
    }
    Ok(text)
}

/// An integer cell; nothing for a null.
fn push_int(text: &mut Vec<u8>, int: &mut itoa::Buffer, value: Option<impl itoa::Integer>) {
    if let Some(value) = value {
        text.extend_from_slice(int.format(value).as_bytes());
    }
}

/// A text cell as polars quotes it: `""` when empty; in quotes, its quotes doubled,
/// when it holds a comma, a line end or a quote.
fn push_text(text: &mut Vec<u8>, cell: &str) {
    let bytes = cell.as_bytes();
    if bytes.is_empty() {
        text.extend_from_slice(b"\"\"");
        return;
    }
    if memchr::memchr3(b',', b'\n', b'\r', bytes).is_none() && memchr::memchr(b'"', bytes).is_none()
    {
        text.extend_from_slice(bytes);
        return;
    }
    text.push(b'"');
    for part in bytes.split_inclusive(|&b| b == b'"') {
        text.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            text.push(b'"');
        }
    }
    text.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CSV_FLOAT_PRECISION;

    /// What polars' writer makes of `df`'s rows.
    fn polars_rows(df: &DataFrame) -> Vec<u8> {
        let mut out = Vec::new();
        CsvWriter::new(&mut out)
            .include_header(false)
            .with_float_precision(Some(CSV_FLOAT_PRECISION))
            .finish(&mut df.clone())
            .unwrap();
        out
    }

    fn our_rows(df: &DataFrame) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(write(&mut out, df).unwrap());
        out
    }

    #[test]
    fn every_written_type_gives_polars_bytes() {
        // xorshift: the same values every run.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let words = [
            "plain",
            "",
            "a,b",
            "say \"hi\"",
            "\"",
            "two\nlines",
            "cr\r",
            " spaced ",
            "é ünï",
            "'=1",
            "-3.5",
            "\"\"x\"",
        ];
        let rows = 3 * BLOCK_ROWS + 17;
        let mut text = Vec::new();
        let mut float = Vec::new();
        let (mut b, mut i32s, mut i64s, mut u32s, mut u64s) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let specials = [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            1e300,
            0.0078125,
        ];
        for r in 0..rows {
            let n = next();
            let null = n % 7 == 0;
            text.push((!null).then(|| words[(n >> 8) as usize % words.len()].to_string()));
            let x = match n % 5 {
                0 => specials[(n >> 16) as usize % specials.len()],
                1 => f64::from_bits(next()),
                _ => (n >> 11) as f64 / 9e12 - 500.0,
            };
            float.push((n % 11 != 0).then_some(x));
            b.push((n % 13 != 0).then_some(n & 1 == 1));
            i32s.push((n % 3 != 0).then_some(next() as i32));
            i64s.push(Some(next() as i64));
            u32s.push(Some(r as u32));
            u64s.push((n % 17 != 0).then_some(next()));
        }
        let df = df!(
            "text" => text,
            "float" => float,
            "bool" => b,
            "i32" => i32s,
            "i64" => i64s,
            "u32" => u32s,
            "u64" => u64s,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(our_rows(&df)).unwrap(),
            String::from_utf8(polars_rows(&df)).unwrap()
        );
        // Several chunks, as a table stacked from parts holds them.
        let mut stacked = df.slice(0, 1000);
        stacked.vstack_mut(&df.slice(1000, rows)).unwrap();
        assert!(stacked.first_col_n_chunks() > 1);
        assert_eq!(our_rows(&stacked), polars_rows(&stacked));
    }

    #[test]
    fn other_types_and_single_columns_are_left_to_polars() {
        let dates = df!("d" => [1i32, 2], "x" => [1.0, 2.0]).unwrap();
        let dates = dates
            .lazy()
            .with_column(col("d").cast(DataType::Date))
            .collect()
            .unwrap();
        let one = df!("x" => [Some(1.0), None]).unwrap();
        for df in [dates, one] {
            let mut out = Vec::new();
            assert!(!write(&mut out, &df).unwrap());
            assert!(out.is_empty());
        }
    }
}
