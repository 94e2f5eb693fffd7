//! What the stage reads from the events: labels, purchase histories and the
//! horizon's purchase counts, part by part (each part holds whole users, so a part
//! can be read here or on a cluster's executor), then combined.

use polars::prelude::*;
use userlens_model::columns::USER_ID;

use crate::ml;
use crate::stats::{self, Summary, TimeUnit};

use super::{Error, Result, polars_err};

/// What prediction reads from the events, gathered over the parts.
pub(super) struct FromEvents {
    /// Purchase targets of the horizon after the cutoff.
    pub(super) targets: DataFrame,
    /// Churn labels at the cutoff.
    pub(super) churn: DataFrame,
    /// The earliest event time.
    pub(super) first_event: Option<i64>,
    /// Purchase histories before the cutoff and before the as-of date.
    pub(super) summary_cutoff: stats::Result<Summary>,
    pub(super) summary_now: stats::Result<Summary>,
    /// Purchase days of each user in the horizon after the cutoff (absent: none).
    pub(super) horizon_purchases: foldhash::HashMap<String, f64>,
}

/// What prediction reads from one part of the events (whole users): targets, churn
/// labels, first event time, purchase histories at the cutoff and now, horizon
/// purchase counts.
#[derive(Debug)]
pub struct PartInputs {
    /// [`ml::targets`] of the horizon after the cutoff.
    targets: DataFrame,
    /// [`ml::churn_labels`] at the cutoff.
    churn: DataFrame,
    /// The part's earliest event time (`None`: no event).
    first_event: Option<i64>,
    /// [`stats::summary_frame`] at the cutoff and at the as-of date, or why not.
    summary_cutoff: stats::Result<DataFrame>,
    summary_now: stats::Result<DataFrame>,
    /// [`stats::holdout_transactions`] of the horizon; empty when they could not be
    /// counted, the summaries then saying why.
    horizon_purchases: Vec<(String, f64)>,
}

/// Computes [`part_inputs`] of every part elsewhere (a cluster), in the parts' order.
pub trait RemoteInputs {
    /// The inputs of each part at `cutoff` and `as_of` (UTC microseconds).
    fn part_inputs(
        &self,
        cutoff: i64,
        as_of: i64,
        unit: TimeUnit,
        churn_window_days: u32,
    ) -> Result<Vec<PartInputs>>;
}

/// The one column of a table that stands for an error.
const ERROR_COLUMN: &str = "__error";
/// The one column of the table of the earliest event time.
const FIRST_EVENT: &str = "first_event";
/// The count column of the horizon purchases' table.
const PURCHASE_DAYS: &str = "purchase_days";
/// Columns and types of the targets, the churn labels and the purchase histories.
const TARGETS: &[(&str, DataType)] = &[
    (USER_ID, DataType::String),
    (ml::PURCHASED, DataType::Boolean),
    (ml::REVENUE, DataType::Float64),
    (ml::ACTIVE, DataType::Boolean),
];
const CHURN: &[(&str, DataType)] = &[
    (USER_ID, DataType::String),
    (ml::CHURNED, DataType::Boolean),
];
const SUMMARY: &[(&str, DataType)] = &[
    (USER_ID, DataType::String),
    ("frequency", DataType::Float64),
    ("recency", DataType::Float64),
    ("t", DataType::Float64),
    ("monetary", DataType::Float64),
    ("first_value", DataType::Float64),
];
/// Tables of [`PartInputs::into_tables`].
const TABLES: usize = 6;

impl PartInputs {
    /// As tables in a fixed order, to send between processes: a result that is an
    /// error becomes a one-row table with one `__error` column holding its message
    /// (Display), and comes back as `stats::Error::Skip(message)` (same Display).
    pub fn into_tables(self) -> Result<Vec<DataFrame>> {
        let error_or = |summary: stats::Result<DataFrame>| {
            summary
                .unwrap_or_else(|e| Column::new(ERROR_COLUMN.into(), [e.to_string()]).into_frame())
        };
        let (users, counts): (Vec<String>, Vec<f64>) = self.horizon_purchases.into_iter().unzip();
        let horizon = DataFrame::new(
            users.len(),
            vec![
                Column::new(USER_ID.into(), users),
                Column::new(PURCHASE_DAYS.into(), counts),
            ],
        )
        .map_err(|e| Error::PartTables(e.to_string()))?;
        Ok(vec![
            self.targets,
            self.churn,
            Column::new(FIRST_EVENT.into(), [self.first_event]).into_frame(),
            error_or(self.summary_cutoff),
            error_or(self.summary_now),
            horizon,
        ])
    }

