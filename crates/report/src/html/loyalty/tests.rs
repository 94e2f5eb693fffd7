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
    let html = super::drivers(&df).unwrap();
    assert!(html.contains("No feature varies enough"), "{html}");
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
    let html = super::drivers(&df).unwrap();
    assert!(
        html.contains("with 1 outcomes") && !html.contains(">retained<"),
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
