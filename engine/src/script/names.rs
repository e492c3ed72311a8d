//! Every function and property name a script uses is resolved when the rulebook loads, so
//! `webcare check` refuses `logonly(…)` or `conversation.auto_replys` with the file, line and
//! column and the name that was meant, instead of every message failing later with a message
//! about getters and types that only a Rhai developer can read.
//!
//! Rhai resolves names only at run time, so this walks the compiled AST (rhai's `internals`
//! feature) and looks each name up in the engine's own function metadata (`metadata` feature):
//! the functions registered in `register_api` and the standard packages, and the script's own
//! functions. Properties are checked by type, which is followed from the variables the engine
//! provides (`msg` is a `Message`, `msg.guess` a `Guess`, `let d = escalate(…)` a `Decision`)
//! through the return types the metadata records. Where the type is not known (a function's
//! parameter, a variable given values of different types, an object map) a property is left
//! alone: a map may have any key, and a false refusal would block a valid rulebook.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rhai::{AST, ASTNode, Expr, FnCallExpr, Position, Stmt};

use crate::matcher::fuzzy::distance;
use crate::rulebook::error::{Location, RulebookError};
use crate::rulebook::source::SourceFile;

/// Names Rhai handles itself rather than through a registered function.
const KEYWORDS: [&str; 10] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
    "this",
];

/// A registered function: how many arguments it takes, and for the engine's own script types
/// (`Message`, `Decision`, …) the type of its first argument and of its result.
#[derive(Debug, Clone)]
struct Signature {
    arity: usize,
    first: Option<String>,
    result: Option<String>,
}

/// What the engine offers a script, read from its function metadata once per rulebook.
pub(super) struct Api {
    functions: HashMap<String, Vec<Signature>>,
    /// The Rhai names of the types `register_api` registers; only their properties are
    /// checked, because only they are known to have no others.
    types: HashSet<String>,
}

/// `_: &mut Conversation` → `Conversation`; the metadata writes parameters that way.
fn param_type(param: &str) -> &str {
    let ty = param.rsplit_once(": ").map_or(param, |(_, ty)| ty);
    ty.strip_prefix("&mut ").unwrap_or(ty).trim()
}

impl Api {
    /// `types` are the Rhai names of the engine's script types; they must be registered before
    /// the functions that take or return them, or the metadata holds Rust paths instead.
    pub(super) fn of(engine: &rhai::Engine, types: &[&str]) -> Self {
        let types: HashSet<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let mut functions: HashMap<String, Vec<Signature>> = HashMap::new();
        let entries = engine.collect_fn_metadata(
            None,
            |info| {
                let m = info.metadata;
                Some((
                    m.name.to_string(),
                    m.num_params,
                    m.params_info.first().map(|p| param_type(p).to_owned()),
                    m.return_type.to_string(),
                ))
            },
            true,
        );
        for (name, arity, first, result) in entries {
            let known = |t: String| types.contains(&t).then_some(t);
            functions.entry(name).or_default().push(Signature {
                arity,
                first: first.and_then(known),
                result: known(result),
            });
        }
        Api { functions, types }
    }

    /// Whether the engine registers a function of this name (an operator, `len`, `escalate`).
    pub(super) fn registered(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    /// The script types' properties, `get$name` or `set$name`, of `ty`.
    fn properties<'a>(&'a self, ty: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.functions.iter().filter_map(move |(name, sigs)| {
            let property = name.strip_prefix(prefix)?;
            sigs.iter()
                .any(|s| s.first.as_deref() == Some(ty))
                .then_some(property)
        })
    }

    fn property(&self, ty: &str, prefix: &str, name: &str) -> Option<&Signature> {
        self.functions
            .get(&format!("{prefix}{name}"))?
            .iter()
            .find(|s| s.first.as_deref() == Some(ty))
    }

    /// The names a script can call: no operators, getters or setters.
    fn callable(&self) -> impl Iterator<Item = &str> {
        self.functions
            .keys()
            .map(String::as_str)
            .filter(|n| rhai::is_valid_identifier(n) && !n.contains('$'))
    }

