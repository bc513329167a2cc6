//! The generated corpus: proptest strategies over DynamoDB's expression grammar (paths with
//! `#name`s, map keys and list indexes; comparisons, `BETWEEN`, `IN`, `AND`/`OR`/`NOT`,
//! parentheses and the functions; `SET`/`REMOVE`/`ADD`/`DELETE` with `+`, `-`,
//! `if_not_exists` and `list_append`; key conditions and projections), drawn with
//! proptest's fixed seed so every run judges the same expressions. A share of them is
//! turned into a near miss by one [`Mutation`].
//!
//! The attribute names and placeholders come from the pools of [`crate::corpus`] and the
//! items of [`crate::world`], so that most paths name something and most comparisons can
//! hold; now and then a bare reserved word stands where a name belongs.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::corpus::{Case, Kind, UNDEFINED_VALUE};

/// How many expressions of each kind are generated.
const FILTERS: usize = 110;
const CONDITIONS: usize = 50;
const UPDATES: usize = 110;
const KEY_CONDITIONS: usize = 40;
const PROJECTIONS: usize = 30;

/// The generated cases, the same on every run.
pub(crate) fn generated() -> Vec<Case> {
    let mut runner = TestRunner::deterministic();
    let mut cases = Vec::new();
    let kinds: [(Kind, usize, BoxedStrategy<String>); 5] = [
        (Kind::Filter, FILTERS, condition()),
        (Kind::Condition, CONDITIONS, condition()),
        (Kind::Update, UPDATES, update()),
        (Kind::KeyCondition, KEY_CONDITIONS, key_condition()),
        (Kind::Projection, PROJECTIONS, projection()),
    ];
    for (kind, count, strategy) in kinds {
        let with_mutation = (strategy, mutation());
        for _ in 0..count {
            let (text, mutation) = with_mutation
                .new_tree(&mut runner)
                .expect("the strategies never reject")
                .current();
            let origin = format!("generated #{}, {mutation:?}", cases.len());
            cases.push(mutation.apply(Case::new(origin, kind, text)));
        }
    }
    cases
}

/// One way to make an expression a near miss, or none.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mutation {
    None,
    /// An extra `(` in front.
    OpenParenthesis,
    /// An extra `)` at the end.
    CloseParenthesis,
    /// The last word dropped.
    DropLastWord,
    /// The first `:value` replaced by one the maps leave undefined.
    UndefinedValue,
    /// The first `:value` replaced by a number literal.
    Literal,
    /// An unused `#name` in the maps.
    UnusedName,
    /// An unused `:value` in the maps.
    UnusedValue,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        28 => Just(Mutation::None),
        1 => Just(Mutation::OpenParenthesis),
        1 => Just(Mutation::CloseParenthesis),
        1 => Just(Mutation::DropLastWord),
        1 => Just(Mutation::UndefinedValue),
        1 => Just(Mutation::Literal),
        1 => Just(Mutation::UnusedName),
        1 => Just(Mutation::UnusedValue),
    ]
}

impl Mutation {
    fn apply(self, case: Case) -> Case {
        let rewrite = |text: String| Case::new(case.origin.clone(), case.kind, text);
        let first_value = |replacement: &str| {
            let Some(start) = case.text.find(':') else {
                return case.text.clone();
            };
            let end = case.text[start + 1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(case.text.len(), |e| start + 1 + e);
            format!("{}{replacement}{}", &case.text[..start], &case.text[end..])
        };
        match self {
            Self::None => case,
            Self::OpenParenthesis => rewrite(format!("({}", case.text)),
            Self::CloseParenthesis => rewrite(format!("{})", case.text)),
            Self::DropLastWord => {
                let kept = case.text.rsplit_once(' ').map_or("", |(kept, _)| kept);
                rewrite(kept.to_owned())
            }
            Self::UndefinedValue => rewrite(first_value(UNDEFINED_VALUE)),
            Self::Literal => rewrite(first_value("5")),
            Self::UnusedName => case.with_unused_name(),
            Self::UnusedValue => case.with_unused_value(),
        }
    }
}

/// A keyword in one of the cases DynamoDB accepts it in.
fn keyword(word: &'static str) -> impl Strategy<Value = String> + Clone {
    let capitalized = format!("{}{}", &word[..1], word[1..].to_lowercase());
    select(vec![word.to_owned(), word.to_lowercase(), capitalized])
}

fn strings(items: &[&'static str]) -> impl Strategy<Value = String> + Clone {
    select(items.to_vec()).prop_map(str::to_owned)
}

/// A document path: an attribute of the items (bare, through a `#name`, or, rarely, a
/// reserved word left bare), then map keys and list indexes.
fn path() -> BoxedStrategy<String> {
    let top = prop_oneof![
        12 => strings(&[
            "title", "price", "tags", "stock", "ratings", "meta", "flag", "note", "nums",
            "absent", "Category",
        ]),
        4 => strings(&["#s", "#dot", "#dash", "#y", "#m"]),
        1 => strings(&["status", "name", "year", "data"]),
    ];
    let step = prop_oneof![
        strings(&[".color", ".dims", ".nested", ".nested.deep", ".#c"]),
        (0u32..3).prop_map(|i| format!("[{i}]")),
    ];
    let steps = prop_oneof![3 => Just(Vec::new()), 1 => vec(step, 1..3)];
    (top, steps)
        .prop_map(|(top, steps)| top + &steps.concat())
        .boxed()
}

fn value() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => scalar(),
        1 => strings(&[":set", ":nset", ":list", ":true", ":null"]),
    ]
}

