//! The script grammar: lines, calls, expressions and expectations.
//!
//! ```text
//! line   := [PROC] NAME '(' [arg (',' arg)*] ')' ['=' result]   ('#' comment)
//! PROC   := '$'var | number
//! arg    := string | expr
//! expr   := sum ('|' sum)*          sum := prod (('+'|'-') prod)*
//! prod   := unary ('*' unary)*      unary := '-' unary | atom
//! atom   := '(' expr ')' | '$'var | number | CONSTANT
//! result := '?' | string | '$'var (alone) | SIGSEGV | SIGBUS | '-1' ENAME ['(' message ')']
//!         | expr
//! ```
//!
//! The whole script is parsed before anything runs; the first error stops it, with linux-run's
//! message and column. A variable must be bound (by an earlier `= $name`) before it is used.

use std::collections::HashSet;

use super::{
    ast::{BinOp, CallName, Expect, Expr, Line, Script},
    consts,
    errno::{errno_by_name, expectable_signal},
    lexer::{Cursor, PResult, is_ident_char, visible, visible_str},
};

/// Parses a whole script. Lines are numbered from 1; blank and comment lines are dropped.
pub fn parse_script(text: &str) -> PResult<Script> {
    let mut bound = HashSet::new();
    let mut lines = Vec::new();
    for (i, t) in text.split('\n').enumerate() {
        if let Some(line) = parse_line(i + 1, t, &mut bound)? {
            lines.push(line);
        }
    }
    Ok(Script { lines })
}

/// Parses one line; `None` for a blank or comment line. `bound` holds the variables bound by
/// earlier lines and receives the one this line binds.
pub fn parse_line(no: usize, text: &str, bound: &mut HashSet<String>) -> PResult<Option<Line>> {
    let mut c = Cursor::new(text, no);
    let Some(first) = c.peek() else {
        return Ok(None);
    };
    let proc = if first == '$' || first.is_ascii_digit() {
        Some(proc_prefix(&mut c, bound)?)
    } else {
        None
    };
    c.ws();
    let name_col = c.i;
    let name = c.ident();
    if name.is_empty() {
        return c.err("expected a call name");
    }
    let Some(mut call) = CallName::from_name(&name) else {
        return c.err_at(name_col, format!("unknown call {name}"));
    };
    c.expect('(')?;
    let args = arguments(&mut c, bound)?;
    if call == CallName::Smaps && args.is_empty() {
        call = CallName::SmapsAll;
    }
    check_arguments(&c, call, &args, name_col)?;
    let mut expect = None;
    if c.eat('=') {
        let col = {
            c.ws();
            c.i
        };
        expect = expectation(&mut c, bound)?;
        if call.prints() && expect.is_some() {
            return c.err_at(col, format!("{}() has no result to expect", call.name()));
        }
    }
    if c.peek().is_some() {
        let rest = c.rest_from(c.i);
        return c.err(format!("unexpected text '{}'", visible_str(rest.trim())));
    }
    Ok(Some(Line {
        no,
        proc,
        call,
        args: args.into_iter().map(|(e, _)| e).collect(),
        expect,
    }))
}

/// The `PROC` prefix: `$var` or a decimal pid.
fn proc_prefix(c: &mut Cursor, bound: &HashSet<String>) -> PResult<Expr> {
    let col = c.i;
    if c.at(c.i) == Some('$') {
        c.i += 1;
        let name = c.ident();
        if !bound.contains(&name) {
            return c.err_at(col, format!("variable ${name} is used before it is bound"));
        }
        Ok(Expr::Var(name))
    } else {
        Ok(Expr::Num(c.number()?))
    }
}

/// The arguments after `(`, through the closing `)`, each with its 0-based column.
fn arguments(c: &mut Cursor, bound: &HashSet<String>) -> PResult<Vec<(Expr, usize)>> {
    let mut args = Vec::new();
    if c.eat(')') {
        return Ok(args);
    }
    loop {
        c.ws();
        let col = c.i;
        let arg = if c.peek() == Some('"') {
            Expr::Str(c.string()?)
        } else {
            expr(c, bound)?
        };
        args.push((arg, col));
        if c.eat(')') {
            return Ok(args);
        }
        c.expect(',')?;
    }
}

