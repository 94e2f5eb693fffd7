//! A source file opened for reading: gzip inflated on the way (found by its magic
//! bytes), progress counted in the file's own bytes, the size of its text estimated
//! as it goes, and text in UTF-16 or UTF-32 refused.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::open_file;
use crate::error::{Error, Result};

/// Called with (bytes read so far, file size) as a file is read.
pub type OnProgress<'a> = &'a mut dyn FnMut(u64, u64);

/// Most bytes between two progress reports; a smaller file's twentieth, so that each
/// tenth of it is told.
const REPORT_EVERY: u64 = 8 << 20;

/// A reader that reports how far into the file it is.
pub(crate) struct Counted<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    next_report: u64,
    on_progress: OnProgress<'a>,
}

impl<'a, R> Counted<'a, R> {
    /// `inner`, of `total` bytes (0: reported as read), told to `on_progress`.
    pub(crate) fn new(inner: R, total: u64, on_progress: OnProgress<'a>) -> Counted<'a, R> {
        Counted {
            inner,
            done: 0,
            total,
            next_report: 0,
            on_progress,
        }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done >= self.next_report || n == 0 {
            (self.on_progress)(self.done, self.total.max(self.done));
            self.next_report = self.done + REPORT_EVERY.min(self.total / 20).max(1);
        }
        Ok(n)
    }
}

/// An open file and what is known of the size of its text.
pub(crate) struct Opened<'a> {
    pub(crate) reader: Box<dyn BufRead + 'a>,
    pub(crate) size: TextSize,
}

/// The size of a file's text: its size, or for gzip its size times the inflation
/// seen so far.
#[derive(Clone)]
pub(crate) struct TextSize {
    file_bytes: u64,
    /// For gzip: bytes the decoder took from the file, and gave.
    inflation: Option<std::rc::Rc<[std::cell::Cell<u64>; 2]>>,
}

impl TextSize {
    pub(crate) fn estimate(&self) -> u64 {
        let Some(counts) = &self.inflation else {
            return self.file_bytes;
        };
        let (taken, given) = (counts[0].get(), counts[1].get());
        if taken == 0 {
            return given.max(self.file_bytes);
        }
        let estimate = u128::from(self.file_bytes) * u128::from(given) / u128::from(taken);
        u64::try_from(estimate).unwrap_or(u64::MAX).max(given)
    }
}

/// Counts the bytes that pass through a reader into a shared cell: consumed from a
/// buffered reader, or read from any.
struct Tally<R> {
    inner: R,
    count: std::rc::Rc<[std::cell::Cell<u64>; 2]>,
    /// Which of the two counts.
    slot: usize,
}

impl<R> Tally<R> {
    fn add(&self, n: usize) {
        let cell = &self.count[self.slot];
        cell.set(cell.get() + n as u64);
    }
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.add(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tally<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amount: usize) {
        self.add(amount);
        self.inner.consume(amount);
    }
}

/// A gzip decoder whose own errors (a corrupt or cut-short stream, a checksum that
/// does not match) say the data is invalid: the file's, not the disk's, so the run
/// is refused rather than retried. The disk's errors pass as they came.
struct Decoded<R>(R);

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.raw_os_error().is_some() || e.kind() == std::io::ErrorKind::Interrupted {
                e
            } else {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the gzip data is corrupt or cut short ({e})"),
                )
            }
        })
    }
}

/// Opens a file, transparently decompressing gzip (detected by its magic bytes);
/// progress counts bytes of the file itself, so compressed files report truly.
pub(crate) fn open<'a>(path: &Path, on_progress: OnProgress<'a>) -> Result<Opened<'a>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = open_file(path)?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let counted = Counted::new(file, total, on_progress);
    // Reads of at most a twentieth of the file reach the counter, for each tenth.
    let block = usize::try_from(total / 20)
        .unwrap_or(usize::MAX)
        .clamp(4 << 10, 1 << 20);
    let mut reader = BufReader::with_capacity(block, counted);
    let magic = reader.fill_buf().map_err(io)?;
    let mut size = TextSize {
        file_bytes: total,
        inflation: None,
    };
    let mut reader: Box<dyn BufRead + 'a> = if starts_as_gzip(magic) {
        let count = std::rc::Rc::new([std::cell::Cell::new(0), std::cell::Cell::new(0)]);
        size.inflation = Some(count.clone());
        let taken = Tally {
            inner: reader,
            count: count.clone(),
            slot: 0,
        };
        let given = Tally {
            inner: Decoded(flate2::bufread::MultiGzDecoder::new(taken)),
            count,
            slot: 1,
        };
        Box::new(BufReader::with_capacity(1 << 20, given))
    } else {
        Box::new(reader)
    };
    check_encoding(path, reader.fill_buf().map_err(io)?)?;
    Ok(Opened { reader, size })
}

