//! A plain CSV file without a quote read on every thread: split at line ends into
//! parts, each read by the first thread free, in order of the parts.

use super::*;

/// Files smaller than this are read on one thread.
pub(crate) const PARALLEL_MIN_BYTES: u64 = 32 << 20;

/// A byte range of the data rows of a CSV file, starting at a line start.
pub(super) struct Part {
    start: u64,
    end: u64,
    /// Line number of the part's first line.
    first_line: u64,
    /// Lines in the part (the last may lack its line end): at most this many rows.
    lines: usize,
}

/// Parts per reader thread: threads that finish early take the parts left, so a
/// thread slowed down (by page faults, or by the machine) holds the others up by one
/// small part at most (timings: docs/benchmarks.md).
const PARTS_PER_THREAD: usize = 4;

/// Threads a plain file is read on: the machine's, and in the crate's tests three
/// on any machine, so that a test of the parallel reader tests it on one core too.
fn reader_threads() -> usize {
    if cfg!(test) {
        3
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Splits the rows after `data_start` into [`PARTS_PER_THREAD`] parts per thread at
/// line ends: only for a plain (not gzip) file of at least `min_bytes` without a
/// single quote character, where every line end ends a record, nor a lone `\r`
/// (which ends a record, and in an old Mac file a line, where the scan counts only
/// `\n`). `None`: read on one thread.
///
/// A thread per range of the file scans it for its line ends (the scan is a pass over
/// every byte); part `i` starts at the first line start in range `i`.
pub(super) fn split_for_threads(
    path: &Path,
    data_start: u64,
    min_bytes: u64,
) -> Result<Option<Vec<Part>>> {
    let threads = reader_threads();
    if threads < 2 {
        return Ok(None);
    }
    let pieces = (threads * PARTS_PER_THREAD) as u64;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size < min_bytes || data_start >= size {
        return Ok(None);
    }
    let mut magic = Vec::with_capacity(2);
    File::open(path)
        .and_then(|file| file.take(2).read_to_end(&mut magic))
        .map_err(io)?;
    if super::starts_as_gzip(&magic) {
        return Ok(None);
    }
    let ranges: Vec<(u64, u64)> = (0..pieces)
        .map(|i| (size * i / pieces, size * (i + 1) / pieces))
        .collect();
    let scans: Vec<Result<Scan>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&(start, end)| scope.spawn(move || scan(path, start, end, data_start)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Io {
                        path: path.to_path_buf(),
                        source: std::io::Error::other("a scanning thread failed"),
                    })
                })
            })
            .collect()
    });
    let scans = scans.into_iter().collect::<Result<Vec<Scan>>>()?;
    if scans.iter().any(|scan| scan.quote || scan.lone_cr) {
        return Ok(None);
    }
    // `line(pos)`: the number of the line that starts at `pos`, from the line ends
    // before it.
    let before_data: u64 = scans.iter().map(|scan| scan.before_data).sum();
    let total: u64 = scans.iter().map(|scan| scan.newlines).sum();
    let mut starts = vec![(data_start, 1 + before_data)];
    let mut newlines_before = 0;
    for ((range_start, _), scan) in ranges.iter().zip(&scans) {
        if let Some(first) = scan.first_newline {
            let line_start = first + 1;
            let previous = starts.last().map_or(0, |&(start, _)| start);
            if *range_start > 0 && line_start > previous && line_start < size {
                // After the range's line ends before the data, and its first.
                starts.push((line_start, 1 + newlines_before + scan.before_data + 1));
            }
        }
        newlines_before += scan.newlines;
    }
    if starts.len() < 2 {
        return Ok(None);
    }
    // The last part counts the line after the last `\n`, which may be empty.
    let end = (size, total + 2);
    let parts = starts
        .iter()
        .zip(starts.iter().skip(1).chain(std::iter::once(&end)))
        .map(|(&(start, first_line), &(end, next_line))| Part {
            start,
            end,
            first_line,
            lines: (next_line - first_line) as usize,
        })
        .collect();
    Ok(Some(parts))
}

/// What [`scan`] found in a range of a file.
struct Scan {
    /// Line ends in the range.
    newlines: u64,
    /// Line ends in the range before `data_start`.
    before_data: u64,
    /// Position of the first line end in the range at or after `data_start`.
    first_newline: Option<u64>,
    /// A quote character in the range.
    quote: bool,
    /// A `\r` not followed by `\n` in the range: a line end this scan does not count.
    lone_cr: bool,
}

