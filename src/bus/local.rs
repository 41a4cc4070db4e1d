//! The bus of a single node: events go straight to this process's hub.

use std::sync::Arc;

use super::{Bus, BusEvent};
use crate::realtime::Hub;

pub struct LocalBus {
    hub: Arc<Hub>,
}

impl LocalBus {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: BusEvent) {
        self.hub.dispatch(event);
    }
}
