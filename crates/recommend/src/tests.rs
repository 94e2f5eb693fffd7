//! Golden cases on a log small enough to check on paper, and properties of the
//! whole stage on generated events.

use super::*;
use crate::evaluate::Split;
use userlens_model::columns::{AMOUNT, CATEGORY, EVENT_TIME, EVENT_TYPE, ITEM_ID, RATING};

const DAY: i64 = userlens_model::time::DAY_MICROS;

/// Events as (user, day, type, item).
fn events(rows: &[(&str, i64, &str, &str)]) -> DataFrame {
    df!(
        USER_ID => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        EVENT_TIME => rows.iter().map(|r| r.1 * DAY).collect::<Vec<_>>(),
        EVENT_TYPE => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ITEM_ID => rows.iter().map(|r| (!r.3.is_empty()).then_some(r.3)).collect::<Vec<_>>(),
        CATEGORY => rows.iter().map(|r| (!r.3.is_empty()).then_some("c")).collect::<Vec<_>>(),
        RATING => vec![None::<f64>; rows.len()],
        AMOUNT => vec![None::<f64>; rows.len()],
    )
    .unwrap()
}

/// The 4-user, 6-item log of the golden cases (all views, weight 1):
/// u1: a b c; u2: a b; u3: b c d; u4: d e; item f is only bought later.
fn paper_log() -> Vec<(&'static str, i64, &'static str, &'static str)> {
    vec![
        ("u1", 1, "view", "a"),
        ("u1", 1, "view", "b"),
        ("u1", 1, "view", "c"),
        ("u2", 1, "view", "a"),
        ("u2", 1, "view", "b"),
        ("u3", 1, "view", "b"),
        ("u3", 1, "view", "c"),
        ("u3", 1, "view", "d"),
        ("u4", 1, "view", "d"),
        ("u4", 1, "view", "e"),
        ("u4", 50, "purchase", "f"),
    ]
}

fn checked(text: &str) -> CheckedRecommendParams {
    toml::from_str::<RecommendParams>(text)
        .unwrap()
        .check()
        .unwrap()
}

fn interactions(rows: &[(&str, i64, &str, &str)], end: i64, params: &str) -> (Log, Interactions) {
    let params = checked(params);
    let window = events::Window {
        params: &params,
        cutoff: end * DAY,
        as_of: i64::MAX,
    };
    let log = events::read(&[events(rows).lazy()], &window).unwrap();
    let inter = Interactions::build(&log, End::Cutoff);
    (log, inter)
}

/// The golden cases' horizon: days 40 to 70.
fn horizon(params: &CheckedRecommendParams) -> events::Window<'_> {
    events::Window {
        params,
        cutoff: 40 * DAY,
        as_of: 70 * DAY,
    }
}

fn item(log: &Log, name: &str) -> u32 {
    log.items.iter().position(|i| i == name).unwrap() as u32
}

fn close(a: f32, b: f64) {
    assert!((f64::from(a) - b).abs() < 1e-6, "{a} != {b}");
}

#[test]
fn a_crawlers_history_counts_as_its_strongest_items_only() {
    // A crawler viewed more items than a history lends the similarities, all alike:
    // it lends the lower items, as if it had viewed only those.
    let names: Vec<String> = (0..knn::MAX_HISTORY + 7)
        .map(|i| format!("x{i:05}"))
        .collect();
    let mut rows: Vec<(&str, i64, &str, &str)> = vec![
        ("u1", 1, "view", "x00000"),
        ("u1", 1, "view", "x00001"),
        ("u2", 1, "view", "x00001"),
        ("u2", 1, "view", "x00002"),
    ];
    let crawled = |n: usize| {
        names[..n]
            .iter()
            .map(|item| ("bot", 1, "view", item.as_str()))
    };
    let mut cut = rows.clone();
    rows.extend(crawled(names.len()));
    cut.extend(crawled(knn::MAX_HISTORY));
    let (log, whole) = interactions(&rows, 10, "");
    let (cut_log, cut) = interactions(&cut, 10, "");
    for similarity in [Similarity::Bm25, Similarity::Cosine, Similarity::Jaccard] {
        let (a, b) = (
            knn::fit(&whole, similarity, 10),
            knn::fit(&cut, similarity, 10),
        );
        for (x, y) in [("x00000", "x00001"), ("x00001", "x00002")] {
            let got = a.similarity(item(&log, x), item(&log, y));
            let want = b.similarity(item(&cut_log, x), item(&cut_log, y));
            // BM25 gives a user of nearly every item no weight.
            assert!(
                want > 0.0 || similarity == Similarity::Bm25,
                "{similarity:?} {x} {y}"
            );
            assert_eq!(got.to_bits(), want.to_bits(), "{similarity:?} {x} {y}");
        }
        // An item only its cut history held has no neighbours.
        let last = item(&log, names.last().unwrap());
        assert_eq!(a.neighbours.row(last as usize).0, [] as [u32; 0]);
        if similarity != Similarity::Bm25 {
            assert_eq!(a.neighbours.row(item(&log, "x04999") as usize).0.len(), 10);
        }
    }
}

