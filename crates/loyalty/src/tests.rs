//! Every definition on a five-user log over three months, computed by hand.
//!
//! | user | events (2026, UTC)                                   | persona |
//! |------|------------------------------------------------------|---------|
//! | u1   | Jan 5 view, Feb 10 rating 2 (toys), Mar 3 purchase 20 | 0       |
//! | u2   | Jan 20 purchase 10, Jan 25 purchase 15               | 0       |
//! | u3   | Jan 31 23:00 view (one event)                        | 1       |
//! | u4   | Feb 1 view, Mar 15 purchase -5 (a refund)            | 1       |
//! | u5   | Jan 10 view, Mar 1 rating 4 (books)                  | 1       |
//!
//! The as-of date is 2026-03-20, so March is incomplete.

use polars::prelude::*;
use userlens_model::time::{DAY_MICROS, midnight_micros};

use super::*;

fn at(m: u32, d: u32, hour: i64) -> i64 {
    midnight_micros(2026, m, d).unwrap() + hour * 3_600_000_000
}

/// user, time, type, category, amount, rating
type Row = (
    &'static str,
    i64,
    &'static str,
    Option<&'static str>,
    Option<f64>,
    Option<f64>,
);

fn events() -> DataFrame {
    let rows: [Row; 10] = [
        ("u1", at(1, 5, 10), "view", None, None, None),
        ("u1", at(2, 10, 10), "rating", Some("toys"), None, Some(2.0)),
        ("u1", at(3, 3, 10), "purchase", None, Some(20.0), None),
        ("u2", at(1, 20, 10), "purchase", None, Some(10.0), None),
        ("u2", at(1, 25, 10), "purchase", None, Some(15.0), None),
        ("u3", at(1, 31, 23), "view", None, None, None),
        ("u4", at(2, 1, 10), "view", None, None, None),
        ("u4", at(3, 15, 10), "purchase", None, Some(-5.0), None),
        ("u5", at(1, 10, 10), "view", None, None, None),
        ("u5", at(3, 1, 10), "rating", Some("books"), None, Some(4.0)),
    ];
    frame(&rows)
}

/// The events of `rows`.
fn frame(rows: &[Row]) -> DataFrame {
    let times: Vec<i64> = rows.iter().map(|r| r.1).collect();
    df!(
        "user_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "event_time" => Int64Chunked::from_vec("event_time".into(), times)
            .into_datetime(TimeUnit::Microseconds, None).into_series(),
        "event_type" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "category" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        "amount" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        "rating" => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
    )
    .unwrap()
}

fn assignments() -> DataFrame {
    df!(
        "user_id" => ["u1", "u2", "u3", "u4", "u5"],
        "persona_id" => [0u32, 0, 1, 1, 1],
    )
    .unwrap()
}

fn run(params: &str, as_of: Option<i64>) -> LoyaltyTables {
    run_on(events(), params, as_of)
}

fn run_on(events: DataFrame, params: &str, as_of: Option<i64>) -> LoyaltyTables {
    let parts = [events.lazy()];
    let assignments = assignments();
    let mut input = LoyaltyInput::new(&parts);
    input.as_of = as_of;
    input.assignments = Some(&assignments);
    let params: LoyaltyParams = toml::from_str(params).unwrap();
    loyalty(&input, &params.check().unwrap()).unwrap()
}

