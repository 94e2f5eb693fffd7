//! Tests of the loyalty sections of the page.

use polars::prelude::*;

#[test]
fn drivers_without_a_correlation_say_so_instead_of_an_empty_chart() {
    let df = df!(
        "target" => ["satisfaction", "retained"],
        "feature" => ["events", "events"],
        "users" => [1.0, 1.0],
        "spearman" => [None::<f64>, None],
        "beta" => [None::<f64>, None],
    )
    .unwrap();
    let html = super::drivers::drivers(&df).unwrap();
    assert!(html.contains("No correlation could be measured"), "{html}");
    assert!(!html.contains("<svg"), "{html}");
    // One outcome with a bar: the legend names it alone.
    let df = df!(
        "target" => ["nps_score", "retained"],
        "feature" => ["events", "events"],
        "users" => [40.0, 40.0],
        "spearman" => [Some(0.4), None],
        "beta" => [Some(0.1), None],
    )
    .unwrap();
    let html = super::drivers::drivers(&df).unwrap();
    assert!(
        html.contains("with 1 outcome\"") && !html.contains(">retained<"),
        "{html}"
    );
    // The caption names the outcomes the table has, not every one there could be.
    assert!(
        html.contains(
            "For each outcome (the survey score, being active again in the last complete period)"
        ),
        "{html}"
    );
}

/// A retention table of `cohorts` months, each reaching `periods` periods, the
/// last `open` periods of every cohort not over.
fn retention(cohorts: usize, periods: usize, open: usize) -> DataFrame {
    let (mut cohort, mut period, mut complete) = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..cohorts {
        for k in 0..periods {
            cohort.push(format!("c{c:03}"));
            period.push(k as f64);
            complete.push(k + open < periods);
        }
    }
    let n = cohort.len();
    df!(
        "cohort" => cohort,
        "cohort_users" => vec![10.0; n],
        "period" => period,
        "active_users" => vec![5.0; n],
        "retention" => vec![0.5; n],
        "retention_unbounded" => vec![0.5; n],
        "complete" => complete,
    )
    .unwrap()
}

