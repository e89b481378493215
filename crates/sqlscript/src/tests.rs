use crate::{Kind, created_tables, split};

const DUMP: &str = r#"--
-- PostgreSQL database dump
--
\restrict AbC123

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TYPE public.mood AS ENUM (
    'sad',
    'ok'
);

CREATE FUNCTION public.touch() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  NEW.at := now(); -- a ; in a body
  RETURN NEW;
END;
$$;

CREATE TABLE public.items (
    id integer NOT NULL,
    note text
);

COMMENT ON TABLE public.items IS 'the items; all of them';

COPY public.items (id, note) FROM stdin;
1	a;b
2	\N
3	back\\slash
\.

SELECT pg_catalog.setval('public.items_id_seq', 3, true);

\unrestrict AbC123
"#;

#[test]
fn a_pg_dump_splits_into_located_statements_with_its_copy_data() {
    let statements = split(DUMP).unwrap();
    let summary: Vec<(usize, usize, Kind, &str)> = statements
        .iter()
        .map(|s| (s.line, s.column, s.kind, s.sql.split_whitespace().next().unwrap()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (6, 1, Kind::Definition, "SET"),
            (7, 1, Kind::Definition, "SELECT"),
            (9, 1, Kind::Definition, "CREATE"),
            (14, 1, Kind::Definition, "CREATE"),
            (23, 1, Kind::Definition, "CREATE"),
            (28, 1, Kind::Definition, "COMMENT"),
            (30, 1, Kind::Data, "COPY"),
            (36, 1, Kind::Data, "SELECT"),
        ]
    );
    let copy = &statements[6];
    assert_eq!(copy.sql, "COPY public.items (id, note) FROM stdin");
    assert_eq!(copy.copy_data, Some("1\ta;b\n2\t\\N\n3\tback\\\\slash\n"));
    assert!(statements[3].sql.ends_with("$$"), "{}", statements[3].sql);
    assert_eq!(created_tables(&statements), vec!["public.items"]);
}

#[test]
fn rails_structure_sql_ends_with_data() {
    let text = "SET client_encoding = 'UTF8';\n\
        CREATE TABLE public.schema_migrations (version character varying NOT NULL);\n\
        CREATE TABLE public.ar_internal_metadata (key character varying NOT NULL, value character varying);\n\
        SET search_path TO \"$user\", public;\n\
        INSERT INTO \"schema_migrations\" (version) VALUES\n('20240101000000'),\n('20240202000000');\n\n";
    let statements = split(text).unwrap();
    let kinds: Vec<Kind> = statements.iter().map(|s| s.kind).collect();
    use Kind::*;
    assert_eq!(kinds, vec![Definition, Definition, Definition, Definition, Data]);
    assert_eq!(statements[4].line, 5);
    assert_eq!(
        created_tables(&statements),
        vec!["public.schema_migrations", "public.ar_internal_metadata"]
    );
}

#[test]
fn data_statements_are_told_from_definitions() {
    let cases = [
        ("insert into t values (1)", Kind::Data),
        ("UPDATE t SET a = 1", Kind::Data),
        ("delete from t", Kind::Data),
        ("truncate t", Kind::Data),
        ("select setval('s', 4)", Kind::Data),
        ("SELECT pg_catalog.setval('public.s', 4, true)", Kind::Data),
        ("with x as (select 1) insert into t select * from x", Kind::Data),
        ("with x as (select 1) select * from x", Kind::Definition),
        (
            "select pg_catalog.set_config('search_path', '', false)",
            Kind::Definition,
        ),
        ("create table t (id int)", Kind::Definition),
        (
            "create rule r as on insert to t do instead nothing",
            Kind::Definition,
        ),
        ("alter table t add column b int", Kind::Definition),
        ("copy t to stdout", Kind::Definition),
        ("grant select on t to public", Kind::Definition),
        ("BEGIN", Kind::Transaction),
        (
            "start transaction isolation level serializable",
            Kind::Transaction,
        ),
        ("commit", Kind::Transaction),
        ("END", Kind::Transaction),
    ];
    for (sql, want) in cases {
        let statements = split(sql).unwrap();
        assert_eq!(statements.len(), 1, "{sql}");
        assert_eq!(statements[0].kind, want, "{sql}");
    }
}

#[test]
fn semicolons_inside_parentheses_and_atomic_bodies_do_not_split() {
    let text = "CREATE RULE r AS ON INSERT TO t DO ALSO (insert into a values (1); insert into b values (2));\n\
        CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN true THEN 1 END;\n  SELECT 2;\nEND;\n\
        select 3";
    let statements = split(text).unwrap();
    assert_eq!(statements.len(), 3, "{statements:#?}");
    assert!(statements[1].sql.ends_with("END"), "{}", statements[1].sql);
    assert_eq!((statements[2].line, statements[2].sql), (7, "select 3"));
}

