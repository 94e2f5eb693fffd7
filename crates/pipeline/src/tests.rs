use std::path::Path;

use super::*;

fn plan(text: &str) -> Result<Plan> {
    load_str(Path::new("p.toml"), text, &[])
}

fn file_error(text: &str) -> String {
    match plan(text) {
        Err(Error::File(e)) => e.to_string(),
        other => panic!("expected a file error, got {other:?}"),
    }
}

const GOOD: &str = r#"
[pipeline]
name = "demo"

[stages.report]
uses = "report"
needs = ["personas", "features"]

[stages.ingest]
uses = "ingest"
with = { path = "events.csv" }

[stages.features]
uses = "features"
needs = ["ingest"]

[stages.personas]
uses = "profile"
needs = ["features"]
with = { k = 4 }
"#;

#[test]
fn orders_stages_after_their_needs() {
    let plan = plan(GOOD).unwrap();
    let names: Vec<_> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ingest", "features", "personas", "report"]);
    assert_eq!(plan.stages[3].needs, [2, 1]);
    assert_eq!(plan.output, Path::new("out/demo"));
    assert_eq!(plan.seed, 42);
}

#[test]
fn unknown_stage_kind_gets_a_hint() {
    let text = GOOD.replace(r#"uses = "profile""#, r#"uses = "profil""#);
    assert_eq!(
        file_error(&text),
        "p.toml:18:8: stage `personas` uses `profil`, which is not a stage kind\n  hint: did you mean `profile`?"
    );
}

#[test]
fn missing_need_and_cycle_are_located() {
    let text = GOOD.replace(r#"needs = ["ingest"]"#, r#"needs = ["ingets"]"#);
    assert_eq!(
        file_error(&text),
        "p.toml:15:10: stage `features` needs `ingets`, which is not a stage of this pipeline\n  hint: did you mean `ingest`?"
    );
    let text = GOOD.replace(
        "[stages.ingest]\nuses = \"ingest\"",
        "[stages.ingest]\nuses = \"ingest\"\nneeds = [\"personas\"]",
    );
    let err = file_error(&text);
    assert!(
        err.contains("the stages form a cycle: personas -> features -> ingest -> personas"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_located_at_the_key() {
    let text = GOOD.replace("with = { k = 4 }", "with = { k = 4, kk = 3 }");
    let err = file_error(&text);
    assert!(
        err.starts_with("p.toml:20:17: stage `personas`: unknown field `kk`"),
        "{err}"
    );
    let text = GOOD.replace("needs = [\"ingest\"]", "need = [\"ingest\"]");
    let err = file_error(&text);
    assert!(
        err.starts_with("p.toml:15:1: unknown field `need`"),
        "{err}"
    );
    assert!(err.ends_with("hint: did you mean `needs`?"), "{err}");
}

#[test]
fn a_stage_must_need_what_it_reads() {
    let text = GOOD.replace("needs = [\"features\"]\nwith", "needs = [\"ingest\"]\nwith");
    assert_eq!(
        file_error(&text),
        "p.toml:18:8: stage `personas` (uses profile) needs a stage that provides `features`\n  hint: add the features stage that makes it to `needs`"
    );
}

#[test]
fn overrides_set_parameters_and_reject_unknown_stages() {
    let o = Override::parse("personas.k=6").unwrap();
    let plan = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap();
    assert_eq!(plan.stages[2].params["k"], 6);
    let o = Override::parse("ingest.path=data/other.csv").unwrap();
    let plan = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap();
    assert_eq!(plan.stages[0].params["path"], "data/other.csv");
    // Spaces around a value go; a tab that is the whole value stays.
    let o = Override::parse("ingest.delimiter=\t").unwrap();
    assert_eq!(o.value, toml::Value::String("\t".into()));
    let o = Override::parse("ingest.path= data/other.csv ").unwrap();
    assert_eq!(o.value, toml::Value::String("data/other.csv".into()));
    let o = Override::parse("persona.k=6").unwrap();
    let err = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`--set persona.k=6`: no stage `persona` (did you mean `personas`?); the stages are: features, ingest, personas, report"
    );
    assert!(Override::parse("k=6").is_err());
    let o = Override::parse("personas.kk=6").unwrap();
    let err = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Usage);
    assert!(err.to_string().contains("unknown field `kk`"), "{err}");
}

#[test]
fn builtin_profile_pipeline_is_valid() {
    let plan = load_str(Path::new("builtin"), BUILTIN_PROFILE, &[]).unwrap();
    assert_eq!(plan.name, "profile");
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ingest", "features", "personas", "predict", "report", "loyalty"
        ]
    );
}

#[test]
fn relative_outputs_cannot_escape_the_working_folder() {
    let text = GOOD.replace(
        "name = \"demo\"",
        "name = \"demo\"\noutput = \"../elsewhere\"",
    );
    assert_eq!(
        file_error(&text),
        "p.toml:4:1: `output` \"../elsewhere\" leaves the working folder through `..`\n  hint: give an absolute path to write outside the working folder"
    );
    let o = Override::parse("pipeline.runs=\"a/../../b\"").unwrap();
    let err = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap_err();
    assert!(
        err.to_string()
            .contains("`runs` \"a/../../b\" leaves the working folder"),
        "{err}"
    );
    let o = Override::parse("pipeline.output=\"/tmp/userlens-out\"").unwrap();
    assert!(
        load_str(Path::new("p.toml"), GOOD, &[o]).is_ok(),
        "absolute paths are allowed"
    );
}

#[test]
fn outputs_a_run_would_refuse_are_refused_by_validate() {
    let long = "n".repeat(193);
    let cases = [
        ("/", "is not a folder of its own"),
        (".", "is not a folder of its own"),
        ("", "is not a folder of its own"),
        ("runs/x", "overlaps the runs folder `runs`"),
        (long.as_str(), "has a name of more than 192 bytes"),
    ];
    // Loaded (a run given `--out` may not use it), with the error `validate` reports.
    let output_error = |plan: &Plan| plan.output_error.as_ref().map(|e| e.to_string());
    for (output, why) in cases {
        let text = GOOD.replace(
            "name = \"demo\"",
            &format!("name = \"demo\"\noutput = \"{output}\""),
        );
        let err = output_error(&plan(&text).unwrap()).unwrap_or_default();
        assert!(err.starts_with("p.toml:4:1: `output`"), "{output}: {err}");
        assert!(err.contains(why), "{output}: {err}");
    }
    // Set on the command line, it is checked as if written in the file.
    let o = Override::parse("pipeline.output=\"/\"").unwrap();
    let set = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap();
    let err = output_error(&set).unwrap_or_default();
    assert!(err.contains("is not a folder of its own"), "{err}");
    // An empty runs folder would put the ledger in the working folder.
    let text = GOOD.replace("name = \"demo\"", "name = \"demo\"\nruns = \"\"");
    assert!(file_error(&text).starts_with("p.toml:4:1: `runs` is empty"));
    // A date in place of `{as_of}` leaves a name of its own.
    let nightly = GOOD.replace("name = \"demo\"", "name = \"demo\"\noutput = \"{as_of}\"");
    assert_eq!(output_error(&plan(&nightly).unwrap()), None);
    assert_eq!(output_error(&plan(GOOD).unwrap()), None);
}

#[test]
fn wrong_types_and_bad_durations_are_located() {
    let text = GOOD.replace("with = { k = 4 }", "with = { k = \"five\" }");
    let err = file_error(&text);
    assert!(err.starts_with("p.toml:20:10: stage `personas`:"), "{err}");
    let text = GOOD.replace(
        "uses = \"profile\"",
        "uses = \"profile\"\nretry_delay = \"soon\"",
    );
    let err = file_error(&text);
    assert!(
        err.starts_with("p.toml:19:15: stage `personas`: `retry_delay` \"soon\" is not a duration"),
        "{err}"
    );
}

#[test]
fn a_key_shadowing_another_is_an_error_at_its_line() {
    let text = format!(
        "{GOOD}\n[stages.predict]\nuses = \"predict\"\nneeds = [\"ingest\", \"features\"]\n\
         [stages.predict.with]\nhorizon_days = 28\n[stages.predict.with.ml]\nhorizon_days = 7\n"
    );
    let err = file_error(&text);
    assert!(
        err.starts_with("p.toml:28:1: stage `predict`: unknown field `horizon_days`"),
        "{err}"
    );
}

#[test]
fn limits_and_names_are_checked_before_any_data_is_read() {
    let text = GOOD.replace(
        "uses = \"profile\"",
        "uses = \"profile\"\nretries = 4294967295",
    );
    let err = file_error(&text);
    assert!(
        err.contains("`retries = 4294967295` is more than the 10 allowed"),
        "{err}"
    );
    // At the stage's own `retries`, not the first in the file.
    let text = GOOD
        .replacen("uses = \"ingest\"", "uses = \"ingest\"\nretries = 2", 1)
        .replace("uses = \"profile\"", "uses = \"profile\"\nretries = 50");
    let line = 1 + text.lines().position(|l| l == "retries = 50").unwrap();
    let err = file_error(&text);
    assert!(
        err.starts_with(&format!("p.toml:{line}:11: stage `")),
        "{err}"
    );
    let text = GOOD.replace(
        "uses = \"profile\"",
        "uses = \"profile\"\nretry_delay = \"99999999999999h\"",
    );
    let err = file_error(&text);
    assert!(err.contains("`retry_delay`"), "{err}");
    let text = GOOD.replace("[stages.report]", "[stages.\"../../x\"]");
    let err = file_error(&text);
    assert!(err.contains("must be ASCII letters, digits"), "{err}");
    // Names become folder names: a stage's or the pipeline's of 300 bytes is refused
    // at its line, shown cut.
    let long = "x".repeat(300);
    let err = file_error(&GOOD.replace("[stages.report]", &format!("[stages.{long}]")));
    let line = GOOD[..GOOD.find("[stages.report]").unwrap()]
        .lines()
        .count()
        + 2;
    assert!(err.starts_with(&format!("p.toml:{line}:")), "{err}");
    assert!(
        err.contains("at most 128 bytes") && err.contains("(300 bytes)"),
        "{err}"
    );
    let err = file_error(&GOOD.replace("name = \"demo\"", &format!("name = \"{long}\"")));
    assert!(
        err.starts_with("p.toml:3:") && err.contains("at most 128 bytes"),
        "{err}"
    );
    let mut many = GOOD.to_string();
    for i in 0..MAX_STAGES {
        many.push_str(&format!(
            "\n[stages.extra{i}]\nuses = \"ingest\"\nwith = {{ path = \"e.csv\" }}\n"
        ));
    }
    let err = file_error(&many);
    assert!(err.contains("more than the 64 allowed"), "{err}");
    let deep = format!("personas.{}=1", vec!["a"; 25_000].join("."));
    let err = Override::parse(&deep).unwrap_err();
    assert!(err.to_string().contains("levels deep"), "{err}");
}

#[test]
fn a_name_from_the_file_is_told_at_line_1_not_at_another_tables_name() {
    // No `name` in `[pipeline]`: the file's stem names it, and a `name` key of a
    // stage's table is not the one at fault.
    let text = GOOD.replace("name = \"demo\"", "seed = 1")
        + "\n[stages.predict]\nuses = \"predict\"\nneeds = [\"features\"]\n\n\
           [[stages.predict.with.rules]]\nname = \"x\"\nwhen = \"frequency > 1\"\n";
    let err = match load_str(Path::new("bad name.toml"), &text, &[]) {
        Err(Error::File(e)) => e.to_string(),
        other => panic!("expected a file error, got {other:?}"),
    };
    assert!(
        err.starts_with("bad name.toml:1:1: pipeline name \"bad name\""),
        "{err}"
    );
    assert!(err.contains("set `name = \"...\"`"), "{err}");
    // Given in the header, it is told there, past a subtable of its own.
    let text = text
        .replace(
            "seed = 1",
            "seed = 1\n[pipeline.gates]\nmin_volume_ratio = 0.5",
        )
        .replacen("[pipeline]", "[pipeline]\nname = \"a b\"", 1);
    let err = file_error(&text);
    assert!(
        err.starts_with("p.toml:3:1: pipeline name \"a b\""),
        "{err}"
    );
    // A subtable of the header after the stages is the header's all the same.
    let late = GOOD.to_string() + "\n[pipeline.gates]\nmin_volume_ratio = -1\n";
    let line = late.lines().count();
    let err = file_error(&late);
    assert!(err.starts_with(&format!("p.toml:{line}:1: ")), "{err}");
    let source = |text: &str| crate::file::Source {
        path: "p.toml".into(),
        text: text.into(),
    };
    assert_eq!(source("x = 1\n").find_header_key("x"), None);
    // Not in a comment or a string's text; a quoted key is a key.
    let commented = "[pipeline]\nseed = 1 # the name = x\ndescription = \"name = y\"\n";
    assert_eq!(source(commented).find_header_key("name"), None);
    assert_eq!(
        source("[pipeline]\n\"name\" = \"a b\"\n").find_header_key("name"),
        Some(12)
    );
}

#[test]
fn a_stage_named_pipeline_and_a_set_without_a_key_are_refused() {
    let err = file_error(&GOOD.replace("[stages.report]", "[stages.pipeline]"));
    assert!(err.contains("a stage cannot be named `pipeline`"), "{err}");
    // Built by a caller rather than parsed: an error, not a panic.
    let set = Override {
        stage: "personas".into(),
        key: Vec::new(),
        value: toml::Value::Integer(3),
        text: "personas=3".into(),
    };
    let err = load_str(Path::new("p.toml"), GOOD, &[set]).unwrap_err();
    assert_eq!(err.to_string(), "`--set personas=3` names no key");
}

#[test]
fn a_text_set_takes_the_text_as_it_is() {
    let path = "we\"ird\\ na\tme.csv";
    let set = Override::text("ingest", "path", path);
    assert_eq!(set.text, format!("ingest.path={path}"));
    let plan = load_str(Path::new("p.toml"), GOOD, &[set]).unwrap();
    let ingest = plan.stages.iter().find(|s| s.name == "ingest").unwrap();
    assert_eq!(ingest.params["path"], path);
}

#[test]
fn the_overview_names_every_stage_kind() {
    let overview: String = include_str!("lib.rs")
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect();
    for kind in Registry::builtin().names() {
        assert!(
            overview.contains(&format!("`{kind}`")),
            "`{kind}` is not in lib.rs's overview"
        );
    }
}

#[test]
fn the_engine_is_checked_where_it_is_written() {
    let plan_with = |engine: &str| {
        plan(&GOOD.replace(
            "name = \"demo\"",
            &format!("name = \"demo\"\nengine = \"{engine}\""),
        ))
    };
    assert_eq!(plan(GOOD).unwrap().engine, Engine::Local);
    assert_eq!(
        plan_with("ballista://10.0.0.5:50051").unwrap().engine.url(),
        "ballista://10.0.0.5:50051"
    );
    let err = plan_with("spark://h:7077").unwrap_err().to_string();
    assert_eq!(
        err,
        "p.toml:4:10: `engine` \"spark://h:7077\" is not an engine: the scheme is `spark`: \
         only `ballista://` clusters are supported\n  hint: write `engine = \"local\"` or \
         `engine = \"ballista://host:50050\"`"
    );
    let err = plan_with("ballista://:1").unwrap_err().to_string();
    assert!(
        err.starts_with("p.toml:4:10: `engine` \"ballista://:1\" is not an engine: no host"),
        "{err}"
    );
    let err = file_error(&GOOD.replace("name = \"demo\"", "name = \"demo\"\nengine = 5"));
    assert!(
        err.starts_with("p.toml:4:10: invalid type: integer `5`"),
        "{err}"
    );

    // `--set pipeline.engine=...` is checked as it is applied, and not in the keys.
    let o = Override::parse("pipeline.engine=ballista://h").unwrap();
    let on_cluster = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap();
    assert_eq!(on_cluster.engine.url(), "ballista://h:50050");
    let local = plan(GOOD).unwrap();
    assert_eq!(
        crate::keys::cache_keys(&on_cluster, "latest", None, &Default::default()),
        crate::keys::cache_keys(&local, "latest", None, &Default::default())
    );
    let o = Override::parse("pipeline.engine=remote").unwrap();
    let err = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`--set pipeline.engine=remote`: `engine` \"remote\" is not an engine: write `local` \
         or `ballista://host:port`"
    );
}

