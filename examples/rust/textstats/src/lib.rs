//! `textstats`: a pure module with records and arrays, called by `facade`.

use std::collections::BTreeMap;

use weft_sdk::{export, record};

/// Statistics of a list of words.
#[record]
pub struct Stats {
    /// How many words.
    pub words: u32,
    /// Their total length in characters.
    pub chars: u64,
    /// The longest word (the first of the longest), none for no words.
    pub longest: Option<String>,
    /// Each word's length in characters, saturated at 255.
    pub lengths: Vec<u8>,
}

/// A word and how often it occurs.
#[record]
pub struct WordCount {
    /// The word.
    pub word: String,
    /// Its occurrences.
    pub count: u32,
}

/// Counts the words and their lengths.
#[export]
pub fn stats(words: Vec<String>) -> Stats {
    let mut longest: Option<&String> = None;
    let mut chars = 0u64;
    let mut lengths = Vec::with_capacity(words.len());
    for word in &words {
        let n = word.chars().count();
        chars += n as u64;
        lengths.push(n.min(255) as u8);
        if longest.map_or(true, |l| n > l.chars().count()) {
            longest = Some(word);
        }
    }
    Stats { words: words.len() as u32, chars, longest: longest.cloned(), lengths }
}

/// The `n` most frequent words, most frequent first, ties in alphabetical order.
#[export]
pub fn top(words: Vec<String>, n: u32) -> Vec<WordCount> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for word in words {
        *counts.entry(word).or_insert(0) += 1;
    }
    let mut list: Vec<WordCount> = counts.into_iter().map(|(word, count)| WordCount { word, count }).collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    list.truncate(n as usize);
    list
}
