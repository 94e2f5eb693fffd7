//! Charts of the HTML report, drawn with plotters' SVG backend into a `String`.
//!
//! Every chart has a title drawn into the picture, axis titles and, where colours
//! carry meaning, a legend. Categories use the Okabe-Ito palette, which stays
//! distinguishable with the common colour-vision deficiencies; signed values (z-scores)
//! use a diverging blue-white-orange scale. The SVG is post-processed for inline HTML:
//! the `xmlns` attribute (an URL, not needed inline) is dropped and `role="img"` and an
//! `aria-label` are added.

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::safe_text::show_bidi;
use crate::{Error, Result};

/// Okabe-Ito colours, ordered so neighbours contrast; the last, its pale yellow, replaced.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0x88, 0x22, 0x55), // wine (Tol): 8.7:1 on white, apart from the rest colour-blind
];
/// Colour of things outside the categories (users of an unknown persona).
pub(crate) const GREY: RGBColor = RGBColor(0x99, 0x99, 0x99);
/// Colour that marks a choice (the chosen k) or an alert: vermillion, dark enough
/// for text (5.5:1 on white).
pub(crate) const HIGHLIGHT: RGBColor = RGBColor(0xB3, 0x47, 0x00);
/// Colour of a reference line (perfect calibration, no lift).
const REFERENCE: RGBColor = RGBColor(0x88, 0x88, 0x88);
const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const AXIS: RGBColor = RGBColor(0x55, 0x55, 0x55);
const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
const FONT: &str = "sans-serif";
/// Width of every chart in pixels; the page scales it down on narrow screens.
pub(crate) const WIDTH: u32 = 960;

/// Category colour `i`: the palette, cycled.
pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Marker shape of category `i`: after the palette is used up, shapes tell apart
/// categories that share a colour.
pub(crate) fn shape(i: usize) -> Shape {
    match (i / PALETTE.len()) % 3 {
        0 => Shape::Circle,
        1 => Shape::Triangle,
        _ => Shape::Square,
    }
}

/// A colour as CSS `#RRGGBB`.
pub(crate) fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// Marker shapes of the scatter plot and legends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// Filled square.
    Square,
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A filled box (bars, cells).
    Box,
    /// A marker (points).
    Marker(Shape),
    /// A line with a dot (line series), drawn with its series' dash.
    Line(Dash),
}

/// How a line is drawn, so that the lines of a chart tell apart by more than their
/// colour (WCAG's "use of color").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Dash {
    /// An unbroken line.
    #[default]
    Solid,
    /// Long dashes.
    Long,
    /// Short dashes.
    Short,
}

impl Dash {
    /// Dash and gap in pixels; `None` for a solid line.
    fn pattern(self) -> Option<(i32, i32)> {
        match self {
            Dash::Solid => None,
            Dash::Long => Some((9, 4)),
            Dash::Short => Some((3, 3)),
        }
    }
}

/// The dash of line `i` of a chart (and of its legend entry): solid, long dashes,
/// short dashes, in turn.
pub(crate) fn dash(i: usize) -> Dash {
    [Dash::Solid, Dash::Long, Dash::Short][i % 3]
}

/// One legend line.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    /// Text.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Symbol.
    pub mark: Mark,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn font(size: u32) -> TextStyle<'static> {
    (FONT, size as f64 * 1.24).into_font().color(&TEXT)
}

/// The mesh every chart shares: white minor lines, a grey grid and axes, labels in
/// the page's sizes.
fn house_mesh<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .label_style(font(11))
        .axis_desc_style(font(12))
}

fn bold(size: u32) -> TextStyle<'static> {
    (FONT, size as f64 * 1.24)
        .into_font()
        .style(FontStyle::Bold)
        .color(&TEXT)
}

fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// Rough width in pixels of `text` at `size` px in a sans-serif font, for layout.
fn text_width(text: &str, size: u32) -> u32 {
    (text.chars().count() as f64 * size as f64 * 0.56).ceil() as u32
}