#[test]
fn gates_are_set_for_one_run() {
    let sets = [
        "pipeline.gates.min_volume_ratio=0.25",
        "pipeline.gates.max_volume_ratio=4",
        "pipeline.gates.fail_on_drift=alert",
    ];
    let sets: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    let planned = load_str(Path::new("p.toml"), GOOD, &sets).unwrap();
    assert_eq!(planned.gates.min_volume_ratio, Some(0.25));
    assert_eq!(planned.gates.max_volume_ratio, Some(4.0));
    assert_eq!(
        planned.gates.fail_on_drift,
        Some(crate::drift::Level::Alert)
    );
    assert_eq!(plan(GOOD).unwrap().gates.min_volume_ratio, None);
    let file = format!("{GOOD}\n[pipeline.gates]\nfail_on_drift = \"alert\"\n");
    assert!(plan(&file).unwrap().gates.fail_on_drift.is_some());
    let off = Override::parse("pipeline.gates.fail_on_drift=off").unwrap();
    let lifted = load_str(Path::new("p.toml"), &file, &[off]).unwrap();
    assert_eq!(lifted.gates.fail_on_drift, None);
    // A set that clashes with the file's gate is the set's mistake, not the file's.
    let file = format!("{GOOD}\n[pipeline.gates]\nmin_volume_ratio = 0.6\n");
    let o = Override::parse("pipeline.gates.max_volume_ratio=0.5").unwrap();
    let err = load_str(Path::new("p.toml"), &file, &[o])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "`--set pipeline.gates.max_volume_ratio=0.5`: `min_volume_ratio = 0.6` is above"
        ),
        "{err}"
    );
}

