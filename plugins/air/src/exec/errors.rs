//! Execution errors with the reference's numeric codes (SPEC §1.5).

use serde_json::Value as JValue;

use crate::trace::TraceError;
use crate::value::LambdaError;

/// Errors an `xor` can catch (codes 10000..).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CatchableError {
    /// The service answered with ret_code ≠ 0 or a result that is not JSON.
    #[error("Local service error, ret_code is {0}, error message is '{1}'")]
    LocalServiceError(i32, String),
    /// `match` on different values.
    #[error("compared values do not match")]
    MatchValuesNotEqual,
    /// `mismatch` on equal values.
    #[error("compared values do not mismatch")]
    MismatchValuesEqual,
    /// A variable that does not exist (normally turned into a join).
    #[error("variable with name '{0}' wasn't defined during script execution")]
    VariableNotFound(String),
    /// A value of an unexpected JSON type.
    #[error(
        "expected JValue type '{expected_value_type}' for the variable `{variable_name}`, but got '{actual_value}'"
    )]
    IncompatibleJValueType {
        /// Variable.
        variable_name: String,
        /// Its value.
        actual_value: JValue,
        /// Expected type.
        expected_value_type: &'static str,
    },
    /// Fold over something that is not an array.
    #[error("expression '{1}' returned non-array value '{0}' for fold iterable")]
    FoldIteratesOverNonArray(JValue, String),
    /// `fail` with a user error object.
    #[error("fail with '{0}' is used without corresponding xor")]
    UserError(JValue),
    /// Lambda applied to a value that does not fit.
    #[error(transparent)]
    Lambda(#[from] LambdaError),
    /// `fail` with something that is not an error object.
    #[error(transparent)]
    InvalidErrorObject(#[from] ErrorObjectError),
    /// A scalar cleared by `new` and read before being set.
    #[error("variable with name '{0}' was cleared by new and then wasn't set")]
    VariableWasNotInitializedAfterNew(String),
    /// `.length` on a non-array.
    #[error("the length functor could applied only to an array-like value, but it's applied to '{0}'")]
    LengthFunctorAppliedToNotArray(JValue),
    /// A triplet part that is not a string.
    #[error("call cannot resolve non-String triplet variable part `{variable_name}` with value '{actual_value}'")]
    NonStringValueInTripletResolution {
        /// Variable.
        variable_name: String,
        /// Its value.
        actual_value: JValue,
    },
    /// A stream map key that is neither a string nor an integer.
    #[error("unsupported type for {0} map's key")]
    StreamMapKey(String),
    /// `(fail :error:)` / `(fail %last_error%)`: the original error raised again.
    #[error("{message}")]
    Rethrown {
        /// The original code.
        code: i64,
        /// The original message.
        message: String,
    },
}

impl CatchableError {
    /// The numeric code.
    pub fn code(&self) -> i64 {
        match self {
            CatchableError::LocalServiceError(..) => 10000,
            CatchableError::MatchValuesNotEqual => 10001,
            CatchableError::MismatchValuesEqual => 10002,
            CatchableError::VariableNotFound(_) => 10003,
            CatchableError::IncompatibleJValueType { .. } => 10004,
            CatchableError::FoldIteratesOverNonArray(..) => 10005,
            CatchableError::UserError(_) => 10006,
            CatchableError::Lambda(_) => 10007,
            CatchableError::InvalidErrorObject(_) => 10008,
            CatchableError::VariableWasNotInitializedAfterNew(_) => 10009,
            CatchableError::LengthFunctorAppliedToNotArray(_) => 10010,
            CatchableError::NonStringValueInTripletResolution { .. } => 10011,
            CatchableError::StreamMapKey(_) => 10012,
            CatchableError::Rethrown { code, .. } => *code,
        }
    }

    /// Whether the error updates `%last_error%` (match/mismatch do not).
    pub fn affects_last_error(&self) -> bool {
        !matches!(self, CatchableError::MatchValuesNotEqual | CatchableError::MismatchValuesEqual)
    }
}

/// Why a value is not an error object for `fail`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorObjectError {
    /// Not an object.
    #[error("scalar should have an object type to be converted into error object, but '{0}' doesn't have")]
    ScalarMustBeObject(JValue),
    /// A field is missing.
    #[error("scalar '{scalar}' must have field with name '{field_name}'")]
    ScalarMustContainField {
        /// The value.
        scalar: JValue,
        /// Field.
        field_name: &'static str,
    },
    /// A field has the wrong type.
    #[error("{field_name} of scalar '{scalar}' must have {expected_type} type")]
    ScalarFieldIsWrongType {
        /// The value.
        scalar: JValue,
        /// Field.
        field_name: &'static str,
        /// Expected type.
        expected_type: &'static str,
    },
    /// `error_code` is 0.
    #[error("error code must be non-zero, but it is zero")]
    ErrorCodeMustBeNonZero,
}

