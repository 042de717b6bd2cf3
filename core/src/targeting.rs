//! Targeting (docs/contracts.md §4): a targeting expression is checked and prepared once per snapshot,
//! then evaluated per request against string attributes without allocating.
//!
//! An experiment's `targeting` is a list of rules OR-ed, each rule's conditions AND-ed; any
//! condition may itself be an `all`/`any` group, a `not`, or a reference to an audience.

use std::collections::BTreeMap;

use crate::problems::Problems;
use crate::snapshot::{Audience, Condition, Rule};

mod operators;

pub use operators::scalar_text;
pub(crate) use operators::{parse_number, parse_semver};
use operators::{prepare_test, Test};

/// Request attributes by name. Values are strings: query parameters always are, and JSON
/// context values that are not strings are kept as their JSON text.
pub type Attributes = BTreeMap<String, String>;

/// Attribute namespaces only the edge may fill in; request-supplied names in them are ignored.
pub const RESERVED_NAMESPACES: [&str; 3] = ["cf.", "url.", "ua."];

/// Whether `name` lies in a namespace the request cannot set.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMESPACES.iter().any(|ns| name.starts_with(ns))
}

/// A prepared targeting expression. `None` inside means "everyone".
#[derive(Debug, Clone, Default)]
pub struct Targeting(Option<Expr>);

#[derive(Debug, Clone)]
enum Expr {
    Test { attribute: String, test: Test },
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
}

/// Prepared audiences by key, for resolving `{"audience": key}` references.
pub(crate) type AudienceTable = BTreeMap<String, Targeting>;

impl Targeting {
    /// Checks and prepares OR-ed `rules` that reference no audience.
    ///
    /// # Errors
    /// Every problem found, with its path.
    pub fn prepare(rules: &[Rule]) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let targeting = prepare_rules(rules, "", None, &mut problems);
        if problems.is_empty() {
            Ok(targeting)
        } else {
            Err(problems)
        }
    }

    /// True when the attributes satisfy the expression (always, for an empty rule list).
    pub fn matches(&self, attributes: &Attributes) -> bool {
        self.0.as_ref().is_none_or(|expr| expr.holds(attributes))
    }
}

/// Prepares OR-ed `rules`, recording every problem under `{path}.targeting`. Audience
/// references resolve through `audiences`; `None` means references are not allowed here
/// (inside an audience: audiences do not nest, so they cannot form cycles).
pub(crate) fn prepare_rules(
    rules: &[Rule],
    path: &str,
    audiences: Option<&AudienceTable>,
    problems: &mut Problems,
) -> Targeting {
    if rules.is_empty() {
        return Targeting(None);
    }
    let prepared = rules.iter().enumerate().map(|(r, rule)| {
        let conditions = rule.conditions.iter().enumerate().filter_map(|(c, cond)| {
            // Paths are built only when a problem is found.
            let at = || {
                let dot = if path.is_empty() { "" } else { "." };
                format!("{path}{dot}targeting[{r}].conditions[{c}]")
            };
            prepare_node(cond, &at, audiences, problems)
        });
        combine(conditions, Expr::All)
    });
    Targeting(Some(combine(prepared, Expr::Any)))
}

/// Prepares every audience; references between audiences are refused.
pub(crate) fn prepare_audiences(list: &[Audience], problems: &mut Problems) -> AudienceTable {
    let mut table = AudienceTable::new();
    for (i, audience) in list.iter().enumerate() {
        let path = format!("audiences[{i}]");
        if !crate::keys::is_valid_key(&audience.key) {
            problems.push(
                format!("{path}.key"),
                crate::keys::key_message("audience key", &audience.key),
            );
        }
        let targeting = prepare_rules(&audience.targeting, &path, None, problems);
        if table.insert(audience.key.clone(), targeting).is_some() {
            problems.push(
                format!("{path}.key"),
                format!("duplicate audience key {:?}", audience.key),
            );
        }
    }
    table
}

