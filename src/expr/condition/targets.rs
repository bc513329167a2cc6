//! What a request rewrite asks of a condition about one attribute, the *target* (a key
//! attribute whose values get a region prefix, a version attribute): which `:value`s are
//! compared with it, so they can be renamed and rewritten, and whether it appears where no
//! value rewrite can follow it, so the rewrite can refuse.
//!
//! A value is *compared with* the target in `target op :v` and `:v op target` for every
//! comparator, in `target BETWEEN :lo AND :hi`, in `target IN (:a, :b)`, and as the second
//! operand of `begins_with(target, :v)`: each answers the same for `<prefix><a>` and
//! `<prefix><b>` as for `a` and `b`. A value is *sought in* the target in
//! `contains(target, :v)`, which a prefix can change (the value may match inside it), so
//! the rewrite decides per value.

use super::{Condition, Operand};
use crate::expr::path::Path;

impl Condition {
    /// `(left) AND (right)`: an `AND` chain on either side is joined into one chain (the
    /// same condition, printed without parentheses); printing adds those an `OR` needs.
    pub fn and(left: Condition, right: Condition) -> Condition {
        let mut operands = Vec::new();
        for side in [left, right] {
            match side {
                Condition::And(chain) => operands.extend(chain),
                other => operands.push(other),
            }
        }
        Condition::And(operands)
    }

    /// The `:value` placeholders compared with a target path (see the module docs), in the
    /// order written, as mutable names so the caller can rename those occurrences only,
    /// e.g. to split a `:v` used both for the key and for another attribute.
    pub fn values_compared_with_mut(
        &mut self,
        is_target: impl Fn(&Path) -> bool,
    ) -> Vec<&mut String> {
        let mut found = Vec::new();
        collect_mut(self, &is_target, &mut found);
        found
    }

    /// [`Self::values_compared_with_mut`], reading.
    pub fn values_compared_with(&self, is_target: impl Fn(&Path) -> bool) -> Vec<&str> {
        let mut found = Vec::new();
        collect(self, &is_target, &mut found);
        found
    }

    /// The `:value` placeholders sought in a target path, `contains(target, :v)`, in the
    /// order written.
    pub fn values_sought_in(&self, is_target: impl Fn(&Path) -> bool) -> Vec<&str> {
        let mut found = Vec::new();
        sought(self, &is_target, &mut found);
        found
    }

    /// Whether a target path appears other than with `:value`s as above or tested by
    /// `attribute_exists`, `attribute_not_exists` or `attribute_type(target, :t)` (which
    /// read its presence or its type, never its value): in `size(target)`, compared with a
    /// path or a `size`, as an `IN` list member or `BETWEEN` bound, or as `begins_with`'s
    /// or `contains`'s second operand. A rewrite that changes the target's stored value
    /// (not its type) cannot follow it there, and should refuse the request.
    pub fn target_used_elsewhere(&self, is_target: impl Fn(&Path) -> bool) -> bool {
        elsewhere(self, &is_target)
    }
}

fn is_path(operand: &Operand, is_target: &dyn Fn(&Path) -> bool) -> bool {
    matches!(operand, Operand::Path(path) if is_target(path))
}

/// Whether the operand names the target in any way (`target`, `size(target)`).
fn mentions(operand: &Operand, is_target: &dyn Fn(&Path) -> bool) -> bool {
    matches!(operand, Operand::Path(path) | Operand::Size(path) if is_target(path))
}

/// Whether `subject` is the target itself and everything it meets is a `:value`.
fn compared(subject: &Operand, others: &[&Operand], is_target: &dyn Fn(&Path) -> bool) -> bool {
    is_path(subject, is_target) && others.iter().all(|o| matches!(o, Operand::Value(_)))
}

fn value_mut(operand: &mut Operand) -> Option<&mut String> {
    match operand {
        Operand::Value(value) => Some(value),
        _ => None,
    }
}