#[test]
fn a_header_set_to_a_refused_value_is_the_sets_error_not_the_files() {
    for (set, said) in [
        (
            "pipeline.name=bad name!",
            "`--set pipeline.name=bad name!`: pipeline name \"bad name!\" must be letters",
        ),
        (
            "pipeline.output=out/{asof}",
            "`--set pipeline.output=out/{asof}`: `output` \"out/{asof}\" holds a placeholder",
        ),
        ("pipeline.runs=", "`--set pipeline.runs=`: `runs` is empty"),
        (
            "pipeline.gates.min_volume_ratio=-1",
            "`--set pipeline.gates.min_volume_ratio=-1`: `gates.min_volume_ratio` must be a positive number",
        ),
        (
            "pipeline.gates.fail_on_drift=ok",
            "`--set pipeline.gates.fail_on_drift=ok`: unknown level `ok`",
        ),
        (
            "pipeline.runs=../up",
            "`--set pipeline.runs=../up`: `runs` \"../up\"",
        ),
    ] {
        let o = Override::parse(set).unwrap();
        let err = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap_err();
        assert!(err.to_string().starts_with(said), "{err}");
    }
    // The same values in the file are the file's, at their line.
    let text = GOOD.replace("name = \"demo\"", "name = \"bad name!\"");
    assert!(
        file_error(&text).starts_with("p.toml:3:1: pipeline name"),
        "{}",
        file_error(&text)
    );
}

