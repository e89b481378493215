//! `\set` expressions: parsing (errors at byte offsets the caller turns into
//! line:column) and evaluation with pgbench's semantics: 64-bit integers
//! with overflow checks, doubles when either side is one, and pgbench's
//! algorithms for its gaussian and exponential random functions.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Int(i64),
    Double(f64),
    Var(usize),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Func {
    Random,
    Gaussian,
    Exponential,
    Abs,
    Least,
    Greatest,
    Int,
    Double,
    Sqrt,
    Pi,
    Mod,
}

/// Name, and the number of arguments (`None`: one or more).
const FUNCS: [(&str, Func, Option<usize>); 11] = [
    ("random", Func::Random, Some(2)),
    ("random_gaussian", Func::Gaussian, Some(3)),
    ("random_exponential", Func::Exponential, Some(3)),
    ("abs", Func::Abs, Some(1)),
    ("least", Func::Least, None),
    ("greatest", Func::Greatest, None),
    ("int", Func::Int, Some(1)),
    ("double", Func::Double, Some(1)),
    ("sqrt", Func::Sqrt, Some(1)),
    ("pi", Func::Pi, Some(0)),
    ("mod", Func::Mod, Some(2)),
];

/// A parse error at a byte offset of the script.
pub(crate) type Located = (usize, String);

/// Parses `text`, which starts at byte `base` of the script; `var` maps a
/// variable name at an offset to its index, or refuses it.
pub(crate) fn parse(
    text: &str,
    base: usize,
    var: &mut dyn FnMut(&str, usize) -> Result<usize, Located>,
) -> Result<Expr, Located> {
    let mut p = Parser {
        text,
        base,
        pos: 0,
        var,
    };
    p.skip_space();
    if p.pos == text.len() {
        return Err((base + p.pos, "expected an expression".into()));
    }
    let e = p.sum()?;
    p.skip_space();
    if p.pos < text.len() {
        return Err((
            base + p.pos,
            format!("unexpected `{}` after the expression", p.rest_word()),
        ));
    }
    Ok(e)
}

struct Parser<'a, 'v> {
    text: &'a str,
    base: usize,
    pos: usize,
    var: &'v mut dyn FnMut(&str, usize) -> Result<usize, Located>,
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, Located> {
        Err((self.base + at, message.into()))
    }

