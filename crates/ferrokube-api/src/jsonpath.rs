//! Kubernetes' JSONPath (client-go's `util/jsonpath`), as a
//! CustomResourceDefinition's `additionalPrinterColumns` use it: fields
//! (`.spec.replicas`, `.metadata.labels.app`, escaped dots `.a\.b`), indexes
//! and slices (`[0]`, `[-1]`, `[1:3]`, `[::2]`, `[*]`), unions (`[0,2]`),
//! wildcards, recursive descent (`..name`), quoted keys (`['app']`, which is
//! `.app`: client-go splits it on dots like any field), filters
//! (`[?(@.type=="Ready")]`, `[?(@.ready)]`) and `range`/`end`.
//!
//! [`parse`] reports client-go's parse errors word for word; [`JsonPath::eval`]
//! walks an object as client-go walks an unstructured one, missing keys
//! giving no result; [`CustomColumn`] is a printer column with the cell rule
//! of Kubernetes' CRD table convertor (`tableconvertor.go`).

mod eval;
mod parse;

use serde_json::{json, Value};
use std::borrow::Cow;

/// Why a JSONPath template does not parse; the messages are client-go's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// An action (`{...}`) ends before its closing brace.
    #[error("unclosed action")]
    UnclosedAction,
    /// A character no token starts with (given as Go's `%#U`: `U+0023 '#'`).
    #[error("unrecognized character in action: {0}")]
    UnrecognizedCharacter(String),
    /// `....`: a recursive descent right after another.
    #[error("invalid multiple recursive descent")]
    MultipleRecursive,
    /// A number literal that is neither an integer nor a float (`1.2.3`).
    #[error("cannot parse number {0}")]
    Number(String),
    /// `[` without its `]` on the line.
    #[error("unterminated array")]
    UnterminatedArray,
    /// Brackets holding neither a key, an index, a slice nor a union.
    #[error("invalid array index {0}")]
    InvalidIndex(String),
    /// A slice bound that is only a sign (`[-]`).
    #[error("array index {0} is not a number")]
    IndexNotNumber(String),
    /// `[?(` without its `)` on the line.
    #[error("unterminated filter")]
    UnterminatedFilter,
    /// A filter's `)` not followed by `]`.
    #[error("unclosed array expect ]")]
    UnclosedFilter,
    /// A quoted string without its closing quote on the line.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A quoted string with an invalid escape or a bare quote inside.
    #[error("unquote string {0} error invalid syntax")]
    Unquote(String),
}

/// Why evaluating a path stopped (an index out of range, a filter comparing
/// several values); the message is client-go's. A table cell shows nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(String);

/// One bound of a slice: given (`known`), or filled in.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Param {
    known: bool,
    value: i64,
    /// The end of `[i]`: `i + 1`, which a negative `i` turns into the length.
    derived: bool,
}

impl Param {
    fn known(value: i64) -> Self {
        Self {
            known: true,
            value,
            derived: false,
        }
    }
}

/// A parsed template node (client-go's node types).
#[derive(Clone, Debug, PartialEq)]
enum Node {
    /// Text outside actions, or a quoted string inside one.
    Text(String),
    /// One action's nodes, applied in sequence.
    List(Vec<Node>),
    Field(String),
    Wildcard,
    Recursive,
    Array([Param; 3]),
    Filter {
        left: Vec<Node>,
        right: Vec<Node>,
        op: String,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Union(Vec<Vec<Node>>),
    /// `range` or `end` (others fail when evaluated, as in client-go).
    Identifier(String),
}

/// A parsed JSONPath template.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    nodes: Vec<Node>,
}

/// Parses `path` as an additionalPrinterColumn's `jsonPath` is parsed: as
/// the single action `{path}`.
pub fn parse(path: &str) -> Result<JsonPath, ParseError> {
    parse_template(&format!("{{{path}}}"))
}

/// Parses a template with its braces (`{.metadata.name}`, as `kubectl -o
/// jsonpath=` takes it), text outside them kept as text.
pub fn parse_template(template: &str) -> Result<JsonPath, ParseError> {
    Ok(JsonPath {
        nodes: parse::template(template)?,
    })
}

impl JsonPath {
    /// The values the path's first action finds in `obj`; missing keys and
    /// evaluation errors (an index out of range) give none.
    pub fn eval(&self, obj: &Value) -> Vec<Value> {
        self.results(obj)
            .ok()
            .and_then(|lists| lists.into_iter().next())
            .unwrap_or_default()
    }

    /// Every action's values (client-go's `FindResults` with missing keys
    /// allowed), or why evaluation failed.
    pub fn results(&self, obj: &Value) -> Result<Vec<Vec<Value>>, EvalError> {
        let mut exec = eval::Exec::new(true);
        let lists = exec.find(&self.nodes, Cow::Borrowed(obj))?;
        Ok(lists
            .into_iter()
            .map(|l| l.into_iter().map(Cow::into_owned).collect())
            .collect())
    }
}

