//! The human report `weft module inspect` prints.

use std::fmt::Write as _;

use crate::validate::{ModuleInfo, render_memory};

/// Renders `info` as the multi-line report `weft module inspect` prints: name, hash, size,
/// memory, Wasm exports and imports with their signatures, and the interface's functions,
/// records and imports.
pub fn describe(info: &ModuleInfo, name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "module     {name}");
    let _ = writeln!(out, "hash       {}", info.hash);
    let _ = writeln!(out, "size       {} ({} bytes)", human_bytes(info.size), info.size);
    match info.memory {
        Some(m) => {
            let _ = writeln!(
                out,
                "memory     {} ({} initial)",
                render_memory(m.initial_pages, m.max_pages),
                human_bytes(m.initial_pages * 65536)
            );
        }
        None => out.push_str("memory     none\n"),
    }

    let _ = writeln!(out, "exports    {}", info.exports.len());
    for e in &info.exports {
        let _ = writeln!(out, "  {:<9}{} {}", e.kind.to_string(), e.name, e.signature);
    }
    let _ = writeln!(out, "imports    {}", info.imports.len());
    for i in &info.imports {
        let _ = writeln!(out, "  {:<9}{}.{} {}", i.kind.to_string(), i.module, i.name, i.signature);
    }

    let interface = &info.interface;
    out.push_str("interface\n");
    let _ = writeln!(out, "  functions {}", interface.functions.len());
    for f in &interface.functions {
        let _ = writeln!(out, "    {f}");
    }
    let _ = writeln!(out, "  records   {}", interface.records.len());
    for r in &interface.records {
        let _ = writeln!(out, "    {r}");
    }
    let _ = writeln!(out, "  imports   {}", interface.imports.len());
    for i in &interface.imports {
        let _ = writeln!(out, "    {i}");
    }
    out
}

/// `512 B`, `1.5 KiB`, `64.0 MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(64 << 20), "64.0 MiB");
    }
}