    /// Checks every name in `ast`; `vars` are the variables the engine provides, with their
    /// Rhai type names.
    pub(super) fn check(
        &self,
        file: &SourceFile,
        ast: &AST,
        vars: &[(&str, &str)],
    ) -> Vec<RulebookError> {
        let mut script_fns: HashMap<String, Vec<usize>> = HashMap::new();
        for f in ast.iter_functions() {
            script_fns
                .entry(f.name.to_owned())
                .or_default()
                .push(f.params.len());
        }
        let mut checker = Checker {
            api: self,
            file,
            script_fns,
            bound: HashSet::new(),
            map_keys: HashSet::new(),
            envs: Vec::new(),
            region: 0,
            errors: Vec::new(),
        };
        checker.collect_bindings(ast);

        // The main body sees the engine's variables; a function body sees only its parameters
        // and locals (Rhai functions cannot read the caller's variables).
        let mut bases: Vec<HashMap<String, Ty>> = vec![
            vars.iter()
                .map(|(name, ty)| ((*name).to_owned(), Some((*ty).to_owned())))
                .collect(),
        ];
        let mut bodies = Vec::new();
        for f in ast.iter_fn_def() {
            bases.push(f.params.iter().map(|p| (p.to_string(), None)).collect());
            bodies.push((key(f.body.start_position()), key(f.body.end_position())));
        }
        // A body whose extent rhai does not record (a closure without braces) goes to a region
        // of its own where nothing is typed.
        bases.push(HashMap::new());
        let regions = Regions {
            main: ast
                .statements()
                .iter()
                .map(|s| std::ptr::from_ref(s) as usize)
                .collect(),
            bodies,
        };
        checker.type_variables(ast, &regions, &bases);
        ast.walk(&mut |nodes: &[ASTNode]| {
            checker.region = regions.of(nodes);
            checker.visit(nodes);
            true
        });
        checker
            .errors
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        checker.errors.dedup();
        checker.errors
    }
}

/// A type as far as it is known: `None` when it is not one of the script types.
type Ty = Option<String>;

struct Checker<'a> {
    api: &'a Api,
    file: &'a SourceFile,
    script_fns: HashMap<String, Vec<usize>>,
    /// Every name the script binds (variables, loop variables, parameters): calling one is
    /// calling the closure or function pointer it holds.
    bound: HashSet<String>,
    /// Keys of the script's object maps: `obj.action(x)` calls a closure stored under a key.
    map_keys: HashSet<String>,
    /// The type of each variable, per region (see [`Regions`]); a name given values of
    /// different types (or of unknown type) anywhere in its region is unknown.
    envs: Vec<HashMap<String, Ty>>,
    /// The region of the node being checked.
    region: usize,
    errors: Vec<RulebookError>,
}

