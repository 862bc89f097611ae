//! Parser errors: kind, line and column.

use weft_plugin_air::parser::{ParseErrorKind, parse};

fn err(s: &str) -> (ParseErrorKind, usize, usize) {
    let e = parse(s).unwrap_err();
    assert!(!e.to_string().contains('\n'), "one-line message: {e}");
    (e.kind, e.line, e.column)
}

#[test]
fn positions() {
    assert_eq!(
        err("(seq (null)\n     (call \"p\" (\"s\" \"f\") [x] y))"),
        (ParseErrorKind::UndefinedVariable("x".into()), 2, 6)
    );
    assert_eq!(err("  (fail 0 \"m\")"), (ParseErrorKind::FailCodeZero, 1, 9));
    assert_eq!(err("(seq(null)(null))").1..=err("(seq(null)(null))").2, 1..=2);
    let (k, l, c) = err("(par (null)\n\t(nul))");
    assert_eq!((k, l, c), (ParseErrorKind::UnknownInstruction("nul".into()), 2, 3));
    let (k, l, c) = err("(call \"p\" (\"s\" \"f\") [\"unclosed]");
    assert_eq!((k, l, c), (ParseErrorKind::UnclosedString, 1, 22));
    let (k, _, c) = err("(ap .5 x)");
    assert_eq!((k, c), (ParseErrorKind::LeadingDot(".5".into()), 5));
    let (k, _, _) = err("(ap 1.0000000000 x)");
    assert_eq!(k, ParseErrorKind::FloatTooBig("1.0000000000".into()));
    let (k, _, _) = err("(ap 99999999999999999999 x)");
    assert_eq!(k, ParseErrorKind::IntOverflow("99999999999999999999".into()));
}

#[test]
fn expected_tokens_in_message() {
    let e = parse("(call \"p\" \"s\" [] x)").unwrap_err();
    assert_eq!(
        e.to_string(),
        "air can't be parsed: 1:11: expected '(' of the service and function, found string \"s\""
    );
    let e = parse("(seq (null) (null)").unwrap_err();
    assert_eq!(e.to_string(), "air can't be parsed: 1:19: expected ')', found the end of the script");
    let e = parse("").unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::UnexpectedEnd { .. }));
}

#[test]
fn static_rules() {
    assert!(matches!(
        err("(seq (call \"p\" (\"s\" \"f\") [] $s) (call \"p\" (\"s\" \"f\") [$s] y))").0,
        ParseErrorKind::NotAllowed { .. }
    ));
    assert_eq!(err("(fold $s i (next i))").0, ParseErrorKind::UndefinedVariable("$s".into()));
    assert_eq!(
        err("(seq (ap 1 $s) (fold $s i (seq (next i) (null))))").0,
        ParseErrorKind::InstructionAfterNext("i".into())
    );
    assert!(matches!(err("(ap #c.$.[0] x)").0, ParseErrorKind::EmptyCanonName(_)));
    assert!(matches!(err("(seq (ap 1 x) (ap x.$ y))").0, ParseErrorKind::InvalidLambda(_)));
}

#[test]
fn whole_language_parses() {
    let script = r#"
    ; every instruction and value form
    (seq
      (seq (call %init_peer_id% ("s" "f") ["str" 42 -7 1.5 true false [] %init_peer_id% %timestamp% %ttl% %last_error% :error:] r)
           (ap r.$.a.[0]! x))
      (par
        (xor (match r "v" (null)) (mismatch 1 r.length (never)))
        (seq (ap ("k" r) %m)
          (seq (canon r.$.peer %m #%cm)
            (seq (canon r.$.peer %m sc)
              (seq (ap 1 $st)
                (seq (canon "p" $st #cc)
                  (seq (fold #cc i (seq (call i ("s" "f") [#cc.$.[0] #cc.length #%cm.$.k #%cm.length i] $out) (next i)) (null))
                    (seq (fold $out j (par (new $inner (new #cin (new y (null)))) (next j)))
                      (xor (fail 1 "m") (xor (fail :error:) (xor (fail %last_error%) (fail r)))))))))))))"#;
    parse(script).unwrap();
}
