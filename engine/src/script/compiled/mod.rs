//! The scripts compiled to Rust closures, so that deciding a message does not cost a Rhai
//! evaluation (issue 11: a Rhai run was over half of a decision, in name lookups, function
//! resolution and value copies, not in the work the script asks for).
//!
//! It is an optimisation only, and never decides differently: a script is compiled when the
//! rulebook loads, and only when [`build`] handles every construct in it and the sandbox
//! limits cannot be reached (below); otherwise it runs on Rhai as written. A compiled run that
//! meets anything unexpected (a type mix, an error, a value near a limit) is abandoned and the
//! script runs again on Rhai, which gives its own answer or its own error message: scripts
//! only read the message and build decisions, so a second run sees and does the same.
//!
//! Why the limits hold without counting each step: the compiled subset has no `while` or
//! `loop`, no recursion and no closures, so a run is bounded by the script's size, except for
//! `for` over an array, whose passes are counted. What Rhai could count (a few operations per
//! AST node) is charged generously up front and per pass, and a run that could reach
//! `max_operations` is left to Rhai. The call depth is fixed by the script, and a script whose
//! variables could exceed `max_variables` is not compiled. Strings and arrays near their size
//! limits are left to Rhai, and the host functions count their work as they do under Rhai.

use std::sync::Arc;

use crate::rulebook::config::ScriptLimitsConfig;
use crate::script::{ScriptInputs, Verdict};

mod build;
mod cond;
#[cfg(test)]
pub(super) mod tests;
mod text;
mod value;
mod words;

use build::{Code, Function};
use value::{Flow, Value};

/// The limits a compiled run checks as it goes.
struct Limits {
    max_operations: u64,
    max_string_size: usize,
    max_array_size: usize,
}

/// One compiled script.
pub(crate) struct Program {
    main: Code,
    main_slots: usize,
    main_cost: u64,
    functions: Vec<Function>,
    limits: Limits,
}

/// The state of one compiled run.
pub(super) struct Frame<'a> {
    inputs: &'a ScriptInputs,
    reply_limit: i64,
    functions: &'a [Function],
    limits: &'a Limits,
    /// Every variable of the running calls; a call's own start at `base`.
    slots: Vec<Value>,
    base: usize,
    ops: u64,
}

impl Frame<'_> {
    /// Counts `ops` operations; past the limit the run is left to Rhai, which counts exactly.
    fn charge(&mut self, ops: u64) -> Result<(), Flow> {
        self.ops = self.ops.saturating_add(ops);
        if self.ops > self.limits.max_operations {
            Err(Flow::Bail)
        } else {
            Ok(())
        }
    }
}

impl Program {
    /// Compiles `ast` (from statement `skip` on: the declarations are not run) for a script
    /// with the engine variables `vars`, on an engine that registers the functions named
    /// `registered`; `Err` says why it runs on Rhai instead.
    pub(crate) fn compile(
        ast: &rhai::AST,
        skip: usize,
        source: &str,
        vars: &[(&str, &str)],
        limits: &ScriptLimitsConfig,
        registered: &dyn Fn(&str) -> bool,
    ) -> Result<Program, String> {
        let parts = build::build(ast, skip, source, vars, registered)?;
        // Rhai's scope holds the engine's variables, the main body's and those of the calls
        // running; this counts every variable the script declares anywhere.
        let variables = vars.len()
            + parts.main_declared
            + parts.functions.iter().map(|f| f.declared).sum::<usize>();
        if variables >= limits.max_variables {
            return Err(format!(
                "it may declare {variables} variables (max_variables {})",
                limits.max_variables
            ));
        }
        if parts.depth + 2 > limits.max_call_depth {
            return Err(format!(
                "its functions call {} deep (max_call_depth {})",
                parts.depth, limits.max_call_depth
            ));
        }
        if parts.main_cost > limits.max_operations {
            return Err(format!(
                "it may take up to {} operations (max_operations {})",
                parts.main_cost, limits.max_operations
            ));
        }
        Ok(Program {
            main: parts.main,
            main_slots: parts.main_slots,
            main_cost: parts.main_cost,
            functions: parts.functions,
            limits: Limits {
                max_operations: limits.max_operations,
                max_string_size: limits.max_string_size,
                max_array_size: limits.max_array_size,
            },
        })
    }

    /// Runs the script on `inputs` (and for governance, the proposal): the decision, or `None`
    /// when the run must be left to Rhai.
    pub(crate) fn run(
        &self,
        inputs: &ScriptInputs,
        review: Option<(Verdict, i64)>,
    ) -> Option<Verdict> {
        let (decision, reply_limit) = match review {
            Some((d, limit)) => (Some(d), limit),
            None => (None, inputs.reply_limit),
        };
        let mut frame = Frame {
            inputs,
            reply_limit,
            functions: &self.functions,
            limits: &self.limits,
            slots: vec![Value::Unit; self.main_slots],
            base: 0,
            ops: 0,
        };
        if let (Some(d), Some(slot)) = (decision, frame.slots.first_mut()) {
            *slot = Value::Verdict(Arc::new(d));
        }
        frame.charge(self.main_cost).ok()?;
        let value = match (self.main)(&mut frame) {
            Ok(v) | Err(Flow::Return(v)) => v,
            Err(Flow::Bail) => return None,
        };
        // The variables go first: while one still holds the decision (governance returning
        // `decision`), taking it out of its `Arc` would copy it.
        drop(frame);
        match value {
            Value::Verdict(v) => Some(Arc::unwrap_or_clone(v)),
            // Rhai words the error for a script that decides nothing.
            _ => None,
        }
    }
}