/// `parts` joined by `group` (`Expr::All` or `Expr::Any`). A single part stands alone, so the
/// common one-condition rule is prepared without allocating a list.
fn combine(mut parts: impl Iterator<Item = Expr>, group: fn(Vec<Expr>) -> Expr) -> Expr {
    let Some(first) = parts.next() else {
        return group(Vec::new());
    };
    let Some(second) = parts.next() else {
        return first;
    };
    let mut all = vec![first, second];
    all.extend(parts);
    group(all)
}

fn prepare_node(
    cond: &Condition,
    path: &dyn Fn() -> String,
    audiences: Option<&AudienceTable>,
    problems: &mut Problems,
) -> Option<Expr> {
    let forms = [
        cond.operator.is_some() || !cond.attribute.is_empty(),
        cond.all.is_some(),
        cond.any.is_some(),
        cond.not.is_some(),
        cond.audience.is_some(),
    ];
    if forms.iter().filter(|f| **f).count() != 1 {
        problems.push(
            path(),
            "a condition needs exactly one of: attribute+operator, all, any, not, audience",
        );
        return None;
    }
    let group = |items: &[Condition], name: &str, problems: &mut Problems| -> Vec<Expr> {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let at = || format!("{}.{name}[{i}]", path());
                prepare_node(item, &at, audiences, problems)
            })
            .collect()
    };
    if let Some(items) = &cond.all {
        return Some(combine(
            group(items, "all", problems).into_iter(),
            Expr::All,
        ));
    }
    if let Some(items) = &cond.any {
        if items.is_empty() {
            problems.push(
                format!("{}.any", path()),
                "an empty any-group matches nobody",
            );
            return None;
        }
        return Some(combine(
            group(items, "any", problems).into_iter(),
            Expr::Any,
        ));
    }
    if let Some(inner) = &cond.not {
        let at = || format!("{}.not", path());
        return prepare_node(inner, &at, audiences, problems).map(|e| Expr::Not(Box::new(e)));
    }
    if let Some(key) = &cond.audience {
        return audience_ref(key, path, audiences, problems);
    }
    if cond.attribute.is_empty() {
        problems.push(format!("{}.attribute", path()), "attribute name is empty");
    }
    let Some(operator) = &cond.operator else {
        problems.push(format!("{}.operator", path()), "operator is missing");
        return None;
    };
    let test = prepare_test(operator, &cond.value, path, problems)?;
    Some(Expr::Test {
        attribute: cond.attribute.clone(),
        test,
    })
}

fn audience_ref(
    key: &str,
    path: &dyn Fn() -> String,
    audiences: Option<&AudienceTable>,
    problems: &mut Problems,
) -> Option<Expr> {
    let Some(table) = audiences else {
        problems.push(
            format!("{}.audience", path()),
            "audiences cannot reference other audiences",
        );
        return None;
    };
    let Some(Targeting(expr)) = table.get(key) else {
        problems.push(
            format!("{}.audience", path()),
            format!("unknown audience {key:?}"),
        );
        return None;
    };
    // An audience with no rules is everyone: an empty all-group.
    Some(expr.clone().unwrap_or(Expr::All(Vec::new())))
}

impl Expr {
    fn holds(&self, attributes: &Attributes) -> bool {
        match self {
            Self::Test { attribute, test } => {
                test.holds(attributes.get(attribute).map(String::as_str))
            }
            Self::All(parts) => parts.iter().all(|p| p.holds(attributes)),
            Self::Any(parts) => parts.iter().any(|p| p.holds(attributes)),
            Self::Not(inner) => !inner.holds(attributes),
        }
    }

    fn visit_attributes<'a>(&'a self, seen: &mut dyn FnMut(&'a str)) {
        match self {
            Self::Test { attribute, .. } => seen(attribute),
            Self::All(parts) | Self::Any(parts) => {
                parts.iter().for_each(|p| p.visit_attributes(seen));
            }
            Self::Not(inner) => inner.visit_attributes(seen),
        }
    }
}

impl Targeting {
    /// Whether any test reads an attribute for which `pred` holds.
    pub(crate) fn reads_any(&self, pred: impl Fn(&str) -> bool) -> bool {
        let mut found = false;
        if let Some(expr) = &self.0 {
            expr.visit_attributes(&mut |name| found |= pred(name));
        }
        found
    }
}

#[cfg(test)]
mod tests;
