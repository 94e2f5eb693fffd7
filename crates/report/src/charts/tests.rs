use super::*;

#[test]
fn ticks_are_short_and_never_negative_zero() {
    assert_eq!(tick(0.0), "0");
    assert_eq!(tick(-0.0), "0");
    assert_eq!(tick(0.25), "0.25");
    assert_eq!(tick(12.5), "12.5");
    assert_eq!(tick(1500.0), "1500");
    assert_eq!(tick(0.0004), "0");
    assert_eq!(tick(-2.0), "-2");
}

#[test]
fn wraps_labels_at_spaces_and_cuts_the_rest() {
    assert_eq!(wrap("#2 lapsed · beauty", 12, 2), ["#2 lapsed ·", "beauty"]);
    assert_eq!(wrap("short", 12, 2), ["short"]);
    assert_eq!(wrap("a b c d e f g h", 3, 2), ["a b", "c …"]);
    assert_eq!(wrap("averyveryverylongword", 6, 2), ["avery…"]);
    assert!(wrap("", 5, 2).is_empty());
}

#[test]
fn labels_show_bidi_controls_escaped_and_cut_what_is_drawn() {
    assert_eq!(truncate("ab\u{202E}cd", 40), "ab\\u{202E}cd");
    assert_eq!(truncate("ab\u{202E}cd", 6), "ab\\u{…");
    assert_eq!(wrap("x \u{2066}y", 20, 2), ["x \\u{2066}y"]);
    assert_eq!(
        finish("<svg ><text>\u{202E}a</text></svg>", "t"),
        "<svg role=\"img\" aria-label=\"t\" ><text>\\u{202E}a</text></svg>"
    );
}

#[test]
fn diverging_scale_is_white_at_zero_and_saturates() {
    let s = Scale::Diverging { limit: 2.0 };
    assert_eq!(s.color(0.0), WHITE);
    assert_eq!(s.color(2.0), s.color(5.0));
    assert_eq!(hex(s.color(-9.0)), "#2166AC");
    assert_eq!(hex(s.color(9.0)), "#D55E00");
}

#[test]
fn svg_is_inline_ready() {
    let bars = [Bar {
        label: "a <b> & http://x".into(),
        value: 2.0,
        color: color(0),
        note: "2".into(),
    }];
    let out = hbars(&HBars {
        chart: "test",
        title: "Title",
        x_desc: "x",
        y_desc: "y",
        bars: &bars,
        legend: &[],
        aria: "Chart \"quoted\"",
    })
    .unwrap();
    assert!(out.starts_with("<svg role=\"img\" aria-label=\"Chart &quot;quoted&quot;\" "));
    assert!(!out.to_ascii_lowercase().contains("http"));
    assert!(out.contains("a &lt;b&gt; &amp; "));
}

#[test]
fn a_bar_axis_ends_at_the_data_not_past_its_scale() {
    let bar = |value: f64, note: &str| Bar {
        label: "persona".into(),
        value,
        color: color(0),
        note: note.into(),
    };
    let bars = [
        bar(100.0, "NPS 100 (95% interval 88 to 100, n = 1,234)"),
        bar(40.0, "NPS 40"),
    ];
    let svg = hbars(&HBars {
        chart: "nps",
        title: "",
        x_desc: "NPS",
        y_desc: "",
        bars: &bars,
        legend: &[],
        aria: "",
    })
    .unwrap();
    // Every number drawn alone is a tick: none past 100, the scale's end.
    let ticks: Vec<f64> = svg
        .split('>')
        .filter_map(|s| s.split('<').next()?.trim().parse().ok())
        .collect();
    assert!(ticks.contains(&100.0), "{ticks:?}");
    assert!(ticks.iter().all(|&t| t <= 100.0), "{ticks:?}");
    assert!(svg.contains("n = 1,234"));
}

/// A whole SVG picture with no coordinate that is not a number.
fn drawn(svg: &str) {
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    for word in ["NaN", "inf"] {
        assert!(!svg.contains(word), "{word} in {svg}");
    }
}

