//! Strings joined with `+` in one buffer. The scripts build their reasons as chains of up to
//! seven parts (`"the classifier reads thanks (" + guess.words + ")"`), which Rhai reads as
//! `((a + b) + c) + …`: a new string at every `+`, each an allocation and a copy of all the
//! parts before it. Here the parts are computed left to right, as Rhai computes them, and
//! copied once.
//!
//! The answer is the one [`value::binary`] gives step by step: until the chain holds a string,
//! each `+` is `binary`'s; from then on a string part is appended, a number is appended as
//! Rhai prints it, and anything else bails. The size limit is checked once, on the whole: each
//! step's string is a prefix of it, so a step over the limit means a whole over it.

use std::borrow::Cow;

use rhai::{Expr, FnCallExpr};

use super::build::{Arg, Builder, Built, OPS_PER_NODE, literal};
use super::value::{self, Op, Value, bail};
use super::{Flow, Frame};

impl Builder<'_> {
    /// `a + b + c…` with two `+` or more, its own node already counted; `None` for anything
    /// else. Counted as `call` counts each `+` and its operands.
    pub(super) fn join(&mut self, call: &FnCallExpr) -> Option<Built> {
        let mut operands = Vec::new();
        let mut link = call;
        loop {
            let [lhs, rhs] = link.args.as_slice() else {
                return None;
            };
            operands.push(rhs);
            match lhs {
                Expr::FnCall(inner, _) if self.plus(inner) => link = inner,
                _ => {
                    operands.push(lhs);
                    break;
                }
            }
        }
        if operands.len() < 3 {
            return None;
        }
        operands.reverse();
        // Each inner `+`'s node, as `expr` counts it.
        self.cost += OPS_PER_NODE * (operands.len() as u64 - 2);
        let mut parts = Vec::with_capacity(operands.len());
        let mut reserve = 0;
        for e in operands {
            parts.push(match literal(e) {
                Some(v) => {
                    self.cost += OPS_PER_NODE;
                    reserve += match &v {
                        Value::Str(s) => s.len(),
                        _ => 8,
                    };
                    Arg::Value(v)
                }
                None => match self.expr(e) {
                    Ok(code) => {
                        reserve += 16;
                        Arg::Code(code)
                    }
                    Err(e) => return Some(Err(e)),
                },
            });
        }
        Some(Ok(Box::new(move |f| joined(f, &parts, reserve))))
    }

    /// Whether `call` is Rhai's `+` of two values.
    fn plus(&self, call: &FnCallExpr) -> bool {
        call.name == "+"
            && call.args.len() == 2
            && call.namespace.is_empty()
            && !call.capture_parent_scope
            && !self.functions.contains_key(&("+".to_owned(), 2))
    }
}

fn joined(f: &mut Frame<'_>, parts: &[Arg], reserve: usize) -> Result<Value, Flow> {
    let mut parts = parts.iter();
    let Some(first) = parts.next() else {
        return bail();
    };
    let mut value = first.eval(f)?;
    let mut text: Option<String> = None;
    for p in parts {
        let next = p.eval(f)?;
        match (&mut text, &*value) {
            (Some(text), _) => append(text, &next)?,
            (None, Value::Str(x)) => {
                let mut t = String::with_capacity(x.len() + reserve);
                t.push_str(x);
                append(&mut t, &next)?;
                text = Some(t);
            }
            (None, _) => value = Cow::Owned(value::binary(f, Op::Add, &value, &next)?),
        }
    }
    match text {
        Some(t) if t.len() >= f.limits.max_string_size => bail(),
        Some(t) => Ok(Value::Str(t.into())),
        None => Ok(value.into_owned()),
    }
}

/// `text + next` once `text` is a string, as `binary` adds to a string.
fn append(text: &mut String, next: &Value) -> Result<(), Flow> {
    match next {
        Value::Str(s) => text.push_str(s),
        other => text.push_str(&value::print_number(other).ok_or(Flow::Bail)?),
    }
    Ok(())
}
