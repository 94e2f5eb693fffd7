//! Which model gives each user's value. The count models describe customers, from
//! their first purchase on; a user without a purchase gets expected purchases from a
//! first-purchase model (the ML purchase propensity, or the conversion rate of
//! earlier non-buyers when there is none) and P(alive) from their activity (the ML
//! model of any event in the horizon, or the activity rate of earlier non-buyers).
//! `predicted_revenue` is expected purchases × Gamma-Gamma spend, the ML revenue
//! model, or a blend of the two, whichever correlates best with revenue on an inner
//! split of the training users; the holdout only scores the choice.

use foldhash::{HashMap, HashSet};

use crate::metrics;
use crate::stats::Summary;

use super::counts::customer_index;
use super::targets::Backtested;
use super::{Outcome, PURCHASES_TARGET, Result, Scored, score_as};

/// `*_model` value of a customer's expected purchases and CLV.
pub(super) const BGNBD: &str = "bg/nbd";
/// `*_model` value of a value from the conversion rate of earlier non-buyers.
pub(super) const CONVERSION_RATE: &str = "conversion_rate";
/// `*_model` value of a value from the activity rate of earlier non-buyers.
pub(super) const ACTIVITY_RATE: &str = "activity_rate";
/// `predicted_revenue_model` of expected purchases × Gamma-Gamma spend.
pub(super) const COUNTS_X_SPEND: &str = "expected_purchases*gamma-gamma";
/// `predicted_revenue_model` of the ML revenue model.
pub(super) const ML_REVENUE: &str = "ml";
/// `predicted_revenue_model` of a blend of the two.
pub(super) const BLEND: &str = "blend";

/// Weights of expected purchases × spend in the revenue blends tried, first wins ties.
const BLEND_WEIGHTS: [f64; 5] = [1.0, 0.75, 0.5, 0.25, 0.0];

/// Expected purchases in the horizon of a user with probability `p` of at least
/// one: a Poisson count, `-ln(1 - p)`.
pub(super) fn poisson_count(p: f64) -> f64 {
    -(-p.clamp(0.0, 1.0 - 1e-9)).ln_1p()
}

/// A first-purchase or activity model's name: `first_purchase:logistic`.
pub(super) fn ml_name(prefix: &str, kind: crate::ml::ModelKind) -> String {
    format!("{prefix}:{}", kind.name())
}

/// Shares of the labelled users without a purchase before the cutoff who bought
/// (`purchased`) and who came back (`active`) in the horizon; users in `leave_out`
/// (a holdout) are not counted. `None` when there is no such user.
pub(super) fn non_buyer_rates(
    customers: Option<&Summary>,
    labels: &[(&str, bool, bool)],
    leave_out: &HashSet<&str>,
) -> (Option<f64>, Option<f64>) {
    let index = customers.map(customer_index).unwrap_or_default();
    let (mut n, mut bought, mut active) = (0usize, 0usize, 0usize);
    for (id, purchased, came_back) in labels {
        if index.contains_key(id) || leave_out.contains(id) {
            continue;
        }
        n += 1;
        bought += usize::from(*purchased);
        active += usize::from(*came_back);
    }
    if n == 0 {
        return (None, None);
    }
    (
        Some(bought as f64 / n as f64),
        Some(active as f64 / n as f64),
    )
}

/// A column of values with the model that gave each.
pub(super) struct Sourced<'m> {
    pub(super) values: Vec<Option<f64>>,
    pub(super) models: Vec<Option<&'m str>>,
}

/// Customers' values from `for_customers` (named `customer_model`), everyone
/// else's from `fallback(user index)`, which names its own model.
pub(super) fn sourced<'m>(
    users: &[impl AsRef<str>],
    customers: &HashMap<&str, usize>,
    for_customers: &[Option<f64>],
    customer_model: &'m str,
    fallback: impl Fn(usize) -> Option<(f64, &'m str)>,
) -> Sourced<'m> {
    let mut values = Vec::with_capacity(users.len());
    let mut models = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        if customers.contains_key(user.as_ref()) {
            values.push(for_customers[i]);
            models.push(for_customers[i].map(|_| customer_model));
        } else {
            let value = fallback(i);
            models.push(value.map(|(_, m)| m));
            values.push(value.map(|(v, _)| v));
        }
    }
    Sourced { values, models }
}

/// A non-buyer's expected purchases: from their purchase probability under the
/// model `model`, else from the conversion rate.
pub(super) fn first_purchase(
    probability: Option<f64>,
    model: &str,
    conversion: Option<f64>,
) -> Option<(f64, &str)> {
    match (probability, conversion) {
        (Some(p), _) => Some((poisson_count(p), model)),
        (None, Some(rate)) => Some((poisson_count(rate), CONVERSION_RATE)),
        (None, None) => None,
    }
}

