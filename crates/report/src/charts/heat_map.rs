//! Heat maps: a table of numbers as coloured cells, such as the cohort triangle.

use super::*;

/// Colour scale of a heat map.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scale {
    /// Blue below zero, white at zero, orange above, saturated at `±limit`.
    Diverging {
        /// Value of full saturation.
        limit: f64,
    },
    /// White at zero to blue at `max`.
    Sequential {
        /// Value of full saturation.
        max: f64,
    },
}

const NEGATIVE: (f64, f64, f64) = (0x21 as f64, 0x66 as f64, 0xAC as f64);
const POSITIVE: (f64, f64, f64) = (0xD5 as f64, 0x5E as f64, 0x00 as f64);

fn mix(to: (f64, f64, f64), t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let c = |target: f64| (255.0 + (target - 255.0) * t).round().clamp(0.0, 255.0) as u8;
    RGBColor(c(to.0), c(to.1), c(to.2))
}

impl Scale {
    /// Colour of `v`.
    pub(crate) fn color(self, v: f64) -> RGBColor {
        match self {
            Scale::Diverging { limit } => {
                let t = v / limit.max(f64::MIN_POSITIVE);
                if t < 0.0 {
                    mix(NEGATIVE, -t)
                } else {
                    mix(POSITIVE, t)
                }
            }
            Scale::Sequential { max } => mix(NEGATIVE, v / max.max(f64::MIN_POSITIVE)),
        }
    }

    fn range(self) -> (f64, f64) {
        match self {
            Scale::Diverging { limit } => (-limit, limit),
            Scale::Sequential { max } => (0.0, max),
        }
    }
}

/// The text colour, dark or white, of the higher contrast on `c` (WCAG's ratio).
fn ink(c: RGBColor) -> RGBColor {
    let on_c = |ink: RGBColor| {
        let (a, b) = (luminance(ink), luminance(c));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    };
    if on_c(WHITE) > on_c(TEXT) {
        WHITE
    } else {
        TEXT
    }
}

/// WCAG's relative luminance of `c`.
fn luminance(c: RGBColor) -> f64 {
    let linear = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(c.0) + 0.7152 * linear(c.1) + 0.0722 * linear(c.2)
}

/// A heat map: rows top to bottom, columns left to right, a number in each cell.
pub(crate) struct HeatMap<'a> {
    /// Chart name for errors.
    pub chart: &'static str,
    /// Title drawn at the top.
    pub title: &'a str,
    /// Row labels.
    pub rows: &'a [String],
    /// Column labels.
    pub cols: &'a [String],
    /// `rows x cols` values; `None` is drawn as a grey cell.
    pub values: &'a [Vec<Option<f64>>],
    /// Text of a cell from its value.
    pub cell_text: &'a dyn Fn(f64) -> String,
    /// Colour scale.
    pub scale: Scale,
    /// Title of the column axis (above the columns).
    pub x_desc: &'a str,
    /// Title of the row axis.
    pub y_desc: &'a str,
    /// Title of the colour legend.
    pub legend_title: &'a str,
    /// Accessible description of the picture.
    pub aria: &'a str,
}

