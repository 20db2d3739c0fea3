//! CEL expressions as Kubernetes evaluates them: CustomResourceDefinitions'
//! `x-kubernetes-validations`, admission webhooks' `matchConditions` and
//! ValidatingAdmissionPolicies share this.
//!
//! The language is the cel-rust interpreter's (the standard library, its
//! `has`/`all`/`exists`/`exists_one`/`map`/`filter` macros, optional values,
//! the strings and lists extensions: `lowerAscii`, `upperAscii`, `split`,
//! `join`, `replace`, `substring`, `trim`, `indexOf` on strings, `slice`,
//! `flatten`, `distinct`, `reverse`, `sort`), plus what Kubernetes' own CEL
//! libraries add that custom resources' rules use most: on lists `isSorted()`,
//! `sum()`, `min()`, `max()`, `indexOf(x)`, `lastIndexOf(x)`; on strings
//! `find(regex)` and `findAll(regex[, n])`; `sets.contains`,
//! `sets.equivalent`, `sets.intersects`; `isURL(string)`,
//! `isQuantity(string)` and `quantity(string)` with its methods
//! (`isGreaterThan`, `isLessThan`, `compareTo`, `add`, `sub`, `sign`,
//! `isInteger`, `asInteger`, `asApproximateFloat`).
//!
//! The IP and CIDR libraries: `isIP`, `ip()` (`family`, `isLoopback`, ...),
//! `isCIDR`, `cidr()` (`containsIP`, `containsCIDR`, `ip`, `prefixLength`,
//! `masked`).
//!
//! The URL library: `url()` with `getScheme`, `getHost`, `getHostname`,
//! `getPort`, `getEscapedPath`, `getQuery`.
//!
//! Not there yet: Kubernetes' `authorizer` values, the type checker (an undeclared field
//! is an evaluation error here, a compile error in Kubernetes; `typecheck` and
//! `exprtypes` report the part of it CRDs' rules and admission policies' type
//! checking need) and the cost estimates (rules run without a budget: our
//! objects are small).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use ::cel::common::types::{CelOptional, DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use ::cel::common::value::{CowVal, Val};
use ::cel::objects::{Key, Map};
use ::cel::{Context, Env, ExecutionError, Value};
use serde_json::Value as Json;

/// A compiled CEL expression.
pub struct Program {
    source: String,
    program: ::cel::Program,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("source", &self.source)
            .finish()
    }
}

/// Compiles `expr`. The error is the parser's, in cel-go's form
/// (`ERROR: <input>:1:5: Syntax error: ...` with the line and a caret).
pub fn compile(expr: &str) -> Result<Program, String> {
    // cel-rust prints the snippet lines as `| ...`; cel-go as ` | ...`.
    let program = env()
        .compile(expr)
        .map_err(|e| e.to_string().replace("\n| ", "\n | "))?;
    Ok(Program {
        source: expr.to_string(),
        program,
    })
}

impl Program {
    /// Evaluates the expression with `vars` bound (e.g. `("self", &obj)`,
    /// `("object", &obj)`, `("request", &req)`), JSON values turned into
    /// CEL's (whole numbers are `int`, others `double`). The result is
    /// returned as JSON; an evaluation error is returned as cel's message.
    pub fn eval(&self, vars: &[(&str, &Json)]) -> Result<Json, String> {
        let vars: Vec<(&str, Value)> = vars.iter().map(|(n, v)| (*n, from_json(v))).collect();
        let vars: Vec<(&str, Binding)> = vars
            .into_iter()
            .map(|(n, v)| (n, Binding::Value(v)))
            .collect();
        let value = self.eval_value(&vars)?;
        value.json().map_err(|e| e.to_string())
    }

