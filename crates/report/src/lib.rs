//! Report: writes the public output files of a run (persona CSVs, the quarantine,
//! the run record) atomically, so a reader never sees half a file, and renders the
//! run as one self-contained HTML page with charts.
//!
//! Every writer goes through [`write_atomic`]: the bytes land in a temporary file in
//! the destination folder, are flushed to disk, then renamed over the final name.
//!
//! CSVs are written safe to open in a spreadsheet: [`write_csv`] passes every text
//! cell through [`neutralise_cell`], which prefixes a `'` to a cell that would run as
//! a formula and shows bidirectional control characters escaped (`\u{202E}`).
//!
//! ```no_run
//! use polars::prelude::*;
//! let mut df = df!("persona_id" => [1u32, 2], "users" => [10u32, 5]).unwrap();
//! userlens_report::write_csv(&mut df, std::path::Path::new("out/personas.csv")).unwrap();
//! ```
//!
//! The HTML report ([`render_html`], [`write_html`], [`render_run_dir`]) takes the
//! tables of a run and its record (`run.json`, read as a typed [`RunView`]) in a
//! [`ReportInput`]; its charts are drawn with plotters as inline SVG, each with a
//! table of its numbers, and the page loads nothing from the network.
//!
//! ```no_run
//! let written = userlens_report::render_run_dir(std::path::Path::new("out/profile")).unwrap();
//! assert!(written.ends_with("report.html"));
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

mod error;
pub use error::{Error, Result};

mod charts;
mod fixed;
mod frame;
mod html;
mod projection;
mod rows;
mod run_dir;
pub mod run_record;
mod safe_text;

pub use html::{ReportInput, render_html, write_html};
pub use run_dir::{files, render_run_dir};
pub use run_record::RunView;
pub use safe_text::{
    escape_bidi, escape_hidden, is_bidi_control, is_hidden, neutralise_cell, restore_cell,
};

/// Decimal places of floating-point numbers in CSV outputs: enough for any analysis,
/// few enough that the files read well and stay byte-stable.
pub const CSV_FLOAT_PRECISION: usize = 6;

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes).map_err(|e| io(path, e)))
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates a temporary file next to `path`, lets `fill` write it, syncs it and
/// renames it to `path`. On error the temporary file is removed.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let mut atomic = AtomicFile::create(path)?;
    fill(atomic.file())?;
    atomic.commit()
}

/// The temporary files of this process's [`AtomicFile`]s not yet renamed or removed.
static UNFINISHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn unfinished() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    UNFINISHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes the temporary file of every [`AtomicFile`] still being written: for a
/// process about to exit on a signal, which runs no destructor.
pub fn remove_unfinished() {
    for tmp in unfinished().drain(..) {
        let _ = std::fs::remove_file(tmp);
    }
}

/// A file written under a temporary name in its destination folder and renamed to
/// its name by [`AtomicFile::commit`]; dropped uncommitted, the temporary file is
/// removed (and [`remove_unfinished`] removes it on a signal).
pub struct AtomicFile {
    file: std::fs::File,
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Starts `path`: `.<name>.<pid>.userlens.tmp` beside it, made new (never written through
    /// a link or over a file of that name, which is userlens's own by its name).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).map_err(|e| match dir.ancestors().find(|a| a.is_file()) {
            Some(file) => Error::NotAFolder {
                path: path.to_path_buf(),
                file: file.to_path_buf(),
            },
            None => io(dir, e),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}{TEMPORARY_SUFFIX}", std::process::id()));
        // A stale one of this pid (a killed run's) goes; a link is removed, not followed.
        let _ = std::fs::remove_file(&tmp);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            // Named for the file the user asked for: the temporary name is ours.
            .map_err(|e| io(path, e))?;
        unfinished().push(tmp.clone());
        Ok(AtomicFile {
            file,
            tmp,
            path: path.to_path_buf(),
            committed: false,
        })
    }

    /// The temporary file, to write.
    pub fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    /// The temporary file's path, `.<name>.<pid>.userlens.tmp` beside the file's.
    pub fn temporary(&self) -> &Path {
        &self.tmp
    }

    /// Syncs the file and renames it to its name.
    pub fn commit(mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| io(&self.path, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io(&self.path, e))?;
        self.committed = true;
        unfinished().retain(|tmp| *tmp != self.tmp);
        Ok(())
    }
}

