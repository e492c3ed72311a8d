//! Turns a script's Rhai AST into a tree of Rust closures, once per rulebook. Variables become
//! numbered slots, `msg.topic` a read of the message's field, `escalate(…)` a direct call with
//! its `escalation.rhai:LINE` worked out in advance; only the types of values are still looked
//! at when a message runs.
//!
//! Anything not handled here is refused with the construct's name, and the script then runs on
//! Rhai as written: loops other than `for` over an array, `switch`, `try`, closures, maps,
//! string interpolation, `throw`, constants, recursion, methods of a script's own, functions
//! this module does not know. The refusal is the safe side of every doubt.

use std::borrow::Cow;
use std::collections::HashMap;

use rhai::{ASTFlags, ASTNode, Expr, FnCallExpr, Position, Stmt};

use super::value::{self, Native, Op, Outcome, Prop, Value, bail};
use super::{Flow, Frame};

pub(super) type Code = Box<dyn Fn(&mut Frame<'_>) -> Outcome + Send + Sync>;

/// What a compiled script function needs when it is called.
pub(super) struct Function {
    pub body: Code,
    pub params: usize,
    /// The slots its variables need at once (see [`Builder::slots`]).
    pub slots: usize,
    /// The variables it declares, for the limit on variables.
    pub declared: usize,
    /// The operations Rhai may count for one call (see [`Builder::cost`]).
    pub cost: u64,
    calls: Vec<usize>,
}

/// Rhai counts an operation for each statement, expression, argument, chain link and call, a
/// few per AST node; four per node is an upper bound of what it counts for the node.
pub(super) const OPS_PER_NODE: u64 = 4;

/// The variables the engine provides, besides `decision` (a slot: governance may change it).
#[derive(Debug, Clone, Copy)]
enum Input {
    Message,
    Conversation,
    Teams,
    CrisisMode,
    DefaultTeam,
    ReplyLimit,
}

pub(super) struct Builder<'a> {
    source: &'a str,
    pub(super) functions: &'a HashMap<(String, usize), usize>,
    /// The engine's variables this script may read (none inside a function, as in Rhai).
    inputs: Vec<(&'a str, Input)>,
    /// Visible variables, innermost last, with their slots.
    names: Vec<(String, usize)>,
    /// The slots in use: a block's variables give theirs back when it ends, so a run fills
    /// and drops as many slots as there are variables alive at once, not one per `let` in
    /// the script. `peak` is the most at once, `declared` every `let` (and parameter).
    slots: usize,
    peak: usize,
    declared: usize,
    /// Operations counted so far in the part being compiled (see [`OPS_PER_NODE`]).
    pub(super) cost: u64,
    calls: Vec<usize>,
}

pub(super) type Built = Result<Code, String>;

/// An argument of a native function: a literal's value, or the code that computes it.
pub(super) enum Arg {
    Value(Value),
    Code(Code),
}

impl Arg {
    /// The argument's value, lent where it is a literal.
    pub(super) fn eval(&self, f: &mut Frame<'_>) -> Result<Cow<'_, Value>, Flow> {
        match self {
            Arg::Value(v) => Ok(Cow::Borrowed(v)),
            Arg::Code(code) => code(f).map(Cow::Owned),
        }
    }
}

/// The value of a literal (`0.9`, `4`, `"spam"`, `true`), or `None` for any other expression.
pub(super) fn literal(expr: &Expr) -> Option<Value> {
    Some(match expr {
        Expr::BoolConstant(b, _) => Value::Bool(*b),
        Expr::IntegerConstant(i, _) => Value::Int(*i),
        Expr::FloatConstant(x, _) => Value::Float(**x),
        Expr::StringConstant(s, _) => Value::Str(s.clone()),
        _ => return None,
    })
}

fn constant(v: Value) -> Code {
    Box::new(move |_| Ok(v.clone()))
}

fn from_dynamic(d: &rhai::Dynamic) -> Result<Value, String> {
    if d.is_unit() {
        Ok(Value::Unit)
    } else if let Ok(b) = d.as_bool() {
        Ok(Value::Bool(b))
    } else if let Ok(i) = d.as_int() {
        Ok(Value::Int(i))
    } else if let Ok(f) = d.as_float() {
        Ok(Value::Float(f))
    } else if let Some(s) = d.read_lock::<rhai::ImmutableString>() {
        Ok(Value::Str(s.clone()))
    } else if let Some(a) = d.read_lock::<rhai::Array>() {
        a.iter()
            .map(from_dynamic)
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Value::Array(v.into()))
    } else {
        Err(format!("a constant of type `{}`", d.type_name()))
    }
}

impl<'a> Builder<'a> {
    /// A builder for one body (the script's or one of its functions), its count of
    /// operations starting at `cost`.
    fn new(source: &'a str, functions: &'a HashMap<(String, usize), usize>, cost: u64) -> Self {
        Builder {
            source,
            functions,
            inputs: Vec::new(),
            names: Vec::new(),
            slots: 0,
            peak: 0,
            declared: 0,
            cost,
            calls: Vec::new(),
        }
    }

    fn rule(&self, pos: Position) -> String {
        match pos.line() {
            Some(line) => format!("{}:{line}", self.source),
            None => self.source.to_owned(),
        }
    }

    pub(super) fn local(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, slot)| *slot)
    }

    fn declare(&mut self, name: &str) -> usize {
        let slot = self.slots;
        self.slots += 1;
        self.peak = self.peak.max(self.slots);
        self.declared += 1;
        self.names.push((name.to_owned(), slot));
        slot
    }

    fn block(&mut self, statements: &[Stmt]) -> Built {
        let (visible, slots) = (self.names.len(), self.slots);
        let codes = statements
            .iter()
            .map(|s| self.stmt(s))
            .collect::<Result<Vec<_>, _>>();
        self.names.truncate(visible);
        // A `let` always writes its slot before the variable can be read, so a slot given
        // back here can serve a later block's variable.
        self.slots = slots;
        let mut codes = codes?;
        // Only the last statement's value is the block's: the others' are dropped where they
        // are made, not moved into a variable that the next one drops.
        let Some(last) = codes.pop() else {
            return Ok(constant(Value::Unit));
        };
        if codes.is_empty() {
            return Ok(last);
        }
        Ok(Box::new(move |f| {
            for code in &codes {
                code(f)?;
            }
            last(f)
        }))
    }

    pub(super) fn stmt(&mut self, stmt: &Stmt) -> Built {
        self.cost += OPS_PER_NODE;
        match stmt {
            Stmt::Noop(..) => Ok(constant(Value::Unit)),
            Stmt::Var(x, flags, _) if *flags == ASTFlags::NONE => {
                let init = self.expr(&x.1)?;
                let slot = self.declare(x.0.name.as_str());
                Ok(Box::new(move |f| {
                    let v = init(f)?;
                    let base = f.base;
                    f.slots[base + slot] = v;
                    Ok(Value::Unit)
                }))
            }
            Stmt::Assignment(x) => self.assignment(&x.0, &x.1.lhs, &x.1.rhs),
            Stmt::If(x, _) => {
                let cond = self.test(&x.expr)?;
                let body = self.block(x.body.statements())?;
                // Most `if`s have no `else`, and most conditions are false: then the value is
                // `()` without a call.
                if x.branch.statements().is_empty() {
                    return Ok(Box::new(
                        move |f| {
                            if cond(f)? { body(f) } else { Ok(Value::Unit) }
                        },
                    ));
                }
                let branch = self.block(x.branch.statements())?;
                Ok(Box::new(
                    move |f| {
                        if cond(f)? { body(f) } else { branch(f) }
                    },
                ))
            }
            Stmt::For(x, _) if x.1.is_none() => {
                let iter = self.expr(&x.2.expr)?;
                let outer = std::mem::take(&mut self.cost);
                let (visible, slots) = (self.names.len(), self.slots);
                let slot = self.declare(x.0.name.as_str());
                let body = self.block(x.2.body.statements());
                self.names.truncate(visible);
                self.slots = slots;
                // Counted per pass, when the array's length is known.
                let per_pass = std::mem::replace(&mut self.cost, outer) + OPS_PER_NODE;
                let body = body?;
                Ok(Box::new(move |f| {
                    let Value::Array(items) = iter(f)? else {
                        return bail();
                    };
                    for item in items.iter() {
                        f.charge(per_pass)?;
                        let base = f.base;
                        f.slots[base + slot] = item.clone();
                        body(f)?;
                    }
                    Ok(Value::Unit)
                }))
            }
            Stmt::FnCall(call, pos) => self.call(call, *pos),
            Stmt::Block(b) => self.block(b.statements()),
            Stmt::Expr(e) => self.expr(e),
            Stmt::Return(e, flags, _) if *flags == ASTFlags::NONE => {
                let value = match e {
                    Some(e) => self.expr(e)?,
                    None => constant(Value::Unit),
                };
                Ok(Box::new(move |f| Err(Flow::Return(value(f)?))))
            }
            Stmt::Return(..) => Err("`throw`".to_owned()),
            Stmt::Var(..) => Err("`const`".to_owned()),
            Stmt::While(..) | Stmt::Do(..) => Err("a `while`, `loop` or `do` loop".to_owned()),
            Stmt::For(..) => Err("a `for` loop with a counter".to_owned()),
            Stmt::Switch(..) => Err("`switch`".to_owned()),
            Stmt::TryCatch(..) => Err("`try`".to_owned()),
            Stmt::BreakLoop(..) => Err("`break` or `continue`".to_owned()),
            _ => Err("a statement of another kind".to_owned()),
        }
    }

    fn assignment(&mut self, op: &rhai::OpAssignment, lhs: &Expr, rhs: &Expr) -> Built {
        let value = self.expr(rhs)?;
        let op = match op.get_op_assignment_info() {
            None => None,
            Some((.., op_syntax)) => {
                Some(Op::of(op_syntax).ok_or_else(|| format!("`{op_syntax}=`"))?)
            }
        };
        match lhs {
            Expr::Variable(x, ..) if x.2.is_empty() => {
                // Only the script's own variables: the engine's are constants in Rhai.
                let slot = self
                    .local(&x.1)
                    .ok_or_else(|| format!("an assignment to `{}`", x.1))?;
                Ok(Box::new(move |f| {
                    let v = value(f)?;
                    let at = f.base + slot;
                    f.slots[at] = match op {
                        None => v,
                        Some(op) => value::binary(f, op, &f.slots[at], &v)?,
                    };
                    Ok(Value::Unit)
                }))
            }
            Expr::Dot(x, flags, _) if op.is_none() && !flags.contains(ASTFlags::NEGATED) => {
                let (Expr::Variable(var, ..), Expr::Property(p, pos)) = (&x.lhs, &x.rhs) else {
                    return Err("an assignment to a nested property".to_owned());
                };
                let slot = self
                    .local(&var.1)
                    .filter(|_| var.2.is_empty())
                    .ok_or_else(|| format!("an assignment to a property of `{}`", var.1))?;
                let prop = Prop::of(&p.2)
                    .filter(|p| p.settable().is_some())
                    .ok_or_else(|| format!("an assignment to `.{}`", p.2))?;
                let rule = self.rule(*pos);
                self.cost += 2 * OPS_PER_NODE;
                Ok(Box::new(move |f| {
                    let v = value(f)?;
                    let at = f.base + slot;
                    value::set(&mut f.slots[at], prop, v, &rule)?;
                    Ok(Value::Unit)
                }))
            }
            _ => Err("an assignment of another kind".to_owned()),
        }
    }

    pub(super) fn expr(&mut self, expr: &Expr) -> Built {
        self.cost += OPS_PER_NODE;
        if let Some(test) = self.condition(expr) {
            let test = test?;
            return Ok(Box::new(move |f| test(f).map(Value::Bool)));
        }
        self.node(expr)
    }

    /// `expr` as a value, its own node already counted.
    pub(super) fn node(&mut self, expr: &Expr) -> Built {
        match expr {
            Expr::DynamicConstant(d, _) => Ok(constant(from_dynamic(d)?)),
            Expr::BoolConstant(b, _) => Ok(constant(Value::Bool(*b))),
            Expr::IntegerConstant(i, _) => Ok(constant(Value::Int(*i))),
            Expr::FloatConstant(x, _) => Ok(constant(Value::Float(**x))),
            Expr::StringConstant(s, _) => Ok(constant(Value::Str(s.clone()))),
            Expr::Unit(_) => Ok(constant(Value::Unit)),
            // A list written out in the script ("contains_any(msg.normalized, [\"vaarwel\", …])")
            // is the same list every run: built once, not an array of thirty strings a message.
            Expr::Array(items, _) if items.iter().all(|e| literal(e).is_some()) => {
                let list = Value::Array(items.iter().filter_map(literal).collect());
                Ok(Box::new(move |f| value::sized(f, list.clone())))
            }
            Expr::Array(items, _) => {
                let items = items
                    .iter()
                    .map(|e| self.expr(e))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Box::new(move |f| {
                    let values = items
                        .iter()
                        .map(|code| code(f))
                        .collect::<Result<Vec<_>, _>>()?;
                    value::sized(f, Value::Array(values.into()))
                }))
            }
            Expr::Variable(x, ..) if x.2.is_empty() => self.variable(&x.1),
            Expr::Stmt(block) => self.block(block.statements()),
            Expr::FnCall(call, pos) => self.call(call, *pos),
            Expr::Dot(x, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                if let Some(code) = self.local_link(&x.lhs, &x.rhs) {
                    return code;
                }
                let base = match &x.lhs {
                    Expr::Variable(v, ..) if self.is_message(v) => None,
                    other => Some(self.expr(other)?),
                };
                self.chain(base, &x.rhs)
            }
            Expr::Index(x, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                if matches!(x.lhs, Expr::Dot(..) | Expr::Index(..)) {
                    return Err("an index in a chain".to_owned());
                }
                // Rhai computes the index before it reads the array (see `unchanging`).
                if !unchanging(&x.rhs) {
                    return Err("an index that may assign a variable".to_owned());
                }
                let array = self.expr(&x.lhs)?;
                let index = self.expr(&x.rhs)?;
                Ok(Box::new(move |f| {
                    let (Value::Array(a), Value::Int(i)) = (array(f)?, index(f)?) else {
                        return bail();
                    };
                    // A negative index counts from the end in Rhai; out of range is an error.
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| a.get(i).cloned())
                        .ok_or(Flow::Bail)
                }))
            }
            Expr::InterpolatedString(..) => Err("string interpolation".to_owned()),
            Expr::Map(..) => Err("an object map".to_owned()),
            _ => Err("an expression of another kind".to_owned()),
        }
    }

    pub(super) fn is_message(
        &self,
        v: &(
            Option<std::num::NonZeroUsize>,
            rhai::ImmutableString,
            rhai::Namespace,
            u64,
        ),
    ) -> bool {
        v.2.is_empty() && v.1 == "msg" && self.local("msg").is_none() && self.input("msg").is_some()
    }

    fn input(&self, name: &str) -> Option<Input> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, i)| *i)
    }

    fn variable(&mut self, name: &str) -> Built {
        if let Some(slot) = self.local(name) {
            return Ok(Box::new(move |f| Ok(f.slots[f.base + slot].clone())));
        }
        let input = self
            .input(name)
            .ok_or_else(|| format!("the variable `{name}` here"))?;
        Ok(match input {
            Input::Message => constant(Value::Message),
            Input::Conversation => constant(Value::Conversation),
            Input::Teams => constant(Value::Teams),
            Input::CrisisMode => Box::new(|f| Ok(Value::Bool(f.inputs.crisis_mode))),
            Input::DefaultTeam => Box::new(|f| Ok(Value::Str(f.inputs.default_team.clone()))),
            Input::ReplyLimit => Box::new(|f| Ok(Value::Int(f.reply_limit))),
        })
    }

    /// `base.rhs`, where `base` is `None` for the engine's `msg`, whose properties are read
    /// straight from the message.
    fn chain(&mut self, base: Option<Code>, rhs: &Expr) -> Built {
        match rhs {
            Expr::Dot(x, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let first = self.link(base, &x.lhs)?;
                self.chain(Some(first), &x.rhs)
            }
            Expr::Property(..) | Expr::MethodCall(..) => self.link(base, rhs),
            _ => Err("an index or `?.` in a chain".to_owned()),
        }
    }

    /// `x.prop` and `x.len()` for a variable `x` of the script, read where it is kept (`danger.score`,
    /// `keyword_critical.len()`): no copy of the value and no native call. Counted as `expr`
    /// and `link` count the variable and the link; `None` for any other chain.
    fn local_link(&mut self, lhs: &Expr, rhs: &Expr) -> Option<Built> {
        let Expr::Variable(v, ..) = lhs else {
            return None;
        };
        let slot = self.local(&v.1).filter(|_| v.2.is_empty())?;
        let code: Code = match rhs {
            Expr::Property(p, _) => {
                let prop = Prop::of(&p.2)?;
                Box::new(move |f| value::get(f, &f.slots[f.base + slot], prop))
            }
            Expr::MethodCall(call, _)
                if call.name == "len"
                    && call.args.is_empty()
                    && call.namespace.is_empty()
                    && !self.functions.contains_key(&("len".to_owned(), 1)) =>
            {
                Box::new(move |f| value::length(&f.slots[f.base + slot]))
            }
            _ => return None,
        };
        self.cost += 2 * OPS_PER_NODE;
        Some(Ok(code))
    }

    fn link(&mut self, base: Option<Code>, rhs: &Expr) -> Built {
        self.cost += OPS_PER_NODE;
        match rhs {
            Expr::Property(p, _) => {
                let prop = Prop::of(&p.2).ok_or_else(|| format!("the property `{}`", p.2))?;
                Ok(match base {
                    None => Box::new(move |f| value::message_prop(f, prop)),
                    Some(base) => Box::new(move |f| {
                        let v = base(f)?;
                        value::get(f, &v, prop)
                    }),
                })
            }
            Expr::MethodCall(call, pos) => {
                if !call.namespace.is_empty()
                    || self
                        .functions
                        .contains_key(&(call.name.to_string(), call.args.len() + 1))
                {
                    return Err(format!("the method `{}`", call.name));
                }
                // Rhai computes a method's arguments before it reads the value the method is
                // called on; compiled, the value comes first, the same only while no argument
                // can assign a variable (`words.contains({ words = []; "z" })`).
                if !call.args.iter().all(unchanging) {
                    return Err(format!(
                        "an argument of `{}` that may assign a variable",
                        call.name
                    ));
                }
                let native = Native::of(&call.name, call.args.len() + 1)
                    .ok_or_else(|| format!("the method `{}`", call.name))?;
                let base = base.map_or(Arg::Value(Value::Message), Arg::Code);
                let args = self.native_args(&call.args)?;
                self.native(native, *pos, Some(base), args)
            }
            _ => Err("a chain of another kind".to_owned()),
        }
    }

    fn args(&mut self, args: &[Expr]) -> Result<Vec<Code>, String> {
        self.cost += OPS_PER_NODE * args.len() as u64;
        args.iter().map(|e| self.expr(e)).collect()
    }

    /// A native function's arguments: a literal is kept as its value and lent to the call, not
    /// made and dropped on every run (most arguments are literals: `has_topic("…")`,
    /// `says("spam", 0.9)`, `escalate("crisis", "urgent", …)`). Counted as [`Self::args`] counts.
    pub(super) fn native_args(&mut self, args: &[Expr]) -> Result<Vec<Arg>, String> {
        let codes = self.args(args)?;
        Ok(args
            .iter()
            .zip(codes)
            .map(|(e, code)| literal(e).map_or(Arg::Code(code), Arg::Value))
            .collect())
    }

    fn native(
        &mut self,
        native: Native,
        pos: Position,
        base: Option<Arg>,
        args: Vec<Arg>,
    ) -> Built {
        let rule = if native.decides() {
            self.rule(pos)
        } else {
            String::new()
        };
        // One closure per number of arguments, each evaluating them in order: a native call is
        // made a few dozen times a message.
        let mut args = base.into_iter().chain(args);
        Ok(match (args.next(), args.next(), args.next(), args.next()) {
            (None, ..) => Box::new(move |f| value::call(f, native, &rule, &[])),
            (Some(a), None, ..) => Box::new(move |f| {
                let a = a.eval(f)?;
                value::call(f, native, &rule, &[&a])
            }),
            (Some(a), Some(b), None, _) => Box::new(move |f| {
                let a = a.eval(f)?;
                let b = b.eval(f)?;
                value::call(f, native, &rule, &[&a, &b])
            }),
            (Some(a), Some(b), Some(c), None) => Box::new(move |f| {
                let a = a.eval(f)?;
                let b = b.eval(f)?;
                let c = c.eval(f)?;
                value::call(f, native, &rule, &[&a, &b, &c])
            }),
            _ => return Err("a call with more than three arguments".to_owned()),
        })
    }

    fn call(&mut self, call: &FnCallExpr, pos: Position) -> Built {
        if !call.namespace.is_empty() || call.capture_parent_scope {
            return Err(format!("the call `{}!` or with a namespace", call.name));
        }
        let name = call.name.as_str();
        let arity = call.args.len();
        if let Some(&index) = self.functions.get(&(name.to_owned(), arity)) {
            self.calls.push(index);
            let args = self.args(&call.args)?;
            return Ok(Box::new(move |f| f.call_script(index, &args)));
        }
        match (name, arity) {
            ("!", 1) | ("-", 1) => {
                let arg = self.expr(&call.args[0])?;
                let not = name == "!";
                return Ok(Box::new(move |f| {
                    let v = arg(f)?;
                    if not {
                        value::not(&v)
                    } else {
                        value::negate(&v)
                    }
                }));
            }
            (_, 2) => {
                if name == "+"
                    && let Some(joined) = self.join(call)
                {
                    return joined;
                }
                if let Some(op) = Op::of(name) {
                    // A constant operand (`score >= 0.9`, `"… " + words`) is kept as a value
                    // and lent to the operator, not made and dropped on every run; its node
                    // is counted as `expr` would count it.
                    match (literal(&call.args[0]), literal(&call.args[1])) {
                        (None, Some(c)) => {
                            self.cost += OPS_PER_NODE;
                            let a = self.expr(&call.args[0])?;
                            return Ok(Box::new(move |f| {
                                let x = a(f)?;
                                value::binary(f, op, &x, &c)
                            }));
                        }
                        (Some(c), None) => {
                            self.cost += OPS_PER_NODE;
                            let b = self.expr(&call.args[1])?;
                            return Ok(Box::new(move |f| {
                                let y = b(f)?;
                                value::binary(f, op, &c, &y)
                            }));
                        }
                        _ => {}
                    }
                    let a = self.expr(&call.args[0])?;
                    let b = self.expr(&call.args[1])?;
                    return Ok(Box::new(move |f| {
                        let x = a(f)?;
                        let y = b(f)?;
                        value::binary(f, op, &x, &y)
                    }));
                }
            }
            _ => {}
        }
        if let Some(listed) = self.listed_words(name, &call.args) {
            return listed;
        }
        let native = Native::of(name, arity).ok_or_else(|| format!("the function `{name}`"))?;
        let args = self.native_args(&call.args)?;
        self.native(native, pos, None, args)
    }
}

