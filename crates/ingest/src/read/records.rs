//! The records of CSV text and their line numbers: the csv crate's, with the line
//! ends counted beside it ([`csv_reader`]); and, for text without a quote
//! character, the same records found with `memchr` rather than the crate's
//! byte-at-a-time state machine ([`each_record`]): a record per line, `\n`, `\r\n`
//! and a lone `\r` each ending one (a lone `\r` ends a line too only in an old Mac
//! file, [`mostly_lone_cr`]), blank lines skipped, fields split at the delimiter.
//! The parallel reader's parts are such text: it splits only files without a quote.
//! And the [`LineReader`] of sources read a line at a time (JSON lines, text).

use std::io::{BufRead, Read};

/// Line numbers of records by their start byte. The csv crate's own
/// `Position::line` is one short for every record after a CRLF line end, so the
/// reader counts line ends itself: [`LineEnds`] notes where every line end is as
/// bytes stream past, and [`Lines::at`] counts those before a record.
#[derive(Clone, Default)]
pub(crate) struct Lines {
    /// Each record end's offset, whether it is the `\n` of a `\r\n`, and whether it
    /// ends a line ([`mostly_lone_cr`]).
    ends: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<(u64, bool, bool)>>>,
    before: u64,
    /// The bytes after the last line end read, `None` once they pass [`TAIL_BYTES`].
    tail: std::rc::Rc<std::cell::RefCell<Option<Vec<u8>>>>,
}

/// The longest last line [`Lines`] keeps to check for a quote left open at the end.
const TAIL_BYTES: usize = 1 << 20;

impl Lines {
    /// Line number (from 1) of the record that starts at `byte`. Records come in
    /// order, so line ends already passed are dropped. After a `\r\n` the csv
    /// crate puts the next record's start on the `\n`, which ends the line before;
    /// and it puts a record after blank lines where they start, so they are
    /// skipped here.
    pub(crate) fn at(&mut self, byte: u64) -> u64 {
        let mut ends = self.ends.borrow_mut();
        let mut start = byte;
        while let Some(&(end, _, line)) = ends.front()
            && end <= byte
        {
            ends.pop_front();
            self.before += u64::from(line);
            start = start.max(end + 1);
        }
        // A blank line at `start`: a line end there, or the `\n` of a `\r\n` after it.
        while let Some(&(end, crlf, line)) = ends.front()
            && (end == start || (crlf && end == start + 1))
        {
            ends.pop_front();
            self.before += u64::from(line);
            start = end + 1;
        }
        self.before + 1
    }

    /// Whether the text read ends inside a quoted field on a last line without a
    /// line end (a record that holds none); `None` when that line was too long to
    /// keep, for the caller to read it again from its start.
    pub(crate) fn ends_in_open_quote(&self, delimiter: u8) -> Option<bool> {
        let tail = self.tail.borrow();
        let tail = tail.as_ref()?;
        Some(!tail.is_empty() && ends_in_quote(&mut tail.as_slice(), delimiter).unwrap_or(false))
    }
}

/// A reader that notes the offset of every line end for [`Lines`]: each `\n`, and
/// in old Mac files each `\r` not followed by `\n` ([`mostly_lone_cr`]).
pub(crate) struct LineEnds<R> {
    inner: R,
    offset: u64,
    lines: Lines,
    /// A `\r` that ended the last read: a line end unless a `\n` comes next.
    pending_cr: Option<u64>,
    /// Whether a lone `\r` ends a line, once the text's first [`PREFIX`] bytes say.
    cr_lines: Option<bool>,
    /// Those bytes, read ahead to say it, and how many of them were handed on.
    ahead: (Vec<u8>, usize),
}

/// The bytes at the start of a text that say how its lines end.
const PREFIX: usize = 1 << 16;