fn value(operand: &Operand) -> Option<&str> {
    match operand {
        Operand::Value(value) => Some(value),
        _ => None,
    }
}

fn collect_mut<'a>(
    condition: &'a mut Condition,
    is_target: &dyn Fn(&Path) -> bool,
    found: &mut Vec<&'a mut String>,
) {
    match condition {
        Condition::Compare(left, _, right) => {
            if is_path(left, is_target) {
                found.extend(value_mut(right));
            } else if is_path(right, is_target) {
                found.extend(value_mut(left));
            }
        }
        Condition::Between(operand, low, high) if is_path(operand, is_target) => {
            found.extend(value_mut(low));
            found.extend(value_mut(high));
        }
        Condition::In(operand, list) if is_path(operand, is_target) => {
            found.extend(list.iter_mut().filter_map(value_mut));
        }
        Condition::BeginsWith(subject, operand) if is_path(subject, is_target) => {
            found.extend(value_mut(operand));
        }
        Condition::Not(inner) => collect_mut(inner, is_target, found),
        Condition::And(operands) | Condition::Or(operands) => {
            for operand in operands {
                collect_mut(operand, is_target, found);
            }
        }
        _ => {}
    }
}

fn collect<'a>(
    condition: &'a Condition,
    is_target: &dyn Fn(&Path) -> bool,
    found: &mut Vec<&'a str>,
) {
    match condition {
        Condition::Compare(left, _, right) => {
            if is_path(left, is_target) {
                found.extend(value(right));
            } else if is_path(right, is_target) {
                found.extend(value(left));
            }
        }
        Condition::Between(operand, low, high) if is_path(operand, is_target) => {
            found.extend(value(low));
            found.extend(value(high));
        }
        Condition::In(operand, list) if is_path(operand, is_target) => {
            found.extend(list.iter().filter_map(value));
        }
        Condition::BeginsWith(subject, operand) if is_path(subject, is_target) => {
            found.extend(value(operand));
        }
        Condition::Not(inner) => collect(inner, is_target, found),
        Condition::And(operands) | Condition::Or(operands) => {
            for operand in operands {
                collect(operand, is_target, found);
            }
        }
        _ => {}
    }
}

fn sought<'a>(
    condition: &'a Condition,
    is_target: &dyn Fn(&Path) -> bool,
    found: &mut Vec<&'a str>,
) {
    match condition {
        Condition::Contains(subject, operand) if is_path(subject, is_target) => {
            found.extend(value(operand));
        }
        Condition::Not(inner) => sought(inner, is_target, found),
        Condition::And(operands) | Condition::Or(operands) => {
            for operand in operands {
                sought(operand, is_target, found);
            }
        }
        _ => {}
    }
}

fn elsewhere(condition: &Condition, is_target: &dyn Fn(&Path) -> bool) -> bool {
    let mentions = |operand: &Operand| mentions(operand, is_target);
    let compared = |subject: &Operand, others: &[&Operand]| compared(subject, others, is_target);
    match condition {
        Condition::Compare(left, _, right) => {
            (mentions(left) || mentions(right))
                && !compared(left, &[right])
                && !compared(right, &[left])
        }
        Condition::Between(operand, low, high) => {
            [operand, low, high].into_iter().any(mentions) && !compared(operand, &[low, high])
        }
        Condition::In(operand, list) => {
            (mentions(operand) || list.iter().any(mentions))
                && !compared(operand, &list.iter().collect::<Vec<_>>())
        }
        Condition::BeginsWith(subject, operand) | Condition::Contains(subject, operand) => {
            (mentions(subject) || mentions(operand)) && !compared(subject, &[operand])
        }
        Condition::AttributeType(_, operand) => mentions(operand),
        Condition::AttributeExists(_) | Condition::AttributeNotExists(_) => false,
        Condition::Not(inner) => elsewhere(inner, is_target),
        Condition::And(operands) | Condition::Or(operands) => {
            operands.iter().any(|o| elsewhere(o, is_target))
        }
    }
}
