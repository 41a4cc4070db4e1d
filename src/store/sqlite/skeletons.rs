//! Fills in the look-alike keys that names stored before migration 0005 lack
//! (`store/skeletons.rs` says why and how collisions are settled). Runs on a connection of
//! its own as the store opens, before the writer starts: nothing else writes then,
//! and the data directory's lock keeps other processes out.

use sqlx::{Connection, SqliteConnection};

use crate::store::StoreResult;
use crate::store::skeletons::{KeyedNames, PUBLIC_ROOM_NAMES, USERNAMES, plain_keys, settle};

/// Gives every username and public room name its key, in one transaction.
pub(super) async fn fill_in(db: &mut SqliteConnection) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    for names in [&USERNAMES, &PUBLIC_ROOM_NAMES] {
        fill_in_column(&mut tx, names).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn fill_in_column(db: &mut SqliteConnection, names: &KeyedNames) -> StoreResult<()> {
    let unkeyed: Vec<(i64, String)> = sqlx::query_as(&names.unkeyed()).fetch_all(&mut *db).await?;
    if unkeyed.is_empty() {
        return Ok(());
    }
    let KeyedNames { table, key, scope, .. } = names;
    let held = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {scope} AND {key} = ?1)");
    let mut taken = Vec::new();
    for plain in plain_keys(&unkeyed) {
        if sqlx::query_scalar::<_, bool>(&held).bind(&plain).fetch_one(&mut *db).await? {
            taken.push(plain);
        }
    }
    let count = unkeyed.len();
    let update = format!("UPDATE {table} SET {key} = ?1 WHERE id = ?2");
    for (id, settled) in settle(unkeyed, taken) {
        sqlx::query(&update).bind(settled).bind(id).execute(&mut *db).await?;
    }
    tracing::info!(table, count, "filled in look-alike keys of names stored before them");
    Ok(())
}
