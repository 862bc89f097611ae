//! The attribute macros of [`weft-sdk`](https://docs.rs/weft-sdk): `#[export]`, `#[import]` and
//! `#[record]`. Use them through `weft_sdk`, which documents them; their expansions refer to
//! `::weft_sdk`.

extern crate proc_macro;

mod interface;

use proc_macro::TokenStream;
use proc_macro2::{Literal, Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, AttributeArgs, Error, FnArg, ForeignItem, ItemFn, ItemForeignMod, ItemStruct, Lit, Meta,
    NestedMeta, Pat, ReturnType, Signature, Type,
};

use interface::Ty;

/// Exports a function to weft callers: `#[export]` or `#[export(name = "exported_name")]`.
///
/// ```ignore
/// use weft_sdk::export;
///
/// #[export]
/// pub fn greet(name: String) -> String {
///     format!("Hello, {}!", name)
/// }
///
/// #[export]
/// pub fn halve(x: u32) -> Result<u32, String> {
///     if x % 2 == 0 { Ok(x / 2) } else { Err(format!("{} is odd", x)) }
/// }
/// ```
///
/// The function stays an ordinary Rust function. Next to it the macro generates
///
/// - a core Wasm export named like the function (or `name`), `(ptr: i32, len: i32) -> i64`, that
///   decodes the arguments, calls the function and returns its encoded result;
/// - the function's entry in the `weft-interface` section: its name, its parameters with their
///   Rust names and interface types, and its result.
///
/// Parameter and result types are mapped by their syntax (see the table in the `weft_sdk` docs).
/// A function without `->` (or `-> ()`) has no results. `-> Result<T, E>` declares `T` as the
/// result (none for `()`); an `Err(e)` fails the call with `e.to_string()` as the error weft
/// reports, so `E` must implement `Display`.
///
/// Arguments that do not decode fail the call with a message naming the function and parameter,
/// e.g. `greet: parameter "name": truncated at byte 0 while reading a string length`. A panic
/// fails the call with the panic message.
///
/// Refused at compile time: generic, `async` or `unsafe` functions, methods (`self`), parameters
/// without a plain name (`_`, patterns), and types the interface cannot express.
#[proc_macro_attribute]
pub fn export(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as AttributeArgs);
    let function = parse_macro_input!(item as ItemFn);
    expand_export(args, function).unwrap_or_else(Error::into_compile_error).into()
}

/// Declares functions imported from another module of the service:
/// `#[import(module = "module_name")]` on an `extern "C"` block.
///
/// ```ignore
/// use weft_sdk::{import, record};
///
/// #[record]
/// pub struct Stats { pub words: u32, pub longest: Option<String>, pub lengths: Vec<u8> }
///
/// #[import(module = "textstats")]
/// extern "C" {
///     /// Counts the words.
///     pub fn stats(words: Vec<String>) -> Stats;
///     /// `#[link_name]` imports a function whose name is not a Rust identifier.
///     #[link_name = "word-count"]
///     fn word_count(text: String) -> u32;
/// }
///
/// let s: Stats = stats(vec!["a".to_string()]); // safe: no `unsafe` block needed
/// ```
///
/// Each declaration becomes a safe Rust function with the same name, visibility and docs, which
/// encodes the arguments, calls the core Wasm import `module.name` and decodes the result; and an
/// `import` entry in the `weft-interface` section. The records it uses must be declared with
/// `#[record]` in this module too (weft compares them with the callee's by structure).
///
/// An import returns its value: if the callee fails, the whole call fails, so `Result` is not
/// allowed as the return type. Off `wasm32` (in unit tests on the host) calling an import panics.
#[proc_macro_attribute]
pub fn import(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as AttributeArgs);
    let block = parse_macro_input!(item as ItemForeignMod);
    expand_import(args, block).unwrap_or_else(Error::into_compile_error).into()
}

/// Makes a struct with named fields a record type of the interface.
///
/// ```ignore
/// use weft_sdk::record;
///
/// #[record]
/// #[derive(Debug, Clone)]
/// pub struct Point {
///     pub x: f64,
///     pub y: f64,
///     pub label: Option<String>,
/// }
/// ```
///
/// Derives `Serialize` and `Deserialize` through `weft_sdk::serde` (do not derive them yourself)
/// and emits the record's entry in the `weft-interface` section: its name (the struct's name) and
/// its fields in declaration order, with types mapped by syntax as for `#[export]`. Functions
/// refer to it by that name.
///
/// Refused at compile time: enums, tuple and unit structs, generic structs, and fields of types
/// the interface cannot express. Do not add serde attributes that change the encoding (`skip`,
/// `flatten`, `with`, `untagged`...): the fields travel in order, without names.
#[proc_macro_attribute]
pub fn record(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as AttributeArgs);
    let item = parse_macro_input!(item as syn::Item);
    expand_record(args, item).unwrap_or_else(Error::into_compile_error).into()
}

