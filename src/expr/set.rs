//! Every expression of one request, or of one action of a transaction, parsed once: the plan
//! parses them when it is built, the rewrite steps edit these trees (a prefixed value, a
//! version check, a namespace filter), the retry-safety judgement reads them, and only the
//! ones a step changed are printed back into the request before it is sent. A long filter
//! no step touches keeps the client's own text.

use std::fmt;

use serde_json::{Map, Value};

use super::{
    Condition, ExprError, ExprKind, Projection, UpdateExpression, Used, parse_condition,
    parse_key_condition, parse_projection, parse_update,
};

/// Which of a unit's expressions the plan parses: all of them where a step rewrites the
/// unit's table, only the update elsewhere (the retry-safety judgement reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    All,
    UpdateOnly,
    Nothing,
}

impl Wanted {
    fn wants(self, kind: ExprKind) -> bool {
        match self {
            Self::All => true,
            Self::UpdateOnly => kind == ExprKind::Update,
            Self::Nothing => false,
        }
    }
}

/// Why a unit's expressions could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("{} must be a string", .0.field())]
    NotAString(ExprKind),
    #[error("{}", .source.message(*.kind))]
    Parse { kind: ExprKind, source: ExprError },
}

/// The parsed expressions of one unit (a request, or one action of a transaction).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpressionSet {
    pub key_condition: Option<Condition>,
    pub condition: Option<Condition>,
    pub filter: Option<Condition>,
    pub update: Option<UpdateExpression>,
    pub projection: Option<Projection>,
    /// The expressions a step changed, printed back by [`ExpressionSet::write_changed`].
    changed: Vec<ExprKind>,
}

/// Every kind, in the order a unit's expressions are read.
const KINDS: [ExprKind; 5] = [
    ExprKind::KeyCondition,
    ExprKind::Condition,
    ExprKind::Filter,
    ExprKind::Update,
    ExprKind::Projection,
];