/// A value `<`, `BETWEEN` and the like can order.
fn scalar() -> impl Strategy<Value = String> + Clone {
    strings(&[
        ":s", ":apple", ":classic", ":color", ":p", ":n0", ":n5", ":n12", ":n50",
    ])
}

fn operand() -> BoxedStrategy<String> {
    prop_oneof![
        3 => path(),
        3 => value(),
        1 => path().prop_map(|p| format!("size({p})")),
    ]
    .boxed()
}

/// A comparator with the spacing around it, which DynamoDB does not need.
fn comparator() -> impl Strategy<Value = String> {
    (
        strings(&["=", "<>", "<", "<=", ">", ">="]),
        strings(&[" ", " ", ""]),
    )
        .prop_map(|(c, space)| format!("{space}{c}{space}"))
}

/// A path compared with a value: any value for `=` and `<>`, one that orders otherwise.
fn path_comparison() -> impl Strategy<Value = String> {
    let equality = (strings(&[" = ", " <> ", "="]), value());
    let order = (strings(&[" < ", " <= ", " > ", " >= ", ">"]), scalar());
    (path(), prop_oneof![equality, order]).prop_map(|(p, (c, v))| format!("{p}{c}{v}"))
}

fn comparison_or_function() -> BoxedStrategy<String> {
    let types = strings(&[
        ":tS", ":tN", ":tSS", ":tNS", ":tL", ":tM", ":tBOOL", ":tNULL",
    ]);
    prop_oneof![
        4 => path_comparison(),
        2 => (operand(), comparator(), operand()).prop_map(|(a, c, b)| format!("{a}{c}{b}")),
        1 => (operand(), keyword("BETWEEN"), scalar(), keyword("AND"), scalar())
            .prop_map(|(a, k, lo, and, hi)| format!("{a} {k} {lo} {and} {hi}")),
        1 => (operand(), keyword("IN"), vec(value(), 1..4))
            .prop_map(|(a, k, list)| format!("{a} {k} ({})", list.join(", "))),
        1 => path().prop_map(|p| format!("attribute_exists({p})")),
        1 => path().prop_map(|p| format!("attribute_not_exists({p})")),
        1 => (path(), types).prop_map(|(p, t)| format!("attribute_type({p}, {t})")),
        1 => (path(), value()).prop_map(|(p, v)| format!("begins_with({p}, {v})")),
        1 => (path(), operand()).prop_map(|(p, v)| format!("contains({p}, {v})")),
    ]
    .boxed()
}

/// A condition (or filter): the leaves above joined by `AND`, `OR`, `NOT` and parentheses,
/// which may nest into DynamoDB's redundant parentheses now and then.
fn condition() -> BoxedStrategy<String> {
    comparison_or_function()
        .prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), keyword("AND"), inner.clone())
                    .prop_map(|(a, k, b)| format!("{a} {k} {b}")),
                (inner.clone(), keyword("OR"), inner.clone())
                    .prop_map(|(a, k, b)| format!("{a} {k} {b}")),
                (keyword("NOT"), inner.clone()).prop_map(|(k, a)| format!("{k} {a}")),
                inner.prop_map(|a| format!("({a})")),
            ]
        })
        .boxed()
}

