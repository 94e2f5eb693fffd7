//! How a source's columns map onto the canonical ones, resolved against its header,
//! and the per-row evaluation of derived columns and the refund test.

use userlens_model::columns;

use super::N;
use crate::error::{Error, Result};
use crate::{ColumnSource, Source};

/// Where one canonical column comes from in the source rows.
#[derive(Debug, Clone)]
pub(super) enum Slot {
    Field(usize),
    /// The first of these fields that is not blank on the row.
    First(Vec<usize>),
    Constant(String),
    /// A number computed from source fields.
    Derived(Box<Derived>),
    Absent,
}

/// Where the canonical columns, the order id and the refund test come from.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    pub(super) columns: [Slot; N],
    /// The optional `order_id` column.
    pub(super) order: Slot,
    /// The `refund_when` condition and the fields it reads.
    pub(super) refund: Option<Derived>,
    /// The `fill_down` fields, and the field a row must share with the row before.
    pub(super) fill: Option<(Vec<usize>, Option<usize>)>,
}

/// What `fill_down` carries from one row to the next: the filled fields' last values
/// and the last row's key.
#[derive(Debug, Default)]
pub(super) struct Carried {
    last: Vec<Vec<u8>>,
    key: Option<Vec<u8>>,
}

impl Carried {
    /// The blank fields of `fields` that take the row before's values (index and
    /// value), and what this row leaves to the next. A row of another width than
    /// `width` fills nothing and changes nothing carried.
    pub(super) fn fill(
        &mut self,
        (filled, within): &(Vec<usize>, Option<usize>),
        fields: &[&[u8]],
        width: usize,
    ) -> Vec<(usize, Vec<u8>)> {
        if fields.len() != width {
            return Vec::new();
        }
        let blank = |f: &[u8]| std::str::from_utf8(f).is_ok_and(|t| super::trim(t).is_empty());
        let key = within.map(|k| super::trim_field(fields[k]).to_vec());
        // Within an order: a row with the same, not blank, key as the row before.
        let same = match (&key, &self.key) {
            (None, _) => true,
            (Some(key), Some(before)) => !blank(key) && key == before,
            (Some(_), None) => false,
        };
        self.last.resize(filled.len(), Vec::new());
        let mut taken = Vec::new();
        for (slot, &i) in filled.iter().enumerate() {
            if same && blank(fields[i]) && !self.last[slot].is_empty() {
                taken.push((i, self.last[slot].clone()));
            } else {
                self.last[slot] = fields[i].to_vec();
            }
        }
        self.key = key;
        taken
    }
}

impl Slots {
    /// The source fields the mapping reads, each with the column it is read for.
    pub(super) fn used(&self) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        let canonical = columns::EVENT_COLUMNS
            .iter()
            .zip(&self.columns)
            .chain([(&columns::ORDER_ID, &self.order)]);
        let mapped = canonical.flat_map(|(name, slot)| {
            let fields: Vec<usize> = match slot {
                Slot::Field(index) => vec![*index],
                Slot::First(indices) => indices.clone(),
                Slot::Derived(derived) => derived.inputs.iter().map(|(_, i)| *i).collect(),
                Slot::Constant(_) | Slot::Absent => Vec::new(),
            };
            fields.into_iter().map(move |i| (*name, i))
        });
        let refund = self
            .refund
            .iter()
            .flat_map(|r| r.inputs.iter().map(|(_, i)| ("refund_when", *i)));
        mapped.chain(refund)
    }
}

impl Slot {
    /// The field a row's value is read from: a column's, or the first of several
    /// that is not blank (the first when all are).
    pub(super) fn field(&self, fields: &[&[u8]]) -> Option<usize> {
        match self {
            Slot::Field(index) => Some(*index),
            Slot::First(indices) => {
                // Blank as the reader trims (Unicode spaces too); bytes that are no
                // text are a value, refused as such.
                let filled = |&&i: &&usize| {
                    fields.get(i).is_some_and(|f| {
                        std::str::from_utf8(f).map_or(true, |t| !super::trim(t).is_empty())
                    })
                };
                indices.iter().find(filled).or(indices.first()).copied()
            }
            Slot::Constant(_) | Slot::Derived(_) | Slot::Absent => None,
        }
    }
}

