//! `ingest`: a source -> canonical events and the quarantine.

use std::path::PathBuf;

use userlens_report::files;

use crate::artifacts::EVENT_PARTS;
use crate::record::{Rows, StageMeta};
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError, Tables};

/// Reads and validates a source.
pub struct Ingest;

/// Rows of `quarantine.csv` made and written at a time.
const QUARANTINE_BLOCK_ROWS: usize = 65_536;

impl Stage for Ingest {
    type Params = userlens_ingest::SourceParams;
    type Checked = userlens_ingest::Source;
    const USES: &'static str = "ingest";
    const PROVIDES: &'static [&'static str] = &["events", "quarantine"];

    fn check(params: Self::Params, _: &Declared) -> Result<Self::Checked, Invalid> {
        params.check().map_err(Invalid::new)
    }

    fn input_files(source: &Self::Checked) -> Vec<PathBuf> {
        vec![source.path().to_path_buf()]
    }

    fn run(
        source: &Self::Checked,
        ctx: &mut StageContext<'_>,
        _: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        // A cluster's executors read the events from Parquet parts, whatever their size.
        let in_parts;
        let source = match ctx.cluster() {
            Some(_) => {
                in_parts = source.in_parts(userlens_ingest::CLUSTER_PART_EVENTS);
                &in_parts
            }
            None => source,
        };
        let out_of_core = userlens_ingest::out_of_core_bytes(source).ok().flatten();
        if out_of_core.is_some() {
            ctx.out_of_core();
        }
        let parts = ctx.cluster_dir().join(EVENT_PARTS);
        let mut on_progress = |done, total| ctx.advanced(done, total, "bytes");
        let ingested = userlens_ingest::ingest_into(source, &parts, &mut on_progress)
            .map_err(StageError::of_input)?;
        // A gzip stream that inflates past the budget switches to parts while read.
        if out_of_core.is_none() && matches!(ingested.events, userlens_ingest::Events::Parts { .. })
        {
            ctx.out_of_core();
        }
        let names = userlens_ingest::event_types(&ingested.events)
            .map_err(|e| StageError::Failed(Box::new(e)))?;
        for (name, like) in userlens_ingest::near_known_event_types(&names, source) {
            ctx.note(format!(
                "event type `{name}` is not `{like}` (names are exact): its rows count as \
                 events of their own; if it means `{like}`, map it with \
                 `event_names = {{ \"{name}\" = \"{like}\" }}`"
            ));
        }
        for note in userlens_ingest::event_name_notes(&names, source) {
            ctx.note(note);
        }
        // Times in the wrong unit (seconds read as milliseconds) land in early 1970,
        // and in a wrong layout or unit in the future too; the as-of date's count is
        // the record's. One read of the times counts all three.
        let early = userlens_model::time::midnight_micros(1990, 1, 1).unwrap_or_default();
        let day = userlens_model::time::DAY_MICROS;
        let today = chrono::Utc::now().timestamp_micros();
        let tomorrow = (today.div_euclid(day) + 1).saturating_mul(day);
        let cuts: Vec<i64> = [early, tomorrow].into_iter().chain(ctx.as_of()).collect();
        let before = userlens_ingest::events_before(&ingested.events, &cuts)
            .map_err(|e| StageError::Failed(Box::new(e)))?;
        let kept = ingested.stats.kept;
        if kept > 0 && before[0] == kept {
            ctx.note(format!(
                "every event is before 1990: is `time_format = \"{}\"` right? Unix \
                 seconds read as milliseconds, or a number that is no time, land in 1970",
                source.time_format()
            ));
        }
        let later = kept.saturating_sub(before[1]);
        if later > 0 {
            ctx.note(format!(
                "{later} of the {kept} events are after today ({}, by this machine's clock): \
                 is `time_format = \"{}\"` right?",
                userlens_model::time::date_string(today),
                source.time_format()
            ));
        }
        for note in &ingested.stats.notes {
            ctx.note(note.clone());
        }
        // Rows in another encoding than UTF-8 are quarantined one by one: say what it is.
        let not_utf8 = userlens_ingest::rows_not_utf8(&ingested.quarantine);
        if not_utf8 > 0 {
            ctx.note(format!(
                "{not_utf8} rows hold text that is not UTF-8: is the file in another \
                 encoding, such as Windows-1252? `iconv -f windows-1252 -t utf-8` converts \
                 it; see quarantine.csv"
            ));
        }
        let before_as_of = before.get(2).copied();
        let stats = &ingested.stats;
        let meta = StageMeta {
            inputs: stats.files.clone(),
            rows: Some(Rows {
                read: stats.read,
                kept: stats.kept,
                quarantined: stats.quarantined,
                duplicates: stats.duplicates,
                users: 0,
                before_as_of,
            }),
            ..StageMeta::default()
        };
        // Every row read and not kept: refused, or dropped as a duplicate.
        let failed = |e: userlens_ingest::Error| StageError::Failed(Box::new(e));
        let not_kept = ctx.write_blocks(
            Some(files::QUARANTINE),
            "quarantine",
            ingested.quarantine.schema(),
            |blocks| {
                for block in ingested.not_kept(QUARANTINE_BLOCK_ROWS).map_err(failed)? {
                    blocks
                        .write(block.map_err(failed)?)
                        .map_err(|e| StageError::Run(e.into()))?;
                }
                Ok(())
            },
        )?;
        // The quarantine is still written, so a refusal can be looked into.
        let checked = match stats.check_gate(source.max_quarantine_share(), &ingested.quarantine) {
            Ok(()) => userlens_ingest::check_user_totals(&ingested.events),
            Err(gate) => Err(gate),
        };
        match checked {
            Ok(()) => {}
            // The gates' refusals; reading the parts back can fail otherwise.
            Err(
                e @ (userlens_ingest::Error::QualityGate { .. }
                | userlens_ingest::Error::NoEvents { .. }
                | userlens_ingest::Error::UserTotal { .. }),
            ) => {
                ctx.keep_on_refusal(meta);
                return Err(StageError::Refused(Box::new(e)));
            }
            // Parts that cannot be read back to add up: a failure `retries` may outlast.
            Err(e) => return Err(StageError::Failed(Box::new(e))),
        }
        let mut tables = Tables::default();
        tables.set_events(ingested.events);
        tables.insert_written("quarantine", not_kept);
        Ok(Output { tables, meta })
    }
}