impl ExpressionSet {
    /// Parses the `wanted` expressions among a unit's fields (`field` looks one up by name).
    pub fn parse<'v>(
        wanted: Wanted,
        field: impl Fn(&str) -> Option<&'v Value>,
    ) -> Result<Self, SetError> {
        let mut set = Self::default();
        for kind in KINDS.into_iter().filter(|k| wanted.wants(*k)) {
            let Some(value) = field(kind.field()) else {
                continue;
            };
            let text = value.as_str().ok_or(SetError::NotAString(kind))?;
            set.parse_one(kind, text)
                .map_err(|source| SetError::Parse { kind, source })?;
        }
        Ok(set)
    }

    /// [`ExpressionSet::parse`] over a decoded request or action.
    pub fn parse_map(wanted: Wanted, body: &Map<String, Value>) -> Result<Self, SetError> {
        Self::parse(wanted, |field| body.get(field))
    }

    fn parse_one(&mut self, kind: ExprKind, text: &str) -> Result<(), ExprError> {
        match kind {
            ExprKind::KeyCondition => self.key_condition = Some(parse_key_condition(text)?),
            ExprKind::Condition => self.condition = Some(parse_condition(text)?),
            ExprKind::Filter => self.filter = Some(parse_condition(text)?),
            ExprKind::Update => self.update = Some(parse_update(text)?),
            ExprKind::Projection => self.projection = Some(parse_projection(text)?),
        }
        Ok(())
    }

    /// The condition-kind expressions present, with their kind.
    pub fn conditions(&self) -> impl Iterator<Item = (ExprKind, &Condition)> {
        [
            (ExprKind::KeyCondition, &self.key_condition),
            (ExprKind::Condition, &self.condition),
            (ExprKind::Filter, &self.filter),
        ]
        .into_iter()
        .filter_map(|(kind, c)| c.as_ref().map(|c| (kind, c)))
    }

    /// [`ExpressionSet::conditions`], to edit: a step that edits one marks it
    /// [changed](ExpressionSet::mark_changed).
    pub fn conditions_mut(&mut self) -> impl Iterator<Item = (ExprKind, &mut Condition)> {
        [
            (ExprKind::KeyCondition, &mut self.key_condition),
            (ExprKind::Condition, &mut self.condition),
            (ExprKind::Filter, &mut self.filter),
        ]
        .into_iter()
        .filter_map(|(kind, c)| c.as_mut().map(|c| (kind, c)))
    }

    /// Every placeholder any of the unit's expressions uses.
    pub fn placeholders(&self) -> Used<'_> {
        let mut used = Used::default();
        for (_, condition) in self.conditions() {
            used.merge(condition.placeholders());
        }
        if let Some(update) = &self.update {
            used.merge(update.placeholders());
        }
        if let Some(projection) = &self.projection {
            used.merge(projection.placeholders());
        }
        used
    }

    pub fn mark_changed(&mut self, kind: ExprKind) {
        if !self.changed.contains(&kind) {
            self.changed.push(kind);
        }
    }

    /// Joins `check` to the condition of `kind` (`(client) AND (check)`), or makes it the
    /// condition when there is none.
    pub fn and(&mut self, kind: ExprKind, check: Condition) {
        let slot = match kind {
            ExprKind::KeyCondition => &mut self.key_condition,
            ExprKind::Filter => &mut self.filter,
            _ => &mut self.condition,
        };
        *slot = Some(match slot.take() {
            Some(client) => Condition::and(client, check),
            None => check,
        });
        self.mark_changed(kind);
    }

    /// Prints every expression a step changed into the unit's fields: what is sent.
    pub fn write_changed(&self, body: &mut Map<String, Value>) {
        for kind in &self.changed {
            let text = match kind {
                ExprKind::KeyCondition => self.key_condition.as_ref().map(print),
                ExprKind::Condition => self.condition.as_ref().map(print),
                ExprKind::Filter => self.filter.as_ref().map(print),
                ExprKind::Update => self.update.as_ref().map(print),
                ExprKind::Projection => self.projection.as_ref().map(print),
            };
            match text {
                Some(text) => body.insert(kind.field().to_owned(), Value::String(text)),
                None => body.remove(kind.field()),
            };
        }
    }
}

fn print(expression: &impl fmt::Display) -> String {
    expression.to_string()
}

/// The expressions of a whole request, arranged as the request is sent: the top-level
/// request's, or (for a TransactWriteItems, and a write the plan runs as one) each action's
/// in the order of `TransactItems`. A unit whose expressions could not be read keeps its
/// error: the step that needs the unit refuses the request with it (DynamoDB's words), and
/// a unit no step rewrites only loses its resend (an unreadable update is never resent).
#[derive(Debug, Clone, PartialEq)]
pub struct Expressions {
    pub top: Result<ExpressionSet, SetError>,
    pub actions: Vec<Result<ExpressionSet, SetError>>,
}

impl Default for Expressions {
    fn default() -> Self {
        Self {
            top: Ok(ExpressionSet::default()),
            actions: Vec::new(),
        }
    }
}

impl Expressions {
    /// The set of action `index`, or an empty one past the end (an action the plan did not
    /// see, which no step has expressions for).
    pub fn action(&self, index: usize) -> Result<&ExpressionSet, &SetError> {
        static EMPTY: ExpressionSet = ExpressionSet {
            key_condition: None,
            condition: None,
            filter: None,
            update: None,
            projection: None,
            changed: Vec::new(),
        };
        self.actions.get(index).map_or(Ok(&EMPTY), Result::as_ref)
    }