/// A non-buyer's P(alive): their activity model's probability, else the rate.
pub(super) fn activity(
    probability: Option<f64>,
    model: &str,
    rate: Option<f64>,
) -> Option<(f64, &str)> {
    match (probability, rate) {
        (Some(p), _) => Some((p.clamp(0.0, 1.0), model)),
        (None, Some(rate)) => Some((rate, ACTIVITY_RATE)),
        (None, None) => None,
    }
}

/// Expected purchases × spend where both are known.
pub(super) fn times(expected: &[Option<f64>], spend: &[Option<f64>]) -> Vec<Option<f64>> {
    expected
        .iter()
        .zip(spend)
        .map(|(e, s)| Some(e.as_ref()? * s.as_ref()?).filter(|v| v.is_finite()))
        .collect()
}

/// The revenue blend: weight `w` on expected purchases × spend, `1 - w` on the ML
/// model; where one is missing the other stands alone, with the model it came from.
pub(super) fn blend(
    w: f64,
    counts: &[Option<f64>],
    ml: &[Option<f64>],
) -> (Vec<Option<f64>>, Vec<Option<&'static str>>) {
    counts
        .iter()
        .zip(ml)
        .map(|(c, m)| match (*c, *m) {
            (Some(c), Some(_)) if w >= 1.0 => (Some(c), Some(COUNTS_X_SPEND)),
            (Some(_), Some(m)) if w <= 0.0 => (Some(m), Some(ML_REVENUE)),
            (Some(c), Some(m)) => (Some(w * c + (1.0 - w) * m), Some(BLEND)),
            (Some(c), None) => (Some(c), Some(COUNTS_X_SPEND)),
            (None, Some(m)) => (Some(m), Some(ML_REVENUE)),
            (None, None) => (None, None),
        })
        .unzip()
}

/// What `models.json` says of the revenue blend: the weight [`blend`] gave where
/// some user has both predictions, else which one every user's revenue is.
pub(super) fn blend_json(w: f64, counts: &[Option<f64>], ml: &[Option<f64>]) -> serde_json::Value {
    let any = |v: &[Option<f64>]| v.iter().any(Option::is_some);
    let both = counts
        .iter()
        .zip(ml)
        .any(|(c, m)| c.is_some() && m.is_some());
    let reason = match (any(counts), any(ml)) {
        _ if both => {
            return serde_json::json!({
                "weight_expected_purchases_x_spend": w,
                "chosen_on": "inner split of the purchase target's training users",
            });
        }
        (true, false) => "no ML revenue: predicted_revenue is expected purchases × spend",
        (false, true) => "no expected purchases × spend: predicted_revenue is the ML revenue",
        (false, false) => "no revenue was predicted",
        (true, true) => "no user has both predictions",
    };
    serde_json::json!({ "weight_expected_purchases_x_spend": null, "not_blended": reason })
}

/// The weight of expected purchases × spend whose blend with the ML revenue
/// correlates best with the actual revenue of users the models were not fitted on
/// (the inner split's validation users); 1 without ML revenue, 0 without counts.
pub(super) fn choose_weight(counts: &[Option<f64>], ml: &[Option<f64>], actual: &[f64]) -> f64 {
    let has_counts = counts.iter().any(Option::is_some);
    let has_ml = ml.iter().any(Option::is_some);
    match (has_counts, has_ml) {
        (false, _) => return 0.0,
        (true, false) => return 1.0,
        (true, true) => {}
    }
    let mut best: Option<(f64, f64)> = None;
    for w in BLEND_WEIGHTS {
        let (blended, _) = blend(w, counts, ml);
        let predicted: Vec<f64> = blended.iter().map(|v| v.unwrap_or(0.0)).collect();
        let Ok(Some(r)) = metrics::correlation(&predicted, actual) else {
            continue;
        };
        tracing::debug!("predict: revenue blend {w} correlates {r:.4} on the inner split");
        if best.is_none_or(|(_, top)| r > top) {
            best = Some((w, r));
        }
    }
    best.map_or(1.0, |(w, _)| w)
}

/// Scores a column of expected purchases against the horizon's purchases:
/// P(at least one) = 1 − e^(−E) against `purchased`, and the counts' correlation and
/// mean absolute error against the purchase days in `counts`.
pub(super) fn score_expected(
    predictor: &str,
    expected: &[f64],
    y: &[bool],
    counts: &[f64],
    gate: &metrics::Eligibility,
) -> Result<Scored> {
    let p: Vec<f64> = expected.iter().map(|e| -(-e).exp_m1()).collect();
    let mut row = score_as(predictor, PURCHASES_TARGET, &p, y, gate)?;
    if matches!(row.outcome, Outcome::Scored(_)) {
        row.counts = Some((
            metrics::correlation(expected, counts)?,
            metrics::mae(expected, counts)?,
        ));
    }
    Ok(row)
}

