//! Line-item exports (UCI's Online Retail layout): a derived amount, float ids.

use super::*;

const EXPORT: &str = "\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527.0,United Kingdom
536380,22961,JAM MAKING SET,abc,2010-12-01 09:41:00,1.45,14527.0,United Kingdom
536381,22962,JAM JAR,2,2010-12-01 09:45:00,,14527.0,United Kingdom
536382,22963,JAM LID,2,2010-12-01 09:50:00,1.0,,United Kingdom
";

fn line_items(path: PathBuf, amount: &str) -> Result<Source> {
    let params: SourceParams = toml::from_str(&format!(
        r#"
        path = "placeholder"
        user_id_format = "integer"
        [columns]
        user_id = "CustomerID"
        event_time = "InvoiceDate"
        item_id = "StockCode"
        event_type = {{ constant = "purchase" }}
        amount = {amount}
        "#
    ))
    .unwrap();
    SourceParams { path, ..params }.check()
}

#[test]
fn the_amount_is_computed_from_quantity_and_unit_price() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "retail.csv", EXPORT.as_bytes());
    let source = line_items(path, r#"{ expr = "Quantity * UnitPrice" }"#).unwrap();
    let out = ingest(&source).unwrap();
    assert_eq!(out.stats.read, 6);
    assert_eq!(
        out.stats.read,
        out.stats.kept + out.stats.quarantined + out.stats.duplicates
    );
    let q = quarantine_rows(&out);
    assert_eq!(
        q,
        [
            (
                5,
                "amount".to_string(),
                "`Quantity` \"abc\" is not a number (`amount` is computed from it)".to_string()
            ),
            (7, "user_id".to_string(), "missing `user_id`".to_string()),
        ]
    );
    let users: Vec<&str> = out
        .events
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(users, ["14527", "14527", "17850", "17850"]);
    // Rows of one user at one time keep the ingest's order: compare them as a set.
    let mut amounts: Vec<String> = amounts(&out)
        .iter()
        .map(|a| a.map_or("-".to_string(), |v| format!("{v:.6}")))
        .collect();
    amounts.sort();
    let mut expected: Vec<String> = [Some(-27.5), None, Some(6.0 * 2.55), Some(6.0 * 3.39)]
        .iter()
        .map(|a: &Option<f64>| a.map_or("-".to_string(), |v| format!("{v:.6}")))
        .collect();
    expected.sort();
    assert_eq!(amounts, expected);
}

#[test]
fn an_amount_that_overflows_is_quarantined_not_kept_empty() {
    let dir = tempfile::tempdir().unwrap();
    let export = "\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
1,A,X,1e200,2010-12-01 08:26:00,1e200,17850.0,United Kingdom
2,A,X,2,2010-12-01 08:27:00,0.5,17850.0,United Kingdom
3,A,X,2e6,2010-12-01 08:28:00,1e6,17850.0,United Kingdom
";
    let path = write(&dir, "retail.csv", export.as_bytes());
    let source = line_items(path, r#"{ expr = "Quantity * UnitPrice" }"#).unwrap();
    let out = ingest(&source).unwrap();
    assert_eq!((out.stats.read, out.stats.kept), (3, 1));
    let beyond = "`amount` computes to 2e12, beyond a trillion, more than userlens sums";
    assert_eq!(
        quarantine_rows(&out),
        [
            (
                2,
                "amount".into(),
                "`amount` computes to a number too large to hold".into()
            ),
            (4, "amount".into(), beyond.to_string()),
        ]
    );
    assert_eq!(amounts(&out), [Some(1.0)]);
}

#[test]
fn derived_columns_are_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "retail.csv", EXPORT.as_bytes());
    let err = line_items(path.clone(), r#"{ expr = "Quantity * " }"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`columns.amount`: unexpected end of the expression at column 11, expected a number or a column name"
    );
    let err = line_items(path.clone(), r#"{ expr = "Quantity > 0" }"#).unwrap_err();
    assert!(
        err.to_string().contains("is a condition, not a number"),
        "{err}"
    );

    let params: SourceParams = toml::from_str(
        r#"
        path = "placeholder"
        columns = { user_id = { expr = "CustomerID * 1" } }
        "#,
    )
    .unwrap();
    let err = SourceParams {
        path: path.clone(),
        ..params
    }
    .check()
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`columns.user_id` cannot be derived"),
        "{err}"
    );

    // A name that is not a column of the file is refused with the columns there are.
    let source = line_items(path, r#"{ expr = "Qty * UnitPrice" }"#).unwrap();
    let err = ingest(&source).unwrap_err().to_string();
    assert!(err.contains("Qty") && err.contains("Quantity"), "{err}");
}

