//! The AIR syntax tree.
//!
//! Instructions live in an arena ([`Ast::nodes`]) and refer to their children by [`NodeId`], so
//! walking, dropping or executing a deeply nested script never recurses on the Rust stack.

use std::fmt;

/// Byte range `[start, end)` in the script text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// Index of an instruction in [`Ast::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// A parsed script: an arena of instructions and the root.
#[derive(Debug, Clone)]
pub struct Ast {
    /// All instructions; children come before their parents.
    pub nodes: Vec<Node>,
    /// The outermost instruction.
    pub root: NodeId,
}

impl Ast {
    /// The instruction with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }
}

/// One instruction with its source span.
#[derive(Debug, Clone)]
pub struct Node {
    /// What the instruction is.
    pub instr: Instr,
    /// Where it is in the script (from its `(` to its `)`).
    pub span: Span,
}

/// An AIR instruction.
#[derive(Debug, Clone)]
pub enum Instr {
    /// `(call PEER (SERVICE FUNCTION) [ARGS] OUTPUT?)`
    Call(Box<Call>),
    /// `(canon PEER $stream #canon)` and variants.
    Canon(Box<Canon>),
    /// `(ap ARG DST)`
    Ap(Box<Ap>),
    /// `(ap (KEY VALUE) %map)`
    ApMap(Box<ApMap>),
    /// `(seq A B)`
    Seq(NodeId, NodeId),
    /// `(par A B)`
    Par(NodeId, NodeId),
    /// `(xor A B)`
    Xor(NodeId, NodeId),
    /// `(match A B I)` (`negate = false`) or `(mismatch A B I)` (`negate = true`).
    Match {
        /// Left value.
        left: Value,
        /// Right value.
        right: Value,
        /// Executed when the comparison holds.
        body: NodeId,
        /// `mismatch` rather than `match`.
        negate: bool,
    },
    /// `(fail …)`
    Fail(Box<Fail>),
    /// `(fold ITERABLE ITERATOR BODY LAST?)`
    Fold(Box<Fold>),
    /// `(next ITERATOR)`
    Next(String),
    /// `(new NAME BODY)`
    New {
        /// The variable (with its prefix).
        name: String,
        /// The scope.
        body: NodeId,
    },
    /// `(null)`
    Null,
    /// `(never)`
    Never,
}

/// Call instruction.
#[derive(Debug, Clone)]
pub struct Call {
    /// Peer part of the triplet.
    pub peer: Value,
    /// Service id.
    pub service: Value,
    /// Function name.
    pub function: Value,
    /// Arguments.
    pub args: Vec<Value>,
    /// Where the result goes.
    pub output: CallOutput,
}

/// Where a call puts its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutput {
    /// Result not bound.
    None,
    /// A scalar.
    Scalar(String),
    /// A stream (`$name`).
    Stream(String),
}

/// Canon instruction.
#[derive(Debug, Clone)]
pub struct Canon {
    /// Peer that makes the snapshot.
    pub peer: Value,
    /// `$stream` or `%map`.
    pub source: String,
    /// Destination.
    pub dest: CanonDest,
}

/// Where a canon puts its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonDest {
    /// `#name` or `#$name` (from a stream).
    Stream(String),
    /// `#%name` (from a map).
    Map(String),
    /// A scalar (from a map): an object with the first value per key.
    Scalar(String),
}

/// Ap instruction.
#[derive(Debug, Clone)]
pub struct Ap {
    /// The value.
    pub arg: Value,
    /// Destination.
    pub dest: ApDest,
}

/// Where an ap puts its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApDest {
    /// A scalar.
    Scalar(String),
    /// A stream (`$name`).
    Stream(String),
}

/// Ap to a stream map.
#[derive(Debug, Clone)]
pub struct ApMap {
    /// Key (string or integer).
    pub key: Value,
    /// Value.
    pub value: Value,
    /// The map (`%name`).
    pub map: String,
}