    /// The inputs back from [`PartInputs::into_tables`]; tables that are not what it
    /// makes (their number, columns or types) are an error.
    pub fn from_tables(tables: Vec<DataFrame>) -> Result<PartInputs> {
        let Ok([targets, churn, first, cutoff, now, horizon]) =
            <[DataFrame; TABLES]>::try_from(tables)
        else {
            return Err(Error::PartTables(format!("expected {TABLES} tables")));
        };
        check_columns(&targets, "targets", TARGETS)?;
        check_columns(&churn, "churn labels", CHURN)?;
        let first_event = match first.column(FIRST_EVENT).and_then(Column::i64) {
            Ok(times) if first.width() == 1 && times.len() == 1 => times.get(0),
            _ => {
                return Err(Error::PartTables(format!(
                    "the earliest event must be one integer `{FIRST_EVENT}`, found {} rows of {} columns",
                    first.height(),
                    first.width()
                )));
            }
        };
        let (users, counts) = (
            horizon.column(USER_ID).and_then(Column::str),
            horizon.column(PURCHASE_DAYS).and_then(Column::f64),
        );
        let (Ok(users), Ok(counts)) = (users, counts) else {
            return Err(Error::PartTables(format!(
                "the horizon purchases need a text `{USER_ID}` and a float `{PURCHASE_DAYS}`"
            )));
        };
        let horizon_purchases = users
            .iter()
            .zip(counts.iter())
            .map(|pair| match pair {
                (Some(user), Some(count)) => Ok((user.to_string(), count)),
                _ => Err(Error::PartTables(
                    "a horizon purchase count has a missing value".into(),
                )),
            })
            .collect::<Result<_>>()?;
        Ok(PartInputs {
            targets,
            churn,
            first_event,
            summary_cutoff: summary_from(cutoff, "purchase histories at the cutoff")?,
            summary_now: summary_from(now, "purchase histories at the as-of date")?,
            horizon_purchases,
        })
    }
}

/// Whether `table` has `columns` of their types (others may follow).
fn check_columns(table: &DataFrame, what: &str, columns: &[(&str, DataType)]) -> Result<()> {
    for (name, dtype) in columns {
        match table.column(name) {
            Ok(column) if column.dtype() == dtype => {}
            Ok(column) => {
                return Err(Error::PartTables(format!(
                    "`{name}` of the {what} is {}, not {dtype}",
                    column.dtype()
                )));
            }
            Err(_) => {
                return Err(Error::PartTables(format!(
                    "the {what} have no `{name}` column"
                )));
            }
        }
    }
    Ok(())
}

/// A purchase history table, or the error that stands in its place.
fn summary_from(table: DataFrame, what: &str) -> Result<stats::Result<DataFrame>> {
    if let Ok(errors) = table.column(ERROR_COLUMN) {
        let message = errors
            .str()
            .ok()
            .filter(|_| table.width() == 1 && table.height() == 1)
            .and_then(|messages| messages.get(0));
        return match message {
            Some(message) => Ok(Err(stats::Error::Skip(message.to_string()))),
            None => Err(Error::PartTables(format!(
                "the error in place of the {what} is not one text"
            ))),
        };
    }
    check_columns(&table, what, SUMMARY)?;
    Ok(Ok(table))
}

/// Stacks per-user tables of separate parts and sorts them by user.
fn stack_users(mut tables: Vec<DataFrame>, action: &'static str) -> Result<DataFrame> {
    if tables.len() <= 1 {
        return Ok(tables.pop().unwrap_or_default());
    }
    concat(
        tables.into_iter().map(IntoLazy::lazy).collect::<Vec<_>>(),
        UnionArgs::default(),
    )
    .and_then(|all| {
        all.sort([USER_ID], SortMultipleOptions::default())
            .collect()
    })
    .map_err(polars_err(action))
}

