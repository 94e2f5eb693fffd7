//! Stable persona ids: this run's personas matched to a previous run's, so a persona
//! keeps its id from night to night, and its label while the label still holds.

use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;
use polars::prelude::*;
use serde::Serialize;
use userlens_model::columns::{LABEL, PERSONA_ID};

use crate::error::{Error, Result};
use crate::{PersonaModel, Profile, label};

/// How this run's personas map onto a previous run's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matching {
    /// Per current persona (in the current model's order): its stable id.
    pub ids: Vec<u32>,
    /// Per current persona: its label, told apart from the others by its stable id
    /// where they are alike.
    pub labels: Vec<String>,
    /// Pairs `(previous id, current id before matching, centroid distance)`.
    pub matched: Vec<(u32, u32, f64)>,
    /// Stable ids given to personas that match none of the previous run's.
    pub new: Vec<u32>,
    /// Triples `(id, current id before matching, centroid distance)` of personas
    /// that match none of the previous run's but one another run had, whose id
    /// they take back; by id.
    pub revived: Vec<(u32, u32, f64)>,
    /// Previous ids that no current persona took.
    pub retired: Vec<u32>,
    /// The highest id given so far, retired ones included.
    pub highest_id: u32,
}

/// Distances are compared as integers by the assignment solver; this keeps six
/// decimals, far below any distance that matters.
const DISTANCE_SCALE: f64 = 1e6;

/// Previous centroids expressed in the current model's scaled space, on the
/// features both models share and take on the same scale (a users-table attribute
/// is logged or not as its values are skewed): `(current feature index, previous
/// centroids)`.
fn previous_in_current_space(
    previous: &PersonaModel,
    current: &PersonaModel,
) -> (Vec<usize>, Vec<Vec<f64>>) {
    let logged = |model: &PersonaModel, name: &String| model.log_transformed.contains(name);
    let mut shared = Vec::new();
    for (j, name) in current.features.iter().enumerate() {
        if let Some(p) = previous.features.iter().position(|f| f == name)
            && logged(previous, name) == logged(current, name)
        {
            shared.push((j, p));
        }
    }
    let centroids = previous
        .centroids
        .iter()
        .map(|c| {
            shared
                .iter()
                .map(|&(j, p)| {
                    let transformed = c[p] * previous.scale[p] + previous.center[p];
                    (transformed - current.center[j]) / current.scale[j]
                })
                .collect()
        })
        .collect();
    (shared.into_iter().map(|(j, _)| j).collect(), centroids)
}

/// Users of a previous persona (stable id) now in a current one (id as fitted).
pub type Overlap = [(u32, u32, u64)];

