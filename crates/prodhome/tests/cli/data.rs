//! `prodhome data fill` / `data plan` on a lab unlike the seed: other node
//! names, two subscribers, `tables = "all"`, a schema with parent, child and
//! grandchild foreign keys, UNIQUE, CHECK ranges and IN lists, an enum,
//! jsonb, an int[] array, identity and a composite primary key. The server
//! enforces every constraint, so rows that land satisfy them.

use testkit::{TestLab, assert_success};

use crate::{BIN, text};

const LAB: &str = r#"name = "shopdata"
[postgres.primary]
[postgres.replica_a]
[postgres.replica_b]
[replication.shop]
publisher = "primary"
subscribers = ["replica_a", "replica_b"]
schema = "schema.sql"
tables = "all"

[data.customers]
rows = 200
columns = { email = "email", status = { list = ["new", "active", "gone"], weights = [3, 2, 1] } }

[data.orders]
rows = 600

[data.order_lines]
rows = 1500
columns = { sku = { list = ["A-1", "B-2", "C-3"] } }
"#;

const SCHEMA: &str = "
CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
CREATE TABLE customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL UNIQUE,
  mood mood NOT NULL,
  tags int[],
  profile jsonb NOT NULL,
  joined date NOT NULL,
  balance numeric(10,2) NOT NULL CHECK (balance >= 0 AND balance <= 5000),
  status text NOT NULL CHECK (status IN ('new', 'active', 'gone')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
  id uuid PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  qty int NOT NULL CHECK (qty BETWEEN 1 AND 10),
  kind varchar(8) NOT NULL CHECK (kind IN ('web', 'shop')),
  placed timestamptz NOT NULL,
  note varchar(12),
  paid boolean NOT NULL
);
CREATE TABLE order_lines (
  order_id uuid NOT NULL REFERENCES orders (id),
  line_no int NOT NULL CHECK (line_no > 0),
  sku text NOT NULL,
  price numeric(8,2) NOT NULL CHECK (price > 0),
  code bytea,
  PRIMARY KEY (order_id, line_no)
);
";

const TABLES: [(&str, &str, i64); 3] = [
    ("customers", "id", 200),
    ("orders", "id", 600),
    ("order_lines", "order_id, line_no", 1500),
];

fn lab() -> TestLab {
    TestLab::new(BIN).lab(LAB).file("schema.sql", SCHEMA)
}

/// md5 of every table's rows in key order, as the node has them.
fn checksums(lab: &TestLab, node: &str) -> Vec<String> {
    TABLES
        .iter()
        .map(|(t, key, _)| {
            lab.sql(
                node,
                &format!("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY {key}), '')) FROM {t} t"),
            )
        })
        .collect()
}

fn counts(lab: &TestLab, node: &str) -> Vec<i64> {
    TABLES
        .iter()
        .map(|(t, _, _)| {
            lab.sql(node, &format!("SELECT count(*) FROM {t}"))
                .parse()
                .unwrap()
        })
        .collect()
}

fn fill(lab: &TestLab) -> String {
    let out = lab.run(&[
        "data",
        "fill",
        "--scale",
        "1",
        "--seed",
        "7",
        "--wait",
        "--timeout",
        "90s",
    ]);
    assert_success(&out, "data fill --wait");
    text(&out)
}

