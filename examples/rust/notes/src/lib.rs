//! `notes`: an effector module that keeps notes in a file of the service's data directory.
//!
//! It runs under WASI with the guest directory `/data` mapped to the service's data directory
//! (`mapped_dirs`), and uses `std::fs` as any program would.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};

use weft_sdk::export;

const NOTES: &str = "/data/notes.txt";

/// Notes are one per line: line breaks inside a note are stored as spaces.
fn read_notes() -> io::Result<Vec<String>> {
    match fs::read_to_string(NOTES) {
        Ok(text) => Ok(text.lines().map(String::from).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Appends `note` and returns how many notes there are.
#[export]
pub fn add(note: String) -> Result<u32, String> {
    let line = note.replace(['\r', '\n'], " ");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(NOTES)
        .map_err(|e| format!("cannot open {}: {}", NOTES, e))?;
    writeln!(file, "{}", line).map_err(|e| format!("cannot write {}: {}", NOTES, e))?;
    let count = read_notes().map_err(|e| format!("cannot read {}: {}", NOTES, e))?.len();
    Ok(count as u32)
}

/// All notes, oldest first.
#[export]
pub fn list() -> Result<Vec<String>, String> {
    read_notes().map_err(|e| format!("cannot read {}: {}", NOTES, e))
}
