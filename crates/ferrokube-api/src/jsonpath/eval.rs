//! Evaluation over JSON as client-go's `FindResults` does it over
//! unstructured objects (integers are Go `int64`, other numbers `float64`,
//! maps walked in key order).

use super::{EvalError, Node, Param};
use serde_json::Value;
use std::borrow::Cow;

type Item<'a> = Cow<'a, Value>;

type Result<T> = std::result::Result<T, EvalError>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(EvalError(message.into()))
}

/// The state of one execution: the range loop's counters and scopes.
pub(super) struct Exec<'a> {
    allow_missing: bool,
    stack: Vec<Vec<Item<'a>>>,
    cur: Vec<Item<'a>>,
    begin_range: usize,
    in_range: usize,
    end_range: usize,
}

/// Go's type name of an unstructured value, for error messages.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The children of an array (in order) or a map (in key order); `None`
/// for anything else.
fn children<'a>(v: &Item<'a>) -> Option<Vec<Item<'a>>> {
    match v {
        Cow::Borrowed(Value::Array(items)) => Some(items.iter().map(Cow::Borrowed).collect()),
        Cow::Borrowed(Value::Object(map)) => Some(map.values().map(Cow::Borrowed).collect()),
        Cow::Owned(Value::Array(items)) => Some(items.iter().cloned().map(Cow::Owned).collect()),
        Cow::Owned(Value::Object(map)) => Some(map.values().cloned().map(Cow::Owned).collect()),
        _ => None,
    }
}

impl<'a> Exec<'a> {
    pub(super) fn new(allow_missing: bool) -> Self {
        Self {
            allow_missing,
            stack: Vec::new(),
            cur: Vec::new(),
            begin_range: 0,
            in_range: 0,
            end_range: 0,
        }
    }

    /// One result list per top-level node; a `range` repeats the nodes
    /// after it for each of its values.
    pub(super) fn find(&mut self, nodes: &[Node], data: Item<'a>) -> Result<Vec<Vec<Item<'a>>>> {
        self.cur = vec![data];
        let mut full = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let results = self.walk(self.cur.clone(), node)?;
            if self.end_range > 0 && self.end_range <= self.in_range {
                self.end_range -= 1;
                break;
            }
            if self.begin_range > 0 {
                self.begin_range -= 1;
                self.in_range += 1;
                let last = results.len().saturating_sub(1);
                for (k, value) in results.into_iter().enumerate() {
                    if k == last {
                        self.in_range -= 1;
                    }
                    full.extend(self.find(&nodes[i + 1..], value)?);
                }
                break;
            }
            full.push(results);
        }
        Ok(full)
    }