#[test]
fn created_tables_follow_quotes_schemas_and_partitions() {
    let text = r#"create table if not exists "Odd Name" (id int);
        CREATE UNLOGGED TABLE shop.orders (id int);
        create temp table scratch (id int);
        create table shop.orders_2024 partition of shop.orders for values in (2024);
        create table copy_of as select 1;
        create view v as select 1;
        set search_path = shop;
        create table carts (id int);"#;
    let statements = split(text).unwrap();
    assert_eq!(
        created_tables(&statements),
        vec![
            "public.Odd Name",
            "shop.orders",
            "shop.orders_2024",
            "public.copy_of",
            "shop.carts"
        ]
    );
}

#[test]
fn harmless_meta_commands_are_skipped_and_others_refused_with_their_line() {
    let ok = split("\\set ON_ERROR_STOP on\nselect 1;\n\\echo done\n").unwrap();
    assert_eq!(ok.len(), 1);
    let e = split("select 1;\n  \\connect other\nselect 2;").unwrap_err();
    assert_eq!((e.line(), e.column()), (2, 3));
    assert!(e.message().contains("\\connect"), "{e}");
    assert!(e.help().contains("--create"), "{}", e.help());
    let e = split("\\i other.sql").unwrap_err();
    assert!(e.help().contains("paste"), "{}", e.help());
}

#[test]
fn unterminated_copy_blocks_are_located_at_the_copy() {
    let e = split("select 1;\nCOPY t (a) FROM stdin;\n1\n2\n").unwrap_err();
    assert_eq!((e.line(), e.column()), (2, 1));
    assert!(e.message().contains("\\."), "{e}");
    let e = split("COPY t FROM stdin").unwrap_err();
    assert_eq!(e.line(), 1);
}

#[test]
fn an_unterminated_string_is_located_where_it_opens() {
    let e = split("create table t (a text);\ninsert into t values ('it''s\n);\n").unwrap_err();
    assert_eq!((e.line(), e.column()), (2, 23));
    assert_eq!(
        e.to_string(),
        "2:23: unterminated quoted string: the file ends before its closing '"
    );
}

#[test]
fn crlf_and_empty_statements_are_fine() {
    let statements = split("select 1;;\r\nCOPY t FROM stdin;\r\n1\r\n\\.\r\nselect 2;\r\n").unwrap();
    assert_eq!(statements.len(), 3);
    assert_eq!(statements[1].copy_data, Some("1\r\n"));
    assert_eq!((statements[2].line, statements[2].sql), (5, "select 2"));
}

#[test]
fn summaries_are_one_short_line() {
    let long = format!("insert into t values ('{}')", "x".repeat(300));
    let statements = split(&long).unwrap();
    assert_eq!(statements[0].summary().chars().count(), 121);
    let statements = split("create table t (\n id int\n)").unwrap();
    assert_eq!(statements[0].summary(), "create table t ( …");
}

/// A tiny xorshift generator: the crate has no dependencies to draw on.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_bytes_and_mangled_scripts_never_panic() {
    let alphabet: Vec<char> = "ab$_;'\"\\-/*()\n\r\t .eE é0123{}[]".chars().collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..3000 {
        let len = (next(&mut state) % 80) as usize;
        let text: String = if round % 2 == 0 {
            (0..len)
                .map(|_| alphabet[(next(&mut state) % alphabet.len() as u64) as usize])
                .collect()
        } else {
            // A real script cut at a random char boundary, a random byte
            // range dropped.
            let chars: Vec<char> = DUMP.chars().collect();
            let cut = (next(&mut state) % chars.len() as u64) as usize;
            let drop = (next(&mut state) % 40) as usize;
            chars[..cut]
                .iter()
                .chain(chars[(cut + drop).min(chars.len())..].iter())
                .collect()
        };
        if let Ok(statements) = split(&text) {
            let _ = created_tables(&statements);
            for s in &statements {
                assert!(s.line >= 1 && s.column >= 1, "{text:?}");
                let _ = s.summary();
            }
        }
    }
}

#[test]
fn random_utf8_from_raw_bytes_never_panics() {
    let mut state = 0x1234_5678_9ABC_DEF1u64;
    for _ in 0..2000 {
        let len = (next(&mut state) % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = split(&text).map(|s| created_tables(&s));
    }
}
