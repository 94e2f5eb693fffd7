//! `recommend`: events (+ personas) -> what to offer each user and persona, every
//! recommender scored on a time split before one is chosen.

use crate::record::StageMeta;
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError, Tables};
use crate::stages::features::default_as_of;
use userlens_recommend::files;

/// Recommendations.
pub struct Recommend;

impl Stage for Recommend {
    type Params = userlens_recommend::RecommendParams;
    type Checked = userlens_recommend::CheckedRecommendParams;
    const USES: &'static str = "recommend";
    const PROVIDES: &'static [&'static str] = &[
        "user_recommendations",
        "persona_recommendations",
        "similar_items",
        "recommend_report",
    ];
    const REQUIRES: &'static [&'static str] = &["events"];

    fn check(params: Self::Params, declared: &Declared) -> Result<Self::Checked, Invalid> {
        let checked = params.check().map_err(Invalid::new)?;
        let personas =
            (declared.need_kinds.iter()).any(|kind| kind == super::profile::Profile::USES);
        if checked.model == Some(userlens_recommend::ModelKind::PersonaPopular) && !personas {
            return Err(Invalid::new(
                "`model = \"persona_popular\"` lists each persona's items: the stage needs a \
                 profile stage (add it to `needs`)",
            ));
        }
        Ok(checked)
    }

    fn event_columns(_: &Self::Checked) -> Option<&'static [&'static str]> {
        Some(userlens_recommend::EVENT_COLUMNS)
    }

    fn defaults() -> Option<toml::Table> {
        super::defaults::<Self::Params>()
    }

    fn table_columns(_: &Self::Checked, table: &str) -> Option<&'static [&'static str]> {
        match table {
            "assignments" => Some(userlens_recommend::ASSIGNMENT_COLUMNS),
            _ => Some(&[]),
        }
    }

    fn run(
        params: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        // Read once: as the events' last reader the stage frees them after reading.
        let events = inputs.take_events()?.parts()?;
        let as_of = ctx.as_of().unwrap_or(default_as_of(&events)?);
        // Personas when a profile stage is among the needs: cold-start users get
        // their persona's items, and each persona its own list.
        let assignments = inputs.get("assignments");
        let (out, lists) = userlens_recommend::recommend_in_blocks(
            events,
            assignments,
            as_of,
            params,
            ctx.seed(),
        )?;
        for note in &out.notes {
            ctx.note(format!("recommend: {note}"));
        }
        // Every user's lists go to their CSV and artifact a block at a time: at 100
        // million events they are 16 million rows.
        let started = std::time::Instant::now();
        let published = out.chosen.map(|_| files::USER_RECOMMENDATIONS);
        let written = ctx.write_blocks(
            published,
            "user_recommendations",
            &lists.schema()?,
            |blocks| {
                lists.each_block(|block| blocks.write(block).map_err(|e| StageError::Run(e.into())))
            },
        )?;
        drop(lists);
        tracing::info!(
            "recommend: lists made and written in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        if out.chosen.is_some() {
            if assignments.is_some() {
                ctx.write_csv(files::PERSONA_RECOMMENDATIONS, &out.persona_recommendations)?;
            }
            ctx.write_csv(files::SIMILAR_ITEMS, &out.similar_items)?;
            ctx.write_csv(files::RECOMMEND_REPORT, &out.report)?;
        }
        let mut tables = Tables::default();
        tables.insert_written("user_recommendations", written);
        tables.insert("persona_recommendations", out.persona_recommendations);
        tables.insert("similar_items", out.similar_items);
        tables.insert("recommend_report", out.report);
        let mut meta = StageMeta {
            as_of: Some(as_of),
            users: Some(out.users),
            ..StageMeta::default()
        };
        if let Some(chosen) = out.chosen {
            meta.notes.push(chosen_note(chosen, &out.rows, params.k));
        }
        Ok(Output { tables, meta })
    }
}

/// "recommendations by item_knn: NDCG@10 0.214 on the horizon, popular 0.051".
fn chosen_note(
    chosen: userlens_recommend::ModelKind,
    rows: &[userlens_recommend::ReportRow],
    k: usize,
) -> String {
    let ndcg = |m: userlens_recommend::ModelKind| {
        rows.iter()
            .find(|r| r.model == m)
            .and_then(|r| r.outcome.as_ref().ok())
            .map(|s| s.ndcg)
    };
    let mut note = format!("recommendations by {}", chosen.name());
    if let Some(n) = ndcg(chosen) {
        note.push_str(&format!(": NDCG@{k} {n:.3} on the horizon"));
        if chosen != userlens_recommend::ModelKind::Popular
            && let Some(p) = ndcg(userlens_recommend::ModelKind::Popular)
        {
            note.push_str(&format!(", popular {p:.3}"));
        }
    }
    note
}
