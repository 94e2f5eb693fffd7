use std::collections::BTreeMap;

use super::counts::complete;
use super::users::lookup;
use super::*;
use userlens_model::time::DAY_MICROS;

#[test]
fn a_predictor_with_holes_is_skipped_not_scored() {
    assert_eq!(
        complete(vec![Some(0.5), Some(0.0)], "expected purchases"),
        Ok(vec![0.5, 0.0])
    );
    assert_eq!(
        complete(vec![Some(0.5), None, None], "P(alive)"),
        Err("P(alive) could not be computed for 2 of 3 holdout users".to_string())
    );
}

#[test]
fn check_parses_rules_and_refuses_bad_ones() {
    let params: PredictParams = toml::from_str(
        r#"
        horizon_days = 14
        [rules.quiet]
        when = "recency_days > 60 and frequency > 0"
        target = "churn"
        "#,
    )
    .unwrap();
    let checked = params.check().unwrap();
    assert_eq!(checked.rules.len(), 1);
    assert_eq!(checked.cutoff(20 * DAY_MICROS), 6 * DAY_MICROS);
    let bad: PredictParams = toml::from_str(
        r#"
        [rules.quiet]
        when = "recency_days >> 60"
        target = "churn"
        "#,
    )
    .unwrap();
    assert!(
        bad.check()
            .unwrap_err()
            .to_string()
            .starts_with("rule `quiet`")
    );
    let zero = PredictParams {
        horizon_days: 0,
        ..PredictParams::default()
    };
    assert_eq!(
        zero.check().unwrap_err().to_string(),
        "`horizon_days` must be at least 1"
    );
    let long = PredictParams {
        horizon_days: 3651,
        ..PredictParams::default()
    };
    assert_eq!(
        long.check().unwrap_err().to_string(),
        "`horizon_days` is 3651, it must be at most 3650"
    );
    let window = |days: u32| PredictParams {
        horizon_days: 28,
        ml: MlParams {
            churn_window_days: days,
            ..MlParams::default()
        },
        ..PredictParams::default()
    };
    assert!(window(28).check().is_ok());
    assert_eq!(
        window(29).check().unwrap_err().to_string(),
        "`ml.churn_window_days` (29) is longer than `horizon_days` (28): the churn labels \
         would read events after the as-of date; set it to at most 28"
    );
}

#[test]
fn check_bounds_the_rules_before_parsing_them() {
    let rule = |when: &str| RuleParams {
        when: when.into(),
        target: Target::Churn,
    };
    let many = PredictParams {
        rules: (0..257).map(|i| (format!("r{i}"), rule("a >"))).collect(),
        ..PredictParams::default()
    };
    assert_eq!(
        many.check().unwrap_err().to_string(),
        "`rules` has 257 rules, more than the 256 allowed"
    );
    let fits = PredictParams {
        rules: (0..256)
            .map(|i| (format!("r{i}"), rule("events > 1")))
            .collect(),
        ..PredictParams::default()
    };
    assert_eq!(fits.check().unwrap().rules.len(), 256);
    // A name no features table has is refused here, with the nearest that is.
    let unknown = PredictParams {
        rules: BTreeMap::from([("r".to_string(), rule("recency > 3"))]),
        ..PredictParams::default()
    };
    assert_eq!(
        unknown.check().unwrap_err().to_string(),
        "rule `r`: unknown feature `recency` at column 1, did you mean `recency_days`?"
    );
    // Category shares and users-table attributes are named by the data.
    let named = PredictParams {
        rules: BTreeMap::from([(
            "r".to_string(),
            rule("cat_share_books > 0.5 and user_age > 30 and top_category == \"x\""),
        )]),
        ..PredictParams::default()
    };
    assert!(named.check().is_ok());
    let long = PredictParams {
        rules: BTreeMap::from([("big".to_string(), rule(&"(".repeat(5000)))]),
        ..PredictParams::default()
    };
    assert_eq!(
        long.check().unwrap_err().to_string(),
        "rule `big` is 5000 bytes long, more than the 4096 allowed"
    );
}

#[test]
fn each_parameter_has_one_home() {
    // `ml.horizon_days` was accepted and then overwritten by the stage's.
    let err = toml::from_str::<PredictParams>(
        r#"
        horizon_days = 28
        [ml]
        horizon_days = 7
        "#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field `horizon_days`"), "{err}");
}