/// Line items with orders and cancellations (`C` invoices), as UCI's export has.
const ORDERS: &str = "\
InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID
536365,85123A,6,2010-12-01 08:26:00,2.55,17850.0
536365,71053,6,2010-12-01 08:26:00,3.39,17850.0
536366,22633,6,2010-12-01 08:28:00,1.85,17850.0
C536379,85123A,-1,2010-12-02 09:41:00,2.55,17850.0
C536380,22961,-2,2010-12-02 09:41:00,,12346.0
C536381,22962,-3,2010-12-03 09:45:00,1.25,12346.0
536382,22963,2,2010-12-03 09:50:00,1.0,13047.0
";

fn orders_source(path: PathBuf, refund_when: &str) -> Result<Source> {
    let params: SourceParams = toml::from_str(&format!(
        r#"
        path = "placeholder"
        user_id_format = "integer"
        refund_when = '{refund_when}'
        [columns]
        user_id = "CustomerID"
        event_time = "InvoiceDate"
        item_id = "StockCode"
        order_id = "InvoiceNo"
        event_type = {{ constant = "purchase" }}
        amount = {{ expr = "Quantity * UnitPrice" }}
        "#
    ))
    .unwrap();
    SourceParams { path, ..params }.check()
}

/// `(user, order, amount in cents)` of every kept row, sorted.
fn order_rows(events: &DataFrame) -> Vec<(String, String, i64)> {
    let users = events.column("user_id").unwrap().str().unwrap().clone();
    let orders = events.column("order_id").unwrap().str().unwrap().clone();
    let amounts = events.column("amount").unwrap().f64().unwrap().clone();
    let mut rows: Vec<_> = (0..events.height())
        .map(|i| {
            (
                users.get(i).unwrap().to_string(),
                orders.get(i).unwrap_or("-").to_string(),
                (amounts.get(i).unwrap() * 100.0).round() as i64,
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn orders_are_kept_and_refunds_become_negative_purchases() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "orders.csv", ORDERS.as_bytes());
    for refund_when in [r#"InvoiceNo starts_with "C""#, "Quantity < 0"] {
        let source = orders_source(path.clone(), refund_when).unwrap();
        let out = ingest(&source).unwrap();
        assert_eq!(out.stats.read, 7);
        assert_eq!(
            out.stats.read,
            out.stats.kept + out.stats.quarantined + out.stats.duplicates
        );
        // A refund needs its amount: the line without a unit price is quarantined.
        assert_eq!(
            quarantine_rows(&out),
            [(
                6,
                "amount".to_string(),
                "a refund (`refund_when`) without an amount".to_string()
            )]
        );
        assert_eq!(
            order_rows(&out.events),
            [
                ("12346".to_string(), "C536381".to_string(), -375),
                ("13047".to_string(), "536382".to_string(), 200),
                ("17850".to_string(), "536365".to_string(), 1530),
                ("17850".to_string(), "536365".to_string(), 2034),
                ("17850".to_string(), "536366".to_string(), 1110),
                ("17850".to_string(), "C536379".to_string(), -255),
            ],
            "{refund_when}"
        );
    }
    // A refund test on text: a positive quantity on a `C` invoice is made negative.
    let flipped = ORDERS.replace("C536381,22962,-3", "C536381,22962,3");
    let path = write(&dir, "flipped.csv", flipped.as_bytes());
    let source = orders_source(path, r#"InvoiceNo starts_with "C""#).unwrap();
    let out = ingest(&source).unwrap();
    assert!(order_rows(&out.events).contains(&("12346".into(), "C536381".into(), -375)));
    // A refund of a free line would be a purchase of 0: quarantined.
    let free = ORDERS.replace(
        "C536381,22962,-3,2010-12-03 09:45:00,1.25",
        "C536381,22962,-3,2010-12-03 09:45:00,0",
    );
    let path = write(&dir, "free.csv", free.as_bytes());
    let out = ingest(&orders_source(path, r#"InvoiceNo starts_with "C""#).unwrap()).unwrap();
    assert!(
        quarantine_rows(&out).contains(&(
            7,
            "amount".to_string(),
            "a refund (`refund_when`) of amount 0".to_string()
        )),
        "{:?}",
        quarantine_rows(&out)
    );
    assert!(
        !order_rows(&out.events)
            .iter()
            .any(|(_, order, _)| order == "C536381")
    );
}

#[test]
fn a_refund_test_of_a_number_on_text_quarantines_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "orders.csv", ORDERS.as_bytes());
    // Invoice numbers are text where they start with `C`: no test of them as numbers
    // says whether those lines are refunds.
    let out = ingest(&orders_source(path, "InvoiceNo > 536370").unwrap()).unwrap();
    let quarantined = quarantine_rows(&out);
    let said = "`InvoiceNo` \"C536379\" is not a number (`refund_when` compares it)";
    assert!(
        quarantined.contains(&(5, "amount".to_string(), said.to_string())),
        "{quarantined:?}"
    );
    assert_eq!(quarantined.len(), 3, "{quarantined:?}");
    assert_eq!(out.stats.kept, 4);
    // Where a text test decides, the number test's text does not matter.
    let path = dir.path().join("orders.csv");
    let either = r#"InvoiceNo starts_with "C" or InvoiceNo < 0"#;
    let out = ingest(&orders_source(path, either).unwrap()).unwrap();
    let quarantined = quarantine_rows(&out);
    assert!(
        quarantined
            .iter()
            .all(|(_, _, why)| !why.contains("is not a number")),
        "{quarantined:?}"
    );
}

#[test]
fn refund_conditions_are_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "orders.csv", ORDERS.as_bytes());
    let err = orders_source(path.clone(), r#"InvoiceNo starts_with C"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`refund_when`: unexpected `C` at column 23, expected a quoted text such as \"C\""
    );
    let err = orders_source(path.clone(), "Quantity").unwrap_err();
    assert!(
        err.to_string().contains("is a number, not a condition"),
        "{err}"
    );
    let source = orders_source(path, r#"Invoice starts_with "C""#).unwrap();
    let err = ingest(&source).unwrap_err().to_string();
    assert!(
        err.contains("Invoice") && err.contains("InvoiceNo"),
        "{err}"
    );
}

#[test]
fn orders_survive_out_of_core_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "orders.csv", ORDERS.as_bytes());
    let source = orders_source(path, "Quantity < 0").unwrap();
    let memory = ingest(&source).unwrap();
    let parts_dir = dir.path().join("parts");
    let plan = spill::Plan {
        dir: parts_dir.join("spill"),
        partitions: 2,
        chunk_rows: 2,
    };
    let disk = ingest_out_of_core(&source, &parts_dir, plan, u64::MAX, &mut |_, _| {}).unwrap();
    assert_eq!(disk.stats, memory.stats);
    assert_eq!(
        order_rows(&parts_as_one(&disk.events)),
        order_rows(&memory.events)
    );

    // The same lines as JSON, the order id and the quantity nested.
    let mut json = String::new();
    for line in ORDERS.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        json.push_str(&format!(
            r#"{{"invoice":{{"no":"{}","date":"{}"}},"item":"{}","qty":{},"price":{},"customer":"{}"}}"#,
            f[0],
            f[3],
            f[1],
            f[2],
            if f[4].is_empty() { "null" } else { f[4] },
            f[5]
        ));
        json.push('\n');
    }
    let path = write(&dir, "orders.ndjson", json.as_bytes());
    let params: SourceParams = toml::from_str(
        r#"
        path = "placeholder"
        user_id_format = "integer"
        refund_when = "qty < 0"
        [columns]
        user_id = "customer"
        event_time = "invoice.date"
        item_id = "item"
        order_id = "invoice.no"
        event_type = { constant = "purchase" }
        amount = { expr = "qty * price" }
        "#,
    )
    .unwrap();
    let source = SourceParams { path, ..params }.check().unwrap();
    let out = ingest(&source).unwrap();
    assert_eq!(out.stats.quarantined, 1);
    assert_eq!(order_rows(&out.events), order_rows(&memory.events));
}