/// A derived column or condition: its expression and the source fields it reads.
#[derive(Debug, Clone)]
pub(super) struct Derived {
    ast: userlens_expr::Spanned,
    /// Each name the expression reads, and its field index.
    pub(super) inputs: Vec<(String, usize)>,
    /// The names it reads as numbers (not only in text tests).
    numeric: Vec<String>,
}

/// The index of `wanted` in `header`, read for the canonical column `target`.
fn position(source: &Source, header: &[String], wanted: &str, target: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h == wanted)
        .ok_or_else(|| Error::MissingColumn {
            path: source.path().to_path_buf(),
            line: 1,
            source_column: wanted.to_string(),
            target: target.to_string(),
            available: available_in(source, header, wanted),
        })
}

/// The columns of `header`, after the one `wanted` is likely a typo of: "did you mean
/// `user`? the columns are: user, time".
pub(crate) fn available(header: &[String], wanted: &str) -> String {
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    let hint = userlens_model::did_you_mean(wanted, &names)
        .map(|name| format!("did you mean `{name}`? "))
        .unwrap_or_default();
    format!("{hint}the columns are: {}", header.join(", "))
}

/// [`available`], and for a text source without a header what to set when its first
/// line names the columns (Excel's tab-delimited `.txt`).
fn available_in(source: &Source, header: &[String], wanted: &str) -> String {
    let mut text = available(header, wanted);
    if source.format == crate::SourceFormat::Text
        && !source.header
        && source.params.column_names.is_none()
    {
        text.push_str(
            " (read as whitespace-aligned text without a header, as a `.txt` file is: if \
             its first line names the columns, set `header = true`, or `format = \"csv\"` \
             with `delimiter = \"\\t\"` for a tab-delimited export)",
        );
    }
    text
}

/// The fields of `header` an expression reads, for `target`.
fn inputs_of(
    source: &Source,
    header: &[String],
    ast: &userlens_expr::Spanned,
    target: &str,
) -> Result<Derived> {
    let mut inputs = Vec::new();
    let mut numeric = Vec::new();
    let texts = userlens_expr::text_names(ast);
    for (wanted, offset) in userlens_expr::names(ast) {
        let index = position(source, header, wanted, target)?;
        inputs.push((wanted.to_string(), index));
        if !texts.contains(&(wanted, offset)) {
            numeric.push(wanted.to_string());
        }
    }
    Ok(Derived {
        ast: ast.clone(),
        inputs,
        numeric,
    })
}

/// Where the canonical column `name` comes from.
fn slot_of(source: &Source, header: &[String], name: &str) -> Result<Slot> {
    Ok(match source.params.columns.get(name) {
        Some(ColumnSource::Constant { constant }) => Slot::Constant(constant.trim().to_string()),
        Some(ColumnSource::Derived { .. }) => match source.derived.get(name) {
            Some(ast) => Slot::Derived(Box::new(inputs_of(source, header, ast, name)?)),
            None => Slot::Absent,
        },
        Some(ColumnSource::Column(wanted)) => Slot::Field(position(source, header, wanted, name)?),
        Some(ColumnSource::First { first }) => Slot::First(
            (first.iter())
                .map(|wanted| position(source, header, wanted, name))
                .collect::<Result<_>>()?,
        ),
        None => match header.iter().position(|h| h == name) {
            Some(index) => Slot::Field(index),
            None => same_but_case(source, header, name)?,
        },
    })
}

/// The one header column that is `name` but for case (`Amount`, `USER_ID`); two
/// such are a guess, refused.
fn same_but_case(source: &Source, header: &[String], name: &str) -> Result<Slot> {
    let mut found = (0..header.len()).filter(|&i| header[i].eq_ignore_ascii_case(name));
    Ok(match (found.next(), found.next()) {
        (None, _) => Slot::Absent,
        (Some(index), None) => Slot::Field(index),
        (Some(first), Some(second)) => {
            return Err(Error::CaseVariants {
                path: source.path().to_path_buf(),
                target: name.to_string(),
                first_name: header[first].clone(),
                first: first + 1,
                second_name: header[second].clone(),
                second: second + 1,
            });
        }
    })
}

