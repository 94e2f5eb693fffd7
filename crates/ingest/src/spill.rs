//! Out-of-core ingest: a source too big to hold in memory is read in chunks of rows
//! that are split by user and written to disk, then finished one partition at a
//! time into Parquet parts that each hold whole users, sorted by user and time.
//!
//! The reader of every part of the file writes its chunks as
//! `p{partition}-t{part}-c{chunk}.parquet` into the spill folder; a partition's files are then read together, sorted,
//! de-duplicated and sessionized like an in-memory ingest (exact duplicates share
//! their user, so they meet in the same partition) and written as `part-{p}.parquet`.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::codes;
use crate::error::{self, Error, Result};

/// Kept rows a reader thread holds before it writes them out.
pub(crate) const CHUNK_ROWS: usize = 1 << 22;

/// Fewest rows a chunk of a source read past its budget holds, however small the
/// budget: a chunk of rows is written as a file per partition it reaches.
pub(crate) const MIN_CHUNK_ROWS: usize = 1 << 16;

/// Bytes of a typical event CSV's line, to turn events into bytes of text.
pub(crate) const TEXT_BYTES_PER_EVENT: u64 = 64;

/// Source bytes per partition: about 4 million events of a typical event CSV, few
/// enough that a partition's work fits the memory budget's floor.
pub(crate) const PARTITION_BYTES: u64 = (4 << 20) * TEXT_BYTES_PER_EVENT;

/// Most partitions an ingest is split into: each reader writes a file per partition
/// and chunk, so a wrong estimate must not make millions of files.
pub(crate) const MAX_PARTITIONS: u64 = 4096;

/// Partitions for about `bytes` bytes of text when at most `budget` bytes of it
/// are to be held in memory at once: [`PARTITION_BYTES`] each, or the budget if
/// smaller (but at least a megabyte), and never fewer than two.
pub(crate) fn partitions_for(bytes: u64, budget: u64) -> u32 {
    let per_partition = PARTITION_BYTES.min(budget).max(1 << 20);
    bytes.div_ceil(per_partition).clamp(2, MAX_PARTITIONS) as u32
}

/// Where and in how many partitions the rows of one ingest are spilled.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub dir: PathBuf,
    pub partitions: u32,
    /// Kept rows a reader thread holds before it writes them out.
    pub chunk_rows: usize,
}

impl Plan {
    /// The partition of a user: FNV-1a of the id's bytes, so the split is the same on
    /// every machine and every run.
    pub fn partition_of(&self, user: &str) -> u32 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in user.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % u64::from(self.partitions)) as u32
    }
}

/// Writes `events`, sorted by user and time, as `part-{p}.parquet` files in `out`
/// (emptied first): runs of whole users in their order, a new part begun at the
/// first user past `per_part` events (at least two parts when there are two users,
/// at most [`MAX_PARTITIONS`]). Each part is a slice of the table, so nothing is
/// copied but what Parquet encodes.
pub(crate) fn write_parts(events: &DataFrame, per_part: u64, out: &Path) -> Result<Vec<PathBuf>> {
    use rayon::prelude::*;
    let rows = events.height();
    let per_part = (per_part as usize)
        .min(rows.div_ceil(2))
        .max(rows.div_ceil(MAX_PARTITIONS as usize))
        .max(1);
    let users = events
        .column(userlens_model::columns::USER_ID)
        .and_then(Column::str)
        .map_err(error::polars("split events into parts"))?;
    let mut starts = vec![0];
    let mut previous = None;
    for (row, user) in users.iter().enumerate() {
        if row - starts[starts.len() - 1] >= per_part && previous != Some(user) {
            starts.push(row);
        }
        previous = Some(user);
    }
    starts.push(rows);
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(io(out))?;
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    starts
        .par_windows(2)
        .enumerate()
        .filter(|(_, range)| range[1] > range[0])
        .map(|(p, range)| {
            let part = events.slice(range[0] as i64, range[1] - range[0]);
            let path = out.join(format!("part-{p:05}.parquet"));
            write_parquet(&part, &path, PART)?;
            Ok(path)
        })
        .collect()
}

/// The spill of one part of the file: numbers its chunks.
pub(crate) struct Writer<'a> {
    plan: &'a Plan,
    part: usize,
    chunks: usize,
}