#[test]
fn data_fill_satisfies_the_schema_replicates_and_the_same_seed_gives_the_same_rows() {
    let lab = lab();
    lab.up();
    let out = lab.run(&["data", "plan"]);
    assert_success(&out, "data plan");
    let plan = text(&out);
    for expected in [
        "identity/serial: the server numbers it",
        "[data.public.customers] columns.email",
        "a key of public.customers (orders_customer_id_fkey)",
        "one of its CHECK's IN list",
        "one of the enum's labels",
    ] {
        assert!(plan.contains(expected), "plan lacks {expected:?}:\n{plan}");
    }
    // Parents first: customers before orders before order_lines.
    let at = |t: &str| {
        plan.find(&format!("public.{t} —"))
            .unwrap_or_else(|| panic!("{t} in {plan}"))
    };
    assert!(
        at("customers") < at("orders") && at("orders") < at("order_lines"),
        "{plan}"
    );

    let first = fill(&lab);
    assert!(first.contains("public.customers: added 200 rows"), "{first}");
    assert!(first.contains("`prodhome verify` passes"), "{first}");
    let expected: Vec<i64> = TABLES.iter().map(|t| t.2).collect();
    assert_eq!(counts(&lab, "primary"), expected);
    let sums = checksums(&lab, "primary");
    for replica in ["replica_a", "replica_b"] {
        assert_eq!(counts(&lab, replica), expected, "{replica}");
        assert_eq!(checksums(&lab, replica), sums, "{replica}");
    }
    // Hot parents: the busiest customer has several times the average orders (3).
    let busiest: i64 = lab
        .sql(
            "primary",
            "SELECT max(n) FROM (SELECT count(*) n FROM orders GROUP BY customer_id) c",
        )
        .parse()
        .unwrap();
    assert!(busiest >= 9, "no skew: the busiest customer has {busiest} orders");
    let weights = lab.sql("primary", "SELECT count(*) FILTER (WHERE status = 'new') > count(*) FILTER (WHERE status = 'gone') FROM customers");
    assert_eq!(weights, "t", "list weights 3:1 not followed");

    // The same arguments again: nothing added, and it says so.
    let again = fill(&lab);
    assert!(again.contains("already filled with seed 7"), "{again}");
    assert_eq!(counts(&lab, "primary"), expected);

    // A fresh lab, the same seed: the same rows.
    let other = self::lab();
    other.up();
    fill(&other);
    assert_eq!(checksums(&other, "primary"), sums, "same seed, different rows");
}

const BAD_SCHEMA: &str = "
CREATE TABLE parts (
  id int PRIMARY KEY,
  code text NOT NULL CONSTRAINT code_long_enough CHECK (length(code) > 3),
  spot point
);
CREATE TABLE slots (
  id int PRIMARY KEY,
  taken boolean NOT NULL UNIQUE,
  qty int NOT NULL CONSTRAINT qty_window CHECK (qty > 10 AND qty < 5)
);
CREATE TABLE a (id int PRIMARY KEY, b_id int NOT NULL);
CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a (id));
ALTER TABLE a ADD CONSTRAINT a_needs_b FOREIGN KEY (b_id) REFERENCES b (id);
";

#[test]
fn data_fill_refuses_an_unsupported_check_a_cycle_and_an_unknown_type_naming_them() {
    let lab = TestLab::new(BIN)
        .lab(
            LAB.replace("schema.sql", "bad.sql")
                .split("[data.")
                .next()
                .unwrap(),
        )
        .file("bad.sql", BAD_SCHEMA);
    lab.up();
    let out = lab.run(&["data", "fill", "--rows", "10"]);
    assert!(
        !out.status.success(),
        "fill of a bad schema succeeded: {}",
        text(&out)
    );
    let message = text(&out);
    for expected in [
        "public.parts: CHECK constraint code_long_enough",
        "public.parts.spot: type point",
        "public.slots.taken: a unique boolean (constraint slots_taken_key)",
        "public.slots.qty: its CHECK constraints leave no value (constraint qty_window)",
        "public.a, public.b",
        "a_needs_b",
        "nothing was written",
    ] {
        assert!(
            message.contains(expected),
            "message lacks {expected:?}:\n{message}"
        );
    }
    for t in ["parts", "slots", "a", "b"] {
        assert_eq!(
            lab.sql("primary", &format!("SELECT count(*) FROM {t}")),
            "0",
            "{t}"
        );
    }
    // A table the node does not have is named, with the ones it has.
    let out = lab.run(&["data", "fill", "--rows", "10", "--table", "ghost"]);
    assert!(
        text(&out).contains("--table ghost: no such table"),
        "{}",
        text(&out)
    );
}