/// Cuts `text` to at most `max` characters, marking the cut with an ellipsis;
/// bidirectional controls are escaped first, so the cut counts what is drawn.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let text = show_bidi(text);
    if text.chars().count() <= max {
        return text.into_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Breaks `text` into at most `lines` lines of at most `width` characters, at spaces
/// where possible; what does not fit is cut with an ellipsis. Bidirectional controls
/// are escaped first, as in [`truncate`].
pub(crate) fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let text = show_bidi(text);
    let width = width.max(2);
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if candidate.chars().count() <= width || current.is_empty() {
            current = candidate;
        } else {
            out.push(std::mem::replace(&mut current, word.to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    if out.len() > lines.max(1) {
        let rest = out.split_off(lines.max(1) - 1).join(" ");
        out.push(rest);
    }
    out.into_iter().map(|l| truncate(&l, width)).collect()
}

/// Draws an SVG of `size` with a white background, then finishes it for inline HTML.
fn svg(
    chart: &'static str,
    size: (u32, u32),
    aria: &str,
    draw: impl FnOnce(&Area) -> Drawn,
) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|_| draw(&root))
            .and_then(|_| root.present())
            .map_err(|source| Error::Chart { chart, source })?;
    }
    Ok(finish(&buf, aria))
}

/// Makes plotters' standalone SVG fit for inline HTML: no `xmlns` (the only URL it
/// holds), `role="img"` with an `aria-label`, no `http` left in data text, and every
/// bidirectional control in a label shown escaped, whichever way it was drawn.
pub(crate) fn finish(raw: &str, aria: &str) -> String {
    let body = show_bidi(raw);
    let body = body.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "");
    let body = body.replacen(
        "<svg ",
        &format!(
            "<svg role=\"img\" aria-label=\"{}\" ",
            crate::html::escape(aria)
        ),
        1,
    );
    crate::html::defuse_urls(&body)
}

/// Largest magnitude drawn. plotters maps values to `i32` pixels and overflows (a
/// panic in debug builds) when a value is some billion plot widths away, so absurd
/// values are pinned here; the tables still show them as they are.
const LIMIT: f64 = 1e12;

/// A value fit to draw: finite and within [`LIMIT`] (non-finite values become 0).
fn sane(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(-LIMIT, LIMIT)
    } else {
        0.0
    }
}

/// Pads a data range so marks do not sit on the frame; degenerate ranges get a width.
fn padded(values: impl IntoIterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()).map(sane) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let half = (hi.abs() * 0.1).max(0.5);
        return (lo - half, hi + half);
    }
    (lo - span * pad, hi + span * pad)
}

/// Tick label text for a numeric axis: few decimals, no `-0`.
pub(crate) fn tick(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1000.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".to_string() } else { s }
}

fn draw_marker(area: &Area, at: (i32, i32), shape: Shape, radius: i32, style: ShapeStyle) -> Drawn {
    match shape {
        Shape::Circle => area.draw(&Circle::new(at, radius as u32, style)),
        Shape::Triangle => area.draw(&Polygon::new(
            vec![
                (at.0, at.1 - radius - 1),
                (at.0 - radius - 1, at.1 + radius),
                (at.0 + radius + 1, at.1 + radius),
            ],
            style,
        )),
        Shape::Square => area.draw(&Rectangle::new(
            [
                (at.0 - radius, at.1 - radius),
                (at.0 + radius, at.1 + radius),
            ],
            style,
        )),
    }
}

/// Width a legend of `entries` needs.
fn legend_width(entries: &[LegendEntry]) -> u32 {
    let widest = entries
        .iter()
        .map(|e| text_width(&e.label, 12))
        .max()
        .unwrap_or(0);
    (widest + 40).clamp(120, 300)
}

/// Draws a vertical legend in `area` (pixel coordinates of the area).
fn legend(area: &Area, title: &str, entries: &[LegendEntry], top: i32) -> Drawn {
    let mut y = top;
    if !title.is_empty() {
        area.draw_text(title, &anchored(bold(12), HPos::Left, VPos::Center), (8, y))?;
        y += 22;
    }
    let max_chars = ((area.dim_in_pixel().0.saturating_sub(36)) as f64 / (12.0 * 0.56)) as usize;
    for entry in entries {
        let style = entry.color.filled();
        match entry.mark {
            Mark::Box => area.draw(&Rectangle::new([(8, y - 6), (20, y + 6)], style))?,
            Mark::Marker(shape) => draw_marker(area, (14, y), shape, 5, style)?,
            // One stroke: its dash is given by its colour, as its line's is ([`lines`]).
            Mark::Line(_) => {
                let (ends, stroke) = (vec![(4, y), (24, y)], entry.color.stroke_width(2));
                area.draw(&PathElement::new(ends, stroke))?;
                area.draw(&Circle::new((14, y), 3, style))?;
            }
        }
        area.draw_text(
            &truncate(&entry.label, max_chars.max(8)),
            &anchored(font(12), HPos::Left, VPos::Center),
            (30, y),
        )?;
        y += 20;
    }
    Ok(())
}