#[test]
fn similarities_match_the_hand_computed_values() {
    let (log, inter) = interactions(&paper_log(), 10, "");
    let pairs = [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
        ("b", "d"),
        ("c", "d"),
        ("d", "e"),
    ];
    // Users: a 2, b 3, c 2, d 2, e 1; both: ab 2, ac 1, bc 2, bd 1, cd 1, de 1.
    let cosine = [
        2.0 / 6f64.sqrt(),
        1.0 / 2.0,
        2.0 / 6f64.sqrt(),
        1.0 / 6f64.sqrt(),
        1.0 / 2.0,
        1.0 / 2f64.sqrt(),
    ];
    let jaccard = [
        2.0 / 3.0,
        1.0 / 3.0,
        2.0 / 3.0,
        1.0 / 4.0,
        1.0 / 3.0,
        1.0 / 2.0,
    ];
    let lift = [
        2.0 / 6.0,
        1.0 / 4.0,
        2.0 / 6.0,
        1.0 / 6.0,
        1.0 / 4.0,
        1.0 / 2.0,
    ];
    for (similarity, expected) in [
        (Similarity::Cosine, cosine),
        (Similarity::Jaccard, jaccard),
        (Similarity::Lift, lift),
    ] {
        let knn = knn::fit(&inter, similarity, 10);
        for ((x, y), want) in pairs.iter().zip(expected) {
            let (x, y) = (item(&log, x), item(&log, y));
            close(knn.similarity(x, y), want);
            close(knn.similarity(y, x), want);
        }
        // Never co-occurring: not neighbours.
        assert_eq!(knn.similarity(item(&log, "a"), item(&log, "e")), 0.0);
        assert_eq!(knn.similarity(item(&log, "a"), item(&log, "a")), 0.0);
    }
}

#[test]
fn a_log_whose_purchases_are_all_refunds_holds_no_purchases() {
    let mut rows = paper_log();
    rows.pop();
    // First, so that the types after it are met after one without an id.
    rows.insert(0, ("u1", 2, "purchase", "a"));
    let mut df = events(&rows);
    let amounts: Vec<Option<f64>> = (rows.iter())
        .map(|r| (r.2 == "purchase").then_some(-10.0))
        .collect();
    df.with_column(Column::new(AMOUNT.into(), amounts)).unwrap();
    let params = checked("");
    let window = events::Window {
        params: &params,
        cutoff: 10 * DAY,
        as_of: i64::MAX,
    };
    let log = events::read(&[df.lazy()], &window).unwrap();
    assert_eq!(log.kinds, ["view"]);
    let inter = Interactions::build(&log, End::Cutoff);
    assert!(!inter.has_purchases);
    // The same interests as the log without the refund.
    let (_, without) = interactions(&paper_log()[..10], 10, "");
    assert_eq!(inter.all, without.all);
}

#[test]
fn models_learn_from_the_positive_interests_only() {
    // Every interest positive: the models learn from every entry (f comes later).
    let (_, inter) = interactions(&paper_log(), 10, "");
    assert_eq!(inter.positive(), &inter.all);
    assert_eq!(inter.item_users, [2, 3, 2, 2, 1, 0]);
    assert_eq!(inter.active_users, 4);
    // u2 only searched c, a type of no weight: seen, but nothing to learn from.
    let mut rows = paper_log();
    rows.push(("u2", 2, "search", "c"));
    rows.push(("u5", 2, "search", "e"));
    let (log, inter) = interactions(&rows, 10, "");
    let (u2, u5, c) = (1, 4, item(&log, "c"));
    assert!(inter.entry(u2, c).is_some() && inter.entry(u5, item(&log, "e")).is_some());
    assert!(!inter.positive().row(u2).0.contains(&c));
    assert_eq!(inter.positive().row(u2).0.len(), 2);
    assert!(inter.positive().row(u5).0.is_empty());
    assert_eq!(inter.positive().indices.len(), inter.all.indices.len() - 2);
    assert_eq!(inter.item_users, [2, 3, 2, 2, 1, 0]);
    assert_eq!(inter.active_users, 4);
}