#[test]
fn the_declared_event_columns_are_all_it_reads() {
    let mut all = events();
    let n = all.height();
    for name in ["session_id", "item_id", "query"] {
        all.with_column(Column::new(name.into(), vec!["x"; n]))
            .unwrap();
    }
    let present = EVENT_COLUMNS
        .iter()
        .copied()
        .filter(|c| all.column(c).is_ok());
    let declared = all.select(present).unwrap();
    assert_eq!(declared.width(), all.width() - 3);
    let params: LoyaltyParams = toml::from_str("").unwrap();
    let params = params.check().unwrap();
    let assignments = assignments();
    let tables = |df: DataFrame| {
        let parts = [df.lazy()];
        let mut input = LoyaltyInput::new(&parts);
        input.assignments = Some(&assignments);
        loyalty(&input, &params).unwrap()
    };
    let (a, b) = (tables(all), tables(declared));
    for (x, y) in [
        (&a.retention, &b.retention),
        (&a.lifecycle_by_group, &b.lifecycle_by_group),
        (&a.stickiness_by_group, &b.stickiness_by_group),
        (&a.repeat_purchase_by_group, &b.repeat_purchase_by_group),
        (&a.survival, &b.survival),
        (&a.satisfaction, &b.satisfaction),
    ] {
        assert!(x.height() > 0);
        assert!(x.equals_missing(y), "{x}\n{y}");
    }
}

#[test]
fn the_declared_table_columns_are_all_it_reads() {
    let n = assignments().height();
    let mut assignments = assignments();
    let mut segments = df!(
        "user_id" => ["u1", "u2", "u3", "u4", "u5"],
        "segment" => ["champions", "lost", "lost", "new", "champions"],
    )
    .unwrap();
    for df in [&mut assignments, &mut segments] {
        df.with_column(Column::new("recency_days".into(), vec![1.5; n]))
            .unwrap();
    }
    let narrowed = |df: &DataFrame, columns: &[&str]| df.select(columns.iter().copied()).unwrap();
    let (declared_assignments, declared_segments) = (
        narrowed(&assignments, ASSIGNMENT_COLUMNS),
        narrowed(&segments, SEGMENT_COLUMNS),
    );
    assert_eq!(declared_segments.width(), segments.width() - 1);
    let params: LoyaltyParams = toml::from_str("").unwrap();
    let params = params.check().unwrap();
    let parts = [events().lazy()];
    let tables = |assignments, segments| {
        let mut input = LoyaltyInput::new(&parts);
        input.assignments = Some(assignments);
        input.segments = Some(segments);
        loyalty(&input, &params).unwrap()
    };
    let (a, b) = (
        tables(&assignments, &segments),
        tables(&declared_assignments, &declared_segments),
    );
    for (x, y) in [
        (&a.retention_by_group, &b.retention_by_group),
        (&a.lifecycle_by_group, &b.lifecycle_by_group),
        (&a.repeat_purchase_by_group, &b.repeat_purchase_by_group),
        (&a.survival, &b.survival),
    ] {
        assert!(strings(x, "group").contains(&"segment".to_string()));
        assert!(x.equals_missing(y), "{x}\n{y}");
    }
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap().cast(&DataType::String).unwrap();
    c.str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or("null").to_string())
        .collect()
}

fn floats(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    let c = df.column(name).unwrap().cast(&DataType::Float64).unwrap();
    c.f64().unwrap().iter().collect()
}

fn ints(df: &DataFrame, name: &str) -> Vec<u64> {
    let c = df.column(name).unwrap().cast(&DataType::UInt64).unwrap();
    c.u64().unwrap().into_no_null_iter().collect()
}

fn flags(df: &DataFrame, name: &str) -> Vec<Option<bool>> {
    df.column(name).unwrap().bool().unwrap().iter().collect()
}

#[test]
fn monthly_triangle_by_hand() {
    let t = run("", Some(at(3, 20, 0)));
    let r = &t.retention;
    assert_eq!(
        strings(r, "cohort"),
        ["2026-01", "2026-01", "2026-01", "2026-02", "2026-02"]
    );
    assert_eq!(ints(r, "cohort_users"), [4, 4, 4, 1, 1]);
    assert_eq!(ints(r, "period"), [0, 1, 2, 0, 1]);
    // January: everyone in period 0; u1 in February; u1 and u5 in March.
    assert_eq!(ints(r, "active_users"), [4, 1, 2, 1, 1]);
    let retention: Vec<f64> = floats(r, "retention").into_iter().flatten().collect();
    assert_eq!(retention, [1.0, 0.25, 0.5, 1.0, 1.0]);
    // February or later: u1 and u5.
    let unbounded: Vec<f64> = floats(r, "retention_unbounded")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(unbounded, [1.0, 0.5, 0.5, 1.0, 1.0]);
    assert_eq!(
        strings(r, "complete"),
        ["true", "true", "false", "true", "false"]
    );
}

