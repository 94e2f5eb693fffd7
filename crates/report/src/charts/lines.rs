//! Line charts in panels (small multiples): k selection, calibration, lift, the
//! loyalty curves.

use super::*;

/// A reference line drawn behind a panel's series.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reference {
    /// `y = x` (perfect calibration).
    Diagonal,
    /// `y = value` (no lift).
    Horizontal(f64),
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Colour.
    pub color: RGBColor,
    /// Dash, as its legend entry's ([`dash`]).
    pub dash: Dash,
    /// Points, drawn in order.
    pub points: Vec<(f64, f64)>,
}

/// One small multiple: an x-y line chart.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// Panel title.
    pub title: String,
    /// Horizontal axis title.
    pub x_desc: String,
    /// Vertical axis title.
    pub y_desc: String,
    /// Lines.
    pub series: Vec<Series>,
    /// Fixed axis ranges (otherwise from the data).
    pub x_range: Option<(f64, f64)>,
    /// Fixed vertical range.
    pub y_range: Option<(f64, f64)>,
    /// Whether x ticks are whole numbers (k, deciles).
    pub integer_x: bool,
    /// A vertical marker at `x` with a note (the chosen k).
    pub marker: Option<(f64, String)>,
    /// A reference line.
    pub reference: Option<Reference>,
}

/// A grid of line-chart panels sharing a title and a legend.
pub(crate) struct Panels<'a> {
    /// Chart name for errors.
    pub chart: &'static str,
    /// Title drawn at the top.
    pub title: &'a str,
    /// Panels, row by row.
    pub panels: &'a [Panel],
    /// Panels per row.
    pub columns: usize,
    /// Legend (empty: none).
    pub legend: &'a [LegendEntry],
    /// Accessible description of the picture.
    pub aria: &'a str,
}

/// Draws small multiples of line charts.
pub(crate) fn panels(spec: &Panels) -> Result<String> {
    let columns = spec.columns.clamp(1, 4);
    let rows = spec.panels.len().div_ceil(columns).max(1);
    let panel_h = 300;
    let height = 40 + panel_h * rows as u32;
    let legend_w = if spec.legend.is_empty() {
        0
    } else {
        legend_width(spec.legend)
    };
    // A line is drawn as one stroke, and its dashes are the stroke's
    // `stroke-dasharray`, added to the picture by its colour after. A colour drawn
    // with a second dash (past the palette's eight) moves by one in its blue
    // channel, which no eye sees, so that each stroke's colour says its dash.
    let marks = (spec.panels.iter().flat_map(|p| &p.series)).map(|s| (s.color, s.dash));
    let entries = (spec.legend.iter()).filter_map(|e| match e.mark {
        Mark::Line(dash) => Some((e.color, dash)),
        _ => None,
    });
    let mut drawn: Vec<((RGBColor, Dash), RGBColor)> = Vec::new();
    for (color, dash) in marks.chain(entries) {
        if drawn.iter().any(|(key, _)| *key == (color, dash)) {
            continue;
        }
        let taken = drawn.iter().filter(|((c, _), _)| *c == color).count() as u8;
        let RGBColor(r, g, b) = color;
        drawn.push(((color, dash), RGBColor(r, g, b ^ taken)));
    }
    let as_drawn = |color: RGBColor, dash: Dash| {
        (drawn.iter())
            .find(|(key, _)| *key == (color, dash))
            .map_or(color, |(_, drawn)| *drawn)
    };
    let dashes: Vec<(RGBColor, Dash)> = drawn.iter().map(|((_, dash), c)| (*c, *dash)).collect();
    let panels: Vec<Panel> = (spec.panels.iter().cloned())
        .map(|mut panel| {
            for s in &mut panel.series {
                s.color = as_drawn(s.color, s.dash);
                s.dash = Dash::Solid;
            }
            panel
        })
        .collect();
    let legend_entries: Vec<LegendEntry> = (spec.legend.iter().cloned())
        .map(|mut e| {
            if let Mark::Line(dash) = e.mark {
                e.color = as_drawn(e.color, dash);
                e.mark = Mark::Line(Dash::Solid);
            }
            e
        })
        .collect();
    svg(spec.chart, (WIDTH, height), spec.aria, |root| {
        let area = root.titled(spec.title, bold(16))?;
        let (grid, side) = area.split_horizontally(WIDTH - legend_w);
        let cells = grid.split_evenly((rows, columns));
        for (panel, cell) in panels.iter().zip(&cells) {
            draw_panel(root, cell, panel)?;
        }
        if !legend_entries.is_empty() {
            legend(&side, "", &legend_entries, 40)?;
        }
        Ok(())
    })
    .map(|drawn| dashed(drawn, &dashes))
}