/// Resolves the mapping against the header (or the given column names).
pub(super) fn resolve(source: &Source, header: &[String]) -> Result<Slots> {
    let path = source.path();
    let mut slots: [Slot; N] = std::array::from_fn(|_| Slot::Absent);
    for (i, name) in columns::EVENT_COLUMNS.iter().enumerate() {
        slots[i] = slot_of(source, header, name)?;
    }
    for (i, name) in columns::EVENT_COLUMNS.iter().enumerate() {
        if columns::REQUIRED.contains(name) && matches!(slots[i], Slot::Absent) {
            return Err(Error::MissingRequired {
                path: path.to_path_buf(),
                column: columns::EVENT_COLUMNS[i],
                available: available_in(source, header, name),
            });
        }
    }
    let order = slot_of(source, header, columns::ORDER_ID)?;
    let refund = match &source.refund {
        Some(ast) => Some(inputs_of(source, header, ast, "refund_when")?),
        None => None,
    };
    let fill = match &source.params.fill_down {
        Some(fill) => {
            let of = |name: &str| position(source, header, name, "fill_down");
            let filled = fill.columns.iter().map(|c| of(c)).collect::<Result<_>>()?;
            let within = fill.within.as_deref().map(of).transpose()?;
            Some((filled, within))
        }
        None => None,
    };
    let slots = Slots {
        columns: slots,
        order,
        refund,
        fill,
    };
    for (target, index) in slots.used() {
        if let Some(other) = (0..header.len()).find(|&i| i != index && header[i] == header[index]) {
            return Err(Error::DuplicateColumn {
                path: path.to_path_buf(),
                line: 1,
                source_column: header[index].clone(),
                target: target.to_string(),
                first: index.min(other) + 1,
                second: index.max(other) + 1,
            });
        }
    }
    Ok(slots)
}

/// Why a derived column has no value a row can keep.
pub(super) enum Underived {
    /// This input is not a number: its name, text and a hint at its decimal mark.
    NotANumber(String, String, String),
    /// The inputs are numbers, but the result overflows.
    NotFinite,
}

/// A derived column's value on a row (`None` when an input is empty or a divisor
/// zero), or why it has none a row can keep.
pub(super) fn derived_value(
    derived: &Derived,
    fields: &[&[u8]],
    source: &Source,
) -> std::result::Result<Option<f64>, Underived> {
    let mut values = Vec::with_capacity(derived.inputs.len());
    for (name, index) in &derived.inputs {
        let text = fields
            .get(*index)
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .unwrap_or_default();
        if text.is_empty() {
            values.push((name.as_str(), None));
            continue;
        }
        match source.number(&text) {
            Some(v) => values.push((name.as_str(), Some(v))),
            None => {
                let hint = crate::numbers::comma_hint(source, &text);
                return Err(Underived::NotANumber(name.clone(), text, hint));
            }
        }
    }
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| *v)
    };
    match userlens_expr::evaluate(&derived.ast, &lookup) {
        userlens_expr::Value::Number(Some(v)) if !v.is_finite() => Err(Underived::NotFinite),
        userlens_expr::Value::Number(v) => Ok(v),
        userlens_expr::Value::Condition(_) => Ok(None),
    }
}

/// Whether `refund_when` holds on a row (unknown, as with a missing input, is no), or,
/// where it is unknown, why: an input it compares as a number holds another value.
pub(super) fn is_refund(
    refund: &Derived,
    fields: &[&[u8]],
    source: &Source,
) -> std::result::Result<bool, String> {
    struct Fields<'r> {
        refund: &'r Derived,
        fields: &'r [&'r [u8]],
        source: &'r Source,
    }
    impl userlens_expr::Row for Fields<'_> {
        fn text(&self, name: &str) -> Option<&str> {
            let (_, index) = self.refund.inputs.iter().find(|(n, _)| n == name)?;
            let text = std::str::from_utf8(self.fields.get(*index)?).ok()?.trim();
            (!text.is_empty()).then_some(text)
        }
        fn number(&self, name: &str) -> Option<f64> {
            self.source.number(self.text(name)?)
        }
    }
    let row = Fields {
        refund,
        fields,
        source,
    };
    if let userlens_expr::Value::Condition(Some(holds)) = userlens_expr::evaluate(&refund.ast, &row)
    {
        return Ok(holds);
    }
    // Unknown: no refund where an input is missing, but a line whose answer hangs on
    // text compared as a number cannot be told.
    for name in &refund.numeric {
        use userlens_expr::Row;
        if let Some(text) = row.text(name)
            && source.number(text).is_none()
        {
            let hint = crate::numbers::comma_hint(source, text);
            return Err(format!(
                "`{name}` {} is not a number (`refund_when` compares it){hint}",
                crate::error::quoted(text)
            ));
        }
    }
    Ok(false)
}
