//! The ratings section: the mean rating event (1-5) per group, and per category
//! among all users.

use super::*;

pub(super) fn satisfaction(df: &DataFrame, personas: &[Persona]) -> Result<String> {
    const T: &str = "satisfaction";
    let kinds = frame::strings(df, T, "group")?;
    let values = frame::strings(df, T, "value")?;
    let categories = frame::strings(df, T, "category")?;
    let ratings = frame::f64s(df, T, "ratings")?;
    let users = frame::f64s(df, T, "users")?;
    let mean = frame::f64s(df, T, "mean_rating")?;
    // Files from before `scope` tell every rating's row by its category.
    let scope = match frame::opt_strings(df, T, "scope")? {
        Some(scope) => scope,
        None => categories
            .iter()
            .map(|c| {
                Some(
                    if c.as_deref() == Some("all") {
                        "all"
                    } else {
                        "category"
                    }
                    .into(),
                )
            })
            .collect(),
    };
    let overall: Vec<usize> = (0..df.height())
        .filter(|&i| scope[i].as_deref() == Some("all"))
        .collect();
    if overall.is_empty() {
        return Ok(note("No rating event (1-5) before the as-of date."));
    }
    let names: Vec<String> = (0..df.height())
        .map(|i| group_name(&text(&kinds[i]), &text(&values[i]), personas))
        .collect();
    let bars: Vec<Bar> = overall
        .iter()
        .map(|&i| Bar {
            label: names[i].clone(),
            value: mean[i].unwrap_or(0.0),
            color: group_color(kinds[i].as_deref()),
            note: format!(
                "{} · {} ratings by {} {}",
                fixed(mean[i], 2),
                number(ratings[i]),
                number(users[i]),
                if users[i] == Some(1.0) {
                    "user"
                } else {
                    "users"
                }
            ),
        })
        .collect();
    let svg = charts::hbars(&HBars {
        chart: "ratings",
        title: "Mean rating (1-5) per group",
        x_desc: "mean rating",
        y_desc: "",
        bars: &bars,
        legend: &group_legend(),
        aria: &format!(
            "Horizontal bars of the mean rating of {} groups",
            bars.len()
        ),
    })?;
    let columns = [
        ("group", false),
        ("category", false),
        ("ratings", true),
        ("users", true),
        ("mean rating", true),
    ];
    let row = |i: usize| {
        vec![
            Cell::Text(names[i].clone()),
            Cell::Text(text(&categories[i])),
            Cell::Num(number(ratings[i])),
            Cell::Num(number(users[i])),
            Cell::Num(fixed(mean[i], 2)),
        ]
    };
    let mut groups = Table::new("Ratings per group (satisfaction.csv)", &columns);
    groups.rows.extend(overall.iter().map(|&i| row(i)));
    // Per category, the rows of all users; satisfaction.csv has every group's.
    let mut by_category = Table::new(
        "Ratings per category, all users (satisfaction.csv)",
        &columns,
    );
    by_category.rows.extend(
        (0..df.height())
            .filter(|&i| {
                kinds[i].as_deref() == Some(userlens_model::groups::ALL)
                    && scope[i].as_deref() != Some("all")
            })
            .map(row),
    );
    let mut tables = vec![groups];
    if !by_category.rows.is_empty() {
        tables.push(by_category);
    }
    Ok(figure(
        "loyalty-ratings",
        &svg,
        "The mean of the rating events (1-5) before the as-of date, over every rating each group's users gave. satisfaction.csv also has each group's mean per category; the survey's NPS is its own section.",
        &tables,
    ))
}