#[test]
fn weighted_cosine_and_bm25_match_the_hand_computed_values() {
    // u1 also carts a (weight 3 + 1 = 4): cos(a, b) = (4·1 + 1·1) / √((16 + 1) · 3).
    let mut rows = paper_log();
    rows.push(("u1", 2, "add_to_cart", "a"));
    let (log, inter) = interactions(&rows, 10, "");
    let knn = knn::fit(&inter, Similarity::Cosine, 10);
    close(
        knn.similarity(item(&log, "a"), item(&log, "b")),
        5.0 / (17f64 * 3.0).sqrt(),
    );

    // BM25 (k1 1.2, b 0.75) over items as documents, on the all-ones log: 5 items;
    // users of 3 items (u1, u3) have idf ln 5 - ln 4, of 2 items ln 5 - ln 3; an
    // item of L users is normalised by 0.25 + 0.75 · L / 2 (2 users on average).
    let (log, inter) = interactions(&paper_log(), 10, "");
    let knn = knn::fit(&inter, Similarity::Bm25, 10);
    let tf = |l: f64| 2.2 / (1.2 * (0.25 + 0.75 * l / 2.0) + 1.0);
    let (idf3, idf2) = (5f64.ln() - 4f64.ln(), 5f64.ln() - 3f64.ln());
    // a (2 users) and c (2 users) share u1; a and b (3 users) share u1 and u2.
    let ac = (tf(2.0) * idf3) * (tf(2.0) * idf3);
    let ab = tf(2.0) * idf3 * tf(3.0) * idf3 + tf(2.0) * idf2 * tf(3.0) * idf2;
    close(knn.similarity(item(&log, "a"), item(&log, "c")), ac);
    close(knn.similarity(item(&log, "a"), item(&log, "b")), ab);
    close(knn.similarity(item(&log, "b"), item(&log, "a")), ab);
}

#[test]
fn bm25_gives_no_similarity_where_every_idf_is_exactly_zero() {
    // Three items; each user touched two: idf ln 3 - ln(1 + 2) = 0, not a rounding
    // of it, so no pair of items is similar at all.
    let rows = [
        ("u1", 1, "view", "a"),
        ("u1", 1, "view", "b"),
        ("u2", 1, "view", "b"),
        ("u2", 1, "view", "c"),
        ("u3", 1, "view", "a"),
        ("u3", 1, "view", "c"),
    ];
    let (log, inter) = interactions(&rows, 10, "");
    let knn = knn::fit(&inter, Similarity::Bm25, 10);
    for a in ["a", "b", "c"] {
        for b in ["a", "b", "c"] {
            assert_eq!(knn.similarity(item(&log, a), item(&log, b)), 0.0, "{a} {b}");
        }
    }
}

#[test]
fn item_knn_scores_are_sums_of_interest_times_similarity() {
    let (log, inter) = interactions(&paper_log(), 10, "");
    let knn = knn::fit(&inter, Similarity::Cosine, 10);
    let u2 = log.users.iter().position(|u| u == "u2").unwrap();
    let seen = inter.excluded(u2, Exclude::Seen);
    let recs = knn.recommend(&inter, u2, &seen, 5);
    // u2 has a and b: c scores s(a,c) + s(b,c); d scores s(b,d); e nothing.
    let got: Vec<(u32, f32)> = recs.iter().map(|s| (s.item, s.score)).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, item(&log, "c"));
    close(got[0].1, 0.5 + 2.0 / 6f64.sqrt());
    assert_eq!(got[1].0, item(&log, "d"));
    close(got[1].1, 1.0 / 6f64.sqrt());
}

#[test]
fn the_evaluation_scores_new_items_of_the_horizon_only() {
    // Horizon: days 40..70. u1 buys c (seen before: not a test item) and f (new).
    let mut rows = paper_log();
    rows.push(("u1", 60, "purchase", "c"));
    rows.push(("u1", 61, "purchase", "f"));
    let params = checked("");
    let log = events::read(&[events(&rows).lazy()], &horizon(&params)).unwrap();
    let (kinds, note) = test_kinds(&log, &params);
    assert_eq!(note, None);
    let s = split(&log, kinds);
    let u1 = log.users.iter().position(|u| u == "u1").unwrap() as u32;
    let u4 = log.users.iter().position(|u| u == "u4").unwrap() as u32;
    let f = item(&log, "f");
    assert_eq!(s.test, vec![(u1, vec![f]), (u4, vec![f])]);
    check_no_leak(&s).unwrap();
}

#[test]
fn a_planted_leak_is_caught() {
    let params = checked("");
    let log = events::read(&[events(&paper_log()).lazy()], &horizon(&params)).unwrap();
    let (kinds, _) = test_kinds(&log, &params);
    let clean = split(&log, kinds);
    check_no_leak(&clean).unwrap();
    // A user's training item planted among their test items.
    let mut leaked: Split = clean.clone();
    let user = leaked.test[0].0 as usize;
    leaked.test[0].1.push(leaked.train.all.row(user).0[0]);
    leaked.test[0].1.sort_unstable();
    let message = check_no_leak(&leaked).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "evaluation leak: a test item of a user (user {user}, item"
        )),
        "{message}"
    );
    // Training interactions built past the cutoff.
    let mut late = clean;
    late.train = Interactions::build(&log, End::AsOf);
    let message = check_no_leak(&late).unwrap_err().to_string();
    assert!(message.contains("is not before the cutoff"), "{message}");
}