/// The end of an [`AtomicFile`]'s temporary name, `.<name>.<pid>.userlens.tmp`: a
/// name of userlens's own, which no file of a user's is taken for.
const TEMPORARY_SUFFIX: &str = ".userlens.tmp";

/// Whether `name` is that of an [`AtomicFile`]'s temporary file.
pub fn is_temporary(name: &str) -> bool {
    temporary_pid(name).is_some()
}

/// The process that wrote the temporary file `name` (`.<name>.<pid>.userlens.tmp`),
/// if it is one.
pub fn temporary_pid(name: &str) -> Option<u32> {
    let (file, pid) = (name.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(TEMPORARY_SUFFIX))
        .and_then(|n| n.rsplit_once('.'))?;
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (!file.is_empty() && digits).then(|| pid.parse().ok())?
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
            unfinished().retain(|tmp| *tmp != self.tmp);
        }
    }
}

/// `df` with each of its columns the feature catalogue calls a count
/// ([`FeatureInfo::count`](userlens_model::FeatureInfo::count)) as integers, for a
/// CSV that shows `16` rather than `16.000000`. A column that holds anything but
/// whole numbers within 2^53 (or nulls) is left as it is.
pub fn counts_as_integers(df: &DataFrame) -> PolarsResult<DataFrame> {
    const EXACT: f64 = (1u64 << f64::MANTISSA_DIGITS) as f64;
    let mut out = df.clone();
    let counts = userlens_model::FEATURES.iter().filter(|f| f.count);
    for name in counts.map(|f| f.name) {
        let Some(column) = df
            .column(name)
            .ok()
            .filter(|c| c.dtype() == &DataType::Float64)
        else {
            continue;
        };
        let whole = column
            .f64()?
            .iter()
            .flatten()
            .all(|v| v.fract() == 0.0 && v.abs() <= EXACT);
        if whole {
            out.replace(name, column.strict_cast(&DataType::Int64)?)?;
        }
    }
    Ok(out)
}

/// Writes a table as CSV with a header, floats at [`CSV_FLOAT_PRECISION`] decimals,
/// and every text cell and column name passed through [`neutralise_cell`]; numeric
/// columns are written as they are.
pub fn write_csv(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_atomic_with(path, |file| {
        let mut buffered = std::io::BufWriter::new(file);
        write_csv_rows(&mut buffered, df, true).map_err(polars_at(path))?;
        buffered.flush().map_err(|e| io(path, e))
    })
}

/// Writes `df`'s rows as CSV, after its header when `header`: text cells through
/// [`neutralise_cell`], floats at [`CSV_FLOAT_PRECISION`] decimals, the bytes of
/// polars' writer ([`rows`] writes the types the outputs hold, faster).
fn write_csv_rows(out: &mut impl Write, df: &DataFrame, header: bool) -> PolarsResult<()> {
    let safe = safe_text::for_spreadsheets(df)?;
    let df = safe.as_ref().unwrap_or(df);
    let polars = |out: &mut _, rows: &DataFrame, header: bool| {
        CsvWriter::new(out)
            .include_header(header)
            .with_float_precision(Some(CSV_FLOAT_PRECISION))
            .finish(&mut rows.clone())
    };
    if header {
        polars(&mut *out, &df.clear(), true)?;
    }
    if !rows::write(out, df)? {
        polars(&mut *out, df, false)?;
    }
    Ok(())
}

/// Writes a table as Parquet (LZ4-compressed), atomically, its row groups encoded on
/// polars' threads.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    // Through polars' streaming sink, which encodes row groups on every thread: the
    // batched writer encodes each page as the file writer takes it, on one. Same bytes.
    let atomic = AtomicFile::create(path)?;
    let format = FileWriteFormat::Parquet(std::sync::Arc::new(parquet_options()));
    PlRefPath::try_from_path(&atomic.tmp)
        .and_then(|target| {
            let target = SinkDestination::File {
                target: SinkTarget::Path(target),
            };
            df.clone()
                .lazy()
                .sink(target, format, UnifiedSinkArgs::default())
        })
        .and_then(|sink| sink.collect_with_engine(Engine::Streaming))
        .map_err(polars_at(path))?;
    atomic.commit()
}