/// Matches personas by the Hungarian assignment on centroid distance in the
/// current scaled space. Pairs further apart than `max_distance` are not matched:
/// that persona has changed too much to keep its id, unless it is the same people
/// (`members`, when both runs' users are known): of the personas left unmatched, a
/// current one that most of a previous one's users are in, and most of whose users
/// were in it, keeps its id. Features drift as time passes (recency grows), so weeks
/// apart the same group of users can sit far from where its centroid was. A persona
/// still unmatched takes back the id of a persona of another run (`retired`, the
/// nearest date first) that the previous run does not have, matched the same way by
/// centroid: a night with fewer personas does not retire ids for good. New ids
/// start above every id the previous and the retired models gave.
pub fn match_personas(
    previous: &PersonaModel,
    retired: &[PersonaModel],
    current: &PersonaModel,
    max_distance: f64,
    members: Option<&Overlap>,
) -> Matching {
    let (features, old) = previous_in_current_space(previous, current);
    let k_new = current.centroids.len();
    let distance = |o: usize, n: usize| -> f64 {
        features
            .iter()
            .enumerate()
            .map(|(s, &j)| (old[o][s] - current.centroids[n][j]).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let mut pairs = Vec::new();
    if !features.is_empty() {
        pairs = assign(old.len(), k_new, &distance, max_distance);
        if let Some(members) = members {
            for (o, n) in same_members(previous, current, members, &pairs) {
                pairs.push((o, n, distance(o, n)));
            }
        }
    }
    let revived = revive(previous, current, retired, &pairs, max_distance);
    let mut ids = vec![0u32; k_new];
    let mut matched = Vec::new();
    for &(o, n, d) in &pairs {
        ids[n] = previous.persona_ids[o];
        matched.push((previous.persona_ids[o], current.persona_ids[n], d));
    }
    for &(id, n, _) in &revived {
        ids[n] = id;
    }
    let given = (retired.iter().chain([previous]))
        .map(PersonaModel::highest_given)
        .max()
        .unwrap_or(0);
    let mut next = given + 1;
    let mut new = Vec::new();
    for id in ids.iter_mut().filter(|id| **id == 0) {
        *id = next;
        new.push(next);
        next += 1;
    }
    // Every label says what sets the persona apart now, a matched one's too (one
    // persona merged into another keeps an id, not a name that no longer fits), but a
    // matched persona keeps the last run's label while it still holds (its terms
    // still set the persona apart), so names do not flap from night to night; labels
    // alike are told apart by stable ids, not the ones fitted with.
    let fresh: Vec<&str> = (0..k_new)
        .map(|n| label::without_id(&current.labels[n], current.persona_ids[n]))
        .collect();
    let mut kept = fresh.clone();
    for &(o, n, _) in &pairs {
        let before = label::without_id(&previous.labels[o], previous.persona_ids[o]);
        let holds = current.label_alternatives.get(n);
        if holds.is_some_and(|labels| labels.iter().any(|l| l == before)) {
            kept[n] = before;
        }
    }
    // A kept label another persona also has gives way to the fresh one, until none
    // does (each round takes one back: the fresh labels are unique among themselves).
    let mut bases = kept;
    while let Some(n) = (0..k_new)
        .find(|&n| bases[n] != fresh[n] && (0..k_new).any(|m| m != n && bases[m] == bases[n]))
    {
        bases[n] = fresh[n];
    }
    let labels = (0..k_new)
        .map(|n| match bases.iter().filter(|b| **b == bases[n]).count() {
            1 => bases[n].to_string(),
            _ => label::with_id(bases[n], ids[n]),
        })
        .collect();
    let retired = previous
        .persona_ids
        .iter()
        .copied()
        .filter(|id| {
            !pairs
                .iter()
                .any(|&(o, _, _)| previous.persona_ids[o] == *id)
        })
        .collect();
    Matching {
        ids,
        labels,
        matched,
        new,
        revived: {
            let mut revived: Vec<_> = (revived.iter())
                .map(|&(id, n, d)| (id, current.persona_ids[n], d))
                .collect();
            revived.sort_by_key(|r| r.0);
            revived
        },
        retired,
        highest_id: next - 1,
    }
}

/// The Hungarian assignment of `k_old` previous personas to `k_new` current ones on
/// `distance(old, new)`: pairs `(old, new, distance)` no further apart than
/// `max_distance`.
fn assign(
    k_old: usize,
    k_new: usize,
    distance: &dyn Fn(usize, usize) -> f64,
    max_distance: f64,
) -> Vec<(usize, usize, f64)> {
    if k_old == 0 || k_new == 0 {
        return Vec::new();
    }
    // The solver needs no more rows than columns: put the smaller side in rows.
    let old_rows = k_old <= k_new;
    let (rows, cols) = if old_rows {
        (k_old, k_new)
    } else {
        (k_new, k_old)
    };
    let weights = Matrix::from_fn(rows, cols, |(r, c)| {
        let d = if old_rows {
            distance(r, c)
        } else {
            distance(c, r)
        };
        (d * DISTANCE_SCALE).round().min(i64::MAX as f64 / 1e3) as i64
    });
    let (_, assignment) = kuhn_munkres_min(&weights);
    let mut pairs = Vec::new();
    for (r, &c) in assignment.iter().enumerate() {
        let (o, n) = if old_rows { (r, c) } else { (c, r) };
        let d = distance(o, n);
        if d <= max_distance {
            pairs.push((o, n, d));
        }
    }
    pairs
}

/// Current personas that `pairs` leaves unmatched, matched as the previous run's
/// are to the personas of `retired` models (other runs', nearest date first) whose
/// ids the previous run does not have: a persona that a night with fewer personas
/// merged away takes its id back when it returns. Triples `(id, current index,
/// distance)`; of an id in several models, the first model's centroid counts.
fn revive(
    previous: &PersonaModel,
    current: &PersonaModel,
    retired: &[PersonaModel],
    pairs: &[(usize, usize, f64)],
    max_distance: f64,
) -> Vec<(u32, usize, f64)> {
    let open: Vec<usize> = (0..current.centroids.len())
        .filter(|n| !pairs.iter().any(|p| p.1 == *n))
        .collect();
    // (id, features of the current model it shares, centroid in the current space)
    let mut gone: Vec<(u32, Vec<usize>, Vec<f64>)> = Vec::new();
    for model in retired {
        let (features, centroids) = previous_in_current_space(model, current);
        if features.is_empty() {
            continue;
        }
        for (i, centroid) in centroids.into_iter().enumerate() {
            let id = model.persona_ids[i];
            if !previous.persona_ids.contains(&id) && !gone.iter().any(|g| g.0 == id) {
                gone.push((id, features.clone(), centroid));
            }
        }
    }
    let distance = |g: usize, o: usize| -> f64 {
        let (_, features, centroid) = &gone[g];
        (features.iter().zip(centroid))
            .map(|(&j, c)| (c - current.centroids[open[o]][j]).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    assign(gone.len(), open.len(), &distance, max_distance)
        .into_iter()
        .map(|(g, o, d)| (gone[g].0, open[o], d))
        .collect()
}

/// Pairs `(previous index, current index)` of personas not in `pairs` whose users
/// are mostly each other's: more than half of the previous one's users (of those in
/// both runs) are in the current one, and more than half of its are from the
/// previous one. Each persona is in at most one such pair.
fn same_members(
    previous: &PersonaModel,
    current: &PersonaModel,
    members: &Overlap,
    pairs: &[(usize, usize, f64)],
) -> Vec<(usize, usize)> {
    let total = |pick: &dyn Fn(&(u32, u32, u64)) -> bool| -> u64 {
        members.iter().filter(|m| pick(m)).map(|m| m.2).sum()
    };
    let mut found = Vec::new();
    for &(old_id, new_id, users) in members {
        let (Some(o), Some(n)) = (
            previous.persona_ids.iter().position(|&p| p == old_id),
            current.persona_ids.iter().position(|&p| p == new_id),
        ) else {
            continue;
        };
        if pairs.iter().any(|&(po, pn, _)| po == o || pn == n) {
            continue;
        }
        let from_old = total(&|m| m.0 == old_id);
        let into_new = total(&|m| m.1 == new_id);
        if 2 * users > from_old && 2 * users > into_new {
            found.push((o, n));
        }
    }
    found.sort_unstable();
    found
}

/// Gives the personas of a run that has no previous run to match (the first night,
/// or a night backfilled before every other) the ids of the `past` runs' personas
/// they match, as [`match_personas`] revives retired ones, and new ids above every
/// id those runs gave.
pub fn match_past(
    profile: &mut Profile,
    past: &[PersonaModel],
    max_distance: f64,
) -> Result<Matching> {
    let none = PersonaModel {
        k: 0,
        centroids: Vec::new(),
        persona_ids: Vec::new(),
        labels: Vec::new(),
        label_alternatives: Vec::new(),
        highest_id: 0,
        ..profile.model.clone()
    };
    let matching = match_personas(&none, past, &profile.model, max_distance, None);
    apply_matching(profile, &matching)?;
    Ok(matching)
}

/// Rewrites the ids and labels of a profile by a matching; personas are then listed
/// by id.
pub fn apply_matching(profile: &mut Profile, matching: &Matching) -> Result<()> {
    let model = &mut profile.model;
    let lookup = |id: u32| model.persona_ids.iter().position(|&p| p == id);
    let remap = |df: &DataFrame| -> Result<DataFrame> {
        let ids = df
            .column(PERSONA_ID)
            .and_then(|c| c.u32().cloned())
            .map_err(|source| Error::Polars {
                context: "read persona ids".into(),
                source,
            })?;
        let mut new_ids = Vec::with_capacity(ids.len());
        let mut new_labels = Vec::with_capacity(ids.len());
        for id in ids.iter() {
            let index = id.and_then(lookup);
            new_ids.push(index.map(|i| matching.ids[i]));
            new_labels.push(index.map(|i| matching.labels[i].clone()));
        }
        let mut out = df.clone();
        out.with_column(Column::new(PERSONA_ID.into(), new_ids))
            .and_then(|o| o.with_column(Column::new(LABEL.into(), new_labels)))
            .map_err(|source| Error::Polars {
                context: "relabel personas".into(),
                source,
            })?;
        Ok(out)
    };
    profile.assignments = remap(&profile.assignments)?;
    profile.personas = remap(&profile.personas)?
        .sort([PERSONA_ID], SortMultipleOptions::default())
        .map_err(|source| Error::Polars {
            context: "sort personas".into(),
            source,
        })?;
    // Reorder the model by stable id too, so its centroids line up with the table.
    let mut order: Vec<usize> = (0..model.persona_ids.len()).collect();
    order.sort_by_key(|&i| matching.ids[i]);
    model.centroids = order.iter().map(|&i| model.centroids[i].clone()).collect();
    model.persona_ids = order.iter().map(|&i| matching.ids[i]).collect();
    model.labels = order.iter().map(|&i| matching.labels[i].clone()).collect();
    let alternatives = std::mem::take(&mut model.label_alternatives);
    model.label_alternatives = (order.iter())
        .filter_map(|&i| alternatives.get(i).cloned())
        .collect();
    model.highest_id = matching.highest_id;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    fn model(centroids: Vec<Vec<f64>>, labels: &[&str]) -> PersonaModel {
        PersonaModel {
            k: centroids.len(),
            algorithm: Algorithm::KMeans,
            features: vec!["a".into(), "b".into()],
            log_transformed: vec![],
            components: 2,
            center: vec![0.0, 0.0],
            scale: vec![1.0, 1.0],
            impute: vec![0.0, 0.0],
            persona_ids: (1..=centroids.len() as u32).collect(),
            centroids,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            inertia: 0.0,
            silhouette: None,
            calinski_harabasz: None,
            davies_bouldin: None,
            dropped_constant: vec![],
            families_left_out: vec![],
            family_weights: vec![],
            highest_id: 0,
            label_alternatives: vec![],
        }
    }

    #[test]
    fn a_feature_logged_in_one_run_only_is_not_compared() {
        let previous = model(vec![vec![0.0, 1.0], vec![1.0, 0.0]], &["a", "b"]);
        let mut current = previous.clone();
        assert_eq!(previous_in_current_space(&previous, &current).0, [0, 1]);
        current.log_transformed = vec!["b".into()];
        let (shared, centroids) = previous_in_current_space(&previous, &current);
        assert_eq!(shared, [0]);
        assert_eq!(centroids, [vec![0.0], vec![1.0]]);
    }

    #[test]
    fn a_model_whose_parts_disagree_is_unusable() {
        let good = model(vec![vec![0.0, 1.0], vec![1.0, 0.0]], &["a", "b"]);
        assert_eq!(good.unusable(), None);
        type Break = fn(&mut PersonaModel) -> Option<()>;
        let broken: [(&str, Break); 6] = [
            ("a short centroid", |m: &mut PersonaModel| {
                m.centroids[1].pop().map(|_| ())
            }),
            ("a lost id", |m: &mut PersonaModel| {
                m.persona_ids.pop().map(|_| ())
            }),
            ("a repeated id", |m: &mut PersonaModel| {
                m.persona_ids[1] = m.persona_ids[0];
                Some(())
            }),
            ("an id of 0", |m: &mut PersonaModel| {
                m.persona_ids[0] = 0;
                Some(())
            }),
            ("no room for new ids", |m: &mut PersonaModel| {
                m.highest_id = u32::MAX;
                Some(())
            }),
            ("a scale that is no number", |m: &mut PersonaModel| {
                m.scale[0] = f64::NAN;
                Some(())
            }),
        ];
        for (what, break_it) in broken {
            let mut m = good.clone();
            break_it(&mut m);
            assert!(m.unusable().is_some(), "{what}");
        }
    }

    #[test]
    fn keeps_ids_when_personas_reorder() {
        let previous = model(
            vec![vec![0.0, 0.0], vec![5.0, 5.0], vec![-5.0, 5.0]],
            &["x", "y", "z"],
        );
        // the same personas, listed in another order and slightly moved
        let current = model(
            vec![vec![5.1, 4.9], vec![-5.0, 5.2], vec![0.1, 0.0]],
            &["p", "q", "r"],
        );
        let m = match_personas(&previous, &[], &current, 2.0, None);
        assert_eq!(m.ids, [2, 3, 1]);
        // Named for what sets each apart now: a persona that changed into another
        // kind keeps its id, not a name that no longer fits.
        assert_eq!(m.labels, ["p", "q", "r"]);
        assert!(m.new.is_empty() && m.retired.is_empty());
    }

    #[test]
    fn a_persona_back_after_a_night_without_it_takes_its_id_back() {
        // Three personas, then a night that merged the third away (highest id 3).
        let three = model(
            vec![vec![0.0, 0.0], vec![5.0, 5.0], vec![-5.0, 5.0]],
            &["x", "y", "z"],
        );
        let mut two = model(vec![vec![0.0, 0.0], vec![5.0, 5.0]], &["x", "y"]);
        two.highest_id = 3;
        // It is back, with one persona no run had.
        let current = model(
            vec![
                vec![-5.1, 5.0],
                vec![0.0, 0.1],
                vec![5.0, 4.9],
                vec![20.0, -20.0],
            ],
            &["p", "q", "r", "s"],
        );
        let m = match_personas(&two, &[two.clone(), three.clone()], &current, 2.0, None);
        assert_eq!(m.ids, [3, 1, 2, 4]);
        assert_eq!(m.new, [4]);
        assert_eq!(m.revived.len(), 1);
        assert_eq!((m.revived[0].0, m.revived[0].1), (3, 1));
        assert_eq!(m.highest_id, 4);
        // Without the earlier run, the third is new.
        let m = match_personas(&two, &[], &current, 2.0, None);
        assert_eq!(m.ids, [4, 1, 2, 5]);
        // A night with no run before it takes back the ids of the runs after it.
        let table = || {
            let ids: Vec<u32> = vec![1, 2, 3, 4];
            DataFrame::new(
                4,
                vec![
                    Column::new(PERSONA_ID.into(), ids),
                    Column::new(LABEL.into(), ["p", "q", "r", "s"]),
                ],
            )
            .unwrap()
        };
        let mut fitted = Profile {
            assignments: table(),
            personas: table(),
            k_selection: DataFrame::empty(),
            model: current,
        };
        let matching = match_past(&mut fitted, &[two, three], 2.0).unwrap();
        assert_eq!(matching.ids, [3, 1, 2, 4]);
        assert_eq!(
            (matching.revived.len(), matching.new.as_slice()),
            (3, [4].as_slice())
        );
        assert_eq!(fitted.model.persona_ids, [1, 2, 3, 4]);
        assert_eq!(fitted.model.centroids[2], [-5.1, 5.0]);
    }

    #[test]
    fn new_ids_start_above_every_id_taken_back() {
        // A record from before `highest_id` was kept: only its personas' ids.
        let old = model(
            vec![vec![0.0, 0.0], vec![5.0, 5.0], vec![-5.0, 5.0]],
            &["x", "y", "z"],
        );
        assert_eq!((old.highest_id, old.highest_given()), (0, 3));
        let none = PersonaModel {
            k: 0,
            centroids: vec![],
            persona_ids: vec![],
            labels: vec![],
            ..old.clone()
        };
        let current = model(vec![vec![0.1, 0.0], vec![30.0, 30.0]], &["p", "q"]);
        let m = match_personas(&none, &[old], &current, 2.0, None);
        assert_eq!(m.ids, [1, 4]);
        assert_eq!((m.new.as_slice(), m.highest_id), ([4].as_slice(), 4));
    }

    #[test]
    fn a_matched_persona_keeps_its_last_label_while_it_holds() {
        let previous = model(
            vec![vec![0.0, 0.0], vec![5.0, 5.0], vec![-5.0, 5.0]],
            &["garden · sports", "regulars", "night owl"],
        );
        let mut current = model(
            vec![vec![0.1, 0.0], vec![5.0, 5.1], vec![-5.0, 5.1]],
            &["recent regulars", "high-value regulars", "typical users"],
        );
        let names = |list: &[&str]| list.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        current.label_alternatives = vec![
            // Still true of persona 1: it keeps its name.
            names(&[
                "recent regulars",
                "garden · sports",
                "recent regulars · garden",
            ]),
            // Its last label is still true of persona 2, and no other persona has it.
            names(&["high-value regulars", "regulars"]),
            // "night owl" no longer holds: the fresh label.
            names(&["typical users"]),
        ];
        let m = match_personas(&previous, &[], &current, 2.0, None);
        assert_eq!(m.ids, [1, 2, 3]);
        assert_eq!(m.labels, ["garden · sports", "regulars", "typical users"]);
        // Of two that would keep one label, the first takes its fresh one back.
        let previous = model(vec![vec![0.0, 0.0], vec![5.0, 5.0]], &["books", "books"]);
        let mut current = model(vec![vec![0.0, 0.1], vec![5.0, 5.1]], &["a", "b"]);
        current.label_alternatives = vec![names(&["a", "books"]), names(&["b", "books"])];
        let m = match_personas(&previous, &[], &current, 2.0, None);
        assert_eq!(m.labels, ["a", "books"]);
        // ...and no fresh label taken back is another's kept one.
        let previous = model(
            vec![vec![0.0, 0.0], vec![5.0, 5.0], vec![-5.0, 5.0]],
            &["searchers", "searchers", "books"],
        );
        let mut current = model(
            vec![vec![0.0, 0.1], vec![5.0, 5.1], vec![-5.0, 5.1]],
            &["night owl", "books", "searchers"],
        );
        current.label_alternatives = vec![
            names(&["night owl", "searchers"]),
            names(&["books", "searchers"]),
            names(&["searchers", "books"]),
        ];
        let m = match_personas(&previous, &[], &current, 2.0, None);
        let mut unique = m.labels.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "{:?}", m.labels);
        assert!(
            m.labels.iter().all(|l| !l.contains("(persona")),
            "{:?}",
            m.labels
        );
    }

    #[test]
    fn a_new_persona_gets_a_new_id_and_a_gone_one_is_retired() {
        let previous = model(vec![vec![0.0, 0.0], vec![5.0, 5.0]], &["x", "y"]);
        let current = model(
            vec![vec![0.0, 0.1], vec![20.0, 20.0], vec![-9.0, 0.0]],
            &["x", "far", "other"],
        );
        let m = match_personas(&previous, &[], &current, 2.0, None);
        assert_eq!(m.ids, [1, 3, 4]);
        assert_eq!(m.labels, ["x", "far", "other"]);
        assert_eq!(m.new, [3, 4]);
        assert_eq!(m.retired, [2]);
    }

    #[test]
    fn a_new_persona_is_told_apart_by_its_stable_id() {
        let previous = model(vec![vec![0.0, 0.0], vec![5.0, 5.0]], &["x", "y"]);
        // Fitted as personas 1 to 3, the last two told apart by those ids.
        let current = model(
            vec![vec![0.0, 0.1], vec![20.0, 20.0], vec![-9.0, 0.0]],
            &["x", "y (persona 2)", "y (persona 3)"],
        );
        let m = match_personas(&previous, &[], &current, 2.0, None);
        assert_eq!(m.ids, [1, 3, 4]);
        assert_eq!(m.labels, ["x", "y (persona 3)", "y (persona 4)"]);
    }

    #[test]
    fn fewer_personas_than_before() {
        let previous = model(
            vec![vec![0.0, 0.0], vec![5.0, 5.0], vec![9.0, 9.0]],
            &["x", "y", "z"],
        );
        let current = model(vec![vec![9.0, 9.1], vec![0.0, 0.0]], &["a", "x"]);
        let m = match_personas(&previous, &[], &current, 2.0, None);
        assert_eq!(m.ids, [3, 1]);
        assert_eq!(m.retired, [2]);
        assert_eq!(m.highest_id, 3);
    }

    #[test]
    fn a_retired_id_is_never_given_again() {
        // Ids 1 and 3 stand; 2 and 4 were retired on earlier nights.
        let mut previous = model(vec![vec![0.0, 0.0], vec![5.0, 5.0]], &["x", "y"]);
        previous.persona_ids = vec![1, 3];
        previous.highest_id = 4;
        let current = model(
            vec![vec![0.0, 0.1], vec![5.0, 5.0], vec![-9.0, 0.0]],
            &["x", "y", "new"],
        );
        let m = match_personas(&previous, &[], &current, 2.0, None);
        assert_eq!(m.ids, [1, 3, 5]);
        assert_eq!((m.new.as_slice(), m.highest_id), ([5].as_slice(), 5));
    }
}
