//! `#name` and `:value` placeholders: which ones an expression uses, whether the request
//! defines them (and no others) as DynamoDB demands, and fresh ones for a rewrite to add
//! that can never collide with the client's.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::ExprError;
use super::condition::{Condition, Operand};
use super::path::{Path, PathElement};
use super::projection::Projection;
use super::update::{SetOperand, SetValue, UpdateAction, UpdateExpression};

/// The placeholders some expressions use, each once, in the order first written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Used<'a> {
    /// `#name`s, with the `#`.
    pub names: Vec<&'a str>,
    /// `:value`s, with the `:`.
    pub values: Vec<&'a str>,
}

impl<'a> Used<'a> {
    /// Adds another expression's placeholders: a request's expressions share its maps.
    pub fn merge(&mut self, other: Used<'a>) {
        for name in other.names {
            self.name(name);
        }
        for value in other.values {
            self.value(value);
        }
    }

    /// Refuses the first placeholder the request's `ExpressionAttributeNames` or
    /// `ExpressionAttributeValues` does not define (names first, as DynamoDB resolves the
    /// paths before the values).
    pub fn check_defined(
        &self,
        names: Option<&Map<String, Value>>,
        values: Option<&Map<String, Value>>,
    ) -> Result<(), ExprError> {
        let defined =
            |map: Option<&Map<String, Value>>, key: &str| map.is_some_and(|m| m.contains_key(key));
        if let Some(name) = self.names.iter().find(|n| !defined(names, n)) {
            return Err(ExprError::UndefinedName {
                name: (*name).to_owned(),
            });
        }
        if let Some(value) = self.values.iter().find(|v| !defined(values, v)) {
            return Err(ExprError::UndefinedValue {
                name: (*value).to_owned(),
            });
        }
        Ok(())
    }

    /// Refuses map keys none of the request's expressions use, as DynamoDB does: merge the
    /// placeholders of every expression of the request first. A rewrite that renames a
    /// client's `:v` away must drop `:v` if nothing else uses it.
    pub fn check_all_used(
        &self,
        names: Option<&Map<String, Value>>,
        values: Option<&Map<String, Value>>,
    ) -> Result<(), ExprError> {
        let unused = |map: Option<&Map<String, Value>>, used: &[&str]| -> Vec<String> {
            map.into_iter()
                .flat_map(Map::keys)
                .filter(|k| !used.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        let names = unused(names, &self.names);
        if !names.is_empty() {
            return Err(ExprError::UnusedNames { names });
        }
        let values = unused(values, &self.values);
        if !values.is_empty() {
            return Err(ExprError::UnusedValues { values });
        }
        Ok(())
    }

    fn name(&mut self, name: &'a str) {
        if !self.names.contains(&name) {
            self.names.push(name);
        }
    }

    fn value(&mut self, value: &'a str) {
        if !self.values.contains(&value) {
            self.values.push(value);
        }
    }

    fn path(&mut self, path: &'a Path) {
        for element in &path.0 {
            if let PathElement::Name(name) = element {
                self.name(name);
            }
        }
    }

    fn operand(&mut self, operand: &'a Operand) {
        match operand {
            Operand::Path(path) | Operand::Size(path) => self.path(path),
            Operand::Value(value) => self.value(value),
        }
    }

    fn condition(&mut self, condition: &'a Condition) {
        match condition {
            Condition::Compare(a, _, b)
            | Condition::BeginsWith(a, b)
            | Condition::Contains(a, b) => {
                self.operand(a);
                self.operand(b);
            }
            Condition::Between(a, low, high) => {
                for operand in [a, low, high] {
                    self.operand(operand);
                }
            }
            Condition::In(a, list) => {
                self.operand(a);
                for operand in list {
                    self.operand(operand);
                }
            }
            Condition::AttributeExists(path) | Condition::AttributeNotExists(path) => {
                self.path(path);
            }
            Condition::AttributeType(path, t) => {
                self.path(path);
                self.operand(t);
            }
            Condition::Not(inner) => self.condition(inner),
            Condition::And(operands) | Condition::Or(operands) => {
                for operand in operands {
                    self.condition(operand);
                }
            }
        }
    }

    fn set_operand(&mut self, operand: &'a SetOperand) {
        match operand {
            SetOperand::Path(path) => self.path(path),
            SetOperand::Value(value) => self.value(value),
            SetOperand::IfNotExists(path, fallback) => {
                self.path(path);
                self.set_operand(fallback);
            }
            SetOperand::ListAppend(a, b) => {
                self.set_operand(a);
                self.set_operand(b);
            }
        }
    }
}

impl Condition {
    /// The placeholders this condition uses.
    pub fn placeholders(&self) -> Used<'_> {
        let mut used = Used::default();
        used.condition(self);
        used
    }
}

impl UpdateExpression {
    /// The placeholders this update uses.
    pub fn placeholders(&self) -> Used<'_> {
        let mut used = Used::default();
        for action in &self.actions {
            match action {
                UpdateAction::Set(path, value) => {
                    used.path(path);
                    match value {
                        SetValue::Operand(o) => used.set_operand(o),
                        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                            used.set_operand(a);
                            used.set_operand(b);
                        }
                    }
                }
                UpdateAction::Remove(path) => used.path(path),
                UpdateAction::Add(path, value) | UpdateAction::Delete(path, value) => {
                    used.path(path);
                    used.value(value);
                }
            }
        }
        used
    }
}