/// `svg` with the lines of each colour of `dashes` (strokes two pixels wide, as
/// series and their legend entries are drawn) given that colour's dash.
fn dashed(mut svg: String, dashes: &[(RGBColor, Dash)]) -> String {
    for &(color, dash) in dashes {
        if let Some((on, off)) = dash.pattern() {
            let line = format!("stroke=\"{}\" stroke-width=\"2\" points=", hex(color));
            let with = line.replace(
                " points=",
                &format!(" stroke-dasharray=\"{on} {off}\" points="),
            );
            svg = svg.replace(&line, &with);
        }
    }
    svg
}

fn draw_panel(root: &Area, cell: &Area, panel: &Panel) -> Drawn {
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = panel
        .x_range
        .map(|(a, b)| padded([a, b], 0.0))
        .unwrap_or_else(|| padded(points().map(|p| p.0), 0.06));
    let (y0, y1) = panel
        .y_range
        .map(|(a, b)| padded([a, b], 0.0))
        .unwrap_or_else(|| {
            let reference = match panel.reference {
                Some(Reference::Horizontal(v)) => Some(v),
                _ => None,
            };
            padded(points().map(|p| p.1).chain(reference), 0.1)
        });
    let mut chart = ChartBuilder::on(cell)
        .caption(&panel.title, bold(13))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(40)
        .y_label_area_size(58)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let integer_ticks = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            tick(v.round())
        } else {
            String::new()
        }
    };
    let span = (x1 - x0).round() as usize;
    let mut mesh = chart.configure_mesh();
    house_mesh(&mut mesh)
        .x_labels(if panel.integer_x {
            span.clamp(2, 12) + 1
        } else {
            6
        })
        .y_labels(6)
        .y_label_formatter(&|v| tick(*v))
        .x_desc(&panel.x_desc)
        .y_desc(&panel.y_desc);
    if panel.integer_x {
        mesh.x_label_formatter(&integer_ticks);
    } else {
        mesh.x_label_formatter(&|v| tick(*v));
    }
    mesh.draw()?;
    match panel.reference {
        Some(Reference::Diagonal) => {
            let (a, b) = (x0.max(y0), x1.min(y1));
            if a < b {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(a, a), (b, b)],
                    REFERENCE.stroke_width(1),
                )))?;
            }
        }
        Some(Reference::Horizontal(v)) if v > y0 && v < y1 => {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x0, v), (x1, v)],
                REFERENCE.stroke_width(1),
            )))?;
        }
        _ => {}
    }
    if let Some((x, note)) = &panel.marker
        && *x >= x0
        && *x <= x1
    {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*x, y0), (*x, y1)],
            HIGHLIGHT.mix(0.6).stroke_width(2),
        )))?;
        let (px, py) = chart.backend_coord(&(*x, y1));
        let right_half = *x > (x0 + x1) / 2.0;
        let (h, dx) = if right_half {
            (HPos::Right, -6)
        } else {
            (HPos::Left, 6)
        };
        root.draw_text(
            note,
            &anchored(bold(12), h, VPos::Top).color(&HIGHLIGHT),
            (px + dx, py + 4),
        )?;
    }
    for series in &panel.series {
        let pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|(x, y)| (sane(x).clamp(x0, x1), sane(y).clamp(y0, y1)))
            .collect();
        let stroke = series.color.stroke_width(2);
        chart.draw_series(LineSeries::new(pts.clone(), stroke))?;
        // A dense line's points would only blur it, at a circle each in the page.
        if pts.len() <= MAX_MARKED_POINTS {
            chart.draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 3, series.color.filled())),
            )?;
        }
        if let Some((x, _)) = &panel.marker
            && let Some(&p) = pts.iter().find(|p| (p.0 - x).abs() < 1e-9)
        {
            chart.draw_series(std::iter::once(Circle::new(
                p,
                7,
                HIGHLIGHT.stroke_width(2),
            )))?;
        }
    }
    Ok(())
}

/// Points of a line drawn each as a circle; a line of more is drawn as a line only.
pub(super) const MAX_MARKED_POINTS: usize = 60;
