//! Tests of the model crate's shared helpers.

use super::*;

#[test]
fn error_chains_read_in_lower_case_once() {
    #[derive(Debug)]
    struct Wrapped(std::io::Error, bool);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.1 {
                true => write!(f, "failed to write `x`: {}", self.0),
                false => write!(f, "failed to write `x`"),
            }
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let full = || std::io::Error::from_raw_os_error(28);
    for repeats in [true, false] {
        let text = error_chain(&Wrapped(full(), repeats));
        assert_eq!(
            text,
            "failed to write `x`: no space left on device (os error 28)"
        );
    }
    // A cause the error's text only happens to end with is still said.
    let named = Wrapped(std::io::Error::other("`x`"), false);
    assert_eq!(error_chain(&named), "failed to write `x`: `x`");
    // Our own messages are left as they are.
    let ours = Wrapped(std::io::Error::other("Kept As Written"), false);
    assert_eq!(error_chain(&ours), "failed to write `x`: Kept As Written");
}

#[test]
fn samples_are_seeded_sorted_and_capped() {
    let a = stats::sample_rows(10_000, 50, 7);
    assert_eq!(a, stats::sample_rows(10_000, 50, 7));
    assert_ne!(a, stats::sample_rows(10_000, 50, 8));
    assert_eq!(a.len(), 50);
    assert!(a.windows(2).all(|w| w[0] < w[1]) && a[49] < 10_000);
    assert_eq!(stats::sample_rows(3, 50, 7), [0, 1, 2]);
}

#[test]
fn a_share_never_reads_as_none_or_all_unless_it_is() {
    let texts: Vec<String> = [0.0, 0.001, 0.005, 0.62, 0.994, 0.996, 1.0]
        .into_iter()
        .map(stats::percent_text)
        .collect();
    assert_eq!(texts, ["0%", "<1%", "1%", "62%", "99%", ">99%", "100%"]);
}

#[test]
fn skewness_is_the_third_standardised_moment() {
    let even = stats::skewness([1.0, 2.0, 3.0].into_iter()).unwrap();
    assert!(even.abs() < 1e-12, "{even}");
    let s = stats::skewness([0.0, 0.0, 0.0, 3.0].into_iter()).unwrap();
    assert!((s - 1.1547005383792517).abs() < 1e-12, "{s}");
    assert_eq!(stats::skewness([5.0, 5.0, 5.0].into_iter()), None);
    assert_eq!(stats::skewness([1.0, f64::NAN, 2.0].into_iter()), None);
    let huge = stats::skewness([0.0, 0.0, 0.0, 3e300].into_iter()).unwrap();
    assert!((huge - s).abs() < 1e-9, "{huge}");
}

#[test]
fn only_skewed_user_attributes_take_the_log_besides_the_catalogue() {
    // Incomes: most near 30k, a few far above.
    let mut income: Vec<f64> = (0..200).map(|i| 20_000.0 + 100.0 * i as f64).collect();
    income.extend([900_000.0, 2_500_000.0, 4_000_000.0]);
    assert!(takes_log("user_income", &income));
    let age: Vec<f64> = (0..200).map(|i| 18.0 + (i % 60) as f64).collect();
    assert!(!takes_log("user_age", &age));
    // Not a users-table attribute: named features follow the catalogue only.
    assert!(!takes_log("cat_share_books", &income));
    assert!(takes_log("monetary", &age));
    assert!(!takes_log("mean_rating", &income));
    assert!(!takes_log("user_income", &[]));
    // A flag: 1 for most, 2 for a few. Logged or not, it is the same two values.
    for every in [7, 13, 19, 23, 29, 31, 37] {
        for (low, high) in [(1.0, 2.0), (3.0, 1000.0), (1.0, 5.0)] {
            let flag: Vec<f64> = (0..400)
                .map(|i| if i % every == 0 { high } else { low })
                .collect();
            assert!(!takes_log("user_tier", &flag), "{every} {low} {high}");
        }
    }
    // Values so near 0 that the log is near the identity: it tames nothing.
    let rates: Vec<f64> = income.iter().map(|v| v * 1e-8).collect();
    assert!(!takes_log("user_rate", &rates));
}

#[test]
fn money_is_whole_cents_as_polars_casts_them() {
    assert_eq!(money::cents(4.6), Some(460));
    // halves go to the even cent
    assert_eq!(money::cents(0.125), Some(12));
    assert_eq!(money::cents(0.375), Some(38));
    assert_eq!(money::cents(-2.5), Some(-250));
    for beyond in [f64::NAN, f64::INFINITY, 1e300, -1e300, 9.3e16] {
        assert_eq!(money::cents(beyond), None, "{beyond}");
    }
    assert_eq!(money::cents(-9.2e16), Some(-9_200_000_000_000_000_000));
    assert_eq!(money::from_cents(460), 4.6000000000000005);
    assert_eq!(money::from_cents(-250), -2.5);
}

