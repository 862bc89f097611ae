//! The `weft-interface` entries (docs/interface-section.md), computed at expansion time from the
//! items' syntax.

use syn::spanned::Spanned;
use syn::{Error, GenericArgument, PathArguments, Type};

/// The format version every entry starts with.
const VERSION: u8 = 0x01;
const ITEM_FUNCTION: u64 = 0;
const ITEM_RECORD: u64 = 1;
const ITEM_IMPORT: u64 = 2;

const TAG_BYTES: u64 = 12;
const TAG_OPTIONAL: u64 = 13;
const TAG_ARRAY: u64 = 14;
const TAG_RECORD: u64 = 15;
const MAX_WRAPPERS: usize = 32;
const MAX_NAME: usize = 1024;
const MAX_ITEMS: usize = 1024;

/// One tag of a type: a leaf or wrapper number, or a record leaf with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    Simple(u64),
    Record(String),
}

/// An interface type: `wrapper* leaf`.
pub type Ty = Vec<Tag>;

/// Maps a Rust type to an interface type by its syntax (see the SDK's docs for the table).
pub fn ty(rust: &Type) -> syn::Result<Ty> {
    let mut tags = Vec::new();
    let mut current = rust;
    loop {
        if tags.len() > MAX_WRAPPERS {
            return Err(Error::new(rust.span(), format!("more than {} nested Option/Vec wrappers", MAX_WRAPPERS)));
        }
        let path = match current {
            Type::Paren(p) => {
                current = &p.elem;
                continue;
            }
            Type::Group(g) => {
                current = &g.elem;
                continue;
            }
            Type::Path(p) if p.qself.is_none() => &p.path,
            Type::Reference(_) => return Err(Error::new(
                current.span(),
                "references are not supported in weft interfaces: take and return owned values (String, Vec<T>, ...)",
            )),
            Type::Tuple(t) if t.elems.is_empty() => {
                return Err(Error::new(current.span(), "`()` is not a value: leave the parameter out"))
            }
            Type::Tuple(_) => {
                return Err(Error::new(
                    current.span(),
                    "tuples are not supported in weft interfaces: use a #[record] struct with named fields",
                ))
            }
            Type::Array(_) | Type::Slice(_) => {
                return Err(Error::new(
                    current.span(),
                    "arrays and slices are not supported in weft interfaces: use Vec<T>",
                ))
            }
            _ => {
                return Err(Error::new(
                    current.span(),
                    "unsupported type: weft interfaces take bool, i8..i64, u8..u64, f32, f64, String, \
                     Vec<T>, Option<T> and #[record] structs",
                ))
            }
        };
        let segment = path.segments.last().expect("a path has at least one segment");
        let name = unraw(&segment.ident);
        let leaf = match name.as_str() {
            "bool" => Some(0),
            "i8" => Some(1),
            "i16" => Some(2),
            "i32" => Some(3),
            "i64" => Some(4),
            "u8" => Some(5),
            "u16" => Some(6),
            "u32" => Some(7),
            "u64" => Some(8),
            "f32" => Some(9),
            "f64" => Some(10),
            "String" => Some(11),
            _ => None,
        };
        if let Some(tag) = leaf {
            no_arguments(segment)?;
            tags.push(Tag::Simple(tag));
            return Ok(tags);
        }
        match name.as_str() {
            "Vec" | "Option" => {
                let element = one_type_argument(segment)?;
                if name == "Vec" && is_u8(element) {
                    tags.push(Tag::Simple(TAG_BYTES));
                    return Ok(tags);
                }
                tags.push(Tag::Simple(if name == "Vec" { TAG_ARRAY } else { TAG_OPTIONAL }));
                current = element;
            }
            "Result" => {
                return Err(Error::new(
                    segment.span(),
                    "Result is only allowed as the return type of an #[export] function",
                ))
            }
            "isize" | "usize" | "i128" | "u128" | "char" | "str" => {
                return Err(Error::new(
                    segment.span(),
                    format!(
                        "`{}` is not a weft interface type: use one of bool, i8..i64, u8..u64, f32, f64, String",
                        name
                    ),
                ))
            }
            _ => {
                if !matches!(segment.arguments, PathArguments::None) {
                    return Err(Error::new(
                        segment.span(),
                        format!(
                            "generic type `{}<..>` is not supported: records have no type parameters, \
                             and only Vec<T> and Option<T> wrap other types",
                            name
                        ),
                    ));
                }
                check_name(&name, segment.span())?;
                tags.push(Tag::Record(name));
                return Ok(tags);
            }
        }
    }
}

