//! A CSV source's header: checked, named, and a hint when it is one field.

use std::path::Path;

use crate::Source;
use crate::error::{Error, Result};

/// A hint for a header that did not resolve because it is one field: the file is
/// separated by `;` or tabs, not by the `,` it was read with.
pub(crate) fn delimiter_hint(path: &Path, delimiter: u8, first: &csv::ByteRecord) -> Option<Error> {
    if first.len() != 1 {
        return None;
    }
    let line = first.get(0)?;
    // The likeliest other delimiter: the one the header holds most of, ties in order.
    let (found, count) = [b',', b';', b'\t']
        .into_iter()
        .filter(|&d| d != delimiter)
        .map(|d| (d, memchr::memchr_iter(d, line).count()))
        .fold(
            (b',', 0),
            |best, next| if next.1 > best.1 { next } else { best },
        );
    (count > 0).then(|| Error::Delimiter {
        path: path.to_path_buf(),
        read_with: char::from(delimiter),
        found: char::from(found),
    })
}

/// Refuses a header with a line end in a name: a quote there that closes lines later
/// (or never) would take the rows between into the name, neither kept nor quarantined.
pub(crate) fn check_header(path: &Path, header: &csv::ByteRecord) -> Result<()> {
    match header
        .iter()
        .find(|name| name.contains(&b'\n') || name.contains(&b'\r'))
    {
        Some(name) => {
            let line = name
                .split(|&b| b == b'\n' || b == b'\r')
                .next()
                .unwrap_or_default();
            Err(Error::HeaderQuote {
                path: path.to_path_buf(),
                name: String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned(),
            })
        }
        None => Ok(()),
    }
}

pub(super) fn header_names(
    source: &Source,
    first: Option<Vec<String>>,
    width: usize,
) -> Vec<String> {
    match (&source.params.column_names, first) {
        (Some(names), _) => names.clone(),
        (None, Some(names)) => names,
        (None, None) => (1..=width).map(|i| format!("column_{i}")).collect(),
    }
}
