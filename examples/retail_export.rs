//! Writes the purchases of a canonical event CSV (gzip or not) as a line-item
//! transactions export in the layout of UCI's Online Retail data set:
//! `InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country`.
//! Each purchase becomes one invoice of one to four lines whose values add up to the
//! purchase's amount (to the cent, up to rounding of unit prices); about one invoice
//! in 25 is followed by a cancellation (`C` + its number, negative quantity) of its
//! first line; customer ids are written as floats (`12346.0`), as pandas writes them;
//! and about one purchase in 12 is accompanied by a guest invoice without a customer
//! id. `make sample-data` uses it for sample_data/retail.csv.gz, the input of
//! pipelines/retail.toml.
//!
//! usage: retail_export EVENTS.csv OUT.csv

use std::io::{BufRead, BufReader, BufWriter, Read};

/// First invoice number, as in the UCI data.
const FIRST_INVOICE: u64 = 536_365;
/// Customer ids start here (`u000001` is 12346, the UCI data's first customer).
const FIRST_CUSTOMER: u64 = 12_345;

/// A deterministic 64-bit mix (splitmix64's finaliser): the same input, the same
/// lines, with no random state to carry.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `2026-01-10 08:53:35` as UCI writes it: `1/10/2026 8:53` (seconds dropped).
fn uci_time(time: &str) -> Option<String> {
    let (date, clock) = time.split_once(' ')?;
    let mut date = date.split('-');
    let (y, m, d) = (date.next()?, date.next()?, date.next()?);
    let mut clock = clock.split(':');
    let (h, min) = (clock.next()?, clock.next()?);
    let n = |s: &str| s.parse::<u32>().ok();
    Some(format!(
        "{}/{}/{} {}:{:02}",
        n(m)?,
        n(d)?,
        y,
        n(h)?,
        n(min)?
    ))
}

/// The same time `days` later, in UCI's layout.
fn days_later(time: &str, days: u32) -> Option<String> {
    let (date, clock) = time.split_once(' ')?;
    let mut parts = date.split('-').map(|s| s.parse::<i32>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let days_in = |y: i32, m: i32| match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let (mut y, mut m, mut d) = (y, m, d + days as i32);
    while d > days_in(y, m) {
        d -= days_in(y, m);
        m += 1;
        if m > 12 {
            (y, m) = (y + 1, 1);
        }
    }
    uci_time(&format!("{y:04}-{m:02}-{d:02} {clock}"))
}

/// `12346.0` for `u000001`: the UCI data's ids, as pandas writes a column with gaps.
fn customer_id(user: &str) -> Option<String> {
    let n: u64 = user.trim_start_matches('u').parse().ok()?;
    Some(format!("{}.0", FIRST_CUSTOMER + n))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        return Err("usage: retail_export EVENTS.csv OUT.csv".into());
    };
    let mut file = BufReader::new(std::fs::File::open(input)?);
    let reader: Box<dyn Read> = if file.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut csv = csv::Reader::from_reader(reader);
    let header = csv.headers()?.clone();
    let index = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{input} has no `{name}` column"))
    };
    let (user_at, time_at, type_at) = (
        index("user_id")?,
        index("event_time")?,
        index("event_type")?,
    );
    let (item_at, category_at, amount_at) =
        (index("item_id")?, index("category")?, index("amount")?);
    let mut out = csv::Writer::from_writer(BufWriter::new(std::fs::File::create(output)?));
    out.write_record([
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ])?;
    let mut invoice = FIRST_INVOICE;
    for record in csv.records() {
        let record = record?;
        let field = |i: usize| record.get(i).unwrap_or_default();
        if field(type_at) != "purchase" {
            continue;
        }
        let (Some(customer), Some(date), Ok(amount)) = (
            customer_id(field(user_at)),
            uci_time(field(time_at)),
            field(amount_at).parse::<f64>(),
        ) else {
            continue;
        };
        let item = field(item_at).trim_start_matches('i');
        let description = field(category_at).to_uppercase();
        let h = mix(invoice);
        let country = if h.is_multiple_of(10) {
            "Germany"
        } else {
            "United Kingdom"
        };
        // Split the amount in whole cents over the lines, the first line the largest.
        let lines = 1 + (h % 4) as usize;
        let total = (amount * 100.0).round() as i64;
        let mut shares: Vec<i64> = (0..lines)
            .map(|j| total * (lines - j) as i64 / (lines * (lines + 1) / 2) as i64)
            .collect();
        shares[0] += total - shares.iter().sum::<i64>();
        let mut first_line = None;
        for (j, cents) in shares.into_iter().enumerate() {
            let quantity = 1 + (mix(h ^ j as u64) % 6) as i64;
            let unit_cents = ((cents as f64 / quantity as f64).round() as i64).max(1);
            let stock = if j == 0 {
                item.to_string()
            } else {
                format!("{item}{}", (b'A' + j as u8) as char)
            };
            let price = format!("{}.{:02}", unit_cents / 100, unit_cents % 100);
            out.write_record([
                invoice.to_string().as_str(),
                &stock,
                &description,
                &quantity.to_string(),
                &date,
                &price,
                &customer,
                country,
            ])?;
            first_line.get_or_insert((stock, quantity, price));
        }
        if h % 25 == 1
            && let (Some((stock, quantity, price)), Some(later)) =
                (first_line, days_later(field(time_at), 1 + (h % 5) as u32))
        {
            out.write_record([
                format!("C{}", invoice + 1_000_000).as_str(),
                &stock,
                &description,
                &(-quantity).to_string(),
                &later,
                &price,
                &customer,
                country,
            ])?;
        }
        if h % 12 == 5 {
            let guest = format!("{}", invoice + 2_000_000);
            out.write_record([
                guest.as_str(),
                item,
                &description,
                "1",
                &date,
                "1.95",
                "",
                country,
            ])?;
        }
        invoice += 1;
    }
    out.flush()?;
    Ok(())
}
