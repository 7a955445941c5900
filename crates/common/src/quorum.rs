//! etcd's majority rule, shared by the PodDisruptionBudget the resource layer
//! builds and the membership decisions of the service layer.

/// Voting members that must stay up for a cluster of `size` voters to keep quorum.
pub fn quorum(size: i32) -> i32 {
    size / 2 + 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_majority() {
        assert_eq!([1, 2, 3, 4, 5].map(super::quorum), [1, 2, 2, 3, 3]);
    }
}