/// Whether a lone `\r` (not in a `\r\n`) counts as a line end: only in a text whose
/// first [`PREFIX`] bytes (`prefix`, all of the text when `whole`) hold more of them
/// than `\n`s (an old Mac file). Elsewhere it is a byte inside a line, as editors,
/// `grep -n` and `wc -l` count lines, though the csv crate ends a record there; a
/// count rather than the first line end, so that a quoted field or a `\r\r\n` does
/// not decide it.
fn mostly_lone_cr(prefix: &[u8], whole: bool) -> bool {
    let newlines = memchr::memchr_iter(b'\n', prefix).count();
    let lone = memchr::memchr_iter(b'\r', prefix)
        .filter(|&i| match prefix.get(i + 1) {
            Some(next) => *next != b'\n',
            None => whole,
        })
        .count();
    lone > newlines
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let cr_lines = match self.cr_lines {
            Some(decided) => decided,
            None => {
                let mut prefix = Vec::new();
                (&mut self.inner)
                    .take(PREFIX as u64)
                    .read_to_end(&mut prefix)?;
                let decided = mostly_lone_cr(&prefix, prefix.len() < PREFIX);
                self.ahead = (prefix, 0);
                *self.cr_lines.insert(decided)
            }
        };
        let (ahead, handed) = &mut self.ahead;
        let n = if *handed < ahead.len() {
            let n = (ahead.len() - *handed).min(buf.len());
            buf[..n].copy_from_slice(&ahead[*handed..*handed + n]);
            *handed += n;
            n
        } else {
            self.inner.read(buf)?
        };
        let bytes = &buf[..n];
        let mut ends = self.lines.ends.borrow_mut();
        // Where the bytes after this read's last line end start.
        let mut after = None;
        let cr_before = self.pending_cr.take();
        if let Some(cr) = cr_before
            && bytes.first() != Some(&b'\n')
        {
            ends.push_back((cr, false, cr_lines));
            if cr_lines {
                after = Some(0);
            }
        }
        for i in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if bytes[i] == b'\n' {
                let crlf = match i {
                    0 => cr_before.is_some(),
                    _ => bytes[i - 1] == b'\r',
                };
                ends.push_back((self.offset + i as u64, crlf, true));
                after = Some(i + 1);
            } else if i + 1 == n {
                self.pending_cr = Some(self.offset + i as u64);
            } else if bytes[i + 1] != b'\n' {
                ends.push_back((self.offset + i as u64, false, cr_lines));
                if cr_lines {
                    after = Some(i + 1);
                }
            }
        }
        let mut tail = self.lines.tail.borrow_mut();
        let after_end = match after {
            Some(start) => {
                *tail = Some(Vec::new());
                &bytes[start..]
            }
            None => bytes,
        };
        if let Some(kept) = tail.as_mut() {
            if kept.len() + after_end.len() > TAIL_BYTES {
                *tail = None;
            } else {
                kept.extend_from_slice(after_end);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A CSV reader over `inner` and the line numbers of its records.
pub(crate) fn csv_reader<R: Read>(delimiter: u8, inner: R) -> (csv::Reader<LineEnds<R>>, Lines) {
    let lines = Lines {
        tail: std::rc::Rc::new(std::cell::RefCell::new(Some(Vec::new()))),
        ..Lines::default()
    };
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(LineEnds {
            inner,
            offset: 0,
            lines: lines.clone(),
            pending_cr: None,
            cr_lines: None,
            ahead: (Vec::new(), 0),
        });
    (reader, lines)
}

/// Counts the lines and bytes of a text source read line by line. Its lines end as
/// [`LineEnds`] counts them for CSV: at each `\n`, and in an old Mac text (decided on
/// its first [`PREFIX`] bytes, [`mostly_lone_cr`]) at each `\r` not followed by one.
#[derive(Default)]
pub(super) struct LineReader {
    /// 1-based number of the line last read.
    pub(super) number: u64,
    /// Bytes of text read so far.
    pub(super) read: u64,
    /// Whether a lone `\r` ends a line, once the first bytes say.
    cr_lines: Option<bool>,
    /// Those bytes, read ahead to say it, and how many of them were taken.
    ahead: (Vec<u8>, usize),
}

impl LineReader {
    /// Reads the next line (with its end of line, without a byte-order mark) into
    /// `buf`; `None` at the end.
    pub(super) fn next<'b>(
        &mut self,
        reader: &mut dyn BufRead,
        buf: &'b mut Vec<u8>,
    ) -> std::io::Result<Option<&'b [u8]>> {
        buf.clear();
        let cr_lines = match self.cr_lines {
            Some(decided) => decided,
            None => {
                let mut prefix = Vec::new();
                (&mut *reader)
                    .take(PREFIX as u64)
                    .read_to_end(&mut prefix)?;
                let decided = mostly_lone_cr(&prefix, prefix.len() < PREFIX);
                self.ahead = (prefix, 0);
                *self.cr_lines.insert(decided)
            }
        };
        // Whether the line ended, and at a `\r` whose `\n` may follow in the next bytes.
        let mut after_cr = false;
        loop {
            let chunk = self.chunk(reader)?;
            if chunk.is_empty() {
                break;
            }
            if after_cr {
                // The `\n` of a `\r\n` split between two reads belongs to this line.
                if chunk[0] == b'\n' {
                    buf.push(b'\n');
                    self.take(reader, 1);
                }
                break;
            }
            let end = match cr_lines {
                true => memchr::memchr2(b'\n', b'\r', chunk),
                false => memchr::memchr(b'\n', chunk),
            };
            match end {
                Some(i) if chunk[i] == b'\n' => {
                    buf.extend_from_slice(&chunk[..=i]);
                    self.take(reader, i + 1);
                    break;
                }
                Some(i) => {
                    let crlf = chunk.get(i + 1) == Some(&b'\n');
                    let last = i + 1 == chunk.len();
                    let n = i + 1 + usize::from(crlf);
                    buf.extend_from_slice(&chunk[..n]);
                    self.take(reader, n);
                    if !last {
                        break;
                    }
                    after_cr = true;
                }
                None => {
                    let n = chunk.len();
                    buf.extend_from_slice(chunk);
                    self.take(reader, n);
                }
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.read += buf.len() as u64;
        self.number += 1;
        let line: &[u8] = buf;
        Ok(Some(if self.number == 1 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        }))
    }

    /// The next bytes: those read ahead not yet taken, else the reader's.
    fn chunk<'r>(&'r mut self, reader: &'r mut dyn BufRead) -> std::io::Result<&'r [u8]> {
        let (ahead, taken) = &self.ahead;
        if *taken < ahead.len() {
            return Ok(&ahead[*taken..]);
        }
        reader.fill_buf()
    }

    /// Takes `n` bytes of the last [`LineReader::chunk`].
    fn take(&mut self, reader: &mut dyn BufRead, n: usize) {
        let (ahead, taken) = &mut self.ahead;
        if *taken < ahead.len() {
            *taken += n;
        } else {
            reader.consume(n);
        }
    }
}

/// Bytes read at a time (a longer line grows the buffer).
const BLOCK: usize = 1 << 20;

/// Whether [`each_record`] reads text with `delimiter` as the csv crate would: not
/// when the delimiter is itself a line end or the quote.
pub(super) fn splits_on(delimiter: u8) -> bool {
    !matches!(delimiter, b'\n' | b'\r' | b'"')
}

/// Calls `each(line, fields, checked)` for every record of `inner` (no quote in it),
/// in order, `line` counted from `first_line`; a read error becomes `io`'s error.
/// `checked` holds the same fields as text when the block they were read in is
/// UTF-8 without a NUL byte: checked once a block rather than once a field.
pub(super) fn each_record<E>(
    inner: impl Read,
    delimiter: u8,
    first_line: u64,
    io: impl Fn(std::io::Error) -> E,
    each: impl FnMut(u64, &[&[u8]], Option<&[&str]>) -> Result<(), E>,
) -> Result<(), E> {
    each_record_in(inner, delimiter, first_line, BLOCK, io, each)
}

/// [`each_record`], reading `block` bytes at a time.
fn each_record_in<E>(
    inner: impl Read,
    delimiter: u8,
    first_line: u64,
    block: usize,
    io: impl Fn(std::io::Error) -> E,
    mut each: impl FnMut(u64, &[&[u8]], Option<&[&str]>) -> Result<(), E>,
) -> Result<(), E> {
    // How lines end, said by the text's first bytes, read ahead as [`LineEnds`] does.
    let mut prefix = Vec::new();
    let mut inner = inner.take(PREFIX as u64);
    inner.read_to_end(&mut prefix).map_err(&io)?;
    let cr_lines = mostly_lone_cr(&prefix, prefix.len() < PREFIX);
    let mut inner = std::io::Cursor::new(prefix).chain(inner.into_inner());
    let mut buf = vec![0u8; block.max(1)];
    let (mut held, mut line) = (0, first_line);
    loop {
        if held == buf.len() {
            // A line longer than the buffer.
            buf.resize(2 * buf.len(), 0);
        }
        let n = match inner.read(&mut buf[held..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        let filled = held + n;
        if n == 0 {
            // The last line, without its line end.
            let last = &buf[..filled];
            return lines(last, false, delimiter, &mut line, cr_lines, &mut each);
        }
        // Whole lines only: a `\r` at the end of one may be half of a `\r\n`.
        let whole = memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1);
        lines(
            &buf[..whole],
            true,
            delimiter,
            &mut line,
            cr_lines,
            &mut each,
        )?;
        buf.copy_within(whole..filled, 0);
        held = filled - whole;
    }
}

/// A record's fields, as bytes and, when checked, as text.
#[derive(Default)]
struct Fields<'t> {
    bytes: Vec<&'t [u8]>,
    text: Vec<&'t str>,
}

/// The records of `text`: lines each ended by `\n`, but for the last when `ended`
/// is false. `lone_cr_counts`: whether a lone `\r` ends a line ([`mostly_lone_cr`]).
fn lines<E>(
    text: &[u8],
    ended: bool,
    delimiter: u8,
    line: &mut u64,
    lone_cr_counts: bool,
    each: &mut impl FnMut(u64, &[&[u8]], Option<&[&str]>) -> Result<(), E>,
) -> Result<(), E> {
    // The fields of UTF-8 text split at ASCII bytes are UTF-8 themselves.
    let checked = (delimiter.is_ascii() && memchr::memchr(0, text).is_none())
        .then(|| std::str::from_utf8(text).ok())
        .flatten();
    let mut fields = Fields::default();
    let mut start = 0;
    let any_cr = memchr::memchr(b'\r', text).is_some();
    let ends = memchr::memchr_iter(b'\n', text).map(|i| (i, true));
    let tail = (!ended && !text.is_empty()).then_some((text.len(), false));
    for (end, newline) in ends.chain(tail) {
        let (from_line, bytes) = (start, &text[start..end]);
        start = end + 1;
        let text_of =
            |from: usize, to: usize| checked.and_then(|t| t.get(from_line + from..from_line + to));
        if !any_cr || memchr::memchr(b'\r', bytes).is_none() {
            record(
                bytes,
                text_of(0, bytes.len()),
                *line,
                delimiter,
                &mut fields,
                each,
            )?;
        } else {
            // Each `\r` ends a record too, and a line unless a `\n` follows it.
            let mut from = 0;
            for cr in memchr::memchr_iter(b'\r', bytes) {
                record(
                    &bytes[from..cr],
                    text_of(from, cr),
                    *line,
                    delimiter,
                    &mut fields,
                    each,
                )?;
                from = cr + 1;
                if lone_cr_counts && !(newline && from == bytes.len()) {
                    *line += 1;
                }
            }
            record(
                &bytes[from..],
                text_of(from, bytes.len()),
                *line,
                delimiter,
                &mut fields,
                each,
            )?;
        }
        *line += u64::from(newline);
    }
    Ok(())
}

/// Hands a non-blank record's fields (`bytes` holds no line end; `checked` is the
/// same record as text, if checked) to `each`.
fn record<'t, E>(
    bytes: &'t [u8],
    checked: Option<&'t str>,
    line: u64,
    delimiter: u8,
    fields: &mut Fields<'t>,
    each: &mut impl FnMut(u64, &[&[u8]], Option<&[&str]>) -> Result<(), E>,
) -> Result<(), E> {
    if bytes.is_empty() {
        return Ok(());
    }
    fields.bytes.clear();
    split(bytes, delimiter, &mut fields.bytes);
    let Some(text) = checked else {
        return each(line, &fields.bytes, None);
    };
    fields.text.clear();
    let mut from = 0;
    for field in &fields.bytes {
        let Some(field) = text.get(from..from + field.len()) else {
            return each(line, &fields.bytes, None);
        };
        fields.text.push(field);
        from += field.len() + 1;
    }
    each(line, &fields.bytes, Some(&fields.text))
}

