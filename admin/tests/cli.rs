//! The `cleave-admin` binary: data on stdout, errors on stderr, exit codes by kind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use sqlx::PgPool;

fn admin(database: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cleave-admin"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        // Analytics in the test's own Postgres, whatever the shell names.
        .env_remove("CLEAVE_ANALYTICS_URL")
        .env("RUST_LOG", "warn");
    if let Some(url) = database {
        command.env("DATABASE_URL", url);
    }
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap()
}

/// The URL of the per-test database `pool` is connected to.
fn url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let name = pool.connect_options().get_database().unwrap().to_owned();
    let cut = base.rfind('/').unwrap();
    format!("{}/{name}", &base[..cut])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_needs_no_database() {
    let out = admin(None, &["validate", "config-snapshots/demo.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("config-snapshots/demo.json: ok (environment demo"));
    let out = admin(None, &["validate", "README.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("snapshot is not valid JSON"));
}

#[test]
fn a_missing_database_url_is_a_clear_error() {
    let out = admin(None, &["environments", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("DATABASE_URL is not set"));
}

#[sqlx::test(migrations = "./migrations")]
async fn operations_and_exit_codes(pool: PgPool) {
    let url = url_of(&pool);
    let url = url.as_str();
    let out = admin(Some(url), &["environments", "create", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["name"], "prod");
    let out = admin(Some(url), &["environments", "create", "prod"]);
    assert_eq!(out.status.code(), Some(4), "conflict");
    assert!(text(&out.stderr).contains("already exists"));
    let out = admin(Some(url), &["publish", "--env", "nope"]);
    assert_eq!(out.status.code(), Some(3), "not found");
    assert!(text(&out.stderr).contains("no environment named \"nope\""));
    let out = admin(
        Some(url),
        &["experiments", "create", "--env", "prod", "--key", "Bad Key"],
    );
    assert_eq!(out.status.code(), Some(5), "invalid");
    assert!(text(&out.stderr).contains("key: \"Bad Key\" does not match"));
    let out = admin(
        Some(url),
        &["experiments", "create", "--env", "prod", "--key", "exp"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let exp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = exp["id"].as_str().unwrap();
    let out = admin(Some(url), &["experiments", "set-status", id, "paused"]);
    assert_eq!(out.status.code(), Some(4));
    let dir = std::env::temp_dir().join(format!("cleave-cli-{}", uuid::Uuid::new_v4()));
    let dir_arg = dir.to_str().unwrap();
    let out = admin(
        Some(url),
        &[
            "--sink",
            "file",
            "--sink-dir",
            dir_arg,
            "publish",
            "--env",
            "prod",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let published: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(published["version"], 1);
    assert!(dir.join("prod.json").exists());
    let out = admin(
        Some(url),
        &[
            "--sink",
            "file",
            "--sink-dir",
            dir_arg,
            "rollback",
            "--env",
            "prod",
            "--to",
            "7",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let out = admin(
        Some(url),
        &["--sink", "cloudflare", "publish", "--env", "prod"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the cloudflare sink needs CF_ACCOUNT_ID"));
    let out_file = dir.join("compiled.json");
    let out = admin(
        Some(url),
        &[
            "compile",
            "--env",
            "prod",
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let compiled: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(
        compiled["version"], 2,
        "compile shows the version a publish would create"
    );
    let out = admin(Some(url), &["audit"]);
    let audit: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(audit
        .iter()
        .any(|e| e["action"] == "environment.publish" && e["actor"] == "cli"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn force_token_mints_a_token_the_engine_accepts() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cleave-admin"));
    let out = command
        .args([
            "force-token",
            "--env",
            "prod",
            "--ttl",
            "600",
            "checkout=treatment",
            "hero=b",
        ])
        .env_remove("DATABASE_URL")
        .env("CLEAVE_SIGNING_KEY", "qa-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let now = i64::try_from(std::time::UNIX_EPOCH.elapsed().unwrap().as_millis()).unwrap();
    let keys = cleave_core::signing_keys::SigningKeys::derive(b"qa-key").unwrap();
    let max = cleave_core::force::DEFAULT_MAX_LIFETIME_MS;
    let verify =
        |key: &[u8], env: &str, at: i64| cleave_core::force::verify(key, &token, env, at, max);
    let forced = verify(&keys.force, "prod", now).unwrap();
    assert_eq!(
        forced.get("checkout").map(String::as_str),
        Some("treatment")
    );
    assert_eq!(forced.get("hero").map(String::as_str), Some("b"));
    assert!(verify(&keys.force, "prod", now + 601_000).is_err());
    assert!(
        verify(&keys.force, "staging", now).is_err(),
        "good in its environment only"
    );
    assert!(
        verify(b"qa-key", "prod", now).is_err(),
        "not signed with the secret itself"
    );
    assert!(
        verify(&keys.headers, "prod", now).is_err(),
        "nor with the origins' key"
    );

    let out = admin(
        None,
        &["force-token", "--env", "prod", "checkout=treatment"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("CLEAVE_SIGNING_KEY is not set"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_cleave-admin"));
    let out = command
        .args(["force-token", "--env", "prod", "--ttl", "700000", "a=b"])
        .env_remove("DATABASE_URL")
        .env("CLEAVE_SIGNING_KEY", "qa-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "longer than 7 days is refused");
    assert!(
        text(&out.stderr).contains("maximum lifetime"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn header_key_prints_the_derived_key_origins_verify_with() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cleave-admin"));
    let out = command
        .args(["header-key"])
        .env_remove("DATABASE_URL")
        .env("CLEAVE_SIGNING_KEY", "e2e-signing-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout).trim().to_owned();
    // HKDF-SHA256 of the secret under the headers label, as an origin recomputes it.
    assert_eq!(
        printed,
        "cb9ede1190dc0bd0abfcbfef9adbe08387cd975eeefa89719126900f42511ba3"
    );
    assert!(!printed.contains("e2e-signing-key"));
}

/// Runs `audit verify` and returns its exit code and report.
fn verify(url: &str) -> (Option<i32>, serde_json::Value) {
    let out = admin(Some(url), &["audit", "verify"]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code(), report)
}

/// Changes `audit_log` behind the admin's back, as a database owner could.
async fn tamper(pool: &PgPool, sql: &str) {
    sqlx::query("alter table audit_log disable trigger audit_log_no_update")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(sql).execute(pool).await.unwrap();
    sqlx::query("alter table audit_log enable trigger audit_log_no_update")
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = "./migrations")]
async fn audit_verify_detects_edited_and_deleted_entries(pool: PgPool) {
    let url = url_of(&pool);
    let url = url.as_str();
    for env in ["prod", "staging", "qa", "dev"] {
        let out = admin(Some(url), &["environments", "create", env]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let (code, report) = verify(url);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["entries"], 4);
    assert_eq!(report["unchained"], 0);
    assert_eq!(report["head"][0], 4);
    assert_eq!(report["problems"], serde_json::json!([]));

    // Rewriting who made a change breaks that entry's hash.
    tamper(&pool, "update audit_log set actor = 'mallory' where id = 2").await;
    let (code, report) = verify(url);
    assert_eq!(code, Some(4));
    assert_eq!(
        report["problems"],
        serde_json::json!(["entry 2 was edited: its content no longer matches its hash"])
    );
    tamper(&pool, "update audit_log set actor = 'cli' where id = 2").await;
    assert_eq!(
        verify(url).0,
        Some(0),
        "restoring the content restores the chain"
    );

    // Removing an entry breaks the link of the one after it.
    tamper(&pool, "delete from audit_log where id = 3").await;
    let (code, report) = verify(url);
    assert_eq!(code, Some(4));
    assert_eq!(
        report["problems"],
        serde_json::json!([
            "entry 4 does not follow entry 2: an entry between them was deleted or edited"
        ])
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn signed_publishes_and_rollback_markers(pool: PgPool) {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let url = url_of(&pool);
    let url = url.as_str();
    let dir = std::env::temp_dir().join(format!("cleave-signed-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("snapshot.key");
    let key_arg = key_file.to_str().unwrap();
    let out = admin(None, &["keygen", "--out", key_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let public = printed
        .trim()
        .strip_prefix("CLEAVE_SNAPSHOT_PUBLIC_KEY=")
        .unwrap()
        .to_owned();
    let seed = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        !printed.contains(seed.trim()),
        "the private key is never printed"
    );
    let out = admin(None, &["keygen", "--out", key_arg]);
    assert_eq!(out.status.code(), Some(2), "keygen never overwrites a key");
    let signed = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cleave-admin"));
        let out = command
            .args(["--sink", "file", "--sink-dir", dir.to_str().unwrap()])
            .args(args)
            .env("DATABASE_URL", url)
            .env("CLEAVE_SNAPSHOT_SIGNING_KEY_FILE", &key_file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out
    };
    assert_eq!(text(&signed(&["public-key"]).stdout).trim(), public);

    let key = VerifyingKey::from_bytes(&cleave_core::pointer::parse_public_key(&public).unwrap())
        .unwrap();
    let verifies = |pointer: &cleave_core::snapshot::Pointer| {
        let body = std::fs::read(dir.join(format!("prod/v{}.json", pointer.version))).unwrap();
        let message = cleave_core::pointer::signed_message(
            "prod",
            pointer.version,
            pointer.rollback_from,
            &body,
        );
        let signature = Signature::from_bytes(&pointer.signature_bytes().unwrap());
        key.verify(&message, &signature).is_ok()
    };
    let pointer = || -> cleave_core::snapshot::Pointer {
        serde_json::from_str(&std::fs::read_to_string(dir.join("prod.pointer.json")).unwrap())
            .unwrap()
    };
    signed(&["environments", "create", "prod"]);
    let created = signed(&["experiments", "create", "--env", "prod", "--key", "exp"]);
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = created["id"].as_str().unwrap();
    signed(&["experiments", "add-variant", id, "--key", "control"]);
    signed(&["experiments", "set-status", id, "RUNNING"]);
    signed(&["experiments", "set-status", id, "PAUSED"]);
    let v2 = pointer();
    assert_eq!((v2.version, v2.rollback_from), (2, None));
    assert!(verifies(&v2));
    signed(&["rollback", "--env", "prod", "--to", "1"]);
    let back = pointer();
    assert_eq!((back.version, back.rollback_from), (1, Some(2)));
    assert!(verifies(&back));
    let mut forged = back.clone();
    forged.rollback_from = Some(9);
    assert!(!verifies(&forged), "the marker is covered by the signature");

    // Every signed pointer expires; re-signing moves the expiry and keeps the body signature.
    let expiry_verifies = |pointer: &cleave_core::snapshot::Pointer| {
        let message = cleave_core::pointer::signed_expiry_message("prod", pointer);
        let signature = Signature::from_bytes(&pointer.expiry_signature_bytes().unwrap());
        key.verify(&message, &signature).is_ok()
    };
    assert!(expiry_verifies(&back));
    let mut extended = back.clone();
    extended.expires_at = Some("2999-01-01T00:00:00Z".to_owned());
    assert!(
        !expiry_verifies(&extended),
        "the expiry is covered by its signature"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = signed(&["--pointer-validity", "600", "resign-pointers"]);
    assert!(text(&out.stdout).contains("prod"), "{}", text(&out.stdout));
    let resigned = pointer();
    assert_eq!(resigned.signature, back.signature);
    assert_eq!((resigned.version, resigned.rollback_from), (1, Some(2)));
    assert!(expiry_verifies(&resigned));
    let now = i64::try_from(std::time::UNIX_EPOCH.elapsed().unwrap().as_millis()).unwrap();
    let left = resigned.expires_ms().unwrap() - now;
    assert!((500_000..=600_000).contains(&left), "expires in {left} ms");
}

#[sqlx::test(migrations = "./migrations")]
async fn flags_from_the_command_line(pool: PgPool) {
    let url = url_of(&pool);
    let url = url.as_str();
    let out = admin(Some(url), &["environments", "create", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let flag = r#"{"key": "new-nav", "type": "boolean", "offVariant": "off",
        "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
        "fallthrough": {"variant": "on"}}"#;
    let out = admin(Some(url), &["flags", "create", "prod", flag]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap();
    let out = admin(
        Some(url),
        &[
            "flags",
            "create",
            "prod",
            &flag.replace("\"on\"}}", "\"gone\"}}"),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "invalid");
    assert!(
        text(&out.stderr).contains("fallthrough.variant: no variant \"gone\""),
        "{}",
        text(&out.stderr)
    );
    let out = admin(Some(url), &["flags", "kill", id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let killed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(killed["flag"]["enabled"], false);
    let out = admin(Some(url), &["flags", "list", "prod"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["key"], "new-nav");
    assert_eq!(listed[0]["enabled"], false);
}

#[sqlx::test(migrations = "./migrations")]
async fn results_by_slice_and_the_holdout_report(pool: PgPool) {
    let url = url_of(&pool);
    let url = url.as_str();
    let json = |out: &Output| -> serde_json::Value {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    json(&admin(Some(url), &["environments", "create", "prod"]));
    let exp = json(&admin(
        Some(url),
        &["experiments", "create", "--env", "prod", "--key", "cta"],
    ));
    let id = exp["id"].as_str().unwrap();
    let slices = json(&admin(
        Some(url),
        &["results", "--experiment", id, "--by", "device"],
    ));
    assert_eq!(
        (slices["dimension"].clone(), slices["exploratory"].clone()),
        (serde_json::json!("device"), serde_json::json!(true))
    );
    assert_eq!(slices["correction"], "benjamini_hochberg", "bh with --by");
    let out = admin(Some(url), &["results", "--experiment", id, "--by", "city"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--by \"city\": slice by country, device or browser"));

    let out = admin(Some(url), &["holdout", "prod"]);
    assert_eq!(out.status.code(), Some(4), "no holdout is a conflict");
    assert!(text(&out.stderr).contains("environment prod has no holdout"));
    json(&admin(
        Some(url),
        &[
            "environments",
            "settings",
            "prod",
            r#"{"holdout": {"salt": "h1", "ranges": [[0, 999]]}}"#,
        ],
    ));
    let report = json(&admin(Some(url), &["holdout", "prod"]));
    assert_eq!(report["heldOutShare"], 0.1);
    assert_eq!(report["salt"], "h1");
}

#[sqlx::test(migrations = "./migrations")]
async fn an_analytics_url_of_another_kind_is_refused_by_name(pool: PgPool) {
    let url = url_of(&pool);
    for bad in [
        "mysql://db/cleave",
        "clickhouse://h1:8123",
        "clickhouse://h1:8123/x-y",
    ] {
        let out = admin(
            Some(&url),
            &["--analytics-url", bad, "environments", "list"],
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains("CLEAVE_ANALYTICS_URL") && err.contains(bad),
            "{err}"
        );
    }
}
