//! Static checks of SPEC §1.4, done on the arena without recursion.

use std::collections::HashSet;

use super::ast::*;
use super::error::{ParseError, ParseErrorKind};

struct FoldInfo {
    node: NodeId,
    iterator: String,
    over_stream: bool,
    nexts: usize,
}

/// Checks definitions-before-use and the fold/next rules.
///
/// # Errors
/// The first violated rule, in textual order.
pub fn validate(ast: &Ast, script: &str) -> Result<(), ParseError> {
    let err = |kind, id: NodeId| Err(ParseError::new(kind, ast.node(id).span, script));
    let mut defined: HashSet<&str> = HashSet::new();
    let mut folds: Vec<FoldInfo> = Vec::new();
    // parent of each node (indexed by node id), to find the "after next" position
    let mut parent: Vec<Option<NodeId>> = vec![None; ast.nodes.len()];
    enum Ev {
        Enter(NodeId),
        Exit(NodeId),
    }
    let mut stack = vec![Ev::Enter(ast.root)];
    while let Some(ev) = stack.pop() {
        let id = match ev {
            Ev::Exit(id) => {
                if matches!(ast.node(id).instr, Instr::Fold(_)) {
                    folds.pop();
                }
                continue;
            }
            Ev::Enter(id) => id,
        };
        let node = ast.node(id);
        let uses = |values: &[&Value], defined: &HashSet<&str>| -> Option<String> {
            for v in values {
                let mut names: Vec<&str> = v.lambda_variables();
                if let Some(n) = v.variable() {
                    names.insert(0, n);
                }
                if let Some(n) = names.into_iter().find(|n| !defined.contains(n)) {
                    return Some(n.to_string());
                }
            }
            None
        };
        let check = |values: &[&Value], defined: &HashSet<&str>| match uses(values, defined) {
            Some(name) => err(ParseErrorKind::UndefinedVariable(name), id),
            None => Ok(()),
        };
        match &node.instr {
            Instr::Call(c) => {
                let mut vals = vec![&c.peer, &c.service, &c.function];
                vals.extend(c.args.iter());
                check(&vals, &defined)?;
                match &c.output {
                    CallOutput::Scalar(n) | CallOutput::Stream(n) => {
                        defined.insert(n);
                    }
                    CallOutput::None => {}
                }
            }
            Instr::Canon(c) => {
                check(&[&c.peer], &defined)?;
                match &c.dest {
                    CanonDest::Stream(n) | CanonDest::Map(n) | CanonDest::Scalar(n) => {
                        defined.insert(n);
                    }
                }
            }
            Instr::Ap(a) => {
                check(&[&a.arg], &defined)?;
                match &a.dest {
                    ApDest::Scalar(n) | ApDest::Stream(n) => {
                        defined.insert(n);
                    }
                }
            }
            Instr::ApMap(a) => {
                check(&[&a.key, &a.value], &defined)?;
                defined.insert(&a.map);
            }
            Instr::Match { left, right, .. } => check(&[left, right], &defined)?,
            Instr::Fail(f) => {
                if let Fail::Value(v) = &**f {
                    check(&[v], &defined)?;
                }
            }
            Instr::Fold(f) => {
                match &f.iterable {
                    Iterable::Value(v) => check(&[v], &defined)?,
                    Iterable::Stream(n) | Iterable::StreamMap(n) => {
                        if !defined.contains(n.as_str()) {
                            return err(ParseErrorKind::UndefinedVariable(n.clone()), id);
                        }
                    }
                }
                if folds.iter().any(|fi| fi.iterator == f.iterator) {
                    return err(ParseErrorKind::IteratorReused(f.iterator.clone()), id);
                }
                defined.insert(&f.iterator);
                folds.push(FoldInfo {
                    node: id,
                    iterator: f.iterator.clone(),
                    over_stream: !matches!(f.iterable, Iterable::Value(_)),
                    nexts: 0,
                });
            }
            Instr::Next(it) => {
                let Some(fi) = folds.iter_mut().rev().find(|fi| &fi.iterator == it) else {
                    return err(ParseErrorKind::NextOutsideFold(it.clone()), id);
                };
                fi.nexts += 1;
                if fi.nexts > 1 {
                    return err(ParseErrorKind::MultipleNext(it.clone()), id);
                }
                if fi.over_stream {
                    // walk up from next to its fold: next must not be the left side of a seq or par
                    let fold = fi.node;
                    let mut child = id;
                    while let Some(p) = parent[child.0 as usize] {
                        if p == fold {
                            break;
                        }
                        if let Instr::Seq(left, _) | Instr::Par(left, _) = ast.node(p).instr
                            && left == child
                        {
                            return err(ParseErrorKind::InstructionAfterNext(it.clone()), p);
                        }
                        child = p;
                    }
                }
            }
            Instr::New { name, .. } => {
                if folds.iter().any(|fi| &fi.iterator == name) {
                    return err(ParseErrorKind::NewOnIterator(name.clone()), id);
                }
                defined.insert(name);
            }
            Instr::Seq(..) | Instr::Par(..) | Instr::Xor(..) | Instr::Null | Instr::Never => {}
        }
        stack.push(Ev::Exit(id));
        for child in node.instr.children().into_iter().rev() {
            parent[child.0 as usize] = Some(id);
            stack.push(Ev::Enter(child));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::parser::{ParseErrorKind, parse};

    fn kind(s: &str) -> ParseErrorKind {
        parse(s).unwrap_err().kind
    }

    #[test]
    fn static_checks() {
        assert_eq!(kind("(call \"p\" (\"s\" \"f\") [x] y)"), ParseErrorKind::UndefinedVariable("x".into()));
        assert_eq!(kind("(fail 0 \"msg\")"), ParseErrorKind::FailCodeZero);
        assert_eq!(
            kind("(seq (ap 1 $s) (fold $s i (seq (next i) (null))))"),
            ParseErrorKind::InstructionAfterNext("i".into())
        );
        assert_eq!(
            kind("(seq (ap [] x) (fold x i (seq (next i) (next i))))"),
            ParseErrorKind::MultipleNext("i".into())
        );
        assert_eq!(kind("(seq (ap [] x) (fold x i (new i (next i))))"), ParseErrorKind::NewOnIterator("i".into()));
        assert_eq!(kind("(seq (ap [] x) (fold x i (fold x i (next i))))"), ParseErrorKind::IteratorReused("i".into()));
        assert_eq!(kind("(next i)"), ParseErrorKind::NextOutsideFold("i".into()));
        assert!(matches!(
            kind("(seq (call \"p\" (\"s\" \"f\") [] $s) (call \"p\" (\"s\" \"f\") [$s] y))"),
            ParseErrorKind::NotAllowed { .. }
        ));
        // positional, not flow-based
        parse("(par (call \"p\" (\"s\" \"f\") [] x) (call \"p\" (\"s\" \"f\") [x] y))").unwrap();
        // canon's source need not be defined; the scalar fold allows code after next
        parse("(seq (canon \"p\" $s #c) (fold #c i (seq (next i) (null))))").unwrap();
    }
}