impl Checker<'_> {
    fn error(&mut self, pos: Position, message: String) {
        self.errors.push(RulebookError::invalid(
            Location {
                file: self.file.path.clone(),
                line: pos.line().unwrap_or(1),
                column: pos.position().unwrap_or(1),
            },
            message,
        ));
    }

    fn collect_bindings(&mut self, ast: &AST) {
        for f in ast.iter_functions() {
            self.bound.extend(f.params.iter().map(|p| (*p).to_owned()));
        }
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                    self.bound.insert(x.0.name.to_string());
                }
                Some(ASTNode::Stmt(Stmt::For(x, ..))) => {
                    self.bound.insert(x.0.name.to_string());
                    if let Some(counter) = &x.1 {
                        self.bound.insert(counter.name.to_string());
                    }
                }
                Some(ASTNode::Stmt(Stmt::TryCatch(x, ..))) => {
                    if let Expr::Variable(v, ..) = &x.expr {
                        self.bound.insert(v.1.to_string());
                    }
                }
                Some(ASTNode::Expr(Expr::Map(x, ..))) => {
                    self.map_keys
                        .extend(x.0.iter().map(|(key, _)| key.name.to_string()));
                }
                // A map of constants is folded into one value by the optimiser.
                Some(ASTNode::Expr(Expr::DynamicConstant(value, ..))) => {
                    if let Some(map) = value.read_lock::<rhai::Map>() {
                        self.map_keys.extend(map.keys().map(ToString::to_string));
                    }
                }
                _ => {}
            }
            true
        });
    }

    /// Types the variables of each region before any name is checked, so a use before a
    /// later, different assignment is not checked against the wrong type. Runs twice so
    /// `let g = msg.guess; let h = g;` types `h` whatever order the walk sees them in.
    fn type_variables(&mut self, ast: &AST, regions: &Regions, bases: &[HashMap<String, Ty>]) {
        self.envs = bases.to_vec();
        for _ in 0..2 {
            let mut assigned: Vec<(usize, String, Ty)> = Vec::new();
            ast.walk(&mut |nodes: &[ASTNode]| {
                let region = regions.of(nodes);
                let mut give = |name: &str, ty: Ty| assigned.push((region, name.to_owned(), ty));
                match nodes.last() {
                    Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                        give(&x.0.name, self.type_in(region, &x.1));
                    }
                    Some(ASTNode::Stmt(Stmt::Assignment(x))) => {
                        if let Expr::Variable(v, ..) = &x.1.lhs {
                            give(&v.1, self.type_in(region, &x.1.rhs));
                        }
                    }
                    Some(ASTNode::Stmt(Stmt::For(x, ..))) => {
                        give(&x.0.name, None);
                        if let Some(counter) = &x.1 {
                            give(&counter.name, None);
                        }
                    }
                    _ => {}
                }
                true
            });
            let mut envs = bases.to_vec();
            for (region, name, ty) in assigned {
                // A name's type is known only when every value it is given has that type.
                match envs[region].entry(name) {
                    Entry::Vacant(e) => {
                        e.insert(ty);
                    }
                    Entry::Occupied(mut e) => {
                        if *e.get() != ty {
                            e.insert(None);
                        }
                    }
                }
            }
            self.envs = envs;
        }
    }

    fn type_in(&self, region: usize, expr: &Expr) -> Ty {
        Typing {
            api: self.api,
            env: &self.envs[region],
        }
        .of(expr)
    }

    fn type_of(&self, expr: &Expr) -> Ty {
        self.type_in(self.region, expr)
    }

    fn chain_type(&self, receiver: Ty, rhs: &Expr) -> Ty {
        Typing {
            api: self.api,
            env: &self.envs[self.region],
        }
        .chain(receiver, rhs)
    }

    fn visit(&mut self, nodes: &[ASTNode]) {
        let parent = nodes.len().checked_sub(2).and_then(|i| nodes.get(i));
        match nodes.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) => self.call(call, *pos),
            // The parser turns `Fn("name")` into a constant function pointer.
            Some(ASTNode::Expr(Expr::DynamicConstant(value, pos))) => {
                if let Some(target) = value
                    .read_lock::<rhai::FnPtr>()
                    .map(|f| f.fn_name().to_owned())
                    && !self.script_fns.contains_key(&target)
                    && !self.api.functions.contains_key(&target)
                {
                    let hint = suggestion(&target, self.candidates());
                    self.error(*pos, format!("`Fn(\"{target}\")` names no function{hint}"));
                }
            }
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => self.call(call, *pos),
            Some(ASTNode::Expr(expr @ Expr::Dot(x, ..))) => {
                // A chain `a.b.c` is `a . (b . c)`: only its head starts the check.
                if let Some(ASTNode::Expr(Expr::Dot(outer, ..))) = parent
                    && std::ptr::eq(&outer.rhs, *expr)
                {
                    return;
                }
                let write = matches!(parent, Some(ASTNode::Stmt(Stmt::Assignment(a)))
                    if std::ptr::eq(&a.1.lhs, *expr));
                let receiver = self.type_of(&x.lhs);
                self.chain(receiver, &x.rhs, write);
            }
            _ => {}
        }
    }

    /// Checks the properties and methods of a chain on `receiver`; `write` when the chain's
    /// last property is assigned to.
    fn chain(&mut self, receiver: Ty, rhs: &Expr, write: bool) {
        match rhs {
            Expr::Property(p, pos) => self.property(receiver, &p.2, *pos, write),
            Expr::MethodCall(call, pos) => self.method(receiver.as_deref(), call, *pos),
            Expr::Dot(x, ..) => {
                self.chain(receiver.clone(), &x.lhs, false);
                let next = self.chain_type(receiver, &x.lhs);
                self.chain(next, &x.rhs, write);
            }
            Expr::Index(x, ..) => {
                // `a.list[0]…`: what an index gives is not followed.
                self.chain(receiver, &x.lhs, false);
            }
            _ => {}
        }
    }

    fn property(&mut self, receiver: Ty, name: &str, pos: Position, write: bool) {
        let Some(ty) = receiver.filter(|t| self.api.types.contains(t)) else {
            return;
        };
        let prefix = if write { "set$" } else { "get$" };
        if self.api.property(&ty, prefix, name).is_some() {
            return;
        }
        if write && self.api.property(&ty, "get$", name).is_some() {
            let message = format!(
                "`{name}` of a {ty} can be read but not set (settable: {})",
                self.list(&ty, "set$")
            );
            return self.error(pos, message);
        }
        let known: Vec<&str> = self.api.properties(&ty, prefix).collect();
        let list = self.list(&ty, prefix);
        let message = if list.is_empty() {
            let mut methods: Vec<&str> = self
                .api
                .functions
                .iter()
                .filter(|(n, sigs)| {
                    !n.contains('$') && sigs.iter().any(|s| s.first.as_deref() == Some(ty.as_str()))
                })
                .map(|(n, _)| n.as_str())
                .collect();
            methods.sort_unstable();
            format!(
                "`{name}` is not a property: a {ty} has none (its methods: {})",
                methods.join(", ")
            )
        } else {
            format!(
                "a {ty} has no property `{name}`{} ({}: {list})",
                suggestion(name, known.iter().copied()),
                if write { "settable" } else { "its properties" },
            )
        };
        self.error(pos, message);
    }

    fn list(&self, ty: &str, prefix: &str) -> String {
        let mut names: Vec<&str> = self.api.properties(ty, prefix).collect();
        names.sort_unstable();
        names.join(", ")
    }

    fn method(&mut self, receiver: Option<&str>, call: &FnCallExpr, pos: Position) {
        let name = call.name.as_str();
        let arity = call.args.len() + 1;
        if KEYWORDS.contains(&name) || self.map_keys.contains(name) || self.bound.contains(name) {
            return;
        }
        let registered = self.api.functions.get(name);
        let script = self.script_fns.get(name);
        if registered.is_none()
            && script.is_none()
            && let Some(ty) = receiver
            && self.api.property(ty, "get$", name).is_some()
        {
            let message = format!("`{name}` is a property of a {ty}, not a method: drop the `()`");
            return self.error(pos, message);
        }
        if registered.is_none() && script.is_none() {
            // Methods of the receiver's type first: `msg.guess.probabilty(…)` means
            // `probability`, not some string function.
            let own: Vec<&str> = receiver
                .map(|ty| {
                    self.api
                        .functions
                        .iter()
                        .filter(|(_, sigs)| sigs.iter().any(|s| s.first.as_deref() == Some(ty)))
                        .map(|(n, _)| n.as_str())
                        .filter(|n| !n.contains('$'))
                        .collect()
                })
                .unwrap_or_default();
            let hint = match suggestion(name, own.iter().copied()) {
                s if s.is_empty() => suggestion(name, self.candidates()),
                s => s,
            };
            let on = receiver.map(|t| format!(" of a {t}")).unwrap_or_default();
            return self.error(pos, format!("unknown method `{name}`{on}{hint}"));
        }
        if let Some(message) = arity_error(name, arity - 1, 1, registered, script) {
            self.error(pos, message);
        }
    }

    fn call(&mut self, call: &FnCallExpr, pos: Position) {
        let name = call.name.as_str();
        if call.is_operator_call() || call.is_qualified() || !rhai::is_valid_identifier(name) {
            return;
        }
        if KEYWORDS.contains(&name) || self.bound.contains(name) {
            return;
        }
        let registered = self.api.functions.get(name);
        let script = self.script_fns.get(name);
        if registered.is_none() && script.is_none() {
            let hint = suggestion(name, self.candidates());
            let hint = if hint.is_empty() {
                ": neither the rulebook's functions (docs/rulebook.md) nor this script define it"
                    .to_owned()
            } else {
                hint
            };
            return self.error(pos, format!("unknown function `{name}`{hint}"));
        }
        let arity = call.args.len();
        if let Some(message) = arity_error(name, arity, 0, registered, script) {
            self.error(pos, message);
        }
    }

    fn candidates(&self) -> impl Iterator<Item = &str> {
        self.api
            .callable()
            .chain(self.script_fns.keys().map(String::as_str))
            .filter(|n| !n.starts_with("anon$"))
    }
}