#[test]
fn a_shared_dir_is_an_absolute_path_outside_the_cache_keys() {
    let with =
        |line: &str| plan(&GOOD.replace("name = \"demo\"", &format!("name = \"demo\"\n{line}")));
    assert_eq!(plan(GOOD).unwrap().shared_dir, None);
    let shared = with("shared_dir = \"/mnt/userlens\"").unwrap();
    assert_eq!(
        shared.shared_dir.as_deref(),
        Some(Path::new("/mnt/userlens"))
    );
    assert_eq!(
        crate::keys::cache_keys(&shared, "latest", None, &Default::default()),
        crate::keys::cache_keys(&plan(GOOD).unwrap(), "latest", None, &Default::default())
    );
    let err = with("shared_dir = \"parts\"").unwrap_err().to_string();
    assert_eq!(
        err,
        "p.toml:4:14: `shared_dir` \"parts\" is not an absolute path\n  hint: every machine \
         of the cluster reads it by the same absolute path"
    );
    let o = Override::parse("pipeline.shared_dir=/srv/shared").unwrap();
    let set = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap();
    assert_eq!(set.shared_dir.as_deref(), Some(Path::new("/srv/shared")));
    let o = Override::parse("pipeline.shared_dir=shared").unwrap();
    let err = load_str(Path::new("p.toml"), GOOD, &[o]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`--set pipeline.shared_dir=shared`: `shared_dir` must be an absolute path (every \
         machine of the cluster reads it by the same path)"
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any edit of a valid file is planned or refused with an error; never a panic.
        #[test]
        fn mutated_pipeline_files_never_panic(
            edits in proptest::collection::vec((0usize..2000, any::<u8>(), 0u8..3), 1..8)
        ) {
            let mut bytes = GOOD.as_bytes().to_vec();
            for (at, byte, op) in edits {
                let at = at % (bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => { bytes.remove(at); }
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = load_str(Path::new("fuzz.toml"), &text, &[]);
        }

        /// Any `--set` text parses or is refused.
        #[test]
        fn arbitrary_overrides_never_panic(text in ".{0,40}") {
            if let Ok(o) = Override::parse(&text) {
                let _ = load_str(Path::new("p.toml"), GOOD, &[o]);
            }
        }
    }
}

#[test]
fn event_columns_and_tables_are_freed_once_no_later_stage_needs_them() {
    let text = r#"
[stages.ingest]
uses = "ingest"
with = { path = "events.csv" }
[stages.features]
uses = "features"
needs = ["ingest"]
[stages.personas]
uses = "profile"
needs = ["ingest", "features"]
[stages.predict]
uses = "predict"
needs = ["ingest", "features"]
[stages.loyalty]
uses = "loyalty"
needs = ["ingest", "personas"]
[stages.recommend]
uses = "recommend"
needs = ["ingest", "personas"]
"#;
    let plan = plan(text).unwrap();
    let names: Vec<_> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ingest",
            "features",
            "personas",
            "predict",
            "loyalty",
            "recommend"
        ]
    );
    let after = |done: usize| {
        plan.event_columns_after(0, done)
            .map(|read| read.into_iter().collect::<Vec<_>>())
    };
    // The features stage reads every column; predict, with its features at the
    // cutoff made there, four; profile none.
    assert_eq!(after(0), None);
    let loyalty_and_recommend = [
        "amount",
        "category",
        "event_time",
        "event_type",
        "item_id",
        "order_id",
        "rating",
        "user_id",
    ];
    for done in 1..=3 {
        assert_eq!(after(done).unwrap(), loyalty_and_recommend);
    }
    let recommend = [
        "amount",
        "category",
        "event_time",
        "event_type",
        "item_id",
        "rating",
        "user_id",
    ];
    assert_eq!(after(4).unwrap(), recommend);
    assert_eq!(after(5).unwrap(), [] as [&str; 0]);
    // Tables go with the last stage that needs them: features' with predict,
    // personas' and the events' with recommend.
    let needed = |from: usize| (0..6).filter(|&done| plan.needed_after(from, done)).count();
    assert_eq!([0, 1, 2, 3, 4, 5].map(needed), [5, 3, 5, 0, 0, 0]);

    // A predict stage whose features stage makes another cutoff's features builds
    // its own from every column.
    let early = "[stages.early]\nuses = \"predict\"\nneeds = [\"ingest\", \"features\"]\nwith = { horizon_days = 7 }\n";
    let two = self::plan(&format!("{early}{text}")).unwrap();
    let at = |name: &str| two.stages.iter().position(|s| s.name == name).unwrap();
    assert_eq!(two.stages[at("early")].asked, [at("features")]);
    assert!(two.stages[at("predict")].asked.is_empty());
    assert_eq!(two.event_columns_after(0, at("predict") - 1), None);
    assert!(two.event_columns_after(0, at("predict")).is_some());

    // Of the features stage's tables, personas reads the features alone; predict
    // also those at its cutoff, when made there (they wait on disk until then).
    let reads = |plan: &Plan, stage: &str, table: &str| {
        let stage = plan.stages.iter().find(|s| s.name == stage).unwrap();
        stage
            .stage
            .table_columns(table)
            .is_none_or(|read| !read.is_empty())
    };
    assert!(reads(&plan, "personas", "features"));
    assert!(!reads(&plan, "personas", "features_at_cutoff"));
    assert!(reads(&plan, "predict", "features_at_cutoff"));
    assert!(!reads(&plan, "predict", "features_at_period_start"));
    assert!(reads(&two, "early", "features_at_cutoff"));
    assert!(!reads(&two, "predict", "features_at_cutoff"));
}

