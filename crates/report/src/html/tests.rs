//! Tests of the page's sections and its text helpers.

use super::*;

#[test]
fn a_long_table_shows_its_first_rows_and_says_so() {
    let mut table = Table::new("Lifecycle (lifecycle.csv)", &[("period", true)]);
    table.rows = (0..MAX_TABLE_ROWS + 5)
        .map(|r| vec![Cell::Num(r.to_string())])
        .collect();
    let html = table.html();
    assert_eq!(html.matches("<tr>").count(), MAX_TABLE_ROWS + 1);
    assert!(html.contains("<th scope=\"row\" class=\"num\">999</th>"));
    assert!(!html.contains(">1000</th>"));
    assert!(
        html.contains("The page shows the first 1,000 of 1,005 rows; the CSV holds every one."),
        "{html}"
    );
    let latest = Table {
        rows: (0..MAX_TABLE_ROWS + 5)
            .map(|r| vec![Cell::Num(r.to_string())])
            .collect(),
        ..Table::new("Lifecycle (lifecycle.csv)", &[("period", true)])
    }
    .in_time_order()
    .html();
    assert!(!latest.contains(">4</th>"));
    assert!(latest.contains("<th scope=\"row\" class=\"num\">5</th>"));
    assert!(latest.contains("The page shows the latest 1,000 of 1,005 rows"));
    table.rows.truncate(MAX_TABLE_ROWS);
    assert!(!table.html().contains("The page shows"));
}

#[test]
fn escapes_markup_and_defuses_urls() {
    assert_eq!(
        escape("<script>alert('x') & \"y\"</script>"),
        "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
    );
    assert_eq!(
        escape("see HTTPS://a.b and http:"),
        "see &#72;TTPS://a.b and &#104;ttp:"
    );
    assert_eq!(defuse_urls("·http·"), "·&#104;ttp·");
    assert_eq!(
        escape("<b>\u{202E}fdp.exe\u{2066}\u{1B}[31m\u{7F}\ta\nb"),
        "&lt;b&gt;\\u{202E}fdp.exe\\u{2066}\\u{001B}[31m\\u{007F}\ta\nb"
    );
    assert_eq!(defuse_urls("htt"), "htt");
}

#[test]
fn cards_say_their_predictions_are_unchecked_when_nothing_was_scored() {
    let report = |status: [&str; 4]| {
        polars::df!(
            "predictor" => ["logistic", "bg/nbd", "rule:recent_buyer", "revenue"],
            "target" => ["p_purchase", "p_purchase", "p_purchase", "revenue"],
            "status" => status,
            "population" => ["all", "customers", "all", "all"],
        )
        .unwrap()
    };
    let unchecked = |status| personas::predictions_unchecked(&report(status)).unwrap();
    // A count model or a rule scored vouches for no card: the cards' is the model's.
    assert_eq!(
        unchecked(["skipped", "scored", "scored", "scored"]),
        personas::Unchecked {
            purchase: true,
            revenue: false
        }
    );
    assert_eq!(
        unchecked(["scored", "skipped", "skipped", "skipped"]),
        personas::Unchecked {
            purchase: false,
            revenue: true
        }
    );
    assert_eq!(
        unchecked(["scored", "skipped", "skipped", "scored"]),
        personas::Unchecked::default()
    );
    // The note names what the cards show and nothing vouches for.
    let cards = |revenue: Option<f64>, status| {
        let persona = Persona {
            revenue,
            ..Persona::default()
        };
        personas::persona_cards(&[persona], None, unchecked(status))
    };
    let both = ["skipped", "skipped", "skipped", "skipped"];
    assert!(cards(Some(27.88), both).contains(
        "No revenue model could be scored on the holdout (see the predictions&#39; scores): \
         the predicted revenue below is unchecked."
    ));
    assert!(!cards(None, both).contains("unchecked"));
    assert!(!cards(Some(27.88), ["skipped", "skipped", "skipped", "scored"]).contains("unchecked"));
}

#[test]
fn the_k_caption_says_how_k_was_chosen_from_the_ks_tried() {
    let caption = |ks: &[f64]| {
        let df = polars::df!(
            "k" => ks,
            "silhouette" => ks.iter().map(|k| 1.0 / k).collect::<Vec<_>>(),
            "chosen" => ks.iter().map(|k| *k == ks[0]).collect::<Vec<_>>(),
        )
        .unwrap();
        summary::k_section(&df, &RunView::default()).unwrap()
    };
    assert!(caption(&[3.0, 4.0, 5.0]).contains("the k with the highest silhouette was chosen"));
    assert!(caption(&[4.0]).contains("one k was tried (set, or all the users allow"));
    // One persona: no silhouette, so no empty silhouette panel beside the inertia.
    let one = polars::df!(
        "k" => [1.0],
        "inertia" => [12.5],
        "silhouette" => [None::<f64>],
        "chosen" => [true],
    )
    .unwrap();
    let html = summary::k_section(&one, &RunView::default()).unwrap();
    assert!(html.contains("Inertia (look for the elbow)"), "{html}");
    assert!(!html.contains("Silhouette (higher is better)"), "{html}");
    assert!(
        html.contains("Line charts of 1 clustering quality measure against"),
        "{html}"
    );
    let none = one.drop("inertia").unwrap();
    let html = summary::k_section(&none, &RunView::default()).unwrap();
    assert!(html.contains("No measure of the clustering"), "{html}");
    assert!(html.contains("Clustering quality by k"), "{html}");
}

#[test]
fn numbers_are_stable_and_never_negative_zero() {
    assert_eq!(fixed(Some(-0.0001), 2), "0.00");
    assert_eq!(fixed(Some(f64::NAN), 2), "—");
    assert_eq!(fixed(None, 2), "—");
    assert_eq!(signed(1.25, 1), "+1.2");
    assert_eq!(signed(-0.01, 1), "0.0");
    assert_eq!(grouped(1234567.0), "1,234,567");
    assert_eq!(grouped(-1000.0), "-1,000");
    assert_eq!(grouped(12.0), "12");
    assert_eq!(number(Some(3.0)), "3");
    assert_eq!(number(Some(0.29919)), "0.299");
    assert_eq!(number(Some(34546.76)), "34546.8");
    assert_eq!(percent(Some(0.2485), 2), "24.85");
}

#[test]
fn personas_tied_for_the_largest_are_all_named() {
    let persona = |id: i64, users: f64| Persona {
        id: Some(id),
        id_text: id.to_string(),
        label: format!("p{id}"),
        users: Some(users),
        ..Persona::default()
    };
    let html = sizes_section(&[persona(1, 6.0), persona(2, 6.0), persona(3, 2.0)]).unwrap();
    assert!(
        html.contains("; the largest are #1 p1 and #2 p2 with 6 users each\""),
        "{html}"
    );
    let html = sizes_section(&[persona(1, 5.0), persona(2, 1.0)]).unwrap();
    assert!(
        html.contains("; the largest is #1 p1 with 5 users\""),
        "{html}"
    );
    assert_eq!(
        and_list(&["a".into(), "b".into(), "c".into()]),
        "a, b and c"
    );
}

#[test]
fn backticks_in_a_note_are_code_and_a_lone_one_is_text() {
    assert_eq!(
        with_code("`ml.churn` skipped: <5 users"),
        "<code>ml.churn</code> skipped: &lt;5 users"
    );
    assert_eq!(with_code("a ` alone"), "a ` alone");
}