    fn rest_word(&self) -> &str {
        let rest = &self.text[self.pos..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        &rest[..end.max(rest.chars().next().map_or(0, char::len_utf8))]
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_space();
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<Expr, Located> {
        let mut left = self.product()?;
        loop {
            let op = if self.eat(b'+') {
                Op::Add
            } else if self.eat(b'-') {
                Op::Sub
            } else {
                return Ok(left);
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, Located> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat(b'*') {
                Op::Mul
            } else if self.eat(b'/') {
                Op::Div
            } else if self.eat(b'%') {
                Op::Mod
            } else {
                return Ok(left);
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, Located> {
        if self.eat(b'-') {
            return Ok(match self.unary()? {
                Expr::Int(i) => Expr::Int(i.wrapping_neg()),
                Expr::Double(d) => Expr::Double(-d),
                e => Expr::Neg(Box::new(e)),
            });
        }
        if self.eat(b'+') {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, Located> {
        self.skip_space();
        let start = self.pos;
        let Some(b) = self.peek() else {
            return self.err(start, "the expression ends too early");
        };
        if b == b'(' {
            self.pos += 1;
            let e = self.sum()?;
            if !self.eat(b')') {
                return self.err(self.pos, "expected `)`");
            }
            return Ok(e);
        }
        if b.is_ascii_digit() || b == b'.' {
            return self.number();
        }
        if b == b':' {
            self.pos += 1;
            let name = self.name();
            if name.is_empty() {
                return self.err(start, "expected a variable name after `:`");
            }
            return (self.var)(name, self.base + start).map(Expr::Var);
        }
        let name = self.name();
        if name.is_empty() {
            return self.err(start, format!("unexpected `{}`", self.rest_word()));
        }
        let Some(&(_, func, arity)) = FUNCS.iter().find(|(n, ..)| n.eq_ignore_ascii_case(name)) else {
            let known: Vec<&str> = FUNCS.iter().map(|(n, ..)| *n).collect();
            return self.err(
                start,
                format!(
                    "unknown function `{name}` (variables need a colon: `:{name}`); functions are {}",
                    known.join(", ")
                ),
            );
        };
        if !self.eat(b'(') {
            return self.err(self.pos, format!("expected `(` after {name}"));
        }
        let mut args = Vec::new();
        if !self.eat(b')') {
            loop {
                args.push(self.sum()?);
                if self.eat(b')') {
                    break;
                }
                if !self.eat(b',') {
                    return self.err(self.pos, "expected `,` or `)`");
                }
            }
        }
        let ok = match arity {
            Some(n) => args.len() == n,
            None => !args.is_empty(),
        };
        if !ok {
            let want = arity.map_or("at least 1".to_string(), |n| n.to_string());
            return self.err(
                start,
                format!("{name} takes {want} arguments, not {}", args.len()),
            );
        }
        Ok(Expr::Call(func, args))
    }

    fn name(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        let text: &'a str = self.text;
        &text[start..self.pos]
    }

    fn number(&mut self) -> Result<Expr, Located> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut double = false;
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'0'..=b'9' => {}
                b'.' => double = true,
                b'e' | b'E' => {
                    double = true;
                    if matches!(bytes.get(self.pos + 1), Some(b'+' | b'-')) {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
            self.pos += 1;
        }
        let text = &self.text[start..self.pos];
        if double {
            match text.parse::<f64>() {
                Ok(d) => Ok(Expr::Double(d)),
                Err(_) => self.err(start, format!("`{text}` is not a number")),
            }
        } else {
            match text.parse::<i64>() {
                Ok(i) => Ok(Expr::Int(i)),
                Err(_) => self.err(start, format!("integer {text} is out of range")),
            }
        }
    }
}

/// A variable's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Double(f64),
}

impl Value {
    fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Double(d) => d,
        }
    }

    fn as_int(self) -> Result<i64, EvalError> {
        match self {
            Value::Int(i) => Ok(i),
            Value::Double(d) if d.is_finite() && d.abs() < 9.2e18 => Ok(d as i64),
            Value::Double(d) => Err(EvalError::range(format!("{d} does not fit in an integer"))),
        }
    }

    /// The text sent to the server for `:name`.
    pub(crate) fn to_text(self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Double(d) => d.to_string(),
        }
    }
}

/// An evaluation failure, with the SQLSTATE it is counted under.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EvalError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl EvalError {
    fn range(message: String) -> EvalError {
        EvalError {
            code: "22003",
            message,
        }
    }

    fn invalid(message: impl Into<String>) -> EvalError {
        EvalError {
            code: "22023",
            message: message.into(),
        }
    }

    fn zero() -> EvalError {
        EvalError {
            code: "22012",
            message: "division by zero".into(),
        }
    }
}

/// Evaluates `e` with the variables' current values.
pub(crate) fn eval(e: &Expr, vars: &[Value], rng: &mut ChaCha8Rng) -> Result<Value, EvalError> {
    Ok(match e {
        Expr::Int(i) => Value::Int(*i),
        Expr::Double(d) => Value::Double(*d),
        Expr::Var(v) => vars[*v],
        Expr::Neg(inner) => match eval(inner, vars, rng)? {
            Value::Int(i) => Value::Int(
                i.checked_neg()
                    .ok_or_else(|| EvalError::range("bigint out of range".into()))?,
            ),
            Value::Double(d) => Value::Double(-d),
        },
        Expr::Bin(op, a, b) => binary(*op, eval(a, vars, rng)?, eval(b, vars, rng)?)?,
        Expr::Call(f, args) => {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(eval(a, vars, rng)?);
            }
            call(*f, &values, rng)?
        }
    })
}

fn binary(op: Op, a: Value, b: Value) -> Result<Value, EvalError> {
    let overflow = || EvalError::range("bigint out of range".into());
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        return Ok(Value::Int(match op {
            Op::Add => x.checked_add(y).ok_or_else(overflow)?,
            Op::Sub => x.checked_sub(y).ok_or_else(overflow)?,
            Op::Mul => x.checked_mul(y).ok_or_else(overflow)?,
            Op::Div if y == 0 => return Err(EvalError::zero()),
            Op::Div => x.checked_div(y).ok_or_else(overflow)?,
            Op::Mod if y == 0 => return Err(EvalError::zero()),
            Op::Mod => x.checked_rem(y).unwrap_or(0),
        }));
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    Ok(Value::Double(match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div if y == 0.0 => return Err(EvalError::zero()),
        Op::Div => x / y,
        Op::Mod => return Err(EvalError::invalid("% needs integers")),
    }))
}

fn call(f: Func, v: &[Value], rng: &mut ChaCha8Rng) -> Result<Value, EvalError> {
    Ok(match f {
        Func::Random => {
            let (lb, ub) = bounds(v)?;
            Value::Int(rng.random_range(lb..=ub))
        }
        Func::Gaussian => {
            let (lb, ub) = bounds(v)?;
            let p = v[2].as_f64();
            if p.is_nan() || p < 2.0 {
                return Err(EvalError::invalid(format!(
                    "gaussian parameter must be at least 2.0, not {p}"
                )));
            }
            // pgbench: a standard normal by Box-Muller, drawn again while
            // outside [-p, p), then scaled onto the range.
            let stdev = loop {
                let r1 = 1.0 - rng.random::<f64>();
                let r2 = 1.0 - rng.random::<f64>();
                let s = (-2.0 * r1.ln()).sqrt() * (2.0 * std::f64::consts::PI * r2).sin();
                if (-p..p).contains(&s) {
                    break s;
                }
            };
            let r = (stdev + p) / (p * 2.0);
            Value::Int(scale_onto(lb, ub, r))
        }
        Func::Exponential => {
            let (lb, ub) = bounds(v)?;
            let p = v[2].as_f64();
            if p.is_nan() || p <= 0.0 {
                return Err(EvalError::invalid(format!(
                    "exponential parameter must be greater than zero, not {p}"
                )));
            }
            let cut = (-p).exp();
            let uniform = 1.0 - rng.random::<f64>();
            let r = -(cut + (1.0 - cut) * uniform).ln() / p;
            Value::Int(scale_onto(lb, ub, r))
        }
        Func::Abs => match v[0] {
            Value::Int(i) => Value::Int(
                i.checked_abs()
                    .ok_or_else(|| EvalError::range("bigint out of range".into()))?,
            ),
            Value::Double(d) => Value::Double(d.abs()),
        },
        Func::Least | Func::Greatest => {
            let pick_least = f == Func::Least;
            if v.iter().all(|x| matches!(x, Value::Int(_))) {
                let ints = v.iter().map(|x| x.as_int().unwrap_or(0));
                Value::Int(if pick_least { ints.min() } else { ints.max() }.unwrap_or(0))
            } else {
                let fold = v.iter().map(|x| x.as_f64());
                Value::Double(if pick_least {
                    fold.fold(f64::INFINITY, f64::min)
                } else {
                    fold.fold(f64::NEG_INFINITY, f64::max)
                })
            }
        }
        Func::Int => Value::Int(v[0].as_int()?),
        Func::Double => Value::Double(v[0].as_f64()),
        Func::Sqrt => Value::Double(v[0].as_f64().sqrt()),
        Func::Pi => Value::Double(std::f64::consts::PI),
        Func::Mod => binary(Op::Mod, Value::Int(v[0].as_int()?), Value::Int(v[1].as_int()?))?,
    })
}

fn bounds(v: &[Value]) -> Result<(i64, i64), EvalError> {
    let (lb, ub) = (v[0].as_int()?, v[1].as_int()?);
    if lb > ub {
        return Err(EvalError::invalid(format!(
            "empty range given to random: {lb} > {ub}"
        )));
    }
    Ok((lb, ub))
}

/// `lb + (ub - lb + 1) · r` for `r` in [0, 1), kept within the range.
fn scale_onto(lb: i64, ub: i64, r: f64) -> i64 {
    let span = (ub as f64 - lb as f64) + 1.0;
    let v = lb as f64 + (span * r).floor();
    (v as i64).clamp(lb, ub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn expr(text: &str) -> Result<Expr, Located> {
        parse(text, 0, &mut |name, at| match name {
            "a" => Ok(0),
            "b" => Ok(1),
            _ => Err((at, format!("undefined variable :{name}"))),
        })
    }

    fn value(text: &str) -> Result<Value, EvalError> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        eval(
            &expr(text).unwrap(),
            &[Value::Int(10), Value::Double(2.5)],
            &mut rng,
        )
    }

    #[test]
    fn arithmetic_has_precedence_and_pgbench_types() {
        assert_eq!(value("1 + 2 * 3"), Ok(Value::Int(7)));
        assert_eq!(value("(1 + 2) * 3"), Ok(Value::Int(9)));
        assert_eq!(value("-7 / 2"), Ok(Value::Int(-3)));
        assert_eq!(value("7 % 3"), Ok(Value::Int(1)));
        assert_eq!(value(":a * 100000 - 1"), Ok(Value::Int(999_999)));
        assert_eq!(value(":a * :b"), Ok(Value::Double(25.0)));
        assert_eq!(value("greatest(1, :a, 3)"), Ok(Value::Int(10)));
        assert_eq!(value("int(7.9) + abs(-2)"), Ok(Value::Int(9)));
        assert_eq!(value("1 / 0").unwrap_err().code, "22012");
        assert_eq!(value("9223372036854775807 + 1").unwrap_err().code, "22003");
    }

    #[test]
    fn random_functions_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let vars = [Value::Int(10), Value::Int(0)];
        for text in [
            "random(1, :a)",
            "random_gaussian(1, :a, 2.5)",
            "random_exponential(1, :a, 3)",
        ] {
            let e = expr(text).unwrap();
            let mut seen = [0u32; 11];
            for _ in 0..5_000 {
                let Value::Int(v) = eval(&e, &vars, &mut rng).unwrap() else {
                    panic!("{text}: not an int")
                };
                assert!((1..=10).contains(&v), "{text} gave {v}");
                seen[v as usize] += 1;
            }
            assert!(seen[1..].iter().all(|&n| n > 0), "{text}: {seen:?}");
            if text.starts_with("random_gaussian") {
                assert!(seen[5] + seen[6] > 3 * (seen[1] + seen[10]), "{seen:?}");
            }
            if text.starts_with("random_exponential") {
                assert!(seen[1] > 3 * seen[10], "{seen:?}");
            }
        }
        assert_eq!(value("random(5, 1)").unwrap_err().code, "22023");
        assert_eq!(value("random_gaussian(1, 10, 1.5)").unwrap_err().code, "22023");
    }

    #[test]
    fn mistakes_are_located() {
        assert_eq!(expr("1 +").unwrap_err().0, 3);
        assert_eq!(expr("rand(1, 2)").unwrap_err().0, 0);
        assert!(
            expr("rand(1, 2)")
                .unwrap_err()
                .1
                .contains("unknown function `rand`")
        );
        assert_eq!(
            expr("random(1)").unwrap_err().1,
            "random takes 2 arguments, not 1"
        );
        assert_eq!(
            expr("2 * :c").unwrap_err(),
            (4, "undefined variable :c".to_string())
        );
        assert_eq!(expr("(1 + 2").unwrap_err().0, 6);
        assert!(expr("1 2").unwrap_err().1.contains("unexpected `2`"));
    }
}