    /// Evaluates with CEL values already made (the schema's typed
    /// conversion), or optionals (`oldSelf` of `optionalOldSelf` rules).
    pub(crate) fn eval_value(&self, vars: &[(&str, Binding)]) -> Result<Value, String> {
        let mut context = Context::with_env(env_arc());
        crate::quantity::add_to(&mut context).map_err(|e| e.to_string())?;
        crate::net::add_to(&mut context).map_err(|e| e.to_string())?;
        crate::url::add_to(&mut context).map_err(|e| e.to_string())?;
        for (name, value) in vars {
            let boxed: Box<dyn Val> = match value {
                Binding::Value(v) => boxed(v)?,
                Binding::OptionalNone => Box::new(CelOptional::none()),
                Binding::OptionalOf(v) => Box::new(CelOptional::of(boxed(v)?)),
            };
            context.add_variable_as_val(name.to_string(), boxed);
        }
        self.program.execute(&context).map_err(|e| go_error(&e))
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed expression.
    pub(crate) fn expression(&self) -> &::cel::IdedExpr {
        self.program.expression()
    }

    /// Where each node of the expression was written.
    pub(crate) fn source_info(&self) -> &::cel::common::ast::SourceInfo {
        self.program.source_info()
    }

    /// Whether the expression names the variable `name` (e.g. `oldSelf`).
    pub fn uses_variable(&self, name: &str) -> bool {
        self.program.references().has_variable(name)
    }
}

/// An evaluation error worded as cel-go words it where Kubernetes' messages
/// show it (`no such key: foo`, `division by zero`, `no such overload`).
fn go_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_string(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_string(),
        ExecutionError::Overflow(..) => "integer overflow".to_string(),
        ExecutionError::NoSuchOverload(_) | ExecutionError::UnsupportedBinaryOperator(..) => {
            "no such overload".to_string()
        }
        ExecutionError::UndeclaredReference(name) => format!("no such attribute(s): {name}"),
        other => other.to_string(),
    }
}

/// A variable's value for [`Program::eval_value`].
pub(crate) enum Binding {
    /// A plain value.
    Value(Value),
    /// `optional.none()`.
    OptionalNone,
    /// `optional.of(value)`.
    OptionalOf(Value),
}

fn boxed(v: &Value) -> Result<Box<dyn Val>, String> {
    Box::<dyn Val>::try_from(v.clone()).map_err(|e| e.to_string())
}

/// A JSON value as CEL sees it without a schema: objects are maps, whole
/// numbers `int` (or `uint` past `i64`), other numbers `double`.
pub fn from_json(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        Json::Object(fields) => map_value(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect(),
        ),
    }
}

/// A CEL map of string keys.
pub(crate) fn map_value(fields: Vec<(String, Value)>) -> Value {
    let map: HashMap<Key, Value> = fields
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k)), v))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

fn env_arc() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(build_env())).clone()
}

fn env() -> &'static Env {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(env_arc).as_ref()
}

/// The standard environment with the extensions and Kubernetes' additions.
fn build_env() -> Env {
    let mut env = Env::stdlib();
    // Each registration below names a function no other one declares with
    // the same signature: a failure is a programming error caught by tests,
    // and the environment is still usable without that one function.
    let _ = env.add_extension(::cel::extensions::strings);
    let _ = env.add_extension(::cel::extensions::lists);
    let list_fns: [(&str, &str, ::cel::common::functions::Function); 4] = [
        ("isSorted", "list.isSorted()", list_is_sorted),
        ("sum", "list.sum()", list_sum),
        ("min", "list.min()", list_min),
        ("max", "list.max()", list_max),
    ];
    for (name, id, f) in list_fns {
        let _ = env.add_member_overload(name, id, LIST_TYPE, vec![], f);
    }
    let _ = env.add_member_overload(
        "indexOf",
        "list.indexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        list_index_of,
    );
    let _ = env.add_member_overload(
        "lastIndexOf",
        "list.lastIndexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        list_last_index_of,
    );
    let _ = env.add_member_overload(
        "find",
        "string.find(string)",
        STRING_TYPE,
        vec![STRING_TYPE],
        string_find,
    );
    let _ = env.add_member_overload(
        "findAll",
        "string.findAll(string)",
        STRING_TYPE,
        vec![STRING_TYPE],
        string_find_all,
    );
    let _ = env.add_member_overload(
        "findAll",
        "string.findAll(string,int)",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        string_find_all_n,
    );
    let sets: [(&str, &str, ::cel::common::functions::Function); 3] = [
        ("sets.contains", "sets.contains(list,list)", sets_contains),
        (
            "sets.equivalent",
            "sets.equivalent(list,list)",
            sets_equivalent,
        ),
        (
            "sets.intersects",
            "sets.intersects(list,list)",
            sets_intersects,
        ),
    ];
    for (name, id, f) in sets {
        let _ = env.add_overload(name, id, vec![LIST_TYPE, LIST_TYPE], f);
    }
    let _ = env.add_overload("isURL", "isURL(string)", vec![STRING_TYPE], is_url);
    let _ = env.add_overload(
        "isQuantity",
        "isQuantity(string)",
        vec![STRING_TYPE],
        is_quantity,
    );
    env
}

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// The arguments as values (read with [`nth`], never by indexing).
fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(a.as_ref())).collect()
}

