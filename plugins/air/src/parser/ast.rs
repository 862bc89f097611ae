//! The AIR syntax tree.
//!
//! Instructions live in an arena ([`Ast::nodes`]) and refer to their children by [`NodeId`], so
//! walking, dropping or executing a deeply nested script never recurses on the Rust stack. Calls,
//! aps and call arguments live in arenas of their own ([`Ast::calls`], [`Ast::aps`],
//! [`Ast::args`]): a script of thousands of calls is a handful of allocations.

use std::fmt;

/// Byte range `[start, end)` in the script text (scripts are far below 4 GiB: the parser's size
/// limit is checked first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from `start` to `end`.
    #[inline(always)]
    pub fn new(start: usize, end: usize) -> Self {
        Span { start: start as u32, end: end as u32 }
    }
}

/// Index of an instruction in [`Ast::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// A parsed script: an arena of instructions and the root. Names and literals borrow the
/// script text (`'a`).
#[derive(Debug, Clone)]
pub struct Ast<'a> {
    /// All instructions: as parsed, children come before their parents; in execution order
    /// after [`Ast::into_execution_order`].
    pub nodes: Vec<Node<'a>>,
    /// The outermost instruction.
    pub root: NodeId,
    /// Number of distinct variable names ([`Name::id`] is below it).
    pub names: u32,
    /// The calls ([`Instr::Call`] holds an index).
    pub calls: Vec<Call<'a>>,
    /// The aps to scalars and streams ([`Instr::Ap`] holds an index).
    pub aps: Vec<Ap<'a>>,
    /// The arguments of all calls ([`Call::args`] is a range of it).
    pub args: Vec<Value<'a>>,
    /// Whether nothing in the tree owns heap memory (no boxed instruction or lambda): then its
    /// arenas are emptied without dropping each element (see `ParseBuffers::kept`).
    pub(crate) heap_free: bool,
}

/// A variable name as written (with its prefix: `x`, `$s`, `%m`, `#c`, `#$c`, `#%m`) and its
/// number in the script: equal texts have equal ids, ids are dense from 0 in order of first
/// appearance, so the interpreter keeps variables in vectors instead of hash maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name<'a> {
    /// The text.
    pub text: &'a str,
    /// The number.
    pub id: u32,
}

impl<'a> Name<'a> {
    /// A name not numbered yet (id 0), as [`word_value`](crate::parser) makes them.
    pub fn new(text: &'a str) -> Self {
        Name { text, id: 0 }
    }
}

impl std::ops::Deref for Name<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.text
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

impl Instr<'_> {
    fn children_mut(&mut self) -> [Option<&mut NodeId>; 2] {
        match self {
            Instr::Seq(l, r) | Instr::Par(l, r) | Instr::Xor(l, r) => [Some(l), Some(r)],
            Instr::Match(m) => [Some(&mut m.body), None],
            Instr::New(n) => [Some(&mut n.body), None],
            Instr::Fold(f) => [Some(&mut f.body), f.last.as_mut()],
            _ => [None, None],
        }
    }
}

impl<'a> Ast<'a> {
    /// The same tree with its instructions renumbered in execution order (an instruction, then
    /// its first child's subtree, then its second's), so that a run reads the arena from front to
    /// back instead of jumping through it (the parser writes children before their parents). The
    /// script cache keeps its trees in this order. A tree that is not a tree (a node reached
    /// twice or never) is returned as it is.
    pub fn into_execution_order(mut self) -> Self {
        let n = self.nodes.len();
        let mut new_id = vec![u32::MAX; n];
        let mut order: Vec<u32> = Vec::with_capacity(n);
        let mut stack = vec![self.root];
        while let Some(id) = stack.pop() {
            let Some(slot) = new_id.get_mut(id.0 as usize) else { return self };
            if *slot != u32::MAX {
                return self;
            }
            *slot = order.len() as u32;
            order.push(id.0);
            let [first, second] = self.nodes[id.0 as usize].instr.children();
            stack.extend(second);
            stack.extend(first);
        }
        if order.len() != n {
            return self;
        }
        let mut old: Vec<Option<Node<'a>>> = self.nodes.drain(..).map(Some).collect();
        for id in order {
            let Some(mut node) = old[id as usize].take() else { unreachable!("each node is visited once") };
            for child in node.instr.children_mut().into_iter().flatten() {
                child.0 = new_id[child.0 as usize];
            }
            self.nodes.push(node);
        }
        self.root = NodeId(new_id[self.root.0 as usize]);
        self
    }