#[test]
fn what_predict_asks_of_the_features_stage_is_in_its_cache_key() {
    let with_predict = |with: &str| {
        let text = format!(
            "{GOOD}\n[stages.predict]\nuses = \"predict\"\nneeds = [\"ingest\", \"features\"]\nwith = {{ {with} }}\n"
        );
        plan(&text).unwrap()
    };
    let key_of_features = |plan: &Plan| {
        let at = plan
            .stages
            .iter()
            .position(|s| s.name == "features")
            .unwrap();
        crate::keys::cache_keys(plan, "latest", None, &Default::default())[at].clone()
    };
    let alone = plan(GOOD).unwrap();
    let (days_28, days_14) = (
        with_predict("horizon_days = 28"),
        with_predict("horizon_days = 14"),
    );
    // The features at another cutoff are another output.
    assert_ne!(key_of_features(&alone), key_of_features(&days_28));
    assert_ne!(key_of_features(&days_28), key_of_features(&days_14));
    // What predict does with them is not the features stage's.
    let discounted = with_predict("horizon_days = 28, annual_discount_rate = 0.2");
    assert_eq!(key_of_features(&days_28), key_of_features(&discounted));
    // A rule on a text feature asks for the text features too.
    let rule = r#"horizon_days = 28, rules = { books = { when = 'top_category == "books"', target = "purchase" } }"#;
    assert_ne!(
        key_of_features(&days_28),
        key_of_features(&with_predict(rule))
    );
}

#[test]
fn gates_that_refuse_every_night_or_none_are_errors_at_their_line() {
    let with_gates = |gates: &str| {
        GOOD.replace(
            "name = \"demo\"",
            &format!("name = \"demo\"\n\n[pipeline.gates]\n{gates}\n"),
        )
    };
    for (gates, said) in [
        (
            "min_volume_ratio = 5.0\nmax_volume_ratio = 3.0",
            "p.toml:6:1: `min_volume_ratio = 5` is above `max_volume_ratio = 3`",
        ),
        (
            "min_volume_ratio = -0.6",
            "p.toml:6:1: `min_volume_ratio = -0.6` is not a positive number",
        ),
        (
            "max_volume_ratio = nan",
            "p.toml:6:1: `max_volume_ratio = NaN` is not a positive number",
        ),
        (
            "max_volume_ratio = -inf",
            "p.toml:6:1: `max_volume_ratio = -inf` is not a positive number",
        ),
        (
            "max_volume_ratio = 0",
            "p.toml:6:1: `max_volume_ratio = 0` is not a positive number",
        ),
        (
            "fail_on_drift = \"ok\"",
            "p.toml:6:1: `fail_on_drift = \"ok\"` would refuse every night",
        ),
        (
            "fail_on_drift = \"bogus\"",
            "p.toml:6:17: unknown level `bogus`: expected `warning` or `alert`",
        ),
    ] {
        let err = file_error(&with_gates(gates));
        assert!(err.starts_with(said), "{err}");
    }
    assert!(
        plan(&with_gates(
            "min_volume_ratio = 0.6\nmax_volume_ratio = 3.0"
        ))
        .is_ok()
    );
}

#[test]
fn an_output_placeholder_other_than_as_of_is_an_error() {
    let text = GOOD.replace(
        "name = \"demo\"",
        "name = \"demo\"\noutput = \"out/{asof}\"",
    );
    assert!(
        file_error(&text).starts_with(
            "p.toml:4:1: `output` \"out/{asof}\" holds a placeholder other than `{as_of}`"
        ),
        "{}",
        file_error(&text)
    );
    let text = GOOD.replace(
        "name = \"demo\"",
        "name = \"demo\"\noutput = \"out/{as_of}/{x}\"",
    );
    assert!(file_error(&text).contains("holds a placeholder other than"));
    let text = GOOD.replace(
        "name = \"demo\"",
        "name = \"demo\"\noutput = \"out/{as_of}\"",
    );
    assert!(plan(&text).is_ok());
}

