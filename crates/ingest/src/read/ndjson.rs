//! JSON lines (one event object per line, as Segment, RudderStack or Amplitude
//! export them), optionally gzip-compressed. Canonical columns are mapped by dotted
//! paths into the object (`amount = "properties.revenue"`); an unmapped column is
//! looked up by its own name. Each line becomes one row of the same checks as CSV.

use std::cell::OnceCell;

use serde_json::Value;
use userlens_model::columns;

use super::records::LineReader;
use super::{Keep, OnProgress, Opened, Parsed, Sink, echo, open, resolve};
use crate::error::{Error, Result};
use crate::{ColumnSource, Source, spill};

/// The dotted path each canonical column is read from (the mapped columns, then
/// the canonical names of the unmapped ones), as the "header" of the rows; and
/// beside each path, the column it is first read for (the quarantine's `column`).
fn paths(source: &Source) -> (Vec<String>, Vec<&'static str>) {
    let (mut paths, mut read_for) = (Vec::new(), Vec::new());
    for name in columns::EVENT_COLUMNS
        .into_iter()
        .chain(columns::OPTIONAL_EVENT_COLUMNS)
    {
        let wanted = match source.params.columns.get(name) {
            Some(ColumnSource::Column(path)) => vec![path.clone()],
            Some(ColumnSource::First { first }) => first.clone(),
            Some(ColumnSource::Constant { .. }) => continue,
            Some(ColumnSource::Derived { .. }) => {
                source.derived.get(name).map_or_else(Vec::new, |ast| {
                    userlens_expr::names(ast)
                        .into_iter()
                        .map(|(n, _)| n.to_string())
                        .collect()
                })
            }
            None => vec![name.to_string()],
        };
        for path in wanted {
            if !paths.contains(&path) {
                paths.push(path);
                read_for.push(name);
            }
        }
    }
    let refund = source.refund.iter().flat_map(userlens_expr::names);
    for (path, _) in refund {
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_string());
            read_for.push("refund_when");
        }
    }
    (paths, read_for)
}

/// The paths a source's mapping names, as indices into the paths of [`paths`] (a
/// `first` list's together), each with the column it is read for: those no line has
/// are told, or refuse the input for a required column. Unmapped columns looked up
/// by their own names may be absent.
fn mapped(source: &Source, header: &[String]) -> Vec<(Vec<usize>, &'static str)> {
    let index = |path: &str| header.iter().position(|p| p == path);
    let mut out = Vec::new();
    for name in columns::EVENT_COLUMNS
        .into_iter()
        .chain(columns::OPTIONAL_EVENT_COLUMNS)
    {
        match source.params.columns.get(name) {
            Some(ColumnSource::Column(path)) => out.extend(index(path).map(|i| (vec![i], name))),
            Some(ColumnSource::First { first }) => {
                out.push((first.iter().filter_map(|p| index(p)).collect(), name));
            }
            Some(ColumnSource::Derived { .. }) => {
                let names = source.derived.get(name).map(userlens_expr::names);
                for (path, _) in names.into_iter().flatten() {
                    out.extend(index(path).map(|i| (vec![i], name)));
                }
            }
            Some(ColumnSource::Constant { .. }) | None => {}
        }
    }
    for (path, _) in source.refund.iter().flat_map(userlens_expr::names) {
        out.extend(index(path).map(|i| (vec![i], "refund_when")));
    }
    out
}

/// The value at a dotted path, where a key may hold dots itself (as flattened
/// exports write `"properties.revenue"`): the whole path as one key first, then each
/// key before a dot, the longest first, and the rest of the path within it. A value
/// wins over a null or an empty text; `None` when no key is there at all.
fn lookup<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
    let within = path.rmatch_indices('.').map(|(at, _)| {
        let inner = object.get(&path[..at])?;
        lookup(inner, &path[at + 1..])
    });
    let mut blank = None;
    for value in std::iter::once(object.get(path)).chain(within).flatten() {
        if !(value.is_null() || value.as_str() == Some("")) {
            return Some(value);
        }
        blank = Some(value);
    }
    blank
}

