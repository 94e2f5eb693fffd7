//! From night to night: this run's personas matched to the last good run's, so ids
//! and labels carry over, and where the users who are in both runs moved.

use polars::prelude::*;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use userlens_model::columns::{PERSONA_ID, USER_ID};

use crate::error::{Result, WhileDoing};
use crate::{Matching, PersonaModel, Profile, adjusted_rand_index, apply_matching, match_personas};

/// Centroids further apart than this (in standard deviations, over all features)
/// are different personas, whatever the assignment says.
pub const MAX_MATCH_DISTANCE: f64 = 2.0;

/// How this run's personas relate to a previous run's.
#[derive(Debug, Clone)]
pub struct Stability {
    /// What the run record says about it.
    pub summary: StabilitySummary,
    /// `from_persona, to_persona, users, from_label, to_label` for the users in both
    /// runs; `None` without the previous run's assignments.
    pub migration: Option<DataFrame>,
}

/// The run record's stability summary. The last three fields are known only with
/// the previous run's assignments, and only then written.
#[derive(Debug, Clone, PartialEq)]
pub struct StabilitySummary {
    /// Personas that kept a previous id.
    pub matched: usize,
    /// Ids given to personas that match none of the previous run's.
    pub new_personas: Vec<u32>,
    /// Ids of earlier runs' personas, not the previous run's, taken back.
    pub revived_personas: Vec<u32>,
    /// Previous ids that no persona took.
    pub retired_personas: Vec<u32>,
    /// Users assigned in both runs.
    pub users_in_both: Option<u64>,
    /// Adjusted Rand index of the two assignments on the users in both runs; `None`
    /// when there are none.
    pub adjusted_rand_index: Option<f64>,
    /// Users in both runs whose persona changed.
    pub users_moved: Option<u64>,
}

impl StabilitySummary {
    /// The summary of a matching, before the users in both runs are known.
    pub fn of(matching: &Matching) -> StabilitySummary {
        StabilitySummary {
            matched: matching.matched.len(),
            new_personas: matching.new.clone(),
            revived_personas: matching.revived.iter().map(|r| r.0).collect(),
            retired_personas: matching.retired.clone(),
            users_in_both: None,
            adjusted_rand_index: None,
            users_moved: None,
        }
    }
}

/// Written by hand because `adjusted_rand_index` is written, as null when there is
/// none, whenever `users_in_both` is: skipping each `None` field on its own would
/// drop that null.
impl Serialize for StabilitySummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let compared = self.users_in_both.is_some();
        let mut s =
            serializer.serialize_struct("StabilitySummary", if compared { 7 } else { 4 })?;
        s.serialize_field("matched", &self.matched)?;
        s.serialize_field("new_personas", &self.new_personas)?;
        s.serialize_field("revived_personas", &self.revived_personas)?;
        s.serialize_field("retired_personas", &self.retired_personas)?;
        if compared {
            s.serialize_field("users_in_both", &self.users_in_both)?;
            s.serialize_field("adjusted_rand_index", &self.adjusted_rand_index)?;
            s.serialize_field("users_moved", &self.users_moved)?;
        }
        s.end()
    }
}

/// Matches `profile`'s personas to the previous run's model (pairs further apart
/// than `max_match_distance` are not matched), rewrites its ids and labels, and,
/// given the previous run's assignments, tells where the users in both runs moved.
pub fn stabilise(
    previous_model: &PersonaModel,
    retired: &[PersonaModel],
    previous_assignments: Option<&DataFrame>,
    profile: &mut Profile,
    max_match_distance: f64,
) -> Result<Stability> {
    // Who is where, by the previous run's stable ids and this run's fitted ones.
    let members = match previous_assignments {
        Some(before) => Some(overlap(&migration(before, &profile.assignments)?.0)?),
        None => None,
    };
    let matching = match_personas(
        previous_model,
        retired,
        &profile.model,
        max_match_distance,
        members.as_deref(),
    );
    apply_matching(profile, &matching)?;
    let mut summary = StabilitySummary::of(&matching);
    let migration = match previous_assignments {
        Some(before) => {
            let (table, ari, common) = migration(before, &profile.assignments)?;
            summary.users_in_both = Some(common);
            summary.adjusted_rand_index = ari;
            summary.users_moved = Some(moved(&table)?);
            Some(with_labels(table, previous_model, &profile.model)?)
        }
        None => None,
    };
    Ok(Stability { summary, migration })
}