/// Fail instruction forms.
#[derive(Debug, Clone)]
pub enum Fail {
    /// `(fail CODE "message")`
    Literal {
        /// Non-zero code.
        code: i64,
        /// Message.
        message: String,
    },
    /// `(fail VALUE)`: scalar, scalar or canon with lambda, `%last_error%`, `:error:`.
    Value(Value),
}

/// Fold instruction.
#[derive(Debug, Clone)]
pub struct Fold {
    /// What is iterated.
    pub iterable: Iterable,
    /// Iterator name.
    pub iterator: String,
    /// Body.
    pub body: NodeId,
    /// Executed by the `next` that runs past the end.
    pub last: Option<NodeId>,
}

/// What a fold iterates over.
#[derive(Debug, Clone)]
pub enum Iterable {
    /// A value that must resolve to an array (scalar, canon, canon map, `[]`, …).
    Value(Value),
    /// A stream (`$name`), iterated generation by generation.
    Stream(String),
    /// A stream map (`%name`).
    StreamMap(String),
}

/// A number literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A lambda accessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accessor {
    /// `.field`
    Field(String),
    /// `.[N]`
    Index(u32),
    /// `.[var]`: key or index taken from a scalar.
    Scalar(String),
}

/// A lambda: `.$` followed by accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lambda {
    /// The accessors, at least one.
    pub accessors: Vec<Accessor>,
}

impl fmt::Display for Lambda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(".$")?;
        for a in &self.accessors {
            match a {
                Accessor::Field(name) => write!(f, ".{name}")?,
                Accessor::Index(i) => write!(f, ".[{i}]")?,
                Accessor::Scalar(name) => write!(f, ".[{name}]")?,
            }
        }
        Ok(())
    }
}

/// A value: call argument, matchable, peer or service part, ap argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `"text"`
    Literal(String),
    /// `42`, `-7`, `1.5`
    Number(Number),
    /// `true` / `false`
    Bool(bool),
    /// `[]`
    EmptyArray,
    /// `%init_peer_id%`
    InitPeerId,
    /// `%timestamp%`
    Timestamp,
    /// `%ttl%`
    Ttl,
    /// `%last_error%` with an optional lambda.
    LastError(Option<Lambda>),
    /// `:error:` with an optional lambda.
    Error(Option<Lambda>),
    /// A scalar with an optional lambda.
    Scalar {
        /// Name.
        name: String,
        /// Lambda.
        lambda: Option<Lambda>,
    },
    /// `x.length`
    ScalarLength(String),
    /// `#canon` with an optional lambda.
    Canon {
        /// Name (with prefix).
        name: String,
        /// Lambda.
        lambda: Option<Lambda>,
    },
    /// `#canon.length`
    CanonLength(String),
    /// `#%map` with an optional lambda.
    CanonMap {
        /// Name (with prefix).
        name: String,
        /// Lambda.
        lambda: Option<Lambda>,
    },
    /// `#%map.length`
    CanonMapLength(String),
    /// `$stream` (only valid in a few places; rejected as an argument).
    Stream(String),
    /// `%map` (only valid in a few places).
    StreamMap(String),
}

impl Value {
    /// The variable this value reads, if any (for the "defined before use" check).
    pub fn variable(&self) -> Option<&str> {
        match self {
            Value::Scalar { name, .. }
            | Value::ScalarLength(name)
            | Value::Canon { name, .. }
            | Value::CanonLength(name)
            | Value::CanonMap { name, .. }
            | Value::CanonMapLength(name)
            | Value::Stream(name)
            | Value::StreamMap(name) => Some(name),
            _ => None,
        }
    }

