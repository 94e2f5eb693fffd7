//! The reader and the fold against a sort of every event.

use super::*;
use crate::params::{CheckedWeight, RecommendParams};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use userlens_model::event_types;
use userlens_model::time::DAY_MICROS;

const DAY: i64 = DAY_MICROS;

/// The default parameters, their horizon 28 days before `as_of`.
fn window(params: &CheckedRecommendParams, as_of: i64) -> Window<'_> {
    Window {
        params,
        cutoff: as_of - 28 * DAY,
        as_of,
    }
}

/// A pair as names and bits: user, item, per end (interest bits, touched,
/// bought), the strongest type before the as-of date, per test kinds whether tested.
type Named = (String, String, [(u32, bool, bool); 2], String, [bool; 2]);

fn named(log: &Log) -> Vec<Named> {
    log.pairs
        .iter()
        .map(|p| {
            let at = [End::Cutoff, End::AsOf].map(|end| {
                let t = p.at(end);
                (t.interest.to_bits(), t.touched, t.bought)
            });
            let kind = log.kinds[usize::from(p.strongest())].clone();
            let (user, item) = (&log.users[p.user as usize], &log.items[p.item as usize]);
            let tested = [TestKinds::Asked, TestKinds::Weighted].map(|k| p.tested(k));
            (user.clone(), item.clone(), at, kind, tested)
        })
        .collect()
}

/// [`named`] the plain way: every event in one list sorted by user, item, time,
/// type and rating, and each pair's events summed in that order.
fn named_by_sorting_everything(df: &DataFrame, window: &Window<'_>) -> Vec<Named> {
    let text = |name: &str| df.column(name).unwrap().str().unwrap().clone();
    let (users, kinds, items) = (text(USER_ID), text(EVENT_TYPE), text(ITEM_ID));
    let times = df.column(EVENT_TIME).unwrap().i64().unwrap().clone();
    let ratings = df.column(RATING).unwrap().f64().unwrap().clone();
    let mut events: Vec<(&str, &str, i64, &str, f32)> = (0..df.height())
        .filter_map(|r| {
            let time = times.get(r).filter(|&t| t < window.as_of)?;
            let rating = ratings.get(r).map_or(f32::NAN, |x| x as f32);
            Some((users.get(r)?, items.get(r)?, time, kinds.get(r)?, rating))
        })
        .collect();
    events.sort_by(|a, b| {
        (a.0, a.1, a.2, a.3)
            .cmp(&(b.0, b.1, b.2, b.3))
            .then(a.4.total_cmp(&b.4))
    });
    let params = window.params;
    let weight = |kind: &str, rating: f32| -> f32 {
        match params
            .weights
            .iter()
            .find(|(n, _)| n == kind)
            .map(|(_, w)| *w)
        {
            Some(CheckedWeight::Fixed(w)) => w,
            Some(CheckedWeight::Rating) if rating.is_finite() => rating.max(0.0),
            _ => 0.0,
        }
    };
    let half_life = params.half_life_days.unwrap() * DAY as f64;
    let mut out = Vec::new();
    for same in events.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let at = [window.cutoff, window.as_of].map(|end| {
            let (mut sum, mut best) = (0f64, (f32::NEG_INFINITY, same[0].3));
            let before: Vec<_> = same.iter().filter(|e| e.2 < end).collect();
            for e in &before {
                let w = weight(e.3, e.4);
                sum += f64::from(w) * 0.5f64.powf((end - e.2) as f64 / half_life);
                if w > best.0 {
                    best = (w, e.3);
                }
            }
            let bought = before.iter().any(|e| e.3 == event_types::PURCHASE);
            ((sum as f32).to_bits(), !before.is_empty(), bought, best.1)
        });
        let strongest = at[1].3.to_string();
        let at = at.map(|(interest, touched, bought, _)| (interest, touched, bought));
        let horizon: Vec<_> = same.iter().filter(|e| e.2 >= window.cutoff).collect();
        let tested = [
            horizon
                .iter()
                .any(|e| params.test_events.iter().any(|t| t == e.3)),
            horizon.iter().any(|e| weight(e.3, 1.0) > 0.0),
        ];
        out.push((
            same[0].0.to_string(),
            same[0].1.to_string(),
            at,
            strongest,
            tested,
        ));
    }
    out
}