impl Projection {
    /// The placeholders this projection uses (names only).
    pub fn placeholders(&self) -> Used<'_> {
        let mut used = Used::default();
        for path in &self.0 {
            used.path(path);
        }
        used
    }
}

/// Hands out `#gs<n>` and `:gs<n>` placeholders that neither the request's maps nor its
/// expressions use, so a rewrite can add a name or a value without changing the meaning of
/// anything the client wrote.
#[derive(Debug, Clone, Default)]
pub struct PlaceholderAllocator {
    taken: HashSet<String>,
    next_name: u32,
    next_value: u32,
}

impl PlaceholderAllocator {
    /// The prefix after `#` or `:`: letters only, so the placeholders are valid tokens.
    pub const PREFIX: &'static str = "gs";

    /// An allocator that avoids every key of the request's `ExpressionAttributeNames` and
    /// `ExpressionAttributeValues`.
    pub fn new(names: Option<&Map<String, Value>>, values: Option<&Map<String, Value>>) -> Self {
        let taken = names
            .into_iter()
            .chain(values)
            .flat_map(Map::keys)
            .filter(|p| Self::may_collide(p))
            .cloned()
            .collect();
        Self {
            taken,
            ..Self::default()
        }
    }

    /// Also avoids the placeholders expressions use: one used but left undefined must stay
    /// an error, not come to mean the value a rewrite adds.
    pub fn avoid(&mut self, used: &Used<'_>) {
        let all = used.names.iter().chain(&used.values);
        self.taken.extend(
            all.filter(|p| Self::may_collide(p))
                .map(|p| (*p).to_owned()),
        );
    }

    /// Whether `placeholder` could equal one this hands out (`#gs<n>`, `:gs<n>`). Only those
    /// are kept: copying every name of a request with a long projection into the set was
    /// most of what an allocator cost.
    fn may_collide(placeholder: &str) -> bool {
        placeholder
            .get(1..)
            .is_some_and(|rest| rest.starts_with(Self::PREFIX))
    }

    /// A fresh `#name`.
    pub fn name(&mut self) -> String {
        Self::fresh(&mut self.taken, &mut self.next_name, '#')
    }

    /// A fresh `:value`.
    pub fn value(&mut self) -> String {
        Self::fresh(&mut self.taken, &mut self.next_value, ':')
    }

    fn fresh(taken: &mut HashSet<String>, next: &mut u32, sigil: char) -> String {
        loop {
            let candidate = format!("{sigil}{}{next}", Self::PREFIX);
            *next = next.wrapping_add(1);
            if taken.insert(candidate.clone()) {
                return candidate;
            }
        }
    }
}

#[cfg(test)]
mod tests;