/// One event: user, time (days since 1970), type, amount.
type Event = (String, f64, &'static str, Option<f64>);

/// A user who views every day and buys every fifth, from `first` to `last` day.
fn regular(user: &str, first: i64, last: i64) -> Vec<Event> {
    (first..=last)
        .flat_map(|day| {
            let view = (user.to_string(), day as f64 + 0.25, "view", None);
            let purchase = (day - first) % 5 == 0;
            let buy = (user.to_string(), day as f64 + 0.5, "purchase", Some(20.0));
            std::iter::once(view).chain(purchase.then_some(buy))
        })
        .collect()
}

fn micros(day: f64) -> i64 {
    (day * DAY_MICROS as f64) as i64
}

/// The events as one part, sorted by user and time, `event_time` a datetime.
fn parts(events: &[Event]) -> Vec<LazyFrame> {
    let mut events = events.to_vec();
    events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let frame = df! {
        "user_id" => events.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        "event_time" => events.iter().map(|e| micros(e.1)).collect::<Vec<_>>(),
        "event_type" => events.iter().map(|e| e.2).collect::<Vec<_>>(),
        "amount" => events.iter().map(|e| e.3).collect::<Vec<_>>(),
    }
    .unwrap()
    .lazy()
    .with_column(col("event_time").cast(DataType::Datetime(
        polars::prelude::TimeUnit::Microseconds,
        None,
    )));
    vec![frame]
}

/// The RFM features the stage reads, of every user with an event before `at`.
fn features(events: &[Event], at: i64) -> DataFrame {
    let mut users: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events.iter().filter(|e| micros(e.1) < at) {
        users.entry(e.0.as_str()).or_default().push(e);
    }
    let at = at as f64 / DAY_MICROS as f64;
    let (mut ids, mut recency, mut frequency, mut monetary, mut aov, mut tenure, mut count) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (user, events) in users {
        let first = events.iter().map(|e| e.1).fold(f64::INFINITY, f64::min);
        let last = events.iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
        let spend: Vec<f64> = events
            .iter()
            .filter(|e| e.2 == "purchase")
            .map(|e| e.3.unwrap_or(0.0))
            .collect();
        ids.push(user.to_string());
        recency.push((at - last).floor());
        frequency.push(spend.len() as f64);
        monetary.push(spend.iter().sum::<f64>());
        aov.push((!spend.is_empty()).then(|| spend.iter().sum::<f64>() / spend.len() as f64));
        tenure.push((at - first).floor());
        count.push(events.len() as f64);
    }
    df! {
        "user_id" => ids,
        "recency_days" => recency,
        "frequency" => frequency,
        "monetary" => monetary,
        "avg_order_value" => aov,
        "tenure_days" => tenure,
        "events" => count,
    }
    .unwrap()
}

/// Runs the stage as the pipeline does; `as_of` defaults to the midnight after the
/// last event.
fn run(events: &[Event], as_of: Option<i64>) -> Predictions {
    let last = events.iter().map(|e| micros(e.1)).max().unwrap();
    let as_of = as_of.unwrap_or_else(|| userlens_model::time::next_midnight(last));
    let params = PredictParams::default().check().unwrap();
    let cutoff = params.cutoff(as_of);
    predict(
        &parts(events),
        &features(events, cutoff),
        &features(events, as_of),
        as_of,
        &params,
        42,
        None,
    )
    .unwrap()
}

fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// Every predictor of both targets is in the report, skipped, with a reason.
fn assert_all_skipped(predictions: &Predictions, users: usize) {
    let report = &predictions.model_report;
    let rows: Vec<(String, String)> = strings(report, "predictor")
        .into_iter()
        .zip(strings(report, "target"))
        .map(|(p, t)| (p.unwrap(), t.unwrap()))
        .collect();
    for (predictor, target) in [
        ("logistic", "p_purchase"),
        ("tree", "p_purchase"),
        ("bg/nbd", "p_purchase"),
        ("pareto/nbd", "p_purchase"),
        ("rule:recent_buyer", "p_purchase"),
        ("logistic", "churn"),
        ("tree", "churn"),
        ("bg/nbd", "churn"),
        ("pareto/nbd", "churn"),
        ("rule:lapsing", "churn"),
        ("expected_purchases", "purchases"),
        ("p_alive", "active"),
    ] {
        assert!(
            rows.contains(&(predictor.to_string(), target.to_string())),
            "no row for {predictor} / {target}:\n{report}"
        );
    }
    assert!(
        strings(report, "status")
            .iter()
            .all(|s| s.as_deref() == Some("skipped")),
        "{report}"
    );
    assert!(
        strings(report, "reason")
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| !r.is_empty())),
        "{report}"
    );
    assert_eq!(predictions.calibration.height(), 0);
    assert_eq!(predictions.user_predictions.height(), users);
}

/// A user who buys on the first day and views on the last: never active in the week
/// before the cutoff, so without a churn label.
fn sparse(user: &str, first: i64, last: i64) -> Vec<Event> {
    vec![
        (user.to_string(), first as f64 + 0.5, "purchase", Some(20.0)),
        (user.to_string(), last as f64 + 0.5, "view", None),
    ]
}