/// Canonical events generated by `userlens generate`'s generator.
fn generated(users: usize, seed: u64) -> (DataFrame, i64) {
    let params = userlens_synth::SynthParams {
        users,
        seed,
        ..userlens_synth::SynthParams::default()
    };
    let mut csv = Vec::new();
    userlens_synth::generate(&params, &mut csv, None::<std::io::Sink>).unwrap();
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .into_reader_with_file_handle(std::io::Cursor::new(csv))
        .finish()
        .unwrap();
    let times: Int64Chunked = df
        .column(EVENT_TIME)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|t| userlens_model::time::parse_auto(t?))
        .collect();
    df.with_column(times.with_name(EVENT_TIME.into()).into_column())
        .unwrap();
    let rating = df.column(RATING).unwrap().cast(&DataType::Float64).unwrap();
    df.with_column(rating).unwrap();
    let start = params
        .start
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros();
    (df, start + i64::from(params.days) * DAY)
}

/// Every generated user in one of three personas, by user id.
fn personas_for(df: &DataFrame) -> DataFrame {
    let users = df.column(USER_ID).unwrap().unique_stable().unwrap();
    let ids: Vec<u32> = users
        .str()
        .unwrap()
        .iter()
        .map(|u| u.map_or(0, |u| u.bytes().map(u32::from).sum::<u32>() % 3 + 1))
        .collect();
    df!(USER_ID => users.as_materialized_series().clone(), PERSONA_ID => ids).unwrap()
}

#[test]
fn exclusion_is_never_violated() {
    let (df, as_of) = generated(150, 3);
    for (exclude, kinds) in [
        ("purchased", &["purchase"][..]),
        ("seen", &["view", "add_to_cart", "purchase", "rating"][..]),
    ] {
        let params = checked(&format!(
            "exclude = \"{exclude}\"\nmodels = [\"popular\", \"item_knn\"]\nmodel = \"item_knn\""
        ));
        let out = recommend(vec![df.clone().lazy()], None, as_of, &params, 1).unwrap();
        let recs = out
            .user_recommendations
            .clone()
            .lazy()
            .select([col(USER_ID), col(ITEM_ID)]);
        let excluded = df
            .clone()
            .lazy()
            .filter(
                col(EVENT_TYPE).is_in(lit(Series::new("k".into(), kinds)).implode(false), false),
            )
            .filter(col(ITEM_ID).is_not_null())
            .select([col(USER_ID), col(ITEM_ID)])
            .unique(None, UniqueKeepStrategy::First);
        let violations = recs
            .join(
                excluded,
                [col(USER_ID), col(ITEM_ID)],
                [col(USER_ID), col(ITEM_ID)],
                JoinArgs::new(JoinType::Inner),
            )
            .collect()
            .unwrap();
        assert_eq!(violations.height(), 0, "{exclude}: {violations}");
        assert!(
            out.user_recommendations.height() > 100 * 10 / 2,
            "{exclude}"
        );
    }
}

#[test]
fn cold_start_users_get_their_personas_items_or_popular_ones() {
    let (df, as_of) = generated(120, 5);
    let cold = df!(
        USER_ID => ["zz-cold", "zz-lost"],
        EVENT_TIME => [as_of - DAY, as_of - DAY],
        EVENT_TYPE => ["search", "search"],
        ITEM_ID => [None::<&str>, None],
        CATEGORY => [None::<&str>, None],
        RATING => [None::<f64>, None],
        AMOUNT => [None::<&str>, None],
    )
    .unwrap();
    let with_cold = df
        .select(cold.get_column_names().into_iter().cloned())
        .unwrap()
        .vstack(&cold)
        .unwrap();
    let mut personas = personas_for(&df);
    personas
        .vstack_mut(&df!(USER_ID => ["zz-cold"], PERSONA_ID => [2u32]).unwrap())
        .unwrap();
    let params = checked("model = \"als\"\nals = { factors = 8, iterations = 3 }");
    let out = recommend(vec![with_cold.lazy()], Some(&personas), as_of, &params, 7).unwrap();
    let rows = |user: &str| {
        out.user_recommendations
            .clone()
            .lazy()
            .filter(col(USER_ID).eq(lit(user)))
            .collect()
            .unwrap()
    };
    let cold = rows("zz-cold");
    assert_eq!(cold.height(), 10);
    let because: Vec<&str> = cold
        .column("because")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(
        because.iter().all(|b| *b == "popular in persona 2"),
        "{because:?}"
    );
    // The persona's own top items, in order.
    let persona_top = out
        .persona_recommendations
        .clone()
        .lazy()
        .filter(col(PERSONA_ID).eq(lit(2u32)))
        .collect()
        .unwrap();
    assert_eq!(
        cold.column(ITEM_ID).unwrap().as_materialized_series(),
        persona_top
            .column(ITEM_ID)
            .unwrap()
            .as_materialized_series()
    );
    let lost = rows("zz-lost");
    assert_eq!(lost.height(), 10);
    let because: Vec<&str> = lost
        .column("because")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(
        because.iter().all(|b| *b == "popular overall"),
        "{because:?}"
    );
    // Warm users are explained by their own history.
    let reasons = out
        .user_recommendations
        .column("because")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    assert!(
        reasons
            .iter()
            .flatten()
            .any(|b| b.starts_with("bought ") || b.starts_with("viewed "))
    );
}