    /// The instruction with this id.
    #[inline]
    pub fn node(&self, id: NodeId) -> &Node<'a> {
        &self.nodes[id.0 as usize]
    }

    /// The call with this index.
    #[inline]
    pub fn call(&self, i: u32) -> &Call<'a> {
        &self.calls[i as usize]
    }

    /// The ap with this index.
    #[inline]
    pub fn ap(&self, i: u32) -> &Ap<'a> {
        &self.aps[i as usize]
    }

    /// The arguments of a call.
    #[inline]
    pub fn call_args(&self, c: &Call<'a>) -> &[Value<'a>] {
        &self.args[c.args.start as usize..(c.args.start + c.args.len) as usize]
    }

    /// The head of an instruction as AquaVM prints it in error objects (`instruction` field):
    /// `call PEER (SVC FN) [ARGS] OUT`, `match A B`, `fold X i`, `ap A B`, `fail 1 "m"`, …
    pub fn head(&self, id: NodeId) -> String {
        match &self.node(id).instr {
            Instr::Call(i) => {
                let c = self.call(*i);
                let args: Vec<String> = self.call_args(c).iter().map(|a| a.to_string()).collect();
                format!("call {} ({} {}) [{}] {}", c.peer, c.service, c.function, args.join(" "), c.output)
            }
            Instr::Ap(i) => {
                let a = self.ap(*i);
                let dest = match &a.dest {
                    ApDest::Scalar(n) | ApDest::Stream(n) => n,
                };
                format!("ap {} {}", a.arg, dest)
            }
            other => other.head(),
        }
    }
}

/// One instruction. (Spans are for parse errors only: a node does not keep one, the arena of a
/// big script stays small.)
#[derive(Debug, Clone)]
pub struct Node<'a> {
    /// What the instruction is.
    pub instr: Instr<'a>,
}