/// The leaf paths of `object` (objects' keys joined by dots), into `keys`.
fn leaf_paths(object: &Value, prefix: &str, keys: &mut std::collections::BTreeSet<String>) {
    let Some(map) = object.as_object() else {
        return;
    };
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(_) => leaf_paths(value, &path, keys),
            _ => {
                keys.insert(path);
            }
        }
    }
}

/// Keys a missing key's hint lists at most.
const KEYS_LISTED: usize = 40;

/// The keys of the first lines, after the one `key` is likely a typo of: its last part
/// a near miss of the other's (`properties.query` is no typo of `properties.revenue`),
/// or the same key but for case, `.` and `_` (`properties_revenue`).
fn keys_hint(keys: &[String], key: &str) -> String {
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let plain = |k: &str| k.to_lowercase().replace('_', ".");
    let near = userlens_model::did_you_mean(key, &names).filter(|near| {
        plain(near) == plain(key)
            || userlens_model::did_you_mean(&last(key), &[last(near).as_str()]).is_some()
    });
    let mut text = near.map_or(String::new(), |near| format!("did you mean `{near}`? "));
    text.push_str("the keys of the first lines are: ");
    text.push_str(&names[..names.len().min(KEYS_LISTED)].join(", "));
    if names.len() > KEYS_LISTED {
        text.push_str(&format!(" and {} more", names.len() - KEYS_LISTED));
    }
    text
}

/// Lines whose keys are listed for a missing key's hint.
const KEYS_FROM_LINES: usize = 1_000;

/// Whole numbers from here on are not all exact as f64: two ids past it can read
/// as one.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// A scalar as the text a CSV field would hold; `Err` says why it is none.
fn scalar_text(value: &Value) -> std::result::Result<String, &'static str> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => match n.as_f64() {
            Some(v) if n.is_f64() && v.fract() == 0.0 && v.abs() >= EXACT_INTEGERS => Err(
                "a whole number too large to read exactly (past 2^53), not a value: write it as text",
            ),
            _ => Ok(n.to_string()),
        },
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) => Err("a list, not a value"),
        Value::Object(_) => Err("an object, not a value"),
    }
}

/// The fields of a line, each path's found or not in `found`, the line's keys in
/// `keys` when given; why a line cannot be a row at all, with the index of the path
/// concerned (`None` for the line).
fn fields_of(
    line: &[u8],
    paths: &[String],
    found: &mut [bool],
    keys: Option<&mut std::collections::BTreeSet<String>>,
) -> std::result::Result<Vec<String>, (Option<usize>, String)> {
    let object: Value = serde_json::from_slice(line).map_err(|e| {
        // serde_json's position counts lines of the one line it was given.
        let text = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let reason = text.strip_suffix(&position).unwrap_or(&text);
        (
            None,
            format!("not valid JSON at byte {}: {reason}", e.column()),
        )
    })?;
    if !object.is_object() {
        return Err((None, "a JSON line must be an object".to_string()));
    }
    if let Some(keys) = keys {
        leaf_paths(&object, "", keys);
    }
    paths
        .iter()
        .zip(found)
        .enumerate()
        .map(|(i, (path, found))| match lookup(&object, path) {
            None => Ok(String::new()),
            Some(value) => {
                *found = true;
                scalar_text(value).map_err(|what| (Some(i), format!("`{path}` is {what}")))
            }
        })
        .collect()
}

