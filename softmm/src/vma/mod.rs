//! VMAs: immutable ranges with attributes, and the RCU-safe tree that holds them.
mod area;
pub mod flags;
pub(crate) mod lock;
mod tree;

pub use area::{ANON_FORKED, AnonId, Backing, Vma, anon_compatible as anon_compatible_pub};
pub use flags::*;
pub use tree::{Shape as TreeShape, TreeEdit, VmaTree};