#[test]
fn a_set_that_names_no_parameter_is_the_sets_error_not_the_files() {
    let text = GOOD;
    for (set, said) in [
        (
            "personas.kk=6",
            "`--set personas.kk=6`: stage `personas`: unknown field `kk`",
        ),
        (
            "personas.with.k=6",
            "`--set personas.with.k=6`: stage `personas`: unknown field `with`",
        ),
        (
            "ingest.memory_limit_mb=0",
            "`--set ingest.memory_limit_mb=0`: stage `ingest`: `memory_limit_mb` must be at least 1",
        ),
        (
            "ingest.path=",
            "`--set ingest.path=`: stage `ingest`: `path` is empty: name the events file",
        ),
        (
            "personas.features=[\"recency\"]",
            "`--set personas.features=[\"recency\"]`: stage `personas`: `features` names \
             `recency`, which is no feature (did you mean `recency_days`?)",
        ),
        (
            "personas.features=[\"recency_days\", \"top_category\"]",
            "`--set personas.features=[\"recency_days\", \"top_category\"]`: stage `personas`: \
             `features` names `top_category`, which is text: personas cluster numbers (its \
             shares, `cat_share_<category>`, are)",
        ),
        (
            "personas.exclude=[\"\"]",
            "`--set personas.exclude=[\"\"]`: stage `personas`: `exclude` names ``, which is no feature",
        ),
        (
            "features.users=\"\"",
            "`--set features.users=\"\"`: stage `features`: `users` is empty",
        ),
    ] {
        let o = Override::parse(set).unwrap();
        let err = load_str(Path::new("p.toml"), text, &[o]).unwrap_err();
        assert!(matches!(err, Error::Override(_)), "{err}");
        assert!(err.to_string().starts_with(said), "{err}");
    }
    // Of two `--set`s of one key, the last stands, and its error is told.
    let sets = ["ingest.memory_limit_mb=5", "ingest.memory_limit_mb=0"]
        .map(|s| Override::parse(s).unwrap());
    let err = load_str(Path::new("p.toml"), text, &sets).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`--set ingest.memory_limit_mb=0`: stage `ingest`"),
        "{err}"
    );
    // A nested parameter's error is its own `--set`'s, not the last one of its table.
    let text = format!(
        "{GOOD}\n[stages.predict]\nuses = \"predict\"\nneeds = [\"ingest\", \"features\"]\n"
    );
    for (sets, said) in [
        (
            [
                "predict.ml.models=[\"nosuch\"]",
                "predict.ml.holdout_fraction=0.3",
            ],
            "`--set predict.ml.models=[\"nosuch\"]`: stage `predict`: unknown variant `nosuch`",
        ),
        (
            ["predict.ml.trees=0", "predict.ml.holdout_fraction=0.3"],
            "`--set predict.ml.trees=0`: stage `predict`: `trees` is 0",
        ),
        // A rule set by name, or in a table, and a bound the `--set` broke.
        (
            [
                "predict.rules.r.target=churn",
                "predict.rules.r.when=frequency >",
            ],
            "`--set predict.rules.r.when=frequency >`: stage `predict`: rule `r`: unexpected end",
        ),
        // The rule's text is at fault, not the `--set` of its target after it.
        (
            [
                "predict.rules.r.when=frequency >",
                "predict.rules.r.target=churn",
            ],
            "`--set predict.rules.r.when=frequency >`: stage `predict`: rule `r`: unexpected end",
        ),
        (
            [
                "predict.rules={r={when=\"frequency >\", target=\"churn\"}}",
                "predict.ml.holdout_fraction=0.3",
            ],
            "`--set predict.rules={r={when=\"frequency >\", target=\"churn\"}}`: stage `predict`: rule `r`",
        ),
        (
            ["predict.horizon_days=1", "predict.ml.holdout_fraction=0.3"],
            "`--set predict.horizon_days=1`: stage `predict`: `ml.churn_window_days` (7)",
        ),
    ] {
        let sets = sets.map(|s| Override::parse(s).unwrap());
        let err = load_str(Path::new("p.toml"), &text, &sets).unwrap_err();
        assert!(err.to_string().starts_with(said), "{err}");
    }
    // What a later stage reads, left out of the stage it needs: that stage's error.
    let said = "`--set features.families=[\"search\"]`: stage `features`: stage `predict` \
                reads its `rfm` features (the RFM segments): add \"rfm\" to `families`";
    let o = Override::parse("features.families=[\"search\"]").unwrap();
    let err = load_str(Path::new("p.toml"), &text, &[o]).unwrap_err();
    assert_eq!(err.to_string(), said);
    let o = Override::parse("features.families=[\"search\", \"rfm\"]").unwrap();
    assert!(load_str(Path::new("p.toml"), &text, &[o]).is_ok());
    // A rule's feature from a family left out.
    let rule = "predict.rules={r={when=\"sessions > 3\", target=\"churn\"}}";
    let sets = [rule, "features.families=[\"rfm\"]"].map(|s| Override::parse(s).unwrap());
    let err = load_str(Path::new("p.toml"), &text, &sets).unwrap_err();
    let said = "stage `predict` reads `sessions` in rule `r`: add \"activity\" to `families`";
    assert!(err.to_string().contains(said), "{err}");
    // A users-table attribute without a users table, refused before any data is read.
    let rule = "predict.rules={r={when=\"user_age > 30\", target=\"churn\"}}";
    let err = load_str(
        Path::new("p.toml"),
        &text,
        &[Override::parse(rule).unwrap()],
    );
    let said = "reads the users-table attribute `user_age` in rule `r`, but no users table";
    assert!(err.unwrap_err().to_string().contains(said));
    let sets = [rule, "features.users=\"users.csv\""].map(|s| Override::parse(s).unwrap());
    assert!(load_str(Path::new("p.toml"), &text, &sets).is_ok());
    // The id is every table's, users table or not.
    let rule = "predict.rules={r={when=\"user_id starts_with \\\"u\\\"\", target=\"churn\"}}";
    assert!(
        load_str(
            Path::new("p.toml"),
            &text,
            &[Override::parse(rule).unwrap()]
        )
        .is_ok()
    );
    // The file's own mistake is not a `--set`'s of the same table.
    let own = text.replace(
        "uses = \"predict\"\n",
        "uses = \"predict\"\nwith = { ml = { models = [\"nosuch\"] } }\n",
    );
    let o = Override::parse("predict.ml.holdout_fraction=0.3").unwrap();
    let err = load_str(Path::new("p.toml"), &own, &[o]).unwrap_err();
    assert!(!matches!(err, Error::Override(_)), "{err}");
    assert!(err.to_string().starts_with("p.toml:"), "{err}");
    // A rule's text wrong in the file is the file's, with a `--set` of its target.
    let own = text.replace(
        "uses = \"predict\"\n",
        "uses = \"predict\"\nwith = { rules = { r = { when = \"frequency >\", target = \"churn\" } } }\n",
    );
    let o = Override::parse("predict.rules.r.target=purchase").unwrap();
    let err = load_str(Path::new("p.toml"), &own, &[o]).unwrap_err();
    assert!(!matches!(err, Error::Override(_)), "{err}");
    assert!(err.to_string().starts_with("p.toml:"), "{err}");
    // A stage reads one stage of each kind: a second features stage in `needs`,
    // which nothing would read, is refused where it is named.
    let second = format!(
        "{GOOD}\n[stages.fsearch]\nuses = \"features\"\nneeds = [\"ingest\"]\n\
         with = {{ families = [\"search\"] }}\n\n[stages.predict]\nuses = \"predict\"\n\
         needs = [\"ingest\", \"features\", \"fsearch\"]\n"
    );
    let err = load_str(Path::new("p.toml"), &second, &[])
        .unwrap_err()
        .to_string();
    let line = second[..second.find("needs = [\"ingest\", \"features\"").unwrap()]
        .lines()
        .count()
        + 1;
    assert!(
        err.starts_with(&format!("p.toml:{line}:"))
            && err.contains("needs `features` and `fsearch`, both `features` stages"),
        "{err}"
    );
}