/// [`write_parquet`] with every column encoded on the calling thread, leaving
/// polars' threads to the work in the foreground: for a writer in the background.
pub fn write_parquet_on_this_thread(df: &mut DataFrame, path: &Path) -> Result<()> {
    // Sliced, not split into its chunks: splitting first aligns the columns' chunks,
    // which copies the whole table when they differ (a column of one value has one).
    write_row_groups(&df.schema().clone(), vec![df.clone()], path, false)
}

/// [`write_parquet_on_this_thread`] of a table handed over: a chunk at a time, each
/// let go once written, so that where the caller's copy drops columns meanwhile, the
/// chunks written are freed as the writer goes rather than when it is done.
pub fn write_parquet_chunk_by_chunk(mut df: DataFrame, path: &Path) -> Result<()> {
    let schema = df.schema().clone();
    let chunks: Vec<DataFrame> = df.split_chunks().collect();
    drop(df);
    write_row_groups(&schema, chunks, path, false)
}

/// Rows per row group: polars' default.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// Chunks of fewer rows are joined with their neighbours into row groups of up to
/// [`ROW_GROUP_ROWS`]; longer ones are written as they are, never copied.
const JOIN_BELOW_ROWS: usize = ROW_GROUP_ROWS / 8;

/// Writes the rows of `chunks` in row groups of at most [`ROW_GROUP_ROWS`] rows, one
/// at a time ([`RowGroups`]). Each chunk is let go once written.
fn write_row_groups(
    schema: &Schema,
    chunks: Vec<DataFrame>,
    path: &Path,
    parallel: bool,
) -> Result<()> {
    write_atomic_with(path, |file| {
        let mut groups = RowGroups::new(file, schema, parallel).map_err(polars_at(path))?;
        for chunk in chunks {
            groups.push(chunk).map_err(polars_at(path))?;
        }
        groups.finish().map_err(polars_at(path))
    })
}

/// Rows on their way into Parquet row groups of at most [`ROW_GROUP_ROWS`] rows:
/// short chunks are joined a group at a time, where `ParquetWriter::finish` would
/// copy the whole table first, and long ones are only sliced.
struct RowGroups<'a> {
    writer: polars::io::parquet::write::BatchedWriter<&'a mut std::fs::File>,
    group: Vec<DataFrame>,
    rows: usize,
}

impl<'a> RowGroups<'a> {
    fn new(file: &'a mut std::fs::File, schema: &Schema, parallel: bool) -> PolarsResult<Self> {
        Ok(RowGroups {
            writer: parquet_writer(file, parallel).batched(schema)?,
            group: Vec::new(),
            rows: 0,
        })
    }