#[test]
fn odd_data_draws_a_whole_picture_without_panicking() {
    let nan = Bar {
        label: String::new(),
        value: f64::NAN,
        color: color(9),
        note: String::new(),
    };
    for bars in [vec![], vec![nan.clone()], vec![nan.clone(), nan]] {
        hbars(&HBars {
            chart: "t",
            title: "",
            x_desc: "",
            y_desc: "",
            bars: &bars,
            legend: &[],
            aria: "",
        })
        .map(|svg| drawn(&svg))
        .unwrap();
    }
    let panel = Panel {
        title: "p".into(),
        x_desc: "x".into(),
        y_desc: "y".into(),
        series: vec![Series {
            color: color(1),
            dash: Dash::Solid,
            points: vec![(1.0, f64::INFINITY), (1.0, 1.0)],
        }],
        x_range: None,
        y_range: None,
        integer_x: true,
        marker: Some((1.0, "here".into())),
        reference: Some(Reference::Diagonal),
    };
    panels(&Panels {
        chart: "t",
        title: "t",
        panels: &[
            panel.clone(),
            Panel {
                series: vec![],
                ..panel
            },
        ],
        columns: 2,
        legend: &[],
        aria: "",
    })
    .map(|svg| drawn(&svg))
    .unwrap();
    for extreme in [f64::MAX, -f64::MAX, 1e300, f64::MIN_POSITIVE] {
        let wild = Panel {
            title: "wild".into(),
            x_desc: String::new(),
            y_desc: String::new(),
            series: vec![Series {
                color: color(2),
                dash: Dash::Solid,
                points: vec![(extreme, -extreme), (0.0, extreme), (-extreme, 1.0)],
            }],
            x_range: Some((extreme, -extreme)),
            y_range: None,
            integer_x: true,
            marker: Some((extreme, "m".into())),
            reference: Some(Reference::Horizontal(extreme)),
        };
        panels(&Panels {
            chart: "t",
            title: "t",
            panels: &[
                wild.clone(),
                Panel {
                    x_range: None,
                    ..wild
                },
            ],
            columns: 2,
            legend: &[],
            aria: "",
        })
        .map(|svg| drawn(&svg))
        .unwrap();
        let bars = [
            Bar {
                label: "big".into(),
                value: extreme,
                color: color(0),
                note: String::new(),
            },
            Bar {
                label: "small".into(),
                value: -extreme,
                color: color(1),
                note: String::new(),
            },
        ];
        hbars(&HBars {
            chart: "t",
            title: "",
            x_desc: "",
            y_desc: "",
            bars: &bars,
            legend: &[],
            aria: "",
        })
        .map(|svg| drawn(&svg))
        .unwrap();
        scatter(&Scatter {
            chart: "t",
            title: "t",
            x_desc: "",
            y_desc: "",
            points: &[((extreme, -extreme), Some(0)), ((0.0, 0.0), None)],
            groups: &[],
            aria: "",
        })
        .map(|svg| drawn(&svg))
        .unwrap();
    }
    heat_map(&HeatMap {
        chart: "t",
        title: "t",
        rows: &[],
        cols: &[],
        values: &[],
        cell_text: &|v| v.to_string(),
        scale: Scale::Sequential { max: 0.0 },
        x_desc: "",
        y_desc: "",
        legend_title: "",
        aria: "",
    })
    .map(|svg| drawn(&svg))
    .unwrap();
    scatter(&Scatter {
        chart: "t",
        title: "t",
        x_desc: "",
        y_desc: "",
        points: &[((f64::NAN, 1.0), Some(3)), ((0.0, 0.0), None)],
        groups: &[],
        aria: "",
    })
    .map(|svg| drawn(&svg))
    .unwrap();
}

/// One panel of `series` with `legend`, drawn.
fn one_panel(series: Vec<Series>, legend: &[LegendEntry]) -> String {
    panels(&Panels {
        chart: "t",
        title: "t",
        panels: &[Panel {
            title: "t".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            series,
            x_range: None,
            y_range: None,
            integer_x: true,
            marker: None,
            reference: None,
        }],
        columns: 1,
        legend,
        aria: "",
    })
    .unwrap()
}

/// A line of colour `i` and `dash` through `n` points, up and down.
fn zigzag(i: usize, dash: Dash, n: usize) -> Series {
    Series {
        color: color(i),
        dash,
        points: (0..n).map(|x| (x as f64, (x % 2) as f64)).collect(),
    }
}

#[test]
fn a_dense_line_is_drawn_without_a_circle_per_point() {
    let circles = |n: usize| {
        one_panel(vec![zigzag(0, Dash::Solid, n)], &[])
            .matches("<circle")
            .count()
    };
    assert_eq!(circles(MAX_MARKED_POINTS), MAX_MARKED_POINTS);
    assert_eq!(circles(MAX_MARKED_POINTS + 1), 0);
}

#[test]
fn lines_and_their_legend_tell_apart_by_dash_as_well_as_colour() {
    let svg = |dash: Dash, points: usize| {
        let legend = [LegendEntry {
            label: "a".into(),
            color: color(0),
            mark: Mark::Line(dash),
        }];
        one_panel(vec![zigzag(0, dash, points)], &legend)
    };
    let strokes = |svg: &str| svg.matches("<polyline").count() + svg.matches("<line").count();
    // A dashed line, dense or not, is one stroke with its dashes, as is its legend's.
    for points in [2, MAX_MARKED_POINTS + 1] {
        let (solid, long, short) = (
            svg(Dash::Solid, points),
            svg(Dash::Long, points),
            svg(Dash::Short, points),
        );
        assert_eq!(strokes(&long), strokes(&solid));
        assert_eq!(
            long.matches("stroke-dasharray=\"9 4\"").count(),
            2,
            "{long}"
        );
        assert_eq!(
            short.matches("stroke-dasharray=\"3 3\"").count(),
            2,
            "{short}"
        );
        assert!(!solid.contains("stroke-dasharray"), "{solid}");
    }
    assert_eq!(
        [dash(0), dash(1), dash(2), dash(3)],
        [Dash::Solid, Dash::Long, Dash::Short, Dash::Solid]
    );
}

#[test]
fn two_lines_of_one_colour_keep_their_own_dashes() {
    // Lines 0 and 8 share the palette's first colour, one dashed, one solid: dense
    // or not, each is one stroke, the dashed one with its dashes.
    for n in [2, MAX_MARKED_POINTS + 1] {
        let svg = one_panel(
            vec![zigzag(0, Dash::Long, n), zigzag(8, Dash::Solid, n)],
            &[],
        );
        let strokes = svg.matches("stroke-width=\"2\" ").count();
        assert_eq!(strokes, 2, "{svg}");
        assert_eq!(svg.matches("stroke-dasharray=\"9 4\"").count(), 1, "{svg}");
        // The solid one's blue is one step off, which is how its stroke is told.
        assert!(svg.contains("stroke=\"#0072B3\""), "{svg}");
    }
}
