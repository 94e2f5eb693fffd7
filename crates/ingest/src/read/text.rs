//! Whitespace-aligned text sources, as legacy exports write them (CDNOW's layout).

use super::records::LineReader;
use super::{Keep, OnProgress, Opened, Parsed, Sink, header_names, open, resolve, spill};
use crate::Source;
use crate::error::{Error, Result};

pub(super) fn read_text(
    source: &Source,
    on_progress: OnProgress<'_>,
    keep: Keep<'_>,
) -> Result<Parsed> {
    let path = source.path();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let Opened {
        mut reader,
        size: text_size,
    } = open(path, on_progress)?;
    let (mut lines, mut buf) = (LineReader::default(), Vec::new());
    // Declared before the sink, which borrows the plan once there is one.
    let switched = std::cell::OnceCell::new();
    let mut sink: Option<Sink> = None;
    while let Some(line) = lines.next(&mut reader, &mut buf).map_err(io)? {
        let fields: Vec<&[u8]> = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        if fields.is_empty() {
            continue; // blank lines carry no row
        }
        if sink.is_none() {
            let first = source.header.then(|| {
                fields
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
            });
            let header = header_names(source, first, fields.len());
            let slots = resolve(source, &header)?;
            sink = Some(
                Sink::new(source, &header, slots, 0)
                    .spilling(keep.plan().map(|plan| spill::Writer::new(plan, 0))),
            );
            if source.header {
                continue;
            }
        }
        if let Some(sink) = sink.as_mut() {
            sink.push(lines.number, &fields, b' ')?;
            sink.spill_past_budget(keep, lines.read, &text_size, &switched)?;
        }
    }
    match sink {
        Some(sink) => {
            let parsed = sink.finish()?;
            Ok(Parsed {
                spilled: switched.into_inner(),
                ..parsed
            })
        }
        None if source.header || source.params.column_names.is_none() => Err(Error::Empty {
            path: path.to_path_buf(),
        }),
        None => {
            let header = header_names(source, None, 0);
            let slots = resolve(source, &header)?;
            Sink::new(source, &header, slots, 0).finish()
        }
    }
}
