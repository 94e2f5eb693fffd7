//! The benchmark floor: what polars alone takes to scan a canonical event CSV and
//! group it by user. `make bench` compares a whole userlens run against it.
//!
//! usage: polars_floor EVENTS.csv

use polars::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> PolarsResult<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| polars_err!(InvalidOperation: "usage: polars_floor EVENTS.csv"))?;
    let per_user = LazyCsvReader::new(PlRefPath::new(&path))
        .with_has_header(true)
        .with_try_parse_dates(true)
        .finish()?
        .group_by([col("user_id")])
        .agg([
            len().alias("events"),
            col("session_id").n_unique().alias("sessions"),
            col("event_time").max().alias("last"),
            col("amount").sum().alias("monetary"),
        ])
        .collect()?;
    println!("{} users", per_user.height());
    Ok(())
}
