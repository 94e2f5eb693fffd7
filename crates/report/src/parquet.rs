//! Tables written as Parquet: row groups of at most [`ROW_GROUP_ROWS`] rows, LZ4,
//! null counts only, atomically.
//!
//! Each row group's columns are encoded here rather than by polars' writer, which
//! hashes every value of a text column to dictionary-encode it: a categorical
//! column's codes are renumbered through a table indexed by code, and a text column
//! whose equal values sit next to each other (the events, sorted by user and time)
//! gets its dictionary from its runs, each run's value looked up once. Both give
//! the dictionaries polars' writer would, in the same order; every other column
//! goes through polars' own encoder.

use std::borrow::Cow;
use std::path::Path;

use polars::io::parquet::write::{BatchedWriter, get_encodings};
use polars::prelude::*;
use polars_arrow::array::{
    Array, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray, View,
};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::write::{
    CompressedPage, CompressionOptions, Compressor, Encoding, ParquetType, Version, WriteOptions,
    array_to_columns,
};
use rayon::prelude::*;

use crate::{Result, polars_at, write_atomic_with};

/// Writes a table as Parquet, atomically, the columns of each row group encoded on
/// every core.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_row_groups(&df.schema().clone(), vec![df.clone()], path, true)
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
pub(crate) const ROW_GROUP_ROWS: usize = 512 * 512;

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
pub(crate) struct RowGroups<'a> {
    writer: BatchedWriter<&'a mut std::fs::File>,
    encoder: Encoder,
    group: Vec<DataFrame>,
    /// Whole row groups, one chunk per column, waiting to be encoded together.
    ready: Vec<DataFrame>,
    rows: usize,
}

impl<'a> RowGroups<'a> {
    pub(crate) fn new(
        file: &'a mut std::fs::File,
        schema: &Schema,
        parallel: bool,
    ) -> PolarsResult<Self> {
        let mut writer = parquet_writer(file).batched(schema)?;
        let encoder = Encoder::new(schema, writer.parquet_schema().fields(), parallel);
        Ok(RowGroups {
            writer,
            encoder,
            group: Vec::new(),
            ready: Vec::new(),
            rows: 0,
        })
    }

    pub(crate) fn push(&mut self, mut chunk: DataFrame) -> PolarsResult<()> {
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
        self.ready.push(df);
        if self.ready.len() >= self.encoder.batch() {
            self.write_ready()?;
        }
        Ok(())
    }