    fn walk(&mut self, input: Vec<Item<'a>>, node: &Node) -> Result<Vec<Item<'a>>> {
        match node {
            Node::List(nodes) => self.list(input, nodes),
            Node::Text(t) => Ok(vec![Cow::Owned(Value::String(t.clone()))]),
            Node::Field(name) => self.field(input, name),
            Node::Array(params) => array(input, params),
            Node::Filter { left, right, op } => self.filter(input, left, right, op),
            Node::Int(i) => Ok(input
                .iter()
                .map(|_| Cow::Owned(Value::from(*i as f64)))
                .collect()),
            Node::Float(f) => Ok(input.iter().map(|_| Cow::Owned(Value::from(*f))).collect()),
            Node::Bool(b) => Ok(input.iter().map(|_| Cow::Owned(Value::Bool(*b))).collect()),
            Node::Wildcard => Ok(input.iter().filter_map(children).flatten().collect()),
            Node::Recursive => Ok(recursive(input)),
            Node::Union(lists) => {
                let mut out = Vec::new();
                for nodes in lists {
                    out.extend(self.list(input.clone(), nodes)?);
                }
                Ok(out)
            }
            Node::Identifier(name) => self.identifier(input, name),
        }
    }

    fn list(&mut self, mut cur: Vec<Item<'a>>, nodes: &[Node]) -> Result<Vec<Item<'a>>> {
        for node in nodes {
            cur = self.walk(cur, node)?;
        }
        Ok(cur)
    }

    fn identifier(&mut self, input: Vec<Item<'a>>, name: &str) -> Result<Vec<Item<'a>>> {
        match name {
            "range" => {
                self.stack.push(self.cur.clone());
                self.begin_range += 1;
                Ok(input)
            }
            "end" => {
                if self.end_range < self.in_range {
                    self.end_range += 1;
                } else if let Some(scope) = self.stack.pop() {
                    self.cur = scope;
                } else {
                    return fail("not in range, nothing to end");
                }
                Ok(Vec::new())
            }
            _ => fail(format!("unrecognized identifier {name}")),
        }
    }

    fn field(&self, input: Vec<Item<'a>>, name: &str) -> Result<Vec<Item<'a>>> {
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let mut results = Vec::new();
        for value in input {
            match value {
                Cow::Borrowed(Value::Object(map)) => {
                    results.extend(map.get(name).map(Cow::Borrowed));
                }
                Cow::Owned(Value::Object(mut map)) => {
                    results.extend(map.remove(name).map(Cow::Owned));
                }
                _ => {}
            }
        }
        if results.is_empty() && !self.allow_missing {
            return fail(format!("{name} is not found"));
        }
        Ok(results)
    }

    fn filter(
        &mut self,
        input: Vec<Item<'a>>,
        left: &[Node],
        right: &[Node],
        op: &str,
    ) -> Result<Vec<Item<'a>>> {
        let mut results = Vec::new();
        for value in input {
            let elements = children(&value).unwrap_or_else(|| vec![value.clone()]);
            for element in elements {
                let lefts = match self.list(vec![element.clone()], left) {
                    Ok(l) => l,
                    Err(e) if !self.allow_missing => return Err(e),
                    Err(_) => Vec::new(),
                };
                let rights = self.list(vec![element.clone()], right)?;
                match lefts.len() {
                    0 => continue,
                    1 => {}
                    _ => return fail("can only compare one element at a time"),
                }
                if op == "exists" {
                    results.push(element);
                    continue;
                }
                match rights.len() {
                    0 => continue,
                    1 => {}
                    _ => return fail("can only compare one element at a time"),
                }
                if compare(op, &lefts[0], &rights[0])? {
                    results.push(element);
                }
            }
        }
        Ok(results)
    }
}

/// `[start:end:step]` over each array of `input`; `null`s are skipped.
fn array<'a>(input: Vec<Item<'a>>, params: &[Param; 3]) -> Result<Vec<Item<'a>>> {
    let mut result = Vec::new();
    for value in input {
        if value.is_null() {
            continue;
        }
        let Some(items) = children(&value).filter(|_| value.is_array()) else {
            return fail(format!("{} is not array or slice", go_type(&value)));
        };
        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let mut start = if params[0].known { params[0].value } else { 0 };
        if start < 0 {
            start += len;
        }
        let mut end = if params[1].known {
            params[1].value
        } else {
            len
        };
        if end < 0 || (end == 0 && params[1].derived) {
            end += len;
        }
        if end == start {
            // Zero elements asked for: client-go stops here, for every input.
            return Ok(result);
        }
        if start >= len || start < 0 {
            return fail(format!(
                "array index out of bounds: index {start}, length {len}"
            ));
        }
        if end > len || end < 0 {
            return fail(format!(
                "array index out of bounds: index {}, length {len}",
                end - 1
            ));
        }
        if start > end {
            return fail(format!(
                "starting index {start} is greater than ending index {end}"
            ));
        }
        let step = if params[2].known {
            if params[2].value <= 0 {
                return fail("step must be > 0");
            }
            params[2].value
        } else {
            1
        };
        let (start, end, step) = (
            usize::try_from(start).unwrap_or(0),
            usize::try_from(end).unwrap_or(0),
            usize::try_from(step).unwrap_or(1),
        );
        result.extend(items.into_iter().take(end).skip(start).step_by(step));
    }
    Ok(result)
}

/// Every array and map under `input` (itself included) that has children,
/// parents before their children.
fn recursive(input: Vec<Item<'_>>) -> Vec<Item<'_>> {
    let mut result = Vec::new();
    for value in input {
        let Some(kids) = children(&value) else {
            continue;
        };
        if kids.is_empty() {
            continue;
        }
        result.push(value);
        result.extend(recursive(kids));
    }
    result
}

/// A comparable scalar, as Go's `text/template` comparisons see it.
enum Scalar<'v> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'v str),
}

fn scalar(v: &Value) -> Option<Scalar<'_>> {
    match v {
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        // Whole numbers that fit are Go int64s, the rest float64s (as
        // unstructured objects hold them); a number written in the path is
        // a float here (client-go converts it before comparing).
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Scalar::Int(i)),
            None => n.as_f64().map(Scalar::Float),
        },
        Value::String(s) => Some(Scalar::Str(s)),
        _ => None,
    }
}

/// `Some(answer)` when both sides are of one kind, `None` when the kinds
/// differ or are not comparable (client-go ignores such comparisons).
fn equal(l: &Scalar, r: &Scalar) -> Option<bool> {
    match (l, r) {
        (Scalar::Bool(a), Scalar::Bool(b)) => Some(a == b),
        (Scalar::Int(a), Scalar::Int(b)) => Some(a == b),
        (Scalar::Float(a), Scalar::Float(b)) => Some(a == b),
        (Scalar::Str(a), Scalar::Str(b)) => Some(a == b),
        _ => None,
    }
}

fn less(l: &Scalar, r: &Scalar) -> Option<bool> {
    match (l, r) {
        (Scalar::Int(a), Scalar::Int(b)) => Some(a < b),
        (Scalar::Float(a), Scalar::Float(b)) => Some(a < b),
        (Scalar::Str(a), Scalar::Str(b)) => Some(a < b),
        _ => None,
    }
}

/// A filter's comparison. Comparing values of different kinds (an integer
/// field with a number written in the path, which client-go reads as a
/// float) is not an error and passes only for `!=`, as in client-go.
fn compare(op: &str, l: &Value, r: &Value) -> Result<bool> {
    if !matches!(op, "==" | "!=" | "<" | "<=" | ">" | ">=") {
        return fail(format!("unrecognized filter operator {op}"));
    }
    let (l, r) = match (scalar(l), scalar(r)) {
        (Some(l), Some(r)) => (l, r),
        _ => return Ok(op == "!="),
    };
    let le = || match less(&l, &r) {
        Some(true) => Some(true),
        Some(false) => equal(&l, &r),
        None => None,
    };
    Ok(match op {
        "==" => equal(&l, &r).unwrap_or(false),
        "!=" => !equal(&l, &r).unwrap_or(false),
        "<" => less(&l, &r).unwrap_or(false),
        "<=" => le().unwrap_or(false),
        ">" => le().is_some_and(|le| !le),
        ">=" => less(&l, &r).is_some_and(|lt| !lt),
        _ => return fail(format!("unrecognized filter operator {op}")),
    })
}
