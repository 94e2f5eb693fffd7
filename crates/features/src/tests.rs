use super::*;

use userlens_model::time::DAY_MICROS as DAY;

/// 2026-01-05 is a Monday; times are micros from the Unix epoch.
fn at(day: i64, hour: i64, minute: i64) -> i64 {
    1_767_571_200_000_000 + day * DAY + hour * 3_600_000_000 + minute * 60_000_000
}

/// user, time, type, session, category, query, amount, rating
type Row<'a> = (
    &'a str,
    i64,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<f64>,
    Option<f64>,
);

fn events() -> DataFrame {
    // user a: views, a cart, two purchases on days 0 and 4, a rating; user b: a
    // night search on Saturday; one event after the as-of time that must be ignored.
    let rows: Vec<Row> = vec![
        (
            "a",
            at(0, 10, 0),
            "view",
            "a-s1",
            Some("books"),
            None,
            None,
            None,
        ),
        (
            "a",
            at(0, 10, 5),
            "add_to_cart",
            "a-s1",
            Some("books"),
            None,
            None,
            None,
        ),
        (
            "a",
            at(0, 10, 20),
            "purchase",
            "a-s1",
            Some("books"),
            None,
            Some(30.0),
            None,
        ),
        (
            "a",
            at(4, 18, 0),
            "view",
            "a-s2",
            Some("toys"),
            None,
            None,
            None,
        ),
        (
            "a",
            at(4, 18, 10),
            "purchase",
            "a-s2",
            Some("books"),
            None,
            Some(10.0),
            None,
        ),
        (
            "a",
            at(4, 18, 30),
            "rating",
            "a-s2",
            Some("books"),
            None,
            None,
            Some(4.0),
        ),
        (
            "b",
            at(5, 23, 0),
            "search",
            "b-s1",
            None,
            Some("rust"),
            None,
            None,
        ),
        (
            "b",
            at(20, 12, 0),
            "purchase",
            "b-s2",
            Some("toys"),
            None,
            Some(99.0),
            None,
        ),
    ];
    frame(&rows)
}

