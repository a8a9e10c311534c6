//! `squizzle lint`: findings about what the SQL of new or edited migrations
//! does, in text, JSON (schemas/lint.v1.schema.json) and SARIF 2.1.0, on a
//! plain project with hostile SQL and on the real dokploy history.

use serde_json::Value;
use squizzle_test_support::World;

fn valid(doc: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/lint.v1.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
}

#[test]
fn lint_reports_only_new_or_edited_migrations_with_ids_lines_and_sarif() {
    let w = World::plain();
    w.build_ok("1.0.0");
    // Released and unchanged: never analysed again, even if it looks bad.
    let j = w.run(&["lint", "--output", "json"]).success().json();
    valid(&j);
    assert_eq!(j["analysed"], serde_json::json!([]));
    assert_eq!(j["findings"], serde_json::json!([]));

    w.write(
        "migrations/0004_hostile.sql",
        "-- DROP TABLE users;\nSELECT 'TRUNCATE orders';\nCREATE INDEX users_email ON users (email);\n\
         ALTER TABLE \"users\" DROP COLUMN \"email\";\nWITH x AS (DELETE FROM orders RETURNING id) SELECT 1;\n\
         DO $$ BEGIN IF true THEN DROP TABLE users; END IF; END $$;\n\
         CREATE TABLE fresh (id int);\nCREATE INDEX fresh_id ON fresh (id);\n",
    );
    let j = w
        .run(&["lint", "1.1.0", "--output", "json", "--sarif", "out.sarif"])
        .success()
        .json();
    valid(&j);
    assert_eq!(j["previous"]["version"], "1.0.0");
    assert_eq!(
        j["analysed"],
        serde_json::json!(["migrations/0004_hostile.sql"])
    );
    let got: Vec<(String, u64)> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("create-index-blocking".to_owned(), 3),
            ("drop-column".to_owned(), 4),
            ("delete-without-where".to_owned(), 5),
            ("not-analysed".to_owned(), 6),
        ]
    );
    let sarif: Value = serde_json::from_slice(&w.read("out.sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[1]["ruleId"], "drop-column");
    assert_eq!(results[1]["level"], "error");
    assert_eq!(
        results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "migrations/0004_hostile.sql"
    );
    assert_eq!(
        results[1]["locations"][0]["physicalLocation"]["region"]["startLine"],
        4
    );
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    for r in results {
        assert!(rules.iter().any(|x| x["id"] == r["ruleId"]), "{r}");
    }

    // Text names file, line, id and the safer way.
    w.run(&["lint"])
        .success()
        .stdout_has(
            "migrations/0004_hostile.sql:4: DROP COLUMN deletes the column's data [drop-column]",
        )
        .stdout_has("  safer: stop reading and writing the column");

    // An edited released migration is analysed again.
    w.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users RENAME COLUMN name TO full_name;\n",
    );
    let j = w.run(&["lint", "--output", "json"]).success().json();
    assert_eq!(j["findings"][0]["id"], "rename-column");
    assert_eq!(j["findings"][0]["path"], "migrations/0002_add_email.sql");
}

#[test]
fn lint_of_the_whole_dokploy_history_finds_no_false_destructive_statement() {
    let w = World::dokploy();
    let j = w
        .run(&["lint", "--previous", "none", "--output", "json"])
        .success()
        .json();
    valid(&j);
    let findings = j["findings"].as_array().unwrap();
    assert_eq!(j["analysed"].as_array().unwrap().len(), 186);
    let count = |id: &str| findings.iter().filter(|f| f["id"] == id).count();
    // The same reviewed set as the unit test on the fixture (ops::analysis).
    assert_eq!(count("drop-column"), 47);
    assert_eq!(count("drop-table"), 4);
    assert_eq!(count("drop-type"), 1);
    assert_eq!(count("update-without-where"), 11);
    assert_eq!(count("rename-column"), 11);
    assert_eq!(count("rename-table"), 2);
    assert_eq!(count("not-analysed"), 1);
    assert_eq!(findings.len(), 77);
}

#[test]
fn lint_exits_9_only_when_deny_names_a_finding_and_refuses_unknown_names() {
    let w = World::plain();
    w.build_ok("1.0.0");
    // Clean change: 0 even with a deny list.
    w.write(
        "migrations/0004_note.sql",
        "ALTER TABLE orders ADD COLUMN note text;\n",
    );
    let j = w
        .run(&["lint", "--deny", "destructive", "--output", "json"])
        .success()
        .json();
    valid(&j);
    assert_eq!(j["denied"], 0);
    w.write(
        "migrations/0005_drop.sql",
        "ALTER TABLE users DROP COLUMN email;\nCREATE INDEX orders_user ON orders (user_id);\n",
    );
    // Findings alone do not fail the lint.
    w.run(&["lint"]).success().says("[drop-column]");
    // A list that names one of them does: exit 9, in text and JSON.
    w.run(&["lint", "--deny", "destructive"])
        .code(9)
        .stderr_has("1 of the findings are denied by --deny destructive");
    let j = w
        .run(&[
            "lint",
            "--fail-on",
            "blocking,drop-column",
            "--output",
            "json",
        ])
        .code(9)
        .json();
    valid(&j);
    assert_eq!(j["denied"], 2);
    assert_eq!(j["deny"], serde_json::json!(["blocking", "drop-column"]));
    // A list naming none of them passes; SARIF is still written.
    w.run(&[
        "lint",
        "--deny",
        "rename-table,truncate",
        "--sarif",
        "x.sarif",
    ])
    .success();
    assert!(w.exists("x.sarif"));
    w.run(&["lint", "--deny", "destructiv"])
        .code(2)
        .stderr_has("\"destructiv\" is neither a finding category nor a finding id");
}