/// `shown` is the argument count as the script writer sees it (a method's receiver not
/// counted); `receiver` is 1 for a method call. A registered function counts the receiver as
/// its first parameter; a script function called as a method does not (it is `this`).
fn arity_error(
    name: &str,
    shown: usize,
    receiver: usize,
    registered: Option<&Vec<Signature>>,
    script: Option<&Vec<usize>>,
) -> Option<String> {
    let mut takes: Vec<usize> = registered
        .into_iter()
        .flatten()
        .filter_map(|s| s.arity.checked_sub(receiver))
        .chain(script.into_iter().flatten().copied())
        .collect();
    if takes.contains(&shown) {
        return None;
    }
    takes.sort_unstable();
    takes.dedup();
    if takes.is_empty() {
        return Some(format!("`{name}` cannot be called as a method"));
    }
    let counts: Vec<String> = takes.iter().map(ToString::to_string).collect();
    let message = format!(
        "`{name}` takes {} argument{}, not {shown}",
        counts.join(" or "),
        if counts.last().is_some_and(|c| c == "1") {
            ""
        } else {
            "s"
        }
    );
    Some(message)
}

/// Types expressions in one region's variables.
struct Typing<'a> {
    api: &'a Api,
    env: &'a HashMap<String, Ty>,
}