#[test]
fn the_curve_averages_cohorts_that_completed_the_period() {
    let t = run("", Some(at(3, 20, 0)));
    let c = t
        .retention_curve
        .clone()
        .lazy()
        .filter(col("group").eq(lit("all")))
        .collect()
        .unwrap();
    // period 0: January (4) and February (1); period 1: January only (Feb -> Mar
    // is not over); period 2: no cohort has completed it.
    assert_eq!(ints(&c, "period"), [0, 1]);
    assert_eq!(ints(&c, "cohorts"), [2, 1]);
    assert_eq!(ints(&c, "cohort_users"), [5, 4]);
    assert_eq!(floats(&c, "retention"), [Some(1.0), Some(0.25)]);
    assert_eq!(floats(&c, "retention_unbounded"), [Some(1.0), Some(0.5)]);
}

#[test]
fn retention_is_cut_by_persona() {
    let t = run("", Some(at(3, 20, 0)));
    let persona1 = t
        .retention_by_group
        .clone()
        .lazy()
        .filter(
            col("value")
                .eq(lit("1"))
                .and(col("cohort").eq(lit("2026-01"))),
        )
        .collect()
        .unwrap();
    // u3 and u5: nobody in February, u5 back in March.
    assert_eq!(ints(&persona1, "cohort_users"), [2, 2, 2]);
    assert_eq!(ints(&persona1, "active_users"), [2, 0, 1]);
    assert_eq!(
        floats(&persona1, "retention_unbounded"),
        [Some(1.0), Some(0.5), Some(0.5)]
    );
    assert_eq!(strings(&persona1, "group"), ["persona_id"; 3]);
}

#[test]
fn lifecycle_by_hand() {
    let t = run("", Some(at(3, 20, 0)));
    let l = &t.lifecycle;
    assert_eq!(strings(l, "period"), ["2026-01", "2026-02", "2026-03"]);
    assert_eq!(ints(l, "new"), [4, 1, 0]);
    assert_eq!(ints(l, "returning"), [0, 1, 2]);
    assert_eq!(ints(l, "resurrecting"), [0, 0, 1]);
    assert_eq!(ints(l, "dormant"), [0, 3, 0]);
    assert_eq!(strings(l, "complete"), ["true", "true", "false"]);
}

#[test]
fn repeat_purchase_ignores_refunds_and_same_time_lines() {
    let t = run("", Some(at(3, 20, 0)));
    let r = &t.repeat_purchase;
    // u2 buys twice in January; u1 once in March; u4's refund is no purchase.
    assert_eq!(strings(r, "cohort"), ["2026-01", "2026-03"]);
    assert_eq!(ints(r, "buyers"), [1, 1]);
    assert_eq!(ints(r, "repeat_buyers"), [1, 0]);
    assert_eq!(floats(r, "rate"), [Some(1.0), Some(0.0)]);
    // January + 90 days ends in May, after the as-of date.
    assert_eq!(strings(r, "complete"), ["false", "false"]);
    let short = run("repeat_window_days = 3", Some(at(3, 20, 0)));
    assert_eq!(ints(&short.repeat_purchase, "repeat_buyers"), [0, 0]);
}