/// The `i`th argument.
fn nth(vals: &[Value], i: usize) -> Result<&Value, ExecutionError> {
    vals.get(i)
        .ok_or_else(|| ExecutionError::invalid_argument_count(i + 1, vals.len()))
}

fn ret<'b, 'v>(value: Value) -> Ret<'b, 'v> {
    let boxed: Box<dyn Val> = Box::<dyn Val>::try_from(value)?;
    Ok(CowVal::Owned(boxed))
}

fn list_arg(function: &str, v: &Value) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(ExecutionError::function_error(
            function,
            format!("expected a list, got {:?}", other.type_of()),
        )),
    }
}

fn string_arg(function: &str, v: &Value) -> Result<Arc<String>, ExecutionError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(ExecutionError::function_error(
            function,
            format!("expected a string, got {:?}", other.type_of()),
        )),
    }
}

/// The two values compared as CEL orders them; values of different types
/// cannot be (`no such overload`, as cel-go says).
fn compare(function: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, ExecutionError> {
    if std::mem::discriminant(a) != std::mem::discriminant(b) {
        return Err(ExecutionError::no_such_overload(
            function,
            vec![a.type_of().to_string(), b.type_of().to_string()],
        ));
    }
    a.partial_cmp(b)
        .ok_or_else(|| ExecutionError::ValuesNotComparable(a.clone(), b.clone()))
}

fn list_is_sorted<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    let list = list_arg("isSorted", nth(&vals, 0)?)?;
    for pair in list.windows(2) {
        if compare("isSorted", &pair[0], &pair[1])? == std::cmp::Ordering::Greater {
            return ret(Value::Bool(false));
        }
    }
    ret(Value::Bool(true))
}

fn list_sum<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    let list = list_arg("sum", nth(&vals, 0)?)?;
    let mut total = match list.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for item in list.iter() {
        total = match (&total, item) {
            (Value::Int(a), Value::Int(b)) => Value::Int(
                a.checked_add(*b)
                    .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            ),
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(*b).ok_or_else(|| {
                    ExecutionError::function_error("sum", "unsigned integer overflow")
                })?)
            }
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (a, b) => {
                return Err(ExecutionError::no_such_overload(
                    "sum",
                    vec![a.type_of().to_string(), b.type_of().to_string()],
                ))
            }
        };
    }
    ret(total)
}

fn list_extreme(
    function: &str,
    args: &[CowVal<'_, '_>],
    want: std::cmp::Ordering,
) -> Result<Value, ExecutionError> {
    let vals = values(args)?;
    let list = list_arg(function, nth(&vals, 0)?)?;
    let mut best = list.first().cloned().ok_or_else(|| {
        ExecutionError::function_error(function, format!("{function} called on empty list"))
    })?;
    for item in list.iter().skip(1) {
        if compare(function, item, &best)? == want {
            best = item.clone();
        }
    }
    Ok(best)
}

fn list_min<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(list_extreme("min", &args, std::cmp::Ordering::Less)?)
}

fn list_max<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(list_extreme("max", &args, std::cmp::Ordering::Greater)?)
}

fn list_index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    let list = list_arg("indexOf", nth(&vals, 0)?)?;
    let needle = nth(&vals, 1)?;
    let found = list.iter().position(|v| v == needle);
    ret(Value::Int(found.map_or(-1, |i| i as i64)))
}