/// The `key = "value"` arguments of an attribute, checked against the allowed keys.
fn string_args(args: AttributeArgs, allowed: &[&str], usage: &str) -> syn::Result<Vec<(String, String, Span)>> {
    let mut out: Vec<(String, String, Span)> = Vec::new();
    for arg in args {
        let span = arg.span();
        let (key, value) = match arg {
            NestedMeta::Meta(Meta::NameValue(nv)) => match (nv.path.get_ident(), nv.lit) {
                (Some(key), Lit::Str(value)) => (key.to_string(), value.value()),
                _ => return Err(Error::new(span, usage)),
            },
            _ => return Err(Error::new(span, usage)),
        };
        if !allowed.contains(&key.as_str()) {
            return Err(Error::new(span, format!("unknown argument `{}`: {}", key, usage)));
        }
        if out.iter().any(|(k, _, _)| *k == key) {
            return Err(Error::new(span, format!("`{}` is given twice", key)));
        }
        interface::check_name(&value, span)?;
        out.push((key, value, span));
    }
    Ok(out)
}

/// The weft static holding one entry of the `weft-interface` section.
fn section_static(ident: syn::Ident, bytes: &[u8]) -> TokenStream2 {
    let len = bytes.len();
    let literal = Literal::byte_string(bytes);
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        #[cfg_attr(target_arch = "wasm32", link_section = "weft-interface")]
        #[used]
        static #ident: [u8; #len] = *#literal;
    }
}

/// The named, typed parameters of a signature.
fn params(sig: &Signature) -> syn::Result<Vec<(syn::Ident, Type, String, Ty)>> {
    let mut out: Vec<(syn::Ident, Type, String, Ty)> = Vec::new();
    for input in &sig.inputs {
        let typed = match input {
            FnArg::Typed(typed) => typed,
            FnArg::Receiver(r) => {
                return Err(Error::new(r.span(), "weft functions are free functions: `self` is not supported"))
            }
        };
        let ident = match &*typed.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                return Err(Error::new(
                    other.span(),
                    "parameters need a plain name (`name: Type`): the name is part of the interface",
                ))
            }
        };
        let name = interface::unraw(&ident);
        if out.iter().any(|(_, _, n, _)| *n == name) {
            return Err(Error::new(ident.span(), format!("parameter `{}` is declared twice", name)));
        }
        let ty = interface::ty(&typed.ty)?;
        out.push((ident, (*typed.ty).clone(), name, ty));
    }
    interface::check_count(out.len(), "parameters", sig.inputs.span())?;
    Ok(out)
}

fn check_signature(sig: &Signature, what: &str) -> syn::Result<()> {
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(sig.generics.span(), format!("{} cannot be generic", what)));
    }
    if let Some(a) = &sig.asyncness {
        return Err(Error::new(a.span(), format!("{} cannot be async", what)));
    }
    if let Some(v) = &sig.variadic {
        return Err(Error::new(v.span(), format!("{} cannot be variadic", what)));
    }
    Ok(())
}