/// Reads what prediction needs from one part of the events (whole users): only the
/// columns the labels and purchase summaries need.
pub fn part_inputs(
    part: &LazyFrame,
    cutoff: i64,
    as_of: i64,
    unit: TimeUnit,
    churn_window_days: u32,
) -> Result<PartInputs> {
    use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE};
    let events = part
        .clone()
        .select([col(USER_ID), col(EVENT_TIME), col(EVENT_TYPE), col(AMOUNT)])
        .collect()
        .map_err(polars_err("read a part of the events"))?;
    // The labels' pass over the rows and the purchase histories' (or their
    // group-bys, for events not in user and time order) run side by side.
    let (labels, summaries) = rayon::join(
        || -> Result<_> {
            let labels =
                match ml::targets_and_churn_sorted(&events, cutoff, as_of, churn_window_days)? {
                    Some(labels) => labels,
                    None => (
                        ml::targets(&events, cutoff, as_of)?,
                        ml::churn_labels(&events, cutoff, churn_window_days)?,
                    ),
                };
            let first = events
                .column(EVENT_TIME)
                .and_then(|c| c.cast(&DataType::Int64))
                .map_err(polars_err("read event times"))?
                .i64()
                .map_err(polars_err("read event times"))?
                .min();
            Ok((labels, first))
        },
        || match stats::histories_sorted(&events, cutoff, as_of, unit) {
            Some(histories) => (
                Ok(histories.at_cutoff),
                Ok(histories.now),
                Ok(histories.horizon),
            ),
            None => (
                stats::summary_frame(&events, cutoff, unit),
                stats::summary_frame(&events, as_of, unit),
                stats::holdout_transactions(&events, cutoff, as_of),
            ),
        },
    );
    let ((targets, churn), first_event) = labels?;
    let (summary_cutoff, summary_now, horizon) = summaries;
    Ok(PartInputs {
        targets,
        churn,
        first_event,
        summary_cutoff,
        summary_now,
        // Without purchase columns the counts are missing like the summaries, and
        // the predictors that need them are skipped for the summaries' reason.
        horizon_purchases: horizon.unwrap_or_default(),
    })
}

/// Reads the parts one at a time here, or has `remote` read them, and combines
/// what they hold.
pub(super) fn from_events(
    parts: &[LazyFrame],
    cutoff: i64,
    as_of: i64,
    unit: TimeUnit,
    churn_window_days: u32,
    remote: Option<&dyn RemoteInputs>,
) -> Result<FromEvents> {
    let inputs = match remote {
        Some(remote) => remote.part_inputs(cutoff, as_of, unit, churn_window_days)?,
        // The first part that fails stops the reading.
        None => parts
            .iter()
            .map(|part| part_inputs(part, cutoff, as_of, unit, churn_window_days))
            .collect::<Result<Vec<_>>>()?,
    };
    combine(inputs)
}

