//! Pod addresses, handed out as the host-local IPAM plugin does.

use std::collections::BTreeSet;

/// Pods get the rest.
pub(super) const POD_HOSTS: std::ops::RangeInclusive<u8> = 2..=252;

/// Pod addresses in use and the last one handed out. As the host-local IPAM plugin does, a new pod
/// gets the next free address after the last one, so a deleted pod's address is not handed out
/// again at once: the host and other pods keep its old MAC in their neighbour tables for up to
/// ~45 s, and a pod given it at once was unreachable from the host for that long.
#[derive(Debug, Default)]
pub(super) struct Addresses {
    used: BTreeSet<u8>,
    last: u8,
}

impl Addresses {
    /// `own` (a pod's earlier address) when it is free, else the next free one after the last.
    pub(super) fn take(&mut self, own: Option<u8>) -> Option<u8> {
        if let Some(own) = own.filter(|h| POD_HOSTS.contains(h) && !self.used.contains(h)) {
            self.used.insert(own);
            return Some(own);
        }
        let after = (self.last.saturating_add(1)..=*POD_HOSTS.end()).chain(POD_HOSTS);
        let free = after.filter(|h| POD_HOSTS.contains(h)).find(|h| !self.used.contains(h))?;
        self.used.insert(free);
        self.last = free;
        Some(free)
    }

    /// Frees `host` (its pod's namespace is gone).
    pub(super) fn free(&mut self, host: u8) {
        self.used.remove(&host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_address_is_handed_out_again_only_after_the_others() {
        let mut a = Addresses::default();
        assert_eq!((a.take(None), a.take(None)), (Some(2), Some(3)));
        a.free(2);
        assert_eq!(a.take(None), Some(4), "not the address just freed");
        // A pod's own earlier address, when free, is its again.
        assert_eq!(a.take(Some(2)), Some(2));
        a.free(3);
        for h in 5..=252 {
            assert_eq!(a.take(None), Some(h));
        }
        assert_eq!(a.take(None), Some(3), "wraps around to the one free address");
        assert_eq!(a.take(None), None, "full");
        assert_eq!(a.take(Some(1)), None, "not a pod address");
    }
}
