//! Unit tests of the document core, driven directly (no runtime, no shell): the round contract
//! and the invariants of `document`'s module doc, with an injected clock and a memory store
//! standing in for durability.

mod files;
mod harness;
mod rounds;