/// A migration table's rows as `(from, to, users)`.
fn overlap(table: &DataFrame) -> Result<Vec<(u32, u32, u64)>> {
    let context = || "read the personas' shared users".to_string();
    let ids = |name: &str| -> Result<Vec<Option<u32>>> {
        Ok(table
            .column(name)
            .while_doing(context)?
            .u32()
            .while_doing(context)?
            .iter()
            .collect())
    };
    let users: Vec<Option<u64>> = (table.column("users").while_doing(context)?)
        .u64()
        .while_doing(context)?
        .iter()
        .collect();
    Ok(ids("from_persona")?
        .into_iter()
        .zip(ids("to_persona")?)
        .zip(users)
        .filter_map(|((from, to), users)| Some((from?, to?, users?)))
        .collect())
}

/// `from_persona, to_persona, users` for users in both assignments, the adjusted
/// Rand index of the two on them, and how many they are.
fn migration(before: &DataFrame, after: &DataFrame) -> Result<(DataFrame, Option<f64>, u64)> {
    let context = || "compare the persona assignments with the previous run's".to_string();
    let pick = |df: &DataFrame, alias: &str| {
        df.clone().lazy().select([
            col(USER_ID),
            col(PERSONA_ID).cast(DataType::UInt32).alias(alias),
        ])
    };
    let joined = pick(before, "from_persona")
        .inner_join(pick(after, "to_persona"), col(USER_ID), col(USER_ID))
        .sort([USER_ID], SortMultipleOptions::default())
        .collect()
        .while_doing(context)?;
    let ids = |name: &str| -> Result<UInt32Chunked> {
        let column = joined.column(name).while_doing(context)?;
        Ok(column.u32().while_doing(context)?.clone())
    };
    // Users with a persona in both runs, each pair kept together.
    let (from, to): (Vec<u32>, Vec<u32>) = (ids("from_persona")?.iter())
        .zip(ids("to_persona")?.iter())
        .filter_map(|(a, b)| a.zip(b))
        .unzip();
    let ari = (!from.is_empty()).then(|| adjusted_rand_index(&from, &to));
    let table = joined
        .lazy()
        .group_by([col("from_persona"), col("to_persona")])
        .agg([len().cast(DataType::UInt64).alias("users")])
        .sort(
            ["from_persona", "to_persona"],
            SortMultipleOptions::default(),
        )
        .collect()
        .while_doing(context)?;
    Ok((table, ari, from.len() as u64))
}

/// The migration table with each persona's label: the previous run's for
/// `from_persona` (a retired persona is named only there), this run's for `to_persona`.
fn with_labels(
    mut table: DataFrame,
    previous: &PersonaModel,
    current: &PersonaModel,
) -> Result<DataFrame> {
    let context = || "name the personas of the migration table".to_string();
    let label = |model: &PersonaModel, id: Option<u32>| {
        let at = model.persona_ids.iter().position(|&p| Some(p) == id)?;
        model.labels.get(at).cloned()
    };
    let labels = |column: &str, model: &PersonaModel| -> Result<Column> {
        let ids = table.column(column).while_doing(context)?;
        let names: Vec<Option<String>> = ids
            .u32()
            .while_doing(context)?
            .iter()
            .map(|id| label(model, id))
            .collect();
        Ok(Column::new(
            column.replace("_persona", "_label").into(),
            names,
        ))
    };
    let (from, to) = (
        labels("from_persona", previous)?,
        labels("to_persona", current)?,
    );
    table.with_column(from).while_doing(context)?;
    table.with_column(to).while_doing(context)?;
    Ok(table)
}