/// Pushes the pieces of `bytes` between `delimiter`s to `out`, eight bytes at a
/// time: a record's fields are a few bytes apart, where a `memchr` call for each
/// costs more than the search (timings: docs/benchmarks.md).
fn split<'t>(bytes: &'t [u8], delimiter: u8, out: &mut Vec<&'t [u8]>) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_le_bytes([delimiter; 8]);
    let (words, rest) = bytes.as_chunks::<8>();
    let mut from = 0;
    for (w, word) in words.iter().enumerate() {
        let x = u64::from_le_bytes(*word) ^ pattern;
        // The high bit of each byte of `x` that is zero, with no carry between bytes.
        let mut hits = !(((x & LOW7) + LOW7) | x | LOW7);
        while hits != 0 {
            let at = 8 * w + (hits.trailing_zeros() / 8) as usize;
            out.push(&bytes[from..at]);
            from = at + 1;
            hits &= hits - 1;
        }
    }
    let tail = 8 * words.len();
    for (i, &b) in rest.iter().enumerate() {
        if b == delimiter {
            out.push(&bytes[from..tail + i]);
            from = tail + i + 1;
        }
    }
    out.push(&bytes[from..]);
}

/// Whether `text` ends inside a quoted field, by the csv crate's rules: a quote
/// opens a field only at its start, two quotes inside one stand for one, and text
/// after a closing quote continues the field unquoted.
pub(super) fn ends_in_quote(text: &mut dyn BufRead, delimiter: u8) -> std::io::Result<bool> {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    loop {
        let buf = text.fill_buf()?;
        if buf.is_empty() {
            return Ok(state == State::Quoted);
        }
        for &b in buf {
            let boundary = b == delimiter || b == b'\n' || b == b'\r';
            state = match state {
                State::Quoted if b == b'"' => State::QuoteInQuoted,
                State::Quoted => State::Quoted,
                State::QuoteInQuoted if b == b'"' => State::Quoted,
                State::FieldStart if b == b'"' => State::Quoted,
                _ if boundary => State::FieldStart,
                _ => State::Unquoted,
            };
        }
        let n = buf.len();
        text.consume(n);
    }
}