#[test]
fn the_cohort_map_fits_its_picture_and_speaks_in_percent() {
    // Many cohorts, only the last 36 drawn: as many periods as those reach.
    let html = super::triangle(&retention(40, 60, 0)).unwrap();
    let width: i32 = html
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    let xs = html
        .split(" x=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse::<i32>().ok());
    assert!(
        xs.into_iter().all(|x| x < width),
        "a cell past the picture's {width}"
    );
    let legend = &html[html.find("retention %").unwrap()..];
    let legend = &legend[..legend.find("</svg>").unwrap()];
    let label = |text: &str| legend.contains(&format!(">\n{text}\n</text>"));
    assert!(label("100") && label("50") && !label("0.5"), "{legend}");
    // No period over: no map of grey cells, a note.
    let html = super::triangle(&retention(3, 2, 2)).unwrap();
    assert!(html.contains("No cohort has completed a period yet") && !html.contains("<svg"));
}

#[test]
fn charts_that_draw_the_latest_periods_say_so() {
    let html = super::triangle(&retention(40, 3, 0)).unwrap();
    assert!(
        html.contains("The map draws the latest 36 of 40 cohorts"),
        "{html}"
    );
    assert!(
        !super::triangle(&retention(5, 3, 0))
            .unwrap()
            .contains("draws the latest")
    );
    // One cohort is one in the picture's description too.
    let one = super::triangle(&retention(1, 3, 0)).unwrap();
    assert!(
        one.contains("Heat map of retention of 1 cohort over"),
        "{one}"
    );
    let lifecycle = |periods: usize| {
        let n = periods;
        df!(
            "period" => (0..n).map(|i| format!("2026-W{i:02}")).collect::<Vec<_>>(),
            "new" => vec![3.0; n],
            "returning" => vec![2.0; n],
            "resurrecting" => vec![1.0; n],
            "dormant" => vec![1.0; n],
            "complete" => vec![true; n],
        )
        .unwrap()
    };
    let html = super::lifecycle(&lifecycle(27)).unwrap();
    assert!(
        html.contains("The chart draws the latest 12 of 27 periods"),
        "{html}"
    );
    assert!(html.contains("each of the latest 12 of 27 periods"));
    let html = super::lifecycle(&lifecycle(12)).unwrap();
    assert!(!html.contains("latest") && html.contains("in each period"));
}

#[test]
fn repeat_purchase_greys_open_windows_and_sums_groups_over_closed_ones() {
    let df = df!(
        "cohort" => ["2026-01", "2026-02"],
        "buyers" => [100.0, 40.0],
        "repeat_buyers" => [30.0, 4.0],
        "rate" => [0.3, 0.1],
        "complete" => [true, false],
    )
    .unwrap();
    let by_group = df!(
        "group" => ["segment", "segment", "segment"],
        "value" => ["loyal", "loyal", "new"],
        "cohort" => ["2026-01", "2026-02", "2026-01"],
        "buyers" => [60.0, 40.0, 40.0],
        "repeat_buyers" => [24.0, 4.0, 6.0],
        "rate" => [0.4, 0.1, 0.15],
        "complete" => [true, false, true],
    )
    .unwrap();
    let html = super::repeat::repeat_purchase(&df, Some(&by_group), &[]).unwrap();
    assert!(html.contains("30% of 100") && html.contains("10% of 40 · window open"));
    // Flags read as in the page's other tables.
    assert!(
        html.contains("<td>yes</td>") && html.contains("<td>no</td>"),
        "{html}"
    );
    assert!(!html.contains("<td>true</td>"), "{html}");
    // A table's scrolling box is a named region a keyboard reaches.
    assert!(html.contains("<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\""));
    // loyal: 24 of 60 in its closed cohort, not 28 of 100 with the open one.
    let loyal = html.split("<th scope=\"row\">loyal</th>").nth(1).unwrap();
    let cells: Vec<&str> = loyal.split("</tr>").next().unwrap().split("<td").collect();
    assert!(cells.iter().any(|c| c.contains(">40.0<")), "{loyal}");
    assert!(!cells.iter().any(|c| c.contains(">28<")), "{loyal}");
    // No window over yet: no table of groups to read as groups without buyers.
    let open = by_group
        .clone()
        .lazy()
        .with_column(lit(false).alias("complete"))
        .collect()
        .unwrap();
    let html = super::repeat::repeat_purchase(&df, Some(&open), &[]).unwrap();
    assert!(!html.contains("Repeat purchase by group"), "{html}");
    let empty = df.head(Some(0));
    assert!(
        super::repeat::repeat_purchase(&empty, None, &[])
            .unwrap()
            .contains("No purchase before the as-of date")
    );
}

#[test]
fn ratings_draw_each_group_and_tabulate_all_users_by_category() {
    let df = df!(
        "group" => ["all", "all", "all", "segment"],
        "value" => ["all", "all", "all", "loyal"],
        "category" => ["all", "books", "(none)", "all"],
        "ratings" => [10.0, 6.0, 4.0, 3.0],
        "users" => [5.0, 3.0, 2.0, 1.0],
        "mean_rating" => [4.2, 4.5, 3.75, 2.0],
        "scope" => ["all", "category", "uncategorised", "all"],
    )
    .unwrap();
    let html = super::ratings::satisfaction(&df, &[]).unwrap();
    assert!(html.contains("4.20 · 10 ratings by 5 users"), "{html}");
    assert!(html.contains("2.00 · 3 ratings by 1 user"), "{html}");
    let by_category = html.split("<caption>Ratings per category").nth(1).unwrap();
    assert!(by_category.contains("books") && by_category.contains("(none)"));
    assert!(!by_category.contains("loyal"), "{by_category}");
    // A file from before `scope`: the rows of every rating are those of category `all`.
    let old = super::ratings::satisfaction(&df.drop("scope").unwrap(), &[]).unwrap();
    assert!(old.contains("4.20 · 10 ratings by 5 users"), "{old}");
    let empty = df.head(Some(0));
    assert!(
        super::ratings::satisfaction(&empty, &[])
            .unwrap()
            .contains("No rating event")
    );
}

#[test]
fn no_lifetime_known_yet_is_said_not_drawn() {
    let html = super::survival(&DataFrame::empty(), None, &[]).unwrap();
    assert!(html.contains("No user&#39;s churn is known yet"), "{html}");
    assert!(!html.contains("<svg"), "{html}");
}

#[test]
fn a_personas_line_has_its_cards_colour_when_another_persona_has_none() {
    use super::{Persona, charts};
    let persona = |id: i64| Persona {
        id: Some(id),
        id_text: id.to_string(),
        ..Persona::default()
    };
    let personas = [persona(1), persona(2), persona(3)];
    let group = |kind: &str, value: &str| (kind.to_string(), value.to_string());
    // #1 made no cohort: #3's line is still the third colour, as its card.
    assert_eq!(
        super::line_color(&group("persona_id", "3"), &personas),
        charts::color(2)
    );
    assert_eq!(
        super::line_color(&group("all", "all"), &personas),
        charts::GREY
    );
    // Its dash too goes by its place among the personas, not among the lines.
    assert_eq!(
        super::line_dash(&group("persona_id", "2"), &personas),
        charts::dash(2)
    );
    assert_eq!(
        super::line_dash(&group("all", "all"), &personas),
        charts::Dash::Solid
    );
}

#[test]
fn stickiness_counts_its_days_from_the_first_day_it_holds() {
    let df = df!(
        "date" => ["1943-03-01", "1943-03-02"],
        "dau" => [1.0, 2.0],
        "wau" => [1.0, 2.0],
        "mau" => [1.0, 2.0],
        "dau_mau" => [1.0, 1.0],
    )
    .unwrap();
    let html = super::stickiness(&df).unwrap();
    assert!(html.contains("days since 1943-03-01"), "{html}");
}

#[test]
fn stickiness_gives_no_ratio_before_its_month_is_whole() {
    let df = df!(
        "date" => ["2026-01-29", "2026-01-30"],
        "dau" => [1.0, 1.0],
        "wau" => [2.0, 2.0],
        "mau" => [2.0, 4.0],
        "dau_mau" => [0.5, 0.25],
        "complete" => [false, true],
    )
    .unwrap();
    let html = super::stickiness(&df).unwrap();
    assert!(!html.contains(">50.0<"), "{html}");
    assert!(html.contains(">25.0<"), "{html}");
}

/// The survival table's row of all users, for a curve stepping to `survival` on
/// `days`.
fn survival_row(days: &[f64], survival: &[f64]) -> Vec<String> {
    let lifetime = df!(
        "group" => ["all"],
        "value" => ["all"],
        "users" => [4.0],
        "churned" => [2.0],
        "median_days" => [20.0],
        "median_lower" => [None::<f64>],
        "median_upper" => [None::<f64>],
    )
    .unwrap();
    let curve = df!(
        "group" => vec!["all"; days.len()],
        "value" => vec!["all"; days.len()],
        "days" => days,
        "survival" => survival,
    )
    .unwrap();
    let html = super::survival(&lifetime, Some(&curve), &[]).unwrap();
    let row = html
        .split("<th scope=\"row\">all users</th>")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap();
    (row.split("<td class=\"num\">").skip(1))
        .map(|c| c.split('<').next().unwrap().to_string())
        .collect()
}

#[test]
fn survival_is_read_at_fixed_days_until_the_longest_follow_up() {
    // Day 7 before any churn, 14 after the first, 30 after the second; 60 and
    // later are past the longest follow-up (45 days).
    assert_eq!(
        survival_row(&[10.0, 20.0, 45.0], &[0.75, 0.5, 0.5]),
        ["100.0", "75.0", "50.0", "—", "—", "—"]
    );
    // A curve at 0 stays there.
    assert_eq!(
        survival_row(&[10.0, 20.0], &[0.5, 0.0]),
        ["100.0", "50.0", "0.0", "0.0", "0.0", "0.0"]
    );
}