fn frame(rows: &[Row]) -> DataFrame {
    let n = rows.len();
    DataFrame::new(
        n,
        vec![
            Column::new(
                "user_id".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            Int64Chunked::from_vec("event_time".into(), rows.iter().map(|r| r.1).collect())
                .into_datetime(TimeUnit::Microseconds, None)
                .into_column(),
            Column::new(
                "event_type".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "session_id".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new("item_id".into(), vec![None::<&str>; n]),
            Column::new(
                "category".into(),
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            ),
            Column::new("query".into(), rows.iter().map(|r| r.5).collect::<Vec<_>>()),
            Column::new(
                "amount".into(),
                rows.iter().map(|r| r.6).collect::<Vec<_>>(),
            ),
            Column::new(
                "rating".into(),
                rows.iter().map(|r| r.7).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

fn value(df: &DataFrame, column: &str, row: usize) -> Option<f64> {
    df.column(column).unwrap().f64().unwrap().get(row)
}

#[test]
fn computes_every_family_as_of_a_date() {
    let params = FeatureParams::default().check().unwrap();
    let f = build(&events(), at(10, 0, 0), None, &params).unwrap();
    assert_eq!(f.height(), 2);
    let users: Vec<_> = f
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(users, ["a", "b"]);
    // user a
    assert_eq!(value(&f, "events", 0), Some(6.0));
    assert_eq!(value(&f, "frequency", 0), Some(2.0));
    assert_eq!(value(&f, "monetary", 0), Some(40.0));
    assert_eq!(value(&f, "avg_order_value", 0), Some(20.0));
    let recency = value(&f, "recency_days", 0).unwrap();
    assert!(
        (recency - (10.0 - 4.0 - 18.5 / 24.0)).abs() < 1e-9,
        "{recency}"
    );
    assert_eq!(value(&f, "sessions", 0), Some(2.0));
    assert_eq!(value(&f, "active_days", 0), Some(2.0));
    assert_eq!(value(&f, "events_per_session", 0), Some(3.0));
    assert_eq!(value(&f, "session_minutes", 0), Some(25.0));
    assert_eq!(value(&f, "views", 0), Some(2.0));
    assert_eq!(value(&f, "view_to_cart", 0), Some(0.5));
    assert_eq!(value(&f, "cart_to_purchase", 0), Some(2.0));
    assert_eq!(value(&f, "cat_share_books", 0), Some(5.0 / 6.0));
    assert_eq!(value(&f, "mean_rating", 0), Some(4.0));
    assert_eq!(
        value(&f, "mean_interpurchase_days", 0).map(|d| (d * 1e6).round() / 1e6),
        Some(((4.0 * 24.0 + 7.0 + 50.0 / 60.0) / 24.0 * 1e6_f64).round() / 1e6)
    );
    assert_eq!(value(&f, "evening_share", 0), Some(0.5));
    assert_eq!(
        f.column("top_category").unwrap().str().unwrap().get(0),
        Some("books")
    );
    // user b: the purchase on day 20 is after the as-of time
    assert_eq!(value(&f, "events", 1), Some(1.0));
    assert_eq!(value(&f, "frequency", 1), Some(0.0));
    assert_eq!(value(&f, "monetary", 1), Some(0.0));
    assert_eq!(value(&f, "night_share", 1), Some(1.0));
    assert_eq!(value(&f, "weekend_share", 1), Some(1.0));
    assert_eq!(value(&f, "searches", 1), Some(1.0));
    assert_eq!(value(&f, "mean_rating", 1), None);
    assert_eq!(value(&f, "mean_interpurchase_days", 1), None);
    assert_eq!(
        f.column("top_query").unwrap().str().unwrap().get(1),
        Some("rust")
    );
}

#[test]
fn families_switch_off() {
    let params: FeatureParams = toml::from_str(r#"families = ["rfm"]"#).unwrap();
    let f = build(&events(), at(30, 0, 0), None, &params.check().unwrap()).unwrap();
    let names: Vec<_> = f.get_column_names().iter().map(|n| n.to_string()).collect();
    assert_eq!(
        names,
        [
            "user_id",
            "recency_days",
            "frequency",
            "monetary",
            "avg_order_value",
            "tenure_days",
            "refund_count"
        ]
    );
}

#[test]
fn joins_the_users_table() {
    let users = DataFrame::new(
        3,
        vec![
            Column::new("user_id".into(), ["b", "a", "zz"]),
            Column::new("age".into(), [30i64, 40, 50]),
            Column::new("plan".into(), ["free", "pro", "pro"]),
        ],
    )
    .unwrap();
    let params = FeatureParams::default().check().unwrap();
    let f = build(&events(), at(30, 0, 0), Some(&users), &params).unwrap();
    assert_eq!(f.height(), 2, "users without events get no row");
    assert_eq!(value(&f, "user_age", 0), Some(40.0));
    // NaN and infinities read from a table are missing values, not numbers.
    let mut odd = users.clone();
    odd.with_column(Column::new("age".into(), [f64::INFINITY, f64::NAN, 1.0]))
        .unwrap();
    let f = build(&events(), at(30, 0, 0), Some(&odd), &params).unwrap();
    let ages = f.column("user_age").unwrap().f64().unwrap();
    assert_eq!(ages.null_count(), 2);
    assert_eq!(
        f.column("user_plan").unwrap().str().unwrap().get(1),
        Some("free")
    );
}

#[test]
fn features_at_a_cutoff_leave_out_what_the_users_table_learnt_later() {
    let users = DataFrame::new(
        2,
        vec![
            Column::new("user_id".into(), ["a", "b"]),
            Column::new("age".into(), [40i64, 30]),
            // summed over all time, so it knows about purchases after the cutoff
            Column::new("lifetime_value".into(), [300.0, 0.0]),
            Column::new("first_seen".into(), ["2026-01-01", "2026-02-01"]),
        ],
    )
    .unwrap();
    let params: FeatureParams =
        toml::from_str(r#"static_columns = ["age", "first_seen"]"#).unwrap();
    let params = params.check().unwrap();
    let cutoff = at(10, 0, 0);
    let parts = [events().lazy()];
    let (f, excluded) = build_parts_at_cutoff(&parts, cutoff, Some(&users), &params, None).unwrap();
    assert_eq!(excluded, ["lifetime_value"]);
    assert!(f.column("user_lifetime_value").is_err());
    assert_eq!(value(&f, "user_age", 0), Some(40.0));
    // b was first seen after the cutoff: not known then
    assert_eq!(
        f.column("user_first_seen").unwrap().str().unwrap().get(1),
        None
    );
    // the same events and table as of the cutoff, without the cut: every column
    let all = build_parts(&parts, cutoff, Some(&users), &params, None).unwrap();
    assert_eq!(value(&all, "user_lifetime_value", 0), Some(300.0));
    let mut expected = all.drop("user_lifetime_value").unwrap();
    expected
        .with_column(Column::new(
            "user_first_seen".into(),
            [Some("2026-01-01"), None::<&str>],
        ))
        .unwrap();
    assert!(f.equals_missing(&expected), "{f}");
    // unset, the parameter is not written where parameters are recorded
    let written = toml::to_string(&FeatureParams::default()).unwrap();
    assert!(!written.contains("static_columns"), "{written}");
}

#[test]
fn check_rejects_bad_params() {
    let params = FeatureParams {
        families: vec![],
        ..FeatureParams::default()
    };
    assert_eq!(
        params.check().unwrap_err().to_string(),
        "`families` is empty: name at least one feature family"
    );
    let params = FeatureParams {
        static_columns: Some(vec![" ".into()]),
        ..FeatureParams::default()
    };
    assert_eq!(
        params.check().unwrap_err().to_string(),
        "`static_columns` holds an empty column name"
    );
    let err = toml::from_str::<FeatureParams>(r#"families = ["rfn"]"#).unwrap_err();
    assert!(err.to_string().contains("unknown variant `rfn`"), "{err}");
}

/// `copies` users like each user of [`events`], sorted by user and time.
fn many_users(copies: usize) -> DataFrame {
    let one = events();
    let mut all: Option<DataFrame> = None;
    for copy in 0..copies {
        let mut part = one.clone();
        let ids: Vec<String> = part
            .column("user_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|id| format!("{}{copy:03}", id.unwrap()))
            .collect();
        part.with_column(Column::new("user_id".into(), ids))
            .unwrap();
        all = Some(match all {
            None => part,
            Some(mut acc) => {
                acc.vstack_mut(&part).unwrap();
                acc
            }
        });
    }
    all.unwrap()
        .sort(["user_id", "event_time"], SortMultipleOptions::default())
        .unwrap()
}

/// The features at `as_of` of `events` built in pieces of about `part_rows` rows.
fn built_in_parts(
    events: &DataFrame,
    as_of: i64,
    params: &CheckedFeatureParams,
    part_rows: usize,
) -> DataFrame {
    let at = At {
        as_of,
        params,
        users: None,
    };
    build_in_parts(&[events.clone().lazy()], &[at], None, part_rows)
        .unwrap()
        .remove(0)
}

/// The `top` most common categories before `as_of`.
fn top_categories_before(parts: &[LazyFrame], as_of: i64, top: usize) -> Vec<String> {
    top_categories(parts, &[(as_of, top)]).unwrap().remove(0)
}

/// [`user_parts`] as one walk of the rows: the reference for its checks in stretches.
fn walked_user_parts(
    ids: &[&str],
    times: &[i64],
    max_rows: usize,
) -> (Vec<std::ops::Range<usize>>, Order) {
    let n = ids.len();
    let (mut parts, mut start, mut order) = (Vec::new(), 0, Order::UserTime);
    for i in 1..n {
        if ids[i] < ids[i - 1] {
            return (std::iter::once(0..n).collect(), Order::Unsorted);
        }
        if ids[i] == ids[i - 1] && times[i] < times[i - 1] {
            order = Order::Unsorted;
        }
        if ids[i] != ids[i - 1] && i - start >= max_rows {
            parts.push(start..i);
            start = i;
        }
    }
    if n <= max_rows {
        return (std::iter::once(0..n).collect(), order);
    }
    parts.push(start..n);
    (parts, order)
}

#[test]
fn the_order_checked_in_stretches_is_one_walks() {
    let sorted = ["a", "a", "a", "b", "c", "c", "c", "c", "d", "e", "e"];
    let rising: Vec<i64> = (0..11).collect();
    // A user's times going back at a stretch's first row (stretches of 3 in tests).
    let mut back = rising.clone();
    back.swap(5, 6);
    // A user id going back at a stretch's first row.
    let mut unsorted = sorted;
    unsorted.swap(2, 3);
    let cases: [(&[&str], &[i64]); 4] = [
        (&sorted, &rising),
        (&sorted, &back),
        (&unsorted, &rising),
        (&[], &[]),
    ];
    for (ids, times) in cases {
        let events = DataFrame::new(
            ids.len(),
            vec![
                Column::new("user_id".into(), ids),
                Column::new("event_time".into(), times),
            ],
        )
        .unwrap();
        for max_rows in [0, 1, 2, 3, 4, 100] {
            assert_eq!(
                user_parts(&events, max_rows).unwrap(),
                walked_user_parts(ids, times, max_rows),
                "{ids:?} {times:?} at most {max_rows} rows"
            );
        }
    }
}

#[test]
fn building_in_parts_gives_the_same_table() {
    let params = FeatureParams::default().check().unwrap();
    let events = many_users(30);
    let as_of = at(10, 0, 0);
    let whole = built_in_parts(&events, as_of, &params, usize::MAX);
    assert_eq!(whole.height(), 60);
    let (parts, order) = user_parts(&events, 7).unwrap();
    assert_eq!(order, Order::UserTime);
    assert!(parts.len() > 5, "{parts:?}");
    let ids = events.column("user_id").unwrap().str().unwrap().clone();
    for part in &parts[1..] {
        // a part never starts in the middle of a user
        assert_ne!(ids.get(part.start), ids.get(part.start - 1));
    }
    let in_parts = built_in_parts(&events, as_of, &params, 7);
    assert!(whole.equals_missing(&in_parts), "{whole:?}\n{in_parts:?}");
    // Sessions that interleave (two tabs) leave sorted events to the group-by, a
    // range of whole users at a time.
    let tabs: Vec<&str> = (0..events.height())
        .map(|i| ["tab1", "tab2"][i % 2])
        .collect();
    let mut interleaved = events.clone();
    interleaved
        .with_column(Column::new("session_id".into(), tabs))
        .unwrap();
    let top = top_categories_before(&[interleaved.clone().lazy()], as_of, params.top_categories);
    let time = [Time {
        as_of,
        top: &top,
        params: &params,
    }];
    assert!(sorted::aggregate(&interleaved, &time).unwrap().is_none());
    let whole_tabs = built_in_parts(&interleaved, as_of, &params, usize::MAX);
    let tabs_in_parts = built_in_parts(&interleaved, as_of, &params, 7);
    assert!(whole_tabs.equals_missing(&tabs_in_parts));
    assert!(
        !whole_tabs.equals_missing(&whole),
        "sessions count the tabs"
    );
    // Separate parts of whole users, in no particular user order (as an out-of-core
    // ingest writes them): the same table, categories counted over all parts.
    let lazy_parts: Vec<LazyFrame> = parts
        .iter()
        .rev()
        .map(|r| events.slice(r.start as i64, r.end - r.start).lazy())
        .collect();
    let from_parts = build_parts(&lazy_parts, as_of, None, &params, None).unwrap();
    assert!(
        whole.equals_missing(&from_parts),
        "{whole:?}\n{from_parts:?}"
    );
    // Known to be sorted by user, as a sort leaves it: sorting again copies nothing.
    let ids = from_parts.column("user_id").unwrap();
    assert_eq!(ids.is_sorted_flag(), polars::series::IsSorted::Ascending);
    assert_eq!(from_parts.get_column_names(), whole.get_column_names());
    // unsorted events are built in one part, with the same result
    let shuffled = events
        .sort(["event_time"], SortMultipleOptions::default())
        .unwrap();
    assert_eq!(
        user_parts(&shuffled, 7).unwrap(),
        (
            std::iter::once(0..shuffled.height()).collect(),
            Order::Unsorted
        )
    );
    let unsorted = built_in_parts(&shuffled, as_of, &params, 7);
    assert!(whole.equals_missing(&unsorted));
}

#[test]
fn interleaved_sessions_last_from_their_first_to_their_last_event() {
    // Sorted by user and time, but the source's two sessions interleave (two tabs):
    // s1 runs 10:00-10:30 and s2 10:05-10:40, so they last 32.5 minutes on average.
    let row = |minute, session| {
        (
            "x",
            at(0, 10, minute),
            "view",
            session,
            None,
            None,
            None,
            None,
        )
    };
    let rows: Vec<Row> = vec![row(0, "s1"), row(5, "s2"), row(30, "s1"), row(40, "s2")];
    let events = frame(&rows);
    let params = FeatureParams::default().check().unwrap();
    assert_eq!(user_parts(&events, 100).unwrap().1, Order::UserTime);
    let f = build(&events, at(1, 0, 0), None, &params).unwrap();
    assert_eq!(value(&f, "sessions", 0), Some(2.0));
    assert_eq!(value(&f, "session_minutes", 0), Some(32.5));
    // one contiguous session per run: the sum of the gaps
    let rows: Vec<Row> = vec![row(0, "s1"), row(30, "s1"), row(35, "s2"), row(40, "s2")];
    let f = build(&frame(&rows), at(1, 0, 0), None, &params).unwrap();
    assert_eq!(value(&f, "session_minutes", 0), Some(17.5));
}

/// The features of `events` from the one pass over sorted rows and from the
/// group-by, and whether the pass stood in for the group-by.
fn both_ways(
    events: &DataFrame,
    as_of: i64,
    params: &CheckedFeatureParams,
) -> (DataFrame, DataFrame, bool) {
    let top = top_categories_before(&[events.clone().lazy()], as_of, params.top_categories);
    let time = [Time {
        as_of,
        top: &top,
        params,
    }];
    let passed = sorted::aggregate(events, &time).unwrap().is_some();
    let one_pass = build_part(events, &time, Order::UserTime)
        .unwrap()
        .remove(0);
    let grouped = build_part(events, &time, Order::Unsorted)
        .unwrap()
        .remove(0);
    (one_pass, grouped, passed)
}

#[test]
fn the_sorted_pass_finds_the_same_most_common_values_as_the_group_by() {
    // Ties go to the smallest value, nulls never win, rows at or after as_of do
    // not count, and a user with only nulls before as_of has no value.
    let row = |user, day, category| (user, at(day, 9, 0), "view", "s", category, None, None, None);
    let rows: Vec<Row> = vec![
        row("a", 0, Some("toys")),
        row("a", 1, Some("books")),
        row("a", 2, Some("toys")),
        row("a", 3, Some("books")),
        row("a", 4, None),
        row("b", 0, None),
        row("b", 1, Some("garden")),
        row("b", 9, Some("toys")),
        row("b", 9, Some("toys")),
        row("c", 0, None),
        row("c", 9, Some("toys")),
        row("d", 0, Some("zoo")),
        row("d", 1, Some("zoo")),
        row("d", 2, Some("apple")),
    ];
    let params = FeatureParams::default().check().unwrap();
    let (one_pass, grouped, passed) = both_ways(&frame(&rows), at(5, 0, 0), &params);
    assert!(passed);
    assert!(
        one_pass.equals_missing(&grouped),
        "{one_pass:?}\n{grouped:?}"
    );
    let tops: Vec<(&str, Option<&str>)> = one_pass
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(
            one_pass
                .column("top_category")
                .unwrap()
                .str()
                .unwrap()
                .iter(),
        )
        .map(|(u, t)| (u.unwrap(), t))
        .collect();
    assert_eq!(
        tops,
        [
            ("a", Some("books")),
            ("b", Some("garden")),
            ("c", None),
            ("d", Some("zoo"))
        ]
    );
}

/// `events` with every text column but the user id as dictionary codes.
fn as_codes(events: &DataFrame) -> DataFrame {
    let mut coded = events.clone();
    for name in [EVENT_TYPE, SESSION_ID, CATEGORY, QUERY] {
        let codes = Categories::new(name.into(), "tests".into(), CategoricalPhysical::U32);
        let column = events.column(name).unwrap();
        let column = column.cast(&DataType::from_categories(codes)).unwrap();
        coded.replace(name, column).unwrap();
    }
    coded
}

/// One generated event: user, seconds after the user's previous event, type,
/// whether it starts a new session, category, query, amount, rating.
/// Users 5, 11, ... have no session ids.
type Generated = (
    u8,
    u32,
    u8,
    bool,
    Option<u8>,
    Option<u8>,
    Option<f64>,
    Option<u8>,
);

fn generated_events(rows: &[Generated], split: usize) -> DataFrame {
    let types = [
        "view",
        "search",
        "add_to_cart",
        "purchase",
        "rating",
        "share",
    ];
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.0);
    let (mut ids, mut times, mut kinds, mut sessions) = (vec![], vec![], vec![], vec![]);
    let (mut categories, mut queries, mut amounts, mut ratings) = (vec![], vec![], vec![], vec![]);
    let (mut user, mut time, mut session) = (None, 0i64, 0);
    for r in &rows {
        if user != Some(r.0) {
            // Users start anywhere in the fortnight before the as-of times tried,
            // and every third one across 1970-01-01 (days before 1970 are floored).
            let start = match r.0 % 3 {
                2 => -5 * 3_600_000_000 - i64::from(r.0 % 2) * DAY,
                _ => at(i64::from(r.0 % 14), 0, 0),
            };
            (user, time, session) = (Some(r.0), start, 0);
        }
        time += i64::from(r.1) * 1_000_000;
        if r.3 {
            session += 1;
        }
        ids.push(format!("u{:03}", r.0));
        times.push(time);
        kinds.push(types[usize::from(r.2) % types.len()]);
        sessions.push((r.0 % 6 != 5).then(|| format!("u{:03}-s{session}", r.0)));
        categories.push(r.4.map(|c| ["books", "toys", "garden", "home"][usize::from(c % 4)]));
        queries.push(r.5.map(|q| format!("q{}", q % 5)));
        amounts.push(r.6);
        // Not sums of halves: the mean's sum is rounded, as polars' is.
        ratings.push(r.7.map(|k| f64::from(k) * 0.37));
    }
    let n = ids.len();
    let whole = DataFrame::new(
        n,
        vec![
            Column::new("user_id".into(), ids),
            Int64Chunked::from_vec("event_time".into(), times)
                .into_datetime(TimeUnit::Microseconds, None)
                .into_column(),
            Column::new("event_type".into(), kinds),
            Column::new("session_id".into(), sessions),
            Column::new("category".into(), categories),
            Column::new("query".into(), queries),
            Column::new("amount".into(), amounts),
            Column::new("rating".into(), ratings),
        ],
    )
    .unwrap();
    // Two chunks, as the ingest's reader leaves its parts.
    let split = split.min(n);
    let mut events = whole.slice(0, split);
    events
        .vstack_mut(&whole.slice(split as i64, n - split))
        .unwrap();
    events
}

/// Up to 120 generated events (see [`Generated`]), amounts with cents that round
/// either way, refunds, huge and NaN ones.
fn generated_rows() -> impl proptest::strategy::Strategy<Value = Vec<Generated>> {
    proptest::collection::vec(
        (
            0u8..12,
            0u32..40_000,
            0u8..6,
            proptest::bool::weighted(0.3),
            proptest::option::of(0u8..4),
            proptest::option::weighted(0.3, 0u8..5),
            proptest::option::of(proptest::prop_oneof![
                0.0..500.0f64,
                proptest::prelude::Just(0.005),
                proptest::prelude::Just(0.015),
                proptest::prelude::Just(-2.5),
                proptest::prelude::Just(1e300),
                proptest::prelude::Just(f64::NAN),
            ]),
            proptest::option::weighted(0.4, 0u8..30),
        ),
        0..120,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The one pass over sorted events makes the group-by's table, for any mix of
    /// families, nulls, amounts and as-of time, over several pieces and chunks.
    #[test]
    fn the_sorted_pass_makes_the_group_bys_table(
        rows in generated_rows(),
        split in 0usize..120,
        as_of_day in 0i64..30,
        families in proptest::sample::subsequence(FeatureFamily::ALL.to_vec(), 1..=FeatureFamily::ALL.len()),
        text in proptest::bool::ANY,
    ) {
        let events = generated_events(&rows, split);
        let mut params = FeatureParams { families, ..FeatureParams::default() }.check().unwrap();
        if !text {
            params = params.without_text();
        }
        let (one_pass, grouped, passed) = both_ways(&events, at(as_of_day, 12, 0), &params);
        // Sessions here are runs of rows: the pass never falls back.
        proptest::prop_assert!(passed);
        proptest::prop_assert!(one_pass.equals_missing(&grouped), "{:?}\n{:?}", one_pass, grouped);
        // Text held as dictionary codes, as the ingest holds some, makes the same table.
        let (coded_pass, coded_grouped, passed) =
            both_ways(&as_codes(&events), at(as_of_day, 12, 0), &params);
        proptest::prop_assert!(passed);
        proptest::prop_assert!(coded_pass.equals_missing(&one_pass), "{:?}\n{:?}", coded_pass, one_pass);
        proptest::prop_assert!(coded_grouped.equals_missing(&grouped), "{:?}\n{:?}", coded_grouped, grouped);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// The features at two times from one pass (and one read of each part) are the
    /// tables the group-by makes at each time alone, whichever time comes first.
    #[test]
    fn one_pass_at_two_times_makes_each_times_table(
        rows in generated_rows(),
        split in 0usize..120,
        days in (0i64..30, 0i64..30),
        families in proptest::sample::subsequence(FeatureFamily::ALL.to_vec(), 1..=FeatureFamily::ALL.len()),
        texts in (proptest::bool::ANY, proptest::bool::ANY),
        top in 0usize..4,
        part_rows in proptest::prop_oneof![proptest::prelude::Just(7usize), proptest::prelude::Just(usize::MAX)],
    ) {
        let events = generated_events(&rows, split);
        let params = FeatureParams { families, top_categories: top, ..FeatureParams::default() }
            .check()
            .unwrap();
        let with_text = |text: bool| if text { params.clone() } else { params.without_text() };
        let (first, second) = (with_text(texts.0), with_text(texts.1));
        let at = [
            At { as_of: at(days.0, 12, 0), params: &first, users: None },
            At { as_of: at(days.1, 7, 30), params: &second, users: None },
        ];
        let both = build_in_parts(&[events.clone().lazy()], &at, None, part_rows).unwrap();
        for (built, at) in both.iter().zip(&at) {
            let alone = built_in_parts(&events, at.as_of, at.params, part_rows);
            proptest::prop_assert!(built.equals_missing(&alone), "{:?}\n{:?}", built, alone);
            // Pieces of one user divide a column by a number as polars does a
            // one-row column, exactly, not by the reciprocal: the group-by of all
            // users at once is the reference in one piece.
            if part_rows == usize::MAX {
                let top = top_categories_before(&[events.clone().lazy()], at.as_of, top);
                let time = [Time { as_of: at.as_of, top: &top, params: at.params }];
                let grouped = build_part(&events, &time, Order::Unsorted).unwrap().remove(0);
                proptest::prop_assert!(built.equals_missing(&grouped), "{:?}\n{:?}", built, grouped);
            }
        }
    }
}

#[test]
fn the_most_common_categories_count_events_before_the_as_of_time_in_every_part() {
    let row = |user, day, category| (user, at(day, 9, 0), "view", "s", category, None, None, None);
    let mut rows: Vec<Row> = Vec::new();
    for (category, before, after) in [
        (Some("toys"), 3, 0),
        (Some("books"), 3, 0),
        (Some("garden"), 2, 2),
        (Some("home"), 1, 0),
        (Some("Home "), 1, 0),
        (None, 5, 0),
    ] {
        rows.extend((0..before).map(|_| row("a", 1, category)));
        rows.extend((0..after).map(|_| row("b", 9, category)));
    }
    let events = frame(&rows);
    let as_of = at(5, 0, 0);
    let whole = [events.clone().lazy()];
    // ties go to the smallest name; garden's later events do not count
    assert_eq!(
        top_categories_before(&whole, as_of, 3),
        ["books", "toys", "garden"]
    );
    assert_eq!(top_categories_before(&whole, as_of, 1), ["books"]);
    assert_eq!(top_categories_before(&whole, at(10, 0, 0), 1), ["garden"]);
    assert!(top_categories_before(&whole, as_of, 0).is_empty());
    // counted part by part, then summed
    let parts = [
        events.slice(0, 4).lazy(),
        events.slice(4, rows.len()).lazy(),
    ];
    assert_eq!(
        top_categories_before(&parts, as_of, 10),
        ["books", "toys", "garden", "Home ", "home"]
    );
    // "Home " and "home" make the same column name: each keeps a column of its own
    let params = FeatureParams::default().check().unwrap();
    let features = build(&events, as_of, None, &params).unwrap();
    for column in ["cat_share_home", "cat_share_home_2"] {
        let home = value(&features, column, 0).unwrap();
        assert!((home - 0.1).abs() < 1e-12, "{column} {home}");
    }
}

#[test]
fn far_apart_and_far_out_times_give_the_group_bys_table() {
    // One session from about 187,000 years before 1970 to as long after: its length
    // overflows an i64 (polars wraps), and beyond that the pass leaves the table to
    // the group-by, where chrono's range ends and polars' hour is null.
    let row = |user, time, kind| {
        (
            user,
            time,
            kind,
            "s",
            Some("books"),
            None,
            Some(5.0),
            Some(4.0),
        )
    };
    let params = FeatureParams::default().check().unwrap();
    for far in [5_900_000_000_000_000_000, 9_000_000_000_000_000_000] {
        let rows: Vec<Row> = vec![
            row("a", -far, "view"),
            row("a", 0, "purchase"),
            row("a", far, "purchase"),
            row("b", at(0, 1, 0), "view"),
        ];
        let (one_pass, grouped, passed) = both_ways(&frame(&rows), i64::MAX, &params);
        assert_eq!(passed, far < 6_000_000_000_000_000_000, "{far}");
        assert!(
            one_pass.equals_missing(&grouped),
            "{one_pass:?}\n{grouped:?}"
        );
    }
}

#[test]
fn lines_of_an_order_are_one_purchase_and_refunds_reduce_the_money() {
    // u1: order A of 3 lines and order B of 1 line, then a refund of one line of A;
    // u2: cancelled only (a refund of two lines and nothing bought); u3: lines
    // without an order id.
    let p = |user, day, session, amount: f64| {
        (
            user,
            at(day, 10, 0),
            "purchase",
            session,
            None,
            None,
            Some(amount),
            None,
        )
    };
    let rows: Vec<Row> = vec![
        p("u1", 1, "u1-s1", 10.0),
        p("u1", 1, "u1-s1", 5.0),
        p("u1", 1, "u1-s1", 2.5),
        p("u1", 4, "u1-s2", 20.0),
        p("u1", 5, "u1-s2", 1.0),
        p("u1", 6, "u1-s3", -5.0),
        p("u2", 2, "u2-s1", -7.0),
        p("u2", 2, "u2-s1", -3.0),
        p("u3", 3, "u3-s1", 4.0),
        p("u3", 3, "u3-s1", 6.0),
    ];
    let mut events = frame(&rows);
    let orders = [
        Some("A"),
        Some("A"),
        Some("A"),
        Some("B"),
        Some("A"),
        Some("C1"),
        Some("C2"),
        Some("C2"),
        None,
        None,
    ];
    events
        .with_column(Column::new("order_id".into(), orders))
        .unwrap();
    let params = FeatureParams::default().check().unwrap();
    let (one_pass, grouped, passed) = both_ways(&events, at(10, 0, 0), &params);
    assert!(passed, "the one pass reads order ids");
    assert_eq!(one_pass, grouped);
    let f = build(&events, at(10, 0, 0), None, &params).unwrap();
    let column = |name: &str| -> Vec<Option<f64>> {
        f.column(name).unwrap().f64().unwrap().iter().collect()
    };
    assert_eq!(column("frequency"), [Some(2.0), Some(0.0), Some(2.0)]);
    assert_eq!(column("refund_count"), [Some(1.0), Some(1.0), Some(0.0)]);
    assert_eq!(column("monetary"), [Some(33.5), Some(-10.0), Some(10.0)]);
    assert_eq!(
        column("avg_order_value"),
        [Some(16.75), Some(0.0), Some(5.0)]
    );
    // u1's orders are bought on days 1 and 4 (a line of the first on day 5 does not
    // move it); the refund on day 6 is not one.
    assert_eq!(column("mean_interpurchase_days")[0], Some(3.0));
    // Without the order column every line is a purchase.
    let lines = events.drop("order_id").unwrap();
    let f = build(&lines, at(10, 0, 0), None, &params).unwrap();
    let frequency: Vec<Option<f64>> = f
        .column("frequency")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(frequency, [Some(5.0), Some(0.0), Some(2.0)]);
}

#[test]
fn one_users_money_is_the_same_bits_both_ways() {
    // A table of one row: polars would divide it exactly, and many rows by the
    // reciprocal (25,448 cents: 254.48 one way, the next float down the other).
    let rows: Vec<Generated> = vec![(
        0,
        0,
        3,
        false,
        None,
        None,
        Some(254.475_769_586_825_66),
        None,
    )];
    let params = FeatureParams {
        families: vec![FeatureFamily::Rfm],
        ..FeatureParams::default()
    }
    .check()
    .unwrap();
    let (one_pass, grouped, passed) = both_ways(&generated_events(&rows, 0), at(0, 12, 0), &params);
    assert!(passed);
    let bits = |df: &DataFrame| {
        df.column("monetary")
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .map(f64::to_bits)
    };
    assert_eq!(bits(&one_pass), bits(&grouped));
}

#[test]
fn a_part_of_one_user_gives_the_bits_of_a_part_of_many() {
    // polars divides a column of one row by a constant exactly, and one of many rows
    // times the reciprocal: parts of a single user must not see the difference.
    let params = FeatureParams::default().check().unwrap();
    let events = many_users(30);
    let as_of = at(10, 0, 0) + 12_345_678;
    let whole = built_in_parts(&events, as_of, &params, usize::MAX);
    let one_user_each = built_in_parts(&events, as_of, &params, 1);
    assert_eq!(one_user_each.height(), whole.height());
    assert!(
        whole.equals_missing(&one_user_each),
        "{whole:?}\n{one_user_each:?}"
    );
}

#[test]
fn users_columns_that_would_be_one_feature_are_found() {
    let table = |columns: Vec<Column>| DataFrame::new(1, columns).unwrap();
    let id = || Column::new("user_id".into(), ["a"]);
    let distinct = table(vec![
        id(),
        Column::new("age".into(), [3i64]),
        Column::new("plan".into(), ["x"]),
    ]);
    assert_eq!(colliding_user_columns(&distinct), None);
    let cased = table(vec![
        id(),
        Column::new("Plan".into(), ["x"]),
        Column::new("plan ".into(), ["y"]),
    ]);
    assert_eq!(
        colliding_user_columns(&cased),
        Some(("Plan".into(), "plan ".into(), "user_plan".into()))
    );
    let keyed = table(vec![id(), Column::new("ID".into(), [7i64])]);
    assert_eq!(
        colliding_user_columns(&keyed),
        Some(("user_id".into(), "ID".into(), "user_id".into()))
    );
    // A date becomes `<name>_days`, as a number named so would.
    let signup = Column::new("signup".into(), [19_000i32])
        .cast(&DataType::Date)
        .unwrap();
    let dated = table(vec![id(), signup, Column::new("signup_days".into(), [4.0])]);
    assert_eq!(
        colliding_user_columns(&dated),
        Some((
            "signup".into(),
            "signup_days".into(),
            "user_signup_days".into()
        ))
    );
}

#[test]
fn a_shared_column_name_goes_by_the_categories_text_not_their_counts() {
    let (upper, lower) = (String::from("Home"), String::from("home"));
    let one_day = share_columns(&[upper.clone(), lower.clone()]);
    let next_day = share_columns(&[lower, upper]);
    assert_eq!(one_day, ["cat_share_home", "cat_share_home_2"]);
    assert_eq!(next_day, ["cat_share_home_2", "cat_share_home"]);
}

#[test]
fn a_long_category_makes_a_short_column_of_its_own() {
    let long = "a".repeat(10_000);
    let longer = format!("{long}b");
    let columns = share_columns(&[long, longer, "Home & Garden".into()]);
    let base = format!("cat_share_{}", "a".repeat(64));
    assert_eq!(
        columns,
        [
            base.clone(),
            format!("{base}_2"),
            "cat_share_home___garden".into()
        ]
    );
    // A users-table column, which rules name, keeps its whole name.
    let long = Column::new(format!("{}_a", "x".repeat(70)).into(), [1.0]);
    assert_eq!(
        user_feature_name(&long),
        format!("user_{}_a", "x".repeat(70))
    );
}
