//! Users' own schema files: plain DDL, DDL with rows, a real `pg_dump` with
//! COPY data, Rails' structure.sql. Rows in the file land on the publisher
//! once and reach subscribers by initial sync; a file the nodes cannot take
//! is refused with its file:line. Labs here are unlike the seed lab.

use std::process::Command;

use testkit::{PgNode, TestLab};

use crate::{BIN, text};

/// A publisher and two subscribers with names unlike the seed lab's.
fn depot(schema_file: &str, tables: &str) -> String {
    format!(
        r#"name = "depot"

[postgres.origin]
[postgres.mirror_a]
[postgres.mirror_b]

[replication.stock]
publisher = "origin"
subscribers = ["mirror_a", "mirror_b"]
schema = "{schema_file}"
tables = {tables}
"#
    )
}

const NODES: [&str; 3] = ["origin", "mirror_a", "mirror_b"];

/// The same answer to `sql` on every node.
fn same_everywhere(lab: &TestLab, sql: &str, want: &str) {
    for node in NODES {
        assert_eq!(lab.sql(node, sql), want, "{sql} on {node}");
    }
}

fn verify_passes(lab: &TestLab) -> String {
    let out = lab.run(&["verify"]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("replication stock: converged"), "{report}");
    report
}

/// `up -d` must fail; returns everything it printed.
fn up_fails(lab: &TestLab) -> String {
    let out = lab.run(&["up", "-d", "--timeout", "120s"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    all
}

#[test]
fn plain_ddl_schema_replicates_rows_written_later() {
    // Hand-written files often wrap themselves in a transaction.
    let schema = "begin;\n\
                  create table parts (sku text primary key, weight_g int not null);\n\
                  create index parts_weight on parts (weight_g);\n\
                  commit;\n";
    let lab = TestLab::new(BIN)
        .lab(&depot("depot.sql", r#"["parts"]"#))
        .file("depot.sql", schema);
    lab.up();
    same_everywhere(&lab, "select count(*) from parts", "0");
    lab.sql(
        "origin",
        "insert into parts select 'p' || g, g from generate_series(1, 40) g",
    );
    verify_passes(&lab);
    same_everywhere(&lab, "select count(*), sum(weight_g) from parts", "40|820");
}

#[test]
fn schema_with_inserts_puts_each_row_on_the_publisher_once_and_subscribers_sync_them() {
    let schema = "create table bins (code text primary key, cap int not null);\n\
                  insert into bins values ('a1', 10), ('a2', 20);\n\
                  insert into bins values ('b1', 30);\n\
                  update bins set cap = cap + 1 where code = 'a1';\n\
                  create table moves (id serial primary key, bin text not null references bins);\n\
                  insert into moves (bin) values ('a1'), ('b1');\n";
    let lab = TestLab::new(BIN)
        .lab(&depot("seeded.sql", r#"["bins", "moves"]"#))
        .file("seeded.sql", schema);
    lab.up();
    same_everywhere(
        &lab,
        "select string_agg(code || '=' || cap, ',' order by code) from bins",
        "a1=11,a2=20,b1=30",
    );
    same_everywhere(&lab, "select count(*) from moves", "2");
    verify_passes(&lab);
    // A second `up` applies nothing twice.
    lab.up();
    same_everywhere(&lab, "select count(*) from bins", "3");
}

/// A source server with the objects a real application's dump holds.
const SOURCE: &str = r#"
create type mood as enum ('sad', 'ok', 'glad');
create table people (id serial primary key, name text not null, mood mood not null default 'ok');
create table visits (id bigint generated always as identity primary key,
                     person int not null references people, note text);
insert into people (name, mood) values ('ann', 'glad'), (E'tab\there', 'sad'), (E'back\\slash; semi', 'ok');
insert into visits (person, note) values (1, 'first'), (1, null), (2, E'two\nlines');
create sequence tickets start 100;
select setval('tickets', 500);
create view glad_people as select id, name from people where mood = 'glad';
create function tidy() returns trigger language plpgsql as $$
begin
  new.note := trim(new.note); -- a ; inside the body
  return new;
end $$;
create trigger visits_tidy before insert on visits for each row execute function tidy();
comment on table people is 'who; is here';
"#;

fn pg_dump(source: &PgNode) -> String {
    let out = Command::new("/usr/lib/postgresql/15/bin/pg_dump")
        .args(["-h", "127.0.0.1", "-p", &source.port().to_string()])
        .args(["-U", "postgres", "-d", "postgres", "--no-owner"])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 dump")
}

#[test]
fn a_real_pg_dump_with_copy_data_replicates_and_sequences_stay_on_the_publisher() {
    let source = PgNode::start();
    source.sql(SOURCE);
    let dump = pg_dump(&source);
    assert!(dump.contains("FROM stdin;"), "{dump}");
    let lab = TestLab::new(BIN)
        .lab(&depot("dump.sql", r#"["people", "visits"]"#))
        .file("dump.sql", &dump);
    lab.up();
    let names = "select string_agg(name, '|' order by id) from people";
    same_everywhere(&lab, names, &source.sql(names));
    same_everywhere(&lab, "select count(*) from visits", "3");
    same_everywhere(&lab, "select count(*) from glad_people", "1");
    // Sequences are not replicated: their positions stay where the dump
    // set them on the publisher only.
    assert_eq!(lab.sql("origin", "select last_value from tickets"), "500");
    assert_eq!(lab.sql("origin", "select last_value from people_id_seq"), "3");
    assert_eq!(lab.sql("mirror_b", "select last_value from tickets"), "100");
    // The dump's empty search_path does not leak into what prodhome does
    // next on the same session (the publication's unqualified table names).
    lab.sql(
        "origin",
        "insert into visits (person, note) values (3, '  padded  ')",
    );
    verify_passes(&lab);
    same_everywhere(&lab, "select note from visits where person = 3", "padded");
}

const STRUCTURE_SQL: &str = r#"SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: ar_internal_metadata; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ar_internal_metadata (
    key character varying NOT NULL,
    value character varying,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);

--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version character varying NOT NULL
);

CREATE TABLE public.accounts (
    id bigint NOT NULL,
    email character varying NOT NULL
);

CREATE SEQUENCE public.accounts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.accounts_id_seq OWNED BY public.accounts.id;

ALTER TABLE ONLY public.accounts ALTER COLUMN id SET DEFAULT nextval('public.accounts_id_seq'::regclass);

ALTER TABLE ONLY public.ar_internal_metadata
    ADD CONSTRAINT ar_internal_metadata_pkey PRIMARY KEY (key);

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);

CREATE UNIQUE INDEX index_accounts_on_email ON public.accounts USING btree (email);

SET search_path TO "$user", public;

INSERT INTO "schema_migrations" (version) VALUES
('20240105101500'),
('20240219093000'),
('20240311120000');

"#;

#[test]
fn a_rails_structure_sql_replicates_its_schema_migrations_rows() {
    let lab = TestLab::new(BIN).lab(&depot(
        "db/structure.sql",
        r#"["schema_migrations", "ar_internal_metadata", "accounts"]"#,
    ));
    std::fs::create_dir_all(lab.dir().join("db")).unwrap();
    lab.write("db/structure.sql", STRUCTURE_SQL);
    lab.up();
    same_everywhere(
        &lab,
        "select string_agg(version, ',' order by version) from schema_migrations",
        "20240105101500,20240219093000,20240311120000",
    );
    lab.sql("origin", "insert into accounts (email) values ('a@example.com')");
    verify_passes(&lab);
    same_everywhere(&lab, "select email from accounts", "a@example.com");
}

#[test]
fn a_bad_statement_is_refused_with_its_file_line_and_nothing_half_applied() {
    let schema = "create table racks (id int primary key);\n\
                  insert into racks values (1);\n\
                  create tabel shelves (id int primary key);\n";
    let lab = TestLab::new(BIN)
        .lab(&depot("racks.sql", r#"["racks"]"#))
        .file("racks.sql", schema);
    let all = up_fails(&lab);
    for want in [
        "racks.sql:3:8",
        "create tabel shelves",
        "origin",
        "42601",
        "syntax error at or near \"tabel\"",
    ] {
        assert!(all.contains(want), "expected {want:?} in:\n{all}");
    }
    // Fixed, the file goes in whole: nothing of the failed try was left.
    lab.write("racks.sql", &schema.replace("tabel", "table"));
    lab.up();
    same_everywhere(&lab, "select count(*) from racks", "1");
}

#[test]
fn a_psql_connect_line_is_refused_with_its_location() {
    let schema = "create table racks (id int primary key);\n\\connect other\n";
    let lab = TestLab::new(BIN)
        .lab(&depot("racks.sql", r#"["racks"]"#))
        .file("racks.sql", schema);
    let all = up_fails(&lab);
    assert!(all.contains("racks.sql:2:1"), "{all}");
    assert!(all.contains("\\connect"), "{all}");
    assert!(lab.processes().is_empty(), "left running: {:?}", lab.processes());
}

#[test]
fn a_table_the_schema_does_not_create_is_a_located_lab_error() {
    let schema = "create table racks (id int primary key);\ncreate table shelf (id int primary key);\n";
    let lab = TestLab::new(BIN)
        .lab(&depot("racks.sql", r#"["racks", "shelfs"]"#))
        .file("racks.sql", schema);
    let all = up_fails(&lab);
    assert!(all.contains("prodhome.toml:11:20"), "{all}");
    assert!(all.contains("replication.stock.tables[1]"), "{all}");
    assert!(all.contains("did you mean \"shelf\"?"), "{all}");
    assert!(!lab.state().exists(), "a bad lab file created state");
}

/// A seed in a DO block runs on every node (prodhome cannot tell it from a
/// definition), so each subscriber already holds the row its initial sync
/// copies: up must fail at once with the subscriber's own reason rather
/// than wait out its timeout.
#[test]
fn a_subscriber_whose_initial_sync_fails_stops_up_with_the_reason() {
    let schema = "create table lots (id int primary key, label text);\n\
                  do $$ begin insert into lots values (7, 'seeded everywhere'); end $$;\n";
    let lab = TestLab::new(BIN)
        .lab(&depot("lots.sql", r#"["lots"]"#))
        .file("lots.sql", schema);
    let all = up_fails(&lab);
    for want in [
        "mirror_a: initial sync of public.lots failed",
        "duplicate key value violates unique constraint \"lots_pkey\"",
        "Key (id)=(7) already exists",
    ] {
        assert!(all.contains(want), "expected {want:?} in:\n{all}");
    }
    assert!(!all.contains("did not finish its initial sync in time"), "{all}");
}