/// Whether computing `expr` leaves every variable as it was: only an assignment in a block
/// changes one (a script function has variables of its own); a block of `if`s and values, like
/// `(if msg.category == "complaint" { 0.95 } else { 0.6 })`, does not.
fn unchanging(expr: &Expr) -> bool {
    match expr {
        Expr::DynamicConstant(..)
        | Expr::BoolConstant(..)
        | Expr::IntegerConstant(..)
        | Expr::FloatConstant(..)
        | Expr::StringConstant(..)
        | Expr::Unit(..)
        | Expr::Variable(..)
        | Expr::Property(..) => true,
        Expr::Dot(x, ..) | Expr::Index(x, ..) => unchanging(&x.lhs) && unchanging(&x.rhs),
        Expr::And(list, _) | Expr::Or(list, _) => list.iter().all(unchanging),
        Expr::Array(items, _) => items.iter().all(unchanging),
        Expr::FnCall(call, _) | Expr::MethodCall(call, _) => call.args.iter().all(unchanging),
        Expr::Stmt(block) => block.statements().iter().all(unchanging_stmt),
        _ => false,
    }
}

fn unchanging_stmt(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Noop(..) => true,
        Stmt::Expr(e) => unchanging(e),
        Stmt::FnCall(call, _) => call.args.iter().all(unchanging),
        Stmt::Block(b) => b.statements().iter().all(unchanging_stmt),
        Stmt::If(x, _) => {
            unchanging(&x.expr)
                && x.body.statements().iter().all(unchanging_stmt)
                && x.branch.statements().iter().all(unchanging_stmt)
        }
        _ => false,
    }
}