    /// Scalars used inside the lambda (`.[var]`).
    pub fn lambda_variables(&self) -> Vec<&str> {
        let lambda = match self {
            Value::LastError(l) | Value::Error(l) => l.as_ref(),
            Value::Scalar { lambda, .. } | Value::Canon { lambda, .. } | Value::CanonMap { lambda, .. } => {
                lambda.as_ref()
            }
            _ => None,
        };
        lambda
            .map(|l| {
                l.accessors
                    .iter()
                    .filter_map(|a| match a {
                        Accessor::Scalar(n) => Some(n.as_str()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lambda = |f: &mut fmt::Formatter<'_>, l: &Option<Lambda>| match l {
            Some(l) => write!(f, "{l}"),
            None => Ok(()),
        };
        match self {
            Value::Literal(s) => write!(f, "\"{s}\""),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::EmptyArray => f.write_str("[]"),
            Value::InitPeerId => f.write_str("%init_peer_id%"),
            Value::Timestamp => f.write_str("%timestamp%"),
            Value::Ttl => f.write_str("%ttl%"),
            Value::LastError(l) => {
                f.write_str("%last_error%")?;
                lambda(f, l)
            }
            Value::Error(l) => {
                f.write_str(":error:")?;
                lambda(f, l)
            }
            Value::Scalar { name, lambda: l }
            | Value::Canon { name, lambda: l }
            | Value::CanonMap { name, lambda: l } => {
                f.write_str(name)?;
                lambda(f, l)
            }
            Value::ScalarLength(name) | Value::CanonLength(name) | Value::CanonMapLength(name) => {
                write!(f, "{name}.length")
            }
            Value::Stream(name) | Value::StreamMap(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for CallOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallOutput::None => Ok(()),
            CallOutput::Scalar(n) | CallOutput::Stream(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for Iterable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Iterable::Value(v) => write!(f, "{v}"),
            Iterable::Stream(n) | Iterable::StreamMap(n) => f.write_str(n),
        }
    }
}

impl Instr {
    /// The instruction's head as AquaVM prints it in error objects (`instruction` field):
    /// `call PEER (SVC FN) [ARGS] OUT`, `match A B`, `fold X i`, `ap A B`, `fail 1 "m"`, …
    pub fn head(&self) -> String {
        match self {
            Instr::Call(c) => {
                let args: Vec<String> = c.args.iter().map(|a| a.to_string()).collect();
                format!("call {} ({} {}) [{}] {}", c.peer, c.service, c.function, args.join(" "), c.output)
            }
            Instr::Canon(c) => {
                let dest = match &c.dest {
                    CanonDest::Stream(n) | CanonDest::Map(n) | CanonDest::Scalar(n) => n,
                };
                format!("canon {} {} {}", c.peer, c.source, dest)
            }
            Instr::Ap(a) => {
                let dest = match &a.dest {
                    ApDest::Scalar(n) | ApDest::Stream(n) => n,
                };
                format!("ap {} {}", a.arg, dest)
            }
            Instr::ApMap(a) => format!("ap ({} {}) {}", a.key, a.value, a.map),
            Instr::Seq(..) => "seq".into(),
            Instr::Par(..) => "par".into(),
            Instr::Xor(..) => "xor".into(),
            Instr::Match { left, right, negate, .. } => {
                format!("{} {} {}", if *negate { "mismatch" } else { "match" }, left, right)
            }
            Instr::Fail(fail) => match &**fail {
                Fail::Literal { code, message } => format!("fail {code} \"{message}\""),
                Fail::Value(v) => format!("fail {v}"),
            },
            Instr::Fold(fold) => format!("fold {} {}", fold.iterable, fold.iterator),
            Instr::Next(i) => format!("next {i}"),
            Instr::New { name, .. } => format!("new {name}"),
            Instr::Null => "null".into(),
            Instr::Never => "never".into(),
        }
    }

    /// Child instructions, in textual order.
    pub fn children(&self) -> Vec<NodeId> {
        match self {
            Instr::Seq(a, b) | Instr::Par(a, b) | Instr::Xor(a, b) => vec![*a, *b],
            Instr::Match { body, .. } | Instr::New { body, .. } => vec![*body],
            Instr::Fold(f) => {
                let mut v = vec![f.body];
                v.extend(f.last);
                v
            }
            _ => Vec::new(),
        }
    }
}
