//! Tests of the rules: parsing, type checks, evaluation on a features table.

use super::*;

fn err(text: &str) -> String {
    parse_rule("r", text).unwrap_err().to_string()
}

fn table() -> DataFrame {
    df! {
        "user_id" => ["c", "a", "b", "d"],
        "recency_days" => [Some(90.0), Some(10.0), None, Some(61.0)],
        "frequency" => [Some(2.0), Some(5.0), Some(1.0), Some(0.0)],
        "monetary" => [Some(50.0), Some(500.0), Some(0.0), Some(0.0)],
        "top_category" => ["books", "games", "books", "toys"],
    }
    .unwrap()
}

fn run(text: &str) -> Vec<bool> {
    let rule = parse_rule("r", text).unwrap();
    let out = apply(&[rule], &table()).unwrap();
    out.column("r")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

#[test]
fn syntax_errors_name_the_column_and_what_was_expected() {
    assert_eq!(
        parse_rule(
            "churn_risk",
            "days_since_last_event > > 60 and purchases > 0"
        )
        .unwrap_err()
        .to_string(),
        "rule `churn_risk`: unexpected `>` at column 25, expected a number or a feature name"
    );
    assert_eq!(
        err("frequency >"),
        "rule `r`: unexpected end of the rule at column 12, expected a number or a feature name"
    );
    assert_eq!(
        err("(frequency > 1"),
        "rule `r`: unexpected end of the rule at column 15, expected an operator or `)` to close the `(` at column 1"
    );
    assert_eq!(
        err("frequency > 1)"),
        "rule `r`: unexpected `)` at column 14, expected an operator or the end of the rule (this `)` closes nothing)"
    );
    assert_eq!(
        err("frequency 5 > 1"),
        "rule `r`: unexpected `5` at column 11, expected an operator or the end of the rule"
    );
    assert_eq!(
        err("a > 1 > 2"),
        "rule `r`: unexpected `>` at column 7, expected an operator or the end of the rule"
    );
    assert_eq!(
        err("a > 1 && b < 2"),
        "rule `r`: unexpected character `&` at column 7, write `and` instead"
    );
    assert_eq!(
        err("a = 1"),
        "rule `r`: unexpected character `=` at column 3, write `==` to compare"
    );
    assert_eq!(
        err("a > $5"),
        "rule `r`: unexpected character `$` at column 5"
    );
    assert_eq!(
        err("user.plan == 1"),
        "rule `r`: unexpected character `.` at column 5, write a name holding a dot \
         between backticks: `properties.price`"
    );
    assert_eq!(
        err("a > 1e999"),
        "rule `r`: number `1e999` at column 5 is too large"
    );
    assert_eq!(err("   "), "rule `r` is empty");
    // Columns count characters, not bytes.
    assert_eq!(
        err("prix_é > > 1"),
        "rule `r`: unexpected `>` at column 10, expected a number or a feature name"
    );
}

#[test]
fn arithmetic_that_gives_no_number_is_missing_and_tiny_divisors_divide() {
    // frequency: 2, 5, 1, 0. inf - inf is no number: the rule does not hold.
    let huge = "frequency * 1e308 * 10";
    assert_eq!(run(&format!("{huge} - {huge} > 0")), [false; 4]);
    let same = run(&format!("{huge} - {huge} == {huge} - {huge}"));
    assert_eq!(same, [false, false, false, true]);
    // A divisor whose reciprocal is infinite, or one written as nonzero that a
    // float holds as zero, is refused as written.
    assert_eq!(
        err("frequency / 5e-324 > 0"),
        "rule `r`: number `5e-324` at column 13 is too small"
    );
    assert_eq!(
        err("frequency * 1e-400 > 0"),
        "rule `r`: number `1e-400` at column 13 is too small"
    );
    assert_eq!(run("frequency / 2.5e-308 > 1"), [true, true, true, false]);
    assert_eq!(run("frequency * 0e5 < 1"), [true; 4]);
}

#[test]
fn a_rule_reading_a_feature_as_the_wrong_type_is_refused_before_any_data() {
    let check = |text: &str| {
        let rule = parse_rule("r", text).unwrap();
        check_names([&rule]).map_err(|e| e.to_string())
    };
    let refused = [
        (
            "user_id > 3",
            "feature `user_id` at column 1 is text, not a number",
        ),
        (
            "top_category > 3",
            "feature `top_category` at column 1 is text, not a number",
        ),
        (
            "recency_days == \"5\"",
            "feature `recency_days` at column 1 is a number, not text",
        ),
    ];
    for (text, says) in refused {
        assert!(
            check(text).is_err_and(|e| e.ends_with(says)),
            "{text}: {:?}",
            check(text)
        );
    }
    for text in [
        "top_category == \"books\"",
        "user_plan == \"pro\"",
        "user_age > 30",
    ] {
        assert_eq!(check(text), Ok(()), "{text}");
    }
}

#[test]
fn type_errors_say_what_was_found() {
    assert_eq!(
        err("frequency + 1"),
        "rule `r`: `frequency + 1` at column 1 is a number, not a condition; compare it, e.g. `frequency + 1 > 0`"
    );
    assert_eq!(
        err("a > 1 and b"),
        "rule `r`: `b` at column 11 is a number, not a condition; compare it, e.g. `b > 0`"
    );
    assert_eq!(
        err("not (a)"),
        "rule `r`: `(a)` at column 5 is a number, not a condition; compare it, e.g. `(a) > 0`"
    );
    assert_eq!(
        err("(a > 1) + 2 > 0"),
        "rule `r`: `(a > 1)` at column 1 is a condition, not a number"
    );
}

#[test]
fn names_are_checked() {
    assert_eq!(
        parse_rule("churn risk", "a > 1").unwrap_err().to_string(),
        "rule name `churn risk` must start with a letter or `_` and hold only letters, digits and `_`"
    );
    assert_eq!(
        parse_rule("user_id", "a > 1").unwrap_err().to_string(),
        "rule name `user_id` is reserved"
    );
    assert_eq!(
        parse_rules([("x", "a > 1"), ("x", "a < 1")])
            .unwrap_err()
            .to_string(),
        "rule `x` is defined twice"
    );
}

#[test]
fn a_rule_decides_alike_for_one_user_and_for_many() {
    // 460 / 100 is 4.6 exactly, 460 times 1/100 is 4.6000000000000005.
    let rule = parse_rule("r", "monetary / 100 > 4.6").unwrap();
    let decided = |users: &[&str]| {
        let n = users.len();
        let features = df! {"user_id" => users, "monetary" => vec![460.0; n]}.unwrap();
        let out = apply(std::slice::from_ref(&rule), &features).unwrap();
        out.column("r").unwrap().bool().unwrap().get(0)
    };
    assert_eq!(decided(&["a"]), decided(&["a", "b", "c"]));
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    // Each text is within `MAX_RULE_BYTES`, so the depth limit is what refuses it.
    let text = format!("{}a > 1{}", "(".repeat(2000), ")".repeat(2000));
    assert!(err(&text).contains("nests too deeply at column 101"));
    let text = format!("{}a > 1", "not ".repeat(1000));
    assert!(err(&text).contains("nests too deeply"));
    let text = format!("{}a > 1", "-".repeat(4000));
    assert!(err(&text).contains("nests too deeply"));
    // Parentheses around chains still nest.
    let text = format!("{}a > 1{}", "(a > 1 or ".repeat(150), ")".repeat(150));
    assert!(err(&text).contains("nests too deeply"));
}

#[test]
fn a_flat_chain_is_not_nesting() {
    // 101 terms: one past the old limit, which counted each `and` as a level.
    let chain = vec!["frequency > 0"; 101].join(" and ");
    let rule = parse_rule("r", &chain).unwrap();
    assert_eq!(rule.features().collect::<Vec<_>>(), ["frequency"]);
    assert_eq!(run(&chain), [true, true, true, false]);
    // The longest chain that fits in a rule evaluates without deep recursion.
    let term = "monetary>=0";
    let n = (MAX_RULE_BYTES - 32) / (term.len() + 4);
    let long = format!("{} or frequency == 2", vec![term; n].join(" or "));
    assert!(long.len() <= MAX_RULE_BYTES);
    assert_eq!(run(&long), [true, true, true, true]);
    // Unknown propagates through a long chain: b has no recency.
    let unknown = vec!["recency_days>0"; 200].join(" and ");
    assert_eq!(run(&unknown), [true, false, true, true]);
    // Mixed chains keep precedence: `and` binds tighter than `or`.
    let mixed = format!(
        "{} or frequency == 5 and monetary > 100",
        vec!["frequency > 100"; 200].join(" or ")
    );
    assert_eq!(run(&mixed), [true, false, false, false]);
    // Type errors inside a chain still name the offending term.
    let bad = format!("{} and frequency", vec!["a > 1"; 150].join(" and "));
    assert_eq!(
        err(&bad),
        "rule `r`: `frequency` at column 1501 is a number, not a condition; compare it, e.g. `frequency > 0`"
    );
}

#[test]
fn long_rules_are_refused_before_parsing() {
    let text = format!("a > 1 {}", " ".repeat(5000 - 6));
    assert_eq!(
        err(&text),
        "rule `r` is 5000 bytes long, more than the 4096 allowed"
    );
    let fits = format!("a > 1{}", " ".repeat(MAX_RULE_BYTES - 5));
    assert!(parse_rule("r", &fits).is_ok());
}

#[test]
fn too_many_rules_are_refused() {
    let names: Vec<String> = (0..=MAX_RULES).map(|i| format!("r{i}")).collect();
    let rules = names.iter().map(|n| (n.as_str(), "a > 1"));
    assert_eq!(
        parse_rules(rules.clone()).unwrap_err().to_string(),
        "`rules` has 257 rules, more than the 256 allowed"
    );
    assert_eq!(parse_rules(rules.take(MAX_RULES)).unwrap().len(), MAX_RULES);
}

#[test]
fn evaluates_on_the_features_table_sorted_by_user() {
    let rule = parse_rule("churn_risk", "recency_days > 60 and frequency > 0").unwrap();
    let out = apply(&[rule], &table()).unwrap();
    let ids: Vec<&str> = out
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert_eq!(out.get_column_names(), ["user_id", "churn_risk"]);
    // Sorted users a, b, c, d.
    assert_eq!(
        run("recency_days > 60 and frequency > 0"),
        [false, false, true, false]
    );
    assert_eq!(
        run("recency_days >= 61 or frequency == 5"),
        [true, false, true, true]
    );
    assert_eq!(run("not recency_days > 60"), [true, false, false, false]);
    assert_eq!(run("monetary / frequency > 20"), [true, false, true, false]);
    assert_eq!(run("-frequency * 2 + 10 <= 6"), [true, false, true, false]);
    assert_eq!(
        run("frequency != 1 and (1 - 2) * 3 < -2.5"),
        [true, false, true, true]
    );
    assert_eq!(
        run("recency_days < 0 or monetary >= .5e2"),
        [true, false, true, false]
    );
}

#[test]
fn a_rule_a_table_cannot_evaluate_leaves_the_others() {
    // `user_age` is a users-table column the features at a cutoff leave out.
    let rules = [
        parse_rule("old", "user_age > 30").unwrap(),
        parse_rule("lapsing", "recency_days > 60").unwrap(),
    ];
    let (applied, refused) = apply_each(&rules, &table());
    assert_eq!(applied.unwrap().get_column_names(), ["user_id", "lapsing"]);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, "old");
    assert!(
        refused[0]
            .1
            .to_string()
            .starts_with("rule `old`: unknown feature `user_age`")
    );
    assert!(apply(&rules, &table()).is_err());
}