/// Errors no `xor` catches (codes 20000..); the run returns the previous data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UncatchableError {
    /// The traces do not fit the script or each other.
    #[error("on instruction '{instruction}' trace handler encountered an error: {error}")]
    Trace {
        /// The instruction.
        instruction: String,
        /// What went wrong.
        error: TraceError,
    },
    /// `next` without an active fold for the iterator.
    #[error("fold state not found for iterator '{0}'")]
    FoldStateNotFound(String),
    /// A call output or ap destination named like an active iterator.
    #[error("variable '{0}' can't be shadowed, because it is an iterable")]
    IterableShadowing(String),
    /// The stored call result kind (scalar/stream/unused) differs from the instruction.
    #[error("call result in the data does not match the instruction's output: {0}")]
    CallResultKindMismatch(String),
    /// A global scalar set twice.
    #[error("trying to shadow variable '{0}', but shadowing is allowed only inside fold blocks")]
    ShadowingIsNotAllowed(String),
    /// A stream past its size limit.
    #[error("stream '{name}' exceeded its limit of {limit} values")]
    StreamSizeLimitExceeded {
        /// Stream name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// Stored call/canon parameters differ from the recomputed ones.
    #[error("{instruction}: stored {what} differs from the recomputed one")]
    InstructionParametersMismatch {
        /// The instruction.
        instruction: String,
        /// Argument hash or tetraplet.
        what: &'static str,
    },
    /// A stored value is not valid JSON.
    #[error("stored value is not valid JSON: {0}")]
    MalformedStoredValue(String),
    /// An execution limit (steps, stack frames, trace length) was hit.
    #[error("execution limit exceeded: {0}")]
    LimitExceeded(String),
}

impl UncatchableError {
    /// The numeric code.
    pub fn code(&self) -> i64 {
        match self {
            UncatchableError::Trace { .. } => 20000,
            UncatchableError::FoldStateNotFound(_) => 20003,
            UncatchableError::IterableShadowing(_) => 20004,
            UncatchableError::CallResultKindMismatch(_) => 20006,
            UncatchableError::ShadowingIsNotAllowed(_) => 20007,
            UncatchableError::StreamSizeLimitExceeded { .. } => 20013,
            UncatchableError::InstructionParametersMismatch { .. } => 20017,
            UncatchableError::MalformedStoredValue(_) => 20019,
            UncatchableError::LimitExceeded(_) => 20021,
        }
    }
}

/// An error that stops an instruction (boxed: results travel through every instruction, and an
/// `Ok` is then two words).
#[derive(Debug, Clone, PartialEq)]
pub enum ExecError {
    /// Caught by `xor`, absorbed by `par`, swallowed by a stream fold's generation.
    Catchable(Box<CatchableError>),
    /// Ends the run.
    Uncatchable(Box<UncatchableError>),
}

impl ExecError {
    /// Whether an `xor` can catch it.
    pub fn is_catchable(&self) -> bool {
        matches!(self, ExecError::Catchable(_))
    }

    /// The numeric code.
    pub fn code(&self) -> i64 {
        match self {
            ExecError::Catchable(e) => e.code(),
            ExecError::Uncatchable(e) => e.code(),
        }
    }

    /// The message.
    pub fn message(&self) -> String {
        match self {
            ExecError::Catchable(e) => e.to_string(),
            ExecError::Uncatchable(e) => e.to_string(),
        }
    }
}

impl From<UncatchableError> for ExecError {
    fn from(e: UncatchableError) -> Self {
        ExecError::Uncatchable(Box::new(e))
    }
}

impl From<CatchableError> for ExecError {
    fn from(e: CatchableError) -> Self {
        ExecError::Catchable(Box::new(e))
    }
}