/// One bar of a horizontal bar chart.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// Category label, drawn left of the bar.
    pub label: String,
    /// Length.
    pub value: f64,
    /// Fill.
    pub color: RGBColor,
    /// Text after the end of the bar (the value in words).
    pub note: String,
}

/// A horizontal bar chart: one bar per category, top to bottom in the given order.
pub(crate) struct HBars<'a> {
    /// Chart name for errors.
    pub chart: &'static str,
    /// Title drawn at the top.
    pub title: &'a str,
    /// Title of the value axis.
    pub x_desc: &'a str,
    /// Title of the category axis.
    pub y_desc: &'a str,
    /// Bars.
    pub bars: &'a [Bar],
    /// Legend (empty: none).
    pub legend: &'a [LegendEntry],
    /// Accessible description of the picture.
    pub aria: &'a str,
}

/// Draws a horizontal bar chart.
pub(crate) fn hbars(spec: &HBars) -> Result<String> {
    let n = spec.bars.len().max(1);
    let row = if n > 20 { 22 } else { 30 };
    let height = (110 + row * n as u32).max(180);
    let labels: Vec<String> = spec.bars.iter().map(|b| truncate(&b.label, 44)).collect();
    let label_w = labels
        .iter()
        .map(|l| text_width(l, 12))
        .max()
        .unwrap_or(0)
        .clamp(40, 330)
        + 14;
    let legend_w = if spec.legend.is_empty() {
        0
    } else {
        legend_width(spec.legend)
    };
    let notes_w = spec
        .bars
        .iter()
        .map(|b| text_width(&b.note, 12))
        .max()
        .unwrap_or(0);
    svg(spec.chart, (WIDTH, height), spec.aria, |root| {
        let area = root.titled(spec.title, bold(16))?;
        let (plot, side) = area.split_horizontally(WIDTH - legend_w);
        let (lo, hi) = padded(spec.bars.iter().map(|b| b.value).chain([0.0]), 0.0);
        // Bars of no negative value start at 0, even when all are 0.
        let lo = match spec.bars.iter().any(|b| b.value < 0.0) {
            true => lo.min(0.0),
            false => 0.0,
        };
        let hi = if hi > 0.0 { hi } else { 1.0 };
        // Room right of the axis for the longest bar's note: the axis ends at the
        // data, not past the scale (a rating axis to 7), leaving 100 pixels of plot.
        let room = (notes_w + 12).min((WIDTH - legend_w).saturating_sub(label_w + 50 + 30 + 100));
        let mut chart = ChartBuilder::on(&plot)
            .margin_right(30 + room)
            .margin_top(6)
            .x_label_area_size(44)
            .y_label_area_size(label_w + 20)
            .build_cartesian_2d(lo..hi, -0.5..(n as f64 - 0.5))?;
        house_mesh(&mut chart.configure_mesh())
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(8)
            .x_label_formatter(&|v| tick(*v))
            .x_desc(spec.x_desc)
            .y_desc(spec.y_desc)
            .draw()?;
        let y_of = |i: usize| (n - 1 - i) as f64;
        chart.draw_series(spec.bars.iter().enumerate().map(|(i, bar)| {
            let v = sane(bar.value).clamp(lo, hi);
            Rectangle::new(
                [(0.0, y_of(i) - 0.36), (v, y_of(i) + 0.36)],
                bar.color.filled(),
            )
        }))?;
        for (i, bar) in spec.bars.iter().enumerate() {
            let v = sane(bar.value).clamp(0.0, hi);
            let (x, y) = chart.backend_coord(&(v, y_of(i)));
            root.draw_text(
                &bar.note,
                &anchored(font(12), HPos::Left, VPos::Center),
                (x + 6, y),
            )?;
            let (x0, _) = chart.backend_coord(&(lo, y_of(i)));
            root.draw_text(
                &labels[i],
                &anchored(font(12), HPos::Right, VPos::Center),
                (x0 - 8, y),
            )?;
        }
        if !spec.legend.is_empty() {
            legend(&side, "", spec.legend, 16)?;
        }
        Ok(())
    })
}