#[test]
fn a_bad_pipeline_name_is_an_error_at_its_line() {
    let text = GOOD.replace("name = \"demo\"", "seed = 1\nname = \"../demo\"");
    assert!(
        file_error(&text).starts_with("p.toml:4:1: pipeline name \"../demo\" must be"),
        "{}",
        file_error(&text)
    );
}

#[test]
fn a_bad_value_in_the_file_is_an_error_at_its_own_line() {
    let text = GOOD.replace(
        "with = { path = \"events.csv\" }",
        "[stages.ingest.with]\npath = \"events.csv\"\nmemory_limit_mb = 0",
    );
    let err = file_error(&text);
    assert!(
        err.starts_with("p.toml:13:1: stage `ingest`: `memory_limit_mb` must be at least 1"),
        "{err}"
    );
}

#[test]
fn each_runs_folder_has_an_id_of_its_own_for_its_shared_parts() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let first = crate::keys::runs_folder_id(one.path()).unwrap();
    assert_eq!(first.len(), 16);
    // Kept: a resumed or later run finds its parts where the first put them.
    assert_eq!(crate::keys::runs_folder_id(one.path()).unwrap(), first);
    assert_ne!(crate::keys::runs_folder_id(two.path()).unwrap(), first);
    // Only the id is left behind, no temporary file.
    let names: Vec<_> = std::fs::read_dir(one.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [".shared-id"]);
    // Something else in its place is refused, not overwritten.
    std::fs::write(two.path().join(".shared-id"), "mine\n").unwrap();
    let err = crate::keys::runs_folder_id(two.path()).unwrap_err();
    let chain = crate::error::error_chain(&err);
    assert!(chain.contains("16 hex digits"), "{chain}");
}

#[test]
fn a_mistake_in_a_mapped_expression_is_located_at_its_key() {
    let text = GOOD.replace(
        "with = { path = \"events.csv\" }",
        "[stages.ingest.with]\npath = \"events.csv\"\n[stages.ingest.with.columns]\n\
         user_id = \"Email\"\namount = { expr = \"Lineitem price\" }",
    );
    let err = file_error(&text);
    // Line 15 holds `amount`, not the `with` table's header on line 11.
    assert!(err.starts_with("p.toml:15:1: stage `ingest`: "), "{err}");
    assert!(err.contains("unexpected `price` at column 10"), "{err}");
}

#[test]
fn a_rules_unknown_feature_is_located_at_its_when() {
    let text = format!(
        "{GOOD}\n[stages.predict]\nuses = \"predict\"\nneeds = [\"ingest\", \"features\"]\n\n\
         [stages.predict.with.rules.lapsing]\n# days since the last event\ntarget = \"churn\"\n\
         when = \"recency_dayz > 3\"\n"
    );
    let err = load_str(Path::new("p.toml"), &text, &[])
        .unwrap_err()
        .to_string();
    let line = text[..text.find("when = \"recency_dayz").unwrap()]
        .lines()
        .count()
        + 1;
    assert!(err.starts_with(&format!("p.toml:{line}:")), "{err}");
    assert!(err.contains("did you mean `recency_days`?"), "{err}");
}

#[test]
fn a_pipeline_file_not_in_utf8_is_refused_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, b"[pipeline]\nname = \"caf\xe9\"\n").unwrap();
    let err = crate::plan::load(&path, &[]).unwrap_err();
    let said = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        said.contains("line 2, column 12 is not UTF-8 text"),
        "{said}"
    );
}