/// Reads and checks every line of a JSON-lines source.
pub(crate) fn read_ndjson(
    source: &Source,
    on_progress: OnProgress<'_>,
    keep: Keep<'_>,
) -> Result<Parsed> {
    let path = source.path();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let (header, read_for) = paths(source);
    let slots = resolve(source, &header)?;
    let Opened {
        mut reader,
        size: text_size,
    } = open(path, on_progress)?;
    // Declared before the sink, which borrows the plan once there is one.
    let switched = OnceCell::new();
    let mut sink = Sink::new(source, &header, slots, 0)
        .spilling(keep.plan().map(|plan| spill::Writer::new(plan, 0)));
    let (mut lines, mut buf) = (LineReader::default(), Vec::new());
    let mut found = vec![false; header.len()];
    let (mut keys, mut objects) = (std::collections::BTreeSet::new(), 0usize);
    while let Some(line) = lines.next(&mut reader, &mut buf).map_err(io)? {
        let line_no = lines.number;
        if line.trim_ascii().is_empty() {
            continue; // blank lines carry no row
        }
        let quarantined = sink.q_raw.len();
        // Without its line end, but its leading spaces: a JSON error's position
        // counts from the line's first byte.
        let listed = (objects < KEYS_FROM_LINES).then_some(&mut keys);
        match fields_of(line.trim_ascii_end(), &header, &mut found, listed) {
            Ok(fields) => {
                objects += 1;
                let fields: Vec<&[u8]> = fields.iter().map(String::as_bytes).collect();
                sink.push(line_no, &fields, b' ')?;
            }
            Err((path, reason)) => {
                // Named as a bad value's row is: by the canonical column.
                let column = path.map_or("", |i| read_for[i]);
                sink.read += 1;
                sink.refuse(line_no, column, reason, &[], b' ');
            }
        }
        // The quarantine echoes the line as written, not the values taken from it.
        if sink.q_raw.len() > quarantined
            && let Some(raw) = sink.q_raw.last_mut()
        {
            *raw = echo(line.trim_ascii());
        }
        sink.spill_past_budget(keep, lines.read, &text_size, &switched)?;
    }
    // A mapped key no line has: a typo, or a night without such events. A required
    // column none of whose keys any line has refuses the input; any other is told,
    // once a key, with the columns it is read for.
    let keys: Vec<String> = keys.into_iter().collect();
    let mut absent: Vec<(usize, Vec<&str>)> = Vec::new();
    for (any_of, target) in mapped(source, &header).into_iter().filter(|_| objects > 0) {
        if columns::REQUIRED.contains(&target) && !any_of.iter().any(|&i| found[i]) {
            let key = any_of.first().map_or("", |&i| header[i].as_str());
            return Err(Error::MissingKey {
                path: path.to_path_buf(),
                key: key.to_string(),
                target: target.to_string(),
                available: keys_hint(&keys, key),
            });
        }
        for &i in any_of.iter().filter(|&&i| !found[i]) {
            match absent.iter_mut().find(|(key, _)| *key == i) {
                Some((_, targets)) if !targets.contains(&target) => targets.push(target),
                Some(_) => {}
                None => absent.push((i, vec![target])),
            }
        }
    }
    let notes = absent
        .into_iter()
        .map(|(i, targets)| {
            let key = header[i].as_str();
            let mut targets: Vec<String> = targets.iter().map(|t| format!("`{t}`")).collect();
            let last = targets.pop().unwrap_or_default();
            let read_for = match targets.is_empty() {
                true => last,
                false => format!("{} and {last}", targets.join(", ")),
            };
            format!(
                "`{}`: no line has the key `{key}`, read for {read_for}; {}",
                path.display(),
                keys_hint(&keys, key)
            )
        })
        .collect();
    let parsed = sink.finish()?;
    Ok(Parsed {
        spilled: switched.into_inner(),
        notes,
        ..parsed
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fuzz_any_path_into_any_object_is_looked_up_without_a_panic(
            path in "[ab.]{0,12}",
            json in r#"\{("[ab.]{0,4}": ("x"|null|""|\{"[ab.]{0,3}": 1\}), ){0,3}"z": 0\}"#,
        ) {
            let object: serde_json::Value = serde_json::from_str(&json).unwrap();
            let found = super::lookup(&object, &path);
            // A key with no dot is the object's own, whatever it holds.
            if !path.contains('.') {
                prop_assert_eq!(found, object.get(&path));
            }
        }
    }

    fn fields_of(
        line: &[u8],
        paths: &[String],
    ) -> std::result::Result<Vec<String>, (Option<usize>, String)> {
        super::fields_of(line, paths, &mut vec![false; paths.len()], None)
    }

    #[test]
    fn a_missing_keys_hint_suggests_near_misses_and_lists_a_few_keys() {
        let keys: Vec<String> = ["event", "properties.revenue"].map(String::from).to_vec();
        assert!(super::keys_hint(&keys, "properties.Revenue").starts_with("did you mean"));
        // Another key of the same object is no typo of it.
        assert_eq!(
            super::keys_hint(&keys, "properties.query"),
            "the keys of the first lines are: event, properties.revenue"
        );
        assert!(super::keys_hint(&keys, "properties_revenue").starts_with("did you mean"));
        let many: Vec<String> = (0..45).map(|i| format!("k{i:02}")).collect();
        let hint = super::keys_hint(&many, "x");
        assert!(hint.ends_with("k39 and 5 more"), "{hint}");
    }

    #[test]
    fn a_null_or_nested_rest_does_not_hide_a_dotted_key() {
        let paths: Vec<String> = ["properties.revenue", "a.b.c"].map(String::from).to_vec();
        for (line, expected) in [
            // The flat key holds null: the nested one is read.
            (
                &br#"{"properties.revenue": null, "properties": {"revenue": 12.5}}"#[..],
                ["12.5", ""],
            ),
            // A key with a dot, then the rest within it.
            (br#"{"a.b": {"c": 3}}"#, ["", "3"]),
            (br#"{"a": {"b.c": 4}}"#, ["", "4"]),
            (br#"{"a.b": {"c": null}, "a": {"b": {"c": 9}}}"#, ["", "9"]),
            (br#"{"a.b.c": "", "a": {"b": {"c": 12}}}"#, ["", "12"]),
        ] {
            let fields = fields_of(line, &paths).unwrap();
            assert_eq!(fields, expected, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn dotted_paths_reach_nested_values() {
        let paths: Vec<String> = [
            "userId",
            "properties.revenue",
            "context.page.path",
            "missing.key",
        ]
        .map(String::from)
        .to_vec();
        let line = br#"{"userId": 17850, "properties": {"revenue": 12.5}, "context": {"page": {"path": "/cart"}}}"#;
        assert_eq!(
            fields_of(line, &paths).unwrap(),
            ["17850", "12.5", "/cart", ""]
        );
    }

    #[test]
    fn lines_that_are_not_rows_say_why() {
        let paths = vec!["a".to_string()];
        let (column, reason) = fields_of(b"{\"a\": 1", &paths).unwrap_err();
        assert_eq!(column, None);
        assert_eq!(
            reason,
            "not valid JSON at byte 7: EOF while parsing an object"
        );
        // Counted from the line's first byte, spaces before the object included; the
        // reader gives the line without its line end.
        let (_, reason) = fields_of(b"   {\"a\": 1", &paths).unwrap_err();
        assert!(reason.starts_with("not valid JSON at byte 10:"), "{reason}");
        let (_, reason) = fields_of(b"[1, 2]", &paths).unwrap_err();
        assert_eq!(reason, "a JSON line must be an object");
        let (column, reason) = fields_of(br#"{"a": {"b": 1}}"#, &paths).unwrap_err();
        assert_eq!(
            (column, reason.as_str()),
            (Some(0), "`a` is an object, not a value")
        );
        assert_eq!(fields_of(br#"{"a": null}"#, &paths).unwrap(), [""]);
    }

    #[test]
    fn a_whole_number_past_exact_reading_is_no_id() {
        let paths = vec!["userId".to_string()];
        // Past u64: read as f64, where ...123 and ...124 are the same number.
        for line in [
            &br#"{"userId": 12345678901234567890123}"#[..],
            br#"{"userId": 1e20}"#,
        ] {
            let (column, reason) = fields_of(line, &paths).unwrap_err();
            assert_eq!(column, Some(0));
            assert!(reason.contains("too large to read exactly"), "{reason}");
        }
        // Integers JSON readers keep exactly, and fractions, read as written.
        for (line, text) in [
            (
                &br#"{"userId": 18446744073709551615}"#[..],
                "18446744073709551615",
            ),
            (br#"{"userId": -9007199254740991}"#, "-9007199254740991"),
            (br#"{"userId": 12.5}"#, "12.5"),
        ] {
            assert_eq!(fields_of(line, &paths).unwrap(), [text]);
        }
    }
}
