use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeMap;

use super::*;
use crate::metrics::{Evaluation, auc};
use userlens_model::time::DAY_MICROS;

fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u: f64 = 1.0 - rng.r#gen::<f64>();
    let v: f64 = rng.r#gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Users whose purchase depends on `x1`, `x2` and `frequency` (not on `noise`);
/// rows in reverse `user_id` order, 5% of `x2` missing.
fn synthetic(n: usize, seed: u64) -> (DataFrame, DataFrame) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (mut ids, mut x1, mut x2, mut freq, mut noise, mut cat, mut y) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in (0..n).rev() {
        let a = normal(&mut rng);
        let b: Option<f64> = (rng.r#gen::<f64>() > 0.05).then(|| rng.gen_range(0.0..10.0));
        let f = (0.9 * normal(&mut rng)).exp().floor();
        let logit = 1.6 * a + 0.5 * (b.unwrap_or(5.0) - 5.0) + (1.0 + f).ln() - 0.8;
        let p = 1.0 / (1.0 + (-logit).exp());
        ids.push(format!("u{i:05}"));
        x1.push(a);
        x2.push(b);
        freq.push(f);
        noise.push(normal(&mut rng));
        cat.push(if i % 2 == 0 { "books" } else { "toys" });
        y.push(rng.r#gen::<f64>() < p);
    }
    let features = df! {
        "user_id" => &ids,
        "x1" => x1,
        "x2" => x2,
        "frequency" => freq,
        "noise" => noise,
        "top_category" => cat,
    }
    .unwrap();
    let labels = df! { "user_id" => ids, "purchased" => y }.unwrap();
    (features, labels)
}

fn names() -> Vec<String> {
    ["x1", "x2", "frequency", "noise"]
        .map(String::from)
        .to_vec()
}

fn params() -> CheckedMlParams {
    MlParams::default().check().unwrap()
}

fn floats(df: &DataFrame, column: &str) -> Vec<f64> {
    df.column(column)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

fn strings(df: &DataFrame, column: &str) -> Vec<String> {
    df.column(column)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

fn bools(df: &DataFrame, column: &str) -> Vec<bool> {
    df.column(column)
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

fn table(features: &DataFrame) -> Table<'_> {
    Table::read(features, &names()).unwrap()
}

/// `kind` backtested on a split of `features` and the `target` labels.
fn backtest(
    features: &DataFrame,
    labels: &DataFrame,
    target: &str,
    kind: ModelKind,
    seed: u64,
) -> Backtest {
    let params = params();
    let table = table(features);
    Split::new(&table, labels, target, &table.names, &params, seed)
        .unwrap()
        .backtest(kind)
        .unwrap()
}

fn fitted(fit: Fit) -> Propensity {
    match fit {
        Fit::Fitted(model) => model,
        Fit::Skipped { reason } => panic!("skipped: {reason}"),
    }
}

/// A logistic propensity for `purchased`, fitted on every user.
fn fit_logistic(
    features: &DataFrame,
    labels: &DataFrame,
    params: &CheckedMlParams,
    seed: u64,
) -> Propensity {
    fitted(
        fit_propensity(
            ModelKind::Logistic,
            features,
            labels,
            "purchased",
            &names(),
            params,
            seed,
        )
        .unwrap(),
    )
}

#[test]
fn both_models_rank_a_holdout_well() {
    let (features, labels) = synthetic(4000, 7);
    for kind in [ModelKind::Logistic, ModelKind::Tree] {
        let result = backtest(&features, &labels, "purchased", kind, 42);
        assert_eq!(result.train_users + result.holdout_users, 4000);
        assert_eq!(result.holdout_users, 1000);
        let Evaluation::Scored(score) = &result.evaluation else {
            panic!("{kind:?} not scored: {:?}", result.evaluation);
        };
        assert!(score.auc > 0.8, "{kind:?} auc {}", score.auc);
        assert!(
            score.log_loss.is_finite() && score.log_loss < 0.6,
            "{score:?}"
        );
        assert!(score.lift_top_decile > 1.5, "{score:?}");
        assert_eq!(result.calibration.len(), 10);
        assert_eq!(result.deciles.len(), 10);
    }
}

#[test]
fn a_refit_model_scores_new_users() {
    let (train, labels) = synthetic(3000, 1);
    let (test, test_labels) = synthetic(2000, 2);
    let truth = bools(&test_labels, "purchased");
    let mut truth_sorted: Vec<(String, bool)> = strings(&test_labels, "user_id")
        .into_iter()
        .zip(truth)
        .collect();
    truth_sorted.sort();
    let y: Vec<bool> = truth_sorted.iter().map(|(_, v)| *v).collect();
    for kind in [ModelKind::Logistic, ModelKind::Tree] {
        let model = fitted(
            fit_propensity(kind, &train, &labels, "purchased", &names(), &params(), 3).unwrap(),
        );
        let predicted = model.predict(&test).unwrap();
        assert_eq!(predicted.get_column_names(), ["user_id", "probability"]);
        let ids = strings(&predicted, "user_id");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let p = floats(&predicted, "probability");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        let score = auc(&p, &y).unwrap();
        assert!(score > 0.8, "{kind:?} auc {score}");
    }
}

#[test]
fn fits_repeat_exactly_for_a_seed() {
    let (features, labels) = synthetic(1500, 11);
    let run = |seed| {
        let model = fitted(
            fit_propensity(
                ModelKind::Tree,
                &features,
                &labels,
                "purchased",
                &names(),
                &params(),
                seed,
            )
            .unwrap(),
        );
        floats(&model.predict(&features).unwrap(), "probability")
    };
    let first = run(5);
    assert_eq!(first, run(5));
    assert_ne!(first, run(6));
    // The logistic fit draws its training sample from the seed.
    let sampled = MlParams {
        max_training_rows: 500,
        ..MlParams::default()
    }
    .check()
    .unwrap();
    let logistic = |seed| fit_logistic(&features, &labels, &sampled, seed).summary();
    assert_eq!(logistic(5), logistic(5));
    assert_ne!(logistic(5), logistic(6));
}

#[test]
fn summaries_name_the_features_that_matter() {
    let (features, labels) = synthetic(3000, 4);
    let logistic = fitted(
        fit_propensity(
            ModelKind::Logistic,
            &features,
            &labels,
            "purchased",
            &names(),
            &params(),
            1,
        )
        .unwrap(),
    )
    .summary();
    assert_eq!(logistic.kind, ModelKind::Logistic);
    assert_eq!(logistic.training_users, 3000);
    let coef = |name: &str| {
        logistic
            .features
            .iter()
            .find(|f| f.name == name)
            .unwrap()
            .coefficient
            .unwrap()
    };
    assert!(coef("x1") > 1.0, "{logistic:?}");
    assert!(coef("x1") > 5.0 * coef("noise").abs(), "{logistic:?}");
    assert!(
        logistic
            .features
            .iter()
            .find(|f| f.name == "frequency")
            .unwrap()
            .log1p
    );
    assert!(
        !logistic
            .features
            .iter()
            .find(|f| f.name == "x1")
            .unwrap()
            .log1p
    );

    let tree = fitted(
        fit_propensity(
            ModelKind::Tree,
            &features,
            &labels,
            "purchased",
            &names(),
            &params(),
            1,
        )
        .unwrap(),
    )
    .summary();
    assert_eq!(tree.trees, Some(25));
    let importance: Vec<f64> = tree
        .features
        .iter()
        .map(|f| f.importance.unwrap())
        .collect();
    assert!((importance.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(importance[0] > importance[3], "{importance:?}");
    let json = serde_json::to_string(&tree).unwrap();
    assert!(json.contains(r#""kind":"tree""#), "{json}");
    assert!(!json.contains("coefficient"), "{json}");
}

#[test]
fn a_single_class_is_skipped_with_a_reason() {
    let (features, _) = synthetic(50, 3);
    let ids = strings(&features, "user_id");
    let labels = df! { "user_id" => &ids, "purchased" => vec![0i32; ids.len()] }.unwrap();
    let fit = fit_propensity(
        ModelKind::Logistic,
        &features,
        &labels,
        "purchased",
        &names(),
        &params(),
        1,
    )
    .unwrap();
    assert_eq!(
        fit,
        Fit::Skipped {
            reason: "all 50 training users are negative for `purchased` (no positive label to learn from)"
                .into()
        }
    );
    let result = backtest(&features, &labels, "purchased", ModelKind::Tree, 1);
    assert!(matches!(result.evaluation, Evaluation::Skipped { .. }));
    let none = df! { "user_id" => ["nobody"], "purchased" => [true] }.unwrap();
    let fit = fit_propensity(
        ModelKind::Tree,
        &features,
        &none,
        "purchased",
        &names(),
        &params(),
        1,
    )
    .unwrap();
    assert_eq!(
        fit,
        Fit::Skipped {
            reason: "no users have both features and a `purchased` label".into()
        }
    );
}

#[test]
fn a_small_holdout_is_not_scored() {
    let (features, labels) = synthetic(200, 9);
    let result = backtest(&features, &labels, "purchased", ModelKind::Logistic, 1);
    let Evaluation::Skipped { reason } = result.evaluation else {
        panic!("scored a holdout of 50");
    };
    assert!(
        reason.starts_with("only ") && reason.ends_with("in the holdout (at least 100 needed)"),
        "{reason}"
    );
    assert!(result.calibration.is_empty());
}

#[test]
fn a_holdout_of_every_user_says_none_is_left_to_train_on() {
    let (features, labels) = synthetic(200, 9);
    let table = table(&features);
    let params = MlParams {
        holdout_fraction: 0.9999,
        ..MlParams::default()
    }
    .check()
    .unwrap();
    let split = Split::new(&table, &labels, "purchased", &table.names, &params, 1).unwrap();
    let Evaluation::Skipped { reason } = split.backtest(ModelKind::Logistic).unwrap().evaluation
    else {
        panic!("scored without training users");
    };
    assert_eq!(
        reason,
        "the holdout takes all 200 users with a `purchased` label, leaving none to train on: \
         lower `holdout_fraction`"
    );
}

#[test]
fn a_model_its_holdout_could_not_score_is_not_applied() {
    let (features, labels) = synthetic(400, 9);
    let table = table(&features);
    let split = |min_positives: usize| {
        let params = MlParams {
            min_positives,
            min_negatives: 1,
            ..MlParams::default()
        }
        .check()
        .unwrap();
        let split = Split::new(&table, &labels, "purchased", &table.names, &params, 1).unwrap();
        let scored = matches!(
            split.backtest(ModelKind::Logistic).unwrap().evaluation,
            Evaluation::Scored(_)
        );
        (scored, split.refit(ModelKind::Logistic).unwrap())
    };
    let (_, fit) = split(1);
    let Fit::Fitted(_) = fit else {
        panic!("not refitted with a gate of 1");
    };
    // The largest gate the holdout passes, and one more.
    let held = (1..400).take_while(|&m| split(m).0).last().unwrap();
    assert!(matches!(split(held).1, Fit::Fitted(_)));
    // A class no user has is said as such, not as a holdout too small.
    let ids = strings(&features, "user_id");
    let none = df! { "user_id" => &ids, "purchased" => vec![0i32; ids.len()] }.unwrap();
    let params = params();
    let fit = Split::new(&table, &none, "purchased", &table.names, &params, 1)
        .unwrap()
        .refit(ModelKind::Logistic)
        .unwrap();
    let Fit::Skipped { reason } = fit else {
        panic!("fitted on one class");
    };
    assert!(
        reason.starts_with("all 400 training users are negative"),
        "{reason}"
    );
    let (scored, Fit::Skipped { reason }) = split(held + 1) else {
        panic!("applied a model its holdout could not score");
    };
    assert!(!scored);
    assert_eq!(
        reason,
        format!(
            "not applied: only {held} positive users for `purchased` in the holdout, fewer \
             than its score needs (`min_positives` = {}), so what it says could not be \
             measured (a lower `ml.min_positives` scores and applies it on fewer)",
            held + 1
        )
    );
}

#[test]
fn bad_inputs_are_reported() {
    let (features, labels) = synthetic(20, 3);
    let fit = |names: &[String], labels: &DataFrame| {
        fit_propensity(
            ModelKind::Logistic,
            &features,
            labels,
            "purchased",
            names,
            &params(),
            1,
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        fit(&["x9".to_string()], &labels),
        "the features table has no `x9` column"
    );
    assert_eq!(
        fit(&["top_category".to_string()], &labels),
        "`top_category` in the features table must be numeric, found str"
    );
    assert_eq!(
        fit(&[], &labels),
        "no features to fit on: the feature list is empty"
    );
    let bad = df! { "user_id" => ["u00001"], "purchased" => [2.0] }.unwrap();
    assert_eq!(
        fit(&names(), &bad),
        "label `purchased` of user `u00001` is 2, expected 0 or 1"
    );
    let missing = df! { "user_id" => ["u00001"], "purchased" => [None::<f64>] }.unwrap();
    assert_eq!(
        fit(&names(), &missing),
        "`purchased` of user `u00001` is missing, expected a finite number"
    );
    let twice = df! { "user_id" => ["a", "a"], "purchased" => [1, 0] }.unwrap();
    assert_eq!(
        fit(&names(), &twice),
        "user `a` appears more than once in the labels table"
    );
}

#[test]
fn missing_values_take_the_training_median() {
    let features = df! {
        "user_id" => ["a", "b", "c", "d", "e", "f"],
        "x" => [Some(1.0), Some(2.0), Some(3.0), None, Some(f64::NAN), Some(10.0)],
    }
    .unwrap();
    let labels =
        df! { "user_id" => ["a", "b", "c", "d", "e", "f"], "y" => [0, 0, 1, 1, 0, 1] }.unwrap();
    let model = fitted(
        fit_propensity(
            ModelKind::Logistic,
            &features,
            &labels,
            "y",
            &["x".to_string()],
            &params(),
            1,
        )
        .unwrap(),
    );
    let summary = model.summary();
    // Finite values 1, 2, 3, 10: median 2.5.
    assert_eq!(summary.features[0].median, 2.5);
    let p = floats(&model.predict(&features).unwrap(), "probability");
    assert!(p.iter().all(|v| v.is_finite()));
    assert_eq!(p[3], p[4]);
}

fn events() -> DataFrame {
    let day = |d: i64| d * DAY_MICROS;
    let events = df! {
        "user_id" => ["u1", "u1", "u1", "u2", "u3", "u3", "u4", "u5"],
        "event_time" => [day(5), day(12), day(15), day(3), day(8), day(19), day(25), day(11)],
        "event_type" => ["view", "purchase", "purchase", "view", "purchase", "view", "view", "purchase"],
        "amount" => [None, Some(30.0), Some(-5.0), None, Some(50.0), None, None, None],
    }
    .unwrap();
    with_datetimes(events)
}

/// `event_time` from integer microseconds to a datetime, as ingest writes it.
fn with_datetimes(mut events: DataFrame) -> DataFrame {
    let time = events
        .column("event_time")
        .unwrap()
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap();
    events.with_column(time).unwrap();
    events
}

#[test]
fn targets_in_a_window() {
    let out = targets(&events(), 10 * DAY_MICROS, 20 * DAY_MICROS).unwrap();
    assert_eq!(
        out.get_column_names(),
        ["user_id", "purchased", "revenue", "active"]
    );
    // u4's only event is after the window: not in the population.
    assert_eq!(strings(&out, "user_id"), ["u1", "u2", "u3", "u5"]);
    assert_eq!(bools(&out, "purchased"), [true, false, false, true]);
    // u1: 30 - 5 (refund); u3's purchase was before the window; u5's has no amount.
    assert_eq!(floats(&out, "revenue"), [25.0, 0.0, 0.0, 0.0]);
    assert_eq!(bools(&out, "active"), [true, false, true, true]);
    assert_eq!(
        targets(&events(), 5, 5).unwrap_err().to_string(),
        "the target window [5, 5) is empty: it must start before it ends"
    );
    let no_amount = events().drop("amount").unwrap();
    assert_eq!(
        targets(&no_amount, 0, 5).unwrap_err().to_string(),
        "the events table has no `amount` column"
    );
}

#[test]
fn churn_follows_the_ga4_definition() {
    let out = churn_labels(&events(), 10 * DAY_MICROS, 7).unwrap();
    // Active in days [3, 10): u1 (day 5), u2 (day 3), u3 (day 8). Active in [10, 17):
    // u1 only. u5 (day 11) was not active before the cutoff.
    assert_eq!(strings(&out, "user_id"), ["u1", "u2", "u3"]);
    assert_eq!(bools(&out, "churned"), [false, true, true]);
    // Integer microseconds work too.
    let mut raw = events();
    let t = raw
        .column("event_time")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    raw.with_column(t).unwrap();
    let again = churn_labels(&raw, 10 * DAY_MICROS, 7).unwrap();
    assert!(again.equals(&out));
}

#[test]
fn one_pass_labels_equal_the_group_bys() {
    // 300 users, events over 40 days in user and time order: views, carts and
    // purchases with amounts that are missing, refunds or half cents.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let (mut ids, mut times, mut types, mut amounts) = (vec![], vec![], vec![], vec![]);
    for user in 0..300 {
        let mut t: Vec<i64> = (0..rng.gen_range(0..12))
            .map(|_| rng.gen_range(0..40 * DAY_MICROS))
            .collect();
        t.sort_unstable();
        for time in t {
            ids.push(format!("u{user:04}"));
            times.push(time);
            let kind = ["view", "add_to_cart", "purchase"][rng.gen_range(0..3)];
            types.push(kind);
            amounts.push(match rng.gen_range(0..5) {
                0 => None,
                1 => Some(-12.5),
                2 => Some(0.125 + f64::from(rng.gen_range(0..1000u32))),
                _ => Some(f64::from(rng.gen_range(0..100_000u32)) / 1000.0),
            });
        }
    }
    let events = with_datetimes(
        df! {
            "user_id" => ids, "event_time" => times, "event_type" => types, "amount" => amounts,
        }
        .unwrap(),
    );
    for (from, to, window) in [(10, 20, 7), (2, 40, 30), (25, 30, 3), (39, 45, 60)] {
        let (from, to) = (from * DAY_MICROS, to * DAY_MICROS);
        let (one_pass, churn) = targets_and_churn_sorted(&events, from, to, window)
            .unwrap()
            .expect("the events are in user order");
        let grouped = targets(&events, from, to).unwrap();
        assert!(one_pass.equals_missing(&grouped), "{one_pass}\n{grouped}");
        assert!(churn.equals_missing(&churn_labels(&events, from, window).unwrap()));
        assert!(grouped.height() > 100 && churn.height() > 10);
        // Types as dictionary codes, as the ingest holds them: the same labels.
        let coded = crate::stats::tests::types_as_codes(&events);
        let (coded_pass, coded_churn) = targets_and_churn_sorted(&coded, from, to, window)
            .unwrap()
            .expect("coded types");
        assert!(coded_pass.equals_missing(&one_pass) && coded_churn.equals_missing(&churn));
    }
    // Out of user order, or an empty window: the caller groups instead.
    let reversed = events.reverse();
    assert!(
        targets_and_churn_sorted(&reversed, 0, DAY_MICROS, 7)
            .unwrap()
            .is_none()
    );
    assert!(
        targets_and_churn_sorted(&events, 5, 5, 7)
            .unwrap()
            .is_none()
    );
}

#[test]
fn revenue_model_matches_hand_computation() {
    let features = df! {
        "user_id" => ["c", "a", "b"],
        "frequency" => [1.0, 2.0, 0.0],
        "avg_order_value" => [40.0, 10.0, 0.0],
    }
    .unwrap();
    let targets = df! {
        "user_id" => ["a", "b", "c"],
        "purchased" => [true, false, true],
        "revenue" => [30.0, 0.0, 40.0],
    }
    .unwrap();
    let model = fit_revenue(&features, &targets).unwrap();
    // Population order value: (2 * 10 + 1 * 40) / 3 = 20. Shrunk: a (20 + 20) / 3,
    // c (40 + 20) / 2 = 30. Scale: (30 + 40) / (40 / 3 + 30).
    assert_eq!(model.population_aov, 20.0);
    assert_eq!(model.buyers, 2);
    let scale = 70.0 / (40.0 / 3.0 + 30.0);
    assert!((model.scale - scale).abs() < 1e-12);
    let p = df! { "user_id" => ["a", "b"], "probability" => [0.5, 0.25] }.unwrap();
    let out = model.predict(&features, &p).unwrap();
    assert_eq!(strings(&out, "user_id"), ["a", "b"]);
    let v = floats(&out, "predicted_revenue");
    assert!((v[0] - 0.5 * scale * 40.0 / 3.0).abs() < 1e-12);
    assert!((v[1] - 0.25 * scale * 20.0).abs() < 1e-12);
    // By user, in their order: the same values, none for a user without features,
    // whether or not the users are the features' own in their order.
    let by_user = model
        .predict_users(&features, &["b", "z", "a"], &[0.25, 0.9, 0.5])
        .unwrap();
    assert_eq!(by_user, [Some(v[1]), None, Some(v[0])]);
    let all = df! { "user_id" => ["a", "b", "c"], "probability" => [0.5, 0.25, 0.1] }.unwrap();
    let expected = floats(
        &model.predict(&features, &all).unwrap(),
        "predicted_revenue",
    );
    let aligned = model
        .predict_users(&features, &["a", "b", "c"], &[0.5, 0.25, 0.1])
        .unwrap();
    assert_eq!(aligned, expected.into_iter().map(Some).collect::<Vec<_>>());
}

#[test]
fn params_are_checked_before_any_data() {
    let err = |text: &str| {
        toml::from_str::<MlParams>(text)
            .unwrap()
            .check()
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("holdout_fraction = 1.0"),
        "`holdout_fraction` is 1, it must be between 0 and 1 (exclusive)"
    );
    assert_eq!(
        err("models = []"),
        "`models` is empty: name `logistic`, `tree` or both"
    );
    assert_eq!(
        err("alpha = -1.0"),
        "`alpha` is -1, it must be a positive number"
    );
    assert_eq!(
        err("trees = 0"),
        "`trees` is 0, it must be between 1 and 500"
    );
    assert!(toml::from_str::<MlParams>("horizon = 28").is_err());
    // The horizon is the stage's parameter alone.
    assert!(toml::from_str::<MlParams>("horizon_days = 28").is_err());
    assert!(toml::from_str::<MlParams>("models = [\"forest\"]").is_err());
    let checked = toml::from_str::<MlParams>("models = [\"tree\", \"logistic\", \"tree\"]")
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(checked.models, [ModelKind::Logistic, ModelKind::Tree]);
}

/// Users who buy when exactly one of `x1 > 0` and `x2 > 5` holds (10% of labels
/// flipped): a tree finds the interaction, a logistic regression cannot.
fn interaction(n: usize, seed: u64) -> (DataFrame, DataFrame) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (mut ids, mut x1, mut x2, mut freq, mut noise, mut y) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let (a, b) = (normal(&mut rng), rng.gen_range(0.0..10.0));
        ids.push(format!("u{i:05}"));
        x1.push(a);
        x2.push(b);
        freq.push(rng.gen_range(0.0..5.0_f64).floor());
        noise.push(normal(&mut rng));
        y.push(((a > 0.0) != (b > 5.0)) != (rng.r#gen::<f64>() < 0.1));
    }
    let features = df! {
        "user_id" => &ids, "x1" => x1, "x2" => x2, "frequency" => freq, "noise" => noise,
    }
    .unwrap();
    (
        features,
        df! { "user_id" => ids, "purchased" => y }.unwrap(),
    )
}

#[test]
fn the_model_choice_never_reads_the_holdout() {
    let (features, labels) = interaction(3000, 8);
    let (names, params) = (names(), params());
    let both = [ModelKind::Logistic, ModelKind::Tree];
    let table = Table::read(&features, &names).unwrap();
    let mut split = Split::new(&table, &labels, "purchased", &table.names, &params, 42).unwrap();
    assert_eq!(split.choose(&both).unwrap(), ModelKind::Tree);
    assert_eq!(
        split.choose(&[ModelKind::Logistic]).unwrap(),
        ModelKind::Logistic
    );
    // Flipped holdout labels turn the tree's holdout AUC below the logistic's: a
    // choice that read the holdout would now pick the logistic.
    for r in split.holdout.clone() {
        split.training.labels[r] = !split.training.labels[r];
    }
    let auc_of = |kind| match split.backtest(kind).unwrap().evaluation {
        Evaluation::Scored(score) => score.auc,
        Evaluation::Skipped { reason } => panic!("{reason}"),
    };
    assert!(auc_of(ModelKind::Tree) < auc_of(ModelKind::Logistic));
    assert_eq!(split.choose(&both).unwrap(), ModelKind::Tree);
}

#[test]
fn numeric_features_skip_text_and_user_id() {
    let (features, _) = synthetic(5, 1);
    assert_eq!(
        numeric_features(&features),
        ["x1", "x2", "frequency", "noise"]
    );
}

#[test]
fn logistic_predicts_label_one_whichever_class_is_larger() {
    // Label 1 is the positive class whichever is more frequent (linfa-logistic's
    // was the more frequent one): flipping the labels so 1 is the majority must
    // flip the coefficients, not the ranking.
    let (features, labels) = synthetic(3000, 4);
    let y = bools(&labels, "purchased");
    let flipped_y: Vec<bool> = y.iter().map(|v| !v).collect();
    assert!(flipped_y.iter().filter(|&&v| v).count() > 1500);
    let flipped = df! { "user_id" => strings(&labels, "user_id"), "churned" => flipped_y }.unwrap();
    let x1 = |labels: &DataFrame, target: &str| {
        let model = fitted(
            fit_propensity(
                ModelKind::Logistic,
                &features,
                labels,
                target,
                &names(),
                &params(),
                1,
            )
            .unwrap(),
        );
        model.summary().features[0].coefficient.unwrap()
    };
    let (a, b) = (x1(&labels, "purchased"), x1(&flipped, "churned"));
    assert!(a > 1.0 && b < -1.0, "{a} {b}");
    assert!((a + b).abs() < 1e-3, "{a} {b}");
    let result = backtest(&features, &flipped, "churned", ModelKind::Logistic, 42);
    let Evaluation::Scored(score) = result.evaluation else {
        panic!("not scored");
    };
    assert!(score.auc > 0.8, "{score:?}");
}

#[test]
fn logistic_trains_on_a_bounded_sample() {
    let (features, labels) = synthetic(3000, 5);
    let capped = MlParams {
        max_training_rows: 800,
        ..MlParams::default()
    }
    .check()
    .unwrap();
    let fit = |params: &CheckedMlParams| fit_logistic(&features, &labels, params, 42);
    let sampled = fit(&capped);
    assert_eq!(sampled.training_users, 800);
    assert_eq!(fit(&params()).training_users, 3000);
    // the sample still ranks an independent set well
    let (test, test_labels) = synthetic(2000, 6);
    let truth: BTreeMap<String, bool> = strings(&test_labels, "user_id")
        .into_iter()
        .zip(bools(&test_labels, "purchased"))
        .collect();
    let predicted = sampled.predict(&test).unwrap();
    let y: Vec<bool> = strings(&predicted, "user_id")
        .iter()
        .map(|id| truth[id])
        .collect();
    let score = auc(&floats(&predicted, "probability"), &y).unwrap();
    assert!(score > 0.8, "auc {score}");
}

#[test]
fn a_split_refits_on_every_user_as_fit_propensity_does() {
    let (features, labels) = synthetic(2000, 5);
    let (names, params) = (names(), params());
    let table = Table::read(&features, &names).unwrap();
    let split = Split::new(&table, &labels, "purchased", &table.names, &params, 3).unwrap();
    for kind in [ModelKind::Logistic, ModelKind::Tree] {
        let refit = fitted(split.refit(kind).unwrap());
        let direct = fitted(
            fit_propensity(kind, &features, &labels, "purchased", &names, &params, 3).unwrap(),
        );
        assert_eq!(refit.summary().training_users, 2000);
        assert_eq!(refit, direct, "{kind:?}");
    }
}

/// A split of features read once fits as `fit_propensity` does from the tables,
/// whether every user has a label or only some do, and scoring the shared table
/// gives `predict`'s probabilities in its order.
#[test]
fn a_split_of_a_shared_table_fits_as_one_of_its_own() {
    let (features, labels) = synthetic(2000, 9);
    let (names, params) = (names(), params());
    let table = Table::read(&features, &names).unwrap();
    // A table of other columns than the model's is refused, not scored.
    let other = Table::read(&features, &names[1..]).unwrap();
    let model = fitted(
        fit_propensity(
            ModelKind::Logistic,
            &features,
            &labels,
            "purchased",
            &names,
            &params,
            4,
        )
        .unwrap(),
    );
    assert!(matches!(
        model.predict_table(&other),
        Err(Error::OtherFeatures { .. })
    ));
    let some = labels.slice(100, 1500);
    for (labels, users) in [(&labels, 2000), (&some, 1500)] {
        let split = Split::new(&table, labels, "purchased", &table.names, &params, 4).unwrap();
        assert_eq!(split.train.len() + split.holdout_ids().len(), users);
        for kind in [ModelKind::Logistic, ModelKind::Tree] {
            let refit = fitted(split.refit(kind).unwrap());
            let direct =
                fit_propensity(kind, &features, labels, "purchased", &names, &params, 4).unwrap();
            assert_eq!(refit.summary().training_users, users);
            assert_eq!(refit, fitted(direct), "{kind:?}");
            let predicted = refit.predict(&features).unwrap();
            assert_eq!(
                refit.predict_table(&table).unwrap(),
                floats(&predicted, "probability")
            );
            // Scored a block at a time straight from the frame, in its row order.
            let by_user: BTreeMap<String, f64> = strings(&predicted, "user_id")
                .into_iter()
                .zip(floats(&predicted, "probability"))
                .collect();
            let reversed = features.reverse();
            let in_order: Vec<f64> = strings(&reversed, "user_id")
                .iter()
                .map(|id| by_user[id])
                .collect();
            assert_eq!(refit.predict_frame(&reversed).unwrap(), in_order);
        }
    }
}

/// Labels that nothing predicts: a model can only rank its holdout by chance. Trees
/// remember their training rows, so holdout users leaking into training would score
/// far above chance here.
#[test]
fn the_holdout_is_never_trained_on() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let n = 2000;
    let ids: Vec<String> = (0..n).map(|i| format!("u{i:05}")).collect();
    let columns: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..n).map(|_| normal(&mut rng)).collect())
        .collect();
    let y: Vec<bool> = (0..n).map(|_| rng.r#gen::<f64>() < 0.4).collect();
    let features = df! {
        "user_id" => &ids,
        "x1" => &columns[0],
        "x2" => &columns[1],
        "noise" => &columns[2],
    }
    .unwrap();
    let labels = df! { "user_id" => &ids, "purchased" => y }.unwrap();
    let names: Vec<String> = ["x1", "x2", "noise"].map(String::from).to_vec();
    let params = params();
    let table = Table::read(&features, &names).unwrap();
    let split = Split::new(&table, &labels, "purchased", &table.names, &params, 42).unwrap();
    let holdout: std::collections::BTreeSet<String> = split.holdout_ids().into_iter().collect();
    assert_eq!(holdout.len(), 500);
    for kind in [ModelKind::Logistic, ModelKind::Tree] {
        let result = split.backtest(kind).unwrap();
        assert_eq!(result.train_users + result.holdout_users, n);
        let Evaluation::Scored(score) = &result.evaluation else {
            panic!("{kind:?} not scored: {:?}", result.evaluation);
        };
        assert!(
            (score.auc - 0.5).abs() < 0.08,
            "{kind:?}: holdout AUC {} on labels nothing predicts",
            score.auc
        );
    }
}

#[test]
fn a_refund_is_revenue_but_not_a_purchase() {
    let rows = df! {
        "user_id" => ["u1", "u1", "u2"],
        "event_time" => [11 * DAY_MICROS, 12 * DAY_MICROS, 11 * DAY_MICROS],
        "event_type" => ["view", "purchase", "purchase"],
        "amount" => [None, Some(-5.0), Some(8.0)],
    }
    .unwrap();
    let out = targets(&rows, 10 * DAY_MICROS, 20 * DAY_MICROS).unwrap();
    assert_eq!(bools(&out, "purchased"), [false, true]);
    assert_eq!(floats(&out, "revenue"), [-5.0, 8.0]);
}

#[test]
fn a_table_borrows_the_columns_the_models_read_as_they_are() {
    let names: Vec<String> = ["x", "gaps", "count"].map(String::from).to_vec();
    let sorted = df!(
        "user_id" => ["a", "b", "c"],
        "x" => [1.0, 2.0, 3.0],
        "gaps" => [Some(1.0), None, Some(f64::INFINITY)],
        "count" => [1u32, 2, 3],
    )
    .unwrap();
    let table = Table::read(&sorted, &names).unwrap();
    // Finite floats in user order are read in place; the rest are copies, NaN where
    // a value is missing or not finite.
    assert!(matches!(table.columns[0], std::borrow::Cow::Borrowed(_)));
    assert!(matches!(table.columns[1], std::borrow::Cow::Owned(_)));
    assert!(matches!(table.columns[2], std::borrow::Cow::Owned(_)));
    assert_eq!(*table.columns[0], [1.0, 2.0, 3.0]);
    assert_eq!(table.columns[1][0], 1.0);
    assert!(table.columns[1][1].is_nan() && table.columns[1][2].is_nan());
    assert_eq!(*table.columns[2], [1.0, 2.0, 3.0]);
    // Out of user order every column is a copy, sorted by user.
    let unsorted = sorted
        .take(&IdxCa::from_vec("".into(), vec![2, 0, 1]))
        .unwrap();
    let table = Table::read(&unsorted, &names).unwrap();
    assert_eq!(table.ids, ["a", "b", "c"]);
    assert!(matches!(table.columns[0], std::borrow::Cow::Owned(_)));
    assert_eq!(*table.columns[0], [1.0, 2.0, 3.0]);
}

#[test]
fn the_refit_uses_only_the_features_it_is_given() {
    let (features, labels) = interaction(600, 9);
    // A holdout of 150 users: every class scored.
    let params = MlParams {
        min_positives: 1,
        min_negatives: 1,
        ..MlParams::default()
    }
    .check()
    .unwrap();
    let names = names();
    let table = Table::read(&features, &names).unwrap();
    let refit_names = vec![names[0].clone()];
    let split = Split::new(&table, &labels, "purchased", &refit_names, &params, 42).unwrap();
    let Fit::Fitted(model) = split.refit(ModelKind::Logistic).unwrap() else {
        panic!("not fitted");
    };
    let used: Vec<String> = model
        .summary()
        .features
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(used, refit_names);
}

#[test]
fn a_skewed_user_attribute_is_logged_as_its_training_rows_say() {
    let mut column: Vec<f64> = (0..40).map(|i| 10.0 + i as f64).collect();
    column.push(50_000.0);
    let all: Vec<usize> = (0..41).collect();
    assert!(data::Scaler::fit("user_balance", &column, &all).log1p);
    // The outlier's row is not among the training rows: nothing is skewed there.
    assert!(!data::Scaler::fit("user_balance", &column, &all[..40]).log1p);
    // Only users-table attributes are judged by their values.
    assert!(!data::Scaler::fit("balance", &column, &all).log1p);
}

#[test]
fn an_attribute_past_1e154_is_scaled_not_left_as_it_is() {
    // Symmetric, so not logged: the squares of the plain moments overflow.
    let column: Vec<f64> = (0..40)
        .map(|i| if i % 2 == 0 { 1e200 } else { -1e200 })
        .collect();
    let all: Vec<usize> = (0..40).collect();
    let scaler = data::Scaler::fit("score", &column, &all);
    assert!(!scaler.log1p);
    assert!((scaler.std / 1e200 - 1.0).abs() < 1e-12, "{scaler:?}");
    assert!((scaler.apply(1e200) - 1.0).abs() < 1e-12, "{scaler:?}");
    assert!((scaler.apply(-1e200) + 1.0).abs() < 1e-12, "{scaler:?}");
}
