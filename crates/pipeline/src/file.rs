//! Pass one: the pipeline file as written, with spans for error messages.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, FileError, Result};

/// The `[pipeline]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub name: Option<String>,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub output: Option<PathBuf>,
    pub runs: Option<PathBuf>,
    /// `local` or `ballista://host:port`, checked when planned.
    pub engine: Option<Spanned<String>>,
    /// The folder for a cluster's executors, checked when planned.
    pub shared_dir: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub gates: crate::plan::Gates,
}

/// One `[stages.<name>]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub uses: Spanned<String>,
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    #[serde(default)]
    pub with: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pub retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub retry_delay: Option<Spanned<String>>,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipeline {
    #[serde(default)]
    pub pipeline: RawHeader,
    pub stages: std::collections::BTreeMap<String, RawStage>,
}

/// A parsed file with its text, so later passes can point at lines.
pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// The largest pipeline file read: plans are written by hand, and a file beyond this
/// (hundreds of thousands of rules, say) would take gigabytes to plan.
pub(crate) const MAX_FILE_BYTES: u64 = 4 << 20;

/// Whether text that follows `before` on its line is TOML to read: not after a `#`
/// that starts a comment, nor inside a string, unless the string is a quoted key
/// that has just opened (`"name" =`, `{ "k" =`, `a."b" =`).
fn is_code(before: &str) -> bool {
    let mut quote: Option<(char, usize)> = None;
    let mut escaped = false;
    for (at, c) in before.char_indices() {
        match quote {
            Some((q, _)) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '#' => return false,
            None if c == '"' || c == '\'' => quote = Some((c, at)),
            None => {}
        }
    }
    match quote {
        None => true,
        Some((_, opened)) => {
            let key_place = before[..opened].trim_end();
            opened + 1 == before.len()
                && (key_place.is_empty() || key_place.ends_with(['{', ',', '.', '[']))
        }
    }
}

impl Source {
    /// Reads a pipeline file: a regular file of at most [`MAX_FILE_BYTES`], UTF-8.
    pub fn read(path: &Path) -> Result<Source> {
        let refuse = |why: &str| Error::ReadFile {
            path: path.to_path_buf(),
            source: std::io::Error::other(why.to_string()),
        };
        let meta = std::fs::metadata(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(refuse("it is not a regular file"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(refuse(&format!(
                "it is {} MiB, more than the {} MiB a pipeline file may be",
                meta.len() >> 20,
                MAX_FILE_BYTES >> 20
            )));
        }
        let bytes = std::fs::read(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            // Where the text stops being UTF-8, as an editor counts lines.
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let column =
                good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
            refuse(&format!(
                "line {line}, column {column} is not UTF-8 text (a file saved as UTF-16 or \
                 Windows-1252?): save it as UTF-8"
            ))
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// A mistake in the file at byte `offset`, told at its line and column.
    pub fn error_at(&self, offset: usize, message: String, hint: Option<String>) -> Error {
        Error::File(self.located(offset, message, hint))
    }

    /// [`Source::error_at`]'s mistake, to keep rather than return.
    pub fn located(&self, offset: usize, message: String, hint: Option<String>) -> Box<FileError> {
        let (line, column) = self.line_col(offset);
        Box::new(FileError {
            path: self.path.clone(),
            line,
            column,
            message,
            hint,
        })
    }

    /// Offset of the header's `key` (`name`, `min_volume_ratio`) in the `[pipeline]`
    /// table or a subtable of it (`[pipeline.gates]`), wherever in the file each is.
    pub fn find_header_key(&self, key: &str) -> Option<usize> {
        let mut spans = Vec::new();
        let (mut start, mut offset) = (None, 0);
        for line in self.text.split_inclusive('\n') {
            let code = line.split('#').next().unwrap_or_default();
            let header: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            if header.starts_with('[') {
                let ours = header == "[pipeline]" || header.starts_with("[pipeline.");
                match start {
                    None if ours => start = Some(offset),
                    Some(from) if !ours => {
                        spans.push(from..offset);
                        start = None;
                    }
                    _ => {}
                }
            }
            offset += line.len();
        }
        spans.extend(start.map(|from| from..self.text.len()));
        spans.into_iter().find_map(|span| self.find_key(span, key))
    }

    /// Offset of `key` written as a key (`key =`) inside `span`, if it is there.
    pub fn find_key(&self, span: std::ops::Range<usize>, key: &str) -> Option<usize> {
        let end = span.end.min(self.text.len());
        let start = span.start.min(end);
        let area = self.text.get(start..end)?;
        let mut from = 0;
        while let Some(found) = area[from..].find(key) {
            let at = from + found;
            let before_ok = area[..at]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let rest = area[at + key.len()..].trim_start_matches([' ', '\t', '"']);
            // `key =`, a dotted `key.sub`, or a table header's `.key]`, and not in a
            // comment or a string's text.
            let line_start = self.text[..start + at].rfind('\n').map_or(0, |n| n + 1);
            if before_ok
                && (rest.starts_with('=') || rest.starts_with('.') || rest.starts_with(']'))
                && is_code(&self.text[line_start..start + at])
            {
                return Some(start + at);
            }
            from = at + key.len();
        }
        None
    }

    /// Parses the file, reporting TOML and shape errors at their position.
    pub fn parse(&self) -> Result<RawPipeline> {
        toml::from_str(&self.text).map_err(|e| self.toml_error(&e, 0))
    }

    /// A TOML error of text that starts at byte `base` of the file, at its place.
    pub fn toml_error(&self, e: &toml::de::Error, base: usize) -> Error {
        let offset = e.span().map_or(base, |s| s.start);
        let message = e.message().trim().to_string();
        let hint = unknown_field_hint(&message).or_else(|| list_hint(&message));
        self.error_at(offset, message, hint)
    }
}

/// For serde's "invalid type: string \"x\", expected a sequence": the list of one.
fn list_hint(message: &str) -> Option<String> {
    let text = message
        .strip_prefix("invalid type: string \"")?
        .strip_suffix("\", expected a sequence")?;
    let items: Vec<String> = (text.split(','))
        .map(|item| format!("\"{}\"", item.trim()))
        .collect();
    Some(format!("a list, even of one: [{}]", items.join(", ")))
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the closest name.
pub(crate) fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (name, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    userlens_model::did_you_mean(name, &candidates).map(|c| format!("did you mean `{c}`?"))
}