fn csv_bytes(df: &DataFrame) -> Vec<u8> {
    let mut out = Vec::new();
    CsvWriter::new(&mut out).finish(&mut df.clone()).unwrap();
    out
}

/// Every table of `a` has rows and the bytes of `b`'s.
fn assert_same_tables(a: &Recommendations, b: &Recommendations) {
    for (x, y) in [
        (&a.user_recommendations, &b.user_recommendations),
        (&a.persona_recommendations, &b.persona_recommendations),
        (&a.similar_items, &b.similar_items),
        (&a.report, &b.report),
    ] {
        assert!(x.height() > 0);
        assert_eq!(csv_bytes(x), csv_bytes(y));
    }
}

#[test]
fn same_seed_gives_the_same_bytes_on_one_and_two_threads() {
    let (df, as_of) = generated(200, 11);
    let personas = personas_for(&df);
    let params = checked("als = { factors = 16, iterations = 4 }\nmodel = \"als\"");
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            recommend(vec![df.clone().lazy()], Some(&personas), as_of, &params, 42).unwrap()
        })
    };
    let (one, two) = (run(1), run(2));
    assert_same_tables(&one, &two);
    let other_seed =
        recommend(vec![df.clone().lazy()], Some(&personas), as_of, &params, 43).unwrap();
    assert_ne!(
        csv_bytes(&one.user_recommendations),
        csv_bytes(&other_seed.user_recommendations)
    );
}

#[test]
fn the_declared_event_columns_are_all_it_reads() {
    let (df, as_of) = generated(120, 5);
    let declared = df.select(EVENT_COLUMNS.iter().copied()).unwrap();
    assert!(declared.width() < df.width());
    let params = checked("als = { factors = 8, iterations = 2 }");
    let personas = personas_for(&df);
    let run =
        |df: DataFrame| recommend(vec![df.lazy()], Some(&personas), as_of, &params, 7).unwrap();
    assert_same_tables(&run(df.clone()), &run(declared));
}

#[test]
fn learned_tastes_beat_popularity_on_generated_events() {
    let (df, as_of) = generated(1200, 42);
    let params = checked("");
    let out = recommend(vec![df.lazy()], None, as_of, &params, 42).unwrap();
    let ndcg = |m: ModelKind| {
        out.rows
            .iter()
            .find(|r| r.model == m)
            .and_then(|r| r.outcome.as_ref().ok())
            .map(|s| s.ndcg)
            .unwrap()
    };
    let chosen = out.chosen.unwrap();
    assert!(
        ndcg(chosen) >= 2.0 * ndcg(ModelKind::Popular),
        "{:?}",
        out.rows
    );
    assert_ne!(chosen, ModelKind::Popular);
    let skipped = out
        .rows
        .iter()
        .find(|r| r.model == ModelKind::PersonaPopular)
        .unwrap();
    assert_eq!(
        skipped.outcome,
        Err("no personas: the stage does not need a profile stage".to_string())
    );
}

#[test]
fn user_recommendations_list_each_user_in_turn_ranked_from_one() {
    let (df, as_of) = generated(120, 5);
    let params = checked("models = [\"popular\", \"item_knn\"]\nmodel = \"item_knn\"");
    let out = recommend(vec![df.lazy()], None, as_of, &params, 1).unwrap();
    let table = &out.user_recommendations;
    let users = table.column(USER_ID).unwrap().str().unwrap();
    let ranks = table.column("rank").unwrap().u32().unwrap();
    let rows: Vec<(&str, u32)> = users
        .iter()
        .zip(ranks.iter())
        .map(|(user, rank)| (user.unwrap(), rank.unwrap()))
        .collect();
    let listed: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0).collect();
    assert!(listed.len() > 100, "{} users listed", listed.len());
    for pair in rows.windows(2) {
        let ((user, rank), (next, next_rank)) = (pair[0], pair[1]);
        match user.cmp(next) {
            std::cmp::Ordering::Equal => assert_eq!(next_rank, rank + 1, "{user}"),
            std::cmp::Ordering::Less => assert_eq!(next_rank, 1, "{next}"),
            std::cmp::Ordering::Greater => panic!("{next} after {user}"),
        }
    }
    assert_eq!(rows[0].1, 1);
    assert_eq!(
        table.get_column_names(),
        ["user_id", "rank", "item_id", "score", "model", "because"]
    );
    let model = table.column("model").unwrap().str().unwrap().clone();
    assert_eq!(model.len(), rows.len());
    assert!(model.iter().all(|m| m == Some("item_knn")));
}

