//! Why an expression was refused, and the words DynamoDB uses to say so. The sidecar refuses
//! an expression only where DynamoDB would, so the message a client reads is the one it
//! would have read from DynamoDB (`Invalid ConditionExpression: Syntax error; ...`).

use std::fmt;

/// Which request field an expression came from: DynamoDB names it in every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExprKind {
    Condition,
    Filter,
    KeyCondition,
    Projection,
    Update,
}

impl ExprKind {
    /// The request field, as DynamoDB spells it (`KeyConditionExpression`).
    pub fn field(self) -> &'static str {
        match self {
            Self::Condition => "ConditionExpression",
            Self::Filter => "FilterExpression",
            Self::KeyCondition => "KeyConditionExpression",
            Self::Projection => "ProjectionExpression",
            Self::Update => "UpdateExpression",
        }
    }
}

/// The function families, for the "not allowed here" errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misuse {
    /// A condition function (`size`, `contains`, ...) in an update expression.
    InUpdate,
    /// An update function (`if_not_exists`, `list_append`) in a condition.
    InCondition,
    /// `size(a)` alone as a condition, or `attribute_exists(a)` as an operand.
    ThisWay,
}

/// Why an expression could not be parsed. Offsets (`at`) are bytes into the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprError {
    /// Nothing but whitespace.
    Empty,
    /// Longer than DynamoDB's 4 KB ([`super::MAX_EXPRESSION_BYTES`]).
    TooLong {
        size: usize,
    },
    /// A token the grammar does not allow here; `token` is `<EOF>` at the end, and `near`
    /// the text around it, as DynamoDB quotes them.
    Syntax {
        token: String,
        near: String,
        at: usize,
    },
    /// Parentheses, `NOT`s and function calls nested deeper than [`super::MAX_NESTING`]:
    /// our bound, not DynamoDB's, so that hostile input cannot exhaust the stack.
    TooDeep {
        at: usize,
    },
    /// A bare attribute name that DynamoDB reserves (written as in the expression).
    Reserved {
        word: String,
        at: usize,
    },
    /// A document path of more than [`super::MAX_PATH_DEPTH`] elements.
    PathTooDeep {
        levels: usize,
        at: usize,
    },
    /// A list index above `i32::MAX`, as written.
    Index {
        index: String,
        at: usize,
    },
    /// `((...))`: DynamoDB refuses a parenthesized group directly inside another.
    RedundantParentheses {
        at: usize,
    },
    UnknownFunction {
        name: String,
        at: usize,
    },
    FunctionNotAllowed {
        name: String,
        misuse: Misuse,
        at: usize,
    },
    OperandCount {
        function: String,
        count: usize,
        at: usize,
    },
    /// A function whose first operand must be a document path got something else.
    NeedsPath {
        function: String,
        at: usize,
    },
    /// `IN` with more than [`super::MAX_IN_OPERANDS`] operands.
    TooManyInOperands {
        count: usize,
        at: usize,
    },
    /// An update clause (`SET`, `REMOVE`, `ADD`, `DELETE`) written twice.
    DuplicateSection {
        section: &'static str,
        at: usize,
    },
    /// A `#name` missing from `ExpressionAttributeNames`.
    UndefinedName {
        name: String,
    },
    /// A `:value` missing from `ExpressionAttributeValues`.
    UndefinedValue {
        name: String,
    },
    /// `ExpressionAttributeNames` keys no expression of the request uses.
    UnusedNames {
        names: Vec<String>,
    },
    /// `ExpressionAttributeValues` keys no expression of the request uses.
    UnusedValues {
        values: Vec<String>,
    },
}

impl ExprError {
    /// The message of DynamoDB's `ValidationException` for this error in a `kind` field,
    /// e.g. `Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "a"`. Unused
    /// placeholders concern the whole request, so their message names no field, as
    /// DynamoDB's does not.
    pub fn message(&self, kind: ExprKind) -> String {
        match self {
            Self::UnusedNames { .. } | Self::UnusedValues { .. } => self.detail(),
            _ => format!("Invalid {}: {}", kind.field(), self.detail()),
        }
    }

