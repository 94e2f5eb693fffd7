//! Personas of a log of purchases only: a line-item export with no views, searches,
//! carts or ratings, whose time of day is noise.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use userlens_model::{FEATURES, FeatureFamily};

use super::*;

/// Days of the log; the as-of time is its end.
const DAYS: f64 = 180.0;

/// One kind of buyer: share of users, orders, order value.
struct Kind {
    share: f64,
    orders: (u32, u32),
    value: (f64, f64),
}

/// High-value regulars, one-time bargain buyers and occasional mid-range buyers.
const KINDS: [Kind; 3] = [
    Kind {
        share: 0.2,
        orders: (8, 20),
        value: (80.0, 200.0),
    },
    Kind {
        share: 0.4,
        orders: (1, 1),
        value: (5.0, 20.0),
    },
    Kind {
        share: 0.4,
        orders: (2, 4),
        value: (20.0, 60.0),
    },
];

/// The features table the features stage makes of such a log: orders of one to
/// three lines at one instant, at an hour and on a day drawn alike for every kind.
fn purchase_only_features(users: usize, seed: u64) -> (DataFrame, Vec<u32>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let names = [
        "recency_days",
        "frequency",
        "monetary",
        "avg_order_value",
        "tenure_days",
        "events",
        "sessions",
        "active_days",
        "events_per_session",
        "session_minutes",
        "views",
        "carts",
        "night_share",
        "morning_share",
        "evening_share",
        "weekend_share",
        "searches",
        "search_share",
        "distinct_queries",
        "ratings",
    ];
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut interpurchase = Vec::new();
    let mut truth = Vec::new();
    for _ in 0..users {
        let draw: f64 = rng.r#gen();
        let kind = if draw < KINDS[0].share {
            0
        } else if draw < KINDS[0].share + KINDS[1].share {
            1
        } else {
            2
        };
        let k = &KINDS[kind];
        let orders = rng.gen_range(k.orders.0..=k.orders.1);
        let (mut first, mut last, mut spend, mut lines) = (DAYS, 0.0f64, 0.0, 0.0);
        let (mut night, mut morning, mut evening, mut weekend) = (0.0, 0.0, 0.0, 0.0);
        let mut days = Vec::new();
        for _ in 0..orders {
            let day = rng.gen_range(0..DAYS as u32);
            let hour = rng.gen_range(0..24u32);
            let at = f64::from(day) + f64::from(hour) / 24.0;
            let n = f64::from(rng.gen_range(1..=3u32));
            first = first.min(at);
            last = last.max(at);
            spend += (rng.gen_range(k.value.0..k.value.1) * 100.0).round() / 100.0;
            lines += n;
            night += n * f64::from(u8::from(!(5..22).contains(&hour)));
            morning += n * f64::from(u8::from((5..12).contains(&hour)));
            evening += n * f64::from(u8::from((17..22).contains(&hour)));
            weekend += n * f64::from(u8::from(day % 7 >= 5));
            days.push(day);
        }
        days.sort_unstable();
        days.dedup();
        let orders = f64::from(orders);
        let row = [
            DAYS - last,
            orders,
            spend,
            spend / orders,
            DAYS - first,
            lines,
            orders,
            days.len() as f64,
            lines / orders,
            0.0,
            0.0,
            0.0,
            night / lines,
            morning / lines,
            evening / lines,
            weekend / lines,
            0.0,
            0.0,
            0.0,
            0.0,
        ];
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
        interpurchase.push((orders > 1.0).then(|| (last - first) / (orders - 1.0)));
        truth.push(kind as u32);
    }
    let ids: Vec<String> = (0..users).map(|i| format!("c{i:05}")).collect();
    let mut frame = vec![Column::new(USER_ID.into(), ids)];
    for (name, values) in names.iter().zip(columns) {
        frame.push(Column::new((*name).into(), values));
    }
    // ratios over no views, carts or ratings are null, as the features stage makes them
    for name in [
        "view_to_cart",
        "cart_to_purchase",
        "view_to_purchase",
        "mean_rating",
    ] {
        frame.push(Column::new(name.into(), vec![None::<f64>; users]));
    }
    frame.push(Column::new("mean_interpurchase_days".into(), interpurchase));
    (DataFrame::new(users, frame).unwrap(), truth)
}

/// Every word the catalogue has for a time-of-day feature.
fn time_of_day_words() -> Vec<&'static str> {
    FEATURES
        .iter()
        .filter(|f| f.family == FeatureFamily::TimeOfDay)
        .flat_map(|f| [f.high, f.low])
        .collect()
}

