//! Look-alike keys for names stored before there were any (SQLite migration 0005,
//! PostgreSQL 0002): usernames and public room names are unique under
//! [`lookalike_key`], and SQL cannot compute one, so each store fills in the missing keys
//! as it opens, before it serves (`sqlite/skeletons.rs`, `postgres/skeletons.rs`).
//!
//! Names that already look alike cannot be refused any more: both accounts exist, both
//! rooms have members. So the oldest name keeps its key and each later one gets a key of
//! its own, made distinct with its id; both go on working, and only new names are held to
//! the rule. Opening never fails over a name.

use std::collections::HashSet;

use crate::domain::lookalike_key;

/// A column of names unique under their look-alike keys, and where those keys are kept.
pub(super) struct KeyedNames {
    pub table: &'static str,
    pub name: &'static str,
    pub key: &'static str,
    /// Which rows the key's unique index covers (an SQL condition).
    pub scope: &'static str,
}

pub(super) const USERNAMES: KeyedNames =
    KeyedNames { table: "users", name: "username", key: "username_skeleton", scope: "TRUE" };

pub(super) const PUBLIC_ROOM_NAMES: KeyedNames =
    KeyedNames { table: "rooms", name: "name", key: "name_skeleton", scope: "kind = 'public'" };

impl KeyedNames {
    /// Whether any row lacks its key (the index on the key finds NULLs too).
    pub fn any_unkeyed(&self) -> String {
        let Self { table, key, scope, .. } = self;
        format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {scope} AND {key} IS NULL)")
    }

    /// The rows without a key, as `(id, name)`, oldest first.
    pub fn unkeyed(&self) -> String {
        let Self { table, name, key, scope } = self;
        format!(
            "SELECT id, {name} FROM {table} WHERE {scope} AND {key} IS NULL ORDER BY created_at, id"
        )
    }
}

/// The keys to give rows that have none (`(id, name)`, oldest first), when the keys in
/// `taken` are held already: each row its name's key, unless an older row holds it, then
/// that key, U+001F and its id. No name can have such a key (parsing refuses control
/// characters, and keys are made only of what names are made of), and ids are unique.
pub(super) fn settle(
    unkeyed: Vec<(i64, String)>,
    taken: impl IntoIterator<Item = String>,
) -> Vec<(i64, String)> {
    let mut taken: HashSet<String> = taken.into_iter().collect();
    unkeyed
        .into_iter()
        .map(|(id, name)| {
            let key = lookalike_key(&name);
            let key = if taken.contains(&key) { format!("{key}\u{1F}{id}") } else { key };
            taken.insert(key.clone());
            (id, key)
        })
        .collect()
}

/// The keys of `unkeyed`'s names, to ask the database which are held already.
pub(super) fn plain_keys(unkeyed: &[(i64, String)]) -> Vec<String> {
    unkeyed.iter().map(|(_, name)| lookalike_key(name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(names: &[(i64, &str)]) -> Vec<(i64, String)> {
        names.iter().map(|&(id, name)| (id, name.to_owned())).collect()
    }

    #[test]
    fn names_that_do_not_collide_get_their_keys() {
        let settled = settle(rows(&[(1, "alice"), (2, "bob")]), []);
        assert_eq!(settled, rows(&[(1, "alice"), (2, "bob")]));
    }

    #[test]
    fn the_oldest_of_lookalikes_keeps_the_key() {
        let settled = settle(rows(&[(7, "paypal"), (3, "paypa1"), (9, "PAYPAL")]), []);
        assert_eq!(settled, rows(&[(7, "paypal"), (3, "paypal\u{1F}3"), (9, "paypal\u{1F}9")]));
    }

    #[test]
    fn a_key_held_already_is_not_given_again() {
        let taken = ["general".to_owned()];
        let settled = settle(rows(&[(5, "gen\u{0435}ral"), (6, "lobby")]), taken);
        assert_eq!(settled, rows(&[(5, "general\u{1F}5"), (6, "lobby")]));
    }

    #[test]
    fn every_settled_key_is_distinct() {
        let names = rows(&[(1, "rn"), (2, "m"), (3, "RN"), (4, "\u{FF4D}"), (5, "rm")]);
        let settled = settle(names, ["rn".to_owned()]);
        let keys: HashSet<&str> = settled.iter().map(|(_, key)| key.as_str()).collect();
        assert_eq!(keys.len(), settled.len(), "{settled:?}");
        assert!(!keys.contains("rn"), "{settled:?}");
    }
}
