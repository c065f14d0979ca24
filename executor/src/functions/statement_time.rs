//! `now()`, `current_timestamp` and `localtimestamp` with Postgres' types.
//!
//! In Postgres `now()` and `current_timestamp` are `timestamp with time zone` and
//! `localtimestamp` is `timestamp` (the same instant read in the session's time zone).
//! DataFusion's `now()` is a `timestamp` in nanoseconds unless a session time zone is
//! configured, which would change how DataFusion reads every `timestamp with time zone`
//! literal and cast, and it has no `localtimestamp`. These replace it: the instant the
//! statement started, in microseconds as every Weir timestamp, tagged UTC (`+00:00`, how
//! Weir stores `timestamptz`; the session's `TimeZone` is always UTC) or not.
//!
//! Like DataFusion's, they are folded to a constant when the statement is planned, so every
//! call in one statement gives the same value (a materialized view keeps the value of the
//! moment it was created, as before).

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{internal_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Postgres' time zone name for the UTC offset Weir tags `timestamptz` values with.
const UTC: &str = "+00:00";

#[derive(Debug, PartialEq, Eq, Hash)]
struct StatementTime {
    /// `localtimestamp`: without a time zone.
    local: bool,
    aliases: Vec<String>,
    signature: Signature,
}

/// `now()`, also named `current_timestamp` and `transaction_timestamp`:
/// `timestamp with time zone`.
pub fn now() -> ScalarUDF {
    ScalarUDF::new_from_impl(StatementTime {
        local: false,
        aliases: vec!["current_timestamp".into(), "transaction_timestamp".into()],
        signature: Signature::nullary(Volatility::Stable),
    })
}

/// `localtimestamp`: `timestamp` (without time zone).
pub fn localtimestamp() -> ScalarUDF {
    ScalarUDF::new_from_impl(StatementTime {
        local: true,
        aliases: vec![],
        signature: Signature::nullary(Volatility::Stable),
    })
}

impl StatementTime {
    fn time_zone(&self) -> Option<std::sync::Arc<str>> {
        (!self.local).then(|| UTC.into())
    }
}

impl ScalarUDFImpl for StatementTime {
    fn name(&self) -> &str {
        match self.local {
            true => "localtimestamp",
            false => "now",
        }
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, self.time_zone()))
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!("{}() is folded to a constant when the statement is planned", self.name())
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let Some(start) = info.query_execution_start_time() else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            ScalarValue::TimestampMicrosecond(Some(start.timestamp_micros()), self.time_zone()),
            None,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_has_a_time_zone_and_localtimestamp_none() {
        let utc = Some(std::sync::Arc::<str>::from(UTC));
        assert_eq!(now().return_type(&[]).ok(), Some(DataType::Timestamp(TimeUnit::Microsecond, utc)));
        assert_eq!(
            localtimestamp().return_type(&[]).ok(),
            Some(DataType::Timestamp(TimeUnit::Microsecond, None))
        );
        assert!(now().aliases().contains(&"current_timestamp".to_string()));
    }
}
