//! `contains_any(text, [...])` and `starts_with_any(text, [...])` with the list written out in
//! the script: the list is normalised and its searcher built once, when the script compiles.
//! Looked up at every call instead, in the thread's cache of lists, the list's words were
//! hashed and compared on every message, which cost as much as the search itself.

use rhai::Expr;

use super::Flow;
use super::build::{Builder, Built};
use super::value::{Value, bail};
use crate::script::api::WordList;

impl Builder<'_> {
    /// The call `name(args)` when it is one of the two with a written-out list of strings;
    /// `None` for any other. Counted as `native_args` counts the same two arguments.
    pub(super) fn listed_words(&mut self, name: &str, args: &[Expr]) -> Option<Built> {
        let at_start = match name {
            "contains_any" => false,
            "starts_with_any" => true,
            _ => return None,
        };
        let [_, Expr::Array(items, _)] = args else {
            return None;
        };
        let words = items
            .iter()
            .map(|item| match item {
                Expr::StringConstant(s, _) => Some(s.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let text = match self.native_args(args) {
            Ok(args) => args.into_iter().next()?,
            Err(e) => return Some(Err(e)),
        };
        let count = words.len();
        let bytes: usize = words.iter().map(|w| w.len()).sum();
        let list = WordList::new(&words);
        Some(Ok(Box::new(move |f| {
            let text = text.eval(f)?;
            // The list as `value::sized` checks an array Rhai would hold.
            if count >= f.limits.max_array_size || bytes >= f.limits.max_string_size {
                return bail();
            }
            match &*text {
                Value::Str(t) => list
                    .find_charged(t, at_start)
                    .map(Value::Bool)
                    .map_err(|_| Flow::Bail),
                _ => bail(),
            }
        })))
    }
}