#[test]
fn an_order_id_column_is_read_by_its_canonical_name_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "user_id,event_time,event_type,order_id\nu1,2026-01-01,purchase,A\n";
    let path = write(&dir, "canonical.csv", csv.as_bytes());
    let out = ingest(&SourceParams::canonical(path).check().unwrap()).unwrap();
    let orders = out
        .events
        .column("order_id")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    assert_eq!(orders.iter().collect::<Vec<_>>(), [Some("A")]);
    let csv = "user_id,event_time,event_type\nu1,2026-01-01,purchase\n";
    let path = write(&dir, "plain.csv", csv.as_bytes());
    let out = ingest(&SourceParams::canonical(path).check().unwrap()).unwrap();
    assert!(out.events.column("order_id").is_err());
}

#[test]
fn lines_of_one_amount_from_other_quantities_are_not_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID
536365,85123A,2,2010-12-01 08:26:00,5,17850.0
536365,85123A,5,2010-12-01 08:26:00,2,17850.0
536365,85123A,10,2010-12-01 08:26:00,1,17850.0
536365,85123A,2,2010-12-01 08:26:00,5,17850.0
536365,85123A,2\u{A0},2010-12-01 08:26:00,5,17850.0
";
    let path = write(&dir, "retail.csv", text.as_bytes());
    let source = line_items(path, r#"{ expr = "Quantity * UnitPrice" }"#).unwrap();
    let out = ingest(&source).unwrap();
    // Three purchases of 10 from different quantities; only the repeats go (one
    // with a no-break space after its quantity, read without it).
    assert_eq!((out.stats.kept, out.stats.duplicates), (3, 2));
    let d = out.not_kept(10).unwrap().next().unwrap().unwrap();
    let reason = d.column("reason").unwrap().str().unwrap().get(0);
    assert_eq!(
        reason,
        Some("a duplicate of line 2: the same in every column read")
    );
}