/// A user who views every other day and never buys.
fn browser(user: &str, first: i64, last: i64) -> Vec<Event> {
    (first..=last)
        .step_by(2)
        .map(|day| (user.to_string(), day as f64 + 0.25, "view", None))
        .collect()
}

type Pattern = fn(&str, i64, i64) -> Vec<Event>;

#[test]
fn one_user_finishes_with_every_predictor_skipped() {
    for pattern in [regular as Pattern, sparse, browser] {
        let predictions = run(&pattern("u1", 0, 150), None);
        assert_all_skipped(&predictions, 1);
    }
}

#[test]
fn two_users_finish_with_every_predictor_skipped() {
    for pattern in [regular as Pattern, sparse, browser] {
        let events: Vec<Event> = [pattern("u1", 0, 150), pattern("u2", 3, 140)].concat();
        let predictions = run(&events, None);
        assert_all_skipped(&predictions, 2);
    }
}

#[test]
fn identical_users_finish_with_every_predictor_skipped() {
    for pattern in [regular as Pattern, sparse, browser] {
        let events: Vec<Event> = (0..60)
            .flat_map(|i| pattern(&format!("u{i:02}"), 0, 150))
            .collect();
        let predictions = run(&events, None);
        assert_all_skipped(&predictions, 60);
    }
}

#[test]
fn less_history_than_the_horizon_skips_every_predictor_with_a_row_each() {
    // Ten days of events before a 28-day horizon.
    let events: Vec<Event> = (0..60)
        .flat_map(|i| regular(&format!("u{i:02}"), 140, 150))
        .collect();
    let predictions = run(&events, None);
    assert_all_skipped(&predictions, 60);
}

#[test]
fn an_as_of_date_after_all_data_finishes() {
    let events: Vec<Event> = (0..60)
        .flat_map(|i| regular(&format!("u{i:02}"), i, 100 + i))
        .collect();
    let predictions = run(&events, Some(400 * DAY_MICROS));
    assert_all_skipped(&predictions, 60);
}

/// 400 users who start, stay a while and leave: each is active on a share of days
/// and buys on a share of those, so both targets have both classes.
fn population() -> Vec<Event> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(17);
    let mut events = Vec::new();
    for u in 0..400 {
        let user = format!("u{u:03}");
        let start = rng.gen_range(0..150);
        let stay = (-rng.r#gen::<f64>().max(1e-9).ln() * 60.0) as i64;
        let (active, buys) = (rng.gen_range(0.05..0.6), rng.gen_range(0.02..0.3));
        let amount = rng.gen_range(10.0..100.0_f64).round();
        for day in start..(start + stay + 1).min(200) {
            if rng.r#gen::<f64>() < active {
                events.push((user.clone(), day as f64 + 0.3, "view", None));
                if rng.r#gen::<f64>() < buys {
                    events.push((user.clone(), day as f64 + 0.4, "purchase", Some(amount)));
                }
            }
        }
    }
    events
}

/// The stage on `events` at day 200 with gates of 3 users per class.
fn run_with(events: &[Event], params: PredictParams) -> (Predictions, DataFrame) {
    let params = PredictParams {
        ml: MlParams {
            min_positives: 3,
            min_negatives: 3,
            ..params.ml
        },
        ..params
    }
    .check()
    .unwrap();
    let as_of = 200 * DAY_MICROS;
    let at_cutoff = features(events, params.cutoff(as_of));
    let predictions = predict(
        &parts(events),
        &at_cutoff,
        &features(events, as_of),
        as_of,
        &params,
        42,
        None,
    )
    .unwrap();
    (predictions, at_cutoff)
}

/// The report's row of `predictor` for `target`, by column name.
fn row(report: &DataFrame, predictor: &str, target: &str) -> BTreeMap<String, AnyValue<'static>> {
    let i = row_index(report, predictor, target);
    report
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.get(i).unwrap().into_static()))
        .collect()
}

/// The first row of `predictor` and `target`.
fn row_index(report: &DataFrame, predictor: &str, target: &str) -> usize {
    let (predictors, targets) = (strings(report, "predictor"), strings(report, "target"));
    (0..report.height())
        .find(|&i| {
            predictors[i].as_deref() == Some(predictor) && targets[i].as_deref() == Some(target)
        })
        .unwrap_or_else(|| panic!("no row for {predictor} / {target}:\n{report}"))
}

fn count(value: &AnyValue) -> u64 {
    match value {
        AnyValue::UInt64(v) => *v,
        other => panic!("not a count: {other:?}"),
    }
}

