//! `features`: events -> one row per user, with drift against the last good run.

use std::path::PathBuf;

use polars::prelude::*;
use userlens_features::{At, RemoteParts};
use userlens_ingest::FileInfo;
use userlens_model::{columns, time};

use super::counted;
use crate::drift;
use crate::record::StageMeta;
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError, Tables};

/// Per-user features, with an optional users table.
pub struct Features;

/// Checked parameters of a features stage.
#[derive(Debug, Clone)]
pub struct FeaturesChecked {
    /// Checked feature parameters.
    pub params: userlens_features::CheckedFeatureParams,
    /// Users table to join.
    pub users: Option<PathBuf>,
    /// The features a later stage asked for at an earlier time.
    pub asked: Option<FeaturesAsked>,
    /// The unit of a loyalty stage that asked for the features at the start of the
    /// last complete period, as the table [`FEATURES_AT_PERIOD_START`].
    pub period_start: Option<userlens_loyalty::Unit>,
}

/// Features a later stage asks for ([`Stage::ask`]) at a time before the as-of date,
/// such as predict at its cutoff: made in the same pass as those at the as-of date,
/// as the table [`FEATURES_AT_CUTOFF`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeaturesAsked {
    /// How long before the as-of date (microseconds).
    pub before: i64,
    /// With the text features ([`userlens_features::TEXT_FEATURES`]).
    pub text: bool,
}

/// The table of the features asked for before the as-of date.
pub const FEATURES_AT_CUTOFF: &str = "features_at_cutoff";

/// The table of the features at the start of the last complete period (numeric
/// only), for the loyalty stage's drivers of staying.
pub const FEATURES_AT_PERIOD_START: &str = "features_at_period_start";

impl FeaturesChecked {
    /// Reads the users table, if there is one, with its fingerprint; refuses one with
    /// two differing rows for a user (at one time), of which the file's order would
    /// pick one. One not there yet is a failure (retried), as is one written while it
    /// was read, which keys nothing.
    pub(crate) fn users_table(&self) -> Result<Option<(DataFrame, FileInfo)>, StageError> {
        let Some(path) = &self.users else {
            return Ok(None);
        };
        let unchanged = userlens_ingest::Unchanged::begin(path);
        let (table, read) = match userlens_ingest::read_table(path) {
            // Checked before the table's content: one half written is not refused.
            Ok(table) => {
                let read = unchanged
                    .and_then(userlens_ingest::Unchanged::check)
                    .map_err(|e| StageError::Failed(Box::new(e)))?;
                (userlens_features::with_dates_typed(table)?, read)
            }
            Err(e) => {
                let e = match &unchanged {
                    Ok(unchanged) => unchanged.or_changed(e),
                    Err(_) => e,
                };
                // Not there yet: another job may still be writing it.
                return Err(match e.is_missing() {
                    true => StageError::Failed(Box::new(e)),
                    false => StageError::of_input(e),
                });
            }
        };
        if let Some(c) = userlens_features::undated_version_column(&table)? {
            return Err(StageError::refused(format!(
                "`{}`: the column `{}` says when each row holds, but its data row {} holds \
                 `{}`: write every value as a date with its year first and the day apart \
                 (`2026-01-05`, `2026/01/05`, with or without a time and offset; not \
                 `20260105`), or rename the column",
                path.display(),
                c.name,
                c.row,
                c.value
            )));
        }
        if let Some((first, second, feature)) = userlens_features::colliding_user_columns(&table) {
            return Err(StageError::refused(format!(
                "`{}`: the columns `{first}` and `{second}` would both be the feature \
                 `{feature}`; rename or drop one",
                path.display()
            )));
        }
        if let Some(why) = userlens_features::unknown_static_column(&table, &self.params) {
            return Err(StageError::refused(format!("`{}`: {why}", path.display())));
        }
        if let Some(c) = userlens_features::conflicting_rows(&table)? {
            let since = c.since.map(|d| format!(" as of {d}")).unwrap_or_default();
            return Err(StageError::refused(format!(
                "`{}`: user `{}` has two rows{since} (data rows {} and {}) that differ; keep one",
                path.display(),
                c.user,
                c.rows.0,
                c.rows.1
            )));
        }
        Ok(Some((table, read)))
    }
}