#[test]
fn the_lines_of_one_order_are_one_purchase_whatever_their_times() {
    // u2's two January purchases become lines of one order, a second apart.
    let mut with_orders = events();
    let orders: Vec<Option<&str>> = (0..with_orders.height())
        .map(|i| [3, 4].contains(&i).then_some("o1"))
        .collect();
    with_orders
        .with_column(Column::new("order_id".into(), orders))
        .unwrap();
    let second = at(1, 20, 10) + 1_000_000;
    let times = with_orders.column("event_time").unwrap().clone();
    let times: Vec<i64> = (times.cast(&DataType::Int64).unwrap().i64().unwrap())
        .into_no_null_iter()
        .enumerate()
        .map(|(i, t)| if i == 4 { second } else { t })
        .collect();
    with_orders
        .with_column(
            Int64Chunked::from_vec("event_time".into(), times)
                .into_datetime(TimeUnit::Microseconds, None)
                .into_column(),
        )
        .unwrap();
    let t = run_on(with_orders, "", Some(at(3, 20, 0)));
    assert_eq!(ints(&t.repeat_purchase, "buyers"), [1, 1]);
    assert_eq!(ints(&t.repeat_purchase, "repeat_buyers"), [0, 0]);
}

#[test]
fn an_orders_time_is_its_first_purchase_lines() {
    // c1's checkout carries the order's id the evening before its purchase; c2's
    // refund line of an order dated before that order's purchase, 95 days after the
    // first one (beyond the 90-day window).
    let rows: [Row; 5] = [
        ("c1", at(1, 31, 23), "begin_checkout", None, None, None),
        ("c1", at(2, 1, 1), "purchase", None, Some(40.0), None),
        ("c2", at(1, 20, 10), "purchase", None, Some(10.0), None),
        ("c2", at(1, 21, 10), "purchase", None, Some(-5.0), None),
        ("c2", at(4, 25, 10), "purchase", None, Some(10.0), None),
    ];
    let mut df = frame(&rows);
    let orders = ["o9", "o9", "o4", "o5", "o5"];
    df.with_column(Column::new("order_id".into(), orders))
        .unwrap();
    let t = run_on(df, "", Some(at(5, 20, 0)));
    let r = &t.repeat_purchase;
    assert_eq!(strings(r, "cohort"), ["2026-01", "2026-02"]);
    assert_eq!(ints(r, "buyers"), [1, 1]);
    assert_eq!(ints(r, "repeat_buyers"), [0, 0]);
}

/// The rows of `table` of the `all` group.
fn all_users(table: &DataFrame) -> DataFrame {
    let all = table.clone().lazy().filter(col("group").eq(lit("all")));
    all.collect().unwrap()
}

#[test]
fn survival_by_hand() {
    let t = run("", Some(at(3, 20, 0)));
    let all = all_users(&t.survival);
    // churned (30 days idle by Mar 19): u3 after 0 days, u2 after 5; the others were
    // active after Feb 17 (Mar 19 less 30 days), the last day whose state is known
    // for all, and are censored there: u4 at 16 (from Feb 1), u5 at 38 (from Jan
    // 10), u1 at 43 (from Jan 5).
    assert_eq!(ints(&all, "days"), [0, 5, 16, 38, 43]);
    assert_eq!(ints(&all, "at_risk"), [5, 4, 3, 2, 1]);
    assert_eq!(ints(&all, "churned"), [1, 1, 0, 0, 0]);
    let s: Vec<f64> = floats(&all, "survival").into_iter().flatten().collect();
    assert!((s[0] - 0.8).abs() < 1e-12 && (s[1] - 0.6).abs() < 1e-12 && s[4] == s[1]);
    let life = &t.lifetime;
    assert_eq!(strings(life, "median_days")[0], "null");
    assert_eq!(ints(life, "churned")[0], 2);
}