#[test]
fn lists_in_blocks_are_the_whole_lists_in_order() {
    let (df, as_of) = generated(100, 3);
    let personas = personas_for(&df);
    let params = checked("models = [\"popular\", \"item_knn\"]\nmodel = \"item_knn\"");
    let whole = recommend(vec![df.clone().lazy()], Some(&personas), as_of, &params, 42).unwrap();
    let (out, lists) =
        recommend_in_blocks(vec![df.lazy()], Some(&personas), as_of, &params, 42).unwrap();
    assert_eq!(out.user_recommendations.height(), 0);
    assert_eq!(
        out.user_recommendations.schema(),
        whole.user_recommendations.schema()
    );
    let mut blocks = Vec::new();
    lists
        .each_block(|block| {
            blocks.push(block);
            Ok::<(), Error>(())
        })
        .unwrap();
    // Tests cut the users into blocks of three.
    assert!(blocks.len() > 30, "{} blocks", blocks.len());
    let users: Vec<String> = blocks
        .iter()
        .flat_map(|b| {
            b.column("user_id")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|u| u.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(users.is_sorted());
    let mut stacked = Vec::new();
    for block in &blocks {
        assert_eq!(block.schema(), whole.user_recommendations.schema());
        assert!(block.column("model").unwrap().as_scalar_column().is_some());
        stacked.extend(
            csv_bytes(block)
                .into_iter()
                .skip_while(|&b| b != b'\n')
                .skip(1),
        );
    }
    let expected = csv_bytes(&whole.user_recommendations);
    let header = expected.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert!(expected.len() > header + 1000);
    assert_eq!(stacked, expected[header..]);
}

#[test]
fn events_in_parts_give_the_tables_of_the_whole() {
    // In parts (read out of core), the pairs wait in a file while the matrices are built.
    let (df, as_of) = generated(150, 9);
    let personas = personas_for(&df);
    let params = checked(
        "models = [\"popular\", \"item_knn\", \"als\"]\nals = { factors = 8, iterations = 3 }",
    );
    let whole = recommend(vec![df.clone().lazy()], Some(&personas), as_of, &params, 42).unwrap();
    let n = df.height() as i64;
    let bounds: Vec<i64> = (0..=3).map(|i| i * n / 3).collect();
    let parts: Vec<LazyFrame> = bounds
        .windows(2)
        .map(|b| df.slice(b[0], (b[1] - b[0]) as usize).lazy())
        .collect();
    let in_parts = recommend(parts, Some(&personas), as_of, &params, 42).unwrap();
    assert_same_tables(&whole, &in_parts);
    assert_eq!(whole.rows.len(), 3);
}

#[test]
fn interactions_without_weight_are_not_called_absent() {
    let params = checked("weights = { view = 0, rating = 1 }");
    let window = events::Window {
        params: &params,
        cutoff: 40 * DAY,
        as_of: 70 * DAY,
    };
    let log = events::read(&[events(&paper_log()).lazy()], &window).unwrap();
    let split = evaluate::split(&log, events::TestKinds::Asked);
    assert_eq!(split.train.active_users, 0);
    let why = ineligible(ModelKind::Popular, &split, false, &params).unwrap();
    assert!(
        why.starts_with("no interaction before the cutoff has a positive weight"),
        "{why}"
    );
    // Decay far past an f32's range leaves every interest positive: still scored.
    let params = checked("half_life_days = 0.001\nk = 2");
    let window = events::Window {
        params: &params,
        ..window
    };
    let log = events::read(&[events(&paper_log()).lazy()], &window).unwrap();
    let split = evaluate::split(&log, events::TestKinds::Asked);
    assert_eq!(split.train.active_users, 4);
    assert!(ineligible(ModelKind::Popular, &split, false, &params).is_none());
    // Without weights, the same log is scored.
    let params = checked("");
    let window = events::Window {
        params: &params,
        ..window
    };
    let log = events::read(&[events(&paper_log()).lazy()], &window).unwrap();
    let split = evaluate::split(&log, events::TestKinds::Asked);
    assert!(split.train.active_users > 0);
}

#[test]
fn lists_left_empty_without_weights_say_why() {
    let no_weight = "no interaction before the as-of date has a positive weight";
    let df = events(&paper_log());
    let decayed = checked("weights = { view = 0, rating = 1 }");
    let out = recommend(vec![df.clone().lazy()], None, 70 * DAY, &decayed, 42).unwrap();
    assert_eq!(out.user_recommendations.height(), 0);
    assert!(
        out.notes.iter().any(|n| n.starts_with(no_weight)),
        "{:?}",
        out.notes
    );
    let out = recommend(vec![df.lazy()], None, 70 * DAY, &checked(""), 42).unwrap();
    assert!(out.user_recommendations.height() > 0);
    assert!(
        !out.notes.iter().any(|n| n.starts_with(no_weight)),
        "{:?}",
        out.notes
    );
}

#[test]
fn users_and_items_first_seen_after_the_cutoff_change_no_als_factor() {
    let params = checked("");
    let (log, inter) = interactions(&paper_log(), 40, "");
    let mut later = paper_log();
    // A user who sorts first and an item that sorts in the middle, both only after
    // the cutoff (day 40).
    later.push(("u0", 45, "view", "a"));
    later.push(("u2", 46, "view", "b0"));
    let (later_log, later_inter) = interactions(&later, 40, "");
    let fit = als::fit(&inter, &params.als, 7);
    let later_fit = als::fit(&later_inter, &params.als, 7);
    let names = ["a", "b", "c", "d", "e"];
    for x in names {
        for y in names {
            let before = fit.similarity(item(&log, x), item(&log, y));
            let after = later_fit.similarity(item(&later_log, x), item(&later_log, y));
            assert_eq!(before.to_bits(), after.to_bits(), "{x} {y}");
        }
    }
}

#[test]
fn personas_fitted_at_the_as_of_date_move_no_score_but_their_baseline() {
    let (df, as_of) = generated(300, 9);
    let params = checked("als = { factors = 8, iterations = 3 }");
    let some = personas_for(&df);
    let one_persona = some
        .clone()
        .lazy()
        .with_column(lit(1u32).alias(PERSONA_ID))
        .collect()
        .unwrap();
    let report = |personas: &DataFrame| {
        let out = recommend(vec![df.clone().lazy()], Some(personas), as_of, &params, 7).unwrap();
        let rows = (out.report.clone())
            .lazy()
            .filter(col("model").neq(lit("persona_popular")))
            .collect()
            .unwrap();
        let baseline = out
            .report
            .column("model")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .position(|m| m == Some("persona_popular"))
            .unwrap();
        let chosen = out
            .report
            .column("chosen")
            .unwrap()
            .bool()
            .unwrap()
            .get(baseline);
        (csv_bytes(&rows), chosen)
    };
    let (a, chosen) = report(&some);
    assert_eq!(a, report(&one_persona).0);
    assert_eq!(chosen, Some(false));
}

#[test]
fn auto_takes_the_persona_baseline_only_when_nothing_else_is_scored() {
    let (df, as_of) = generated(200, 5);
    let personas = personas_for(&df);
    let params = checked("models = [\"persona_popular\"]");
    let out = recommend(vec![df.lazy()], Some(&personas), as_of, &params, 7).unwrap();
    let chosen: Vec<Option<bool>> = out
        .report
        .column("chosen")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(chosen, [Some(true)]);
    assert!(
        out.notes.iter().any(|n| n.contains("only persona_popular")),
        "{:?}",
        out.notes
    );
}

#[test]
fn a_personas_share_counts_its_users_without_items_too() {
    // Persona 1: u1, u2 viewed a, u3 viewed b, u5 and u6 only searched; persona 2: u4
    // viewed b. Of persona 1's five users two showed interest in a (0.4); of all six,
    // two (1/3): a lift of 1.2.
    let rows = [
        ("u1", 1, "view", "a"),
        ("u2", 1, "view", "a"),
        ("u3", 1, "view", "b"),
        ("u4", 1, "view", "b"),
        ("u5", 1, "search", ""),
        ("u6", 1, "search", ""),
    ];
    let personas = df!(
        USER_ID => ["u1", "u2", "u3", "u4", "u5", "u6"],
        PERSONA_ID => [1u32, 1, 1, 2, 1, 1],
    )
    .unwrap();
    let params = checked("model = \"popular\"");
    let out = recommend(
        vec![events(&rows).lazy()],
        Some(&personas),
        30 * DAY,
        &params,
        7,
    )
    .unwrap();
    let top = out
        .persona_recommendations
        .clone()
        .lazy()
        .filter(col(PERSONA_ID).eq(lit(1u32)).and(col("rank").eq(lit(1u32))))
        .collect()
        .unwrap();
    assert_eq!(
        top.column(ITEM_ID).unwrap().str().unwrap().get(0),
        Some("a")
    );
    let value = |name: &str| top.column(name).unwrap().f64().unwrap().get(0).unwrap();
    assert!((value("share") - 0.4).abs() < 1e-12, "{top}");
    assert!((value("lift") - 1.2).abs() < 1e-12, "{top}");
}

#[test]
fn autos_fallback_outside_its_models_has_a_report_row_marked_chosen() {
    // One item: neither item-kNN nor ALS can be scored.
    let rows: Vec<_> = (0..40)
        .map(|u| {
            (
                ["u0", "u1", "u2", "u3"][u % 4],
                (u / 4) as i64 * 7,
                "view",
                "a",
            )
        })
        .collect();
    let params = checked("models = [\"item_knn\", \"als\"]");
    let out = recommend(vec![events(&rows).lazy()], None, 80 * DAY, &params, 7).unwrap();
    let report = &out.report;
    let chosen = report
        .clone()
        .lazy()
        .filter(col("chosen"))
        .collect()
        .unwrap();
    let models = chosen.column("model").unwrap().str().unwrap();
    assert_eq!(
        models.iter().collect::<Vec<_>>(),
        [Some("popular")],
        "{report}"
    );
}

/// `recommend_report.csv`'s text column `name`, row by row.
fn report_texts(out: &Recommendations, name: &str) -> Vec<Option<String>> {
    let column = out.report.column(name).unwrap().str().unwrap().clone();
    column.iter().map(|v| v.map(str::to_string)).collect()
}

#[test]
fn a_catalogue_no_bigger_than_k_is_not_scored() {
    // A user first seen in the horizon, whom every recommender offers popular items,
    // changes nothing.
    let mut rows = paper_log();
    rows.push(("u9", 55, "purchase", "f"));
    let df = events(&rows);
    // Five items before the cutoff; u4, who buys f in the horizon, touched two of
    // them: k = 3 lists every item it had not touched.
    let out = recommend(
        vec![df.clone().lazy()],
        None,
        70 * DAY,
        &checked("k = 3"),
        42,
    );
    let out = out.unwrap();
    let rows = (report_texts(&out, "model").into_iter())
        .zip(report_texts(&out, "reason"))
        .zip(report_texts(&out, "status"));
    // persona_popular is skipped first for want of personas.
    let untouched = "no user scored with a history has more than k = 3 of the 5 items before \
                     the cutoff left untouched";
    for ((model, reason), status) in rows.filter(|r| r.0.0.as_deref() != Some("persona_popular")) {
        assert_eq!(status.as_deref(), Some("skipped"), "{model:?}");
        assert!(
            reason.is_some_and(|r| r.starts_with(untouched)),
            "{model:?}"
        );
    }
    let out = recommend(vec![df.lazy()], None, 70 * DAY, &checked("k = 2"), 42).unwrap();
    let status = report_texts(&out, "status");
    assert!(status.iter().any(|s| s.as_deref() == Some("scored")));
}

#[test]
fn a_horizon_of_new_users_only_is_not_scored_and_says_so() {
    // Only u9 buys in the horizon, and u9 has no history: lowering k would not help.
    let mut rows = paper_log();
    rows.pop();
    rows.push(("u9", 55, "purchase", "a"));
    let out = recommend(
        vec![events(&rows).lazy()],
        None,
        70 * DAY,
        &checked("k = 1"),
        42,
    );
    let reasons = report_texts(&out.unwrap(), "reason");
    let said = "no user with test items (1) had an interaction before the cutoff: every \
                recommender would list the same popular items";
    let told = reasons.iter().flatten().filter(|r| *r == said).count();
    assert_eq!(told, 3, "{reasons:?}");
}

#[test]
fn the_report_says_what_the_recommenders_were_scored_on() {
    let df = events(&paper_log());
    let params = checked("k = 2");
    let out = recommend(vec![df.clone().lazy()], None, 70 * DAY, &params, 42).unwrap();
    assert!(
        report_texts(&out, "test_events")
            .iter()
            .all(|t| t.as_deref() == Some("purchase"))
    );
    let views = checked("k = 2\ntest_events = [\"view\"]");
    let out = recommend(vec![df.clone().lazy()], None, 70 * DAY, &views, 42).unwrap();
    assert!(
        report_texts(&out, "test_events")
            .iter()
            .all(|t| t.as_deref() == Some("view"))
    );
    // No test event of the asked type in the log: every weighted one is scored.
    let carts = checked("k = 2\ntest_events = [\"add_to_cart\"]");
    let out = recommend(vec![df.lazy()], None, 70 * DAY, &carts, 42).unwrap();
    assert!(
        report_texts(&out, "test_events")
            .iter()
            .all(|t| t.as_deref() == Some("any weighted event"))
    );
}

#[test]
fn no_reason_names_the_recommended_item_itself() {
    let (df, as_of) = generated(200, 5);
    let touched: std::collections::BTreeSet<(String, String)> = {
        let users = df.column(USER_ID).unwrap().str().unwrap();
        let items = df.column(ITEM_ID).unwrap().str().unwrap();
        (users.iter().zip(items.iter()))
            .filter_map(|(u, i)| Some((u?.to_string(), i?.to_string())))
            .collect()
    };
    let params = checked("models = [\"als\"]\nmodel = \"als\"\nexclude = \"purchased\"");
    let out = recommend(vec![df.lazy()], None, as_of, &params, 3).unwrap();
    let table = &out.user_recommendations;
    let column = |name: &str| -> Vec<String> {
        let c = table.column(name).unwrap().str().unwrap().clone();
        c.iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect()
    };
    let (users, items, because) = (column(USER_ID), column(ITEM_ID), column("because"));
    let mut offered_again = 0;
    for ((user, item), because) in users.iter().zip(&items).zip(&because) {
        offered_again += usize::from(touched.contains(&(user.clone(), item.clone())));
        let named = because
            .split("; ")
            .filter_map(|group| group.split_once(' '))
            .flat_map(|(_, names)| names.split(", "));
        assert!(
            !named.clone().any(|n| n == item),
            "{user} {item}: {because}"
        );
    }
    // Items the user viewed come back under `exclude = "purchased"`: the case is met.
    assert!(offered_again > 0);
}