/// The compiled main body and functions of one script.
pub(super) struct Parts {
    pub main: Code,
    pub main_slots: usize,
    /// The variables the main body declares, for the limit on variables.
    pub main_declared: usize,
    pub main_cost: u64,
    pub functions: Vec<Function>,
    /// How deep script functions call each other, at most.
    pub depth: usize,
}

/// Compiles `ast` (its statements from `skip` on) for a script whose engine variables are
/// `vars`; `Err` names the first construct it does not handle.
pub(super) fn build(
    ast: &rhai::AST,
    skip: usize,
    source: &str,
    vars: &[(&str, &str)],
    registered: &dyn Fn(&str) -> bool,
) -> Result<Parts, String> {
    // Rhai offers a function's body only through the walk, which visits the main statements
    // and then each function's, in the order of the function list; a body's statements are
    // told apart by lying inside its braces.
    let mut seen = 0;
    let main_count = ast.statements().len();
    let mut tops: Vec<Stmt> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let [ASTNode::Stmt(s)] = path {
            seen += 1;
            if seen > main_count {
                tops.push((*s).clone());
            }
        }
        true
    });
    let mut bodies = tops.into_iter().peekable();
    let key = |p: Position| (p.line().unwrap_or(0), p.position().unwrap_or(0));
    let mut defs = Vec::new();
    let mut functions = HashMap::new();
    for (i, (.., def)) in ast.shared_lib().iter_script_fn_info().enumerate() {
        if def.this_type.is_some() {
            return Err(format!("the method `{}` of a type", def.name));
        }
        // A script function named like a registered one: which of the two Rhai calls is left
        // to its rules of precedence.
        if registered(&def.name) || Native::of(&def.name, def.params.len()).is_some() {
            return Err(format!(
                "a function named like an engine function (`{}`)",
                def.name
            ));
        }
        let (start, end) = (key(def.body.start_position()), key(def.body.end_position()));
        let mut statements = Vec::new();
        while let Some(s) = bodies.next_if(|s| (start..=end).contains(&key(s.position()))) {
            statements.push(s);
        }
        functions.insert((def.name.to_string(), def.params.len()), i);
        defs.push((def.params.clone(), statements));
    }
    if bodies.next().is_some() {
        return Err("a function body the walk did not place".to_owned());
    }

    let mut compiled = Vec::new();
    for (params, statements) in &defs {
        let mut b = Builder::new(source, &functions, OPS_PER_NODE);
        for p in params {
            b.declare(p);
        }
        let body = b.block(statements)?;
        compiled.push(Function {
            body,
            params: params.len(),
            slots: b.peak,
            declared: b.declared,
            cost: b.cost,
            calls: b.calls,
        });
    }

    let mut b = Builder::new(source, &functions, 0);
    for (var, _) in vars {
        let input = match *var {
            "msg" => Input::Message,
            "conversation" => Input::Conversation,
            "teams" => Input::Teams,
            "crisis_mode" => Input::CrisisMode,
            "default_team" => Input::DefaultTeam,
            "reply_limit" => Input::ReplyLimit,
            "decision" => {
                // Slot 0: governance may change it (`decision.reply = …`).
                b.declare("decision");
                continue;
            }
            other => return Err(format!("the engine variable `{other}`")),
        };
        b.inputs.push((var, input));
    }
    let main = b.block(ast.statements().get(skip..).unwrap_or_default())?;
    let depth = depth(&b.calls, &compiled, 0)?;
    Ok(Parts {
        main,
        main_slots: b.peak,
        main_declared: b.declared,
        main_cost: b.cost,
        functions: compiled,
        depth,
    })
}

