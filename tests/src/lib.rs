//! # mosaic-tests: end-to-end tests on local clusters
//!
//! The tests in `tests/tests/` start real local clusters with the `mosaic`
//! binary (`mosaic cluster up`), drive them as a user would, and check what a
//! user would see. This library holds the harness: where the binaries are, a
//! cluster that is torn down when the test ends, and polling helpers (tests
//! wait for conditions with a deadline, they never assert a time).
