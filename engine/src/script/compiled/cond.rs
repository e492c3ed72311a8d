//! Conditions compiled to closures that answer a plain `bool`. Most of what the default scripts
//! run is conditions (`if`, `&&`, `||`, `!`, `x == "crisis"`, `danger.score >= 0.4`): as values
//! each step made a `Value::Bool`, returned it through a `Result<Value, _>`, and its reader
//! checked the variant and dropped it. Here a condition's parts hand each other the `bool`.
//!
//! Nothing is decided differently: a part whose value is not a `bool` bails, as `as_bool` does
//! on the value path, comparisons answer what [`value::binary`] answers, and each part counts
//! the operations its value path counts (the limits are charged from those counts).

use rhai::{ASTFlags, Expr};

use super::build::{Builder, OPS_PER_NODE, literal};
use super::value::{self, Native, Op, Prop, Value, bail};
use super::{Flow, Frame};

pub(super) type Test = Box<dyn Fn(&mut Frame<'_>) -> Result<bool, Flow> + Send + Sync>;

type BuiltTest = Result<Test, String>;

impl Builder<'_> {
    /// `expr` where Rhai needs a `bool` (an `if`, an operand of `&&`, `||` or `!`): a bail where
    /// it is not one.
    pub(super) fn test(&mut self, expr: &Expr) -> BuiltTest {
        self.cost += OPS_PER_NODE;
        if let Some(test) = self.condition(expr) {
            return test;
        }
        // A variable the script declared, read where it is kept (`if spam { … }`).
        if let Expr::Variable(v, ..) = expr
            && let Some(slot) = self.local(&v.1).filter(|_| v.2.is_empty())
        {
            return Ok(Box::new(move |f| f.slots[f.base + slot].as_bool()));
        }
        let code = self.node(expr)?;
        Ok(Box::new(move |f| code(f)?.as_bool()))
    }

    /// `expr` compiled as a condition when it is one whatever its operands hold (`&&`, `||`,
    /// `!`, a comparison), its own node already counted; `None` for any other expression.
    pub(super) fn condition(&mut self, expr: &Expr) -> Option<BuiltTest> {
        match expr {
            Expr::And(list, _) | Expr::Or(list, _) => {
                Some(self.junction(matches!(expr, Expr::And(..)), list))
            }
            Expr::Dot(x, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                self.asks(&x.lhs, &x.rhs)
            }
            // A script function named like an operator is called as one (see `call`).
            Expr::FnCall(call, _)
                if call.namespace.is_empty()
                    && !call.capture_parent_scope
                    && !self
                        .functions
                        .contains_key(&(call.name.to_string(), call.args.len())) =>
            {
                match (call.name.as_str(), call.args.as_slice()) {
                    ("!", [x]) => Some(
                        self.test(x)
                            .map(|t| -> Test { Box::new(move |f| Ok(!t(f)?)) }),
                    ),
                    (name, [a, b]) => {
                        let op = Op::of(name).filter(|op| op.compares())?;
                        Some(self.comparison(op, a, b))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `guess.says("spam", 0.9)`, `msg.has_topic("ask_human")` and `msg.has_category("spam")`
    /// with literal arguments, the questions the scripts ask most (a dozen a message): answered
    /// straight from the message, without the native call's argument list and dispatch. What
    /// they answer, and where they bail, is what [`value::call`] does; they count what `link`
    /// and `native_args` count. `None` for any other method call.
    fn asks(&mut self, lhs: &Expr, rhs: &Expr) -> Option<BuiltTest> {
        let Expr::MethodCall(call, _) = rhs else {
            return None;
        };
        let arity = call.args.len() + 1;
        if !call.namespace.is_empty()
            || self.functions.contains_key(&(call.name.to_string(), arity))
        {
            return None;
        }
        let native = Native::of(&call.name, arity)?;
        let args = call.args.iter().map(literal).collect::<Option<Vec<_>>>()?;
        let message = matches!(lhs, Expr::Variable(v, ..) if self.is_message(v));
        // The link, and each argument as `args` and `expr` count it.
        let counted = OPS_PER_NODE * (1 + 2 * args.len() as u64);
        match (native, args.as_slice()) {
            (Native::HasTopic | Native::HasCategory, [Value::Str(id)]) if message => {
                self.cost += counted;
                let (id, topics) = (id.clone(), native == Native::HasTopic);
                Some(Ok(Box::new(move |f| Ok(value::has(f, topics, &id)))))
            }
            (Native::Says, [Value::Str(c), Value::Float(min)]) if !message => {
                let (c, min) = (c.clone(), *min);
                let local = match lhs {
                    Expr::Variable(v, ..) if v.2.is_empty() => self.local(&v.1),
                    _ => None,
                };
                Some(match local {
                    Some(slot) => {
                        // The variable's node, as `expr` counts it.
                        self.cost += OPS_PER_NODE + counted;
                        Ok(Box::new(move |f| {
                            value::says(f, &f.slots[f.base + slot], &c, min)
                        }))
                    }
                    None => self
                        .expr(lhs)
                        .map(|base| -> Test {
                            Box::new(move |f| {
                                let v = base(f)?;
                                value::says(f, &v, &c, min)
                            })
                        })
                        .inspect(|_| self.cost += counted),
                })
            }
            _ => None,
        }
    }

    /// `a && b && …` or `a || b || …`, each operand read only when the ones before it leave the
    /// answer open.
    fn junction(&mut self, and: bool, list: &[Expr]) -> BuiltTest {
        let mut tests = list
            .iter()
            .map(|e| self.test(e))
            .collect::<Result<Vec<_>, _>>()?;
        if tests.len() == 2 {
            let (Some(b), Some(a)) = (tests.pop(), tests.pop()) else {
                return Err("an empty `&&` or `||`".to_owned());
            };
            return Ok(if and {
                Box::new(move |f| Ok(a(f)? && b(f)?))
            } else {
                Box::new(move |f| Ok(a(f)? || b(f)?))
            });
        }
        Ok(Box::new(move |f| {
            for test in &tests {
                if test(f)? != and {
                    return Ok(!and);
                }
            }
            Ok(and)
        }))
    }

    /// `a op b` for a comparison `op`, a constant operand kept as a value and lent to it, as
    /// `call` compiles it.
    fn comparison(&mut self, op: Op, a: &Expr, b: &Expr) -> BuiltTest {
        if let Some(test) = self.equals_text(op, a, b) {
            return test;
        }
        match (literal(a), literal(b)) {
            (None, Some(c)) => {
                self.cost += OPS_PER_NODE;
                let x = self.expr(a)?;
                Ok(Box::new(move |f| {
                    let x = x(f)?;
                    value::holds(f, op, &x, &c)
                }))
            }
            (Some(c), None) => {
                self.cost += OPS_PER_NODE;
                let y = self.expr(b)?;
                Ok(Box::new(move |f| {
                    let y = y(f)?;
                    value::holds(f, op, &c, &y)
                }))
            }
            _ => {
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                Ok(Box::new(move |f| {
                    let x = x(f)?;
                    let y = y(f)?;
                    value::holds(f, op, &x, &y)
                }))
            }
        }
    }

    /// `x == "text"` and `x != "text"` (either way round), the comparison the scripts make
    /// most: the string `x` is compared where it is kept, without the copies of `x` and of the
    /// text that reading them as values makes. `None` for any other comparison. The result,
    /// and the bail where `x` is not a string, are those of [`value::binary`]; the operations
    /// counted are those of the two operands compiled as values.
    fn equals_text(&mut self, op: Op, a: &Expr, b: &Expr) -> Option<BuiltTest> {
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
        let test = move |s: &str| Ok((s == &*text) != ne);
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
                // Read as `get` reads it: the size check, except for the interned
                // `decision.action`.
                let direct = test.clone();
                let read = move |f: &Frame<'_>, v: &Value| {
                    let checked = !matches!((v, prop), (Value::Verdict(_), Prop::Action));
                    match value::str_prop(f, v, prop) {
                        Some(s) if checked && s.len() >= max(f) => bail(),
                        Some(s) => test(s),
                        None => match value::get(f, v, prop)? {
                            Value::Str(s) => test(&s),
                            _ => bail(),
                        },
                    }
                };
                Ok(match &d.lhs {
                    // `msg.topic`: `str_prop` reads the message's field.
                    Expr::Variable(v, ..) if self.is_message(v) => match value::message_field(prop)
                    {
                        Some(field) => Box::new(move |f| {
                            let s = field(&f.inputs.msg.0);
                            if s.len() >= max(f) { bail() } else { direct(s) }
                        }),
                        None => Box::new(move |f| read(f, &Value::Message)),
                    },
                    // `sure.category`: the variable read where it is kept, counted as `expr`
                    // counts it; a guess's category, the most common, without `str_prop`.
                    Expr::Variable(v, ..) if v.2.is_empty() && self.local(&v.1).is_some() => {
                        self.cost += OPS_PER_NODE;
                        let slot = self.local(&v.1)?;
                        Box::new(move |f| match &f.slots[f.base + slot] {
                            Value::Guess(of) if prop == Prop::Category => {
                                let s = &value::guess_view(f, *of).category;
                                if s.len() >= max(f) { bail() } else { direct(s) }
                            }
                            v => read(f, v),
                        })
                    }
                    other => match self.expr(other) {
                        Ok(base) => Box::new(move |f| {
                            let v = base(f)?;
                            read(f, &v)
                        }),
                        Err(e) => return Some(Err(e)),
                    },
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