/// How deep the calls from `calls` go; recursion is refused (it is bounded only by the call
/// depth limit, which a compiled run would have to count call by call).
fn depth(calls: &[usize], functions: &[Function], level: usize) -> Result<usize, String> {
    if level > functions.len() {
        return Err("a function that calls itself".to_owned());
    }
    let mut deepest = 0;
    for &c in calls {
        deepest = deepest.max(1 + depth(&functions[c].calls, functions, level + 1)?);
    }
    Ok(deepest)
}

impl Frame<'_> {
    /// Calls script function `index` with `args`, in slots above the caller's.
    fn call_script(&mut self, index: usize, args: &[Code]) -> Outcome {
        let functions = self.functions;
        let function = &functions[index];
        let base = self.slots.len();
        let result = self.enter(function, base, args);
        self.slots.truncate(base);
        match result {
            Ok(v) | Err(Flow::Return(v)) => Ok(v),
            Err(Flow::Bail) => bail(),
        }
    }

    fn enter(&mut self, function: &Function, base: usize, args: &[Code]) -> Outcome {
        for arg in args {
            let v = arg(self)?;
            self.slots.push(v);
        }
        debug_assert_eq!(args.len(), function.params);
        self.charge(function.cost)?;
        self.slots.resize(base + function.slots, Value::Unit);
        let caller = std::mem::replace(&mut self.base, base);
        let result = (function.body)(self);
        self.base = caller;
        result
    }
}