/// The chosen model's holdout probabilities by user, when it was fitted.
pub(super) fn holdout_probabilities(backtested: Option<&Backtested>) -> HashMap<&str, f64> {
    backtested
        .and_then(|b| {
            let p = b.probabilities.as_ref()?;
            Some(
                b.ids
                    .iter()
                    .map(String::as_str)
                    .zip(p.iter().copied())
                    .collect(),
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisson_count_turns_a_probability_into_expected_purchases() {
        assert_eq!(poisson_count(0.0), 0.0);
        assert!((poisson_count(1.0 - (-0.5f64).exp()) - 0.5).abs() < 1e-12);
        assert!(poisson_count(1.0).is_finite());
    }

    #[test]
    fn customers_take_the_count_model_and_others_their_own() {
        let users: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let customers: HashMap<&str, usize> = [("a", 0)].into_iter().collect();
        let column = sourced(
            &users,
            &customers,
            &[Some(2.0), Some(9.0), None],
            BGNBD,
            |i| {
                first_purchase(
                    [None, Some(0.5), None][i],
                    "first_purchase:logistic",
                    Some(0.1),
                )
            },
        );
        assert_eq!(column.values[0], Some(2.0));
        // A non-buyer never gets the count model's value.
        assert!((column.values[1].unwrap() - poisson_count(0.5)).abs() < 1e-12);
        assert!((column.values[2].unwrap() - poisson_count(0.1)).abs() < 1e-12);
        assert_eq!(
            column.models,
            [
                Some(BGNBD),
                Some("first_purchase:logistic"),
                Some(CONVERSION_RATE)
            ]
        );
    }

    #[test]
    fn the_blend_is_said_to_be_chosen_only_where_it_blends() {
        let (some, none) = ([Some(1.0), None], [None, None]);
        assert_eq!(
            blend_json(0.25, &some, &[Some(2.0), None])["weight_expected_purchases_x_spend"],
            0.25
        );
        for (counts, ml, reason) in [
            (
                &some,
                &none,
                "no ML revenue: predicted_revenue is expected purchases × spend",
            ),
            (
                &none,
                &some,
                "no expected purchases × spend: predicted_revenue is the ML revenue",
            ),
            (&none, &none, "no revenue was predicted"),
            (&some, &[None, Some(2.0)], "no user has both predictions"),
        ] {
            let said = blend_json(0.0, counts, ml);
            assert_eq!(said["not_blended"], reason);
            assert!(said["weight_expected_purchases_x_spend"].is_null());
            assert!(said.get("chosen_on").is_none());
        }
    }

    #[test]
    fn the_blend_weight_follows_the_better_revenue_model() {
        let actual = [0.0, 10.0, 20.0, 30.0, 0.0, 5.0];
        let good: Vec<Option<f64>> = actual.iter().map(|&v| Some(v + 1.0)).collect();
        let noise: Vec<Option<f64>> = [9.0, 1.0, 4.0, 2.0, 8.0, 3.0].map(Some).to_vec();
        assert_eq!(choose_weight(&good, &noise, &actual), 1.0);
        assert_eq!(choose_weight(&noise, &good, &actual), 0.0);
        assert_eq!(choose_weight(&good, &[None; 6], &actual), 1.0);
        let (values, models) = blend(0.5, &[Some(2.0), None], &[Some(4.0), Some(1.0)]);
        assert_eq!(values, [Some(3.0), Some(1.0)]);
        assert_eq!(models, [Some(BLEND), Some(ML_REVENUE)]);
    }

    #[test]
    fn rates_count_only_earlier_non_buyers_outside_the_holdout() {
        let labels = vec![
            ("a", true, true),
            ("b", true, true),
            ("c", false, true),
            ("d", false, false),
        ];
        let summary = Summary {
            user_ids: vec!["a".into()],
            frequency: vec![0.0],
            recency: vec![0.0],
            t: vec![3.0],
            monetary: vec![0.0],
            first_value: vec![0.0],
        };
        let leave_out: HashSet<&str> = ["d"].into_iter().collect();
        let (bought, active) = non_buyer_rates(Some(&summary), &labels, &leave_out);
        assert_eq!(bought, Some(0.5));
        assert_eq!(active, Some(1.0));
        assert_eq!(
            non_buyer_rates(None, &[], &HashSet::default()),
            (None, None)
        );
    }
}
