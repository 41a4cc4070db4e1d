//! Fills in the look-alike keys that names stored before migration 0002 lack
//! (`store/skeletons.rs` says why and how collisions are settled). Runs as migrations do,
//! on the migrating connection, before the store serves.
//!
//! Other nodes may be serving meanwhile, and several may start at once: each column is
//! settled in one transaction that first locks its table against writes (`SHARE ROW
//! EXCLUSIVE` conflicts with every insert and update, and with itself), so no name
//! registered meanwhile can take a key this pass hands out, and a second node waits and
//! finds nothing left to do. Writers wait for the few seconds that takes, once; every
//! later start only checks that no key is missing.

use sqlx::{Connection, PgConnection};

use crate::store::StoreResult;
use crate::store::skeletons::{KeyedNames, PUBLIC_ROOM_NAMES, USERNAMES, plain_keys, settle};

/// Gives every username and public room name its key.
pub(super) async fn fill_in(db: &mut PgConnection) -> StoreResult<()> {
    for names in [&USERNAMES, &PUBLIC_ROOM_NAMES] {
        let missing: bool = sqlx::query_scalar(&names.any_unkeyed()).fetch_one(&mut *db).await?;
        if missing {
            fill_in_column(db, names).await?;
        }
    }
    Ok(())
}

async fn fill_in_column(db: &mut PgConnection, names: &KeyedNames) -> StoreResult<()> {
    let KeyedNames { table, key, scope, .. } = names;
    let mut tx = db.begin().await?;
    sqlx::query(&format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    let unkeyed: Vec<(i64, String)> = sqlx::query_as(&names.unkeyed()).fetch_all(&mut *tx).await?;
    let count = unkeyed.len();
    let taken: Vec<String> =
        sqlx::query_scalar(&format!("SELECT {key} FROM {table} WHERE {scope} AND {key} = ANY($1)"))
            .bind(plain_keys(&unkeyed))
            .fetch_all(&mut *tx)
            .await?;
    let (ids, keys): (Vec<i64>, Vec<String>) = settle(unkeyed, taken).into_iter().unzip();
    sqlx::query(&format!(
        "UPDATE {table} t SET {key} = v.key
         FROM UNNEST($1::bigint[], $2::text[]) AS v (id, key) WHERE t.id = v.id"
    ))
    .bind(ids)
    .bind(keys)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if count > 0 {
        tracing::info!(table, count, "filled in look-alike keys of names stored before them");
    }
    Ok(())
}