#[test]
fn the_report_says_what_each_predictor_was_fitted_and_scored_on() {
    let events = population();
    let (predictions, at_cutoff) = run_with(&events, PredictParams::default());
    let report = &predictions.model_report;
    assert_eq!(
        report.get_column_names()[10..],
        [
            "fitted_users",
            "scored_users",
            "choice_used_holdout",
            "correlation",
            "mae",
            "top_decile_revenue_share",
            "population"
        ]
    );
    let choices = report
        .column("choice_used_holdout")
        .unwrap()
        .bool()
        .unwrap();
    assert!(choices.iter().all(|v| v == Some(false)), "{report}");
    // Every user with features at the cutoff has a purchase label.
    let labelled = at_cutoff.height() as u64;
    for kind in ["logistic", "tree"] {
        let r = row(report, kind, "p_purchase");
        assert_eq!(r["status"], AnyValue::StringOwned("scored".into()), "{r:?}");
        let (fitted, scored) = (count(&r["fitted_users"]), count(&r["scored_users"]));
        assert_eq!(fitted + scored, labelled, "{r:?}");
        assert_eq!(
            scored,
            count(&r["positives"]) + count(&r["negatives"]),
            "{r:?}"
        );
    }
    let rule = row(report, "rule:lapsing", "churn");
    assert_eq!(count(&rule["fitted_users"]), 0);
    let buyers = events
        .iter()
        .filter(|e| e.2 == "purchase" && micros(e.1) < 172 * DAY_MICROS)
        .map(|e| e.0.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert_eq!(
        count(&row(report, "bg/nbd", "churn")["fitted_users"]),
        buyers
    );
    // Each model is scored again on the customers the count models are scored on:
    // the rows after its own, with the count models' users and labels.
    let populations = report.column("population").unwrap().str().unwrap();
    let (predictors, targets) = (strings(report, "predictor"), strings(report, "target"));
    let on_customers = |predictor: &str| {
        (0..report.height())
            .find(|&i| {
                predictors[i].as_deref() == Some(predictor)
                    && targets[i].as_deref() == Some("p_purchase")
                    && populations.get(i) == Some("customers")
            })
            .unwrap_or_else(|| panic!("no customers' row of {predictor}:\n{report}"))
    };
    let counted = on_customers("bg/nbd");
    for kind in ["logistic", "tree"] {
        let i = on_customers(kind);
        for column in ["scored_users", "positives", "negatives"] {
            let c = report.column(column).unwrap();
            assert_eq!(c.get(i).unwrap(), c.get(counted).unwrap(), "{column}");
        }
        assert_eq!(
            populations.get(row_index(report, kind, "p_purchase")),
            Some("all")
        );
    }

    let revenue = row(report, "revenue", "revenue");
    assert_eq!(revenue["status"], AnyValue::StringOwned("scored".into()));
    let purchase = row(report, "logistic", "p_purchase");
    assert_eq!(revenue["scored_users"], purchase["scored_users"]);
    let AnyValue::Float64(share) = revenue["top_decile_revenue_share"] else {
        panic!("{revenue:?}");
    };
    let AnyValue::Float64(correlation) = revenue["correlation"] else {
        panic!("{revenue:?}");
    };
    // Buyers spend alike over time here, so the prediction ranks revenue well.
    assert!(correlation > 0.3, "{revenue:?}");
    assert!(share > 0.2 && share <= 1.0, "{revenue:?}");
    assert!(matches!(revenue["mae"], AnyValue::Float64(v) if v > 0.0));
}

#[test]
fn a_rule_that_fires_for_all_or_none_is_degenerate() {
    let events = population();
    let mut params = PredictParams::default();
    for (name, when, target) in [
        ("always", "frequency >= 0", Target::Purchase),
        ("never", "recency_days > 100000", Target::Churn),
    ] {
        let rule = RuleParams {
            when: when.into(),
            target,
        };
        params.rules.insert(name.into(), rule);
    }
    let (predictions, _) = run_with(&events, params);
    let report = &predictions.model_report;
    let always = row(report, "rule:always", "p_purchase");
    assert_eq!(always["status"], AnyValue::StringOwned("degenerate".into()));
    let AnyValue::StringOwned(reason) = &always["reason"] else {
        panic!("{always:?}");
    };
    assert!(
        reason.starts_with("fires for all ") && reason.ends_with(" holdout users"),
        "{reason}"
    );
    let never = row(report, "rule:never", "churn");
    assert_eq!(never["status"], AnyValue::StringOwned("degenerate".into()));
    assert_eq!(
        never["reason"],
        AnyValue::StringOwned("fires for no holdout user".into())
    );
    // The default churn rule splits the users it is scored on.
    let lapsing = row(report, "rule:lapsing", "churn");
    assert_eq!(
        lapsing["status"],
        AnyValue::StringOwned("scored".into()),
        "{lapsing:?}"
    );
    assert!(
        matches!(lapsing["auc"], AnyValue::Float64(v) if v > 0.5),
        "{lapsing:?}"
    );
    // A 0/1 rule has no log loss, Brier score or calibration to speak of; a model has.
    assert_eq!(lapsing["log_loss"], AnyValue::Null, "{lapsing:?}");
    assert_eq!(lapsing["brier"], AnyValue::Null, "{lapsing:?}");
    let AnyValue::StringOwned(why) = &lapsing["reason"] else {
        panic!("{lapsing:?}");
    };
    assert!(why.starts_with("a rule says 0 or 1"), "{why}");
    let logistic = row(report, "logistic", "churn");
    assert!(
        matches!(logistic["log_loss"], AnyValue::Float64(_)),
        "{logistic:?}"
    );
    let calibrated = strings(&predictions.calibration, "predictor");
    assert!(calibrated.iter().any(|p| p.as_deref() == Some("logistic")));
    assert!(
        !calibrated.iter().any(|p| p
            .as_deref()
            .is_some_and(|p| p.starts_with("rule:") || p == "p_alive")),
        "{calibrated:?}"
    );
}

/// [`population`] over 228 days with 80 browsers who view for months and never buy:
/// the stage sees the first 200 days, the last 28 are the truth its columns predict.
fn population_with_a_future() -> (Vec<Event>, Vec<Event>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(29);
    let mut events = Vec::new();
    for u in 0..480 {
        let user = format!("u{u:03}");
        let start = rng.gen_range(0..150);
        let stay = (-rng.r#gen::<f64>().max(1e-9).ln() * 80.0) as i64;
        let browser = u >= 400;
        let (active, buys) = (rng.gen_range(0.05..0.6), rng.gen_range(0.02..0.3));
        let amount = rng.gen_range(10.0..100.0_f64).round();
        for day in start..(start + stay + 1).min(228) {
            if rng.r#gen::<f64>() < active {
                events.push((user.clone(), day as f64 + 0.3, "view", None));
                if !browser && rng.r#gen::<f64>() < buys {
                    events.push((user.clone(), day as f64 + 0.4, "purchase", Some(amount)));
                }
            }
        }
    }
    events.into_iter().partition(|e| e.1 < 200.0)
}