#[test]
fn midnights_are_whole_days_since_1970() {
    assert_eq!(time::midnight_micros(1970, 1, 1), Some(0));
    assert_eq!(time::midnight_micros(1970, 1, 2), Some(time::DAY_MICROS));
    assert_eq!(time::midnight_micros(1969, 12, 31), Some(-time::DAY_MICROS));
    // 2000-03-01 is day 11,017 (a leap year's February has 29 days)
    assert_eq!(
        time::midnight_micros(2000, 3, 1),
        Some(11_017 * time::DAY_MICROS)
    );
    assert_eq!(time::midnight_micros(2000, 13, 1), None);
    // Days a month does not have.
    for (y, m, d) in [
        (2026, 2, 31),
        (2023, 2, 29),
        (1900, 2, 29),
        (2026, 4, 31),
        (2026, 1, 0),
    ] {
        assert_eq!(time::midnight_micros(y, m, d), None, "{y}-{m}-{d}");
    }
    assert_eq!(time::next_midnight(0), time::DAY_MICROS);
    assert_eq!(time::next_midnight(-1), 0);
    assert_eq!(time::days(2), 2 * time::DAY_MICROS);
    assert_eq!(time::days(u32::MAX), i64::MAX);
    assert_eq!(time::date_string(20_454 * time::DAY_MICROS), "2026-01-01");
    assert_eq!(time::date_string(-1), "1969-12-31");
    for (y, m, d) in [(1600, 2, 29), (1969, 12, 31), (2024, 2, 29), (2400, 12, 31)] {
        let t = time::midnight_micros(y, m, d).unwrap();
        assert_eq!(time::date_string(t), format!("{y:04}-{m:02}-{d:02}"));
    }
}

#[test]
fn medians_skip_missing_values() {
    assert_eq!(stats::median([3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
    assert_eq!(stats::median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(stats::median([f64::NAN]), None);
    assert_eq!(stats::signed_log1p(-(1f64.exp() - 1.0)), -1.0);
    assert_eq!(stats::signed_log1p(0.0), 0.0);
}

#[test]
fn standardises_with_the_median_for_missing_values() {
    use stats::Standardiser;
    let t = [0.0, 2.0, f64::NAN, 4.0];
    let s = Standardiser::fit(t.iter().copied()).unwrap();
    assert_eq!(s.impute(), 2.0);
    assert_eq!(s.center(), 2.0);
    assert_eq!(s.scale(), 2f64.sqrt());
    // (v / 4 - 0.5) / sqrt(1/8)
    assert_eq!(s.z(f64::NAN), 0.0);
    assert_eq!(s.z(4.0), 0.5 / 0.125f64.sqrt());
    assert_eq!(Standardiser::transform(-3.0, true), -(3f64.ln_1p()));
    assert_eq!(Standardiser::transform(-3.0, false), -3.0);
    // all missing, constant, constant up to rounding, empty
    assert_eq!(Standardiser::fit([f64::NAN, f64::NAN].into_iter()), None);
    assert_eq!(Standardiser::fit([0.1, 0.1, f64::NAN].into_iter()), None);
    assert_eq!(Standardiser::fit([1.0, 1.0 + 1e-15].into_iter()), None);
    assert_eq!(Standardiser::fit(std::iter::empty()), None);
}

#[test]
fn suggests_close_names_only() {
    assert_eq!(
        did_you_mean("user_di", &["user_id", "amount"]),
        Some("user_id")
    );
    assert_eq!(did_you_mean("zzz", &["user_id", "amount"]), None);
    assert_eq!(
        did_you_mean("user_id", &["UserID", "country"]),
        Some("UserID")
    );
}

#[test]
fn feature_names_are_unique() {
    let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), FEATURES.len());
}

#[test]
fn counts_are_heavy_tailed_features_of_whole_numbers() {
    let counts: Vec<&str> = FEATURES
        .iter()
        .filter(|f| f.count)
        .map(|f| f.name)
        .collect();
    assert_eq!(
        counts,
        [
            "frequency",
            "refund_count",
            "events",
            "sessions",
            "active_days",
            "views",
            "carts",
            "category_count",
            "searches",
            "distinct_queries",
            "ratings"
        ]
    );
    assert!(FEATURES.iter().filter(|f| f.count).all(|f| f.heavy_tailed));
}

#[test]
fn describes_derived_features() {
    assert_eq!(describe_feature("cat_share_books", true), "books");
    assert_eq!(describe_feature("cat_share_books", false), "little books");
    // "Home & Garden"'s column.
    assert_eq!(
        describe_feature("cat_share_home___garden", true),
        "home garden"
    );
    assert_eq!(describe_feature("cat_share__1_1_2", false), "little 1 1 2");
    assert_eq!(describe_feature("user_age_years", true), "high age years");
    assert_eq!(describe_feature("recency_days", true), "lapsed");
}

#[test]
fn family_names_round_trip_through_serde() {
    for family in FeatureFamily::ALL {
        let json = format!("\"{}\"", family.name());
        let back: FeatureFamily = serde_json::from_str(&json).unwrap();
        assert_eq!(back, family);
    }
}

#[test]
fn pearson_is_exact_for_a_perfect_line_and_finite_for_huge_values() {
    use crate::stats::pearson;
    let x = [1.0, 2.0, 4.0, 7.0];
    assert_eq!(pearson(&x, &x), Some(1.0));
    let negated: Vec<f64> = x.iter().map(|v| -3.0 * v).collect();
    assert_eq!(pearson(&x, &negated), Some(-1.0));
    assert_eq!(pearson(&x, &[2.0; 4]), None);
    // Squared sums past f64's range still give a correlation.
    let huge: Vec<f64> = x.iter().map(|v| v * 1e100).collect();
    let r = pearson(&huge, &huge.iter().map(|v| -v).collect::<Vec<_>>()).unwrap();
    assert!((r + 1.0).abs() < 1e-12, "{r}");
}

#[test]
fn one_typo_is_a_letter_added_dropped_changed_or_two_swapped() {
    use crate::one_typo_from;
    let known = crate::event_types::KNOWN;
    assert_eq!(one_typo_from("veiw", &known), Some("view"));
    assert_eq!(one_typo_from("VIEW", &known), Some("view"));
    assert_eq!(one_typo_from("purchse", &known), Some("purchase"));
    assert_eq!(one_typo_from("review", &known), None);
    assert_eq!(
        one_typo_from("Product Removed", &["Product Reviewed"]),
        None
    );
}