    fn push(&mut self, mut chunk: DataFrame) -> PolarsResult<()> {
        let long = chunk.height() >= JOIN_BELOW_ROWS;
        if long {
            self.flush()?;
        }
        while chunk.height() > 0 {
            let take = (ROW_GROUP_ROWS - self.rows).min(chunk.height());
            self.group.push(chunk.slice(0, take));
            chunk = chunk.slice(take as i64, usize::MAX);
            self.rows += take;
            if self.rows == ROW_GROUP_ROWS || (long && chunk.height() == 0) {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> PolarsResult<()> {
        self.rows = 0;
        let mut pieces = self.group.drain(..);
        let Some(mut df) = pieces.next() else {
            return Ok(());
        };
        for piece in pieces {
            df.vstack_mut(&piece)?;
        }
        df.rechunk_mut_par();
        self.writer.write_batch(&df)
    }

    fn finish(mut self) -> PolarsResult<()> {
        self.flush()?;
        self.writer.finish().map(|_| ())
    }
}

/// A table handed over a block at a time by [`write_blocks`]'s caller.
pub struct Blocks<'a> {
    csv: Option<(std::io::BufWriter<&'a mut std::fs::File>, PathBuf)>,
    /// Whether the CSV's header is still to be written.
    header: bool,
    parquet: RowGroups<'a>,
    parquet_path: PathBuf,
    rows: u64,
}

impl Blocks<'_> {
    /// Writes the next block's rows: to the CSV made safe for spreadsheets, the
    /// header before the first block's rows, and to the Parquet row groups.
    pub fn write(&mut self, block: DataFrame) -> Result<()> {
        if let Some((csv, path)) = &mut self.csv {
            write_csv_rows(csv, &block, self.header).map_err(polars_at(path))?;
            self.header = false;
        }
        self.rows += block.height() as u64;
        self.parquet
            .push(block)
            .map_err(polars_at(&self.parquet_path))
    }

    /// Writes the header of a table with no blocks, and the end of the files.
    fn finish(mut self, schema: &Schema) -> Result<u64> {
        if self.csv.is_some() && self.header {
            self.write(DataFrame::empty_with_schema(schema))?;
        }
        if let Some((mut buffered, path)) = self.csv {
            buffered.flush().map_err(|e| io(&path, e))?;
        }
        self.parquet
            .finish()
            .map_err(polars_at(&self.parquet_path))?;
        Ok(self.rows)
    }
}

/// Writes a table that `fill` hands over a block at a time ([`Blocks::write`]) as
/// Parquet at `parquet` and, when `csv` is given, as a CSV like [`write_csv`]'s,
/// both atomically once `fill` is done, never holding more than a block and a row
/// group; returns the rows written. On an error while writing, neither file is
/// replaced and no temporary file is left; one at the end (the Parquet file's sync
/// or rename) can come after the CSV is in place.
pub fn write_blocks<E: From<Error>>(
    csv: Option<&Path>,
    parquet: &Path,
    schema: &Schema,
    fill: impl FnOnce(&mut Blocks<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<u64, E> {
    let mut parquet_file = AtomicFile::create(parquet)?;
    let mut csv_file = csv.map(AtomicFile::create).transpose()?;
    let mut blocks = Blocks {
        csv: csv_file
            .as_mut()
            .zip(csv)
            .map(|(file, path)| (std::io::BufWriter::new(file.file()), path.to_path_buf())),
        header: true,
        parquet: RowGroups::new(parquet_file.file(), schema, true).map_err(polars_at(parquet))?,
        parquet_path: parquet.to_path_buf(),
        rows: 0,
    };
    fill(&mut blocks)?;
    let rows = blocks.finish(schema)?;
    if let Some(file) = csv_file {
        file.commit()?;
    }
    parquet_file.commit()?;
    Ok(rows)
}

fn polars_at(path: &Path) -> impl FnOnce(PolarsError) -> Error + '_ {
    move |source| Error::Polars {
        path: path.to_path_buf(),
        source,
    }
}

/// How every table is written as Parquet.
fn parquet_options() -> ParquetWriteOptions {
    // Stage artifacts are read back whole by the next stage or run: LZ4 writes faster
    // than zstd, and min/max statistics only prune the row groups of a filtered scan.
    ParquetWriteOptions {
        compression: ParquetCompression::Lz4Raw,
        statistics: StatisticsOptions {
            null_count: true,
            ..StatisticsOptions::empty()
        },
        row_group_size: Some(ROW_GROUP_ROWS),
        compat_level: Some(CompatLevel::newest()),
        ..ParquetWriteOptions::default()
    }
}

fn parquet_writer(file: &mut std::fs::File, parallel: bool) -> ParquetWriter<&mut std::fs::File> {
    let options = parquet_options();
    ParquetWriter::new(file)
        .with_compression(options.compression)
        .with_statistics(options.statistics)
        .set_parallel(parallel)
}

/// Writes a value as pretty JSON with a final newline.
pub fn write_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_cannot_be_started_is_told_by_its_own_name() {
        // 250 bytes is a name the folder takes, but not with `.<pid>.userlens.tmp` around
        // it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{}.csv", "a".repeat(246)));
        let err = write_atomic(&path, b"x").unwrap_err().to_string();
        assert_eq!(err, format!("failed to write `{}`", path.display()));
    }

    #[test]
    fn counts_are_written_as_integers_and_nothing_else_is() {
        let df = df!(
            "events" => [Some(16.0), None, Some(0.0)],
            "sessions" => [2.0, 2.5, 1.0],
            "views" => [1e16, 1.0, 2.0],
            "monetary" => [16.0, 3.0, 0.0],
        )
        .unwrap();
        let out = counts_as_integers(&df).unwrap();
        let dtypes: Vec<_> = out.dtypes().into_iter().collect();
        // `sessions` holds a fraction and `views` a number past 2^53: neither is cast.
        assert_eq!(
            dtypes,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Float64,
                DataType::Float64
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.csv");
        write_csv(&mut out.clone(), &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "events,sessions,views,monetary\n\
             16,2.000000,10000000000000000.000000,16.000000\n\
             ,2.500000,1.000000,3.000000\n\
             0,1.000000,2.000000,0.000000\n"
        );
    }

    #[test]
    fn csv_is_written_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/personas.csv");
        let mut df = df!("persona_id" => [1u32, 2], "share" => [0.25, 1.0 / 3.0]).unwrap();
        write_csv(&mut df, &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "persona_id,share\n1,0.250000\n2,0.333333\n"
        );
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["personas.csv"]);
    }

    #[test]
    fn a_file_where_a_folder_should_be_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("afile"), "").unwrap();
        let path = dir.path().join("afile/sub/x.csv");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write `{}`: `{}` is a file, not a folder",
                path.display(),
                dir.path().join("afile").display()
            )
        );
    }

    #[test]
    fn csv_cells_that_would_run_as_formulas_are_quoted_and_numbers_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quarantine.csv");
        let mut df = df!(
            "raw" => ["=cmd|' /C calc'!A0", "u\u{202E}1", "-3.5"],
            "amount" => [-1.5, 2.0, 0.25],
        )
        .unwrap();
        write_csv(&mut df, &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "raw,amount\n'=cmd|' /C calc'!A0,-1.500000\nu\\u{202E}1,2.000000\n-3.5,0.250000\n"
        );
    }

    #[test]
    fn a_table_of_many_chunks_reads_back_whole_from_whole_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = |from: i64, n: i64| {
            df!(
                "user_id" => (from..from + n).map(|i| format!("u{i}")).collect::<Vec<_>>(),
                "amount" => (from..from + n).map(|i| (i % 7 != 0).then_some(i as f64 / 4.0)).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        // One chunk longer than a row group, then two short ones: the long one is
        // sliced, the short ones joined.
        let rows = ROW_GROUP_ROWS as i64 + 10;
        let mut df = chunk(0, rows);
        df.vstack_mut(&chunk(rows, 5)).unwrap();
        df.vstack_mut(&chunk(rows + 5, 3)).unwrap();
        assert_eq!(df.first_col_n_chunks(), 3);
        let kept = df.clone();
        let path = dir.path().join("events.parquet");
        write_parquet_chunk_by_chunk(df, &path).unwrap();
        let groups = |expected: &DataFrame| {
            let read = ParquetReader::new(std::fs::File::open(&path).unwrap())
                .finish()
                .unwrap();
            assert!(read.equals_missing(expected));
            let metadata = ParquetReader::new(std::fs::File::open(&path).unwrap())
                .get_metadata()
                .unwrap()
                .clone();
            metadata
                .row_groups
                .iter()
                .map(|g| g.num_rows())
                .collect::<Vec<usize>>()
        };
        assert_eq!(groups(&kept), [ROW_GROUP_ROWS, 10, 8]);
        // A table written whole (sliced into full row groups, each joined as it is
        // written), a column of one value among its chunked columns.
        let mut whole = kept.clone();
        let one = Scalar::new(DataType::String, AnyValue::StringOwned("als".into()));
        let height = whole.height();
        whole
            .with_column(Column::new_scalar("model".into(), one, height))
            .unwrap();
        write_parquet(&mut whole, &path).unwrap();
        assert_eq!(groups(&whole), [ROW_GROUP_ROWS, 18]);
        assert!(whole.column("model").unwrap().as_scalar_column().is_some());
        // Chunks that do not line up are aligned first.
        let mut uneven = chunk(0, 4);
        uneven.vstack_mut(&chunk(4, 4)).unwrap();
        uneven
            .with_column(Column::new("extra".into(), (0..8).collect::<Vec<i64>>()))
            .unwrap();
        assert!(uneven.should_rechunk());
        let expected = uneven.clone();
        write_parquet_chunk_by_chunk(uneven, &path).unwrap();
        let read = ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap();
        assert!(read.equals_missing(&expected));
    }

    #[test]
    fn the_sink_on_every_thread_writes_the_one_thread_writers_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let part = |from: u32, n: u32| {
            df!(
                "user_id" => (from..from + n).map(|i| format!("customer-number-{i}")).collect::<Vec<_>>(),
                "event_type" => (from..from + n).map(|i| ["view", "purchase", "cart"][i as usize % 3]).collect::<Vec<_>>(),
                "amount" => (from..from + n).map(|i| (i % 4 == 0).then_some(f64::from(i) / 8.0)).collect::<Vec<_>>(),
            )
            .unwrap()
            .lazy()
            .with_column(col("event_type").cast(DataType::from_categories(Categories::global())))
            .collect()
            .unwrap()
        };
        let mut table = part(0, ROW_GROUP_ROWS as u32 + 3);
        table
            .vstack_mut(&part(ROW_GROUP_ROWS as u32 + 3, 1_000))
            .unwrap();
        for mut df in [table.clone(), table.slice(0, 0)] {
            let (sink, one) = (
                dir.path().join("sink.parquet"),
                dir.path().join("one.parquet"),
            );
            write_parquet(&mut df, &sink).unwrap();
            write_parquet_on_this_thread(&mut df, &one).unwrap();
            assert_eq!(std::fs::read(&sink).unwrap(), std::fs::read(&one).unwrap());
            let read = ParquetReader::new(std::fs::File::open(&sink).unwrap())
                .finish()
                .unwrap();
            assert!(read.equals_missing(&df), "{} rows", df.height());
        }
    }

    #[test]
    fn a_table_written_in_blocks_reads_as_the_table_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let block = |from: u32, n: u32| {
            df!(
                "user_id" => (from..from + n).map(|i| if i % 5 == 0 { format!("=u{i}") } else { format!("u{i}") }).collect::<Vec<_>>(),
                "score" => (from..from + n).map(|i| f64::from(i) / 3.0).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let blocks = [block(0, 4), block(4, 0), block(4, 40_000), block(40_004, 7)];
        let mut whole = blocks[0].clone();
        for b in &blocks[1..] {
            whole.vstack_mut(b).unwrap();
        }
        let (csv, parquet) = (dir.path().join("a.csv"), dir.path().join("a.parquet"));
        let rows = write_blocks::<Error>(Some(&csv), &parquet, &whole.schema().clone(), |out| {
            blocks.iter().try_for_each(|b| out.write(b.clone()))
        })
        .unwrap();
        assert_eq!(rows, 40_011);
        let expected = dir.path().join("whole.csv");
        write_csv(&mut whole.clone(), &expected).unwrap();
        let written = std::fs::read_to_string(&csv).unwrap();
        assert!(written.starts_with("user_id,score\n'=u0,0.000000\nu1,0.333333\n"));
        assert_eq!(written, std::fs::read_to_string(&expected).unwrap());
        let read = ParquetReader::new(std::fs::File::open(&parquet).unwrap())
            .finish()
            .unwrap();
        assert!(read.equals_missing(&whole));

        // No blocks: the header alone; no CSV asked for: none written.
        let empty =
            write_blocks::<Error>(Some(&csv), &parquet, &whole.schema().clone(), |_| Ok(()));
        assert_eq!(empty.unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), "user_id,score\n");
        let only = dir.path().join("only/a.parquet");
        write_blocks::<Error>(None, &only, &whole.schema().clone(), |out| {
            out.write(block(0, 2))
        })
        .unwrap();
        let names: Vec<_> = std::fs::read_dir(only.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.parquet"]);

        // A failure on the way: neither file replaced, no temporary file left.
        let before = std::fs::read_dir(dir.path()).unwrap().count();
        let failed = write_blocks::<Error>(Some(&csv), &parquet, &whole.schema().clone(), |out| {
            out.write(block(0, 3))?;
            Err(io(&csv, std::io::Error::other("killed")))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), "user_id,score\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_json(&serde_json::json!({"ok": true}), &path).unwrap();
        let err = write_atomic_with(&path, |file| {
            file.write_all(b"half").map_err(|e| io(&path, e))?;
            Err(io(&path, std::io::Error::other("killed")))
        });
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"ok\": true\n}\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
