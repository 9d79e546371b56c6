//! VMAs: immutable ranges with attributes, and the RCU-safe tree that holds them.
pub(crate) mod area;
pub mod flags;
pub(crate) mod lock;
pub(crate) mod tree;

pub(crate) use area::{ANON_FORKED, AnonId, Backing, Vma, anon_compatible as anon_compatible_pub};
pub use flags::*;
pub(crate) use tree::{TreeEdit, VmaTree};