#[test]
fn missing_values_are_unknown_and_end_false() {
    // b has no recency: unknown, and unknown or true is true.
    assert_eq!(run("recency_days > 0"), [true, false, true, true]);
    assert_eq!(run("not (recency_days > 0)"), [false, false, false, false]);
    assert_eq!(
        run("recency_days > 0 or frequency == 1"),
        [true, true, true, true]
    );
    // d has frequency 0: division by zero is unknown.
    assert_eq!(run("monetary / frequency >= 0"), [true, true, true, false]);
}

#[test]
fn unknown_features_get_a_suggestion() {
    let rule = parse_rule("churn_risk", "recency_dayz > 60 and frequency > 0").unwrap();
    assert_eq!(
        apply(&[rule], &table()).unwrap_err().to_string(),
        "rule `churn_risk`: unknown feature `recency_dayz` at column 1, did you mean `recency_days`?"
    );
    let rule = parse_rule("r", "recency > 30").unwrap();
    assert_eq!(
        apply(&[rule], &table()).unwrap_err().to_string(),
        "rule `r`: unknown feature `recency` at column 1, did you mean `recency_days`?"
    );
    let rule = parse_rule("r", "frequency > 0 and zzz > 1").unwrap();
    assert_eq!(
        apply(&[rule], &table()).unwrap_err().to_string(),
        "rule `r`: unknown feature `zzz` at column 19"
    );
    let rule = parse_rule("r", "top_category > 1").unwrap();
    assert_eq!(
        apply(&[rule], &table()).unwrap_err().to_string(),
        "rule `r`: feature `top_category` at column 1 is str, not a number"
    );
    let rule = parse_rule("r", r#"frequency starts_with "1""#).unwrap();
    assert_eq!(
        apply(&[rule], &table()).unwrap_err().to_string(),
        "rule `r`: feature `frequency` at column 1 is f64, not text"
    );
}

#[test]
fn text_tests_compare_text_features() {
    // users c, a, b, d sorted: a games, b books, c books, d toys
    assert_eq!(
        run(r#"top_category == "books""#),
        [false, true, true, false]
    );
    assert_eq!(
        run(r#"top_category starts_with "t" or frequency > 4"#),
        [true, false, false, true]
    );
    assert_eq!(
        run(r#"top_category ends_with "oks" and monetary > 10"#),
        [false, false, true, false]
    );
}

#[test]
fn lists_features_once_in_order() {
    let rule = parse_rule("r", "b > a and (a + c) / b < 1").unwrap();
    assert_eq!(rule.features().collect::<Vec<_>>(), ["b", "a", "c"]);
    assert_eq!(rule.name(), "r");
    assert_eq!(rule.text(), "b > a and (a + c) / b < 1");
}

#[test]
fn never_panics_on_odd_input() {
    for text in [
        "(",
        ")",
        "((",
        "not",
        "-",
        "- -",
        ".",
        "1.",
        "1e",
        "1e+",
        "a >= -",
        "a\u{0} > 1",
        "> 1",
        "a > 1 or",
        "or a > 1",
        "()",
        "a > (1",
        "a ! b",
    ] {
        assert!(parse_rule("r", text).is_err(), "{text}");
    }
    assert!(parse_rule("r", "a > 1.").is_ok());
    // A category's share column may hold any letter.
    assert!(parse_rule("r", "é > 1").is_ok());
    assert!(parse_rule("r", "1e3 < a").is_ok());
}

#[test]
fn a_division_divides_and_a_long_sum_is_one_pass() {
    let table = df! {
        "user_id" => ["a", "b", "c"],
        "events" => [49.0, 48.0, 98.0],
    }
    .unwrap();
    let held = |text: &str| -> Vec<bool> {
        let out = apply(&[parse_rule("r", text).unwrap()], &table).unwrap();
        let flags = out.column("r").unwrap().bool().unwrap().clone();
        flags.iter().map(|v| v.unwrap()).collect()
    };
    // Times the reciprocal of 49, 49 falls short of 1.
    assert_eq!(held("events / 49 >= 1"), [true, false, true]);
    assert_eq!(held("events / 49 == 1"), [true, false, false]);
    // Forty terms: each term is evaluated once, however long the sum.
    let sum = vec!["events"; 40].join(" + ");
    assert_eq!(held(&format!("{sum} == events * 40")), [true; 3]);
}
