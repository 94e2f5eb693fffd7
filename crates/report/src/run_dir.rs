//! Re-rendering the HTML report from the output folder of a finished run.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use crate::html::{ReportInput, write_html};
use crate::run_record::RunView;
use crate::safe_text::restore_cell;
use crate::{Error, Result};
use userlens_model::columns;

/// File names in a run's output folder: every stage writes and the report reads them
/// by these names.
pub use userlens_model::files;

/// An error unless `path` is a regular file: a FIFO would block the read forever and
/// a device (a link to `/dev/zero`, say) would never end.
fn regular_file(path: &Path) -> Result<()> {
    let refuse = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(refuse)?;
    if metadata.is_file() {
        return Ok(());
    }
    let kind = if metadata.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    };
    Err(refuse(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("it is {kind}"),
    )))
}

fn read_csv(path: &Path) -> Result<DataFrame> {
    regular_file(path)?;
    let error = |source| Error::ReadTable {
        path: path.to_path_buf(),
        source,
    };
    // Every value is read as text, then each column takes the type the whole file
    // supports: a feature that is empty for the first hundred users (ratings, say)
    // must still read as a number. polars' own whole-file inference (an infer
    // length of `None`) matches every field against regular expressions on one
    // thread (docs/benchmarks.md).
    let text = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(error)?;
    // Each text column is let go once typed: the text and the typed table are
    // never held whole together.
    let height = text.height();
    let columns = text
        .into_columns()
        .into_par_iter()
        .map(|column| typed(column.as_materialized_series()).map(Column::from))
        .collect::<PolarsResult<Vec<Column>>>()
        .map_err(error)?;
    DataFrame::new(height, columns).map_err(error)
}