impl Typing<'_> {
    /// What type an expression gives, when it is one of the script types.
    fn of(&self, expr: &Expr) -> Ty {
        match expr {
            Expr::Variable(v, ..) => self.env.get(v.1.as_str()).cloned().flatten(),
            Expr::FnCall(call, ..) if !call.is_operator_call() => {
                let mut results = self
                    .api
                    .functions
                    .get(call.name.as_str())?
                    .iter()
                    .filter(|s| s.arity == call.args.len())
                    .map(|s| s.result.clone());
                let first = results.next()?;
                results.all(|r| r == first).then_some(first).flatten()
            }
            Expr::Dot(x, ..) => self.chain(self.of(&x.lhs), &x.rhs),
            _ => None,
        }
    }

    /// The type at the end of a chain, without reporting anything.
    fn chain(&self, receiver: Ty, rhs: &Expr) -> Ty {
        let ty = receiver?;
        match rhs {
            Expr::Property(p, ..) => self.api.property(&ty, "get$", &p.2)?.result.clone(),
            Expr::MethodCall(call, ..) => self
                .api
                .functions
                .get(call.name.as_str())?
                .iter()
                .find(|s| s.first.as_deref() == Some(&ty) && s.arity == call.args.len() + 1)?
                .result
                .clone(),
            Expr::Dot(x, ..) => self.chain(self.chain(Some(ty), &x.lhs), &x.rhs),
            _ => None,
        }
    }
}

/// Which part of the script a node is in: the main body (region 0), a function's body (its
/// index + 1), or a body whose extent is not recorded (the last region).
struct Regions {
    /// The main body's top-level statements, by address: the walk visits them first, then
    /// every function body, and gives no other way to tell them apart.
    main: HashSet<usize>,
    bodies: Vec<((usize, usize), (usize, usize))>,
}

impl Regions {
    fn of(&self, nodes: &[ASTNode]) -> usize {
        let Some(ASTNode::Stmt(top)) = nodes.first() else {
            return 0;
        };
        if self.main.contains(&(std::ptr::from_ref(*top) as usize)) {
            return 0;
        }
        // The innermost body around the statement: a closure inside a function is its own.
        let at = key(top.position());
        self.bodies
            .iter()
            .enumerate()
            .filter(|(_, (start, end))| *start <= at && at <= *end && *start != (0, 0))
            .min_by_key(|(_, (start, end))| (end.0 - start.0, end.1.abs_diff(start.1)))
            .map_or(self.bodies.len() + 1, |(i, _)| i + 1)
    }
}

/// A position as (line, column), comparable; (0, 0) when unknown.
fn key(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(0), pos.position().unwrap_or(0))
}

/// `; did you mean `auto_replies`?` for the closest candidate within two edits, else empty.
fn suggestion<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let limit = if name.len() <= 3 { 1 } else { 2 };
    candidates
        .filter(|c| *c != name)
        .map(|c| (distance(c.as_bytes(), name.as_bytes()), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