#[test]
fn stickiness_and_active_days_by_hand() {
    let t = run("", Some(at(3, 20, 0)));
    let s = &t.stickiness;
    let dates = strings(s, "date");
    assert_eq!(dates[0], "2026-01-05");
    assert_eq!(dates.last().map(String::as_str), Some("2026-03-19"));
    let jan31 = dates.iter().position(|d| d == "2026-01-31").unwrap();
    // trailing 30 days (Jan 2-31): u1, u5, u2, u3; trailing week (Jan 25-31): u2, u3
    assert_eq!(ints(s, "mau")[jan31], 4);
    assert_eq!(ints(s, "wau")[jan31], 2);
    assert_eq!(ints(s, "dau")[jan31], 1);
    let a = &t.active_days;
    assert_eq!(strings(a, "month")[..2], ["2026-01", "2026-01"]);
    assert_eq!(ints(a, "active_days")[..2], [1, 2]);
    assert_eq!(ints(a, "users")[..2], [3, 1]);
    // As of March 20: January is over, March is not.
    let complete = flags(a, "complete");
    let months = strings(a, "month");
    // January began before the log's first day (Jan 5): its users had fewer days.
    assert_eq!(complete[0], Some(false));
    let february = months.iter().position(|m| m == "2026-02").unwrap();
    assert_eq!(complete[february], Some(true));
    let march = months.iter().position(|m| m == "2026-03").unwrap();
    assert_eq!(complete[march], Some(false));
    // A day's 30-day window is whole from the log's 30th day on.
    let whole = flags(s, "complete");
    assert_eq!(whole[28], Some(false));
    assert_eq!(whole[29], Some(true));
}