fn floats(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

#[test]
fn non_buyers_never_get_a_count_model_value() {
    let (past, _) = population_with_a_future();
    let (predictions, _) = run_with(&past, PredictParams::default());
    let table = &predictions.user_predictions;
    let buyers: std::collections::BTreeSet<&str> = past
        .iter()
        .filter(|e| e.2 == "purchase")
        .map(|e| e.0.as_str())
        .collect();
    let ids = strings(table, "user_id");
    let expected_model = strings(table, "expected_purchases_model");
    let alive_model = strings(table, "p_alive_model");
    let revenue_model = strings(table, "predicted_revenue_model");
    let expected = floats(table, "expected_purchases");
    let (mut browsers, mut repeat) = (Vec::new(), Vec::new());
    for i in 0..ids.len() {
        let id = ids[i].as_deref().unwrap();
        let (e, a) = (expected_model[i].as_deref(), alive_model[i].as_deref());
        if buyers.contains(id) {
            assert_eq!(e, Some("bg/nbd"), "{id}");
            assert_eq!(a, Some("pareto/nbd"), "{id}");
            repeat.push(expected[i]);
        } else {
            assert!(
                e.is_some_and(|m| m.starts_with("first_purchase:") || m == "conversion_rate"),
                "{id}: {e:?}"
            );
            assert!(
                a.is_some_and(|m| m.starts_with("activity:") || m == "activity_rate"),
                "{id}: {a:?}"
            );
            browsers.push(expected[i]);
        }
        assert!(revenue_model[i].is_some(), "{id}");
        assert!(expected[i].is_finite() && expected[i] >= 0.0, "{id}");
    }
    assert!(
        browsers.len() >= 80,
        "{} users without a purchase",
        browsers.len()
    );
    // A browser is no new customer who bought today: below the typical buyer.
    repeat.sort_by(f64::total_cmp);
    browsers.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];
    assert!(
        median(&browsers) < median(&repeat),
        "{browsers:?} {repeat:?}"
    );
}

#[test]
fn a_repeat_customer_whose_repeats_were_refunds_still_gets_a_clv() {
    let mut events = population();
    let refunder = |day: f64, amount: f64| ("zrefund".to_string(), day, "purchase", Some(amount));
    // Repeat days worth -90 (a big refund the day of a purchase) and 10.
    events.extend([
        refunder(20.3, 40.0),
        refunder(60.3, 10.0),
        refunder(60.5, -100.0),
        refunder(90.3, 10.0),
    ]);
    let (predictions, _) = run_with(&events, PredictParams::default());
    let table = &predictions.user_predictions;
    let ids = strings(table, "user_id");
    let row = ids
        .iter()
        .position(|id| id.as_deref() == Some("zrefund"))
        .unwrap();
    let (clv, revenue) = (
        floats(table, "clv")[row],
        floats(table, "predicted_revenue")[row],
    );
    assert!(
        clv.is_finite() && clv > 0.0,
        "clv {clv}, predicted revenue {revenue}"
    );
}

