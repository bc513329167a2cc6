use proptest::prelude::*;

use super::*;

fn tables(statement: &str) -> Vec<(String, Option<String>)> {
    read(statement)
        .unwrap_or_else(|e| panic!("{statement:?}: {e}"))
        .tables
        .into_iter()
        .map(|t| (t.name, t.index))
        .collect()
}

fn named(name: &str) -> Vec<(String, Option<String>)> {
    vec![(name.to_owned(), None)]
}

#[test]
fn reads_the_kind_from_the_first_keyword() {
    for (statement, kind) in [
        ("SELECT * FROM T", StatementKind::Select),
        ("  select * from T", StatementKind::Select),
        ("/* hi */ SELECT * FROM T", StatementKind::Select),
        ("-- hi\nDELETE FROM T WHERE k = 1", StatementKind::Delete),
        ("EXISTS(SELECT * FROM T WHERE k = 1)", StatementKind::Exists),
        ("INSERT INTO T VALUE {'k': 1}", StatementKind::Insert),
        ("update T SET a = 1 WHERE k = 1", StatementKind::Update),
    ] {
        assert_eq!(read(statement).unwrap().kind, kind, "{statement}");
    }
    assert!(StatementKind::Select.reads() && StatementKind::Exists.reads());
    assert!(!StatementKind::Update.reads());
    for unknown in [
        "SELECTED * FROM T",
        "(SELECT * FROM T)",
        "REPLACE INTO T",
        "",
    ] {
        assert!(read(unknown).is_err(), "{unknown}");
    }
}

#[test]
fn finds_the_table_however_it_is_spelled() {
    for statement in [
        "SELECT * FROM T",
        "SELECT * FROM\tT",
        "SELECT * FROM\nT WHERE a = 1",
        "SELECT * FROM\r\n\"T\"",
        "SELECT * FROM/* x */T",
        "SELECT * FROM -- x\n T",
        "select * from \"T\" where a = 'FROM Other'",
        "UPDATE\nT SET a = 1 WHERE k = 'x'",
        "DELETE FROM \"T\" WHERE k = 1",
        "INSERT INTO T VALUE {'k': `1`}",
        "SELECT * FROM T\u{a0}WHERE k = 1",
    ] {
        assert_eq!(tables(statement), named("T"), "{statement:?}");
    }
}

#[test]
fn reads_an_index_suffix() {
    let index = vec![("T".to_owned(), Some("ByName".to_owned()))];
    for statement in [
        "SELECT * FROM T.ByName",
        "SELECT * FROM \"T\".\"ByName\"",
        "SELECT * FROM T . \"ByName\" WHERE a = 1",
        "SELECT * FROM \"T\"/* */./* */ByName",
    ] {
        assert_eq!(tables(statement), index, "{statement:?}");
    }
}

#[test]
fn quotes_are_undone_and_strings_hide_nothing() {
    assert_eq!(tables("SELECT * FROM \"a\"\"b\""), named("a\"b"));
    assert_eq!(
        tables("SELECT * FROM T WHERE a = 'it''s FROM Secrets'"),
        named("T")
    );
    let read = read("UPDATE T SET \"from\" = 1 WHERE k = 'x'").unwrap();
    assert_eq!(
        read.identifiers,
        ["UPDATE", "T", "SET", "from", "1", "WHERE", "k"]
    );
    // A string where a name goes is read as the name it might be taken for.
    assert_eq!(tables("SELECT * FROM 'T'"), named("T"));
}

#[test]
fn every_table_of_a_statement_is_found() {
    assert_eq!(
        tables("EXISTS(SELECT * FROM A WHERE k = 1) FROM B"),
        vec![("A".to_owned(), None), ("B".to_owned(), None)]
    );
}

#[test]
fn names_inside_comments_count_as_identifiers() {
    let read = read("SELECT * FROM T /* \"Secret\" */ -- Other\n").unwrap();
    assert!(read.identifiers.contains(&"Secret".to_owned()));
    assert!(read.identifiers.contains(&"Other".to_owned()));
}

#[test]
fn what_cannot_be_read_for_certain_is_an_error() {
    for statement in [
        "SELECT * FROM \"T",
        "SELECT * FROM T WHERE a = 'x",
        "SELECT * FROM T /* open",
        "SELECT * FROM T WHERE a = `1",
        "SELECT * FROM",
        "SELECT * FROM (T)",
        "SELECT * FROM T.",
        "SELECT * FROM T, Other",
        "SELECT * FROM T.I , Other",
        "SELECT 1",
        "UPDATE",
    ] {
        assert!(read(statement).is_err(), "{statement:?}");
    }
}

/// Whitespace and comments DynamoDB's reader may skip between two tokens.
fn gap() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{c}".to_owned()),
        Just("\u{a0}".to_owned()),
        Just("\u{2003}".to_owned()),
        Just("/**/".to_owned()),
        Just("/* FROM x */".to_owned()),
        Just("-- c\n".to_owned()),
    ];
    prop::collection::vec(piece, 1..4).prop_map(|pieces| pieces.concat())
}

/// A keyword in any letter case.
fn keyword(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.chars()
            .zip(upper)
            .map(|(c, up)| {
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// The table, quoted or not, perhaps with an index, each part quoted or not.
fn table_ref() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::option::of((any::<bool>(), gap(), gap())),
    )
        .prop_map(|(quote_table, index)| {
            let table = if quote_table {
                "\"GlobalCatalog\""
            } else {
                "GlobalCatalog"
            };
            match index {
                None => table.to_owned(),
                Some((quote_index, g1, g2)) => {
                    let index = if quote_index { "\"ByCat\"" } else { "ByCat" };
                    format!("{table}{g1}.{g2}{index}")
                }
            }
        })
}

fn spelled_statement() -> impl Strategy<Value = String> {
    let select = (
        keyword("select"),
        gap(),
        gap(),
        keyword("from"),
        gap(),
        table_ref(),
    )
        .prop_map(|(s, g1, g2, f, g3, t)| format!("{s}{g1}*{g2}{f}{g3}{t}"));
    let update = (keyword("update"), gap(), table_ref(), gap())
        .prop_map(|(u, g1, t, g2)| format!("{u}{g1}{t}{g2}SET a = 1 WHERE k = 'x'"));
    let delete = (
        keyword("delete"),
        gap(),
        keyword("from"),
        gap(),
        table_ref(),
    )
        .prop_map(|(d, g1, f, g2, t)| format!("{d}{g1}{f}{g2}{t} WHERE k = 'x'"));
    let insert = (
        keyword("insert"),
        gap(),
        keyword("into"),
        gap(),
        table_ref(),
    )
        .prop_map(|(i, g1, n, g2, t)| format!("{i}{g1}{n}{g2}{t} VALUE {{'k': 'x'}}"));
    prop_oneof![select, update, delete, insert]
}

proptest! {
    /// However a statement spells the table (letter case of keywords, quotes, whitespace,
    /// comments, an index suffix), the reader finds it.
    #[test]
    fn any_spelling_of_the_table_is_found(statement in spelled_statement()) {
        let read = read(&statement).map_err(|e| TestCaseError::fail(format!("{statement:?}: {e}")))?;
        prop_assert_eq!(read.tables.len(), 1, "{:?}", statement);
        prop_assert_eq!(&read.tables[0].name, "GlobalCatalog", "{:?}", statement);
    }

    /// Nothing a client sends panics the reader.
    #[test]
    fn any_text_is_read_or_refused(statement in "\\PC{0,60}") {
        let _ = read(&statement);
    }
}