/// Notes the users-table rows no feature row takes: without an id, or of users
/// with no event before the as-of date.
fn note_unjoined(
    ctx: &mut StageContext<'_>,
    users: &DataFrame,
    features: &DataFrame,
    path: &std::path::Path,
) -> Result<(), StageError> {
    let ids = |df: &DataFrame| -> Result<StringChunked, StageError> {
        let column = df
            .column(columns::USER_ID)
            .map_err(|e| StageError::Failed(e.into()))?;
        let text = column
            .cast(&DataType::String)
            .map_err(|e| StageError::Failed(e.into()))?;
        Ok(text
            .str()
            .map_err(|e| StageError::Failed(e.into()))?
            .clone())
    };
    let (table, profiled) = (ids(users)?, ids(features)?);
    let profiled: std::collections::HashSet<&str> = profiled.iter().flatten().collect();
    let no_id = table
        .iter()
        .filter(|id| id.is_none_or(str::is_empty))
        .count();
    let strangers: std::collections::HashSet<&str> = (table.iter().flatten())
        .filter(|id| !id.is_empty() && !profiled.contains(id))
        .collect();
    let file = path.display();
    if no_id > 0 {
        let rows = counted(no_id, "row", "rows");
        ctx.note(format!("{rows} of `{file}` without a `user_id` left out"));
    }
    if !strangers.is_empty() {
        let users = counted(strangers.len(), "user", "users");
        ctx.note(format!(
            "{users} of `{file}` without an event before the as-of date: not joined"
        ));
    }
    Ok(())
}