/// What a function returns, by syntax.
struct Returns {
    /// The interface type of the single result, if any.
    ty: Option<Ty>,
    /// The Rust type of the value that is encoded (the `Ok` type for a `Result`).
    rust: Type,
    /// `-> Result<..>`: `Err` fails the call.
    fallible: bool,
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

fn returns(output: &ReturnType, allow_result: bool) -> syn::Result<Returns> {
    let ty = match output {
        ReturnType::Default => return Ok(Returns { ty: None, rust: syn::parse_quote!(()), fallible: false }),
        ReturnType::Type(_, ty) => &**ty,
    };
    if is_unit(ty) {
        return Ok(Returns { ty: None, rust: ty.clone(), fallible: false });
    }
    if let Type::Path(p) = ty {
        let last = p.path.segments.last().expect("a path has at least one segment");
        if p.qself.is_none() && last.ident == "Result" {
            if !allow_result {
                return Err(Error::new(
                    ty.span(),
                    "an import returns its value or fails the whole call: declare the value's type, not a Result",
                ));
            }
            // `Result<T, E>`, `io::Result<T>`, `fmt::Result` (= `Result<(), _>`)
            let ok: Type = match &last.arguments {
                syn::PathArguments::None => syn::parse_quote!(()),
                syn::PathArguments::AngleBracketed(a) => match a.args.first() {
                    Some(syn::GenericArgument::Type(t)) => t.clone(),
                    _ => return Err(Error::new(a.span(), "expected `Result<T, E>`")),
                },
                syn::PathArguments::Parenthesized(a) => return Err(Error::new(a.span(), "expected `Result<T, E>`")),
            };
            let ty = if is_unit(&ok) { None } else { Some(interface::ty(&ok)?) };
            return Ok(Returns { ty, rust: ok, fallible: true });
        }
    }
    Ok(Returns { ty: Some(interface::ty(ty)?), rust: ty.clone(), fallible: false })
}

fn expand_export(args: AttributeArgs, function: ItemFn) -> syn::Result<TokenStream2> {
    let args = string_args(args, &["name"], "expected `#[export]` or `#[export(name = \"exported_name\")]`")?;
    let sig = &function.sig;
    check_signature(sig, "an exported function")?;
    if let Some(u) = &sig.unsafety {
        return Err(Error::new(u.span(), "an exported function cannot be unsafe: weft calls it with any arguments"));
    }
    let ident = &sig.ident;
    let name = match args.into_iter().next() {
        Some((_, name, _)) => name,
        None => interface::unraw(ident),
    };
    let params = params(sig)?;
    let returns = returns(&sig.output, true)?;

    let named: Vec<(String, Ty)> = params.iter().map(|(_, _, n, t)| (n.clone(), t.clone())).collect();
    let results: Vec<Ty> = returns.ty.iter().cloned().collect();
    let entry = interface::function(&name, &named, &results);
    let section = section_static(format_ident!("__weft_interface_function_{}", ident), &entry);

    let wrapper = format_ident!("__weft_export_{}", ident);
    let locals: Vec<syn::Ident> = (0..params.len()).map(|i| format_ident!("__weft_arg{}", i)).collect();
    let decode = params.iter().map(|(_, rust, name, _)| quote! { __weft_args.next::<#rust>(#name)? });
    let call = quote! { #ident(#(#locals),*) };
    let ok_ty = &returns.rust;
    let encode = match (returns.fallible, returns.ty.is_some()) {
        (false, false) => quote! { #call; ::weft_sdk::__private::no_results() },
        (false, true) => quote! {
            let __weft_result: #ok_ty = #call;
            ::weft_sdk::__private::result(#name, &__weft_result)
        },
        (true, false) => quote! {
            match #call {
                ::core::result::Result::Ok(_) => ::weft_sdk::__private::no_results(),
                ::core::result::Result::Err(e) => ::weft_sdk::__private::error(e),
            }
        },
        (true, true) => quote! {
            match #call {
                ::core::result::Result::Ok(v) => {
                    let __weft_result: #ok_ty = v;
                    ::weft_sdk::__private::result(#name, &__weft_result)
                }
                ::core::result::Result::Err(e) => ::weft_sdk::__private::error(e),
            }
        },
    };
    let body = quote! {
        // SAFETY: `(ptr, len)` is the argument buffer weft passed to this export.
        let (#(#locals,)*) = unsafe {
            ::weft_sdk::__private::decode_args(#name, __weft_ptr, __weft_len, |__weft_args| {
                ::core::result::Result::Ok((#(#decode,)*))
            })
        };
        #encode
    };
    let doc = format!("The weft export `{}` of [`{}`].", name, ident);
    Ok(quote! {
        #function

        #[doc = #doc]
        #[doc(hidden)]
        #[cfg(target_arch = "wasm32")]
        #[export_name = #name]
        pub extern "C" fn #wrapper(__weft_ptr: i32, __weft_len: i32) -> i64 {
            #body
        }

        #[doc = #doc]
        #[doc(hidden)]
        #[cfg(not(target_arch = "wasm32"))]
        pub fn #wrapper(__weft_ptr: i32, __weft_len: i32) -> i64 {
            #body
        }

        #section
    })
}

fn expand_import(args: AttributeArgs, block: ItemForeignMod) -> syn::Result<TokenStream2> {
    let usage = "expected `#[import(module = \"module_name\")]`";
    let args = string_args(args, &["module"], usage)?;
    let module = match args.into_iter().next() {
        Some((_, module, _)) => module,
        None => return Err(Error::new(Span::call_site(), usage)),
    };
    if let Some(name) = &block.abi.name {
        if name.value() != "C" {
            return Err(Error::new(name.span(), "imports are declared in an `extern \"C\"` block"));
        }
    }
    let mut out = TokenStream2::new();
    for item in block.items {
        let mut f = match item {
            ForeignItem::Fn(f) => f,
            other => return Err(Error::new(other.span(), "only functions can be imported from weft modules")),
        };
        check_signature(&f.sig, "an imported function")?;
        // `#[link_name = "..."]` names the callee when its name is not the Rust one.
        let mut name = interface::unraw(&f.sig.ident);
        let mut attrs = Vec::new();
        for attr in f.attrs.drain(..) {
            if attr.path.is_ident("link_name") {
                match attr.parse_meta()? {
                    Meta::NameValue(syn::MetaNameValue { lit: Lit::Str(s), .. }) => {
                        name = s.value();
                        interface::check_name(&name, s.span())?;
                    }
                    other => return Err(Error::new(other.span(), "expected `#[link_name = \"name\"]`")),
                }
            } else {
                attrs.push(attr);
            }
        }
        let params = params(&f.sig)?;
        let returns = returns(&f.sig.output, false)?;
        let named: Vec<(String, Ty)> = params.iter().map(|(_, _, n, t)| (n.clone(), t.clone())).collect();
        let results: Vec<Ty> = returns.ty.iter().cloned().collect();
        let entry = interface::import(&module, &name, &named, &results);
        let ident = &f.sig.ident;
        let section = section_static(format_ident!("__weft_interface_import_{}", ident), &entry);

        let vis = &f.vis;
        let target = format!("{}.{}", module, name);
        let inputs = params.iter().map(|(ident, rust, _, _)| quote! { #ident: #rust });
        let pushes = params.iter().map(|(ident, _, name, _)| quote! { __weft_args.push(#target, #name, &#ident); });
        let ret = &returns.rust;
        let doc = format!("Calls `{}` (a weft import).", target);
        out.extend(quote! {
            #(#attrs)*
            #[doc = ""]
            #[doc = #doc]
            #vis fn #ident(#(#inputs),*) -> #ret {
                #[cfg(target_arch = "wasm32")]
                #[link(wasm_import_module = #module)]
                extern "C" {
                    #[link_name = #name]
                    fn __weft_import(ptr: i32, len: i32) -> i64;
                }
                #[cfg(not(target_arch = "wasm32"))]
                unsafe fn __weft_import(_: i32, _: i32) -> i64 {
                    ::weft_sdk::__private::no_host(#target)
                }
                let mut __weft_args = ::weft_sdk::__private::ImportArgs::new();
                #(#pushes)*
                let (__weft_ptr, __weft_len) = __weft_args.raw();
                // SAFETY: weft reads the arguments during the call and returns a buffer from our
                // `allocate`, which import_results takes over.
                unsafe {
                    let __weft_packed = __weft_import(__weft_ptr, __weft_len);
                    ::core::mem::drop(__weft_args);
                    ::weft_sdk::__private::import_results::<#ret>(#target, __weft_packed)
                }
            }

            #section
        });
    }
    Ok(out)
}

fn expand_record(args: AttributeArgs, item: syn::Item) -> syn::Result<TokenStream2> {
    if let Some(arg) = args.first() {
        return Err(Error::new(arg.span(), "`#[record]` takes no arguments"));
    }
    let item: ItemStruct = match item {
        syn::Item::Struct(s) => s,
        syn::Item::Enum(e) => {
            return Err(Error::new(
                e.enum_token.span(),
                "a record is a struct with named fields: enums are not weft interface types",
            ))
        }
        other => return Err(Error::new(other.span(), "#[record] goes on a struct with named fields")),
    };
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(Error::new(item.generics.span(), "records cannot have type or lifetime parameters"));
    }
    let fields = match &item.fields {
        syn::Fields::Named(named) => named,
        other => {
            return Err(Error::new(
                other.span(),
                "a record is a struct with named fields (`struct Point { x: f64, y: f64 }`): \
                 tuple and unit structs are not supported",
            ))
        }
    };
    let name = interface::unraw(&item.ident);
    let mut list: Vec<(String, Ty)> = Vec::new();
    for field in &fields.named {
        let ident = field.ident.as_ref().expect("named fields have names");
        let field_name = interface::unraw(ident);
        list.push((field_name, interface::ty(&field.ty)?));
    }
    interface::check_count(list.len(), "fields", fields.span())?;
    let entry = interface::record(&name, &list);
    let section = section_static(format_ident!("__weft_interface_record_{}", item.ident), &entry);
    Ok(quote! {
        #[derive(::weft_sdk::serde::Serialize, ::weft_sdk::serde::Deserialize)]
        #[serde(crate = "::weft_sdk::serde")]
        #item

        #section
    })
}