    /// Where in the expression the error lies, when the parser knows.
    pub fn at(&self) -> Option<usize> {
        match self {
            Self::Syntax { at, .. }
            | Self::TooDeep { at }
            | Self::Reserved { at, .. }
            | Self::PathTooDeep { at, .. }
            | Self::Index { at, .. }
            | Self::RedundantParentheses { at }
            | Self::UnknownFunction { at, .. }
            | Self::FunctionNotAllowed { at, .. }
            | Self::OperandCount { at, .. }
            | Self::NeedsPath { at, .. }
            | Self::TooManyInOperands { at, .. }
            | Self::DuplicateSection { at, .. } => Some(*at),
            Self::Empty
            | Self::TooLong { .. }
            | Self::UndefinedName { .. }
            | Self::UndefinedValue { .. }
            | Self::UnusedNames { .. }
            | Self::UnusedValues { .. } => None,
        }
    }

    /// The message without the field: DynamoDB's wording after `Invalid <field>: `.
    fn detail(&self) -> String {
        self.grammar_detail()
            .or_else(|| self.function_detail())
            .or_else(|| self.placeholder_detail())
            .unwrap_or_default()
    }

    fn grammar_detail(&self) -> Option<String> {
        Some(match self {
            Self::Empty => "The expression can not be empty;".into(),
            Self::TooLong { size } => format!(
                "Expression size has exceeded the maximum allowed size; expression size: {size}"
            ),
            Self::Syntax { token, near, .. } => {
                format!("Syntax error; token: \"{token}\", near: \"{near}\"")
            }
            Self::TooDeep { .. } => format!(
                "The expression has too many nesting levels; maximum nesting levels: {}",
                super::MAX_NESTING
            ),
            Self::Reserved { word, .. } => {
                format!("Attribute name is a reserved keyword; reserved keyword: {word}")
            }
            Self::PathTooDeep { levels, .. } => {
                format!("The document path has too many nesting levels; nesting levels: {levels}")
            }
            Self::Index { index, .. } => {
                format!("List index is not within the allowable range; index: [{index}]")
            }
            Self::RedundantParentheses { .. } => "The expression has redundant parentheses;".into(),
            Self::DuplicateSection { section, .. } => {
                format!("The \"{section}\" section can only be used once in an update expression;")
            }
            _ => return None,
        })
    }

    fn function_detail(&self) -> Option<String> {
        Some(match self {
            Self::UnknownFunction { name, .. } => {
                format!("Invalid function name; function: {name}")
            }
            Self::FunctionNotAllowed { name, misuse, .. } => {
                let place = match misuse {
                    Misuse::InUpdate => "in an update expression",
                    Misuse::InCondition => "in a condition expression",
                    Misuse::ThisWay => "to be used this way in an expression",
                };
                format!("The function is not allowed {place}; function: {name}")
            }
            Self::OperandCount {
                function, count, ..
            } => format!(
                "Incorrect number of operands for operator or function; \
                 operator or function: {function}, number of operands: {count}"
            ),
            Self::NeedsPath { function, .. } => format!(
                "Operator or function requires a document path; operator or function: {function}"
            ),
            Self::TooManyInOperands { count, .. } => format!(
                "Too many operands for the operator or function; \
                 operator or function: IN, number of operands: {count}"
            ),
            _ => return None,
        })
    }

    fn placeholder_detail(&self) -> Option<String> {
        Some(match self {
            Self::UndefinedName { name } => format!(
                "An expression attribute name used in the document path is not defined; \
                 attribute name: {name}"
            ),
            Self::UndefinedValue { name } => format!(
                "An expression attribute value used in expression is not defined; \
                 attribute value: {name}"
            ),
            Self::UnusedNames { names } => format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            ),
            Self::UnusedValues { values } => format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            ),
            _ => return None,
        })
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail())?;
        match self.at() {
            Some(at) => write!(f, " (at byte {at})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ExprError {}
