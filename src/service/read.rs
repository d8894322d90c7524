//! Reading and canceling an application's verification by its id.

use std::sync::Arc;

use crate::apps::App;
use crate::domain::{Clock, Verification, VerificationId};
use crate::events::{EventKind, Outbox};
use crate::store::{Finish, FinishOutcome, Owner, Store, StoreError, VerificationStore};

use super::announce_for;

#[derive(Debug, Clone)]
pub struct ReadVerification {
    store: Store,
    clock: Arc<dyn Clock>,
    outbox: Outbox,
}

impl ReadVerification {
    pub fn new(store: Store, clock: Arc<dyn Clock>, outbox: Outbox) -> Self {
        Self {
            store,
            clock,
            outbox,
        }
    }

    /// `app`'s verification `id`, with the status it has now; `None` when
    /// it is unknown, past retention, or another application's.
    pub async fn get(
        &self,
        app: &App,
        id: &VerificationId,
    ) -> Result<Option<Verification>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .store
            .get(id, Owner::App(&app.id), now)
            .await?
            .map(|mut v| {
                v.status = v.status_at(now);
                v
            }))
    }

    pub async fn cancel(
        &self,
        app: &App,
        id: &VerificationId,
    ) -> Result<FinishOutcome, StoreError> {
        let now = self.clock.now();
        let outcome = self
            .store
            .finish(id, Owner::App(&app.id), Finish::Cancel, now)
            .await?;
        if let Some((Ok(()), v)) = &outcome {
            announce_for(&self.outbox, app, EventKind::Canceled, v).await;
        }
        Ok(outcome)
    }
}
