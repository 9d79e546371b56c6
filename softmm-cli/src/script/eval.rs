//! Variables and the evaluation of expressions.
//!
//! Integers are 64-bit and wrap: the script language compares modulo 2^64, so `-1` and
//! `0xffffffffffffffff` are the same value and `$a-4K` below zero wraps as the kernel sees it.
//! A variable holds an integer or bytes (a `peek` or text result); bytes may be passed where a
//! call takes data or compared as a result, never used in arithmetic.

use std::collections::HashMap;

use super::ast::{BinOp, Expr, Value};

/// Why an expression could not be evaluated; the text is the FAIL line's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(pub String);

impl EvalError {
    /// `$name` has no value: the line that should have bound it failed.
    pub fn unbound(name: &str) -> Self {
        EvalError(format!(
            "${name} is unbound (the line that binds it failed)"
        ))
    }
}

/// The variables of a run.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    map: HashMap<String, Value>,
}

impl Vars {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `$name`, if bound.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// Binds `$name`.
    pub fn set(&mut self, name: &str, v: Value) {
        self.map.insert(name.to_string(), v);
    }

    /// Evaluates an expression to an integer or bytes.
    pub fn eval(&self, e: &Expr) -> Result<Value, EvalError> {
        match e {
            Expr::Num(n) => Ok(Value::Int(*n)),
            Expr::Str(s) => Ok(Value::Bytes(s.clone())),
            Expr::Var(name) => self
                .map
                .get(name)
                .cloned()
                .ok_or_else(|| EvalError::unbound(name)),
            Expr::Neg(x) => Ok(Value::Int(self.num(x)?.wrapping_neg())),
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.num(a)?, self.num(b)?);
                Ok(Value::Int(match op {
                    BinOp::Add => a.wrapping_add(b),
                    BinOp::Sub => a.wrapping_sub(b),
                    BinOp::Mul => a.wrapping_mul(b),
                    BinOp::Or => a | b,
                }))
            }
        }
    }

    /// Evaluates an expression that must be an integer.
    pub fn num(&self, e: &Expr) -> Result<u64, EvalError> {
        match self.eval(e)? {
            Value::Int(v) => Ok(v),
            Value::Bytes(_) => Err(EvalError("a byte string is used in arithmetic".to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{lexer::Cursor, parse::expr};
    use std::collections::HashSet;

    fn eval_with(vars: &Vars, text: &str) -> Result<Value, EvalError> {
        let bound: HashSet<String> = ["a", "b", "s", "u"].iter().map(|s| s.to_string()).collect();
        let e = expr(&mut Cursor::new(text, 1), &bound).expect("parses");
        vars.eval(&e)
    }

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.set("a", Value::Int(0x7fff_f000_0000));
        v.set("b", Value::Int(0x7fff_f000_4000));
        v.set("s", Value::Bytes(b"hi".to_vec()));
        v
    }

    #[test]
    fn arithmetic_and_precedence() {
        let v = vars();
        assert_eq!(eval_with(&v, "1+2*3"), Ok(Value::Int(7)));
        assert_eq!(eval_with(&v, "(1+2)*3"), Ok(Value::Int(9)));
        assert_eq!(eval_with(&v, "$a+2*4K"), Ok(Value::Int(0x7fff_f000_2000)));
        assert_eq!(eval_with(&v, "($b-$a)*2"), Ok(Value::Int(0x8000)));
        assert_eq!(eval_with(&v, "10-2-3"), Ok(Value::Int(5)));
        assert_eq!(eval_with(&v, "-1"), Ok(Value::Int(u64::MAX)));
        assert_eq!(eval_with(&v, "--4"), Ok(Value::Int(4)));
        assert_eq!(eval_with(&v, "0-4K"), Ok(Value::Int((-4096i64) as u64)));
        assert_eq!(eval_with(&v, "1|2+4"), Ok(Value::Int(7)));
        assert_eq!(eval_with(&v, "PROT_READ|PROT_WRITE"), Ok(Value::Int(3)));
        assert_eq!(eval_with(&v, "2*-3"), Ok(Value::Int((-6i64) as u64)));
    }

    #[test]
    fn variables() {
        let v = vars();
        assert_eq!(eval_with(&v, "$s"), Ok(Value::Bytes(b"hi".to_vec())));
        assert_eq!(
            eval_with(&v, "$s+1"),
            Err(EvalError("a byte string is used in arithmetic".into()))
        );
        assert_eq!(
            eval_with(&v, "$u"),
            Err(EvalError(
                "$u is unbound (the line that binds it failed)".into()
            ))
        );
    }
}