/// One of a CRD version's `additionalPrinterColumns`, ready to fill cells.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomColumn {
    /// The header kubectl prints.
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub ty: String,
    /// The column's `format` (`name`, `int32`, `date-time`, ...), or empty.
    pub format: String,
    /// 0 always shown; above 0 only with `-o wide`.
    pub priority: i32,
    /// The column's description, or Kubernetes' default naming the path.
    pub description: String,
    path: JsonPath,
}

impl CustomColumn {
    /// A column from its definition; the error is client-go's parse error of
    /// `json_path` (Kubernetes then serves the default columns).
    pub fn new(
        name: &str,
        ty: &str,
        format: &str,
        priority: i32,
        description: &str,
        json_path: &str,
    ) -> Result<Self, ParseError> {
        let path = parse(json_path)?;
        let description = if description.is_empty() {
            format!("Custom resource definition column (in JSONPath format): {json_path}")
        } else {
            description.to_string()
        };
        Ok(Self {
            name: name.to_string(),
            ty: ty.to_string(),
            format: format.to_string(),
            priority,
            description,
            path,
        })
    }

    /// A column from an `additionalPrinterColumns` entry (`name`, `type`,
    /// `format`, `priority`, `description`, `jsonPath`).
    pub fn from_definition(def: &Value) -> Result<Self, ParseError> {
        let text = |k: &str| def.get(k).and_then(Value::as_str).unwrap_or("");
        let priority = def
            .get("priority")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0);
        Self::new(
            text("name"),
            text("type"),
            text("format"),
            priority,
            text("description"),
            text("jsonPath"),
        )
    }

    /// The Table's `columnDefinitions` entry.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }

    /// The cell for `obj` at time `now` (Unix seconds).
    pub fn cell(&self, obj: &Value, now: i64) -> Value {
        cell(&self.path, &self.ty, obj, now)
    }
}

/// The cell of a column of type `ty` for `obj`, as Kubernetes' CRD table
/// convertor fills it: the first value the path finds, `null` when none.
/// A `string` column prints it (maps and lists as JSON, `null` as
/// `<no value>`); `integer` truncates numbers, `number` takes any number,
/// `boolean` a boolean, and `date` turns an RFC 3339 time into its age
/// (`5m`; `<invalid>` when it does not parse, `<unknown>` when empty); a
/// value of another type is `null`.
pub fn cell(path: &JsonPath, ty: &str, obj: &Value, now: i64) -> Value {
    let Some(value) = path.eval(obj).into_iter().next() else {
        return Value::Null;
    };
    if ty == "string" {
        return Value::String(print(&value));
    }
    match (ty, &value) {
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            #[expect(
                clippy::cast_possible_truncation,
                reason = "Go's int64(float64) conversion, which truncates"
            )]
            None => json!(n.as_f64().unwrap_or(0.0) as i64),
        },
        ("number", Value::Number(n)) => json!(n.as_f64().unwrap_or(0.0)),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => Value::String(age(s, now)),
        _ => Value::Null,
    }
}

/// client-go's printing of one result: maps and lists as JSON, other
/// values as Go's `fmt.Print` writes them.
pub fn print(value: &Value) -> String {
    match value {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::Array(_) | Value::Object(_) => {
            String::from_utf8_lossy(&crate::gojson::to_vec(value)).into_owned()
        }
    }
}

/// `metatable.ConvertToHumanReadableDateType` of a time given as text.
fn age(text: &str, now: i64) -> String {
    if text.is_empty() || text == "null" {
        return "<unknown>".to_string();
    }
    match text.parse::<jiff::Timestamp>() {
        Err(_) => "<invalid>".to_string(),
        // Go's zero time, which Kubernetes shows as unknown.
        Ok(t) if t.as_second() == -62_135_596_800 => "<unknown>".to_string(),
        Ok(t) => crate::printers::human_duration(now - t.as_second()),
    }
}

/// A float64 as Go's `%v` prints it: the shortest digits, in exponent form
/// (`1e+06`, `1.5e-07`) when the exponent is below -4 or at least 6.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` gives the shortest digits too: `-1.2345e6`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    let len = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if point <= 0 {
        let zeros = "0".repeat(usize::try_from(-point).unwrap_or(0));
        format!("{sign}0.{zeros}{digits}")
    } else if point >= len {
        let zeros = "0".repeat(usize::try_from(point - len).unwrap_or(0));
        format!("{sign}{digits}{zeros}")
    } else {
        let (int, frac) = digits.split_at(usize::try_from(point).unwrap_or(0));
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests;