/// Draws a heat map.
pub(crate) fn heat_map(spec: &HeatMap) -> Result<String> {
    let (nr, nc) = (spec.rows.len().max(1) as i32, spec.cols.len().max(1) as i32);
    let cell_h = if nr > 40 { 18 } else { 22 };
    let row_labels: Vec<String> = spec.rows.iter().map(|r| truncate(r, 40)).collect();
    let left = row_labels
        .iter()
        .map(|l| text_width(l, 12))
        .max()
        .unwrap_or(0)
        .clamp(40, 300) as i32
        + 44;
    let legend_w = 120;
    let top = 98;
    let height = (top + cell_h * nr + 30) as u32;
    let cell_w = ((WIDTH as i32 - left - legend_w - 16) / nc).max(24);
    // Wider than the page's charts when the columns need it: the page scales it down.
    let width = (left + cell_w * nc + legend_w + 16).max(WIDTH as i32);
    let col_chars = ((cell_w - 6) as f64 / (12.0 * 0.56)).floor() as usize;
    svg(spec.chart, (width as u32, height), spec.aria, |root| {
        root.draw_text(
            spec.title,
            &anchored(bold(16), HPos::Center, VPos::Top),
            (width / 2, 5),
        )?;
        root.draw_text(
            spec.x_desc,
            &anchored(font(12), HPos::Center, VPos::Center),
            (left + cell_w * nc / 2, 40),
        )?;
        for (c, label) in spec.cols.iter().enumerate() {
            let x = left + cell_w * c as i32 + cell_w / 2;
            let lines = wrap(label, col_chars.max(3), 2);
            let first = top - 14 - 16 * (lines.len() as i32 - 1);
            for (l, line) in lines.iter().enumerate() {
                root.draw_text(
                    line,
                    &anchored(font(12), HPos::Center, VPos::Center),
                    (x, first + 16 * l as i32),
                )?;
            }
        }
        let row_axis_x = 14;
        root.draw_text(
            spec.y_desc,
            &anchored(font(12), HPos::Center, VPos::Center).transform(FontTransform::Rotate270),
            (row_axis_x, top + cell_h * nr / 2),
        )?;
        for (r, label) in row_labels.iter().enumerate() {
            let y = top + cell_h * r as i32;
            root.draw_text(
                label,
                &anchored(font(12), HPos::Right, VPos::Center),
                (left - 8, y + cell_h / 2),
            )?;
            for c in 0..spec.cols.len() {
                let x = left + cell_w * c as i32;
                let value = spec
                    .values
                    .get(r)
                    .and_then(|row| row.get(c))
                    .copied()
                    .flatten();
                let fill = match value {
                    Some(v) => spec.scale.color(v),
                    None => RGBColor(0xEE, 0xEE, 0xEE),
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w - 1, y + cell_h - 1)],
                    fill.filled(),
                ))?;
                let text = value.map(spec.cell_text).unwrap_or_else(|| "—".to_string());
                root.draw_text(
                    &text,
                    &anchored(font(11), HPos::Center, VPos::Center).color(&ink(fill)),
                    (x + cell_w / 2, y + cell_h / 2),
                )?;
            }
        }
        // Colour legend: a vertical gradient with its end and middle values.
        let lx = left + cell_w * nc + 24;
        let (lo, hi) = spec.scale.range();
        root.draw_text(
            spec.legend_title,
            &anchored(bold(12), HPos::Left, VPos::Center),
            (lx, top - 14),
        )?;
        let steps = 40;
        let bar_h = (cell_h * nr).clamp(120, 320);
        for s in 0..steps {
            let t = 1.0 - (s as f64 + 0.5) / steps as f64;
            let v = lo + (hi - lo) * t;
            let y0 = top + bar_h * s / steps;
            let y1 = top + bar_h * (s + 1) / steps;
            root.draw(&Rectangle::new(
                [(lx, y0), (lx + 16, y1)],
                spec.scale.color(v).filled(),
            ))?;
        }
        root.draw(&Rectangle::new([(lx, top), (lx + 16, top + bar_h)], AXIS))?;
        let marks = [
            (hi, top),
            ((lo + hi) / 2.0, top + bar_h / 2),
            (lo, top + bar_h),
        ];
        // A sequential scale in the cells' own unit, where that tells its marks apart.
        let in_cells = marks.map(|(v, _)| (spec.cell_text)(v));
        let cells_unit = matches!(spec.scale, Scale::Sequential { .. })
            && in_cells.iter().all(|t| !t.is_empty())
            && in_cells[0] != in_cells[1]
            && in_cells[1] != in_cells[2];
        for ((v, y), in_cells) in marks.into_iter().zip(in_cells) {
            let text = match spec.scale {
                Scale::Diverging { .. } if v > 0.0 => format!("≥ +{}", tick(v)),
                Scale::Diverging { .. } if v < 0.0 => format!("≤ {}", tick(v)),
                _ if cells_unit => in_cells,
                _ => tick(v),
            };
            root.draw_text(
                &text,
                &anchored(font(11), HPos::Left, VPos::Center),
                (lx + 22, y),
            )?;
        }
        Ok(())
    })
}
