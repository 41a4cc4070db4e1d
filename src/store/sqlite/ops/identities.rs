//! Identities at identity providers, and sign-in flows.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::super::writer::{ApplyError, Operation};
use crate::domain::{IdentityId, Timestamp, UserId};
use crate::store::{Change, Linked, NewIdentity, PendingFlow, SignInWays, Unlinked};

/// Links `identity` to `user`, unless it is linked to someone: call it inside the
/// operation that needs it, after checking nothing else can refuse.
pub(super) async fn insert_identity(
    db: &mut SqliteConnection,
    user: UserId,
    identity: &NewIdentity,
) -> Result<Linked, ApplyError> {
    let owner: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM identities WHERE issuer = ?1 AND subject = ?2")
            .bind(&identity.issuer)
            .bind(&identity.subject)
            .fetch_optional(&mut *db)
            .await?;
    match owner {
        Some(owner) if owner == user.as_i64() => return Ok(Linked::Already),
        Some(_) => return Ok(Linked::Elsewhere),
        None => {}
    }
    sqlx::query(
        "INSERT INTO identities (id, issuer, subject, user_id, provider, email, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(identity.id.as_i64())
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .bind(user.as_i64())
    .bind(&identity.provider)
    .bind(&identity.email)
    .bind(identity.created_at.as_millis())
    .execute(&mut *db)
    .await?;
    Ok(Linked::Linked)
}

/// Whether an identity is linked to anyone.
pub(super) async fn identity_taken(
    db: &mut SqliteConnection,
    identity: &NewIdentity,
) -> Result<bool, ApplyError> {
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM identities WHERE issuer = ?1 AND subject = ?2")
            .bind(&identity.issuer)
            .bind(&identity.subject)
            .fetch_optional(&mut *db)
            .await?;
    Ok(taken.is_some())
}

pub(in crate::store::sqlite) struct LinkIdentity {
    pub user: UserId,
    pub identity: NewIdentity,
}

#[async_trait]
impl Operation for LinkIdentity {
    type Output = Linked;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<Linked, ApplyError> {
        insert_identity(db, self.user, &self.identity).await
    }
}

pub(in crate::store::sqlite) struct UnlinkIdentity {
    pub user: UserId,
    pub identity: IdentityId,
    pub ways: SignInWays,
}

#[async_trait]
impl Operation for UnlinkIdentity {
    type Output = Unlinked;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<Unlinked, ApplyError> {
        // The writer applies one operation at a time: nothing can link or unlink between
        // the count and the delete.
        let (mine, others, password): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM identities WHERE user_id = ?1 AND id = ?2),
                    (SELECT COUNT(*) FROM identities WHERE user_id = ?1 AND id <> ?2
                        AND provider IN (SELECT value FROM json_each(?3))),
                    (SELECT COUNT(*) FROM users WHERE id = ?1 AND password_hash <> '')",
        )
        .bind(self.user.as_i64())
        .bind(self.identity.as_i64())
        .bind(serde_json::to_string(&self.ways.providers).unwrap_or_else(|_| "[]".to_owned()))
        .fetch_one(&mut *db)
        .await?;
        if mine == 0 {
            return Ok(Unlinked::NotFound);
        }
        if others == 0 && !(self.ways.password && password > 0) {
            return Ok(Unlinked::LastWay);
        }
        sqlx::query("DELETE FROM identities WHERE id = ?1")
            .bind(self.identity.as_i64())
            .execute(&mut *db)
            .await?;
        Ok(Unlinked::Unlinked)
    }
}

pub(in crate::store::sqlite) struct PutFlow(pub PendingFlow);

#[async_trait]
impl Operation for PutFlow {
    type Output = ();

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<(), ApplyError> {
        let flow = &self.0;
        sqlx::query("INSERT INTO sign_in_flows (key_hash, flow, expires_at) VALUES (?1, ?2, ?3)")
            .bind(&flow.key_hash[..])
            .bind(&flow.flow)
            .bind(flow.expires_at.as_millis())
            .execute(&mut *db)
            .await?;
        Ok(())
    }
}

pub(in crate::store::sqlite) struct TakeFlow(pub [u8; 32]);

#[async_trait]
impl Operation for TakeFlow {
    type Output = Option<(String, Timestamp)>;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<Option<(String, Timestamp)>, ApplyError> {
        let taken: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM sign_in_flows WHERE key_hash = ?1 RETURNING flow, expires_at",
        )
        .bind(&self.0[..])
        .fetch_optional(&mut *db)
        .await?;
        Ok(taken.map(|(flow, expires_at)| (flow, Timestamp::from_millis(expires_at))))
    }
}