#[test]
fn uninformative_families_are_left_out_and_reported() {
    let (df, _) = purchase_only_features(900, 1);
    let result = profile(&df, &checked(ProfileParams::default()), 7).unwrap();
    assert_sane(&result);
    let model = &result.model;
    let left_out: Vec<(FeatureFamily, &str)> = model
        .families_left_out
        .iter()
        .map(|f| (f.family, f.reason.as_str()))
        .collect();
    assert_eq!(
        left_out,
        vec![
            (FeatureFamily::Funnel, "every value equal or missing"),
            (FeatureFamily::Search, "every value equal"),
            (FeatureFamily::Satisfaction, "every value equal or missing"),
        ]
    );
    assert_eq!(
        model.families_left_out[0].features,
        vec![
            "views",
            "carts",
            "view_to_cart",
            "cart_to_purchase",
            "view_to_purchase"
        ]
    );
    for feature in &model.features {
        let family = family::family_of(feature);
        assert!(
            !matches!(
                family,
                Some(FeatureFamily::Funnel | FeatureFamily::Search | FeatureFamily::Satisfaction)
            ),
            "{feature} is clustered on"
        );
    }
    // the families clustered on are reported with their weight
    let weighted: Vec<FeatureFamily> = model.family_weights.iter().map(|w| w.family).collect();
    assert_eq!(
        weighted,
        vec![
            FeatureFamily::Rfm,
            FeatureFamily::Activity,
            FeatureFamily::TimeOfDay,
            FeatureFamily::Interpurchase
        ]
    );
    let shares: f64 = model.family_weights.iter().map(|w| w.share).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");
    // the JSON of the model, which the run record holds, says it too
    let json = serde_json::to_value(model).unwrap();
    assert_eq!(json["families_left_out"][1]["family"], "search");
}

#[test]
fn time_of_day_noise_neither_dominates_nor_names_personas() {
    let (df, truth) = purchase_only_features(900, 1);
    let result = profile(&df, &checked(ProfileParams::default()), 7).unwrap();
    assert_sane(&result);
    let model = &result.model;
    let share = |family: FeatureFamily| {
        model
            .family_weights
            .iter()
            .find(|w| w.family == family)
            .map_or(0.0, |w| w.share)
    };
    // a share of one or two orders is mostly noise: it counts little
    assert!(
        share(FeatureFamily::TimeOfDay) < 0.5 * share(FeatureFamily::Rfm),
        "{:?}",
        model.family_weights
    );
    let words = time_of_day_words();
    for label in &model.labels {
        assert!(
            !words
                .iter()
                .any(|w| label.split(" · ").any(|term| term == *w)),
            "{label} names the time of day: {:?}",
            model.labels
        );
    }
    assert!(
        model.labels.iter().any(|l| l.contains("high-value")),
        "{:?}",
        model.labels
    );
    assert!(
        model.labels.iter().any(|l| l.contains("one-time")),
        "{:?}",
        model.labels
    );
    // Personas follow the kinds of buyers, not the hours they bought at: each holds
    // mostly one kind (recency may split a kind), and the names say which.
    let ids = persona_ids(&result);
    let mut counts = vec![[0usize; 3]; model.k];
    for (&persona, &kind) in ids.iter().zip(&truth) {
        counts[persona as usize - 1][kind as usize] += 1;
    }
    let purity = counts
        .iter()
        .map(|c| c.iter().max().unwrap())
        .sum::<usize>() as f64
        / truth.len() as f64;
    for (label, c) in model.labels.iter().zip(&counts) {
        let users = c.iter().sum::<usize>() as f64;
        if label.contains("high-value") {
            assert!(c[0] as f64 >= 0.8 * users, "{label}: {c:?}");
        }
        if label.contains("one-time") {
            assert!(c[1] as f64 >= 0.8 * users, "{label}: {c:?}");
        }
    }
    assert!(
        purity >= 0.85,
        "purity {purity}: {counts:?} {:?}",
        model.labels
    );
}

#[test]
fn time_of_day_is_capped_at_the_value_families() {
    // Three hours that are not noise but the only structure besides spend: they may
    // count, but never more than the value and behaviour families together.
    let (df, _) = purchase_only_features(600, 3);
    let n = df.height();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let mut frame = vec![
        df.column(USER_ID).unwrap().clone(),
        df.column("monetary").unwrap().clone(),
    ];
    for name in ["night_share", "morning_share", "evening_share"] {
        let values: Vec<f64> = (0..n)
            .map(|_| if rng.r#gen::<bool>() { 0.9 } else { 0.1 })
            .collect();
        frame.push(Column::new(name.into(), values));
    }
    let df = DataFrame::new(n, frame).unwrap();
    let result = profile(&df, &fixed(3), 7).unwrap();
    assert_sane(&result);
    let weights = &result.model.family_weights;
    assert_eq!(weights.len(), 2, "{weights:?}");
    let (rfm, time) = (&weights[0], &weights[1]);
    assert_eq!(
        (rfm.family, time.family),
        (FeatureFamily::Rfm, FeatureFamily::TimeOfDay)
    );
    assert_eq!(rfm.scale, 1.0);
    assert!(time.scale < 0.7, "{weights:?}");
    assert!((time.share - rfm.share).abs() < 1e-9, "{weights:?}");
}