#[test]
fn newcomers_in_the_horizon_do_not_count_in_the_rates_of_non_buyers() {
    // 40 browsers seen once early who never come back, and 40 newcomers who first
    // appear in the horizon (after the cutoff, day 172). The users known at the
    // cutoff are all of one class, so no activity model: the rate stands in.
    let mut events: Vec<Event> = Vec::new();
    for u in 0..40 {
        events.push((format!("gone{u:02}"), 10.0 + f64::from(u), "view", None));
        events.push((
            format!("new{u:02}"),
            185.0 + f64::from(u % 10),
            "view",
            None,
        ));
    }
    let (predictions, _) = run_with(&events, PredictParams::default());
    let table = &predictions.user_predictions;
    let (ids, alive) = (strings(table, "user_id"), floats(table, "p_alive"));
    let model = strings(table, "p_alive_model");
    let gone: Vec<usize> = (0..ids.len())
        .filter(|&i| ids[i].as_deref().is_some_and(|id| id.starts_with("gone")))
        .collect();
    assert_eq!(gone.len(), 40);
    for i in gone {
        // None of the non-buyers known at the cutoff came back: a newcomer is active
        // by being there, and would make the rate a half.
        assert_eq!(model[i].as_deref(), Some("activity_rate"), "{:?}", ids[i]);
        assert_eq!(alive[i], 0.0, "{:?}", ids[i]);
    }
}

#[test]
fn without_a_purchase_p_alive_is_scored_as_the_activity_model_gives_it() {
    // The population's views alone: no customer, but users active or not in the
    // horizon, and every user's P(alive) from the activity model.
    let views: Vec<Event> = (population().into_iter())
        .filter(|e| e.2 == "view")
        .collect();
    let (predictions, _) = run_with(&views, PredictParams::default());
    let r = row(&predictions.model_report, "p_alive", "active");
    assert_eq!(r["status"], AnyValue::StringOwned("scored".into()), "{r:?}");
    let sources = strings(&predictions.user_predictions, "p_alive_model");
    assert!(
        sources
            .iter()
            .all(|s| s.as_deref().is_some_and(|s| s.starts_with("activity:")))
    );
    // Purchases only after the cutoff: today's customers get a count model's
    // P(alive), which no holdout customer scores, so the row is skipped.
    let mut late = views.clone();
    for u in 0..40 {
        late.push((format!("u{u:03}"), 190.5, "purchase", Some(20.0)));
        late.push((format!("u{u:03}"), 195.5, "purchase", Some(20.0)));
    }
    late.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let (predictions, _) = run_with(&late, PredictParams::default());
    let r = row(&predictions.model_report, "p_alive", "active");
    assert_eq!(
        r["status"],
        AnyValue::StringOwned("skipped".into()),
        "{r:?}"
    );
}