/// Users of the migration table whose persona changed.
fn moved(migration: &DataFrame) -> Result<u64> {
    let context = || "count the users who changed persona".to_string();
    let from = migration.column("from_persona").while_doing(context)?;
    let to = migration.column("to_persona").while_doing(context)?;
    let users = migration.column("users").while_doing(context)?;
    let (from, to, users) = (
        from.u32().while_doing(context)?,
        to.u32().while_doing(context)?,
        users.u64().while_doing(context)?,
    );
    Ok((0..migration.height())
        .filter(|&i| from.get(i) != to.get(i))
        .filter_map(|i| users.get(i))
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KChoice, ProfileParams, profile};

    fn assignments(users: &[&str], personas: &[u32]) -> DataFrame {
        df!(USER_ID => users, PERSONA_ID => personas).unwrap()
    }

    #[test]
    fn migration_counts_the_users_in_both_runs_by_persona_pair() {
        // d left, e is new; b moved from 1 to 2 and c from 2 to 1
        let before = assignments(&["a", "b", "c", "d"], &[1, 1, 2, 2]);
        let after = assignments(&["e", "c", "b", "a"], &[2, 1, 2, 1]);
        let (table, ari, common) = migration(&before, &after).unwrap();
        assert_eq!(common, 3);
        let expected = df!(
            "from_persona" => [1u32, 1, 2],
            "to_persona" => [1u32, 2, 1],
            "users" => [1u64, 1, 1],
        )
        .unwrap();
        assert!(table.equals_missing(&expected), "{table}");
        assert_eq!(moved(&table).unwrap(), 2);
        // {a, b} {c} against {a, c} {b}
        assert_eq!(ari, Some(adjusted_rand_index(&[1, 1, 2], &[1, 2, 1])));

        // A previous persona lost (an edited artifact): the others stay paired.
        let blank = df!(
            USER_ID => ["a", "b", "c", "d"],
            PERSONA_ID => [None, Some(1u32), Some(1), Some(2)],
        )
        .unwrap();
        let now = assignments(&["a", "b", "c", "d"], &[1, 1, 2, 2]);
        let (_, ari, common) = migration(&blank, &now).unwrap();
        assert_eq!(common, 3);
        // b, c, d: {b, c} {d} against {b} {c, d}, not a's persona beside b's.
        assert_eq!(ari, Some(adjusted_rand_index(&[1, 1, 2], &[1, 2, 2])));
        assert_ne!(ari, Some(1.0));

        let strangers = assignments(&["x"], &[1]);
        let (table, ari, common) = migration(&before, &strangers).unwrap();
        assert_eq!((table.height(), ari, common), (0, None, 0));
        assert_eq!(moved(&table).unwrap(), 0);
    }

    #[test]
    fn the_migration_table_names_retired_personas_by_their_previous_label() {
        let mut previous = two_groups().model;
        previous.persona_ids = vec![1, 7];
        previous.labels = vec!["low spenders".into(), "big spenders".into()];
        let mut current = two_groups().model;
        current.labels = vec!["low spenders".into(), "new big spenders".into()];
        let table = df!(
            "from_persona" => [1u32, 7, 9],
            "to_persona" => [1u32, 2, 3],
            "users" => [5u64, 2, 1],
        )
        .unwrap();
        let named = with_labels(table, &previous, &current).unwrap();
        let texts = |c: &str| -> Vec<Option<String>> {
            let column = named.column(c).unwrap().str().unwrap().clone();
            column.iter().map(|v| v.map(str::to_string)).collect()
        };
        let some = |v: &str| Some(v.to_string());
        // 7 is retired: only the previous run knew it; 9 and 3 are in neither model.
        assert_eq!(
            texts("from_label"),
            [some("low spenders"), some("big spenders"), None]
        );
        assert_eq!(
            texts("to_label"),
            [some("low spenders"), some("new big spenders"), None]
        );
    }

    fn two_groups() -> Profile {
        two_groups_spending(0.0)
    }

    /// Two groups of users, spending `more` each beyond the low and high spenders.
    fn two_groups_spending(more: f64) -> Profile {
        let features = df!(
            USER_ID => ["a", "b", "c", "d", "e", "f"],
            "monetary" => [10.0, 12.0, 11.0, 900.0, 950.0, 1000.0].map(|m| m + more),
        )
        .unwrap();
        let params = ProfileParams {
            k: KChoice::Fixed(2),
            ..ProfileParams::default()
        };
        profile(&features, &params.check().unwrap(), 7).unwrap()
    }

    #[test]
    fn the_same_personas_keep_their_ids_and_nobody_moves() {
        let previous = two_groups();
        let mut current = two_groups();
        let stability = stabilise(
            &previous.model,
            &[],
            Some(&previous.assignments),
            &mut current,
            MAX_MATCH_DISTANCE,
        )
        .unwrap();
        let summary = &stability.summary;
        assert_eq!(summary.matched, 2);
        assert!(summary.new_personas.is_empty() && summary.retired_personas.is_empty());
        assert_eq!(summary.users_in_both, Some(6));
        assert_eq!(summary.adjusted_rand_index, Some(1.0));
        assert_eq!(summary.users_moved, Some(0));
        assert_eq!(stability.migration.unwrap().height(), 2);
        assert_eq!(current.model.labels, previous.model.labels);
    }

    #[test]
    fn the_same_users_keep_their_personas_ids_however_far_the_centroids_moved() {
        let previous = two_groups();
        let shifted = two_groups_spending;
        // Without the users of the run before, only the distance counts: new ids.
        let far = stabilise(
            &previous.model,
            &[],
            None,
            &mut shifted(5000.0),
            MAX_MATCH_DISTANCE,
        );
        assert_eq!(far.unwrap().summary.matched, 0);
        let mut current = shifted(5000.0);
        let stability = stabilise(
            &previous.model,
            &[],
            Some(&previous.assignments),
            &mut current,
            MAX_MATCH_DISTANCE,
        )
        .unwrap();
        assert_eq!(stability.summary.matched, 2);
        assert_eq!(stability.summary.users_moved, Some(0));
        assert_eq!(current.model.labels, previous.model.labels);
        // Half of a persona's users is no majority: the personas are new.
        let mixed = assignments(&["a", "b", "c", "d", "e", "f"], &[1, 1, 2, 1, 1, 2]);
        let stability = stabilise(
            &previous.model,
            &[],
            Some(&mixed),
            &mut shifted(5000.0),
            MAX_MATCH_DISTANCE,
        )
        .unwrap();
        assert_eq!(stability.summary.matched, 0);
    }

    #[test]
    fn the_summary_writes_what_is_known() {
        let previous = two_groups();
        let stability = stabilise(
            &previous.model,
            &[],
            None,
            &mut two_groups(),
            MAX_MATCH_DISTANCE,
        )
        .unwrap();
        assert!(stability.migration.is_none());
        assert_eq!(
            serde_json::to_string(&stability.summary).unwrap(),
            r#"{"matched":2,"new_personas":[],"revived_personas":[],"retired_personas":[]}"#
        );
        let compared = StabilitySummary {
            users_in_both: Some(0),
            users_moved: Some(0),
            ..stability.summary
        };
        assert_eq!(
            serde_json::to_string(&compared).unwrap(),
            r#"{"matched":2,"new_personas":[],"revived_personas":[],"retired_personas":[],"users_in_both":0,"adjusted_rand_index":null,"users_moved":0}"#
        );
    }
}
