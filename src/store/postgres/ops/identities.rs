//! Identities at identity providers, and sign-in flows.

use async_trait::async_trait;

use super::super::gate::Gate;
use super::super::writes::{Done, Failed, Tx, Write};
use crate::domain::{IdentityId, Timestamp, UserId};
use crate::store::{Change, Linked, NewIdentity, PendingFlow, SignInWays, Unlinked};

/// Links `identity` to `user` unless it is linked to someone. Another node may link the
/// same identity at the same moment: the unique index decides, and the loser reads whose
/// it became.
pub(super) async fn insert_identity(
    tx: &mut Tx,
    user: UserId,
    identity: &NewIdentity,
) -> Result<Linked, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO identities (id, issuer, subject, user_id, provider, email, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (issuer, subject) DO NOTHING",
    )
    .bind(identity.id.as_i64())
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .bind(user.as_i64())
    .bind(&identity.provider)
    .bind(&identity.email)
    .bind(identity.created_at.as_millis())
    .execute(tx.db())
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Linked::Linked);
    }
    let owner: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM identities WHERE issuer = $1 AND subject = $2")
            .bind(&identity.issuer)
            .bind(&identity.subject)
            .fetch_optional(tx.db())
            .await?;
    Ok(if owner == Some(user.as_i64()) { Linked::Already } else { Linked::Elsewhere })
}

pub(in crate::store::postgres) struct LinkIdentity {
    pub user: UserId,
    pub identity: NewIdentity,
}

#[async_trait]
impl Write for LinkIdentity {
    type Output = Linked;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<Linked>, Failed> {
        let linked = insert_identity(tx, self.user, &self.identity).await?;
        Ok(match linked {
            Linked::Linked => Done::Commit(linked),
            _ => Done::Rollback(linked),
        })
    }
}

pub(in crate::store::postgres) struct UnlinkIdentity {
    pub user: UserId,
    pub identity: IdentityId,
    pub ways: SignInWays,
}

#[async_trait]
impl Write for UnlinkIdentity {
    type Output = Unlinked;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<Unlinked>, Failed> {
        // The user's row lock: two unlinks of one user's last two identities (from two
        // nodes, say) take turns, and the second sees that only one is left.
        let password: Option<bool> =
            sqlx::query_scalar("SELECT password_hash <> '' FROM users WHERE id = $1 FOR UPDATE")
                .bind(self.user.as_i64())
                .fetch_optional(tx.db())
                .await?;
        let (mine, others): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE id = $2),
                    COUNT(*) FILTER (WHERE id <> $2 AND provider = ANY($3))
             FROM identities WHERE user_id = $1",
        )
        .bind(self.user.as_i64())
        .bind(self.identity.as_i64())
        .bind(&self.ways.providers)
        .fetch_one(tx.db())
        .await?;
        if mine == 0 {
            return Ok(Done::Rollback(Unlinked::NotFound));
        }
        if others == 0 && !(self.ways.password && password == Some(true)) {
            return Ok(Done::Rollback(Unlinked::LastWay));
        }
        sqlx::query("DELETE FROM identities WHERE id = $1")
            .bind(self.identity.as_i64())
            .execute(tx.db())
            .await?;
        Ok(Done::Commit(Unlinked::Unlinked))
    }
}

pub(in crate::store::postgres) struct PutFlow(pub PendingFlow);

#[async_trait]
impl Write for PutFlow {
    type Output = ();

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<()>, Failed> {
        let flow = &self.0;
        sqlx::query("INSERT INTO sign_in_flows (key_hash, flow, expires_at) VALUES ($1, $2, $3)")
            .bind(&flow.key_hash[..])
            .bind(&flow.flow)
            .bind(flow.expires_at.as_millis())
            .execute(tx.db())
            .await?;
        Ok(Done::Commit(()))
    }
}

pub(in crate::store::postgres) struct TakeFlow(pub [u8; 32]);

#[async_trait]
impl Write for TakeFlow {
    type Output = Option<(String, Timestamp)>;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        _: &mut Vec<Change>,
    ) -> Result<Done<Option<(String, Timestamp)>>, Failed> {
        // Two nodes taking the same flow: the row lock makes one wait, and it then deletes
        // nothing.
        let taken: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM sign_in_flows WHERE key_hash = $1 RETURNING flow, expires_at",
        )
        .bind(&self.0[..])
        .fetch_optional(tx.db())
        .await?;
        Ok(Done::Commit(taken.map(|(flow, at)| (flow, Timestamp::from_millis(at)))))
    }
}
