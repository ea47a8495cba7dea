//! Node controls (`mosaic node stay|nostay|block|noblock|expel|bring|quiet|
//! noquiet|speed N`), in the spirit of openMosix's `mosctl`. They live in
//! the daemon's memory (a restart forgets them, as a reboot did there) and
//! are read by the balancer, the guest listener and the load publisher.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use mosaic_proto::LoadVector;
use mosaic_proto::control::{NodeAction, NodeControls};

/// The switches of one node.
#[derive(Debug, Default)]
pub struct Controls {
    stay: AtomicBool,
    block: AtomicBool,
    quiet: AtomicBool,
    /// `expel` until `noblock`: guests that arrive late are sent home too.
    expel: AtomicBool,
    /// 0: the calibrated speed.
    speed: AtomicU32,
}

impl Controls {
    /// This node's processes are never moved by the balancer.
    pub fn stay(&self) -> bool {
        self.stay.load(Relaxed)
    }

    /// No new guests are accepted.
    pub fn blocked(&self) -> bool {
        self.block.load(Relaxed)
    }

    /// Guests are being sent home (`expel`, until `noblock`).
    pub fn expelling(&self) -> bool {
        self.expel.load(Relaxed)
    }

    /// The load is not published.
    pub fn quiet(&self) -> bool {
        self.quiet.load(Relaxed)
    }

    /// The load vector as others should see it (and as the balancer uses
    /// it for this node): speed overridden, guests refused when blocked.
    pub fn apply(&self, mut load: LoadVector) -> LoadVector {
        let speed = self.speed.load(Relaxed);
        if speed > 0 {
            load.speed = speed;
        }
        load.accepts_guests &= !self.blocked();
        load
    }

    /// Sets the switches `action` names; the caller carries out `expel`
    /// and `bring` (which move processes).
    pub fn set(&self, action: &NodeAction) {
        match *action {
            NodeAction::Show | NodeAction::Bring => {}
            NodeAction::Stay => self.stay.store(true, Relaxed),
            NodeAction::NoStay => self.stay.store(false, Relaxed),
            NodeAction::Block => self.block.store(true, Relaxed),
            NodeAction::Expel => {
                self.block.store(true, Relaxed);
                self.expel.store(true, Relaxed);
            }
            NodeAction::NoBlock => {
                self.block.store(false, Relaxed);
                self.expel.store(false, Relaxed);
            }
            NodeAction::Quiet => self.quiet.store(true, Relaxed),
            NodeAction::NoQuiet => self.quiet.store(false, Relaxed),
            NodeAction::Speed { speed } => self.speed.store(speed, Relaxed),
        }
    }

    /// What `mosaic node` shows.
    pub fn snapshot(&self, load: &LoadVector, guests: usize, away: usize) -> NodeControls {
        NodeControls {
            stay: self.stay(),
            block: self.blocked(),
            quiet: self.quiet(),
            speed: self.apply(load.clone()).speed,
            guests,
            away,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_change_what_is_published() {
        let c = Controls::default();
        let load = LoadVector {
            speed: 1000,
            accepts_guests: true,
            ..Default::default()
        };
        assert_eq!(c.apply(load.clone()), load);
        c.set(&NodeAction::Expel);
        c.set(&NodeAction::Speed { speed: 2500 });
        let seen = c.apply(load.clone());
        assert!(!seen.accepts_guests && c.blocked());
        assert_eq!(seen.speed, 2500);
        c.set(&NodeAction::NoBlock);
        c.set(&NodeAction::Stay);
        assert!(c.apply(load).accepts_guests && c.stay());
    }
}
