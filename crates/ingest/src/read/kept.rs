//! The columns of the rows a reader keeps, built as they are read.

use polars::prelude::*;
use userlens_model::columns;

use super::{AMOUNT, LINE, N, RATING, ROW_HASH, TIME};
use crate::error::{self, Result};

/// The slots of the [`crate::DICTIONARY_COLUMNS`], built as codes from the start.
pub(super) const CODED: [usize; crate::DICTIONARY_COLUMNS.len()] = {
    let mut slots = [0; crate::DICTIONARY_COLUMNS.len()];
    let mut i = 0;
    while i < slots.len() {
        slots[i] = slot_of(crate::DICTIONARY_COLUMNS[i]);
        i += 1;
    }
    slots
};

/// The dictionaries of the [`CODED`] columns, alive while their codes are made, and
/// each one's last value and code: a repeat (a session's category, a viewed item
/// then carted) skips the shared dictionary's hash and lookup.
pub(super) struct Coder {
    pub(super) dictionaries: [DataType; CODED.len()],
    last: [(String, Option<u32>); CODED.len()],
}

impl Coder {
    pub(super) fn new() -> Coder {
        Coder {
            dictionaries: CODED.map(|i| crate::dictionary(columns::EVENT_COLUMNS[i])),
            last: Default::default(),
        }
    }

    /// The code of `text` in the `k`th coded column's dictionary; an error when the
    /// dictionary holds more values than fit.
    pub(super) fn code(&mut self, k: usize, text: &str) -> PolarsResult<u32> {
        let last = &mut self.last[k];
        if let (same, Some(code)) = &*last
            && same == text
        {
            return Ok(*code);
        }
        let code = self.dictionaries[k].cat_mapping()?.insert_cat(text)?;
        last.0.clear();
        last.0.push_str(text);
        last.1 = Some(code);
        Ok(code)
    }
}

/// For each event column's slot, its place in [`CODED`] if it is coded.
pub(super) const CODE_OF: [Option<usize>; N] = {
    let mut code_of = [None; N];
    let mut k = 0;
    while k < CODED.len() {
        code_of[CODED[k]] = Some(k);
        k += 1;
    }
    code_of
};

/// The slot of an event column (checked when compiled: a typo does not build).
const fn slot_of(name: &str) -> usize {
    let mut slot = 0;
    while slot < N {
        let column = columns::EVENT_COLUMNS[slot].as_bytes();
        if column.len() == name.len() {
            let mut same = 0;
            while same < column.len() && column[same] == name.as_bytes()[same] {
                same += 1;
            }
            if same == column.len() {
                return slot;
            }
        }
        slot += 1;
    }
    panic!("not an event column")
}

/// The columns of the kept rows, as they are built.
pub(super) struct Kept {
    /// The text columns (the slots of the other columns stay empty).
    pub(super) strings: [StringChunkedBuilder; N],
    /// The [`CODED`] columns' codes in their [`crate::dictionary`].
    pub(super) codes: [PrimitiveChunkedBuilder<UInt32Type>; CODED.len()],
    pub(super) times: Vec<i64>,
    /// Hash of every kept row's values: equal rows sort next to each other.
    pub(super) hashes: Vec<u64>,
    /// The line each kept row was read from, when duplicates are dropped: a dropped
    /// duplicate names it.
    pub(super) lines: Option<Vec<u64>>,
    pub(super) amounts: PrimitiveChunkedBuilder<Float64Type>,
    pub(super) ratings: PrimitiveChunkedBuilder<Float64Type>,
    /// The order ids, when the source maps them.
    pub(super) orders: Option<StringChunkedBuilder>,
}

impl Kept {
    pub(super) fn with_capacity(capacity: usize, with_order: bool, with_lines: bool) -> Kept {
        Kept {
            strings: std::array::from_fn(|i| {
                let capacity = if matches!(i, TIME | AMOUNT | RATING) || CODE_OF[i].is_some() {
                    0
                } else {
                    capacity
                };
                StringChunkedBuilder::new(columns::EVENT_COLUMNS[i].into(), capacity)
            }),
            codes: CODED
                .map(|i| PrimitiveChunkedBuilder::new(columns::EVENT_COLUMNS[i].into(), capacity)),
            times: Vec::with_capacity(capacity),
            hashes: Vec::with_capacity(capacity),
            lines: with_lines.then(|| Vec::with_capacity(capacity)),
            amounts: PrimitiveChunkedBuilder::new(columns::AMOUNT.into(), capacity),
            ratings: PrimitiveChunkedBuilder::new(columns::RATING.into(), capacity),
            orders: with_order
                .then(|| StringChunkedBuilder::new(columns::ORDER_ID.into(), capacity)),
        }
    }

    /// The kept rows as a table, with the [`CODED`] columns' `dictionaries` (in
    /// [`crate::DICTIONARY_COLUMNS`]' order).
    pub(super) fn into_events(self, dictionaries: &[DataType; CODED.len()]) -> Result<DataFrame> {
        let Kept {
            strings,
            codes,
            times,
            hashes,
            lines,
            amounts,
            ratings,
            orders,
        } = self;
        let [user, _, _, session, _, _, _, _, _] = strings;
        let [event_type, item, category, query] = codes;
        let height = times.len();
        let time = Int64Chunked::from_vec(columns::EVENT_TIME.into(), times)
            .into_datetime(TimeUnit::Microseconds, None)
            .into_column();
        let coded = |codes: PrimitiveChunkedBuilder<UInt32Type>, k: usize| {
            let dictionary = dictionaries[k].clone();
            Categorical32Chunked::from_cats_and_dtype(codes.finish(), dictionary).into_column()
        };
        let mut cols = vec![
            user.finish().into_column(),
            time,
            coded(event_type, 0),
            session.finish().into_column(),
            coded(item, 1),
            coded(category, 2),
            coded(query, 3),
            amounts.finish().into_column(),
            ratings.finish().into_column(),
        ];
        if let Some(orders) = orders {
            cols.push(orders.finish().into_column());
        }
        cols.push(UInt64Chunked::from_vec(ROW_HASH.into(), hashes).into_column());
        if let Some(lines) = lines {
            cols.push(UInt64Chunked::from_vec(LINE.into(), lines).into_column());
        }
        DataFrame::new(height, cols).map_err(error::polars("build the event table"))
    }
}
