//! `squizzle init`: writes squizzle.toml, adopting an existing drizzle-kit folder.

use squizzle_test_support::World;

#[test]
fn init_adopts_an_existing_drizzle_folder() {
    let w = World::new();
    w.copy_dokploy("drizzle");

    w.run(&["init"])
        .success()
        .stdout_has("Found a drizzle-kit folder: drizzle");

    let toml = w.read_string("squizzle.toml");
    assert!(toml.contains("migrations = \"drizzle\""), "{toml}");
    assert!(toml.contains("format = \"drizzle\""), "{toml}");
    assert!(
        w.path("db/tarballs").is_dir(),
        "init creates the tarballs folder"
    );
    assert!(
        !w.exists("migrations"),
        "no migrations/ folder when drizzle/ is adopted"
    );

    // The written configuration is immediately usable.
    let report = w.build_ok("0.1.0");
    assert_eq!(report["migrations"], 186);
    assert_eq!(report["format"], "drizzle");
}

#[test]
fn init_finds_a_nested_drizzle_folder_but_not_one_in_node_modules() {
    let w = World::new();
    w.copy_dokploy("node_modules/some-lib/drizzle");
    w.copy_dokploy("packages/db/drizzle");

    let report = w.run(&["init", "--output", "json"]).success().json();
    assert_eq!(report["migrations"], "packages/db/drizzle");
    assert_eq!(report["drizzle"], true);
    assert_eq!(
        report["alsoFound"],
        serde_json::json!([]),
        "node_modules is never searched"
    );
    assert!(
        w.read_string("squizzle.toml")
            .contains("migrations = \"packages/db/drizzle\"")
    );
}

#[test]
fn init_without_a_drizzle_folder_creates_migrations() {
    let w = World::new();

    w.run(&["init"])
        .success()
        .stdout_has("Migrations go in migrations/");

    assert!(w.path("migrations").is_dir());
    assert!(w.path("db/tarballs").is_dir());
    let toml = w.read_string("squizzle.toml");
    assert!(toml.contains("migrations = \"migrations\""), "{toml}");
    assert!(toml.contains("format = \"auto\""), "{toml}");
    assert!(toml.contains("require_signature = false"), "{toml}");

    // A first migration in the new folder builds.
    w.write("migrations/0001_init.sql", "CREATE TABLE t (id int);\n");
    let report = w.build_ok("0.1.0");
    assert_eq!(report["migrations"], 1);
    assert_eq!(report["format"], "plain");
}

#[test]
fn init_reports_what_it_created_as_json() {
    let w = World::new();
    let report = w.run(&["init", "--output", "json"]).success().json();
    assert_eq!(report["migrations"], "migrations");
    assert_eq!(report["drizzle"], false);
    let config = report["config"].as_str().unwrap();
    assert!(config.ends_with("squizzle.toml"), "{config}");
    let created: Vec<&str> = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created[0].ends_with("migrations"), "{created:?}");
    assert!(created[1].ends_with("db/tarballs"), "{created:?}");
}

#[test]
fn init_refuses_to_overwrite_an_existing_config_without_force() {
    let w = World::new();
    w.config("# my hand-written config\n[project]\nmigrations = \"sql\"\n");

    w.run(&["init"])
        .code(2)
        .says("already exists")
        .says("--force");
    assert!(
        w.read_string("squizzle.toml")
            .starts_with("# my hand-written config"),
        "the existing file is untouched"
    );

    w.run(&["init", "--force"]).success();
    let toml = w.read_string("squizzle.toml");
    assert!(
        !toml.contains("my hand-written config"),
        "--force overwrites: {toml}"
    );
    assert!(toml.contains("migrations = \"migrations\""), "{toml}");
}

#[test]
fn init_refusal_is_a_json_error_in_json_mode() {
    let w = World::new();
    w.config("[project]\n");
    let err = w.run(&["init", "--output", "json"]).code(2).json();
    assert_eq!(err["error"]["kind"], "usage");
    assert_eq!(err["error"]["code"], 2);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{err}"
    );
}

#[test]
fn init_with_migrations_uses_the_given_folder() {
    let w = World::new();
    // Even with a drizzle folder present, an explicit --migrations wins.
    w.copy_dokploy("drizzle");

    w.run(&["init", "--migrations", "db/sql/"]).success();

    assert!(w.path("db/sql").is_dir(), "the given folder is created");
    let toml = w.read_string("squizzle.toml");
    assert!(
        toml.contains("migrations = \"db/sql\""),
        "trailing slash dropped: {toml}"
    );
    assert!(toml.contains("format = \"auto\""), "{toml}");
}

#[test]
fn init_with_migrations_pointing_at_a_drizzle_folder_marks_it_drizzle() {
    let w = World::new();
    w.copy_dokploy("schema/out");
    let report = w
        .run(&["init", "--migrations", "schema/out", "--output", "json"])
        .success()
        .json();
    assert_eq!(report["drizzle"], true);
    assert!(
        w.read_string("squizzle.toml")
            .contains("format = \"drizzle\"")
    );
}

#[test]
fn init_refuses_a_migrations_folder_outside_the_project() {
    let w = World::new();
    w.run(&["init", "--migrations", "../elsewhere"])
        .code(2)
        .says("--migrations")
        .says("inside the project");
    assert!(!w.exists("squizzle.toml"));
    w.run(&["init", "--migrations", "/abs/path"])
        .code(2)
        .says("inside the project");
    assert!(!w.exists("squizzle.toml"));
}

#[test]
fn init_dir_initialises_another_folder() {
    let w = World::new();
    std::fs::create_dir_all(w.path("app")).unwrap();
    w.run(&["init", "--dir", "app"]).success();
    assert!(w.exists("app/squizzle.toml"));
    assert!(w.path("app/migrations").is_dir());
    assert!(!w.exists("squizzle.toml"));
}
