use std::path::PathBuf;

/// Errors of the ingest stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source file could not be opened or read.
    #[error("failed to read `{path}`")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The source file changed while it was read (replaced, or written to): what was
    /// read may mix two versions, so nothing of it is kept.
    #[error(
        "`{path}` changed while it was read (replaced or written to): nothing read from it was kept; read it again once it is whole (a stage with `retries` does)"
    )]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// A folder or file of the ingest's own (its parts, its spill) could not be
    /// made, written or removed.
    #[error("failed to write `{path}`")]
    Write {
        /// Folder or file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The input is a device, a FIFO, a folder: anything but a regular file.
    #[error("`{path}` is {kind}, not a regular file: save the data to a file and give its path")]
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The text is not UTF-8 but UTF-16 or UTF-32.
    #[error(
        "`{path}` line 1: the text is {encoding}, not UTF-8: convert it to UTF-8 (such as with `iconv -f {encoding} -t UTF-8`) and give the converted file"
    )]
    Encoding {
        /// File.
        path: PathBuf,
        /// The encoding found, as `iconv` names it.
        encoding: &'static str,
    },
    /// A Parquet file whose name says text.
    #[error(
        "`{path}` is a Parquet file (it begins with `PAR1`), read as text for its name: name it `.parquet` or set `format = \"parquet\"` for this source"
    )]
    ParquetAsText {
        /// File.
        path: PathBuf,
    },
    /// A file whose first bytes say it is no text: a workbook, an archive, or text
    /// compressed other than with gzip.
    #[error("`{path}` is {what}, not text: {fix}")]
    NotText {
        /// File.
        path: PathBuf,
        /// What its first bytes say it is.
        what: &'static str,
        /// What to give instead.
        fix: &'static str,
    },
    /// The header is one field holding `;` or tabs, read with the delimiter `,`.
    #[error(
        "`{path}` line 1: the header has no {} but has {}: set `delimiter = {:?}` for this source",
        if *read_with == '\t' { "tab".to_string() } else { format!("`{read_with}`") },
        if *found == '\t' { "tabs".to_string() } else { format!("`{found}`") },
        found.to_string()
    )]
    Delimiter {
        /// File.
        path: PathBuf,
        /// The delimiter it was read with.
        read_with: char,
        /// The delimiter the header seems to use.
        found: char,
    },
    /// A column the mapping names is not in the file's header.
    #[error(
        "`{path}` line {line}: no column `{source_column}` (mapped to `{target}`); {available}"
    )]
    MissingColumn {
        /// File.
        path: PathBuf,
        /// Header line.
        line: u64,
        /// Name the mapping asked for.
        source_column: String,
        /// Canonical column it maps to.
        target: String,
        /// The columns the file has, after the one the name is likely a typo of:
        /// "did you mean `user`? the columns are: user, time".
        available: String,
    },
    /// A key the mapping reads is in no line of a JSON-lines source.
    #[error("`{path}`: no line has the key `{key}` (mapped to `{target}`); {available}")]
    MissingKey {
        /// File.
        path: PathBuf,
        /// Dotted path the mapping asked for.
        key: String,
        /// Canonical column it maps to.
        target: String,
        /// The keys the lines have, after the one the path is likely a typo of.
        available: String,
    },
    /// A column the mapping reads is named twice in the header: which is meant is
    /// a guess.
    #[error(
        "`{path}` line {line}: column `{source_column}` (read for `{target}`) is in the header twice, as columns {first} and {second}; rename one"
    )]
    DuplicateColumn {
        /// File.
        path: PathBuf,
        /// Header line.
        line: u64,
        /// The repeated name.
        source_column: String,
        /// Canonical column it is read for.
        target: String,
        /// The two positions, counted from 1.
        first: usize,
        /// See `first`.
        second: usize,
    },
    /// Two header columns spell a canonical column's name in other cases: which is
    /// meant is a guess.
    #[error(
        "`{path}` line 1: columns `{first_name}` (column {first}) and `{second_name}` (column {second}) both spell `{target}`; rename one, or map `{target}` to one of them"
    )]
    CaseVariants {
        /// File.
        path: PathBuf,
        /// Canonical column they spell.
        target: String,
        /// The first spelling.
        first_name: String,
        /// Its position, counted from 1.
        first: usize,
        /// The second spelling.
        second_name: String,
        /// Its position, counted from 1.
        second: usize,
    },
    /// The last row's quoted field never closes: it ran to the end of the file.
    #[error(
        "`{path}` line {line}: a quoted field opens in this row and runs to the end of the file without closing; close the quote or remove it"
    )]
    UnclosedQuote {
        /// File.
        path: PathBuf,
        /// Where the row starts.
        line: u64,
    },
    /// A header name holds a line end: a quote in the header opens and closes lines
    /// later (or never), taking the rows between into the name.
    #[error(
        "`{path}` line 1: a quoted name in the header runs past the line's end (`{name}`): its quote does not close on line 1; close it or remove it"
    )]
    HeaderQuote {
        /// File.
        path: PathBuf,
        /// The start of the name, up to its first line end.
        name: String,
    },
    /// A required canonical column has no mapping and no same-named column.
    #[error(
        "`{path}`: required column `{column}` is missing (map it under `columns` or add it to the file); {available}"
    )]
    MissingRequired {
        /// File.
        path: PathBuf,
        /// Canonical column.
        column: &'static str,
        /// The columns the file has, as [`Error::MissingColumn`]'s.
        available: String,
    },
    /// A survey's header lacks a column it must have, or spells one twice in other
    /// cases (a survey has no mapping and no delimiter to set: the file is made to
    /// fit).
    #[error(
        "`{path}`{}: {problem}; a survey has the {}columns user_id, answered_at, score and optionally comment (in any case)",
        if *csv { " line 1" } else { "" },
        if *csv { "comma-separated " } else { "" }
    )]
    SurveyHeader {
        /// File.
        path: PathBuf,
        /// Whether the file is a CSV (else Parquet).
        csv: bool,
        /// What is wrong with the header.
        problem: String,
    },
    /// The file has no header line although one was expected.
    #[error("`{path}` is empty: expected a header line")]
    Empty {
        /// File.
        path: PathBuf,
    },
    /// Too many rows were refused.
    #[error(
        "{quarantined} of {read} rows ({share:.1}%) of the input were quarantined, more than the allowed {max:.1}%{most}; see quarantine.csv"
    )]
    QualityGate {
        /// `; most ...`: the column most rows were refused for, with an example
        /// (empty when none is known).
        most: String,
        /// Rows read.
        read: u64,
        /// Rows quarantined.
        quarantined: u64,
        /// Quarantined share in percent.
        share: f64,
        /// Allowed share in percent.
        max: f64,
    },
    /// A user's amounts add up past what userlens sums exactly.
    #[error(
        "at least {users} user(s) have absolute amounts adding up to more than {max:e} (the \
         first: `{user}`), past what userlens sums exactly in whole cents; check the amounts' unit"
    )]
    UserTotal {
        /// The first such user, by id.
        user: String,
        /// How many users' amounts do.
        users: usize,
        /// The bound.
        max: f64,
    },
    /// Nothing was left to work on.
    #[error("no events left in {files} after validation: nothing to profile")]
    NoEvents {
        /// The files read.
        files: String,
    },
    /// A part or spilled chunk of the ingest's own could not be written.
    #[error("failed to write `{path}` as Parquet")]
    WriteParquet {
        /// File.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// Parquet or column-building failure in polars.
    #[error("failed to read `{path}` as parquet")]
    Parquet {
        /// File.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// A Parquet column that is used has a type the ingest cannot take.
    #[error("`{path}`: column `{column}`{role} is {kind}: {fix}")]
    UnsupportedColumn {
        /// File.
        path: PathBuf,
        /// The column.
        column: String,
        /// What the column is read as, in words (empty for a side table).
        role: String,
        /// Its type and what is wrong with it.
        kind: String,
        /// What to do.
        fix: String,
    },
    /// A Parquet source or side table is not one polars can read: corrupt, not
    /// Parquet, or with a column it refuses.
    #[error("`{path}` is not a Parquet file userlens can read")]
    BadParquet {
        /// File.
        path: PathBuf,
        /// What polars reported.
        source: polars::prelude::PolarsError,
    },
    /// A side table (such as the users table) whose header or layout cannot be read.
    #[error("`{path}`: {problem}")]
    TableLayout {
        /// File.
        path: PathBuf,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// A row of a side table (such as the users table) that cannot be read.
    #[error("`{path}` line {line}: {reason}")]
    TableRow {
        /// File.
        path: PathBuf,
        /// The row's line, counted from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A side table (such as the users table) could not be read.
    #[error("failed to read the table `{path}`")]
    Table {
        /// File.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// A polars operation on the parsed events failed.
    #[error("failed to {action}")]
    Polars {
        /// What was being done.
        action: &'static str,
        /// Underlying error.
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// Invalid source parameters.
    #[error("{0}")]
    Params(String),
}

impl Error {
    /// Whether the file is not there (yet): a side table another job writes may be
    /// on its way, so a stage retries rather than refuses.
    pub fn is_missing(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// Whether the input is refused rather than the run failing: the source is
    /// missing, not a regular file, not UTF-8, empty, lacks a column it must
    /// have (or has it in a form the ingest cannot take), or fails a gate (too
    /// much quarantined, no event, a user's total out of range).
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::MissingColumn { .. }
            | Error::MissingKey { .. }
            | Error::DuplicateColumn { .. }
            | Error::CaseVariants { .. }
            | Error::UnclosedQuote { .. }
            | Error::HeaderQuote { .. }
            | Error::MissingRequired { .. }
            | Error::SurveyHeader { .. }
            | Error::Empty { .. }
            | Error::UnsupportedColumn { .. }
            | Error::NotAFile { .. }
            | Error::Encoding { .. }
            | Error::ParquetAsText { .. }
            | Error::NotText { .. }
            | Error::Delimiter { .. }
            | Error::TableRow { .. }
            | Error::TableLayout { .. }
            | Error::UserTotal { .. }
            | Error::QualityGate { .. }
            | Error::NoEvents { .. } => true,
            Error::BadParquet { .. } => true,
            // Malformed, not a disk's failure to give its bytes.
            Error::Table { source, .. } => {
                !matches!(source, polars::prelude::PolarsError::IO { .. })
            }
            // A file missing, or bytes that are not what they should be (a corrupt
            // gzip stream): not a disk's failure to give them.
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
            ),
            _ => false,
        }
    }
}

/// Result of the ingest stage.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn polars(action: &'static str) -> impl FnOnce(polars::prelude::PolarsError) -> Error {
    move |source| Error::Polars { action, source }
}

/// Bytes of a value a quarantine reason quotes; the rest is in the row's `raw`.
const QUOTED_BYTES: usize = 64;

/// `text` cut to at most `bytes` bytes at a character's start, `…` after it where
/// it was cut.
pub(crate) fn cut(text: &str, bytes: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= bytes {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

/// A value from the data as a quarantine reason quotes it: in double quotes and as
/// written, so a Windows path keeps single backslashes and a quote stays a quote
/// (the whole row is in `raw`), [`cut`] to 64 bytes; a control character is
/// written as its escape (`\n`, `\0`, `\u{001B}`), so a reason stays one line.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::from('"');
    for c in cut(text, QUOTED_BYTES).chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04X}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_value_is_as_written_and_cut_at_a_character() {
        assert_eq!(quoted(r"C:\x\y"), r#""C:\x\y""#);
        assert_eq!(quoted(r#"2026-01-02 "noon""#), r#""2026-01-02 "noon"""#);
        let long = format!("{}é", "a".repeat(63));
        assert_eq!(quoted(&long), format!("\"{}…\"", "a".repeat(63)));
        assert_eq!(quoted("a\0b"), r#""a\0b""#);
        assert_eq!(
            quoted("2026-01-02\nnoon\u{1b}"),
            r#""2026-01-02\nnoon\u{001B}""#
        );
    }

    #[test]
    fn missing_inputs_are_refusals_and_failures_are_not() {
        let path = PathBuf::from("events.csv");
        let io = |kind| Error::Io {
            path: path.clone(),
            source: std::io::Error::from(kind),
        };
        let refused = [
            io(std::io::ErrorKind::NotFound),
            Error::MissingColumn {
                path: path.clone(),
                line: 1,
                source_column: "uid".into(),
                target: "user_id".into(),
                available: "the columns are: user, time".into(),
            },
            Error::MissingRequired {
                path: path.clone(),
                column: "event_time",
                available: "the columns are: user, time".into(),
            },
            Error::Empty { path: path.clone() },
            Error::Encoding {
                path: path.clone(),
                encoding: "UTF-16LE",
            },
            Error::Delimiter {
                path: path.clone(),
                read_with: ',',
                found: ';',
            },
            Error::NotAFile {
                path: PathBuf::from("/dev/zero"),
                kind: "a character device",
            },
            Error::UnsupportedColumn {
                path: path.clone(),
                column: "price".into(),
                role: " (read as `amount`)".into(),
                kind: "a decimal(10, 2), which userlens cannot read".into(),
                fix: "write it as a double or as text, or map another column".into(),
            },
            Error::QualityGate {
                most: String::new(),
                read: 10,
                quarantined: 9,
                share: 90.0,
                max: 5.0,
            },
            Error::NoEvents {
                files: "`events.csv`".into(),
            },
        ];
        for error in &refused {
            assert!(error.is_refusal(), "{error:?}");
        }
        let failed = [
            io(std::io::ErrorKind::PermissionDenied),
            io(std::io::ErrorKind::UnexpectedEof),
            // A shared_dir that is not there is the run's failure, not the input's.
            Error::Write {
                path: PathBuf::from("/mnt/shared/p/ingest/events.parts"),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
            Error::Params("`delimiter` must be one character".into()),
        ];
        for error in &failed {
            assert!(!error.is_refusal(), "{error:?}");
        }
    }
}