/// Checks the number of arguments and which ones must be strings or integers.
fn check_arguments(c: &Cursor, call: CallName, args: &[(Expr, usize)], col: usize) -> PResult<()> {
    let specs = call.args();
    let need = specs.iter().filter(|s| !s.optional).count();
    if args.len() < need || args.len() > specs.len() {
        let takes = if need == specs.len() {
            need.to_string()
        } else {
            format!("{need} or {}", specs.len())
        };
        let msg = format!(
            "{} takes {takes} arguments, {} given",
            call.name(),
            args.len()
        );
        return c.err_at(col, msg);
    }
    for ((arg, acol), spec) in args.iter().zip(specs) {
        let is_str = matches!(arg, Expr::Str(_));
        if spec.kind.is_string() && !is_str {
            let msg = format!("{}: argument must be a string", call.name());
            return c.err_at(*acol, msg);
        }
        if !spec.kind.is_string() && spec.kind != super::ast::ArgKind::Data && is_str {
            let msg = format!("{}: argument must be an integer", call.name());
            return c.err_at(*acol, msg);
        }
    }
    Ok(())
}

/// The expectation after `=` (`None` for `?`).
fn expectation(c: &mut Cursor, bound: &mut HashSet<String>) -> PResult<Option<Expect>> {
    let col = c.i;
    match c.peek() {
        Some('?') => {
            c.i += 1;
            Ok(None)
        }
        Some('"') => Ok(Some(Expect::Str(c.string()?))),
        Some('$') if lone_var(c) => {
            c.i += 1;
            let name = c.ident();
            if name.is_empty() {
                return c.err_at(col, "expected a variable name after '$'");
            }
            bound.insert(name.clone());
            Ok(Some(Expect::Bind(name)))
        }
        Some(ch) if ch.is_alphabetic() => {
            let word = c.ident();
            if let Some(sig) = expectable_signal(&word) {
                Ok(Some(Expect::Sig(sig)))
            } else if consts::lookup(&word).is_some() {
                c.i = col;
                Ok(Some(Expect::Int(expr(c, bound)?)))
            } else if errno_by_name(&word).is_some() {
                c.err_at(col, format!("an error result is written -1 {word}"))
            } else {
                c.err_at(col, format!("unknown result {word}"))
            }
        }
        _ => error_or_expr(c, bound),
    }
}

/// `-1 ENAME [(message)]`, or else an integer expression.
fn error_or_expr(c: &mut Cursor, bound: &HashSet<String>) -> PResult<Option<Expect>> {
    let save = c.i;
    if c.eat('-') && c.peek() == Some('1') && c.number()? == 1 {
        c.ws();
        let name_col = c.i;
        let name = c.ident();
        if !name.is_empty() {
            let Some(e) = errno_by_name(&name) else {
                return c.err_at(name_col, format!("unknown errno {name}"));
            };
            if c.peek() == Some('(') {
                skip_message(c)?;
            }
            return Ok(Some(Expect::Err(e)));
        }
    }
    c.i = save;
    Ok(Some(Expect::Int(expr(c, bound)?)))
}

/// Skips strace's `(Message)` after an errno name, parentheses balanced.
fn skip_message(c: &mut Cursor) -> PResult<()> {
    let mut depth = 0usize;
    while let Some(ch) = c.at(c.i) {
        c.i += 1;
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(());
                }
            }
            _ => {}
        }
    }
    c.err("unterminated (message)")
}

/// Whether the `$name` at the cursor is a binding result rather than the start of an
/// expression such as `$a+4K`: no operator follows it. Whatever else follows (a comment, or
/// stray text that the caller then reports) leaves it a binding.
fn lone_var(c: &Cursor) -> bool {
    let mut j = c.i + 1;
    while c.at(j).is_some_and(is_ident_char) {
        j += 1;
    }
    let rest = c.rest_from(j);
    let rest = rest.trim_start_matches([' ', '\t', '\r']);
    !rest.starts_with(['+', '-', '*', '|'])
}

/// The deepest expression tree a script may write: parentheses, signs and binary operators
/// each add a level (`0+0+0` is two levels deep, as evaluation sees it). The parser, the
/// evaluator and the tree's drop all recurse over the levels, so the limit keeps them far
/// from the end of a 2 MiB thread stack; a deeper expression is a malformed line.
pub const MAX_DEPTH: usize = 256;