#[test]
fn every_column_is_scored_on_its_target_and_beats_a_naive_baseline() {
    let (past, future) = population_with_a_future();
    let (predictions, _) = run_with(&past, PredictParams::default());
    let report = &predictions.model_report;
    let scored = |predictor: &str, target: &str| {
        let r = row(report, predictor, target);
        assert_eq!(r["status"], AnyValue::StringOwned("scored".into()), "{r:?}");
        r
    };
    let expected_row = scored("expected_purchases", "purchases");
    assert!(matches!(expected_row["mae"], AnyValue::Float64(v) if v > 0.0));
    assert!(matches!(expected_row["correlation"], AnyValue::Float64(_)));
    scored("p_alive", "active");
    for predictor in [
        "revenue",
        "revenue:ml",
        "revenue:expected_purchases*gamma-gamma",
    ] {
        scored(predictor, "revenue");
    }

    // Against what each user did in the 28 days after the as-of date.
    let table = &predictions.user_predictions;
    let ids = strings(table, "user_id");
    let (mut bought, mut active, mut revenue) = (
        BTreeMap::<&str, bool>::new(),
        BTreeMap::<&str, bool>::new(),
        BTreeMap::<&str, f64>::new(),
    );
    for e in &future {
        active.insert(e.0.as_str(), true);
        if e.2 == "purchase" {
            bought.insert(e.0.as_str(), true);
            *revenue.entry(e.0.as_str()).or_default() += e.3.unwrap_or(0.0);
        }
    }
    let label = |m: &BTreeMap<&str, bool>| -> Vec<bool> {
        ids.iter()
            .map(|id| m.contains_key(id.as_deref().unwrap()))
            .collect()
    };
    let actual: Vec<f64> = ids
        .iter()
        .map(|id| revenue.get(id.as_deref().unwrap()).copied().unwrap_or(0.0))
        .collect();
    // The naive baselines read the same features at the as-of date.
    let now = features(&past, 200 * DAY_MICROS);
    let by_user = |name: &str| -> Vec<f64> {
        let values = lookup(&now, name).unwrap();
        ids.iter()
            .map(|id| values.get(id.as_deref().unwrap()).copied().unwrap_or(0.0))
            .collect()
    };
    let rate: Vec<f64> = by_user("frequency")
        .iter()
        .zip(by_user("tenure_days"))
        .map(|(f, t)| f / (t + 1.0))
        .collect();
    let spend_rate: Vec<f64> = by_user("monetary")
        .iter()
        .zip(by_user("tenure_days"))
        .map(|(m, t)| m / (t + 1.0))
        .collect();

    let auc = |p: &[f64], y: &[bool]| metrics::auc(p, y).unwrap();
    let (buys, came_back) = (label(&bought), label(&active));
    let expected = floats(table, "expected_purchases");
    assert!(
        auc(&expected, &buys) >= auc(&rate, &buys),
        "expected purchases {} against the purchase rate {}",
        auc(&expected, &buys),
        auc(&rate, &buys)
    );
    // P(alive) against lifetimes' way: BG/NBD's for buyers, 0 for everyone else.
    let alive = floats(table, "p_alive");
    let lifetimes: Vec<f64> = floats(table, "p_alive_bgnbd")
        .iter()
        .map(|p| if p.is_nan() { 0.0 } else { *p })
        .collect();
    assert!(
        auc(&alive, &came_back) >= auc(&lifetimes, &came_back),
        "P(alive) {} against BG/NBD's {}",
        auc(&alive, &came_back),
        auc(&lifetimes, &came_back)
    );
    let predicted = floats(table, "predicted_revenue");
    let r = |p: &[f64]| metrics::correlation(p, &actual).unwrap().unwrap();
    assert!(
        r(&predicted) >= r(&spend_rate),
        "predicted revenue {} against the spend rate {}",
        r(&predicted),
        r(&spend_rate)
    );
}

/// Each part's inputs read by `part_inputs`, sent as tables through Parquet (as a
/// cluster sends them) and read back.
struct OverTheWire<'a> {
    parts: &'a [LazyFrame],
    calls: std::cell::Cell<usize>,
}

impl RemoteInputs for OverTheWire<'_> {
    fn part_inputs(
        &self,
        cutoff: i64,
        as_of: i64,
        unit: crate::stats::TimeUnit,
        churn_window_days: u32,
    ) -> Result<Vec<PartInputs>> {
        self.calls.set(self.calls.get() + 1);
        self.parts
            .iter()
            .map(|part| {
                let inputs = part_inputs(part, cutoff, as_of, unit, churn_window_days)?;
                PartInputs::from_tables(super::events::tests::over_the_wire(
                    inputs.into_tables().unwrap(),
                ))
            })
            .collect()
    }
}

#[test]
fn inputs_read_elsewhere_give_the_same_predictions() {
    let events = population();
    // Three parts of whole users, as an out-of-core ingest writes them.
    let split: Vec<LazyFrame> = (0..3)
        .flat_map(|k| {
            let mine: Vec<Event> = events
                .iter()
                .filter(|e| e.0[1..].parse::<usize>().unwrap() % 3 == k)
                .cloned()
                .collect();
            parts(&mine)
        })
        .collect();
    let params = PredictParams {
        ml: MlParams {
            min_positives: 3,
            min_negatives: 3,
            ..MlParams::default()
        },
        ..PredictParams::default()
    }
    .check()
    .unwrap();
    let as_of = 200 * DAY_MICROS;
    let (at_cutoff, now) = (
        features(&events, params.cutoff(as_of)),
        features(&events, as_of),
    );
    let run = |remote: Option<&dyn RemoteInputs>| {
        predict(&split, &at_cutoff, &now, as_of, &params, 42, remote).unwrap()
    };
    let here = run(None);
    let wire = OverTheWire {
        parts: &split,
        calls: Default::default(),
    };
    let there = run(Some(&wire));
    assert_eq!(wire.calls.get(), 1);

    // The comparison is of predictions, not of skipped predictors.
    let report = &here.model_report;
    for (predictor, target) in [("bg/nbd", "p_purchase"), ("logistic", "churn")] {
        let r = row(report, predictor, target);
        assert_eq!(r["status"], AnyValue::StringOwned("scored".into()), "{r:?}");
    }
    assert!(here.user_predictions.height() > 300);
    for (a, b, name) in [
        (
            &here.user_predictions,
            &there.user_predictions,
            "user_predictions",
        ),
        (&here.model_report, &there.model_report, "model_report"),
        (&here.calibration, &there.calibration, "calibration"),
        (&here.lift, &there.lift, "lift"),
        (&here.segments, &there.segments, "segments"),
    ] {
        assert!(a.equals_missing(b), "{name} differs:\n{a}\n{b}");
    }
    assert_eq!(here.models, there.models);
}

