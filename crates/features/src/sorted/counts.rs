//! Counts of a text column's values before a time, over all users: what the most
//! common categories are chosen from.

use polars::prelude::*;

use super::{PIECE_ROWS, Text, array_at, stretches};

/// How many events before `as_of` each non-null value of `values` has, counted on
/// every core (the events may be in any order).
pub(crate) fn count_before<'a>(
    times: &Int64Chunked,
    values: Text<'a>,
    as_of: i64,
) -> foldhash::HashMap<&'a str, u64> {
    use rayon::prelude::*;
    let n = times.len().min(values.len());
    let starts: Vec<usize> = (0..n).step_by(PIECE_ROWS * 4).collect();
    if let Text::Codes(ca) = values
        && ca.get_mapping().num_cats_upper_bound() <= PIECE_ROWS * 4
    {
        return count_codes_before(times, ca, as_of, &starts);
    }
    starts
        .into_par_iter()
        .map(|start| {
            let rows = start..n.min(start + PIECE_ROWS * 4);
            let mut counts = foldhash::HashMap::default();
            let at = |row| values.array_at(row);
            each_before(
                times,
                as_of,
                rows,
                values.chunk_lengths(),
                at,
                |array, i| {
                    if let Some(value) = array.get(i) {
                        *counts.entry(value).or_insert(0) += 1;
                    }
                },
            );
            counts
        })
        .reduce(foldhash::HashMap::default, |mut all, counts| {
            for (value, n) in counts {
                *all.entry(value).or_insert(0) += n;
            }
            all
        })
}

/// [`count_before`] of codes into a dictionary of no more values than a task's rows:
/// counted by code in a table (no hashing), each task from one of `starts`, and
/// named at the end.
fn count_codes_before<'a>(
    times: &Int64Chunked,
    ca: &'a Categorical32Chunked,
    as_of: i64,
    starts: &[usize],
) -> foldhash::HashMap<&'a str, u64> {
    use rayon::prelude::*;
    let dictionary = ca.get_mapping();
    let size = dictionary.num_cats_upper_bound();
    let n = times.len().min(ca.len());
    let counts = starts
        .par_iter()
        .map(|&start| {
            let rows = start..n.min(start + PIECE_ROWS * 4);
            let mut counts = vec![0u64; size];
            let codes = ca.physical();
            let lengths = Box::new(codes.chunk_lengths());
            let at = |row| array_at(codes, row);
            each_before(times, as_of, rows, lengths, at, |codes, i| {
                if let Some(code) = codes.get(i)
                    && let Some(count) = counts.get_mut(code as usize)
                {
                    *count += 1;
                }
            });
            counts
        })
        .reduce(
            || vec![0u64; size],
            |mut all, counts| {
                for (all, n) in all.iter_mut().zip(counts) {
                    *all += n;
                }
                all
            },
        );
    (counts.into_iter().enumerate())
        .filter(|&(_, n)| n > 0)
        .filter_map(|(code, n)| dictionary.cat_to_str(code as u32).map(|name| (name, n)))
        .collect()
}

/// Calls `each` with the array and place of every row of `rows` whose time is
/// before `as_of`, read a stretch at a time: `at` finds a row's array in the
/// column whose chunks are `lengths` long.
fn each_before<'c, A: Copy>(
    times: &'c Int64Chunked,
    as_of: i64,
    rows: std::ops::Range<usize>,
    lengths: Box<dyn Iterator<Item = usize> + 'c>,
    at: impl Fn(usize) -> Option<(A, usize)>,
    mut each: impl FnMut(A, usize),
) {
    let mut chunkings = [
        Box::new(times.chunk_lengths()) as Box<dyn Iterator<Item = usize>>,
        lengths,
    ];
    for stretch in stretches(rows, &mut chunkings) {
        let (Some((times, tb)), Some((column, cb))) =
            (array_at(times, stretch.start), at(stretch.start))
        else {
            continue;
        };
        for i in 0..stretch.len() {
            if times.get(tb + i).is_some_and(|t| t < as_of) {
                each(column, cb + i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_counted_as_their_strings_are() {
        // 53 rows: several tasks of PIECE_ROWS * 4, nulls, and rows at or after as_of.
        let names = ["toys", "books", "garden", "home", "zoo"];
        let rows: Vec<(i64, Option<&str>)> = (0..53i64)
            .map(|i| (i % 7, (i % 6 != 5).then(|| names[(i * i % 5) as usize])))
            .collect();
        // Times and codes in chunks that end at different rows.
        let mut times = Int64Chunked::from_iter_values("t".into(), rows[..20].iter().map(|r| r.0));
        times
            .append_owned(Int64Chunked::from_iter_values(
                "t".into(),
                rows[20..].iter().map(|r| r.0),
            ))
            .unwrap();
        let mut strings =
            StringChunked::from_iter_options("c".into(), rows[..33].iter().map(|r| r.1));
        strings
            .append_owned(StringChunked::from_iter_options(
                "c".into(),
                rows[33..].iter().map(|r| r.1),
            ))
            .unwrap();
        let dictionary = Categories::new("c".into(), "sorted".into(), CategoricalPhysical::U32);
        let coded = strings
            .clone()
            .into_series()
            .cast(&DataType::from_categories(dictionary))
            .unwrap();
        let codes = coded.cat32().unwrap();
        for as_of in [0, 3, 7] {
            let by_string = count_before(&times, Text::Strings(&strings), as_of);
            let by_code = count_before(&times, Text::Codes(codes), as_of);
            assert_eq!(by_code, by_string, "as_of {as_of}");
            let mut expected = foldhash::HashMap::default();
            for (t, name) in &rows {
                if let (true, Some(name)) = (*t < as_of, name) {
                    *expected.entry(*name).or_insert(0u64) += 1;
                }
            }
            assert_eq!(by_code, expected, "as_of {as_of}");
        }
    }
}