/// An expression and the depth of its tree.
type Parsed = (Expr, usize);

/// An integer expression: `|` binds loosest, then `+ -`, then `*`, then unary `-`.
pub fn expr(c: &mut Cursor, bound: &HashSet<String>) -> PResult<Expr> {
    Ok(or_expr(c, bound, 0)?.0)
}

/// The error of an expression deeper than [`MAX_DEPTH`], at 0-based column `col`.
fn too_deep<T>(c: &Cursor, col: usize) -> PResult<T> {
    c.err_at(
        col,
        format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
    )
}

/// `a OP b`, unless that makes the tree deeper than [`MAX_DEPTH`] (the operator is at `col`).
fn bin(c: &Cursor, col: usize, op: BinOp, a: Parsed, b: Parsed) -> PResult<Parsed> {
    let depth = 1 + a.1.max(b.1);
    if depth > MAX_DEPTH {
        return too_deep(c, col);
    }
    Ok((Expr::Bin(op, Box::new(a.0), Box::new(b.0)), depth))
}

/// `sum ('|' sum)*`; `nest` counts the parentheses and signs the parser is inside.
fn or_expr(c: &mut Cursor, bound: &HashSet<String>, nest: usize) -> PResult<Parsed> {
    let mut e = sum(c, bound, nest)?;
    while c.peek() == Some('|') {
        let col = c.i;
        c.i += 1;
        let rhs = sum(c, bound, nest)?;
        e = bin(c, col, BinOp::Or, e, rhs)?;
    }
    Ok(e)
}

fn sum(c: &mut Cursor, bound: &HashSet<String>, nest: usize) -> PResult<Parsed> {
    let mut e = prod(c, bound, nest)?;
    loop {
        let op = match c.peek() {
            Some('+') => BinOp::Add,
            Some('-') => BinOp::Sub,
            _ => return Ok(e),
        };
        let col = c.i;
        c.i += 1;
        let rhs = prod(c, bound, nest)?;
        e = bin(c, col, op, e, rhs)?;
    }
}

fn prod(c: &mut Cursor, bound: &HashSet<String>, nest: usize) -> PResult<Parsed> {
    let mut e = unary(c, bound, nest)?;
    while c.peek() == Some('*') {
        let col = c.i;
        c.i += 1;
        let rhs = unary(c, bound, nest)?;
        e = bin(c, col, BinOp::Mul, e, rhs)?;
    }
    Ok(e)
}

fn unary(c: &mut Cursor, bound: &HashSet<String>, nest: usize) -> PResult<Parsed> {
    if c.peek() == Some('-') {
        if nest >= MAX_DEPTH {
            return too_deep(c, c.i);
        }
        c.i += 1;
        let (x, depth) = unary(c, bound, nest + 1)?;
        return Ok((Expr::Neg(Box::new(x)), depth + 1));
    }
    atom(c, bound, nest)
}

fn atom(c: &mut Cursor, bound: &HashSet<String>, nest: usize) -> PResult<Parsed> {
    let ch = c.peek();
    let col = c.i;
    let leaf = match ch {
        Some('(') => {
            if nest >= MAX_DEPTH {
                return too_deep(c, col);
            }
            c.i += 1;
            let e = or_expr(c, bound, nest + 1)?;
            c.expect(')')?;
            return Ok(e);
        }
        Some('$') => {
            c.i += 1;
            let name = c.ident();
            if name.is_empty() {
                return c.err_at(col, "expected a variable name after '$'");
            }
            if !bound.contains(&name) {
                return c.err_at(col, format!("variable ${name} is used before it is bound"));
            }
            Expr::Var(name)
        }
        Some(d) if d.is_ascii_digit() => Expr::Num(c.number()?),
        Some(a) if a.is_alphabetic() || a == '_' => {
            let name = c.ident();
            match consts::lookup(&name) {
                Some(v) => Expr::Num(v),
                None => return c.err_at(col, format!("unknown constant {name}")),
            }
        }
        Some('"') => return c.err("a string is not allowed here"),
        Some(other) => return c.err(format!("expected a value, found '{}'", visible(other))),
        None => return c.err("expected a value, found end of line"),
    };
    Ok((leaf, 1))
}
