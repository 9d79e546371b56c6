//! VMAs: immutable ranges with attributes, and the RCU-safe tree that holds them.
pub mod flags;
mod tree;
mod vma;

pub use flags::*;
pub use tree::{TreeEdit, VmaTree};
pub use vma::{AnonVma, Backing, Vma, anon_compatible as anon_compatible_pub};
