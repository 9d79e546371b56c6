//! `/proc/PID/maps` and `/proc/PID/smaps`, byte for byte in Linux's format.
//!
//! [`VmaInfo`] is what a maps line shows about a VMA; [`SmapsCounters`] what the smaps
//! walk adds up for it. Formatting is separate from collection so it is tested against
//! literal Linux text.

mod maps;
mod smaps;

pub use maps::{VmaInfo, maps_line};
pub use smaps::{SMAPS_FIELDS, SmapsCounters, smaps_entry};

/// An event counter kept per CPU (faults, copies): `sum` adds the CPUs' shares up.
pub use crate::sync::percpu::PerCpuCounter;