#[test]
fn personas_on_a_feature_the_features_stage_does_not_make_are_refused_at_the_plan() {
    let refused = |sets: &[&str], said: &str| {
        let sets: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
        let err = load_str(Path::new("p.toml"), GOOD, &sets).unwrap_err();
        assert!(err.to_string().contains(said), "{sets:?}: {err}");
    };
    let features = "personas.features=[\"searches\", \"frequency\"]";
    refused(
        &[features, "features.families=[\"rfm\", \"activity\"]"],
        "stage `personas` clusters on `searches`, which it does not make",
    );
    let share = "personas.features=[\"cat_share_books\"]";
    refused(
        &[share, "features.top_categories=0"],
        "clusters on `cat_share_books`",
    );
    refused(
        &["personas.features=[\"user_age\"]"],
        "clusters on `user_age`",
    );
    refused(
        &[
            "personas.features=[\"frequency\"]",
            "personas.exclude=[\"frequency\"]",
        ],
        "`features` names `frequency`, which `exclude` leaves out",
    );
    let made = [features, "features.families=[\"rfm\", \"search\"]"];
    let sets = made.map(|s| Override::parse(s).unwrap());
    assert!(load_str(Path::new("p.toml"), GOOD, &sets).is_ok());
    let sets = [share, "personas.k=3"].map(|s| Override::parse(s).unwrap());
    assert!(load_str(Path::new("p.toml"), GOOD, &sets).is_ok());
}

#[test]
fn persona_lists_without_a_profile_stage_are_refused() {
    let text = |needs: &str| {
        format!(
            "{GOOD}\n[stages.recommend]\nuses = \"recommend\"\nneeds = {needs}\n\
             with = {{ model = \"persona_popular\" }}\n"
        )
    };
    let err = load_str(Path::new("p.toml"), &text("[\"ingest\"]"), &[]).unwrap_err();
    assert!(err.to_string().contains("needs a profile stage"), "{err}");
    assert!(
        load_str(
            Path::new("p.toml"),
            &text("[\"ingest\", \"personas\"]"),
            &[]
        )
        .is_ok()
    );
}

#[test]
fn a_set_key_of_a_table_keeps_its_other_defaults() {
    let text = format!(
        "{GOOD}\n[stages.recommend]\nuses = \"recommend\"\nneeds = [\"ingest\"]\n\
         \n[stages.predict]\nuses = \"predict\"\nneeds = [\"ingest\", \"features\"]\n"
    );
    let sets = [
        "recommend.weights.view=2",
        "predict.rules.x.when=frequency > 3",
        "predict.rules.x.target=purchase",
    ]
    .map(|s| Override::parse(s).unwrap());
    let plan = load_str(Path::new("p.toml"), &text, &sets).unwrap();
    let params = |name: &str| &plan.stages.iter().find(|s| s.name == name).unwrap().params;
    let weights = &params("recommend")["weights"];
    // As the file writes them, so that the key is the file's.
    let weight = |key: &str| weights[key].as_i64();
    let numbers = ["view", "add_to_cart", "purchase"].map(weight);
    assert_eq!(numbers, [Some(2), Some(3), Some(5)]);
    assert_eq!(weights["rating"], "value");
    let rules = params("predict")["rules"].as_object().unwrap();
    let names: Vec<&str> = rules.keys().map(String::as_str).collect();
    assert_eq!(names, ["lapsing", "recent_buyer", "x"]);
    // Inside a table the file gave, its keys stand: no default comes back.
    let own = text.replace(
        "uses = \"predict\"\n",
        "uses = \"predict\"\nwith = { rules = { y = { when = \"frequency > 1\", target = \"churn\" } } }\n",
    );
    let set = Override::parse("predict.rules.lapsing.when=frequency > 3").unwrap();
    let err = load_str(Path::new("p.toml"), &own, &[set]).unwrap_err();
    assert!(err.to_string().contains("missing field `target`"), "{err}");
    // A whole table given replaces it.
    let whole = Override::parse("recommend.weights={view=2}").unwrap();
    let plan = load_str(Path::new("p.toml"), &text, &[whole]).unwrap();
    let recommend = plan.stages.iter().find(|s| s.name == "recommend").unwrap();
    assert_eq!(recommend.params["weights"].as_object().unwrap().len(), 1);
}

#[test]
fn static_columns_without_a_users_table_are_refused() {
    let set = Override::parse("features.static_columns=[\"age\"]").unwrap();
    let err = load_str(Path::new("p.toml"), GOOD, &[set]).unwrap_err();
    assert!(
        err.to_string().contains("no `users` table is joined"),
        "{err}"
    );
}

#[test]
fn a_need_written_as_text_is_told_to_be_a_list() {
    let text = GOOD.replace("needs = [\"ingest\"]", "needs = \"ingest\"");
    let err = load_str(Path::new("p.toml"), &text, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected a sequence"), "{err}");
    let hint = match load_str(Path::new("p.toml"), &text, &[]) {
        Err(Error::File(e)) => e.hint.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(hint.as_deref(), Some("a list, even of one: [\"ingest\"]"));
    // Names given as one text with commas are the list's items.
    let text = GOOD.replace(
        "needs = [\"personas\", \"features\"]",
        "needs = \"personas, features\"",
    );
    let hint = match load_str(Path::new("p.toml"), &text, &[]) {
        Err(Error::File(e)) => e.hint.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        hint.as_deref(),
        Some("a list, even of one: [\"personas\", \"features\"]")
    );
    // A name listed twice is said to be.
    let text = GOOD.replace("needs = [\"ingest\"]", "needs = [\"ingest\", \"ingest\"]");
    let err = load_str(Path::new("p.toml"), &text, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stage `features` lists `ingest` twice in `needs`"),
        "{err}"
    );
}
