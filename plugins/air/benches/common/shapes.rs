// The bench's scripts, shared by `interpreter.rs` and `native-oracle` (which `include!`s this
// file), so that both run the same text. `oracle_times.mjs` builds the same scripts in JS
// (`WEFT_AIR_BENCH_DUMP=DIR` prints these for comparison).

/// Joins instructions into a balanced binary tree of `seq`s (depth ⌈log2 n⌉, far below the
/// parser's nesting limit; a right-leaning chain of 10,000 would be refused).
fn balanced_seq(mut items: Vec<String>) -> String {
    assert!(!items.is_empty());
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        let mut it = items.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(format!("(seq {a} {b})")),
                None => next.push(a),
            }
        }
        items = next;
    }
    items.pop().expect("one item left")
}

/// The scripts, with `@A` / `@B` standing for quoted peer ids (the oracle script fills them in
/// the same way). Printed by `WEFT_AIR_BENCH_DUMP=DIR` for `oracle_times.mjs`.
mod scripts {
    use super::balanced_seq;

    /// The shape of the reference's `parser-10000-100` ("long air script with lot of variable
    /// assignments"): a call on another peer, then a fold whose body holds 10,000 `ap`s of the
    /// iterator to scalars named by 1-100 random letters (a fixed xorshift sequence, so every run
    /// and `native-oracle` get the same ~600 KB text). Its first run stops at the call (the
    /// particle goes to `peer`): it measures parsing and validating the script, as the
    /// reference's does (its report: parse 23.1 ms, execution 45 µs of 24.9 ms).
    pub fn parser_10000_100() -> String {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let leaves = (0..10_000)
            .map(|_| {
                let len = 1 + (next() % 100) as usize;
                let name: String = (0..len).map(|_| letters[(next() % 52) as usize] as char).collect();
                format!("(ap i {name})")
            })
            .collect();
        format!(r#"(seq (call "peer" ("serv" "func") [] stream) (fold stream i {}))"#, balanced_seq(leaves))
    }

    /// 10,000 scalar `ap`s, each reading the scalar the previous one wrote.
    pub fn chained_ap(n: usize) -> String {
        let mut leaves = vec![r#"(ap "value" x0)"#.to_string()];
        leaves.extend((1..n).map(|i| format!("(ap x{} x{i})", i - 1)));
        balanced_seq(leaves)
    }

    /// `n` calls on peer B in a balanced seq tree, then one call on A that brings the particle
    /// back to A. B's id is bound once to the scalar `b` (as compiled Aqua does with peer ids),
    /// not repeated as a 54-byte literal in every call.
    pub fn seq_tree(n: usize) -> String {
        let mut leaves: Vec<String> = (0..n).map(|i| format!(r#"(call b ("svc" "get") [{i}] r{i})"#)).collect();
        leaves.push(r#"(call @A ("op" "done") [])"#.to_string());
        format!("(seq (ap @B b) {})", balanced_seq(leaves))
    }

    /// The reference's `call_requests500` / `call_results500` script, verbatim.
    pub const FOLD_CALLS: &str = r#"
(seq
   (call %init_peer_id% ("init" "init") [] data)
   (fold data i
       (par
          (call %init_peer_id% ("handle" "handle") [i i i i i i i i i i i i i i i i i i i i i i i i] $stream)
          (next i))))
"#;

    /// B produces a list and then one stream value per element (one signed call each); A takes a
    /// canon snapshot of the stream.
    pub const STREAM: &str = r#"
(seq
   (seq
      (call @B ("gen" "list") [] list)
      (fold list i
         (par
            (call @B ("gen" "item") [i] $s)
            (next i))))
   (canon @A $s #s))
"#;
}