impl<'a> Writer<'a> {
    pub fn new(plan: &'a Plan, part: usize) -> Writer<'a> {
        Writer {
            plan,
            part,
            chunks: 0,
        }
    }

    pub fn plan(&self) -> &Plan {
        self.plan
    }

    /// Writes `rows`, whose row `i` belongs to partition `partitions[i]`, one file
    /// per partition present.
    pub fn write(&mut self, rows: &DataFrame, partitions: &[u32]) -> Result<()> {
        let mut indices: Vec<Vec<IdxSize>> = vec![Vec::new(); self.plan.partitions as usize];
        for (row, &p) in partitions.iter().enumerate() {
            indices[p as usize].push(row as IdxSize);
        }
        for (p, rows_of_p) in indices.into_iter().enumerate() {
            if rows_of_p.is_empty() {
                continue;
            }
            let part = rows
                .take(&IdxCa::from_vec("".into(), rows_of_p))
                .map_err(error::polars("split rows by user"))?;
            let name = format!("p{p:05}-t{:05}-c{:06}.parquet", self.part, self.chunks);
            write_parquet(&part, &self.plan.dir.join(name), CHUNK)?;
        }
        self.chunks += 1;
        Ok(())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// How a file of rows is compressed: parts, which a run's later stages and runs
/// read, with LZ4; spilled chunks, read back once within the ingest, not at all.
pub(crate) const PART: ParquetCompression = ParquetCompression::Lz4Raw;
pub(crate) const CHUNK: ParquetCompression = ParquetCompression::Uncompressed;

/// Writes `df` to `path` through polars' streaming sink, which encodes row groups
/// on every thread; its categorical columns as the file's own codes ([`codes`]).
pub(crate) fn write_parquet(
    df: &DataFrame,
    path: &Path,
    compression: ParquetCompression,
) -> Result<()> {
    let at = |source| Error::WriteParquet {
        path: path.to_path_buf(),
        source,
    };
    let (coded, values) = codes::to_file(df).map_err(at)?;
    let options = ParquetWriteOptions {
        compression,
        // Read back whole: min/max statistics would only prune a filtered scan.
        statistics: StatisticsOptions {
            null_count: true,
            ..StatisticsOptions::empty()
        },
        row_group_size: Some(512 * 512),
        compat_level: Some(CompatLevel::newest()),
        key_value_metadata: Some(KeyValueMetadata::from_static(values)),
        ..ParquetWriteOptions::default()
    };
    let format = FileWriteFormat::Parquet(std::sync::Arc::new(options));
    PlRefPath::try_from_path(path)
        .and_then(|target| {
            let target = SinkDestination::File {
                target: SinkTarget::Path(target),
            };
            coded
                .lazy()
                .sink(target, format, UnifiedSinkArgs::default())
        })
        .and_then(|sink| sink.collect_with_engine(Engine::Streaming))
        .map_err(at)?;
    Ok(())
}

/// What finishing the partitions made.
pub(crate) struct Finished {
    /// The parts, in partition order (partitions without rows have none).
    pub files: Vec<PathBuf>,
    /// Rows read back from the spill.
    pub spilled: u64,
    /// Rows written to the parts.
    pub kept: u64,
    /// Rows dropped as duplicates.
    pub duplicates: Vec<crate::Duplicate>,
}

/// Turns the spilled chunks into one part per partition in `out`, applying `finish`
/// (sort, de-duplicate, sessionize) to each partition's rows, and removes the spill.
pub(crate) fn finish(
    plan: &Plan,
    out: &Path,
    finish: impl Fn(DataFrame) -> Result<crate::finish::Finished>,
) -> Result<Finished> {
    let mut by_partition: Vec<Vec<PathBuf>> = vec![Vec::new(); plan.partitions as usize];
    for entry in std::fs::read_dir(&plan.dir).map_err(io(&plan.dir))? {
        let path = entry.map_err(io(&plan.dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let partition = name
            .strip_prefix('p')
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<usize>().ok());
        if let Some(p) = partition.filter(|&p| p < by_partition.len()) {
            by_partition[p].push(path);
        }
    }
    let mut finished = Finished {
        files: Vec::new(),
        spilled: 0,
        kept: 0,
        duplicates: Vec::new(),
    };
    for (p, mut files) in by_partition.into_iter().enumerate() {
        if files.is_empty() {
            continue;
        }
        // Part, then chunk order: the file order of the rows.
        files.sort();
        let chunks = files
            .iter()
            .map(|f| codes::scan(f))
            .collect::<Result<Vec<_>>>()?;
        let mut rows = concat(chunks, UnionArgs::default())
            .and_then(LazyFrame::collect)
            .map_err(|source| Error::Parquet {
                path: plan.dir.clone(),
                source,
            })?;
        rows.rechunk_mut();
        finished.spilled += rows.height() as u64;
        let crate::finish::Finished { events, duplicates } = finish(rows)?;
        finished.duplicates.extend(duplicates);
        for file in &files {
            std::fs::remove_file(file).map_err(io(file))?;
        }
        if events.height() == 0 {
            continue;
        }
        finished.kept += events.height() as u64;
        let path = out.join(format!("part-{p:05}.parquet"));
        write_parquet(&events, &path, PART)?;
        finished.files.push(path);
    }
    std::fs::remove_dir_all(&plan.dir).map_err(io(&plan.dir))?;
    Ok(finished)
}