/// Persona 0: a (Jan 1, Jan 3) and b (Jan 3); persona 1: c (Jan 2, Jan 10); as of
/// Jan 11, so the days are Jan 1-10.
#[test]
fn stickiness_by_persona_by_hand() {
    let day = |d: u32| at(1, d, 10);
    let events = df!(
        "user_id" => ["a", "a", "b", "c", "c"],
        "event_time" => [day(1), day(3), day(3), day(2), day(10)],
        "event_type" => ["view"; 5],
        "category" => [None::<&str>; 5],
        "amount" => [None::<f64>; 5],
        "rating" => [None::<f64>; 5],
    )
    .unwrap();
    let assignments = df!(
        "user_id" => ["a", "b", "c"],
        "persona_id" => [0u32, 0, 1],
    )
    .unwrap();
    let parts = [events.lazy()];
    let mut input = LoyaltyInput::new(&parts);
    input.as_of = Some(at(1, 11, 0));
    input.assignments = Some(&assignments);
    let t = loyalty(&input, &LoyaltyParams::default().check().unwrap()).unwrap();
    let s = &t.stickiness_by_group;
    let columns: Vec<&str> = s.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(
        columns,
        [
            "group", "value", "date", "dau", "wau", "mau", "dau_mau", "complete"
        ]
    );
    let persona = |v: &str| {
        s.clone()
            .lazy()
            .filter(col("value").eq(lit(v)))
            .collect()
            .unwrap()
    };
    // Persona 0, Jan 1-10: a alone on Jan 1, a and b on Jan 3; a's week runs to
    // Jan 9 (Jan 3 + 6), b's too; both stay in the trailing 30 days.
    let p0 = persona("0");
    assert_eq!(strings(&p0, "group"), ["persona_id"; 10]);
    assert_eq!(strings(&p0, "date")[0], "2026-01-01");
    assert_eq!(ints(&p0, "dau"), [1, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(ints(&p0, "wau"), [1, 1, 2, 2, 2, 2, 2, 2, 2, 0]);
    assert_eq!(ints(&p0, "mau"), [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
    assert_eq!(floats(&p0, "dau_mau")[2], Some(1.0));
    // Persona 1, Jan 2-10 (nobody of it before Jan 2, so no Jan 1 row): c on Jan 2
    // (week to Jan 8) and again on Jan 10.
    let p1 = persona("1");
    assert_eq!(strings(&p1, "date")[0], "2026-01-02");
    assert_eq!(ints(&p1, "dau"), [1, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(ints(&p1, "wau"), [1, 1, 1, 1, 1, 1, 1, 0, 1]);
    assert_eq!(ints(&p1, "mau"), [1; 9]);
    // Sorted by group then day: persona 0's ten rows, then persona 1's nine.
    let values = strings(s, "value");
    assert_eq!(values.len(), 19);
    assert!(values[..10].iter().all(|v| v == "0") && values[10..].iter().all(|v| v == "1"));
    // The personas split the users: their DAU add up to everyone's on every day.
    let all = &t.stickiness;
    assert_eq!(ints(all, "dau"), [1, 1, 2, 0, 0, 0, 0, 0, 0, 1]);
    let (dates, dau) = (strings(s, "date"), ints(s, "dau"));
    for (date, total) in strings(all, "date").iter().zip(ints(all, "dau")) {
        let summed: u64 = dates
            .iter()
            .zip(&dau)
            .filter(|(d, _)| *d == date)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(summed, total, "{date}");
    }
    // The overall table has no group columns.
    assert_eq!(all.width(), 6);
    assert_eq!(ints(all, "mau"), [1, 2, 3, 3, 3, 3, 3, 3, 3, 3]);
}

#[test]
fn ratings_give_mean_satisfaction_per_category() {
    let t = run("", Some(at(3, 20, 0)));
    let s = &t.satisfaction;
    assert_eq!(strings(s, "category")[..3], ["all", "books", "toys"]);
    assert_eq!(
        floats(s, "mean_rating")[..3],
        [Some(3.0), Some(4.0), Some(2.0)]
    );
    assert_eq!(ints(s, "users")[0], 2);
    assert_eq!(strings(s, "scope")[..3], ["all", "category", "category"]);
}

#[test]
fn categories_named_all_or_none_are_told_from_those_rows() {
    let rating = |user, day, category, score| {
        let row: Row = (user, at(1, day, 10), "rating", category, None, Some(score));
        row
    };
    let rows = [
        rating("u1", 2, Some("all"), 1.0),
        rating("u1", 3, Some("(none)"), 2.0),
        rating("u1", 4, None, 5.0),
    ];
    let t = run_on(frame(&rows), "", Some(at(2, 1, 0)));
    let s = t.satisfaction.head(Some(4));
    let pairs: Vec<(String, String)> = (strings(&s, "scope").into_iter())
        .zip(strings(&s, "category"))
        .collect();
    let pair = |scope: &str, category: &str| (scope.to_string(), category.to_string());
    assert_eq!(
        pairs,
        [
            pair("all", "all"),
            pair("uncategorised", "(none)"),
            pair("category", "(none)"),
            pair("category", "all"),
        ]
    );
    assert_eq!(
        floats(&s, "mean_rating"),
        [Some(8.0 / 3.0), Some(5.0), Some(2.0), Some(1.0)]
    );
}

#[test]
fn start_and_return_events_select_the_cohort_and_the_activity() {
    let t = run(
        "start_event = \"purchase\"\nreturn_event = \"view\"",
        Some(at(3, 20, 0)),
    );
    let r = &t.retention;
    // cohorts by first purchase: u2 (January) and u1 (March; its January view came
    // before the purchase and does not count); u4's refund is still an event.
    assert_eq!(
        strings(r, "cohort"),
        ["2026-01", "2026-01", "2026-01", "2026-03"]
    );
    assert_eq!(ints(r, "active_users"), [0, 0, 0, 0]);
    let t = run("start_event = \"purchase\"", Some(at(3, 20, 0)));
    assert_eq!(ints(&t.retention, "active_users")[0], 1);
    // a user whose refund is their only purchase-type event is in no cohort
    assert_eq!(ints(&t.retention, "cohort_users"), [1, 1, 1, 1]);
}

#[test]
fn weeks_across_a_year_boundary() {
    let times = [
        midnight_micros(2025, 12, 30).unwrap(),
        midnight_micros(2026, 1, 6).unwrap(),
        midnight_micros(2026, 1, 2).unwrap() + 5,
    ];
    let events = df!(
        "user_id" => ["a", "a", "b"],
        "event_time" => times,
        "event_type" => ["view"; 3],
        "category" => [None::<&str>; 3],
        "amount" => [None::<f64>; 3],
        "rating" => [None::<f64>; 3],
    )
    .unwrap();
    let parts = [events.lazy()];
    let params: LoyaltyParams = toml::from_str("unit = \"week\"").unwrap();
    let t = loyalty(&LoyaltyInput::new(&parts), &params.check().unwrap()).unwrap();
    let r = &t.retention;
    // Monday 2025-12-29 holds Dec 30 and Jan 2; the as-of date (Jan 7, after the
    // last event) falls inside the next week.
    assert_eq!(strings(r, "cohort"), ["2025-12-29", "2025-12-29"]);
    assert_eq!(ints(r, "cohort_users"), [2, 2]);
    assert_eq!(floats(r, "retention"), [Some(1.0), Some(0.5)]);
    assert_eq!(strings(r, "complete"), ["true", "false"]);
    assert_eq!(t.as_of, midnight_micros(2026, 1, 7).unwrap());
    assert_eq!(
        strings(&t.lifecycle, "period"),
        ["2025-12-29", "2026-01-05"]
    );
    assert_eq!(ints(&t.lifecycle, "dormant"), [0, 1]);
}

#[test]
fn events_out_of_user_order_give_the_same_tables() {
    let sorted = run("", Some(at(3, 20, 0)));
    let shuffled = events()
        .sort(["event_type"], SortMultipleOptions::default())
        .unwrap();
    let parts = [shuffled.lazy()];
    let assignments = assignments();
    let mut input = LoyaltyInput::new(&parts);
    input.as_of = Some(at(3, 20, 0));
    input.assignments = Some(&assignments);
    let params = LoyaltyParams::default().check().unwrap();
    let t = loyalty(&input, &params).unwrap();
    assert!(t.retention.equals_missing(&sorted.retention));
    assert!(t.survival.equals_missing(&sorted.survival));
    assert!(
        t.lifecycle_by_group
            .equals_missing(&sorted.lifecycle_by_group)
    );
    assert!(
        t.stickiness_by_group
            .equals_missing(&sorted.stickiness_by_group)
    );
}

#[test]
fn the_as_of_date_cuts_the_events() {
    let t = run("", Some(at(2, 1, 0)));
    // Only January: four users, one period, complete.
    assert_eq!(ints(&t.retention, "cohort_users"), [4]);
    assert_eq!(strings(&t.retention, "complete"), ["true"]);
    assert_eq!(t.stickiness.height(), 27);
    assert_eq!(DAY_MICROS * 27, at(2, 1, 0) - at(1, 5, 0));
}

#[test]
fn a_persona_has_a_row_for_every_period_from_its_first_on() {
    // Days: persona 0 is active on Jan 5, 20, 25, Feb 10 and Mar 3, with gaps between.
    let t = run("unit = \"day\"", Some(at(3, 20, 0)));
    let strings = |df: &DataFrame, name: &str| -> Vec<String> {
        let column = df.column(name).unwrap().cast(&DataType::String).unwrap();
        column
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect()
    };
    let every_day: Vec<String> = strings(&t.lifecycle, "period");
    for (table, column) in [
        (&t.lifecycle_by_group, "period"),
        (&t.stickiness_by_group, "date"),
    ] {
        let of_persona = table
            .clone()
            .lazy()
            .filter(
                col("group")
                    .eq(lit("persona_id"))
                    .and(col("value").eq(lit("0"))),
            )
            .collect()
            .unwrap();
        let days = strings(&of_persona, column);
        let first = every_day.iter().position(|d| *d == days[0]).unwrap();
        assert_eq!(days[0], "2026-01-05", "{column}");
        assert_eq!(days, every_day[first..], "{column}");
    }
}

/// Users starting on day `s` (days from Jan 1) whose last activity is `s + life`,
/// as a log of an event every 10 days from the first to the last (well within the
/// 30 days of idleness that make churn).
fn lifetimes(users: &[(i64, i64)]) -> DataFrame {
    let day0 = at(1, 1, 12);
    let (mut ids, mut times) = (Vec::new(), Vec::new());
    for (n, &(start, life)) in users.iter().enumerate() {
        let days = (start..start + life).step_by(10).chain([start + life]);
        for day in days {
            ids.push(format!("s{n}"));
            times.push(day0 + day * DAY_MICROS);
        }
    }
    let rows = ids.len();
    df!(
        "user_id" => ids,
        "event_time" => Int64Chunked::from_vec("event_time".into(), times)
            .into_datetime(TimeUnit::Microseconds, None).into_series(),
        "event_type" => vec!["view"; rows],
        "category" => vec![None::<&str>; rows],
        "amount" => vec![None::<f64>; rows],
        "rating" => vec![None::<f64>; rows],
    )
    .unwrap()
}

#[test]
fn survival_recovers_known_lifetimes_without_lifting_the_curve() {
    // 4,000 users starting over 280 days, lifetimes geometric with a mean of 40
    // days (a fixed LCG), seen up to day 300: some last activity is too recent to
    // tell churn from a pause, the case that lifts a curve censored anywhere later.
    let mut state = 12345u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let users: Vec<(i64, i64)> = (0..4000)
        .map(|_| {
            let start = (uniform() * 280.0) as i64;
            let life = (-40.0 * uniform().ln()).floor() as i64;
            (start, life.min(400))
        })
        .collect();
    let truth = |t: i64| users.iter().filter(|u| u.1 > t).count() as f64 / users.len() as f64;
    let as_of = at(1, 1, 0) + 300 * DAY_MICROS;
    let t = run_on(lifetimes(&users), "", Some(as_of));
    let all = all_users(&t.survival);
    let days = ints(&all, "days");
    let survival: Vec<f64> = floats(&all, "survival").into_iter().flatten().collect();
    let at_day = |t: u64| survival[days.iter().rposition(|&d| d <= t).unwrap()];
    for t in [20, 40, 80] {
        let (km, want) = (at_day(t), truth(t as i64));
        assert!((km - want).abs() < 0.02, "day {t}: {km} against {want}");
    }
}

#[test]
fn a_span_past_the_limit_keeps_its_last_periods_and_who_came_before() {
    // Days as of 2026-01-01: the last 1,000 start on 2023-04-07 (w); a stray event
    // of 2020 makes the span 2,192 days. u1: 2020 and w+10 (resurrecting); u2: w-1
    // and w (returning); u3: w-1 only (dormant on w); u4: w+5 (new).
    let w = midnight_micros(2023, 4, 7).unwrap() + 10 * 3_600_000_000;
    let stray = midnight_micros(2020, 1, 1).unwrap();
    let day = |n: i64| w + n * DAY_MICROS;
    let view = |user, t| (user, t, "view", None, None, None);
    let rows: [Row; 6] = [
        view("u1", stray),
        view("u1", day(10)),
        view("u2", day(-1)),
        view("u2", day(0)),
        view("u3", day(-1)),
        view("u4", day(5)),
    ];
    let t = run_on(frame(&rows), "unit = \"day\"", Some(at(1, 1, 0)));
    assert_eq!(t.earlier, Some((1192, "2023-04-07".to_string())));
    let l = &t.lifecycle;
    assert_eq!(l.height(), 1000);
    assert_eq!(strings(l, "period")[0], "2023-04-07");
    assert_eq!(ints(l, "new")[..11], [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(
        ints(l, "returning")[..11],
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        ints(l, "resurrecting")[..11],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(ints(l, "dormant")[..11], [1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    // Only u4's first event is within the days held.
    assert_eq!(strings(&t.retention, "cohort")[0], "2023-04-12");
    assert_eq!(ints(&t.retention, "cohort_users")[0], 1);
    assert_eq!(ints(&all_users(&t.survival), "at_risk")[0], 1);
    // u3's day before counts in the trailing week of the first six days; u2 is in
    // the first seven's, u4 from the sixth.
    let s = &t.stickiness;
    assert_eq!(strings(s, "date")[0], "2023-04-07");
    assert_eq!(ints(s, "wau")[..8], [2, 2, 2, 2, 2, 3, 2, 1]);
    assert_eq!(ints(s, "dau")[0], 1);
    // April 2023 begins before the days held: its active days are not all counted.
    let a = &t.active_days;
    assert_eq!(strings(a, "month")[0], "2023-04");
    assert!(strings(a, "complete").iter().all(|c| c == "false"));
}