/// What a file is by the magic bytes it starts with, when that is no text, and what
/// to give instead.
const NOT_TEXT: [(&[u8], &str, &str); 6] = {
    const SHEET: &str = "save the sheet as CSV UTF-8 and give that file";
    const ZIP: &str = "unzip it, or save a workbook's sheet as CSV UTF-8, and give that file";
    const DECOMPRESS: &str = "decompress it first (gzip is the one compression read)";
    [
        (
            b"PK\x03\x04",
            "a ZIP archive (an Excel `.xlsx` workbook is one)",
            ZIP,
        ),
        (b"PK\x05\x06", "an empty ZIP archive", ZIP),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "an Excel 97-2003 workbook or another Office file",
            SHEET,
        ),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed", DECOMPRESS),
        (b"\xfd7zXZ\x00", "xz-compressed", DECOMPRESS),
        (b"BZh", "bzip2-compressed", DECOMPRESS),
    ]
};

/// Refuses a Parquet file, a workbook, an archive, text compressed other than with
/// gzip, and text in UTF-16 or UTF-32, found by its byte-order mark or, without one,
/// by the NUL byte beside every ASCII character: read as UTF-8 its header would be
/// one garbled column name, and the run would say a required column is missing.
fn check_encoding(path: &Path, head: &[u8]) -> Result<()> {
    if head.starts_with(b"PAR1") {
        return Err(Error::ParquetAsText {
            path: path.to_path_buf(),
        });
    }
    // bzip2's magic is text too: only with its block header after it.
    let bzip2 = |magic: &[u8]| magic != b"BZh" || head.get(4..10) == Some(b"1AY&SY");
    if let Some((_, what, fix)) = NOT_TEXT
        .iter()
        .find(|(magic, _, _)| head.starts_with(magic) && bzip2(magic))
    {
        return Err(Error::NotText {
            path: path.to_path_buf(),
            what,
            fix,
        });
    }
    let encoding = if head.starts_with(&[0xff, 0xfe, 0, 0]) {
        "UTF-32LE"
    } else if head.starts_with(&[0, 0, 0xfe, 0xff]) {
        "UTF-32BE"
    } else if head.starts_with(&[0xff, 0xfe]) {
        "UTF-16LE"
    } else if head.starts_with(&[0xfe, 0xff]) {
        "UTF-16BE"
    } else {
        // Most of the first characters ASCII, a NUL byte after (or before) each.
        let pairs: Vec<&[u8]> = head.chunks_exact(2).take(64).collect();
        let count = |f: fn(&[u8]) -> bool| pairs.iter().filter(|p| f(p)).count();
        let little = count(|p| p[0] != 0 && p[1] == 0);
        let big = count(|p| p[0] == 0 && p[1] != 0);
        match pairs.len() {
            0..4 => return Ok(()),
            n if little * 4 >= n * 3 => "UTF-16LE",
            n if big * 4 >= n * 3 => "UTF-16BE",
            _ => return Ok(()),
        }
    };
    Err(Error::Encoding {
        path: path.to_path_buf(),
        encoding,
    })
}

/// Whether a file's first bytes are gzip's magic number: how every reader tells a
/// compressed file, whatever its name.
pub(crate) fn starts_as_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workbooks_archives_and_other_compressions_are_named() {
        let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00user_id";
        let err = check_encoding(Path::new("orders.xlsx"), zip).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`orders.xlsx` is a ZIP archive (an Excel `.xlsx` workbook is one), not text: \
             unzip it, or save a workbook's sheet as CSV UTF-8, and give that file"
        );
        assert!(err.is_refusal());
        let bzip2 = b"BZh91AY&SY\x00\x01";
        let err = check_encoding(Path::new("e.csv.bz2"), bzip2).unwrap_err();
        assert!(err.to_string().contains("bzip2-compressed"), "{err}");
        // Text that begins as a magic does is text.
        for text in [
            &b"BZh,user_id\n"[..],
            b"PK,user_id\n",
            b"user_id,event_time\n",
        ] {
            assert!(check_encoding(Path::new("e.csv"), text).is_ok());
        }
    }

    #[test]
    fn a_small_file_is_reported_at_every_tenth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        let line = "u1,2026-01-01 10:00:00,view\n";
        for bytes in [200_000, 3_000_000] {
            std::fs::write(&path, line.repeat(bytes / line.len())).unwrap();
            let mut seen = Vec::new();
            let mut record = |done: u64, total: u64| seen.push(done * 10 / total);
            {
                let mut opened = open(&path, &mut record).unwrap();
                std::io::copy(&mut opened.reader, &mut std::io::sink()).unwrap();
            }
            let tenths: std::collections::BTreeSet<u64> = seen.into_iter().collect();
            let every: Vec<u64> = (0..=10).collect();
            assert_eq!(
                tenths.into_iter().collect::<Vec<_>>(),
                every,
                "{bytes} bytes"
            );
        }
    }
}
