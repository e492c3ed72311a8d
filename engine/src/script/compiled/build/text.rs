//! The comparison the scripts make most, `x == "text"`, compiled to compare the string where
//! it is kept (the message's field, a variable's value) instead of copying it out as a value
//! first. Kept apart from the rest of the builder only for the length of the file.

use rhai::{ASTFlags, Expr};

use super::super::value::{self, Op, Outcome, Prop, Value, bail};
use super::{Base, Builder, Built, Frame, OPS_PER_NODE};

impl Builder<'_> {
    /// `x == "text"` and `x != "text"` (either way round), the comparison the scripts make
    /// most: the string `x` is compared where it is kept, without the copies of `x` and of the
    /// text that reading them as values makes. `None` for any other comparison. The result,
    /// and the bail where `x` is not a string, are those of [`value::binary`]; the operations
    /// counted are those of the two operands compiled as values.
    pub(super) fn equals_text(&mut self, op: Op, a: &Expr, b: &Expr) -> Option<Built> {
        let ne = match op {
            Op::Eq => false,
            Op::Ne => true,
            _ => return None,
        };
        let (x, text) = match (a, b) {
            (x, Expr::StringConstant(s, _)) | (Expr::StringConstant(s, _), x) => (x, s),
            _ => return None,
        };
        if matches!(x, Expr::StringConstant(..)) {
            return None;
        }
        let text: Box<str> = text.as_str().into();
        // The text's node, as `expr` would count it.
        self.cost += OPS_PER_NODE;
        let max = |f: &Frame<'_>| f.limits.max_string_size;
        let test = move |s: &str| Ok(Value::Bool((s == &*text) != ne));
        Some(match x {
            Expr::Variable(v, ..) if v.2.is_empty() && self.local(&v.1).is_some() => {
                self.cost += OPS_PER_NODE;
                let slot = self.local(&v.1)?;
                Ok(Box::new(move |f| match &f.slots[f.base + slot] {
                    Value::Str(s) => test(s),
                    _ => bail(),
                }))
            }
            Expr::Dot(d, flags, _)
                if !flags.contains(ASTFlags::NEGATED) && matches!(d.rhs, Expr::Property(..)) =>
            {
                let Expr::Property(p, _) = &d.rhs else {
                    return None;
                };
                let prop = Prop::of(&p.2)?;
                // The chain's node and its link, as `expr` and `link` count them.
                self.cost += 2 * OPS_PER_NODE;
                let base = match self.base(&d.lhs) {
                    Ok(base) => base,
                    Err(e) => return Some(Err(e)),
                };
                Ok(match base {
                    Base::Message => Box::new(move |f| match value::message_str(f, prop) {
                        Some(s) if s.len() >= max(f) => bail(),
                        Some(s) => test(s),
                        None => bail(),
                    }),
                    Base::Slot(slot) => Box::new(move |f| {
                        let f: &Frame<'_> = f;
                        prop_text(f, &f.slots[f.base + slot], prop, &test)
                    }),
                    Base::Code(base) => Box::new(move |f| {
                        let v = base(f)?;
                        prop_text(f, &v, prop, &test)
                    }),
                })
            }
            _ => {
                let x = match self.expr(x) {
                    Ok(code) => code,
                    Err(e) => return Some(Err(e)),
                };
                Ok(Box::new(move |f| match x(f)? {
                    Value::Str(s) => test(&s),
                    _ => bail(),
                }))
            }
        })
    }
}

/// `test` on the string `v.<prop>`, read as `get` reads it: the size check, except for the
/// interned `decision.action`.
fn prop_text(f: &Frame<'_>, v: &Value, prop: Prop, test: &impl Fn(&str) -> Outcome) -> Outcome {
    let checked = !matches!((v, prop), (Value::Verdict(_), Prop::Action));
    match value::str_prop(f, v, prop) {
        Some(s) if checked && s.len() >= f.limits.max_string_size => bail(),
        Some(s) => test(s),
        None => match value::get(f, v, prop)? {
            Value::Str(s) => test(&s),
            _ => bail(),
        },
    }
}
