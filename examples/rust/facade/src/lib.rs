//! `facade`: calls the `textstats` module of its service with records and arrays.

use weft_sdk::{export, import, record};

/// The same record as textstats' `Stats` (weft compares records by structure, field by field).
#[record]
pub struct Stats {
    pub words: u32,
    pub chars: u64,
    pub longest: Option<String>,
    pub lengths: Vec<u8>,
}

/// As textstats' `WordCount`.
#[record]
pub struct WordCount {
    pub word: String,
    pub count: u32,
}

/// What `analyze` finds in a text.
#[record]
pub struct Report {
    /// Lines of the text.
    pub lines: u32,
    /// The statistics of its words (lowercased, without punctuation).
    pub stats: Stats,
    /// Its three most frequent words.
    pub top: Vec<WordCount>,
    /// The average word length, none for no words.
    pub average_length: Option<f64>,
}

#[import(module = "textstats")]
extern "C" {
    /// Counts the words and their lengths.
    fn stats(words: Vec<String>) -> Stats;
    /// The `n` most frequent words.
    fn top(words: Vec<String>, n: u32) -> Vec<WordCount>;
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Splits `text` into words and asks textstats about them.
#[export]
pub fn analyze(text: String) -> Report {
    let words = words(&text);
    let stats = stats(words.clone());
    let top = top(words, 3);
    let average_length = if stats.words == 0 { None } else { Some(stats.chars as f64 / stats.words as f64) };
    Report { lines: text.lines().count() as u32, stats, top, average_length }
}

/// Forwards to textstats' `stats` unchanged: one module-to-module call, for benchmarks.
#[export]
pub fn hop(words: Vec<String>) -> Stats {
    stats(words)
}