fn list_last_index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    let list = list_arg("lastIndexOf", nth(&vals, 0)?)?;
    let needle = nth(&vals, 1)?;
    let found = list.iter().rposition(|v| v == needle);
    ret(Value::Int(found.map_or(-1, |i| i as i64)))
}

fn regex_arg(function: &str, pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error(function, e))
}

fn string_find<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    let s = string_arg("find", nth(&vals, 0)?)?;
    let re = regex_arg("find", &string_arg("find", nth(&vals, 1)?)?)?;
    let found = re
        .find(&s)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    ret(Value::String(Arc::new(found)))
}

fn find_all(args: &[CowVal<'_, '_>], limit: Option<i64>) -> Result<Value, ExecutionError> {
    let vals = values(args)?;
    let s = string_arg("findAll", nth(&vals, 0)?)?;
    let re = regex_arg("findAll", &string_arg("findAll", nth(&vals, 1)?)?)?;
    let take = match limit {
        Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    let found: Vec<Value> = re
        .find_iter(&s)
        .take(take)
        .map(|m| Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    Ok(Value::List(Arc::new(found)))
}

fn string_find_all<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(find_all(&args, None)?)
}

fn string_find_all_n<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    let limit = match vals.get(2) {
        Some(Value::Int(n)) => *n,
        _ => -1,
    };
    ret(find_all(&args, Some(limit))?)
}

/// A CEL list's elements.
type List = Arc<Vec<Value>>;

/// The two lists of a `sets.*` call.
fn two_lists(function: &str, args: &[CowVal<'_, '_>]) -> Result<(List, List), ExecutionError> {
    let vals = values(args)?;
    Ok((
        list_arg(function, nth(&vals, 0)?)?,
        list_arg(function, nth(&vals, 1)?)?,
    ))
}

fn sets_contains<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = two_lists("sets.contains", &args)?;
    ret(Value::Bool(b.iter().all(|x| a.contains(x))))
}

fn sets_equivalent<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = two_lists("sets.equivalent", &args)?;
    ret(Value::Bool(
        b.iter().all(|x| a.contains(x)) && a.iter().all(|x| b.contains(x)),
    ))
}

fn sets_intersects<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = two_lists("sets.intersects", &args)?;
    ret(Value::Bool(b.iter().any(|x| a.contains(x))))
}

/// Whether `s` parses as an absolute URI or an absolute path, as Go's
/// `url.ParseRequestURI` accepts it (the check Kubernetes' `isURL` makes).
fn url_ok(s: &str) -> bool {
    if s.starts_with('/') {
        return !s.contains(char::is_whitespace);
    }
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !s.contains(char::is_whitespace)
}

fn is_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    ret(Value::Bool(url_ok(&string_arg("isURL", nth(&vals, 0)?)?)))
}