impl Stage for Features {
    type Params = userlens_features::FeatureParams;
    type Checked = FeaturesChecked;
    const USES: &'static str = "features";
    const PROVIDES: &'static [&'static str] = &["features"];
    const MAY_PROVIDE: &'static [&'static str] =
        &["drift", FEATURES_AT_CUTOFF, FEATURES_AT_PERIOD_START];
    const REQUIRES: &'static [&'static str] = &["events"];
    const ASKED: &'static [&'static str] = &[FEATURES_AT_CUTOFF, FEATURES_AT_PERIOD_START];
    const COMPARED: &'static [&'static str] = &["features"];

    fn check(params: Self::Params, _: &Declared) -> Result<Self::Checked, Invalid> {
        if params.users.is_none()
            && params
                .static_columns
                .as_ref()
                .is_some_and(|c| !c.is_empty())
        {
            return Err(Invalid::new(
                "`static_columns` names columns of the users table, but no `users` table is \
                 joined",
            ));
        }
        Ok(FeaturesChecked {
            users: params.users.clone(),
            params: params.check().map_err(Invalid::new)?,
            asked: None,
            period_start: None,
        })
    }

    fn asked_key(checked: &Self::Checked) -> String {
        let mut key = checked
            .asked
            .as_ref()
            .map(|asked| format!("{} before, text {}", asked.before, asked.text))
            .unwrap_or_default();
        if let Some(unit) = checked.period_start {
            key.push_str(&format!(
                "; at the start of the last complete {}",
                unit.name()
            ));
        }
        key
    }

    fn input_files(checked: &Self::Checked) -> Vec<PathBuf> {
        checked.users.iter().cloned().collect()
    }

    /// The events only.
    fn table_columns(_: &Self::Checked, _: &str) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    fn run(
        checked: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let events_in = inputs.events()?;
        let events = events_in.parts()?;
        let as_of = match ctx.as_of() {
            Some(t) => t,
            None => default_as_of(&events)?,
        };
        let mut meta = StageMeta {
            as_of: Some(as_of),
            ..StageMeta::default()
        };
        // Read first: a table not there yet is retried, before any other work.
        let users = checked.users_table()?.map(|(table, read)| {
            meta.inputs.push(read);
            table
        });
        let remote = ctx.remote_parts(&events_in);
        // A time-versioned table as known at the as-of date: each user's latest row
        // before it, times from it on unknown. Any other table is joined whole, its
        // dates from the as-of date on unknown.
        let users_now = match &users {
            Some(users) => {
                let cut = userlens_features::users_at_cutoff(users, as_of, &checked.params)?;
                if let (true, Some(path)) = (cut.undated > 0, &checked.users) {
                    let rows = counted(cut.undated, "row", "rows");
                    let file = path.display();
                    ctx.note(format!(
                        "{rows} of `{file}` without a version time (`as_of` or `*_at`) left out"
                    ));
                }
                match cut.versioned {
                    true => Some(cut.table),
                    false => Some(userlens_features::dates_before(users, as_of)?),
                }
            }
            None => None,
        };
        let mut at = vec![At {
            as_of,
            params: &checked.params,
            users: users_now.as_ref(),
        }];
        // Earlier times asked for: predict's cutoff, the loyalty period's start; the
        // users table as known at each (see `users_at_cutoff`).
        let known_at = |time: i64| {
            (users.as_ref())
                .map(|users| userlens_features::users_at_cutoff(users, time, &checked.params))
                .transpose()
        };
        let cutoff = checked.asked.as_ref().map(|asked| as_of - asked.before);
        let period_start = (checked.period_start).map(|unit| unit.last_complete_start(as_of));
        let earlier_params = match checked.asked.as_ref().is_some_and(|asked| asked.text) {
            true => checked.params.clone(),
            false => checked.params.without_text(),
        };
        let start_params = checked.params.without_text();
        let earlier_users = cutoff.map(known_at).transpose()?.flatten();
        let start_users = period_start.map(known_at).transpose()?.flatten();
        for (time, params, known) in [
            (cutoff, &earlier_params, earlier_users.as_ref()),
            (period_start, &start_params, start_users.as_ref()),
        ] {
            if let Some(time) = time {
                at.push(At {
                    as_of: time,
                    params,
                    users: known.map(|u| &u.table),
                });
            }
        }
        let mut built = userlens_features::build_parts_at(
            &events,
            &at,
            remote.as_ref().map(|r| r as &dyn RemoteParts),
        )?
        .into_iter();
        let features = built
            .next()
            .ok_or_else(|| StageError::Run(crate::Error::Usage("no features were built".into())))?;
        if features.height() == 0 {
            return Err(StageError::refused(
                "no user has events before the as-of date: nothing to profile",
            ));
        }
        meta.users = Some(features.height() as u64);
        if let (Some(users), Some(path)) = (&users, &checked.users) {
            note_unjoined(ctx, users, &features, path)?;
        }
        let mut tables = Tables::default();
        if let Some(before) = ctx.previous_table("features") {
            let rows = drift::feature_drift(&before, &features);
            let (added, removed) = drift::schema_change(&before, &features);
            let (kept, previous_kept) = crate::execute::volumes(ctx.rows(), ctx.previous_rows());
            let count = |level| rows.iter().filter(|r| r.level == level).count();
            meta.drift = Some(serde_json::json!({
                "against_run": ctx.previous_run(),
                "events_kept": kept,
                "events_kept_previous": previous_kept,
                "volume_ratio": previous_kept.filter(|&k| k > 0).map(|k| kept as f64 / k as f64),
                "columns_added": added,
                "columns_removed": removed,
                "warnings": count(drift::Level::Warning),
                "alerts": count(drift::Level::Alert),
                "features": rows,
            }));
            tables.insert("drift", drift::drift_table(&rows)?);
        }
        tables.insert("features", features);
        if checked.asked.is_some()
            && let Some(earlier) = built.next()
        {
            tables.insert(FEATURES_AT_CUTOFF, earlier);
        }
        if period_start.is_some()
            && let Some(at_start) = built.next()
        {
            tables.insert(FEATURES_AT_PERIOD_START, at_start);
        }
        Ok(Output { tables, meta })
    }
}

/// Midnight after the last event, so that every event counts (events in parts).
pub(crate) fn default_as_of(events: &[LazyFrame]) -> Result<i64, StageError> {
    let mut last: Option<i64> = None;
    for part in events {
        let max = part
            .clone()
            .select([col(columns::EVENT_TIME).cast(DataType::Int64).max()])
            .collect()?;
        let part_last = max.columns()[0].i64()?.get(0);
        last = last.max(part_last);
    }
    let last = last.ok_or_else(|| StageError::refused("no events: nothing to profile"))?;
    Ok(time::next_midnight(last))
}