/// One persona's users in the scatter plot.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Legend text.
    pub label: String,
    /// Short tag drawn next to the centroid (the persona id).
    pub tag: String,
    /// Colour.
    pub color: RGBColor,
    /// Marker.
    pub shape: Shape,
    /// Centroid, if known.
    pub centroid: Option<(f64, f64)>,
}

/// A scatter plot of points coloured by group, with the group centroids marked.
pub(crate) struct Scatter<'a> {
    /// Chart name for errors.
    pub chart: &'static str,
    /// Title drawn at the top.
    pub title: &'a str,
    /// Horizontal axis title.
    pub x_desc: &'a str,
    /// Vertical axis title.
    pub y_desc: &'a str,
    /// Points and their group index (`None`: drawn grey, outside every group).
    pub points: &'a [((f64, f64), Option<usize>)],
    /// Groups.
    pub groups: &'a [Group],
    /// Accessible description of the picture.
    pub aria: &'a str,
}

/// Draws a scatter plot with centroids.
pub(crate) fn scatter(spec: &Scatter) -> Result<String> {
    let mut entries: Vec<LegendEntry> = spec
        .groups
        .iter()
        .map(|g| LegendEntry {
            label: g.label.clone(),
            color: g.color,
            mark: Mark::Marker(g.shape),
        })
        .collect();
    if spec.points.iter().any(|(_, g)| g.is_none()) {
        entries.push(LegendEntry {
            label: "other".to_string(),
            color: GREY,
            mark: Mark::Marker(Shape::Circle),
        });
    }
    let legend_w = legend_width(&entries).max(200);
    let height = 640;
    svg(spec.chart, (WIDTH, height), spec.aria, |root| {
        let area = root.titled(spec.title, bold(16))?;
        let (plot, side) = area.split_horizontally(WIDTH - legend_w);
        let centroids = spec.groups.iter().filter_map(|g| g.centroid);
        let xs = spec
            .points
            .iter()
            .map(|(p, _)| p.0)
            .chain(centroids.clone().map(|c| c.0));
        let ys = spec
            .points
            .iter()
            .map(|(p, _)| p.1)
            .chain(centroids.map(|c| c.1));
        let (x0, x1) = padded(xs, 0.04);
        let (y0, y1) = padded(ys, 0.04);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        house_mesh(&mut chart.configure_mesh())
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .x_desc(spec.x_desc)
            .y_desc(spec.y_desc)
            .draw()?;
        for ((x, y), group) in spec.points {
            if !(x.is_finite() && y.is_finite()) {
                continue;
            }
            let at = chart.backend_coord(&(sane(*x), sane(*y)));
            let (color, shape) = match group.and_then(|g| spec.groups.get(g)) {
                Some(g) => (g.color, g.shape),
                None => (GREY, Shape::Circle),
            };
            draw_marker(root, at, shape, 2, color.mix(0.55).filled())?;
        }
        for group in spec.groups {
            let Some((x, y)) = group
                .centroid
                .filter(|c| c.0.is_finite() && c.1.is_finite())
            else {
                continue;
            };
            let at = chart.backend_coord(&(sane(x), sane(y)));
            draw_marker(root, at, group.shape, 9, WHITE.filled())?;
            draw_marker(root, at, group.shape, 7, group.color.filled())?;
            draw_marker(root, at, group.shape, 9, BLACK.stroke_width(2))?;
            root.draw_text(
                &group.tag,
                &anchored(bold(13), HPos::Left, VPos::Center),
                (at.0 + 12, at.1 - 10),
            )?;
        }
        legend(&side, "Persona", &entries, 24)?;
        // Explain the centroid mark under the colours.
        let y = 24 + 22 + 20 * entries.len() as i32 + 10;
        draw_marker(&side, (14, y), Shape::Circle, 6, WHITE.filled())?;
        draw_marker(&side, (14, y), Shape::Circle, 6, BLACK.stroke_width(2))?;
        side.draw_text(
            "centroid (mean user)",
            &anchored(font(12), HPos::Left, VPos::Center),
            (30, y),
        )
    })
}

mod heat_map;
mod lines;

pub(crate) use heat_map::{HeatMap, Scale, heat_map};
#[cfg(test)]
use lines::MAX_MARKED_POINTS;
pub(crate) use lines::{Panel, Panels, Reference, Series, panels};

#[cfg(test)]
mod tests;