/// User, time, type, item, rating.
type RandomRow = (String, i64, &'static str, Option<String>, Option<f64>);

/// `n` random events of 6 users on 5 items, ties in time and type included.
fn random_events(n: usize, seed: u64) -> DataFrame {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let kinds = ["view", "add_to_cart", "purchase", "rating", "search"];
    let mut rows: Vec<RandomRow> = (0..n)
        .map(|_| {
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let rating = (kind == "rating" && rng.gen_bool(0.8))
                .then(|| f64::from(rng.gen_range(0..11u8)) / 2.0);
            let item = rng
                .gen_bool(0.9)
                .then(|| format!("i{}", rng.gen_range(0..5)));
            (
                format!("u{}", rng.gen_range(0..6)),
                rng.gen_range(0..25) * 4 * DAY,
                kind,
                item,
                rating,
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    df!(
        USER_ID => rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        EVENT_TIME => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        EVENT_TYPE => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ITEM_ID => rows.iter().map(|r| r.3.as_deref()).collect::<Vec<_>>(),
        CATEGORY => rows.iter().map(|r| r.3.as_ref().map(|_| "c")).collect::<Vec<_>>(),
        RATING => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        AMOUNT => vec![None::<f64>; rows.len()],
    )
    .unwrap()
}

/// The default parameters with interest that halves every 9.5 days, so that every
/// event's time counts in the sums.
fn decaying() -> CheckedRecommendParams {
    RecommendParams {
        half_life_days: Some(9.5),
        ..RecommendParams::default()
    }
    .check()
    .unwrap()
}

#[test]
fn each_pair_sums_its_events_as_one_sort_of_every_event_would() {
    let params = decaying();
    for seed in 0..24 {
        let df = random_events(20 + 10 * seed as usize, seed);
        let window = window(&params, 80 * DAY);
        let expected = named_by_sorting_everything(&df, &window);
        // Sorted by user (as the ingest leaves them) in tasks of any size, and
        // in any order of rows.
        // Room for every pair reserved, or none: the same log.
        for (rows, room) in [(1, 0), (3, df.height()), (7, 1), (1 << 18, df.height())] {
            let log = read_grouped(
                &[df.clone().lazy()],
                ItemSource::ItemId,
                room,
                &window,
                rows,
            )
            .unwrap()
            .expect("rows grouped by user");
            assert_eq!(named(&log), expected, "seed {seed}, tasks of {rows} rows");
        }
        let mut order: Vec<IdxSize> = (0..df.height() as IdxSize).collect();
        order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
        let shuffled = df.take(&IdxCa::from_vec("order".into(), order)).unwrap();
        assert_eq!(named(&read(&[shuffled.lazy()], &window).unwrap()), expected);
    }
}

#[test]
fn parts_whose_users_interleave_read_as_one_sort() {
    // Each user's rows in one part, but the parts' users interleave (as an
    // out-of-core ingest partitions them): the pairs come out of user order.
    let params = decaying();
    let window = window(&params, 80 * DAY);
    for seed in 0..8 {
        let df = random_events(60, seed);
        let expected = named_by_sorting_everything(&df, &window);
        let users = df.column(USER_ID).unwrap().str().unwrap().clone();
        let odd: Vec<bool> = users
            .iter()
            .map(|u| u.unwrap().ends_with(['1', '3', '5']))
            .collect();
        let mask = BooleanChunked::from_slice("odd".into(), &odd);
        let parts = [
            df.filter(&mask).unwrap().lazy(),
            df.filter(&!&mask).unwrap().lazy(),
        ];
        let log = read_grouped(&parts, ItemSource::ItemId, 0, &window, 7)
            .unwrap()
            .expect("each user's rows in one part");
        assert!(
            log.pairs.is_sorted_by_key(|p| (p.user, p.item)),
            "seed {seed}"
        );
        assert_eq!(named(&log), expected, "seed {seed}");
    }
}

#[test]
fn a_users_rows_apart_are_noticed() {
    let params = RecommendParams::default().check().unwrap();
    let df = df!(
        USER_ID => ["u1", "u2", "u1"],
        EVENT_TIME => [1i64, 2, 3],
        EVENT_TYPE => ["view", "view", "view"],
        ITEM_ID => [Some("a"), Some("a"), Some("b")],
        CATEGORY => [None::<&str>, None, None],
        RATING => [None::<f64>, None, None],
        AMOUNT => [None::<f64>, None, None],
    )
    .unwrap();
    let window = window(&params, 9);
    for rows in [1, 2, 3] {
        // Within a task, across tasks, across parts.
        let apart = read_grouped(&[df.clone().lazy()], ItemSource::ItemId, 3, &window, rows);
        assert!(apart.unwrap().is_none(), "tasks of {rows} rows");
    }
    let parts = [df.slice(0, 2).lazy(), df.slice(2, 1).lazy()];
    assert!(
        read_grouped(&parts, ItemSource::ItemId, 3, &window, 8)
            .unwrap()
            .is_none()
    );
    let log = read(&parts, &window).unwrap();
    assert_eq!(log.users, ["u1", "u2"]);
    let keys: Vec<(u32, u32)> = log.pairs.iter().map(|p| (p.user, p.item)).collect();
    assert_eq!(keys, [(0, 0), (0, 1), (1, 0)]);
}

#[test]
fn reads_ids_in_sorted_order_and_drops_later_events() {
    let df = df!(
        USER_ID => ["u2", "u1", "u1", "u3"],
        EVENT_TIME => [5i64, 1, 2, 9],
        EVENT_TYPE => ["view", "purchase", "view", "view"],
        ITEM_ID => [Some("b"), Some("a"), Some("b"), Some("c")],
        CATEGORY => [Some("x"), Some("y"), Some("x"), None],
        RATING => [None::<f64>, None, None, None],
        AMOUNT => [None::<f64>, None, None, None],
    )
    .unwrap();
    let params = RecommendParams::default().check().unwrap();
    let window = Window {
        params: &params,
        cutoff: 2,
        as_of: 9,
    };
    let log = read(&[df.lazy()], &window).unwrap();
    assert_eq!(log.source, ItemSource::ItemId);
    assert_eq!(log.users, ["u1", "u2"]);
    assert_eq!(log.items, ["a", "b"]);
    assert_eq!(log.kinds, ["purchase", "view"]);
    assert_eq!(log.categories, [Some("y".into()), Some("x".into())]);
    let keys: Vec<(u32, u32, bool, f32)> = log
        .pairs
        .iter()
        .map(|p| {
            (
                p.user,
                p.item,
                p.at(End::Cutoff).touched,
                p.at(End::AsOf).interest,
            )
        })
        .collect();
    assert_eq!(
        keys,
        [(0, 0, true, 5.0), (0, 1, false, 1.0), (1, 1, false, 1.0)]
    );
    assert_eq!(
        (log.latest(End::Cutoff), log.latest(End::AsOf)),
        (Some(1), Some(5))
    );
    // u1's purchase of a is before the cutoff; no pair has a test event.
    assert!(log.pairs.iter().all(|p| !p.tested(TestKinds::Asked)));
}

#[test]
fn item_ids_seen_only_from_the_as_of_date_on_stand_for_nothing() {
    let df = df!(
        USER_ID => ["u1", "u1", "u2"],
        EVENT_TIME => [1i64, 9, 5],
        EVENT_TYPE => ["purchase", "purchase", "view"],
        ITEM_ID => [None, Some("a"), None],
        CATEGORY => [Some("x"), Some("y"), Some("x")],
        RATING => [None::<f64>, None, None],
        AMOUNT => [None::<f64>, None, None],
    )
    .unwrap();
    let params = RecommendParams::default().check().unwrap();
    let window = Window {
        params: &params,
        cutoff: 2,
        as_of: 9,
    };
    let log = read(&[df.lazy()], &window).unwrap();
    assert_eq!(log.source, ItemSource::Category);
    assert_eq!(log.items, ["x"]);
}

#[test]
fn a_refund_is_no_interest_in_its_item() {
    // u2's refund of r (a purchase of negative amount) and nothing else of r.
    let df = df!(
        USER_ID => ["u1", "u2", "u2"],
        EVENT_TIME => [1i64, 2, 3],
        EVENT_TYPE => ["purchase", "purchase", "purchase"],
        ITEM_ID => ["a", "a", "r"],
        CATEGORY => ["x", "x", "x"],
        RATING => [None::<f64>, None, None],
        AMOUNT => [Some(5.0), Some(5.0), Some(-5.0)],
    )
    .unwrap();
    let params = RecommendParams::default().check().unwrap();
    let log = read(&[df.lazy()], &window(&params, 9)).unwrap();
    assert_eq!(log.users, ["u1", "u2"]);
    assert_eq!(log.items, ["a"]);
    assert_eq!(log.pairs.len(), 2);
}

#[test]
fn any_split_into_tasks_reads_the_same_log() {
    let df = df!(
        USER_ID => ["u3", "u1", "u1", "u2", "u2", "u1", "u3", "u2"],
        EVENT_TIME => [4i64, 1, 2, 3, 3, 9, 2, 1],
        EVENT_TYPE => ["view", "purchase", "view", "rating", "view", "view", "cart", "view"],
        ITEM_ID => [Some("c"), Some("a"), None, Some("b"), Some("b"), Some("a"), Some("a"), Some("d")],
        CATEGORY => [Some("x"), Some("y"), Some("x"), None, Some("z"), Some("y"), Some("x"), Some("z")],
        RATING => [None, None, None, Some(4.0), None, None, None, None],
        AMOUNT => [None::<f64>, None, None, None, None, None, None, None],
    )
    .unwrap();
    let params = RecommendParams::default().check().unwrap();
    let window = Window {
        params: &params,
        cutoff: 3,
        as_of: 9,
    };
    let whole = read(&[df.clone().lazy()], &window).unwrap();
    assert_eq!(whole.users, ["u1", "u2", "u3"]);
    assert_eq!(whole.pairs.len(), 5);
    let sorted = df.sort([USER_ID], SortMultipleOptions::default()).unwrap();
    // Types, items and categories as dictionary codes (as the ingest holds them)
    // read the same.
    let frames = [df.clone(), as_codes(&df), sorted.clone(), as_codes(&sorted)];
    for (rows, df) in (1..=4).flat_map(|rows| frames.clone().map(|df| (rows, df))) {
        for parts in [
            vec![df.clone().lazy()],
            vec![df.slice(0, 5).lazy(), df.slice(5, 3).lazy()],
        ] {
            let log = read_in_tasks(&parts, &window, rows).unwrap();
            assert_eq!(log.users, whole.users);
            assert_eq!(log.items, whole.items);
            assert_eq!(log.kinds, whole.kinds);
            assert_eq!(log.categories, whole.categories);
            assert_eq!(log.latest, whole.latest);
            assert_eq!(log.pairs, whole.pairs, "tasks of {rows} rows");
        }
    }
}

#[test]
fn categories_stand_in_for_missing_item_ids() {
    let df = df!(
        USER_ID => ["u1", "u2"],
        EVENT_TIME => [1i64, 2],
        EVENT_TYPE => ["purchase", "purchase"],
        ITEM_ID => [None::<&str>, None],
        CATEGORY => [Some("books"), Some("toys")],
        RATING => [None::<f64>, None],
        AMOUNT => [None::<f64>, None],
    )
    .unwrap();
    let params = RecommendParams::default().check().unwrap();
    for df in [df.clone(), as_codes(&df)] {
        let log = read(&[df.lazy()], &window(&params, 10)).unwrap();
        assert_eq!(log.source, ItemSource::Category);
        assert_eq!(log.items, ["books", "toys"]);
        assert_eq!(log.categories, [Some("books".into()), Some("toys".into())]);
    }
}

/// `df` with its items and categories as dictionary codes.
fn as_codes(df: &DataFrame) -> DataFrame {
    let mut coded = df.clone();
    for name in [EVENT_TYPE, ITEM_ID, CATEGORY] {
        let codes = Categories::new(name.into(), "tests".into(), CategoricalPhysical::U32);
        let column = df.column(name).unwrap();
        let column = column.cast(&DataType::from_categories(codes)).unwrap();
        coded.replace(name, column).unwrap();
    }
    coded
}

#[test]
fn pairs_read_back_from_their_file_are_the_pairs() {
    let params = RecommendParams::default().check().unwrap();
    let df = random_events(300, 5);
    let log = read(&[df.lazy()], &window(&params, 80 * DAY)).unwrap();
    let (spilled, kept) = (
        Stored::spill(log.pairs.clone()).unwrap(),
        Stored::memory(log.pairs.clone()),
    );
    for end in [End::Cutoff, End::AsOf] {
        let touched = log.pairs.iter().filter(|p| p.at(end).touched).count();
        assert!(touched > 0 && touched <= log.pairs.len());
        assert_eq!(
            (spilled.touched(end), kept.touched(end)),
            (touched, touched)
        );
    }
    // Read back from the file seven pairs at a time (in tests), from memory at once.
    for (stored, expected_blocks) in [(spilled, log.pairs.len().div_ceil(7)), (kept, 1)] {
        let (mut back, mut blocks) = (Vec::new(), 0);
        stored
            .for_each_block(|block| {
                back.extend_from_slice(block);
                blocks += 1;
            })
            .unwrap();
        assert_eq!(back, log.pairs);
        assert_eq!(blocks, expected_blocks);
    }
}

#[test]
fn any_number_of_types_without_a_role_reads_as_one() {
    let params = decaying();
    let window = window(&params, 80 * DAY);
    let df = random_events(400, 3);
    // Every `search` (no weight, no purchase, no test role) a type of its own, then
    // more of them than a pair's `u16` can name, on the last user's items.
    let kinds: Vec<String> = (df.column(EVENT_TYPE).unwrap().str().unwrap())
        .iter()
        .enumerate()
        .map(|(r, k)| match k.unwrap() {
            "search" => format!("search_{r}"),
            other => other.to_string(),
        })
        .collect();
    let mut many = df.clone();
    many.with_column(Column::new(EVENT_TYPE.into(), kinds))
        .unwrap();
    let extra = u16::MAX as usize + 10;
    let last = df.column(USER_ID).unwrap().str().unwrap().last().unwrap();
    let more = df!(
        USER_ID => vec![last; extra],
        EVENT_TIME => (0..extra as i64).collect::<Vec<_>>(),
        EVENT_TYPE => (0..extra).map(|i| format!("extra_{i}")).collect::<Vec<_>>(),
        ITEM_ID => (0..extra).map(|i| format!("i{}", i % 5)).collect::<Vec<_>>(),
        CATEGORY => vec!["c"; extra],
        RATING => vec![None::<f64>; extra],
        AMOUNT => vec![None::<f64>; extra],
    )
    .unwrap();
    many.vstack_mut(&more).unwrap();
    // The same extra events, all of one such type.
    let mut one = df.clone();
    let mut same = more.clone();
    same.with_column(Column::new(EVENT_TYPE.into(), vec!["search"; extra]))
        .unwrap();
    one.vstack_mut(&same).unwrap();
    let strip = |df: DataFrame| -> Vec<Named> {
        let log = read(&[df.lazy()], &window).unwrap();
        named(&log)
            .into_iter()
            .map(|mut p| {
                // Which such type a pair of them alone names is never shown.
                if p.3.starts_with("search") || p.3.starts_with("extra") {
                    p.3 = "search".into();
                }
                p
            })
            .collect()
    };
    assert_eq!(strip(many), strip(one));
}