/// Line ends inside a row's fields (a quoted field may hold them).
pub(super) fn line_ends(fields: &[&[u8]]) -> usize {
    fields
        .iter()
        .map(|f| memchr::memchr_iter(b'\n', f).count() + memchr::memchr_iter(b'\r', f).count())
        .sum::<usize>()
        - fields
            .iter()
            .map(|f| memchr::memmem::find_iter(f, b"\r\n").count())
            .sum::<usize>()
}

/// Why a row (of the header's width) whose fields hold line ends looks like rows run
/// together by a stray quote: a line inside one of its fields is a row of its own,
/// as many fields as the header (a field's last line with the fields after it) with
/// a time (`is_time`) where the event time goes (field `time_field`), its first field
/// and its time written as a row's are, without spaces around them. `None` for a
/// field that merely holds line breaks, such as an address or prose after `, `.
pub(crate) fn swallowed_row(
    fields: &[&[u8]],
    header: &[String],
    delimiter: u8,
    time_field: Option<usize>,
    is_time: impl Fn(&str) -> bool,
) -> Option<String> {
    let time_field = time_field?;
    let bare = |part: &[u8]| part.trim_ascii().len() == part.len();
    let is_row = |at: usize, line: &[u8], last: bool| {
        let mut parts: Vec<&[u8]> = line.split(|&b| b == delimiter).collect();
        if last {
            parts.extend_from_slice(&fields[at + 1..]);
        }
        parts.len() == header.len()
            && bare(parts[0])
            && bare(parts[time_field])
            && std::str::from_utf8(parts[time_field]).is_ok_and(&is_time)
    };
    let (at, _) = fields.iter().enumerate().find(|&(at, field)| {
        let lines = field.split(|&b| b == b'\n' || b == b'\r').count();
        field
            .split(|&b| b == b'\n' || b == b'\r')
            .enumerate()
            .skip(1)
            .any(|(i, line)| is_row(at, line, i + 1 == lines))
    })?;
    Some(format!(
        "a row over {} lines: `{}` holds a line that is a row of {} fields, with a time \
         (a quoted field that does not close where it should?)",
        line_ends(fields) + 1,
        header[at],
        header.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `(line, fields)` of every record, as the csv crate and the reader's line
    /// count make them.
    fn by_csv(text: &[u8], delimiter: u8, first_line: u64) -> Vec<(u64, Vec<Vec<u8>>)> {
        let (mut reader, mut lines) = csv_reader(delimiter, text);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let line = lines.at(record.position().map_or(0, |p| p.byte())) + first_line - 1;
            out.push((line, record.iter().map(<[u8]>::to_vec).collect()));
        }
        out
    }

    fn by_memchr(
        text: &[u8],
        delimiter: u8,
        first_line: u64,
        block: usize,
    ) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut out = Vec::new();
        each_record_in(
            text,
            delimiter,
            first_line,
            block,
            |e| e,
            |line, fields, checked| {
                if let Some(text) = checked {
                    let as_bytes: Vec<&[u8]> = text.iter().map(|t| t.as_bytes()).collect();
                    assert_eq!(as_bytes, fields, "checked text differs from the bytes");
                    assert!(!text.iter().any(|t| t.contains('\0')));
                }
                out.push((line, fields.iter().map(|f| f.to_vec()).collect()));
                Ok::<(), std::io::Error>(())
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn line_ends_of_every_kind() {
        // Blank lines (`\r\n`, `\n`) hold no record but count; a lone `\r` ends a
        // record, and a line only in a file whose line ends are such (old Mac files).
        let text = b"a,b\r\n\r\nc,\rd\n\n,e\r\r\nf";
        let mac = b"a,b\r\rc,\nd\r,e\r\r\nf";
        for (text, lines) in [(&text[..], [1, 3, 3, 5, 6]), (&mac[..], [1, 3, 4, 5, 7])] {
            let want = by_csv(text, b',', 1);
            assert_eq!(
                want.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
                lines
            );
            for block in [1, 2, 3, 5, 64] {
                assert_eq!(by_memchr(text, b',', 1, block), want, "block {block}");
            }
        }
    }

    /// Whether each record came with its fields checked as text.
    fn checked(text: &[u8], block: usize) -> Vec<bool> {
        let mut out = Vec::new();
        each_record_in(
            text,
            b',',
            1,
            block,
            |e| e,
            |_, _, checked| {
                out.push(checked.is_some());
                Ok::<(), std::io::Error>(())
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn text_is_checked_a_block_at_a_time() {
        assert_eq!(checked(b"a,b\nc,d\n\xc3\xa9,e", 64), [true, true, true]);
        // A NUL byte or invalid UTF-8 anywhere in the block: every field unchecked.
        assert_eq!(checked(b"a,b\nc,\0\ne,f\n", 64), [false, false, false]);
        assert_eq!(checked(b"a,b\nc,\xff\ne,f\n", 64), [false, false, false]);
        // Blocks of 4 bytes: only the block holding the bad line.
        assert_eq!(checked(b"a,b\nc,\xff\ne,f\n", 4), [true, false, true]);
    }

    proptest! {
        #[test]
        fn fuzz_split_finds_every_delimiter(
            bytes in proptest::collection::vec(
                prop::sample::select(&b"a,;\t\x80\xff\x7f\x00\x01"[..]), 0..100),
            delimiter in prop::sample::select(&b",;\t\x7f\x00"[..]),
        ) {
            let mut fields = Vec::new();
            split(&bytes, delimiter, &mut fields);
            let want: Vec<&[u8]> = bytes.split(|&b| b == delimiter).collect();
            prop_assert_eq!(fields, want);
        }
    }

    /// Text handed over at most `block` bytes a read.
    struct Chunked<'a> {
        text: &'a [u8],
        block: usize,
    }

    impl std::io::Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.block.min(buf.len()).min(self.text.len());
            buf[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_last_line_too_long_to_keep_is_left_to_be_read_again() {
        let long = [b"a\n".as_slice(), &vec![b'b'; TAIL_BYTES + 1]].concat();
        for (text, want) in [
            (long.clone(), None),
            ([long, b"\n".to_vec()].concat(), Some(false)),
        ] {
            let (mut reader, lines) = csv_reader(b',', &text[..]);
            let mut record = csv::ByteRecord::new();
            while reader.read_byte_record(&mut record).unwrap() {}
            assert_eq!(lines.ends_in_open_quote(b','), want);
        }
    }

    proptest! {
        #[test]
        fn fuzz_the_last_line_kept_is_the_texts_however_it_is_read(
            text in proptest::collection::vec(prop::sample::select(&b"a,\"\n\r"[..]), 0..200),
            block in 1usize..20,
        ) {
            let (mut reader, lines) = csv_reader(b',', Chunked { text: &text, block });
            let mut record = csv::ByteRecord::new();
            while reader.read_byte_record(&mut record).unwrap() {}
            // A lone `\r` ends the last line only where they outnumber `\n`s.
            let mac = mostly_lone_cr(&text, true);
            let last = text.rsplit(|&b| b == b'\n' || (mac && b == b'\r')).next().unwrap_or_default();
            let want = !last.is_empty() && ends_in_quote(&mut &last[..], b',').unwrap();
            prop_assert_eq!(lines.ends_in_open_quote(b','), Some(want));
        }
    }

    proptest! {
        #[test]
        fn fuzz_records_are_the_csv_crates(
            text in proptest::collection::vec(
                prop::sample::select(&b"ab ,;\t\n\r\n\r\x00\xff"[..]), 0..300),
            delimiter in prop::sample::select(&b",;\t"[..]),
            block in 1usize..40,
            first_line in 1u64..1000,
        ) {
            prop_assert_eq!(by_memchr(&text, delimiter, first_line, block), by_csv(&text, delimiter, first_line));
        }
    }

    /// The lines [`LineReader`] reads of `text` through a buffer of `capacity`.
    fn lines_of(text: &[u8], capacity: usize) -> Vec<String> {
        let mut reader = std::io::BufReader::with_capacity(capacity, text);
        let (mut lines, mut buf, mut out) = (LineReader::default(), Vec::new(), Vec::new());
        while let Some(line) = lines.next(&mut reader, &mut buf).unwrap() {
            out.push(String::from_utf8_lossy(line).into_owned());
        }
        assert_eq!(lines.number as usize, out.len());
        assert_eq!(lines.read as usize, text.len());
        out
    }

    #[test]
    fn line_reader_ends_lines_as_line_ends_counts_them() {
        // An old Mac text: each lone `\r` ends a line, and so do `\n` and `\r\n`.
        let mixed = b"a\rb\r\nc\nd\re\r";
        let long = [vec![b'x'; 10_000], b"\ry\rz\r".to_vec()].concat();
        for capacity in [1, 2, 3, 7, 8192] {
            assert_eq!(lines_of(b"a\rb\rc\r", capacity), ["a\r", "b\r", "c\r"]);
            assert_eq!(
                lines_of(mixed, capacity),
                ["a\r", "b\r\n", "c\n", "d\r", "e\r"]
            );
            // A first line longer than the buffer does not hide how lines end.
            assert_eq!(lines_of(&long, capacity).len(), 3);
            // Elsewhere a lone `\r` is a byte inside its line.
            assert_eq!(lines_of(b"a\rb\nc\n", capacity), ["a\rb\n", "c\n"]);
            assert_eq!(lines_of(b"a\r\nb", capacity), ["a\r\n", "b"]);
        }
        assert!(lines_of(b"", 4).is_empty());
        // Past the bytes read ahead, through the reader's own buffer.
        let big = [b"ab\r".repeat(30_000), b"cd\r\nef\ngh\r".repeat(1_000)].concat();
        for capacity in [2, 3, 5, 8192] {
            let lines = lines_of(&big, capacity);
            assert_eq!(lines.len(), 33_000);
            assert_eq!(lines[30_000..30_003], ["cd\r\n", "ef\n", "gh\r"]);
        }
    }
}