fn no_arguments(segment: &syn::PathSegment) -> syn::Result<()> {
    match segment.arguments {
        PathArguments::None => Ok(()),
        _ => Err(Error::new(segment.arguments.span(), "unexpected type arguments")),
    }
}

fn one_type_argument(segment: &syn::PathSegment) -> syn::Result<&Type> {
    if let PathArguments::AngleBracketed(args) = &segment.arguments {
        let mut types = args.args.iter().filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        });
        if let (Some(t), None, 1) = (types.next(), types.next(), args.args.len()) {
            return Ok(t);
        }
    }
    Err(Error::new(segment.span(), format!("`{}` takes exactly one type argument here", segment.ident)))
}

fn is_u8(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let segment = p.path.segments.last().expect("a path has at least one segment");
            segment.ident == "u8" && matches!(segment.arguments, PathArguments::None)
        }
        Type::Paren(p) => is_u8(&p.elem),
        Type::Group(g) => is_u8(&g.elem),
        _ => false,
    }
}

/// The identifier's text without `r#`.
pub fn unraw(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    match s.strip_prefix("r#") {
        Some(rest) => rest.to_owned(),
        None => s,
    }
}

pub fn check_name(name: &str, span: proc_macro2::Span) -> syn::Result<()> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Error::new(span, format!("weft names have 1 to {} bytes", MAX_NAME)));
    }
    Ok(())
}

pub fn check_count(count: usize, what: &str, span: proc_macro2::Span) -> syn::Result<()> {
    if count > MAX_ITEMS {
        return Err(Error::new(span, format!("more than {} {}", MAX_ITEMS, what)));
    }
    Ok(())
}

/// Writes entries in the section's byte format.
#[derive(Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.bytes.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.bytes.push(n as u8);
    }

    fn string(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.bytes.extend_from_slice(s.as_bytes());
    }

    fn ty(&mut self, ty: &Ty) {
        self.varint(ty.len() as u64);
        for tag in ty {
            match tag {
                Tag::Simple(n) => self.varint(*n),
                Tag::Record(name) => {
                    self.varint(TAG_RECORD);
                    self.string(name);
                }
            }
        }
    }

    fn named(&mut self, list: &[(String, Ty)]) {
        self.varint(list.len() as u64);
        for (name, ty) in list {
            self.string(name);
            self.ty(ty);
        }
    }

    fn types(&mut self, list: &[Ty]) {
        self.varint(list.len() as u64);
        for ty in list {
            self.ty(ty);
        }
    }
}

/// `01 00 name params results`
pub fn function(name: &str, params: &[(String, Ty)], results: &[Ty]) -> Vec<u8> {
    let mut w = Writer { bytes: vec![VERSION] };
    w.varint(ITEM_FUNCTION);
    w.string(name);
    w.named(params);
    w.types(results);
    w.bytes
}

/// `01 01 name fields`
pub fn record(name: &str, fields: &[(String, Ty)]) -> Vec<u8> {
    let mut w = Writer { bytes: vec![VERSION] };
    w.varint(ITEM_RECORD);
    w.string(name);
    w.named(fields);
    w.bytes
}

