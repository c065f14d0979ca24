//! A `numeric` cast to text reads as the value a client is shown: `CAST(1e2::numeric AS
//! text)` is `100`, as in Postgres, where Arrow's cast printed the storage scale of
//! unconstrained `numeric` (`100.0000000000`). [`NumericToText`] plans every cast of a
//! decimal to text (written ones and `||` coercions) as `numeric_text`, which shares
//! [`super::numeric::numeric_text`] with the wire protocol's encoder.

use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, Decimal128Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::numeric::numeric_text;

/// `numeric_text(x)`: a decimal as Postgres prints it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericText {
    signature: Signature,
}

pub fn numeric_to_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericText { signature: Signature::any(1, Volatility::Immutable) })
}

impl ScalarUDFImpl for NumericText {
    fn name(&self) -> &str {
        "numeric_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Decimal128(..)] => Ok(DataType::Utf8),
            other => Err(DataFusionError::Plan(format!("numeric_text of {other:?}"))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [argument] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("numeric_text takes one argument".into()));
        };
        let scalar = matches!(argument, ColumnarValue::Scalar(_));
        let input = argument.to_array(if scalar { 1 } else { args.number_rows })?;
        let DataType::Decimal128(_, scale) = input.data_type() else {
            return Err(DataFusionError::Internal("numeric_text of a non-decimal".into()));
        };
        let text: StringArray = input
            .as_primitive::<Decimal128Type>()
            .iter()
            .map(|v| v.map(|v| numeric_text(v, *scale)))
            .collect();
        let out: Arc<dyn Array> = Arc::new(text);
        super::columnar(out, scalar)
    }
}

/// Plans every cast of a decimal to text as `numeric_text`.
#[derive(Debug, Default)]
pub struct NumericToText;

impl AnalyzerRule for NumericToText {
    fn name(&self) -> &str {
        "weir_numeric_to_text"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_plan_expressions(plan, rewrite_expr)
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let decimal = |inner: &Expr| inner.get_type(schema).is_ok_and(|t| matches!(t, DataType::Decimal128(..)));
    match e {
        Expr::Cast(Cast { expr, field }) if decimal(&expr) => match field.data_type() {
            DataType::Utf8 => Ok(Transformed::yes(numeric_to_text().call(vec![*expr]))),
            DataType::LargeUtf8 | DataType::Utf8View => {
                Ok(Transformed::yes(numeric_to_text().call(vec![*expr]).cast_to(field.data_type(), schema)?))
            }
            _ => Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
        },
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ScalarValue;

    fn text_of(value: ScalarValue) -> String {
        let udf = numeric_to_text();
        let field = Arc::new(arrow::datatypes::Field::new("x", value.data_type(), true));
        let args = ScalarFunctionArgs {
            args: vec![ColumnarValue::Scalar(value)],
            arg_fields: vec![field],
            number_rows: 1,
            return_field: Arc::new(arrow::datatypes::Field::new("t", DataType::Utf8, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        match udf.invoke_with_args(args) {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(t)))) => t,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unconstrained_numeric_prints_without_its_storage_zeros() {
        assert_eq!(text_of(ScalarValue::Decimal128(Some(100 * 10i128.pow(10)), 38, 10)), "100");
        assert_eq!(text_of(ScalarValue::Decimal128(Some(15 * 10i128.pow(9)), 38, 10)), "1.5");
    }

    #[test]
    fn a_constrained_numeric_keeps_its_scale() {
        assert_eq!(text_of(ScalarValue::Decimal128(Some(1200), 12, 2)), "12.00");
        assert_eq!(text_of(ScalarValue::Decimal128(Some(-5), 12, 2)), "-0.05");
    }
}