/// The parts' inputs as one: tables stacked by user, the earliest event time, and
/// each purchase history, or the first part's reason it has none.
fn combine(parts: Vec<PartInputs>) -> Result<FromEvents> {
    let n = parts.len();
    let (mut targets, mut churn) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut at_cutoff, mut now) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut first_event: Option<i64> = None;
    let mut horizon_purchases = foldhash::HashMap::default();
    for part in parts {
        targets.push(part.targets);
        churn.push(part.churn);
        first_event = match (first_event, part.first_event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        at_cutoff.push(part.summary_cutoff);
        now.push(part.summary_now);
        horizon_purchases.extend(part.horizon_purchases);
    }
    let summary = |frames: Vec<stats::Result<DataFrame>>| -> Result<stats::Result<Summary>> {
        Ok(
            match frames.into_iter().collect::<stats::Result<Vec<_>>>() {
                Ok(frames) => {
                    Summary::from_frame(&stack_users(frames, "combine purchase histories")?)
                }
                Err(e) => Err(e),
            },
        )
    };
    Ok(FromEvents {
        targets: stack_users(targets, "combine the targets")?,
        churn: stack_users(churn, "combine the churn labels")?,
        first_event,
        summary_cutoff: summary(at_cutoff)?,
        summary_now: summary(now)?,
        horizon_purchases,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use userlens_model::time::DAY_MICROS;

    /// Tables as a cluster sends them: each through Parquet.
    pub(crate) fn over_the_wire(tables: Vec<DataFrame>) -> Vec<DataFrame> {
        tables
            .into_iter()
            .map(|mut table| {
                let mut bytes = Vec::new();
                ParquetWriter::new(&mut bytes).finish(&mut table).unwrap();
                ParquetReader::new(std::io::Cursor::new(bytes))
                    .finish()
                    .unwrap()
            })
            .collect()
    }

    /// A part of three users sorted by user and time: `a` buys on days 1 and 3, `b`
    /// on day 12, `c` only views.
    fn part() -> LazyFrame {
        let day = |d: i64| d * DAY_MICROS + 3_600_000_000;
        df! {
            "user_id" => ["a", "a", "a", "b", "b", "c"],
            "event_time" => [day(1), day(3), day(11), day(2), day(12), day(4)],
            "event_type" => ["purchase", "purchase", "view", "view", "purchase", "view"],
            "amount" => [Some(10.0), Some(5.5), None, None, Some(20.0), None],
        }
        .unwrap()
        .lazy()
        .with_column(col("event_time").cast(DataType::Datetime(
            polars::prelude::TimeUnit::Microseconds,
            None,
        )))
    }

    fn inputs() -> PartInputs {
        part_inputs(&part(), 10 * DAY_MICROS, 14 * DAY_MICROS, TimeUnit::Days, 7).unwrap()
    }

    fn assert_same(a: &PartInputs, b: &PartInputs) {
        assert!(a.targets.equals_missing(&b.targets), "{a:?}\n{b:?}");
        assert!(a.churn.equals_missing(&b.churn));
        assert_eq!(a.first_event, b.first_event);
        for (x, y) in [
            (&a.summary_cutoff, &b.summary_cutoff),
            (&a.summary_now, &b.summary_now),
        ] {
            match (x, y) {
                (Ok(x), Ok(y)) => assert!(x.equals_missing(y), "{x}\n{y}"),
                (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
                _ => panic!("{x:?} and {y:?}"),
            }
        }
        assert_eq!(a.horizon_purchases, b.horizon_purchases);
    }

    #[test]
    fn a_part_survives_its_tables() {
        let local = inputs();
        // What the part holds, so the round trip is not of empty tables.
        assert_eq!(local.first_event, Some(DAY_MICROS + 3_600_000_000));
        assert_eq!(local.horizon_purchases, vec![("b".to_string(), 1.0)]);
        assert_eq!(local.targets.height(), 3);
        assert_eq!(local.summary_cutoff.as_ref().unwrap().height(), 1);
        assert_eq!(local.summary_now.as_ref().unwrap().height(), 2);
        let back = PartInputs::from_tables(over_the_wire(inputs().into_tables().unwrap())).unwrap();
        assert_same(&local, &back);
    }

    #[test]
    fn an_error_in_place_of_a_summary_keeps_its_message() {
        let column = stats::Error::Column {
            column: "amount",
            problem: "has type bool".into(),
        };
        let polars = stats::Error::Polars {
            action: "summarize purchases".into(),
            source: PolarsError::NoData("nothing".into()),
        };
        let (column_text, polars_text) = (column.to_string(), polars.to_string());
        let sent = PartInputs {
            summary_cutoff: Err(column),
            summary_now: Err(polars),
            first_event: None,
            horizon_purchases: Vec::new(),
            ..inputs()
        };
        let tables = over_the_wire(sent.into_tables().unwrap());
        assert_eq!(tables[3].get_column_names(), ["__error"]);
        let back = PartInputs::from_tables(tables).unwrap();
        assert_eq!(back.first_event, None);
        assert!(back.horizon_purchases.is_empty());
        for (summary, text) in [
            (&back.summary_cutoff, &column_text),
            (&back.summary_now, &polars_text),
        ] {
            match summary {
                Err(stats::Error::Skip(message)) => assert_eq!(message, text),
                other => panic!("{other:?}"),
            }
        }
        // And again: the message is what it was, not wrapped twice.
        let again = PartInputs::from_tables(over_the_wire(back.into_tables().unwrap())).unwrap();
        assert_eq!(again.summary_cutoff.unwrap_err().to_string(), column_text);
    }

    #[test]
    fn the_first_part_with_an_error_gives_the_reason() {
        let failing = |message: &str, first: Option<i64>, user: &str| PartInputs {
            summary_cutoff: Err(stats::Error::Skip(message.into())),
            first_event: first,
            horizon_purchases: vec![(user.to_string(), 2.0)],
            ..inputs()
        };
        let parts = vec![
            PartInputs {
                first_event: None,
                ..inputs()
            },
            failing("second", Some(7), "x"),
            failing("third", Some(5), "y"),
        ];
        let parts = parts
            .into_iter()
            .map(|p| PartInputs::from_tables(over_the_wire(p.into_tables().unwrap())).unwrap())
            .collect();
        let combined = combine(parts).unwrap();
        assert_eq!(combined.summary_cutoff.unwrap_err().to_string(), "second");
        assert!(combined.summary_now.is_ok());
        assert_eq!(combined.first_event, Some(5));
        let mut horizon: Vec<_> = combined.horizon_purchases.into_iter().collect();
        horizon.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            horizon,
            [("b".to_string(), 1.0), ("x".into(), 2.0), ("y".into(), 2.0)]
        );
        assert_eq!(combined.targets.height(), 9);
    }

    #[test]
    fn malformed_tables_are_an_error() {
        let tables = || inputs().into_tables().unwrap();
        let error = |tables: Vec<DataFrame>| match PartInputs::from_tables(tables) {
            Err(Error::PartTables(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(error(Vec::new()), "expected 6 tables");
        let mut short = tables();
        short.pop();
        assert_eq!(error(short), "expected 6 tables");
        let mut long = tables();
        long.push(DataFrame::default());
        assert_eq!(error(long), "expected 6 tables");

        let with = |i: usize, table: DataFrame| {
            let mut tables = tables();
            tables[i] = table;
            tables
        };
        let mut swapped = tables();
        swapped.swap(0, 1);
        assert_eq!(error(swapped), "the targets have no `purchased` column");
        let text_revenue = tables()[0]
            .clone()
            .lazy()
            .with_column(col("revenue").cast(DataType::String))
            .collect()
            .unwrap();
        assert_eq!(
            error(with(0, text_revenue)),
            "`revenue` of the targets is str, not f64"
        );
        let two_times = df!("first_event" => [Some(1i64), None]).unwrap();
        assert_eq!(
            error(with(2, two_times)),
            "the earliest event must be one integer `first_event`, found 2 rows of 1 columns"
        );
        let text_time = df!("first_event" => ["1"]).unwrap();
        assert!(error(with(2, text_time)).starts_with("the earliest event"));
        let two_errors = df!("__error" => ["a", "b"]).unwrap();
        assert_eq!(
            error(with(3, two_errors)),
            "the error in place of the purchase histories at the cutoff is not one text"
        );
        let no_t = tables()[4].drop("t").unwrap();
        assert_eq!(
            error(with(4, no_t)),
            "the purchase histories at the as-of date have no `t` column"
        );
        let missing = df!("user_id" => ["a"], "purchase_days" => [None::<f64>]).unwrap();
        assert_eq!(
            error(with(5, missing)),
            "a horizon purchase count has a missing value"
        );
        let counted = df!("user_id" => ["a"], "purchase_days" => [1i64]).unwrap();
        assert!(error(with(5, counted)).starts_with("the horizon purchases need"));
        // Every table as made is accepted.
        assert!(PartInputs::from_tables(tables()).is_ok());
    }
}