/// `01 02 module name params results`
pub fn import(module: &str, name: &str, params: &[(String, Ty)], results: &[Ty]) -> Vec<u8> {
    let mut w = Writer { bytes: vec![VERSION] };
    w.varint(ITEM_IMPORT);
    w.string(module);
    w.string(name);
    w.named(params);
    w.types(results);
    w.bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn tags(t: Type) -> Vec<u8> {
        let mut w = Writer::default();
        w.ty(&ty(&t).unwrap());
        w.bytes
    }

    fn error(t: Type) -> String {
        ty(&t).unwrap_err().to_string()
    }

    #[test]
    fn greet_entry_matches_the_spec_example() {
        let bytes = function("greet", &[("name".into(), ty(&parse_quote!(String)).unwrap())], &[vec![Tag::Simple(11)]]);
        assert_eq!(
            bytes,
            [
                0x01, 0x00, 0x05, b'g', b'r', b'e', b'e', b't', 0x01, 0x04, b'n', b'a', b'm', b'e', 0x01, 0x0b, 0x01,
                0x01, 0x0b
            ]
        );
    }

    #[test]
    fn types_map_by_syntax() {
        let leaves: [(Type, u8); 12] = [
            (parse_quote!(bool), 0),
            (parse_quote!(i8), 1),
            (parse_quote!(i16), 2),
            (parse_quote!(i32), 3),
            (parse_quote!(i64), 4),
            (parse_quote!(u8), 5),
            (parse_quote!(u16), 6),
            (parse_quote!(u32), 7),
            (parse_quote!(u64), 8),
            (parse_quote!(f32), 9),
            (parse_quote!(f64), 10),
            (parse_quote!(std::string::String), 11),
        ];
        for (t, tag) in leaves {
            assert_eq!(tags(t), [1, tag]);
        }
        assert_eq!(tags(parse_quote!(Vec<u8>)), [1, 12]);
        assert_eq!(tags(parse_quote!(Option<Vec<u8>>)), [2, 13, 12]);
        assert_eq!(tags(parse_quote!(Option<Vec<Vec<u8>>>)), [3, 13, 14, 12]);
        // the examples of interface-section.md
        assert_eq!(tags(parse_quote!(String)), [0x01, 0x0b]);
        assert_eq!(tags(parse_quote!(Option<Vec<u8>>)), [0x02, 0x0d, 0x0c]); // bytes, not array<u8>
        assert_eq!(tags(parse_quote!(Vec<point>)), [0x02, 0x0e, 0x0f, 0x05, b'p', b'o', b'i', b'n', b't']);
        assert_eq!(tags(parse_quote!(crate::model::r#Point)), [0x01, 0x0f, 0x05, b'P', b'o', b'i', b'n', b't']);
        assert_eq!(tags(parse_quote!((Vec<(i32)>))), [2, 14, 3]);
    }

    #[test]
    fn unsupported_syntax_is_refused_with_a_reason() {
        assert!(error(parse_quote!(&str)).contains("references are not supported"));
        assert!(error(parse_quote!((u8, u8))).contains("tuples are not supported"));
        assert!(error(parse_quote!([u8; 4])).contains("use Vec<T>"));
        assert!(error(parse_quote!(Point<f32>)).contains("records have no type parameters"));
        assert!(error(parse_quote!(HashMap<String, u8>)).contains("records have no type parameters"));
        assert!(error(parse_quote!(Vec<u8, A>)).contains("exactly one type argument"));
        assert!(error(parse_quote!(Option<Result<u8, String>>)).contains("Result is only allowed"));
        assert!(error(parse_quote!(usize)).contains("not a weft interface type"));
        assert!(error(parse_quote!(impl Fn())).contains("unsupported type"));
        assert!(error(parse_quote!(<T as X>::Y)).contains("unsupported type"));
    }

    #[test]
    fn nesting_is_capped() {
        let mut t: Type = parse_quote!(u8);
        for _ in 0..32 {
            t = parse_quote!(Option<#t>);
        }
        assert_eq!(ty(&t).unwrap().len(), 33);
        let t: Type = parse_quote!(Option<#t>);
        assert!(error(t).contains("more than 32"));
    }

    #[test]
    fn records_and_imports() {
        let fields = vec![("x".to_string(), vec![Tag::Simple(10)]), ("y".to_string(), vec![Tag::Simple(10)])];
        assert_eq!(
            record("point", &fields),
            [1, 1, 5, b'p', b'o', b'i', b'n', b't', 2, 1, b'x', 1, 10, 1, b'y', 1, 10]
        );
        assert_eq!(import("m", "f", &[], &[]), [1, 2, 1, b'm', 1, b'f', 0, 0]);
        let long = "n".repeat(200);
        let bytes = function(&long, &[], &[]);
        assert_eq!(&bytes[..4], [1, 0, 0xc8, 0x01]);
    }
}
