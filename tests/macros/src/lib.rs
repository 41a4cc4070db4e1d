//! `#[each_store]`: the attribute that runs one API test on every store Confab has.
//!
//! It replaces `#[tokio::test]` (and takes the same arguments) on an `async fn` test that
//! starts a server, and turns it into a module of the same name holding one `#[tokio::test]`
//! per store, `sqlite` and `postgres`, so that `cargo test postgres` picks the PostgreSQL
//! half. Each runs the unchanged body under `crate::support::on_store`, which sets the store
//! that the harness's `spawn_app`, `spawn_app_with` and `ServerProcess::start` use (and
//! skips the PostgreSQL half where PostgreSQL is missing). This crate knows nothing else
//! of the suite: the harness owns what a store means.
//!
//! The body moves one module down (the generated module imports everything of the file
//! with `use super::*`), so within it `super::` names the test's own file: name items by
//! their `crate::` path instead.

use proc_macro::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

/// The stores, as the names of the generated tests and the `crate::support::Store`
/// variants they run on.
const STORES: [(&str, &str); 2] = [("sqlite", "Sqlite"), ("postgres", "Postgres")];

#[proc_macro_attribute]
pub fn each_store(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let test = syn::parse_macro_input!(item as ItemFn);
    match expand(args, test) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(args: proc_macro2::TokenStream, test: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let signature = &test.sig;
    if signature.asyncness.is_none() {
        return Err(syn::Error::new(signature.fn_token.span(), "#[each_store] tests are async"));
    }
    if !signature.inputs.is_empty() || !signature.generics.params.is_empty() {
        return Err(syn::Error::new(signature.span(), "#[each_store] tests take no arguments"));
    }
    // A skipped PostgreSQL half returns nothing, so neither may the test.
    if let ReturnType::Type(_, output) = &signature.output {
        return Err(syn::Error::new(output.span(), "#[each_store] tests return ()"));
    }
    let ItemFn { attrs, vis, block, .. } = &test;
    let name = &signature.ident;
    let halves = STORES.iter().map(|(half, variant)| {
        let half = syn::Ident::new(half, name.span());
        let variant = syn::Ident::new(variant, name.span());
        quote! {
            #[::tokio::test(#args)]
            #(#attrs)*
            async fn #half() {
                crate::support::on_store(crate::support::Store::#variant, async move #block).await
            }
        }
    });
    Ok(quote! {
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            #(#halves)*
        }
    })
}