/// The right-hand side of a `SET`: mostly operands of the type the operator wants, now and
/// then any.
fn set_value() -> BoxedStrategy<String> {
    let any = || prop_oneof![path(), value()];
    let number = || {
        prop_oneof![
            strings(&["price", "stock", ":n5", ":n12", "#dash"]),
            strings(&["tally", "price"]).prop_map(|p| format!("if_not_exists({p}, :n0)")),
        ]
    };
    let list = || {
        prop_oneof![
            strings(&["ratings", "meta.dims", ":list"]),
            strings(&["fresh", "ratings"]).prop_map(|p| format!("if_not_exists({p}, :list)")),
        ]
    };
    prop_oneof![
        4 => any(),
        1 => (path(), any()).prop_map(|(p, v)| format!("if_not_exists({p}, {v})")),
        2 => (list(), list()).prop_map(|(a, b)| format!("list_append({a}, {b})")),
        1 => (any(), any()).prop_map(|(a, b)| format!("list_append({a}, {b})")),
        2 => (number(), strings(&[" + ", " - ", "+"]), number())
            .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
        1 => (any(), strings(&[" + ", " - "]), any()).prop_map(|(a, op, b)| format!("{a}{op}{b}")),
    ]
    .boxed()
}

/// A clause's actions: one or two of `actions` (distinct, in any order; the clauses' lists
/// name disjoint paths, so a clash is rare), or once in a while one on any path.
fn actions(actions: &[&'static str], any: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let distinct = subsequence(actions.to_vec(), 1..3)
        .prop_shuffle()
        .prop_map(|chosen| chosen.join(", "));
    prop_oneof![4 => distinct, 1 => any].boxed()
}

fn update() -> BoxedStrategy<String> {
    let targets = [
        "fresh",
        "tally",
        "title",
        "price",
        "label",
        "#y",
        "meta.color",
    ];
    let set =
        (subsequence(targets.to_vec(), 1..3), vec(set_value(), 2)).prop_map(|(targets, values)| {
            let pairs = targets
                .iter()
                .zip(values)
                .map(|(t, v)| format!("{t} = {v}"));
            pairs.collect::<Vec<_>>().join(", ")
        });
    let any_set = (path(), set_value()).prop_map(|(p, v)| format!("{p} = {v}"));
    let remove = [
        "note",
        "flag",
        "ratings[0]",
        "meta.nested",
        "#dot",
        "absent",
    ];
    let add = ["stock :n5", "extra :nset", "tags :set"];
    let any_add = (path(), value()).prop_map(|(p, v)| format!("{p} {v}"));
    let delete = ["nums :nset", "gone :set"];
    let any_delete = (path(), value()).prop_map(|(p, v)| format!("{p} {v}"));
    let clause = |word: &'static str, actions: BoxedStrategy<String>| {
        (keyword(word), actions).prop_map(|(k, a)| format!("{k} {a}"))
    };
    let clauses = (
        clause("SET", prop_oneof![4 => set, 1 => any_set].boxed()),
        clause("REMOVE", actions(&remove, path())),
        clause("ADD", actions(&add, any_add.boxed())),
        clause("DELETE", actions(&delete, any_delete.boxed())),
    );
    let order = subsequence(vec![0, 1, 2, 3], 1..=3).prop_shuffle();
    (clauses, order)
        .prop_map(|((set, remove, add, delete), order)| {
            let clauses = [set, remove, add, delete];
            let chosen: Vec<&str> = order.iter().map(|i| clauses[*i].as_str()).collect();
            chosen.join(" ")
        })
        .boxed()
}

/// Key conditions over the `pk`/`sk` table: mostly the shapes DynamoDB takes, some it
/// refuses only for the key (`OR`, `<>`, another attribute), which the grammar allows.
fn key_condition() -> BoxedStrategy<String> {
    let pk = strings(&["pk = :pk", "#pk = :pk", "pk=:pk", ":pk = pk"]);
    let sk = prop_oneof![
        4 => (strings(&["sk", "#sk"]), comparator(), strings(&[":sk", ":from", ":to"]))
            .prop_map(|(k, c, v)| format!("{k}{c}{v}")),
        2 => strings(&["sk BETWEEN :from AND :to", "begins_with(sk, :p)", "begins_with(#sk, :sk)"]),
        1 => strings(&["contains(sk, :p)", "sk IN (:sk)", "title = :s", "attribute_exists(sk)"]),
    ];
    prop_oneof![
        1 => pk.clone(),
        4 => (pk.clone(), keyword("AND"), sk.clone()).prop_map(|(a, k, b)| format!("{a} {k} {b}")),
        1 => (sk.clone(), keyword("AND"), pk.clone()).prop_map(|(a, k, b)| format!("{a} {k} {b}")),
        1 => (pk.clone(), sk.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
        1 => (pk, keyword("OR"), sk).prop_map(|(a, k, b)| format!("{a} {k} {b}")),
    ]
    .boxed()
}

fn projection() -> BoxedStrategy<String> {
    (vec(path(), 1..4), strings(&[", ", ",", " , "]))
        .prop_map(|(paths, comma)| paths.join(&comma))
        .boxed()
}
