//! Kubernetes' CEL quantity library: `quantity('1Gi')` and its methods
//! `isGreaterThan`, `isLessThan`, `compareTo`, `add`, `sub`, `sign`,
//! `isInteger`, `asInteger`, `asApproximateFloat`. Amounts are compared in
//! milli-units (a quantity below a milli-unit rounds up to one).

use std::sync::Arc;

use ::cel::extractors::This;
use ::cel::objects::Opaque;
use ::cel::{Context, ExecutionError, Value};

/// A parsed quantity.
#[derive(Debug, PartialEq, Eq)]
struct Quantity {
    milli: i128,
}

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Quantity"
    }

    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.text()))
    }
}

impl Quantity {
    fn text(&self) -> String {
        if self.milli % 1000 == 0 {
            (self.milli / 1000).to_string()
        } else {
            format!("{}m", self.milli)
        }
    }
}

fn err(function: &str, message: &str) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn of(function: &str, v: &Arc<dyn Opaque>) -> Result<i128, ExecutionError> {
    v.downcast_ref::<Quantity>()
        .map(|q| q.milli)
        .ok_or_else(|| err(function, "expected a quantity"))
}

fn new(milli: i128) -> Arc<dyn Opaque> {
    Arc::new(Quantity { milli })
}

fn quantity(s: Arc<String>) -> Result<Arc<dyn Opaque>, ExecutionError> {
    ferrokube_api::quantity::parse_milli(&s)
        .map(new)
        .ok_or_else(|| err("quantity", "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
}

fn operand(function: &str, v: &Value) -> Result<i128, ExecutionError> {
    match v {
        Value::Int(i) => Ok(i128::from(*i) * 1000),
        Value::Opaque(o) => of(function, o),
        _ => Err(err(function, "expected a quantity or an int")),
    }
}

fn is_greater_than(
    This(a): This<Arc<dyn Opaque>>,
    b: Arc<dyn Opaque>,
) -> Result<bool, ExecutionError> {
    Ok(of("isGreaterThan", &a)? > of("isGreaterThan", &b)?)
}

fn is_less_than(
    This(a): This<Arc<dyn Opaque>>,
    b: Arc<dyn Opaque>,
) -> Result<bool, ExecutionError> {
    Ok(of("isLessThan", &a)? < of("isLessThan", &b)?)
}

fn compare_to(This(a): This<Arc<dyn Opaque>>, b: Arc<dyn Opaque>) -> Result<i64, ExecutionError> {
    Ok(match of("compareTo", &a)?.cmp(&of("compareTo", &b)?) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })
}

fn add(This(a): This<Arc<dyn Opaque>>, b: Value) -> Result<Arc<dyn Opaque>, ExecutionError> {
    of("add", &a)?
        .checked_add(operand("add", &b)?)
        .map(new)
        .ok_or_else(|| err("add", "quantity overflow"))
}

fn sub(This(a): This<Arc<dyn Opaque>>, b: Value) -> Result<Arc<dyn Opaque>, ExecutionError> {
    of("sub", &a)?
        .checked_sub(operand("sub", &b)?)
        .map(new)
        .ok_or_else(|| err("sub", "quantity overflow"))
}

fn sign(This(a): This<Arc<dyn Opaque>>) -> Result<i64, ExecutionError> {
    Ok(of("sign", &a)?.signum() as i64)
}

fn is_integer(This(a): This<Arc<dyn Opaque>>) -> Result<bool, ExecutionError> {
    let m = of("isInteger", &a)?;
    Ok(m % 1000 == 0 && i64::try_from(m / 1000).is_ok())
}

fn as_integer(This(a): This<Arc<dyn Opaque>>) -> Result<i64, ExecutionError> {
    let m = of("asInteger", &a)?;
    if m % 1000 != 0 {
        return Err(err("asInteger", "cannot convert value to integer"));
    }
    i64::try_from(m / 1000).map_err(|_| err("asInteger", "cannot convert value to integer"))
}

fn as_approximate_float(This(a): This<Arc<dyn Opaque>>) -> Result<f64, ExecutionError> {
    Ok(of("asApproximateFloat", &a)? as f64 / 1000.0)
}

/// Adds the library's functions to `ctx`.
pub(crate) fn add_to(ctx: &mut Context<'_, '_>) -> Result<(), ::cel::DeclarationError> {
    ctx.add_function("quantity", quantity)?;
    ctx.add_function("isGreaterThan", is_greater_than)?;
    ctx.add_function("isLessThan", is_less_than)?;
    ctx.add_function("compareTo", compare_to)?;
    ctx.add_function("add", add)?;
    ctx.add_function("sub", sub)?;
    ctx.add_function("sign", sign)?;
    ctx.add_function("isInteger", is_integer)?;
    ctx.add_function("asInteger", as_integer)?;
    ctx.add_function("asApproximateFloat", as_approximate_float)?;
    Ok(())
}