/// A text column as the type all its values have, in polars' inference order:
/// booleans, whole numbers, numbers, else text (without the quote that kept a cell
/// from running as a formula, [`restore_cell`]). A column without values stays text.
fn typed(text: &Series) -> PolarsResult<Series> {
    let values = text.str()?;
    if values.null_count() == values.len() {
        return Ok(text.clone());
    }
    // The data's own names stay text, whatever they look like.
    if DATA_TEXT.contains(&text.name().as_str()) {
        return Ok(values.apply_values(restore_cell).into_series());
    }
    if (values.iter().flatten()).any(|v| v.starts_with('\'') || v.contains("\\u{")) {
        return Ok(values.apply_values(restore_cell).into_series());
    }
    if values
        .iter()
        .flatten()
        .all(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"))
    {
        return Ok(values
            .iter()
            .map(|v| v.map(|v| v.eq_ignore_ascii_case("true")))
            .collect::<BooleanChunked>()
            .with_name(text.name().clone())
            .into_series());
    }
    // An id of digits with a leading zero (`007`) or an exponent (`1e5`) is text:
    // userlens writes no number so.
    if !values.iter().flatten().all(plain_number) {
        return Ok(text.clone());
    }
    if let Ok(parsed) = text.strict_cast(&DataType::Int64) {
        return Ok(parsed);
    }
    // Whole numbers past an i64 are ids: as floats they would lose digits.
    let fraction = |v: &str| v.contains('.') || matches!(v, "NaN" | "inf" | "-inf");
    if values.iter().flatten().any(fraction)
        && let Ok(parsed) = text.strict_cast(&DataType::Float64)
    {
        return Ok(parsed);
    }
    Ok(text.clone())
}

/// Columns that hold the data's own ids and names, text however they look.
const DATA_TEXT: [&str; 6] = [
    columns::USER_ID,
    columns::ITEM_ID,
    "similar_item_id",
    columns::CATEGORY,
    "top_category",
    "top_query",
];

/// Whether `v` is a number as userlens writes one: digits with an optional minus
/// sign and fraction, and no leading zero before another digit; or not finite.
fn plain_number(v: &str) -> bool {
    if matches!(v, "NaN" | "inf" | "-inf") {
        return true;
    }
    let unsigned = v.strip_prefix('-').unwrap_or(v);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return false,
        None => (unsigned, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && !(whole.len() > 1 && whole.starts_with('0'))
}

/// The table `name` in `dir`, if the file is there.
pub(crate) fn read_optional(dir: &Path, name: &str) -> Result<Option<DataFrame>> {
    let path = dir.join(name);
    if path.is_file() {
        read_csv(&path).map(Some)
    } else {
        Ok(None)
    }
}

/// Re-renders `report.html` in `output_dir` from the run's CSV files and `run.json`
/// there (see [`files`]); sections whose optional files are absent are left out.
/// Returns the path written.
pub fn render_run_dir(output_dir: &Path) -> Result<PathBuf> {
    let personas = read_csv(&output_dir.join(files::PERSONAS))?;
    let assignments = read_csv(&output_dir.join(files::USER_PERSONAS))?;
    let run_path = output_dir.join(files::RUN);
    regular_file(&run_path)?;
    let bytes = std::fs::read(&run_path).map_err(|source| Error::ReadFile {
        path: run_path.clone(),
        source,
    })?;
    let run = RunView::from_slice(&bytes, &run_path)?;
    let k_selection = read_optional(output_dir, files::K_SELECTION)?;
    let model_report = read_optional(output_dir, files::MODEL_REPORT)?;
    let calibration = read_optional(output_dir, files::CALIBRATION)?;
    let lift = read_optional(output_dir, files::LIFT)?;
    let migration = read_optional(output_dir, files::MIGRATION)?;
    let drift = read_optional(output_dir, files::DRIFT)?;
    let input = ReportInput {
        personas: &personas,
        assignments: &assignments,
        k_selection: k_selection.as_ref(),
        run: &run,
        model_report: model_report.as_ref(),
        calibration: calibration.as_ref(),
        lift: lift.as_ref(),
        migration: migration.as_ref(),
        drift: drift.as_ref(),
        dir: Some(output_dir),
    };
    let path = output_dir.join(files::REPORT_HTML);
    write_html(&input, &path).map_err(|e| {
        // The table's name is its file's, where the folder holds that file.
        let table = match &e {
            Error::MissingColumn { table, .. } | Error::ColumnType { table, .. } => *table,
            _ => return e,
        };
        let file = output_dir.join(format!("{table}.csv"));
        match file.is_file() {
            true => Error::RunTable {
                path: file,
                source: Box::new(e),
            },
            false => e,
        }
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_match_polars_whole_file_inference() {
        let dir = std::env::temp_dir().join(format!("userlens-read-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        // late numbers, mixed ints and floats, booleans, text that looks numeric at
        // first, an empty column, negative forms
        let mut csv = String::from("id,late,mixed,flag,code,empty,neg,label\n");
        for i in 0..300 {
            let late = if i < 150 {
                String::new()
            } else {
                format!("{}.5", i)
            };
            let mixed = if i % 7 == 0 {
                "2500.25".to_string()
            } else {
                i.to_string()
            };
            let flag = if i % 2 == 0 { "true" } else { "False" };
            let code = if i == 299 {
                "x12".to_string()
            } else {
                i.to_string()
            };
            let label = format!("persona {}", i % 3);
            csv.push_str(&format!(
                "u{i},{late},{mixed},{flag},{code},,{},{label}\n",
                -i
            ));
        }
        std::fs::write(&path, csv).unwrap();
        let ours = read_csv(&path).unwrap();
        let polars = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .try_into_reader_with_file_path(Some(path.clone()))
            .and_then(|r| r.finish())
            .unwrap();
        assert_eq!(ours.schema(), polars.schema());
        assert!(ours.equals_missing(&polars), "{ours:?}\n{polars:?}");
        // Ids that only look like numbers, as userlens never writes one, stay text.
        std::fs::write(&path, "a,b,c,d,e\n007,1e5,1.,5,NaN\n10,2,3,-0.5,-inf\n").unwrap();
        let ours = read_csv(&path).unwrap();
        let text = |name: &str| ours.column(name).unwrap().dtype().clone();
        assert_eq!(text("a"), DataType::String);
        assert_eq!(text("b"), DataType::String);
        assert_eq!(text("c"), DataType::String);
        assert_eq!(text("d"), DataType::Float64);
        assert_eq!(text("e"), DataType::Float64);
        // The data's names stay as written, and whole numbers past an i64 keep digits.
        let big = "98765432109876543214";
        std::fs::write(
            &path,
            format!("category,f,n\n1.10,{big},1\n8.00,{big}5,2\n"),
        )
        .unwrap();
        let ours = read_csv(&path).unwrap();
        let column = |name: &str| {
            ours.column(name)
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .map(str::to_string)
        };
        assert_eq!(column("category").as_deref(), Some("1.10"));
        assert_eq!(column("f").as_deref(), Some(big));
        assert_eq!(ours.column("n").unwrap().dtype(), &DataType::Int64);
        std::fs::write(&path, "category\nTRUE\nFalse\n").unwrap();
        let ours = read_csv(&path).unwrap();
        assert_eq!(ours.column("category").unwrap().dtype(), &DataType::String);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn text_reads_back_as_the_data_held_it_without_the_spreadsheet_quote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.csv");
        let items = ["=it1", "@cat", "'quoted", "'=1", "-x", "plain"];
        let mut df = df!("item_id" => items, "n" => [1i64, 2, 3, 4, 5, 6]).unwrap();
        crate::write_csv(&mut df, &path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.contains("'=it1") && written.contains("''=1"),
            "{written}"
        );
        assert!(read_csv(&path).unwrap().equals_missing(&df));
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("user_personas.csv");
        std::fs::create_dir(&folder).unwrap();
        let message = read_csv(&folder).unwrap_err().to_string();
        assert!(message.contains("user_personas.csv"), "{message}");
        // A FIFO no one writes to would block the read for ever.
        let fifo = dir.path().join("run.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert!(regular_file(&fifo).is_err());
            assert!(read_csv(&fifo).is_err());
        }
    }
}
