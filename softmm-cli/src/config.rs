//! Loading a softmm [`Config`] from a file (`--config` of `replay` and `stress`).
//!
//! A file whose name ends in `.json` is JSON, one ending in `.toml` TOML, any other is the
//! command's default format; unset fields keep their defaults and an unknown field is an
//! error. The file is read through
//! [`crate::input::read_text`] with the [`SMALL`]
//! limit.

use std::path::Path;

use softmm::Config;

use crate::input::{SMALL, read_text};

/// The syntax of a configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML (`phys_mem_bytes = 67108864`).
    Toml,
    /// JSON (`{"phys_mem_bytes": 67108864}`).
    Json,
}

impl Format {
    /// The format of the file at `path`: by its extension, else `default`.
    pub fn of(path: &Path, default: Format) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("toml") => Format::Toml,
            _ => default,
        }
    }
}

/// Parses a configuration from `text`.
pub fn parse_config(text: &str, format: Format) -> Result<Config, String> {
    match format {
        Format::Toml => toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string()),
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
    }
}

/// The end of the user address space (x86-64 `TASK_SIZE`).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// The most physical memory a configuration may ask for (the frames are reserved up front).
pub const MAX_PHYS_MEM: u64 = 1 << 40;

/// Checks that `config` describes a machine softmm can build and run: physical memory of
/// 2 MiB to [`MAX_PHYS_MEM`], an address-space layout of page-aligned addresses with
/// `mmap_min_addr <= brk_start < mmap_base <= TASK_SIZE`, and whatever else
/// [`Config::validate`] requires (`fault_around_bytes` at most 2 MiB).
pub fn check(config: &Config) -> Result<(), String> {
    let phys = config.phys_mem_bytes;
    if !(2 << 20..=MAX_PHYS_MEM).contains(&phys) {
        return Err(format!(
            "phys_mem_bytes {phys}: must be between 2 MiB and {} GiB",
            MAX_PHYS_MEM >> 30
        ));
    }
    let fields = [
        ("mmap_min_addr", config.mmap_min_addr),
        ("brk_start", config.brk_start),
        ("mmap_base", config.mmap_base),
    ];
    for (name, value) in fields {
        if value % 4096 != 0 || value > TASK_SIZE {
            return Err(format!(
                "{name} {value:#x}: must be page-aligned and at most {TASK_SIZE:#x}"
            ));
        }
    }
    if !(config.mmap_min_addr <= config.brk_start && config.brk_start < config.mmap_base) {
        return Err(format!(
            "mmap_min_addr {:#x}, brk_start {:#x}, mmap_base {:#x}: must be in this order, \
             the last above the others",
            config.mmap_min_addr, config.brk_start, config.mmap_base
        ));
    }
    // Whatever else the library refuses (`fault_around_bytes`, ...).
    config.validate().map_err(|e| e.to_string())
}

/// Reads and parses the configuration file at `path` (in `default` format unless its
/// extension says otherwise); the error names the file (`FILE: why` or
/// `FILE:LINE:COL: why`).
pub fn load_config(path: &Path, default: Format) -> Result<Config, String> {
    let shown = path.display().to_string();
    let text = read_text(path, SMALL, false).map_err(|e| e.at(&shown))?;
    parse_config(&text.text, Format::of(path, default))
        .and_then(|c| check(&c).map(|()| c))
        .map_err(|e| format!("{shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_set_fields_and_keep_defaults() {
        let t = parse_config("phys_mem_bytes = 67108864\n", Format::Toml).unwrap();
        assert_eq!(t.phys_mem_bytes, 64 << 20);
        assert_eq!(t.max_map_count, Config::default().max_map_count);
        let j = parse_config(r#"{"phys_mem_bytes": 67108864}"#, Format::Json).unwrap();
        assert_eq!(j, t);
    }

    #[test]
    fn unknown_fields_and_bad_syntax_are_errors() {
        let e = parse_config("frames = 1\n", Format::Toml).unwrap_err();
        assert!(e.contains("unknown field `frames`"), "{e}");
        let e = parse_config("{", Format::Json).unwrap_err();
        assert!(e.contains("EOF"), "{e}");
    }

    #[test]
    fn fields_the_library_refuses_are_refused() {
        let e = check(&Config {
            fault_around_bytes: 4 << 20,
            ..Config::default()
        })
        .unwrap_err();
        assert!(e.contains("fault_around_bytes"), "{e}");
    }

    #[test]
    fn layouts_softmm_cannot_run_are_refused() {
        assert_eq!(check(&Config::default()), Ok(()));
        let bad = |c: Config| check(&c).unwrap_err();
        let e = bad(Config {
            phys_mem_bytes: 1 << 20,
            ..Config::default()
        });
        assert_eq!(
            e,
            "phys_mem_bytes 1048576: must be between 2 MiB and 1024 GiB"
        );
        let e = bad(Config {
            mmap_base: 0x1001,
            ..Config::default()
        });
        assert_eq!(
            e,
            "mmap_base 0x1001: must be page-aligned and at most 0x7ffffffff000"
        );
        let e = bad(Config {
            brk_start: 0x7fff_f7ff_f000,
            ..Config::default()
        });
        assert!(
            e.ends_with("must be in this order, the last above the others"),
            "{e}"
        );
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::of(Path::new("a.json"), Format::Toml), Format::Json);
        assert_eq!(Format::of(Path::new("a.toml"), Format::Json), Format::Toml);
        assert_eq!(Format::of(Path::new("a"), Format::Json), Format::Json);
    }
}
