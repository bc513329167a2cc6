//! A record's `ItemKey`, the audit table's partition key: one string per item, so one Query
//! is an item's whole history. Pure functions, shared by the record builder and the history
//! command, so both spell an item's key the same way.
//!
//! `<table>#<prefix><partition key>[#<sort key>]`, each key part (partition key behind the
//! table's `key_prefix`, sort key) escaped: `\` becomes `\\` and `#` becomes `\#`. Before,
//! parts went in as they were, so items (`a#b`, `c`) and (`a`, `b#c`) shared one key; escaped,
//! a part's `#` can no longer pass for a separator. A key without `#` or `\` is spelled as
//! before, so most old records keep their key. The prefix is the config's and the same for
//! every item of a table and home region, so it is left as it is (it holds a `#` itself).
//!
//! DynamoDB refuses a partition key over 2,048 bytes, and a table's own key can be longer than
//! that once the table name and both parts are joined. Such a key is stored hashed:
//! `<table>\sha256:<64 hex digits>` over the full key, with the full key in the record's
//! `FullItemKey`. A table name never holds `\`, so no unhashed key can take that form.

/// DynamoDB's limit on a partition key value, in UTF-8 bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;

/// What marks a hashed `ItemKey`, right after the table name.
const HASHED: &str = "\\sha256:";

/// The full `ItemKey` of an item: `prefix` is the table's key prefix (part of the stored
/// partition key, left unescaped), `partition` the rest of the stored partition key.
pub fn full(table: &str, prefix: &str, partition: &str, sort: Option<&str>) -> String {
    let mut key = String::with_capacity(table.len() + prefix.len() + partition.len() + 8);
    key.push_str(table);
    key.push('#');
    key.push_str(prefix);
    escape_into(&mut key, partition);
    if let Some(sort) = sort {
        key.push('#');
        escape_into(&mut key, sort);
    }
    key
}

fn escape_into(out: &mut String, part: &str) {
    for c in part.chars() {
        if c == '\\' || c == '#' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// How an item's key is stored in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The full key fits DynamoDB's partition key limit: it is the `ItemKey`.
    Plain(String),
    /// Too long: `ItemKey` is the hash, `FullItemKey` the full key.
    Hashed { item_key: String, full: String },
}

impl Stored {
    /// The key to store as `ItemKey` (and to Query by).
    pub fn item_key(&self) -> &str {
        match self {
            Stored::Plain(key) => key,
            Stored::Hashed { item_key, .. } => item_key,
        }
    }
}

/// The stored form of `full` (from [`full`]) for `table`: itself when it fits, hashed when not.
pub fn stored(table: &str, full: String) -> Stored {
    if full.len() <= MAX_PARTITION_KEY_BYTES {
        return Stored::Plain(full);
    }
    let item_key = format!(
        "{table}{HASHED}{}",
        crate::digest::sha256_hex(full.as_bytes())
    );
    Stored::Hashed { item_key, full }
}

/// The `ItemKey` an older version wrote for the same item: parts joined as they were, with
/// no escaping and no hashing. The same string for items whose parts hold `#` differently,
/// so records found under it need [`crate::cli::history`]'s check of their `Key`.
pub fn legacy(table: &str, prefix: &str, partition: &str, sort: Option<&str>) -> String {
    let mut key = format!("{table}#{prefix}{partition}");
    if let Some(sort) = sort {
        key.push('#');
        key.push_str(sort);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_holding_the_separator_no_longer_share_a_key() {
        let one = full("T", "", "a#b", Some("c"));
        let two = full("T", "", "a", Some("b#c"));
        assert_ne!(one, two);
        assert_eq!(one, r"T#a\#b#c");
        assert_eq!(two, r"T#a#b\#c");
        // Before, both were one key.
        assert_eq!(
            legacy("T", "", "a#b", Some("c")),
            legacy("T", "", "a", Some("b#c"))
        );
    }

    #[test]
    fn a_backslash_is_escaped_too() {
        // Without escaping `\`, (`a\`, `b`) would be `T#a\#b`: the key of the item `a#b`.
        let backslash = full("T", "", "a\\", Some("b"));
        assert_eq!(backslash, r"T#a\\#b");
        assert_ne!(backslash, full("T", "", "a#b", None));
    }

    #[test]
    fn plain_keys_and_the_prefix_are_spelled_as_before() {
        let key = full("Cat", "us-east-1#", "item-1", Some("books"));
        assert_eq!(key, "Cat#us-east-1#item-1#books");
        assert_eq!(key, legacy("Cat", "us-east-1#", "item-1", Some("books")));
        assert_eq!(stored("Cat", key.clone()), Stored::Plain(key));
    }

    #[test]
    fn a_key_over_the_limit_is_hashed_and_kept_whole_beside() {
        let at_limit = full("T", "", &"k".repeat(MAX_PARTITION_KEY_BYTES - 2), None);
        assert!(matches!(stored("T", at_limit), Stored::Plain(_)));
        let long = full("T", "", &"k".repeat(2000), Some(&"s".repeat(1000)));
        let Stored::Hashed { item_key, full } = stored("T", long.clone()) else {
            panic!("not hashed");
        };
        assert_eq!(full, long);
        assert!(item_key.starts_with("T\\sha256:"), "{item_key}");
        assert_eq!(item_key.len(), "T\\sha256:".len() + 64);
        // The same key always hashes the same way, so an item's history stays one Query.
        assert_eq!(stored("T", long).item_key(), item_key);
    }

    #[test]
    fn multibyte_characters_count_in_bytes() {
        // 700 three-byte characters: 2,100 bytes, over the limit in bytes though not in chars.
        let key = full("T", "", &"€".repeat(700), None);
        assert!(key.chars().count() < MAX_PARTITION_KEY_BYTES);
        assert!(matches!(stored("T", key), Stored::Hashed { .. }));
    }
}