/// The line ends and quotes of the bytes `[start, end)` of a file.
fn scan(path: &Path, start: u64, end: u64, data_start: u64) -> Result<Scan> {
    use std::io::{Seek, SeekFrom};
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut file = file.take(end - start);
    // Read where the look for line ends and quotes finds it still in the cache.
    let mut buf = vec![0u8; 256 << 10];
    let mut found = Scan {
        newlines: 0,
        before_data: 0,
        first_newline: None,
        quote: false,
        lone_cr: false,
    };
    let mut offset = start;
    // A `\r` ended the last block read: a lone one unless a `\n` comes next.
    let mut pending_cr = false;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            if pending_cr {
                // The byte after the range, if any, says.
                let mut next = [0u8; 1];
                let read = file.into_inner().read(&mut next).map_err(io)?;
                found.lone_cr = read == 0 || next[0] != b'\n';
            }
            return Ok(found);
        }
        let chunk = &buf[..n];
        // One pass for quotes and `\r`s: a file of `\n` line ends holds neither.
        for i in memchr::memchr2_iter(b'"', b'\r', chunk) {
            if chunk[i] == b'"' {
                found.quote = true;
                return Ok(found);
            }
            if chunk.get(i + 1).is_some_and(|&b| b != b'\n') {
                found.lone_cr = true;
                return Ok(found);
            }
        }
        if pending_cr && chunk[0] != b'\n' {
            found.lone_cr = true;
            return Ok(found);
        }
        pending_cr = chunk[n - 1] == b'\r';
        let data_from = data_start.saturating_sub(offset).min(n as u64) as usize;
        let (header, data) = chunk.split_at(data_from);
        let in_header = memchr::memchr_iter(b'\n', header).count() as u64;
        found.before_data += in_header;
        if found.first_newline.is_none()
            && let Some(i) = memchr::memchr(b'\n', data)
        {
            found.first_newline = Some(offset + (data_from + i) as u64);
        }
        found.newlines += in_header + memchr::memchr_iter(b'\n', data).count() as u64;
        offset += n as u64;
    }
}

/// Reads the parts on one thread per core, each thread taking the next part when it
/// is done with one, and joins their results in file order: the same events,
/// quarantine and counts as one thread reading the whole file.
pub(super) fn read_csv_parts(
    source: &Source,
    header: &[String],
    slots: &Slots,
    parts: &[Part],
    on_progress: OnProgress<'_>,
    spill: Option<&spill::Plan>,
) -> Result<Parsed> {
    use std::io::{Seek, SeekFrom};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let path = source.path();
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let done = AtomicU64::new(parts.first().map_or(0, |p| p.start));
    let read_part = |index: usize, part: &Part| -> Result<Parsed> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        file.seek(SeekFrom::Start(part.start)).map_err(io)?;
        // Counted reports this part's running total; the shared counter takes deltas.
        let mut reported = 0u64;
        let mut on_bytes = |read: u64, _total: u64| {
            done.fetch_add(read - reported, Ordering::Relaxed);
            reported = read;
        };
        let counted = Counted::new(file.take(part.end - part.start), 0, &mut on_bytes);
        // Out of core only a chunk of rows is held at a time.
        let capacity = spill.map_or(part.lines, |plan| part.lines.min(plan.chunk_rows));
        let mut sink = Sink::new(source, header, slots.clone(), capacity)
            .spilling(spill.map(|plan| spill::Writer::new(plan, index)));
        // A part holds no quote: its records are its lines.
        if records::splits_on(source.delimiter) {
            records::each_record(
                counted,
                source.delimiter,
                part.first_line,
                io,
                |line, fields, checked| sink.push_checked(line, fields, checked, source.delimiter),
            )?;
            return sink.finish();
        }
        let (mut reader, mut lines) =
            csv_reader(source.delimiter, BufReader::with_capacity(1 << 20, counted));
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let message = format!("{e}");
                    return Err(Error::Io {
                        path: path.to_path_buf(),
                        source: std::io::Error::other(message),
                    });
                }
            }
            let line = lines.at(record.position().map_or(0, |p| p.byte())) + part.first_line - 1;
            let fields: Vec<&[u8]> = record.iter().collect();
            sink.push(line, &fields, source.delimiter)?;
        }
        sink.finish()
    };
    let threads = reader_threads().min(parts.len());
    let next = AtomicUsize::new(0);
    let read: Vec<Vec<(usize, Result<Parsed>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (read_part, next) = (&read_part, &next);
                scope.spawn(move || {
                    let mut read = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(part) = parts.get(index) else {
                            return read;
                        };
                        read.push((index, read_part(index, part)));
                    }
                })
            })
            .collect();
        // Until every thread is done (or has failed): the parts are then all read.
        // Looked at often enough that a fast read still passes each tenth in a look.
        while !handles.iter().all(|h| h.is_finished()) {
            on_progress(done.load(Ordering::Relaxed).min(total), total);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(
                        0,
                        Err(Error::Io {
                            path: path.to_path_buf(),
                            source: std::io::Error::other("a reader thread failed"),
                        }),
                    )]
                })
            })
            .collect()
    });
    let mut read: Vec<(usize, Result<Parsed>)> = read.into_iter().flatten().collect();
    read.sort_by_key(|(index, _)| *index);
    let results = read.into_iter().map(|(_, result)| result);
    on_progress(total, total);
    let mut joined: Option<Parsed> = None;
    for result in results {
        let part = result?;
        joined = Some(match joined {
            None => part,
            Some(mut all) => {
                all.read += part.read;
                all.events
                    .vstack_mut(&part.events)
                    .map_err(error::polars("join the parts of the file"))?;
                all.quarantine
                    .vstack_mut(&part.quarantine)
                    .map_err(error::polars("join the parts of the file"))?;
                all
            }
        });
    }
    let mut parsed = joined.ok_or_else(|| Error::Empty {
        path: path.to_path_buf(),
    })?;
    // The events stay in one chunk per part: `finish_events` joins them only to put
    // them in order.
    parsed.quarantine.rechunk_mut();
    Ok(parsed)
}