fn is_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let vals = values(&args)?;
    let s = string_arg("isQuantity", nth(&vals, 0)?)?;
    ret(Value::Bool(
        ferrokube_api::quantity::parse_milli(&s).is_some(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(expr: &str, this: Json) -> Result<Json, String> {
        compile(expr)?.eval(&[("self", &this)])
    }

    #[test]
    fn syntax_errors_are_reported_as_cel_go_words_them() {
        let err = compile("self.a ==").unwrap_err();
        assert!(err.starts_with("ERROR: <input>:1:"), "{err}");
        assert_eq!(
            err,
            "ERROR: <input>:1:10: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | self.a ==\n | .........^"
        );
    }

    #[test]
    fn self_fields_has_and_comparisons() {
        let obj = json!({"replicas": 3, "name": "web", "ratio": 0.5});
        assert_eq!(eval("self.replicas > 2", obj.clone()), Ok(json!(true)));
        assert_eq!(eval("has(self.name)", obj.clone()), Ok(json!(true)));
        assert_eq!(eval("has(self.missing)", obj.clone()), Ok(json!(false)));
        assert_eq!(eval("self.ratio < 1.0", obj.clone()), Ok(json!(true)));
        assert_eq!(eval("self.replicas + 1", obj.clone()), Ok(json!(4)));
        assert_eq!(
            eval("self.missing == 1", obj.clone()),
            Err("no such key: missing".into())
        );
        assert_eq!(
            eval("self.replicas / 0", obj.clone()),
            Err("division by zero".into())
        );
        assert_eq!(
            eval("self.replicas % 0", obj.clone()),
            Err("modulus by zero".into())
        );
        assert_eq!(
            eval("self.name + 1", obj.clone()),
            Err("no such overload".into())
        );
        assert_eq!(
            eval("9223372036854775807 + self.replicas", obj),
            Err("integer overflow".into())
        );
    }

    #[test]
    fn string_functions() {
        let s = json!("Hello-World");
        for (expr, want) in [
            ("self.startsWith('Hello')", json!(true)),
            ("self.endsWith('World')", json!(true)),
            ("self.contains('-')", json!(true)),
            ("self.matches('^[A-Z][a-z]+-')", json!(true)),
            ("size(self)", json!(11)),
            ("self.size()", json!(11)),
            ("self.lowerAscii()", json!("hello-world")),
            ("self.upperAscii()", json!("HELLO-WORLD")),
            ("self.split('-')", json!(["Hello", "World"])),
            ("self.find('[A-Z]')", json!("H")),
            ("self.findAll('[A-Z]')", json!(["H", "W"])),
            ("self.findAll('[a-z]', 2)", json!(["e", "l"])),
            ("self.indexOf('-')", json!(5)),
        ] {
            assert_eq!(eval(expr, s.clone()), Ok(want), "{expr}");
        }
    }

    #[test]
    fn list_macros_and_functions() {
        let l = json!([1, 2, 3]);
        for (expr, want) in [
            ("self.all(x, x > 0)", json!(true)),
            ("self.exists(x, x == 2)", json!(true)),
            ("self.exists_one(x, x > 1)", json!(false)),
            ("self.map(x, x * 2)", json!([2, 4, 6])),
            ("self.filter(x, x != 2)", json!([1, 3])),
            ("self.isSorted()", json!(true)),
            ("[3, 1].isSorted()", json!(false)),
            ("['a', 'b', 'b'].isSorted()", json!(true)),
            ("self.sum()", json!(6)),
            ("[1.5, 2.5].sum()", json!(4.0)),
            ("[].sum()", json!(0)),
            ("self.min()", json!(1)),
            ("self.max()", json!(3)),
            ("self.indexOf(2)", json!(1)),
            ("[1, 2, 1].lastIndexOf(1)", json!(2)),
            ("self.indexOf(7)", json!(-1)),
            ("size(self)", json!(3)),
            ("2 in self", json!(true)),
            ("sets.contains(self, [1, 3])", json!(true)),
            ("sets.contains(self, [4])", json!(false)),
            ("sets.equivalent(self, [3, 2, 1, 1])", json!(true)),
            ("sets.intersects(self, [7, 3])", json!(true)),
            ("sets.intersects(self, [])", json!(false)),
        ] {
            assert_eq!(eval(expr, l.clone()), Ok(want), "{expr}");
        }
        assert!(eval("[].min()", l.clone()).is_err());
        assert!(eval("[1, 'a'].isSorted()", l).is_err());
    }

    #[test]
    fn maps_and_objects() {
        let m = json!({"a": "x", "b": "y"});
        assert_eq!(
            eval("self.all(k, self[k] != '')", m.clone()),
            Ok(json!(true))
        );
        assert_eq!(eval("'a' in self", m.clone()), Ok(json!(true)));
        assert_eq!(eval("size(self)", m), Ok(json!(2)));
    }

    #[test]
    fn urls_and_quantities() {
        for (expr, want) in [
            ("isURL('https://example.com:80/path?q=1')", true),
            ("isURL('/absolute-path')", true),
            ("isURL('../relative-path')", false),
            ("isURL('')", false),
            ("isQuantity('200M')", true),
            ("isQuantity('1.5Gi')", true),
            ("isQuantity('20')", true),
            ("isQuantity('10Mb')", false),
            ("isQuantity('')", false),
        ] {
            assert_eq!(eval(expr, Json::Null), Ok(json!(want)), "{expr}");
        }
    }

    #[test]
    fn quantities() {
        for (expr, want) in [
            (
                "quantity('1Gi').isGreaterThan(quantity('1000Mi'))",
                json!(true),
            ),
            ("quantity('500m').isLessThan(quantity('1'))", json!(true)),
            ("quantity('1k').compareTo(quantity('1000'))", json!(0)),
            (
                "quantity('1').add(quantity('500m')).asApproximateFloat()",
                json!(1.5),
            ),
            ("quantity('2').sub(1).asInteger()", json!(1)),
            ("quantity('-3').sign()", json!(-1)),
            ("quantity('1.5').isInteger()", json!(false)),
            ("quantity('2Ki')", json!("2048")),
        ] {
            assert_eq!(eval(expr, Json::Null), Ok(want), "{expr}");
        }
        assert!(eval("quantity('abc')", Json::Null).is_err());
        assert!(eval("quantity('1.5').asInteger()", Json::Null).is_err());
    }

    #[test]
    fn ips_and_cidrs() {
        for (expr, want) in [
            ("isIP('10.0.0.1') && isIP('fd00::1')", json!(true)),
            (
                "isIP('::ffff:1.2.3.4') || isIP('fe80::1%eth0') || isIP('10.0.0')",
                json!(false),
            ),
            ("ip('10.0.0.1').family()", json!(4)),
            ("ip('::1').isLoopback()", json!(true)),
            ("ip('169.254.1.1').isLinkLocalUnicast()", json!(true)),
            ("ip('8.8.8.8').isGlobalUnicast()", json!(true)),
            (
                "isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0/33')",
                json!(true),
            ),
            ("cidr('10.0.0.0/8').containsIP('10.1.2.3')", json!(true)),
            (
                "cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))",
                json!(false),
            ),
            (
                "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')",
                json!(true),
            ),
            ("cidr('10.1.2.3/8').masked()", json!("10.0.0.0/8")),
            ("cidr('10.1.2.3/8').ip()", json!("10.1.2.3")),
            ("cidr('fd00::/64').prefixLength()", json!(64)),
            ("ip('10.0.0.1') == ip('10.0.0.1')", json!(true)),
        ] {
            assert_eq!(eval(expr, Json::Null), Ok(want), "{expr}");
        }
    }

    #[test]
    fn urls() {
        for (expr, want) in [
            (
                "url('https://example.com:80/').getHost()",
                json!("example.com:80"),
            ),
            ("url('https://[::1]:80/').getHostname()", json!("::1")),
            ("url('https://example.com:80/').getPort()", json!("80")),
            ("url('https://example.com/').getPort()", json!("")),
            ("url('https://example.com/').getScheme()", json!("https")),
            (
                "url('https://example.com/path with spaces/').getEscapedPath()",
                json!("/path%20with%20spaces/"),
            ),
            (
                "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery()",
                json!({"k1": ["a"], "k2": ["b", "c"]}),
            ),
            ("url('/absolute/path').getHost()", json!("")),
        ] {
            assert_eq!(eval(expr, Json::Null), Ok(want), "{expr}");
        }
        assert!(eval("url('relative/path')", Json::Null).is_err());
    }

    #[test]
    fn several_variables_as_admission_uses_them() {
        let program =
            compile("request.operation == 'CREATE' && object.metadata.name.startsWith('x')")
                .unwrap();
        let request = json!({"operation": "CREATE"});
        let object = json!({"metadata": {"name": "xy"}});
        assert_eq!(
            program.eval(&[("request", &request), ("object", &object)]),
            Ok(json!(true))
        );
        assert!(program.uses_variable("request"));
        assert!(!program.uses_variable("oldSelf"));
        assert_eq!(
            program.source(),
            "request.operation == 'CREATE' && object.metadata.name.startsWith('x')"
        );
    }

    #[test]
    fn results_come_back_as_json() {
        assert_eq!(
            eval("{'a': [1, 'two', 3.5, null, true]}", Json::Null),
            Ok(json!({"a": [1, "two", 3.5, null, true]}))
        );
    }
}
