//! `profile`: features -> personas, with ids kept stable against the last good run.

use crate::error::error_chain;
use crate::record::StageMeta;
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError, Tables};

/// Personas by clustering.
pub struct Profile;

impl Stage for Profile {
    type Params = userlens_profile::ProfileParams;
    type Checked = userlens_profile::CheckedProfileParams;
    const USES: &'static str = "profile";
    const PROVIDES: &'static [&'static str] = &["assignments", "personas", "k_selection"];
    const MAY_PROVIDE: &'static [&'static str] = &["migration"];
    const REQUIRES: &'static [&'static str] = &["features"];
    const COMPARED: &'static [&'static str] = &["assignments"];

    fn check(params: Self::Params, _: &Declared) -> Result<Self::Checked, Invalid> {
        // The features stage's table: a name no such table has fails every run.
        let named = (params.features.iter().flatten().map(|n| ("features", n)))
            .chain(params.exclude.iter().map(|n| ("exclude", n)));
        for (key, name) in named {
            if !userlens_model::may_be_feature(name) {
                let hint = userlens_model::nearest_feature(name, &userlens_model::feature_names())
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                return Err(Invalid::new(format!(
                    "`{key}` names `{name}`, which is no feature{hint}"
                )));
            }
        }
        // Personas cluster numbers; text features only describe them.
        if let Some(name) = (params.features.iter().flatten())
            .find(|n| userlens_model::TEXT_FEATURES.contains(&n.as_str()))
        {
            return Err(Invalid::new(format!(
                "`features` names `{name}`, which is text: personas cluster numbers (its \
                 shares, `cat_share_<category>`, are)"
            )));
        }
        if let Some(name) = (params.features.iter().flatten()).find(|n| params.exclude.contains(n))
        {
            return Err(Invalid::new(format!(
                "`features` names `{name}`, which `exclude` leaves out"
            )));
        }
        params.check().map_err(Invalid::new)
    }

    /// The features it names are made by the features stage.
    fn check_need(
        checked: &Self::Checked,
        needed: &dyn std::any::Any,
    ) -> Result<(), (String, String)> {
        let Some(made) = needed.downcast_ref::<crate::stages::features::FeaturesChecked>() else {
            return Ok(());
        };
        let users = made.users.is_some();
        for name in checked.params().features.iter().flatten() {
            if let Some(key) = made.params.missing(name, users) {
                return Err((
                    key.into(),
                    format!("clusters on `{name}`, which it does not make"),
                ));
            }
        }
        Ok(())
    }

    fn table_columns(_: &Self::Checked, table: &str) -> Option<&'static [&'static str]> {
        match table {
            "features" => None,
            _ => Some(&[]),
        }
    }

    fn run(
        params: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let features = inputs.table("features")?;
        let lloyd = ctx.remote_lloyd();
        let remote = lloyd
            .as_ref()
            .map(|l| l as &dyn userlens_profile::RemoteLloyd);
        let name = ctx.name().to_string();
        let mut profile = userlens_profile::profile_with(features, params, ctx.seed(), remote)
            .map_err(|e| match e {
                // Settings that name what the features table does not have.
                e @ (userlens_profile::Error::InvalidParams(_)
                | userlens_profile::Error::UnknownFeature { .. }
                | userlens_profile::Error::UnknownExclude { .. }
                | userlens_profile::Error::EverythingExcluded { .. }
                | userlens_profile::Error::NotNumeric { .. }) => StageError::settings(&name, e),
                // The same data and settings fail the same way however often retried.
                e @ (userlens_profile::Error::Gmm { .. }
                | userlens_profile::Error::GmmNotFinite { .. }) => StageError::refused(format!(
                    "{}; try a higher `max_iter`, a larger `tolerance`, fewer personas or \
                     `algorithm = \"kmeans\"`",
                    error_chain(&e)
                )),
                e => e.into(),
            })?;
        if let Some(lloyd) = &lloyd {
            ctx.ran_on_cluster(lloyd);
        }
        let mut meta = StageMeta::default();
        let mut tables = Tables::default();
        // An unusable model from the last run (edited, cut short) is noted and left
        // out: this run's personas take fresh ids rather than the run failing.
        let previous_model = match ctx.previous_meta().and_then(|meta| meta.personas) {
            None => None,
            Some(stored) => match userlens_profile::PersonaModel::from_stored(stored) {
                Ok(model) => Some(model),
                Err(why) => {
                    meta.notes.push(format!(
                        "{}: the persona model of run {} is not usable ({why}): persona ids \
                         were not matched to it",
                        ctx.name(),
                        ctx.previous_run().unwrap_or_default()
                    ));
                    None
                }
            },
        };
        // The personas of the pipeline's other runs, nearest date first: new ids
        // start above every id they gave, and a persona that returns takes its id
        // back (a record gone, unreadable or unusable is counted, and noted).
        let (metas, mut lost) = ctx.past_metas();
        if metas.is_empty() && lost == 0 {
            let others = ctx.past_stages_with(|meta| meta.personas.is_some());
            if !others.is_empty() {
                ctx.note(format!(
                    "{}: no earlier run has a stage `{0}`, but earlier runs made personas in \
                     {}: persona ids start anew (give the stage its earlier name to keep them)",
                    ctx.name(),
                    (others.iter().map(|s| format!("`{s}`")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let mut past = Vec::new();
        for stored in metas.into_iter().filter_map(|meta| meta.personas) {
            match userlens_profile::PersonaModel::from_stored(stored) {
                Ok(model) => past.push(model),
                Err(_) => lost += 1,
            }
        }
        if lost > 0 {
            ctx.note(format!(
                "{}: the persona records of {} are gone, unreadable or unusable: ids only they \
                 gave may be given again",
                ctx.name(),
                super::counted(lost, "other run", "other runs")
            ));
        }
        let max_distance = userlens_profile::stability::MAX_MATCH_DISTANCE;
        let (against, summary) = if let Some(previous_model) = previous_model {
            // A users-table attribute logged in one run only is left out of the match.
            let rescaled: Vec<&str> = (profile.model.features.iter())
                .filter(|f| {
                    previous_model.features.contains(f)
                        && previous_model.log_transformed.contains(f)
                            != profile.model.log_transformed.contains(f)
                })
                .map(String::as_str)
                .collect();
            if !rescaled.is_empty() {
                meta.notes.push(format!(
                    "{}: {} on a log scale in this run or in run {} but not both: persona \
                     ids were matched without {}",
                    ctx.name(),
                    rescaled.join(", "),
                    ctx.previous_run().unwrap_or_default(),
                    if rescaled.len() == 1 { "it" } else { "them" }
                ));
            }
            let before = ctx.previous_table("assignments");
            let stability = userlens_profile::stability::stabilise(
                &previous_model,
                &past,
                before.as_ref(),
                &mut profile,
                max_distance,
            )?;
            if let Some(migration) = stability.migration {
                tables.insert("migration", migration);
            }
            (ctx.previous_run(), Some(stability.summary))
        } else if !past.is_empty() {
            // No run to compare with, but ids other runs gave: the record says which
            // this run took back and which it gave anew.
            let matching = userlens_profile::match_past(&mut profile, &past, max_distance)?;
            let summary = userlens_profile::stability::StabilitySummary::of(&matching);
            (None, Some(summary))
        } else {
            (None, None)
        };
        if let Some(summary) = summary {
            let mut record = serde_json::json!({ "against_run": against });
            if let (Some(record), serde_json::Value::Object(fields)) =
                (record.as_object_mut(), serde_json::to_value(&summary)?)
            {
                record.extend(fields);
            }
            meta.stability = Some(record);
        }
        meta.notes.extend(family_notes(ctx.name(), &profile.model));
        let made = profile.personas.height();
        if let userlens_profile::KChoice::Fixed(k) = params.params().k
            && made < k
        {
            meta.notes.push(format!(
                "{}: `k = {k}` asks for more personas than the users' {made} distinct \
                 feature rows can make; made {made}",
                ctx.name()
            ));
        }
        if let Some(note) = auto_range_cut(ctx.name(), params.params(), &profile) {
            meta.notes.push(note);
        }
        meta.personas = Some(serde_json::to_value(&profile.model)?);
        tables.insert("assignments", profile.assignments);
        tables.insert("personas", profile.personas);
        tables.insert("k_selection", profile.k_selection);
        Ok(Output { tables, meta })
    }
}

/// What the run record says of the feature families: those left out of the
/// clustering and why, and those weighted down so as not to outweigh value.
fn family_notes(stage: &str, model: &userlens_profile::PersonaModel) -> Vec<String> {
    let mut notes = Vec::new();
    if !model.families_left_out.is_empty() {
        notes.push(format!(
            "{stage}: feature families left out of the clustering, as they carry no \
             information in this log: {}",
            userlens_profile::describe_left_out(&model.families_left_out)
        ));
    }
    let capped: Vec<String> = model
        .family_weights
        .iter()
        .filter(|w| w.scale < 1.0)
        .map(|w| {
            format!(
                "{} ({:.0}% of the clustering)",
                w.family.name().replace('_', " "),
                w.share * 100.0
            )
        })
        .collect();
    if !capped.is_empty() {
        notes.push(format!(
            "{stage}: feature families weighted down so that none counts more than the \
             value and behaviour families together: {}",
            capped.join(", ")
        ));
    }
    notes
}

/// A note when `k = "auto"` tried fewer ks than `k_min..=k_max`: the users made no
/// more (a silhouette needs fewer personas than users, each a distinct feature row).
fn auto_range_cut(
    stage: &str,
    params: &userlens_profile::ProfileParams,
    profile: &userlens_profile::Profile,
) -> Option<String> {
    if !matches!(params.k, userlens_profile::KChoice::Auto) {
        return None;
    }
    let tried = profile.k_selection.column("k").ok()?.u32().ok()?;
    let (first, last) = (tried.first()?, tried.last()?);
    let (lo, hi) = (params.k_min, params.k_max);
    if (first as usize, last as usize) == (lo, hi) {
        return None;
    }
    let users = profile.assignments.height();
    let tried = match first == last {
        true => format!("k = {first} alone"),
        false => format!("k = {first} to {last}"),
    };
    let users = match users {
        1 => "1 user with its feature row makes".to_string(),
        n => format!("{n} users with their distinct feature rows make"),
    };
    Some(format!(
        "{stage}: `k = \"auto\"` tried {tried}, not {lo} to {hi}: {users} no more \
         personas (a silhouette needs fewer personas than users)"
    ))
}

#[cfg(test)]
mod tests {
    use userlens_model::FeatureFamily;
    use userlens_profile::{FamilyLeftOut, FamilyWeight, PersonaModel};

    use super::*;

    #[test]
    fn notes_name_the_families_left_out_and_weighted_down() {
        let weight = |family, share, scale| FamilyWeight {
            family,
            features: 1,
            share,
            scale,
        };
        let model = PersonaModel {
            k: 1,
            algorithm: userlens_profile::Algorithm::KMeans,
            features: Vec::new(),
            log_transformed: Vec::new(),
            components: 1,
            center: Vec::new(),
            scale: Vec::new(),
            impute: Vec::new(),
            centroids: Vec::new(),
            persona_ids: vec![1],
            labels: vec!["all users".into()],
            inertia: 0.0,
            silhouette: None,
            calinski_harabasz: None,
            davies_bouldin: None,
            dropped_constant: Vec::new(),
            families_left_out: vec![FamilyLeftOut {
                family: FeatureFamily::Search,
                reason: "every value equal".into(),
                features: vec!["searches".into()],
            }],
            family_weights: vec![
                weight(FeatureFamily::Rfm, 0.5, 1.0),
                weight(FeatureFamily::TimeOfDay, 0.5, 0.6),
            ],
            highest_id: 1,
            label_alternatives: Vec::new(),
        };
        assert_eq!(
            family_notes("personas", &model),
            vec![
                "personas: feature families left out of the clustering, as they carry no \
                 information in this log: search (every value equal)",
                "personas: feature families weighted down so that none counts more than the \
                 value and behaviour families together: time of day (50% of the clustering)",
            ]
        );
        let quiet = PersonaModel {
            families_left_out: Vec::new(),
            family_weights: vec![weight(FeatureFamily::Rfm, 1.0, 1.0)],
            ..model
        };
        assert!(family_notes("personas", &quiet).is_empty());
    }
}