    /// Prints every changed expression into the request as it will be sent.
    pub fn write_changed(&self, body: &mut Map<String, Value>) {
        if let Ok(top) = &self.top {
            top.write_changed(body);
        }
        let actions = body.get_mut("TransactItems").and_then(Value::as_array_mut);
        for (item, set) in actions.into_iter().flatten().zip(&self.actions) {
            let (Some(item), Ok(set)) = (item.as_object_mut(), set) else {
                continue;
            };
            for action in item.values_mut().filter_map(Value::as_object_mut) {
                set.write_changed(action);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_what_is_wanted_and_refuses_what_does_not_read() {
        let request = body(&json!({
            "ConditionExpression": "attribute_exists(a)",
            "UpdateExpression": "SET b = :b",
            "FilterExpression": "c = :c",
        }));
        let all = ExpressionSet::parse_map(Wanted::All, &request).unwrap();
        assert!(all.condition.is_some() && all.update.is_some() && all.filter.is_some());
        let update = ExpressionSet::parse_map(Wanted::UpdateOnly, &request).unwrap();
        assert!(update.condition.is_none() && update.update.is_some());
        assert_eq!(
            ExpressionSet::parse_map(Wanted::Nothing, &request).unwrap(),
            ExpressionSet::default()
        );
        let broken = body(&json!({"ConditionExpression": "a = ", "UpdateExpression": 5}));
        let err = ExpressionSet::parse_map(Wanted::All, &broken).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Invalid ConditionExpression: Syntax error")
        );
        let err = ExpressionSet::parse_map(Wanted::UpdateOnly, &broken).unwrap_err();
        assert_eq!(err.to_string(), "UpdateExpression must be a string");
    }

    #[test]
    fn only_changed_expressions_are_printed_back() {
        let mut request = body(&json!({
            "ConditionExpression": "attribute_exists(a)",
            "FilterExpression": "x   =   :x",
        }));
        let mut set = ExpressionSet::parse_map(Wanted::All, &request).unwrap();
        set.and(
            ExprKind::Condition,
            parse_condition("attribute_not_exists(v)").unwrap(),
        );
        set.write_changed(&mut request);
        assert_eq!(
            request["ConditionExpression"],
            "attribute_exists(a) AND attribute_not_exists(v)"
        );
        // The client's own spelling stays where nothing changed it.
        assert_eq!(request["FilterExpression"], "x   =   :x");
        let reparsed = ExpressionSet::parse_map(Wanted::All, &request).unwrap();
        assert_eq!(reparsed.condition, set.condition);
    }

    #[test]
    fn placeholders_of_every_expression() {
        let request = body(&json!({
            "KeyConditionExpression": "#k = :k",
            "ProjectionExpression": "#p",
            "UpdateExpression": "SET #u = :u",
        }));
        let set = ExpressionSet::parse_map(Wanted::All, &request).unwrap();
        let used = set.placeholders();
        assert_eq!(used.names, ["#k", "#u", "#p"]);
        assert_eq!(used.values, [":k", ":u"]);
    }

    #[test]
    fn actions_are_printed_into_their_transact_items() {
        let mut request = body(&json!({"TransactItems": [
            {"Put": {"ConditionExpression": "a = :a"}},
            {"Update": {"UpdateExpression": "SET b = :b"}},
        ]}));
        let items = request["TransactItems"].as_array().unwrap().clone();
        let sets = items
            .iter()
            .map(|item| {
                let action = item.as_object().unwrap().values().next().unwrap();
                ExpressionSet::parse_map(Wanted::All, action.as_object().unwrap())
            })
            .collect();
        let mut expressions = Expressions {
            top: Ok(ExpressionSet::default()),
            actions: sets,
        };
        if let Ok(set) = &mut expressions.actions[1] {
            set.and(ExprKind::Condition, parse_condition("c = :c").unwrap());
        }
        expressions.write_changed(&mut request);
        assert_eq!(
            request["TransactItems"][0]["Put"]["ConditionExpression"],
            "a = :a"
        );
        assert_eq!(
            request["TransactItems"][1]["Update"]["ConditionExpression"],
            "c = :c"
        );
        assert!(expressions.action(7).is_ok_and(|s| s.update.is_none()));
    }
}
