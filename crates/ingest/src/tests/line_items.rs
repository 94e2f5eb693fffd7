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
fn derived_columns_are_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "retail.csv", EXPORT.as_bytes());
    let err = line_items(path.clone(), r#"{ expr = "Quantity * " }"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`columns.amount`: unexpected end of the expression at column 11, expected a number or a feature name"
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