#[test]
fn a_failing_remote_fails_the_stage_with_its_error() {
    struct Down;
    impl RemoteInputs for Down {
        fn part_inputs(
            &self,
            _: i64,
            _: i64,
            _: crate::stats::TimeUnit,
            _: u32,
        ) -> Result<Vec<PartInputs>> {
            Err(Error::Remote {
                engine: "ballista://h:1".into(),
                message: "executor lost".into(),
            })
        }
    }
    let events = population();
    let params = PredictParams::default().check().unwrap();
    let as_of = 200 * DAY_MICROS;
    let err = predict(
        &parts(&events),
        &features(&events, params.cutoff(as_of)),
        &features(&events, as_of),
        as_of,
        &params,
        42,
        Some(&Down),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "computing the prediction inputs of the parts on ballista://h:1 failed: executor lost"
    );
}

#[test]
fn the_declared_event_columns_are_all_it_reads() {
    let events: Vec<Event> = (0..40)
        .flat_map(|u| regular(&format!("u{u:02}"), u % 9, 100 + u % 13))
        .collect();
    let declared = parts(&events);
    let n = events.len();
    let mut all = declared[0].clone().collect().unwrap();
    for name in ["session_id", "item_id", "category", "query", "order_id"] {
        all.with_column(Column::new(name.into(), vec!["x"; n]))
            .unwrap();
    }
    all.with_column(Column::new("rating".into(), vec![3.0; n]))
        .unwrap();
    assert_eq!(
        declared[0]
            .clone()
            .collect_schema()
            .unwrap()
            .iter_names()
            .collect::<Vec<_>>(),
        EVENT_COLUMNS
    );
    let as_of = userlens_model::time::next_midnight(micros(113.0));
    let params = PredictParams::default().check().unwrap();
    let predicted = |parts: &[LazyFrame]| {
        let cutoff = params.cutoff(as_of);
        let (then, now) = (features(&events, cutoff), features(&events, as_of));
        predict(parts, &then, &now, as_of, &params, 42, None).unwrap()
    };
    let (a, b) = (predicted(&[all.lazy()]), predicted(&declared));
    assert!(a.user_predictions.height() == 40);
    for (x, y) in [
        (&a.user_predictions, &b.user_predictions),
        (&a.model_report, &b.model_report),
        (&a.calibration, &b.calibration),
        (&a.lift, &b.lift),
        (&a.segments, &b.segments),
    ] {
        assert!(x.equals_missing(y), "{x}\n{y}");
    }
}

#[test]
fn values_of_a_few_users_are_the_lookups_of_them() {
    let df = df!(
        USER_ID => [Some("a"), Some("b"), None, Some("c")],
        "fired" => [Some(true), None, Some(true), Some(false)],
    )
    .unwrap();
    let users = ["c", "z", "a", "b"].map(String::from);
    let values = values_of(&df, "fired", &users).unwrap();
    assert_eq!(values, [Some(0.0), None, Some(1.0), None]);
    let all = lookup(&df, "fired").unwrap();
    let looked_up: Vec<Option<f64>> = users.iter().map(|u| all.get(u.as_str()).copied()).collect();
    assert_eq!(values, looked_up);
}

#[test]
fn columns_by_user_are_the_left_join_whether_aligned_or_not() {
    let left = df!(USER_ID => ["a", "b", "c"], "p" => [0.1, 0.2, 0.3]).unwrap();
    let aligned = df!(USER_ID => ["a", "b", "c"], "segment" => ["x", "y", "z"]).unwrap();
    let shuffled = df!(USER_ID => ["c", "d", "a"], "segment" => ["z", "w", "x"]).unwrap();
    for right in [aligned, shuffled] {
        let joined = left
            .clone()
            .lazy()
            .left_join(right.clone().lazy(), col(USER_ID), col(USER_ID))
            .collect()
            .unwrap();
        let by = by_user(left.clone(), right, "join").unwrap();
        assert!(by.equals_missing(&joined), "{by}\n{joined}");
        assert_eq!(by.get_column_names(), [USER_ID, "p", "segment"]);
    }
}

#[test]
fn churn_risk_is_given_only_to_users_active_in_the_window() {
    let features = df! {
        "user_id" => ["a", "b", "c", "d"],
        "recency_days" => [Some(0.5), Some(7.0), Some(7.5), None],
    }
    .unwrap();
    let risk = vec![Some(0.2), Some(0.4), Some(0.0), Some(0.1)];
    assert_eq!(
        among_the_active(risk, &features, 7),
        [Some(0.2), Some(0.4), None, None]
    );
}