/// An AIR instruction.
#[derive(Debug, Clone)]
pub enum Instr<'a> {
    /// `(call PEER (SERVICE FUNCTION) [ARGS] OUTPUT?)`: an index into [`Ast::calls`].
    Call(u32),
    /// `(canon PEER $stream #canon)` and variants.
    Canon(Box<Canon<'a>>),
    /// `(ap ARG DST)`: an index into [`Ast::aps`].
    Ap(u32),
    /// `(ap (KEY VALUE) %map)`
    ApMap(Box<ApMap<'a>>),
    /// `(seq A B)`
    Seq(NodeId, NodeId),
    /// `(par A B)`
    Par(NodeId, NodeId),
    /// `(xor A B)`
    Xor(NodeId, NodeId),
    /// `(match A B I)` or `(mismatch A B I)`.
    Match(Box<Match<'a>>),
    /// `(fail …)`
    Fail(Box<Fail<'a>>),
    /// `(fold ITERABLE ITERATOR BODY LAST?)`
    Fold(Box<Fold<'a>>),
    /// `(next ITERATOR)` (boxed, like the other rare payloads: an instruction is 16 bytes).
    Next(Box<Name<'a>>),
    /// `(new NAME BODY)`
    New(Box<New<'a>>),
    /// `(null)`
    Null,
    /// `(never)`
    Never,
}

/// New instruction.
#[derive(Debug, Clone)]
pub struct New<'a> {
    /// The variable (with its prefix).
    pub name: Name<'a>,
    /// The scope.
    pub body: NodeId,
}

/// Match or mismatch instruction.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    /// Left value.
    pub left: Value<'a>,
    /// Right value.
    pub right: Value<'a>,
    /// Executed when the comparison holds.
    pub body: NodeId,
    /// `mismatch` rather than `match`.
    pub negate: bool,
}

/// Call instruction.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// Peer part of the triplet.
    pub peer: Value<'a>,
    /// Service id.
    pub service: Value<'a>,
    /// Function name.
    pub function: Value<'a>,
    /// Arguments: a range of [`Ast::args`] (see [`Ast::call_args`]).
    pub args: ArgRange,
    /// Where the result goes.
    pub output: CallOutput<'a>,
}

/// A range of [`Ast::args`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArgRange {
    /// First argument.
    pub start: u32,
    /// Number of arguments.
    pub len: u32,
}

/// Where a call puts its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutput<'a> {
    /// Result not bound.
    None,
    /// A scalar.
    Scalar(Name<'a>),
    /// A stream (`$name`).
    Stream(Name<'a>),
}

/// Canon instruction.
#[derive(Debug, Clone)]
pub struct Canon<'a> {
    /// Peer that makes the snapshot.
    pub peer: Value<'a>,
    /// `$stream` or `%map`.
    pub source: Name<'a>,
    /// Destination.
    pub dest: CanonDest<'a>,
}

/// Where a canon puts its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonDest<'a> {
    /// `#name` or `#$name` (from a stream).
    Stream(Name<'a>),
    /// `#%name` (from a map).
    Map(Name<'a>),
    /// A scalar (from a map): an object with the first value per key.
    Scalar(Name<'a>),
}

/// Ap instruction.
#[derive(Debug, Clone)]
pub struct Ap<'a> {
    /// The value.
    pub arg: Value<'a>,
    /// Destination.
    pub dest: ApDest<'a>,
}

/// Where an ap puts its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApDest<'a> {
    /// A scalar.
    Scalar(Name<'a>),
    /// A stream (`$name`).
    Stream(Name<'a>),
}

/// Ap to a stream map.
#[derive(Debug, Clone)]
pub struct ApMap<'a> {
    /// Key (string or integer).
    pub key: Value<'a>,
    /// Value.
    pub value: Value<'a>,
    /// The map (`%name`).
    pub map: Name<'a>,
}

/// Fail instruction forms.
#[derive(Debug, Clone)]
pub enum Fail<'a> {
    /// `(fail CODE "message")`
    Literal {
        /// Non-zero code.
        code: i64,
        /// Message.
        message: &'a str,
    },
    /// `(fail VALUE)`: scalar, scalar or canon with lambda, `%last_error%`, `:error:`.
    Value(Value<'a>),
}

/// Fold instruction.
#[derive(Debug, Clone)]
pub struct Fold<'a> {
    /// What is iterated.
    pub iterable: Iterable<'a>,
    /// Iterator name.
    pub iterator: Name<'a>,
    /// Body.
    pub body: NodeId,
    /// Executed by the `next` that runs past the end.
    pub last: Option<NodeId>,
}

/// What a fold iterates over.
#[derive(Debug, Clone)]
pub enum Iterable<'a> {
    /// A value that must resolve to an array (scalar, canon, canon map, `[]`, …).
    Value(Value<'a>),
    /// A stream (`$name`), iterated generation by generation.
    Stream(Name<'a>),
    /// A stream map (`%name`).
    StreamMap(Name<'a>),
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
pub enum Accessor<'a> {
    /// `.field`
    Field(&'a str),
    /// `.[N]`
    Index(u32),
    /// `.[var]`: key or index taken from a scalar.
    Scalar(Name<'a>),
}

/// A lambda: `.$` followed by accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lambda<'a> {
    /// The accessors, at least one.
    pub accessors: Vec<Accessor<'a>>,
}

impl fmt::Display for Lambda<'_> {
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
pub enum Value<'a> {
    /// `"text"`
    Literal(&'a str),
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
    LastError(Option<Box<Lambda<'a>>>),
    /// `:error:` with an optional lambda.
    Error(Option<Box<Lambda<'a>>>),
    /// A scalar with an optional lambda.
    Scalar {
        /// Name.
        name: Name<'a>,
        /// Lambda.
        lambda: Option<Box<Lambda<'a>>>,
    },
    /// `x.length`
    ScalarLength(Name<'a>),
    /// `#canon` with an optional lambda.
    Canon {
        /// Name (with prefix).
        name: Name<'a>,
        /// Lambda.
        lambda: Option<Box<Lambda<'a>>>,
    },
    /// `#canon.length`
    CanonLength(Name<'a>),
    /// `#%map` with an optional lambda.
    CanonMap {
        /// Name (with prefix).
        name: Name<'a>,
        /// Lambda.
        lambda: Option<Box<Lambda<'a>>>,
    },
    /// `#%map.length`
    CanonMapLength(Name<'a>),
    /// `$stream` (only valid in a few places; rejected as an argument).
    Stream(Name<'a>),
    /// `%map` (only valid in a few places).
    StreamMap(Name<'a>),
}

impl<'a> Value<'a> {
    /// The variable this value reads, if any (for the "defined before use" check).
    pub fn variable(&self) -> Option<Name<'a>> {
        match self {
            Value::Scalar { name, .. }
            | Value::ScalarLength(name)
            | Value::Canon { name, .. }
            | Value::CanonLength(name)
            | Value::CanonMap { name, .. }
            | Value::CanonMapLength(name)
            | Value::Stream(name)
            | Value::StreamMap(name) => Some(*name),
            _ => None,
        }
    }

    /// Scalars used inside the lambda (`.[var]`).
    pub fn lambda_variables(&self) -> impl Iterator<Item = Name<'a>> + '_ {
        let lambda = match self {
            Value::LastError(l) | Value::Error(l) => l.as_ref(),
            Value::Scalar { lambda, .. } | Value::Canon { lambda, .. } | Value::CanonMap { lambda, .. } => {
                lambda.as_ref()
            }
            _ => None,
        };
        lambda.into_iter().flat_map(|l| l.accessors.iter()).filter_map(|a| match a {
            Accessor::Scalar(n) => Some(*n),
            _ => None,
        })
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lambda = |f: &mut fmt::Formatter<'_>, l: &Option<Box<Lambda>>| match l {
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
            Value::Stream(name) | Value::StreamMap(name) => f.write_str(name.text),
        }
    }
}

impl fmt::Display for CallOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallOutput::None => Ok(()),
            CallOutput::Scalar(n) | CallOutput::Stream(n) => f.write_str(n.text),
        }
    }
}

impl fmt::Display for Iterable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Iterable::Value(v) => write!(f, "{v}"),
            Iterable::Stream(n) | Iterable::StreamMap(n) => f.write_str(n.text),
        }
    }
}

impl Instr<'_> {
    /// The head of an instruction that is not a call or an ap (see [`Ast::head`]).
    fn head(&self) -> String {
        match self {
            Instr::Call(_) | Instr::Ap(_) => unreachable!("calls and aps are formatted by Ast::head"),
            Instr::Canon(c) => {
                let dest = match &c.dest {
                    CanonDest::Stream(n) | CanonDest::Map(n) | CanonDest::Scalar(n) => n,
                };
                format!("canon {} {} {}", c.peer, c.source, dest)
            }
            Instr::ApMap(a) => format!("ap ({} {}) {}", a.key, a.value, a.map),
            Instr::Seq(..) => "seq".into(),
            Instr::Par(..) => "par".into(),
            Instr::Xor(..) => "xor".into(),
            Instr::Match(m) => {
                format!("{} {} {}", if m.negate { "mismatch" } else { "match" }, m.left, m.right)
            }
            Instr::Fail(fail) => match &**fail {
                Fail::Literal { code, message } => format!("fail {code} \"{message}\""),
                Fail::Value(v) => format!("fail {v}"),
            },
            Instr::Fold(fold) => format!("fold {} {}", fold.iterable, fold.iterator),
            Instr::Next(i) => format!("next {i}"),
            Instr::New(n) => format!("new {}", n.name),
            Instr::Null => "null".into(),
            Instr::Never => "never".into(),
        }
    }

    /// Child instructions, in textual order (at most two).
    pub fn children(&self) -> [Option<NodeId>; 2] {
        match self {
            Instr::Seq(a, b) | Instr::Par(a, b) | Instr::Xor(a, b) => [Some(*a), Some(*b)],
            Instr::Match(m) => [Some(m.body), None],
            Instr::New(n) => [Some(n.body), None],
            Instr::Fold(f) => [Some(f.body), f.last],
            _ => [None, None],
        }
    }
}