    /// Encodes the row groups ready, then writes them in order.
    fn write_ready(&mut self) -> PolarsResult<()> {
        let encoded = self.encoder.row_groups(&self.ready)?;
        for (df, pages) in self.ready.drain(..).zip(encoded) {
            self.writer.write_row_group(df.height() as u64, &pages)?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> PolarsResult<()> {
        self.flush()?;
        self.write_ready()?;
        self.writer.finish().map(|_| ())
    }
}

/// How every table is written as Parquet.
fn parquet_options() -> ParquetWriteOptions {
    // Stage artifacts are read back whole by the next stage or run: LZ4 writes several
    // times faster than the default zstd for a somewhat bigger file, and min/max
    // statistics, which only prune row groups of a filtered scan, are not worth their
    // cost.
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

fn parquet_writer(file: &mut std::fs::File) -> ParquetWriter<&mut std::fs::File> {
    let options = parquet_options();
    ParquetWriter::new(file)
        .with_compression(options.compression)
        .with_statistics(options.statistics)
}

/// Encodes the columns of row groups into compressed pages.
pub(crate) struct Encoder {
    fields: Vec<ArrowField>,
    types: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
    parallel: bool,
}

/// The most row groups [`Encoder`] encodes together.
const MAX_BATCH: usize = 8;

/// The compressed pages of a row group's columns, in column order.
type Pages = Vec<Vec<CompressedPage>>;

impl Encoder {
    fn new(schema: &Schema, types: &[ParquetType], parallel: bool) -> Encoder {
        let arrow = schema.to_arrow(CompatLevel::newest());
        let options = parquet_options();
        Encoder {
            fields: arrow.iter_values().cloned().collect(),
            types: types.to_vec(),
            encodings: get_encodings(&arrow).iter().cloned().collect(),
            options: WriteOptions {
                statistics: options.statistics,
                compression: CompressionOptions::from(options.compression),
                version: Version::V1,
                data_page_size: options.data_page_size,
            },
            parallel,
        }
    }

    /// Row groups encoded together: two per thread on every thread, at most
    /// [`MAX_BATCH`] (the rows and pages of each are held until written); one at a
    /// time on the calling thread.
    fn batch(&self) -> usize {
        if self.parallel {
            (2 * rayon::current_num_threads()).min(MAX_BATCH)
        } else {
            1
        }
    }

    /// The pages of every row group of `groups` (one chunk per column), each
    /// column of each group a task of its own.
    fn row_groups(&self, groups: &[DataFrame]) -> PolarsResult<Vec<Pages>> {
        let width = self.fields.len();
        let encode =
            |task: usize| self.column(&groups[task / width].columns()[task % width], task % width);
        let tasks = groups.len() * width;
        let columns: Vec<Pages> = if self.parallel {
            (0..tasks)
                .into_par_iter()
                .map(encode)
                .collect::<PolarsResult<_>>()?
        } else {
            (0..tasks).map(encode).collect::<PolarsResult<_>>()?
        };
        let mut columns = columns.into_iter();
        Ok(groups
            .iter()
            .map(|_| columns.by_ref().take(width).flatten().collect())
            .collect())
    }

    /// The pages of column `i`'s leaves.
    fn column(&self, column: &Column, i: usize) -> PolarsResult<Pages> {
        let array = arrow_array(column.as_materialized_series(), &self.fields[i])?;
        let compression = self.options.compression;
        array_to_columns(
            array,
            self.types[i].clone(),
            self.options,
            &self.encodings[i],
        )?
        .into_iter()
        .map(|pages| {
            let pages = pages.map(|page| {
                page.map_err(|e| {
                    polars_parquet::read::ParquetError::FeatureNotSupported(e.to_string())
                })
            });
            Compressor::new_from_vec(pages, compression, Vec::new())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(PolarsError::from)
        })
        .collect()
    }
}

std::thread_local! {
    /// A thread's renumbering table of categorical codes ([`categorical_dictionary`]),
    /// all `u32::MAX` between uses.
    static RENUMBERING: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The Arrow array of a one-chunk column as Parquet's writer takes it.
fn arrow_array(series: &Series, field: &ArrowField) -> PolarsResult<Box<dyn Array>> {
    let dictionary = match (series.dtype(), field.dtype()) {
        (DataType::Categorical(..), ArrowDataType::Dictionary(IntegerType::UInt32, values, _))
            if **values == ArrowDataType::Utf8View =>
        {
            RENUMBERING.with_borrow_mut(|table| categorical_dictionary(series, table))?
        }
        (DataType::String, ArrowDataType::Utf8View) => series
            .str()?
            .downcast_iter()
            .next()
            .and_then(runs_dictionary),
        _ => None,
    };
    match dictionary {
        Some(array) => Ok(array.boxed()),
        None => series.to_arrow_with_field(0, Cow::Borrowed(field), true),
    }
}

/// A dictionary of Utf8View values keyed by u32, as Parquet's writer takes it.
fn dictionary(
    keys: Vec<u32>,
    validity: Option<polars_arrow::bitmap::Bitmap>,
    values: MutableBinaryViewArray<str>,
) -> PolarsResult<DictionaryArray<u32>> {
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity);
    let values: Utf8ViewArray = values.into();
    DictionaryArray::try_new(
        ArrowDataType::Dictionary(
            IntegerType::UInt32,
            Box::new(ArrowDataType::Utf8View),
            false,
        ),
        keys,
        values.boxed(),
    )
}

/// A categorical column's codes renumbered in the order they first appear, with the
/// values they stand for: what polars' conversion gives, through `table` (indexed by
/// code, left all `u32::MAX` again) rather than a hash set. `None` for a column of
/// other codes than u32 ones.
fn categorical_dictionary(
    series: &Series,
    table: &mut Vec<u32>,
) -> PolarsResult<Option<DictionaryArray<u32>>> {
    let Ok(categorical) = series.cat32() else {
        return Ok(None);
    };
    let mapping = series.dtype().cat_mapping()?;
    let Some(codes) = categorical.physical().downcast_iter().next() else {
        return Ok(None);
    };
    let bound = mapping.num_cats_upper_bound();
    if table.len() < bound {
        table.resize(bound, u32::MAX);
    }
    let mut used: Vec<u32> = Vec::new();
    let mut renumber = |code: u32| {
        let slot = table.get_mut(code as usize)?;
        if *slot == u32::MAX {
            *slot = used.len() as u32;
            used.push(code);
        }
        Some(*slot)
    };
    let keys: Option<Vec<u32>> = match codes.validity() {
        None => codes.values().iter().map(|&code| renumber(code)).collect(),
        // A null's key is 0, as polars' conversion leaves it.
        Some(valid) => codes
            .values()
            .iter()
            .zip(valid.iter())
            .map(|(&code, valid)| if valid { renumber(code) } else { Some(0) })
            .collect(),
    };
    let values: Option<Vec<&str>> = used.iter().map(|&code| mapping.cat_to_str(code)).collect();
    for &code in &used {
        table[code as usize] = u32::MAX;
    }
    let (Some(keys), Some(values)) = (keys, values) else {
        return Ok(None);
    };
    let mut array = MutableBinaryViewArray::<str>::with_capacity(values.len());
    for value in values {
        array.push_value(value);
    }
    dictionary(keys, codes.validity().cloned(), array).map(Some)
}

/// A text column's dictionary made from its runs of equal values, in the order they
/// first appear: one comparison with the last value per row, and a hash per run.
/// `None` where runs are more than three in four values (polars' writer, which
/// estimates distinct values instead, then writes them plain).
fn runs_dictionary(text: &Utf8ViewArray) -> Option<DictionaryArray<u32>> {
    let n = text.len();
    let views = text.views();
    // Equal views hold equal text (inline, or at one place); different ones of one
    // length and prefix may still, in two places.
    let same = |i: usize, j: usize| {
        let (a, b) = (views[i], views[j]);
        a == b
            || (a.length == b.length
                && a.length > View::MAX_INLINE_SIZE
                && a.prefix == b.prefix
                && text.value(i) == text.value(j))
    };
    let mut runs = 0usize;
    let mut last = None;
    for i in (0..n).filter(|&i| text.is_valid(i)) {
        if last.is_none_or(|j| !same(i, j)) {
            runs += 1;
        }
        last = Some(i);
    }
    if n > 128 && runs * 4 > n * 3 {
        return None;
    }
    // A run's value is looked up once, not each row's: a value in runs apart (an
    // unsorted column) gets the one entry it has in polars' dictionary.
    let mut values = MutableBinaryViewArray::<str>::with_capacity(runs);
    let mut seen: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    let mut keys = Vec::with_capacity(n);
    let (mut last, mut key) = (None, 0);
    for i in 0..n {
        if !text.is_valid(i) {
            keys.push(0);
            continue;
        }
        if last.is_none_or(|j| !same(i, j)) {
            let value = text.value(i);
            key = *seen.entry(value).or_insert_with(|| {
                values.push_value(value);
                values.len() as u32 - 1
            });
        }
        last = Some(i);
        keys.push(key);
    }
    dictionary(keys, text.validity().cloned(), values).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> DataFrame {
        ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    /// Events as the ingest leaves them: users in runs (ids longer than a view holds
    /// inline, each stored again), a session per few rows,
    /// categorical columns with nulls.
    fn events(users: u32, per_user: u32) -> DataFrame {
        let n = users * per_user;
        let cat = DataType::from_categories(Categories::global());
        df!(
            "user_id" => (0..n).map(|i| format!("customer-number-{:05}", i / per_user)).collect::<Vec<_>>(),
            "session_id" => (0..n).map(|i| (i % 5 != 0).then(|| format!("s{}", i / 3))).collect::<Vec<_>>(),
            "item_id" => (0..n).map(|i| (i % 4 != 1).then(|| format!("item-{}", (u64::from(i) * 7919) % 613))).collect::<Vec<_>>(),
            "event_type" => (0..n).map(|i| ["view", "cart", "purchase"][(i % 3) as usize]).collect::<Vec<_>>(),
            "amount" => (0..n).map(|i| (i % 6 == 2).then_some(f64::from(i) / 8.0)).collect::<Vec<_>>(),
        )
        .unwrap()
        .lazy()
        .with_columns([col("item_id").cast(cat.clone()), col("event_type").cast(cat)])
        .collect()
        .unwrap()
    }

    #[test]
    fn dictionaries_made_here_are_the_bytes_polars_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = (
            dir.path().join("ours.parquet"),
            dir.path().join("theirs.parquet"),
        );
        // Two row groups and a part of one; every user and session in one run, and
        // a column of a few values in runs apart.
        let mut df = events(2_100, 260);
        let n = df.height();
        df.with_column(Column::new(
            "model".into(),
            (0..n)
                .map(|i| ["tree", "logistic", "rate"][(i / 7 + i / 11) % 3])
                .collect::<Vec<_>>(),
        ))
        .unwrap();
        write_parquet(&mut df, &ours).unwrap();
        let mut file = std::fs::File::create(&theirs).unwrap();
        let mut writer = parquet_writer(&mut file)
            .batched(&df.schema().clone())
            .unwrap();
        for from in (0..df.height()).step_by(ROW_GROUP_ROWS) {
            let mut group = df.slice(from as i64, ROW_GROUP_ROWS);
            group.rechunk_mut_par();
            writer.write_batch(&group).unwrap();
        }
        writer.finish().unwrap();
        assert!(read(&ours).equals_missing(&df));
        assert!(std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap());
    }

    #[test]
    fn a_run_of_long_text_stored_again_is_one_value() {
        let mut text = MutableBinaryViewArray::<str>::new();
        let long = ["customer-number-1", "customer-number-2"];
        for value in [
            Some(long[0]),
            Some(long[0]),
            None,
            Some(long[0]),
            Some(long[1]),
            Some("u"),
        ] {
            text.push(value);
        }
        let text: Utf8ViewArray = text.into();
        let dictionary = runs_dictionary(&text).unwrap();
        let values: Vec<_> = dictionary
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .unwrap()
            .values_iter()
            .collect();
        assert_eq!(values, [long[0], long[1], "u"]);
        assert_eq!(dictionary.keys().values().as_slice(), [0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn text_in_any_order_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let cat = DataType::from_categories(Categories::global());
        let sorted = events(50, 20);
        let cases = [
            // Values repeated in separate runs: a dictionary value per run.
            df!("t" => ["a", "a", "b", "a", "a", "b", "b", "a"]).unwrap(),
            // A run broken by nulls, a null first and last.
            df!("t" => [None, Some("x"), None, Some("x"), Some("y"), None]).unwrap(),
            // Every value its own run, long enough that the runs are not worth it.
            df!("t" => (0..1_000).map(|i| format!("v{i}")).collect::<Vec<_>>()).unwrap(),
            // All null, and empty.
            df!("t" => [None::<&str>, None]).unwrap(),
            df!("t" => Vec::<String>::new()).unwrap(),
            // Categorical columns: all null, and codes out of first-seen order.
            df!("t" => [None::<&str>, None])
                .unwrap()
                .lazy()
                .with_column(col("t").cast(cat.clone()))
                .collect()
                .unwrap(),
            sorted
                .take(&IdxCa::from_vec(
                    "i".into(),
                    (0..1_000).map(|i| (i * 7_919) % 1_000).collect(),
                ))
                .unwrap(),
        ];
        for mut df in cases {
            for parallel in [true, false] {
                if parallel {
                    write_parquet(&mut df, &path).unwrap();
                } else {
                    write_parquet_on_this_thread(&mut df, &path).unwrap();
                }
                assert!(read(&path).equals_missing(&df), "{df}");
            }
        }
    }
}
